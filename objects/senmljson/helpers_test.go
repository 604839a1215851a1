package senmljson

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/senml/senmltest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// testCodec counts relative times from senmltest.Now.
func testCodec() Codec { return Codec{Now: senmltest.Clock} }

// valueAt finds the value at p inside node n, which lives at root.
func valueAt(t *testing.T, root objects.Path, n objects.Node, p string) objects.Value {
	t.Helper()
	want := objects.MustParsePath(p)
	for _, r := range objects.Flatten(root, n) {
		if r.Path == want {
			return r.Value
		}
	}
	t.Fatalf("no value at %s", p)
	return objects.Value{}
}

func recordAt(t *testing.T, recs []objects.Record, p string) objects.Record {
	t.Helper()
	want := objects.MustParsePath(p)
	for _, r := range recs {
		if r.Path == want {
			return r
		}
	}
	t.Fatalf("no record at %s", p)
	return objects.Record{}
}

func checkValue(t *testing.T, name string, got, want objects.Value) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", name, got, want)
	}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the encoder output:\n got: %s\nwant: %s", name, got, want)
	}
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
