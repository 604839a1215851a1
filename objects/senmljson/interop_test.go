package senmljson

import (
	"strings"
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/senml/senmltest"
)

// TestInterop decodes and re-encodes every capture in this format.
func TestInterop(t *testing.T) { senmltest.Interop(t, testCodec(), objects.FormatSenMLJSON) }

// TestInteropValues spot-checks values the captures are known to hold
// (payload_text in index.json).
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

	root, n := decode("wakaama-1.1/004-read-3_0-senmljson")
	checkValue(t, "wakaama /3/0/0", valueAt(t, root, n, "/3/0/0"), objects.StringValue("Open Mobile Alliance"))
	checkValue(t, "wakaama /3/0/13", valueAt(t, root, n, "/3/0/13"), objects.TimeSecondsValue(3162797181))
	checkValue(t, "wakaama /3/0/7/1", valueAt(t, root, n, "/3/0/7/1"), objects.IntegerValue(5000))

	root, n = decode("anjay-1.2/004-read-3_0-senmljson")
	checkValue(t, "anjay /3/0/0", valueAt(t, root, n, "/3/0/0"), objects.StringValue("vec"))
	checkValue(t, "anjay /3/0/17", valueAt(t, root, n, "/3/0/17"), objects.StringValue(""))
	checkValue(t, "anjay /3/0/22/0", valueAt(t, root, n, "/3/0/22/0"), objects.ObjlnkValue(objects.ObjLink{Object: 33606, Instance: 0}))

	root, n = decode("wakaama-1.1/059-read-6_0-senmljson")
	checkValue(t, "wakaama /6/0/0", valueAt(t, root, n, "/6/0/0"), objects.FloatValue(27.98606491088867))
	checkValue(t, "wakaama /6/0/2", valueAt(t, root, n, "/6/0/2"), objects.FloatValue(8495))
	checkValue(t, "wakaama /6/0/4", valueAt(t, root, n, "/6/0/4"), objects.OpaqueValue([]byte{0x20, 0, 0, 0, 0xff}))

	root, n = decode("anjay-1.2/059-read-6_0-senmljson")
	checkValue(t, "anjay /6/0/0", valueAt(t, root, n, "/6/0/0"), objects.FloatValue(50.083464215191043))
	checkValue(t, "anjay /6/0/2", valueAt(t, root, n, "/6/0/2"), objects.FloatValue(0))
	checkValue(t, "anjay /6/0/4", valueAt(t, root, n, "/6/0/4"), objects.OpaqueValue([]byte{0x01, 0x25, 0x00, 0x01}))

	root, n = decode("anjay-1.2/032-read-3_0_6-senmljson")
	if r := n.(*objects.Resource); !r.Multiple || len(r.Instances) != 1 {
		t.Errorf("anjay /3/0/6 = %+v, want a multiple resource with one instance", r)
	}
	checkValue(t, "anjay /3/0/6/0", valueAt(t, root, n, "/3/0/6/0"), objects.IntegerValue(0))

	// Anjay's notifications carry a fractional base time.
	cp := capture(t, "anjay-1.2/073-observe-3_0_13-senmljson-notify1")
	recs, err := c.DecodeRecords(cp.Payload(), reg)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Time != 1795305992.0001421 || !recs[0].Value.Equal(objects.TimeSecondsValue(1795305992)) {
		t.Errorf("anjay notify1 = %+v, want /3/0/13 = 1795305992 at 1795305992.0001421", recs)
	}

	// Wakaama's Send: bn "/3/0/" and relative names, in the order sent.
	cp = capture(t, "wakaama-1.1/096-send-2")
	recs, err = c.DecodeRecords(cp.Payload(), reg)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, r := range recs {
		paths = append(paths, r.Path.String())
	}
	if got := strings.Join(paths, " "); got != "/3/0/9 /3/0/13 /3/0/0" {
		t.Errorf("wakaama send-2 paths = %s", got)
	}
	checkValue(t, "wakaama send-2 /3/0/9", recordAt(t, recs, "/3/0/9").Value, objects.IntegerValue(100))
}
