package senmljson

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/senml/senmltest"
)

// TestInterop decodes every SenML JSON payload that Wakaama and Anjay sent
// (reads, observations, Send) and every one lwm2md's capture tool wrote to
// them, with the OMA registry as the model, and re-encodes each.
func TestInterop(t *testing.T) {
	reg := shared.Registry(t)
	c := testCodec()
	var nodes, sends, writes int
	for _, cp := range shared.CapturesIn(t, int(objects.FormatSenMLJSON)) {
		t.Run(cp.ID, func(t *testing.T) {
			if cp.Operation == "send" {
				recs, err := c.DecodeRecords(cp.Payload(), reg)
				if err != nil {
					t.Fatal(err)
				}
				if len(recs) == 0 {
					t.Fatal("no records")
				}
				senmltest.RecordsRoundTrip(t, c, recs, reg)
				sends++
				return
			}
			root := objects.MustParsePath(cp.Path)
			n, err := c.Decode(root, cp.Payload(), reg)
			if err != nil {
				t.Fatalf("%v\npayload: %q", err, cp.Payload())
			}
			senmltest.NodeRoundTrip(t, c, root, n, reg)
			// Observations carry bt: the records keep it.
			recs, err := c.DecodeRecords(cp.Payload(), reg)
			if err != nil {
				t.Fatalf("records: %v", err)
			}
			senmltest.RecordsRoundTrip(t, c, recs, reg)
			nodes++
		})
	}
	for _, cp := range shared.Captures(t) {
		if cp.RequestContentFormat == nil || *cp.RequestContentFormat != int(objects.FormatSenMLJSON) || cp.RequestPayloadHex == "" {
			continue
		}
		t.Run(cp.ID+"/request", func(t *testing.T) {
			data, err := hex.DecodeString(cp.RequestPayloadHex)
			if err != nil {
				t.Fatal(err)
			}
			root := objects.MustParsePath(cp.Path)
			n, err := c.Decode(root, data, reg)
			if err != nil {
				t.Fatal(err)
			}
			if r, ok := n.(*objects.Resource); !ok || r.Value.Type() != objects.TypeString {
				t.Errorf("decoded %#v, want a String resource", n)
			}
			writes++
		})
	}
	t.Logf("decoded %d read/observe payloads, %d Send payloads, %d write requests", nodes, sends, writes)
	if nodes == 0 || sends == 0 || writes == 0 {
		t.Error("some kind of capture was not found")
	}
}

func capture(t *testing.T, id string) shared.Capture {
	t.Helper()
	for _, c := range shared.Captures(t) {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no capture %s", id)
	return shared.Capture{}
}

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
