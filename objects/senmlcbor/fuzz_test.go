package senmlcbor

import (
	"encoding/hex"
	"errors"
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/senml/senmltest"
)

// seeds adds the testdata vectors and every SenML CBOR capture, payloads
// of writes included, with the path each answers.
func seeds(f *testing.F) {
	for _, v := range senmltest.Vectors() {
		root := v.Root
		if root == "" {
			root = "/3/0"
		}
		f.Add(readTestdata(f, v.Name+".cbor"), root)
	}
	for _, cp := range shared.CapturesIn(f, int(objects.FormatSenMLCBOR)) {
		root := cp.Path
		if cp.Operation == "send" {
			root = "/3"
		}
		f.Add(cp.Payload(), root)
	}
	for _, h := range []string{
		// indefinite lengths, every float width, bt, bv, vlo, unknown labels
		"9fbf21662f332f302f362203f93c00000062300102f94000ff" +
			"a300622f3163766c6f6946464646a3464646460601ff",
		"81a500692f33323736392f302f3202fb3ff8000000000000" +
			"1820a1617880230a24fa3f800000",
		"81a2006a2f33323736392f302f35085f4101ff",
	} {
		b, err := hex.DecodeString(h)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "/3/0/6")
	}
	for _, cp := range shared.Captures(f) {
		if cp.RequestContentFormat != nil && *cp.RequestContentFormat == int(objects.FormatSenMLCBOR) && cp.RequestPayloadHex != "" {
			b, _ := hex.DecodeString(cp.RequestPayloadHex)
			f.Add(b, cp.Path)
		}
	}
}

func checkDecodeError(t *testing.T, err error) {
	var de *objects.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("%T is not a *objects.DecodeError: %v", err, err)
	}
}

// FuzzDecode: Decode never panics, fails only with a DecodeError, and
// whatever it decodes encodes and decodes again to an equal node.
func FuzzDecode(f *testing.F) {
	seeds(f)
	reg := shared.Registry(f)
	c := testCodec()
	f.Fuzz(func(t *testing.T, data []byte, root string) {
		p, err := objects.ParsePath(root)
		if err != nil {
			return
		}
		n, err := c.Decode(p, data, reg)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		senmltest.NodeRoundTrip(t, c, p, n, reg)
	})
}

// FuzzDecodeRecords: the same for DecodeRecords, with and without a
// model.
func FuzzDecodeRecords(f *testing.F) {
	seeds(f)
	reg := shared.Registry(f)
	c := testCodec()
	f.Fuzz(func(t *testing.T, data []byte, model string) {
		var m objects.Models = reg
		if len(model)%2 == 1 {
			m = nil
		}
		recs, err := c.DecodeRecords(data, m)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		senmltest.RecordsRoundTrip(t, c, recs, m)
	})
}
