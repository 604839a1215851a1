package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadCreds feeds the PSK CSV reader arbitrary files: it returns
// devices or an error, never panics, and what it returns survives a
// write and a second read unchanged.
func FuzzReadCreds(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.csv")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		creds, err := readCreds(bytes.NewReader(data))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := writeCreds(&buf, creds); err != nil {
			t.Fatal(err)
		}
		again, err := readCreds(&buf)
		if err != nil {
			t.Fatalf("re-read: %v\n%s", err, buf.String())
		}
		if len(again) != len(creds) {
			t.Fatalf("%d devices, re-read %d", len(creds), len(again))
		}
		for i := range creds {
			if again[i].Endpoint != creds[i].Endpoint || again[i].Identity != creds[i].Identity || !bytes.Equal(again[i].Key, creds[i].Key) {
				t.Fatalf("device %d changed: %+v, re-read %+v", i, creds[i], again[i])
			}
		}
	})
}

// TestReadCredsTestdata reads the seed files.
func TestReadCredsTestdata(t *testing.T) {
	for name, want := range map[string]int{"testdata/psk.csv": 2, "testdata/psk-columns.csv": 1} {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		creds, err := readCreds(f)
		f.Close()
		if err != nil || len(creds) != want {
			t.Fatalf("%s: %d devices, %v; want %d", name, len(creds), err, want)
		}
	}
}
