package nodejson

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/builtin"
)

// FuzzUnmarshal checks that Unmarshal never panics, that every error is an
// *Error, and that whatever it accepts writes and reads back to the same
// JSON (bytes, not nodes, so NaN compares equal to itself).
func FuzzUnmarshal(f *testing.F) {
	for name, path := range seedPaths {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		if path != "" {
			f.Add(path, data)
		}
	}
	f.Add("/3/0/0", []byte(`{"value":"lwm2md"}`))
	f.Add("/3303/0/5700", []byte(`{"value":"NaN"}`))
	m := builtin.Registry()
	f.Fuzz(func(t *testing.T, path string, data []byte) {
		root, err := objects.ParsePath(path)
		if err != nil {
			return
		}
		for _, models := range []objects.Models{nil, m} {
			n, err := Unmarshal(data, root, models)
			if err != nil {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("error %v is %T, not *Error", err, err)
				}
				continue
			}
			b1, err := Marshal(root, n)
			if err != nil {
				t.Fatalf("Marshal of accepted node: %v", err)
			}
			n2, err := Unmarshal(b1, root, models)
			if err != nil {
				t.Fatalf("re-read %s: %v", b1, err)
			}
			b2, err := Marshal(root, n2)
			if err != nil || !bytes.Equal(b1, b2) {
				t.Fatalf("round trip: %v\n%s\n%s", err, b1, b2)
			}
		}
	})
}

// FuzzUnmarshalRecords is FuzzUnmarshal for record arrays.
func FuzzUnmarshalRecords(f *testing.F) {
	data, err := os.ReadFile(filepath.Join("testdata", "records.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	m := builtin.Registry()
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := UnmarshalRecords(data, m)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is %T, not *Error", err, err)
			}
			return
		}
		b1, err := MarshalRecords(recs)
		if err != nil {
			t.Fatal(err)
		}
		recs2, err := UnmarshalRecords(b1, m)
		if err != nil {
			t.Fatalf("re-read %s: %v", b1, err)
		}
		if b2, _ := MarshalRecords(recs2); !bytes.Equal(b1, b2) {
			t.Fatalf("round trip:\n%s\n%s", b1, b2)
		}
	})
}
