package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

// TestImportExport drives the import and export subcommands through run:
// a file with good and bad lines, the report, and the round trip.
func TestImportExport(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	in := filepath.Join(dir, "devices.csv")
	csv := "endpoint,psk_identity,psk_key,tags\n" +
		"dev-1,id-1,000102030405060708090a0b0c0d0e0f,site=berlin\n" +
		"dev-2,id-2,zz,site=paris\n" + // not hex
		"dev-3,id-1,0f0e0d0c0b0a09080706050403020100,\n" + // identity of dev-1
		"dev-4,id-4,a0a1a2a3a4a5a6a7a8a9aaabacadaeaf,site=berlin&fw=1.2\n"
	if err := os.WriteFile(in, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	settings := []string{"--data-dir", data, "--secrets-key", testKey}
	ctx := context.Background()

	var out, errOut bytes.Buffer
	code := run(ctx, append([]string{"import", "--dry-run"}, append(settings, in)...), noEnv, &out, &errOut)
	if code != 1 || !strings.Contains(out.String(), "would import 2 devices, rejected 2") {
		t.Fatalf("dry run: code %d, out %q, err %q", code, out.String(), errOut.String())
	}
	out.Reset()
	code = run(ctx, []string{"export", "--data-dir", data, "--secrets-key", testKey}, noEnv, &out, &errOut)
	if code != 0 || strings.Contains(out.String(), "dev-1") {
		t.Fatalf("after a dry run the store must be empty: code %d, out %q", code, out.String())
	}

	out.Reset()
	code = run(ctx, append([]string{"import"}, append(settings, in)...), noEnv, &out, &errOut)
	if code != 1 {
		t.Fatalf("import with rejections: code %d, want 1; out %q err %q", code, out.String(), errOut.String())
	}
	for _, want := range []string{"line 3: dev-2", "line 4: dev-3", "imported 2 devices, rejected 2"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("import report lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "0f0e0d0c") {
		t.Error("the report shows key material")
	}

	exported := filepath.Join(dir, "out.json")
	code = run(ctx, append([]string{"export", "--secrets"}, append(settings, exported)...), noEnv, &out, &errOut)
	if code != 0 {
		t.Fatalf("export: code %d, err %q", code, errOut.String())
	}
	b, err := os.ReadFile(exported)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"endpoint":"dev-1"`, `"psk_key":"000102030405060708090a0b0c0d0e0f"`, `"endpoint":"dev-4"`, `"fw":"1.2"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("export lacks %s:\n%s", want, b)
		}
	}
	if fi, err := os.Stat(exported); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("export file mode: %v %v, want 0600", fi.Mode(), err)
	}

	// The exported file imports into a fresh store unchanged.
	data2 := filepath.Join(dir, "data2")
	out.Reset()
	code = run(ctx, []string{"import", "--data-dir", data2, "--secrets-key", testKey, exported}, noEnv, &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), "imported 2 devices, rejected 0") {
		t.Fatalf("re-import: code %d, out %q, err %q", code, out.String(), errOut.String())
	}
}

func TestBulkUsageErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no file", []string{"import"}, 2, "usage: lwm2md import"},
		{"unknown extension", []string{"import", "devices.txt"}, 2, "set --format"},
		{"bad format", []string{"export", "--format", "xml"}, 2, `--format "xml"`},
		{"missing file", []string{"import", "--data-dir", t.TempDir(), "/nonexistent/devices.csv"}, 1, "no such file"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(ctx, tc.args, noEnv, &out, &errOut)
			if code != tc.code || !strings.Contains(errOut.String(), tc.want) {
				t.Fatalf("code %d (want %d), stderr %q (want %q)", code, tc.code, errOut.String(), tc.want)
			}
		})
	}
}

// TestBackup copies the embedded store and checks the copy opens with the
// same devices.
func TestBackup(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	in := filepath.Join(dir, "d.csv")
	os.WriteFile(in, []byte("endpoint,tags\nbk-1,site=oslo\n"), 0o600)
	ctx := context.Background()
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"import", "--data-dir", data, in}, noEnv, &out, &errOut); code != 0 {
		t.Fatalf("import: %d %s %s", code, out.String(), errOut.String())
	}
	restored := filepath.Join(dir, "restored")
	os.MkdirAll(restored, 0o700)
	if code := run(ctx, []string{"backup", "--data-dir", data, filepath.Join(restored, "registry.db")}, noEnv, &out, &errOut); code != 0 {
		t.Fatalf("backup: %d %s", code, errOut.String())
	}
	out.Reset()
	if code := run(ctx, []string{"export", "--data-dir", restored, "--format", "json"}, noEnv, &out, &errOut); code != 0 || !strings.Contains(out.String(), `"oslo"`) {
		t.Fatalf("export of the restored copy: %d %q %s", code, out.String(), errOut.String())
	}
	if code := run(ctx, []string{"backup", "--data-dir", filepath.Join(dir, "none"), filepath.Join(dir, "x.db")}, noEnv, &out, &errOut); code != 1 {
		t.Fatalf("backup of a missing store: code %d", code)
	}
}
