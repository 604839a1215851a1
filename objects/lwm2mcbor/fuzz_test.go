package lwm2mcbor

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
)

// fuzzSeeds adds the testdata vectors and every captured LwM2M CBOR
// payload (Anjay's responses and the writes we sent) with their paths.
func fuzzSeeds(f *testing.F, add func(path string, data []byte)) {
	for name, path := range map[string]string{
		"example-device-instance.cbor": "/3/0", "example-device-nested.cbor": "/3", "example-device-resource.cbor": "/3/0/0",
		"example-device-composite.cbor": "/3/0", "example-read-composite-request.cbor": "/3/0/0",
		"golden-device.cbor": "/3/0", "golden-composite.cbor": "/1/0/1",
	} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		add(path, b)
	}
	for _, c := range shared.CapturesIn(f, int(objects.FormatLwM2MCBOR)) {
		add(c.Path, c.Payload())
	}
	for _, c := range shared.Captures(f) {
		if c.RequestContentFormat != nil && *c.RequestContentFormat == int(objects.FormatLwM2MCBOR) {
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
		b, err := codec.Encode(root, n, reg)
		if err != nil {
			t.Fatalf("decoded %+v but cannot encode it: %v", n, err)
		}
		again, err := codec.Decode(root, b, reg)
		if err != nil {
			t.Fatalf("cannot decode our own %x: %v", b, err)
		}
		if !sameNodes(t, n, again) {
			t.Fatalf("round trip through %x changed the node", b)
		}
		// Our output is canonical: encoding what it decodes to gives it back.
		if b2, err := codec.Encode(root, again, reg); err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("encoding is not stable: %x then %x (%v)", b, b2, err)
		}
	})
}

// FuzzDecodeRecords is FuzzDecode for the record form.
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
		b, err := codec.EncodeRecords(recs, reg)
		if err != nil {
			t.Fatalf("decoded %v but cannot encode them: %v", recs, err)
		}
		again, err := codec.DecodeRecords(b, reg)
		if err != nil {
			t.Fatalf("cannot decode our own %x: %v", b, err)
		}
		// The encoder writes records in path order.
		want := map[objects.Path]objects.Value{}
		for _, r := range recs {
			want[r.Path] = r.Value
		}
		if len(again) != len(recs) {
			t.Fatalf("%d records became %d through %x", len(recs), len(again), b)
		}
		for _, a := range again {
			if v, ok := want[a.Path]; !ok || !sameValue(v, a.Value) || a.Time != 0 {
				t.Fatalf("record %v %v came back as %v through %x", a.Path, v, a.Value, b)
			}
		}
	})
}
