package senmljson

import (
	"testing"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/senml/senmltest"
)

// seeds adds the shared seeds and a few of SenML JSON's own.
func seeds(f *testing.F) {
	senmltest.FuzzSeeds(f, ".json", objects.FormatSenMLJSON)
	f.Add([]byte(`[{"bn":"/3/0/6","bt":25462634,"bv":1,"n":"/0","v":1,"t":-5},{"vlo":"FFFF:FFFF","n":"/1"}]`), "/3/0/6")
	f.Add([]byte(`[{"n":"/32769/0/2","v":18446744073709551615,"x":[{"y":null}]}]`), "/32769/0")
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
