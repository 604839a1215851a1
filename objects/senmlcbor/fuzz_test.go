package senmlcbor

import (
	"encoding/hex"
	"testing"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/senml/senmltest"
)

// seeds adds the shared seeds and a few of SenML CBOR's own.
func seeds(f *testing.F) {
	senmltest.FuzzSeeds(f, ".cbor", objects.FormatSenMLCBOR)
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
}

// FuzzDecode: Decode never panics, fails only with a DecodeError, and
// whatever it decodes encodes and decodes again to an equal node.
func FuzzDecode(f *testing.F) {
	seeds(f)
	senmltest.FuzzNodes(f, testCodec())
}

// FuzzDecodeRecords: the same for DecodeRecords, with and without a
// model.
func FuzzDecodeRecords(f *testing.F) {
	seeds(f)
	senmltest.FuzzRecords(f, testCodec())
}
