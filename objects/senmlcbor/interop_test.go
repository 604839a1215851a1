package senmlcbor

import (
	"strings"
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/senml/senmltest"
)

// TestInterop decodes and re-encodes every capture in this format.
func TestInterop(t *testing.T) { senmltest.Interop(t, testCodec(), objects.FormatSenMLCBOR) }

// TestInteropValues spot-checks values the captures are known to hold
// (payload_decoded in index.json).
func TestInteropValues(t *testing.T) {
	reg := shared.Registry(t)
	c := testCodec()
	decode := func(id string) (objects.Path, objects.Node) {
		cp := capture(t, id)
		root := objects.MustParsePath(cp.Path)
		n, err := c.Decode(root, cp.Payload(), reg)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		return root, n
	}

	root, n := decode("wakaama-1.1-senmlcbor/005-read-3_0-senmlcbor")
	checkValue(t, "wakaama /3/0/0", valueAt(t, root, n, "/3/0/0"), objects.StringValue("Open Mobile Alliance"))
	checkValue(t, "wakaama /3/0/13", valueAt(t, root, n, "/3/0/13"), objects.TimeSecondsValue(3162797191))
	checkValue(t, "wakaama /3/0/8/1", valueAt(t, root, n, "/3/0/8/1"), objects.IntegerValue(900))

	root, n = decode("anjay-1.2/005-read-3_0-senmlcbor")
	checkValue(t, "anjay /3/0/0", valueAt(t, root, n, "/3/0/0"), objects.StringValue("vec"))
	checkValue(t, "anjay /3/0/22/0", valueAt(t, root, n, "/3/0/22/0"), objects.ObjlnkValue(objects.ObjLink{Object: 33606, Instance: 0}))

	// Wakaama sends float32, and 0.0 as a half-precision float.
	root, n = decode("wakaama-1.1-senmlcbor/060-read-6_0-senmlcbor")
	checkValue(t, "wakaama /6/0/0", valueAt(t, root, n, "/6/0/0"), objects.FloatValue(float64(float32(27.986064910888672))))
	checkValue(t, "wakaama /6/0/3", valueAt(t, root, n, "/6/0/3"), objects.FloatValue(0))
	checkValue(t, "wakaama /6/0/4", valueAt(t, root, n, "/6/0/4"), objects.OpaqueValue([]byte{0x20, 0, 0, 0, 0xff}))

	root, n = decode("anjay-1.2/060-read-6_0-senmlcbor")
	checkValue(t, "anjay /6/0/1", valueAt(t, root, n, "/6/0/1"), objects.FloatValue(19.901322140952743))
	checkValue(t, "anjay /6/0/4", valueAt(t, root, n, "/6/0/4"), objects.OpaqueValue([]byte{0x01, 0x25, 0x00, 0x01}))

	// Anjay's Send: bt (float64) in the first record only, inherited by the rest.
	cp := capture(t, "anjay-1.2/100-send-2")
	recs, err := c.DecodeRecords(cp.Payload(), reg)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, r := range recs {
		paths = append(paths, r.Path.String())
		if r.Time != 1.7953059954012482e+09 {
			t.Errorf("anjay send-2 %s time = %v", r.Path, r.Time)
		}
	}
	if got := strings.Join(paths, " "); got != "/3/0/9 /3/0/13 /3/0/0" {
		t.Errorf("anjay send-2 paths = %s", got)
	}
	checkValue(t, "anjay send-2 /3/0/13", recordAt(t, recs, "/3/0/13").Value, objects.TimeSecondsValue(1795305995))
	checkValue(t, "anjay send-2 /3/0/0", recordAt(t, recs, "/3/0/0").Value, objects.StringValue("vec"))
}
