package senmljson

import (
	"errors"
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/senml/senmltest"
)

// seeds adds the testdata vectors and every SenML JSON capture, payloads
// of writes included, with the path each answers.
func seeds(f *testing.F) {
	for _, v := range senmltest.Vectors() {
		root := v.Root
		if root == "" {
			root = "/3/0"
		}
		f.Add(readTestdata(f, v.Name+".json"), root)
	}
	for _, cp := range shared.CapturesIn(f, int(objects.FormatSenMLJSON)) {
		root := cp.Path
		if cp.Operation == "send" {
			root = "/3"
		}
		f.Add(cp.Payload(), root)
	}
	f.Add([]byte(`[{"bn":"/3/0/6","bt":25462634,"bv":1,"n":"/0","v":1,"t":-5},{"vlo":"FFFF:FFFF","n":"/1"}]`), "/3/0/6")
	f.Add([]byte(`[{"n":"/32769/0/2","v":18446744073709551615,"x":[{"y":null}]}]`), "/32769/0")
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
