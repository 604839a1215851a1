package lwm2mjson

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
)

// fuzzSeeds adds the testdata vectors and every captured LwM2M JSON
// payload (responses and the write requests we sent) with their paths.
func fuzzSeeds(f *testing.F, add func(path string, data []byte)) {
	for name, path := range map[string]string{
		"spec-1.0-device.json": "/3/0", "spec-draft-device.json": "/3/0",
		"spec-1.0-history.json": "/72", "golden-device.json": "/3/0", "golden-history.json": "/72/1/2",
	} {
		b, err := readFile(name)
		if err != nil {
			f.Fatal(err)
		}
		add(path, b)
	}
	for _, c := range jsonCaptures(f) {
		add(c.Path, c.Payload())
	}
	for _, c := range shared.Captures(f) {
		if c.RequestContentFormat != nil && *c.RequestContentFormat == int(objects.FormatJSON) {
			b, _ := hex.DecodeString(c.RequestPayloadHex)
			add(c.Path, b)
		}
	}
}

// FuzzDecode checks that Decode never panics, that every error is a
// DecodeError, and that whatever decodes re-encodes and decodes again to
// the same node.
func FuzzDecode(f *testing.F) {
	fuzzSeeds(f, func(path string, data []byte) { f.Add(path, data) })
	reg := shared.Registry(f)
	f.Fuzz(func(t *testing.T, path string, data []byte) {
		root, err := objects.ParsePath(path)
		if err != nil {
			return
		}
		n, err := codec.Decode(root, data, reg)
		if err != nil {
			var de *objects.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is a %T", err, err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted %q, which encoding/json finds invalid", data)
		}
		b, err := codec.Encode(root, n, reg)
		if err != nil {
			t.Fatalf("decoded %+v but cannot encode it: %v", n, err)
		}
		again, err := codec.Decode(root, b, reg)
		if err != nil {
			t.Fatalf("cannot decode our own %s: %v", b, err)
		}
		if !sameNodes(t, n, again) {
			t.Fatalf("round trip through %s changed the node", b)
		}
		// Our output is canonical: encoding what it decodes to gives it back.
		if b2, err := codec.Encode(root, again, reg); err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("encoding is not stable: %s then %s (%v)", b, b2, err)
		}
	})
}

// FuzzDecodeRecords is FuzzDecode for the record form, times included.
func FuzzDecodeRecords(f *testing.F) {
	fuzzSeeds(f, func(_ string, data []byte) { f.Add(data) })
	reg := shared.Registry(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := codec.DecodeRecords(data, reg)
		if err != nil {
			var de *objects.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is a %T", err, err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted %q, which encoding/json finds invalid", data)
		}
		b, err := codec.EncodeRecords(recs, reg)
		if errors.Is(err, objects.ErrUnsupported) {
			return // timed and untimed records with relative times
		}
		if err != nil {
			t.Fatalf("decoded %v but cannot encode them: %v", recs, err)
		}
		again, err := codec.DecodeRecords(b, reg)
		if err != nil {
			t.Fatalf("cannot decode our own %s: %v", b, err)
		}
		if len(again) != len(recs) {
			t.Fatalf("%d records became %d through %s", len(recs), len(again), b)
		}
		for i, r := range recs {
			a := again[i]
			if a.Path != r.Path || !sameValue(r.Value, a.Value) || !sameTime(r.Time, a.Time) {
				t.Fatalf("record %v %v %v became %v %v %v through %s", r.Path, r.Value, r.Time, a.Path, a.Value, a.Time, b)
			}
		}
	})
}

// sameTime allows the last bits of a difference of two far-apart times.
func sameTime(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(a))
}
