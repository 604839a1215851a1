package tlv

import (
	"bytes"
	"encoding/hex"
	"math"
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
)

// tlvVector is one TLV payload from the interop captures: a client's
// response, or a request payload we sent.
type tlvVector struct {
	id   string
	path string
	data []byte
}

func interopVectors(tb testing.TB) []tlvVector {
	var out []tlvVector
	for _, f := range []objects.Format{objects.FormatTLV, objects.FormatOldTLV} {
		for _, c := range shared.CapturesIn(tb, int(f)) {
			out = append(out, tlvVector{c.ID, c.Path, c.Payload()})
		}
	}
	for _, c := range shared.Captures(tb) {
		if c.RequestContentFormat == nil || objects.Format(*c.RequestContentFormat).Canonical() != objects.FormatTLV || c.RequestPayloadHex == "" {
			continue
		}
		b, err := hex.DecodeString(c.RequestPayloadHex)
		if err != nil {
			tb.Fatalf("%s: request payload: %v", c.ID, err)
		}
		out = append(out, tlvVector{c.ID + " (request)", c.Path, b})
	}
	return out
}

func TestInterop(t *testing.T) {
	m := models(t)
	vecs := interopVectors(t)
	if len(vecs) < 60 {
		t.Fatalf("only %d TLV vectors; the README counts 64 responses", len(vecs))
	}
	decoded := map[string]objects.Node{}
	for _, v := range vecs {
		root, err := objects.ParsePath(v.path)
		if err != nil {
			t.Fatalf("%s: %v", v.id, err)
		}
		n, err := Codec{}.Decode(root, v.data, m)
		if err != nil {
			t.Errorf("%s: %v", v.id, err)
			continue
		}
		decoded[v.id] = n
		// What we decode we can send back, and it reads the same.
		out, err := Codec{}.Encode(root, n, m)
		if err != nil {
			t.Errorf("%s: re-encode: %v", v.id, err)
			continue
		}
		if back, err := (Codec{}).Decode(root, out, m); err != nil || !objects.EqualNodes(back, n) {
			t.Errorf("%s: re-encoded payload decodes differently: %v", v.id, err)
		}
		// Without a model every vector still decodes, as Opaque values.
		if _, err := (Codec{}).Decode(root, v.data, nil); err != nil {
			t.Errorf("%s: without a model: %v", v.id, err)
		}
	}
	t.Logf("decoded %d of %d TLV vectors with the registry models", len(decoded), len(vecs))

	for _, sc := range spotChecks {
		n, ok := decoded[sc.id]
		if !ok {
			t.Errorf("%s: not among the decoded vectors", sc.id)
			continue
		}
		root := objects.MustParsePath(vecPath(vecs, sc.id))
		v, ok := valueAt(root, n, sc.path)
		if !ok {
			t.Errorf("%s: no value at %s:\n%s", sc.id, sc.path, dump(root, n))
			continue
		}
		if !v.Equal(sc.want) {
			t.Errorf("%s: %s = %v, want %v", sc.id, sc.path, v, sc.want)
		}
	}
}

func vecPath(vecs []tlvVector, id string) string {
	for _, v := range vecs {
		if v.id == id {
			return v.path
		}
	}
	return "/"
}

func valueAt(root objects.Path, n objects.Node, p string) (objects.Value, bool) {
	for _, r := range objects.Flatten(root, n) {
		if r.Path.String() == p {
			return r.Value, true
		}
	}
	return objects.Value{}, false
}

// spotChecks are values known from the captures' payload_decoded dumps
// and the interop README.
var spotChecks = []struct {
	id   string
	path string
	want objects.Value
}{
	{"wakaama-1.1/010-read-3_0_0-tlv", "/3/0/0", objects.StringValue("Open Mobile Alliance")},
	{"wakaama-1.1/002-read-3_0-tlv", "/3/0/15", objects.StringValue("Europe/Berlin")},
	{"wakaama-1.1/002-read-3_0-tlv", "/3/0/7/1", objects.IntegerValue(5000)},
	// Wakaama's Current Time quirk: ~3.16e9, an 8-byte TLV integer.
	{"wakaama-1.1/024-read-3_0_13-tlv", "/3/0/13", objects.TimeSecondsValue(0xbc84747d)},
	{"wakaama-1.1/031-read-3_0_6-tlv", "/3/0/6/1", objects.IntegerValue(5)},
	{"wakaama-1.1/051-read-3-tlv", "/3/0/1", objects.StringValue("Lightweight M2M Client")},
	{"wakaama-1.1/044-read-1_0-tlv", "/1/0/1", objects.IntegerValue(300)},
	// Wakaama's Location holds C floats: 4-byte TLV floats.
	{"wakaama-1.1/058-read-6_0-tlv", "/6/0/0", objects.FloatValue(float64(math.Float32frombits(0x41dfe376)))},
	{"wakaama-1.1/058-read-6_0-tlv", "/6/0/4", objects.OpaqueValue([]byte{0x20, 0, 0, 0, 0xff})},
	{"anjay-1.2/002-read-3_0-tlv", "/3/0/0", objects.StringValue("vec")},
	{"anjay-1.2/002-read-3_0-tlv", "/3/0/2", objects.StringValue("anjay-12")},
	{"anjay-1.2/002-read-3_0-tlv", "/3/0/17", objects.StringValue("")},
	{"anjay-1.2/002-read-3_0-tlv", "/3/0/22/0", objects.ObjlnkValue(objects.ObjLink{Object: 33606, Instance: 0})},
	{"anjay-1.0/038-read-3_0_6_0-tlv", "/3/0/6/0", objects.IntegerValue(0)},
	{"anjay-1.1/044-read-1_1-tlv", "/1/1/1", objects.IntegerValue(120)},
	{"anjay-1.1/044-read-1_1-tlv", "/1/1/19", objects.UnsignedValue(86400)},
	{"anjay-1.1/044-read-1_1-tlv", "/1/1/6", objects.BooleanValue(true)},
	// Anjay sends doubles, and 0.0 as a 4-byte float.
	{"anjay-1.0/058-read-6_0-tlv", "/6/0/0", objects.FloatValue(math.Float64frombits(0x40490aaeea63b689))},
	{"anjay-1.0/058-read-6_0-tlv", "/6/0/2", objects.FloatValue(0)},
	{"anjay-1.2/010-read-3_0_0-tlv", "/3/0/0", objects.StringValue("vec")},
	{"anjay-1.2/084-write-3_0_14-tlv (request)", "/3/0/14", objects.StringValue("+02:00")},
	{"wakaama-1.1/078-write-3_0_15-tlv (request)", "/3/0/15", objects.StringValue("Europe/Berlin")},
}

// The Anjay /3 read is the /3/0 read wrapped in an Object Instance TLV.
func TestInteropObjectWrapsInstance(t *testing.T) {
	var inst, obj []byte
	for _, v := range interopVectors(t) {
		switch v.id {
		case "anjay-1.0/002-read-3_0-tlv":
			inst = v.data
		case "anjay-1.0/051-read-3-tlv":
			obj = v.data
		}
	}
	if inst == nil || obj == nil {
		t.Skip("vectors missing")
	}
	if !bytes.Equal(obj[3:], inst) || obj[0] != 0x08 || int(obj[2]) != len(inst) {
		t.Fatalf("/3 is not /3/0 wrapped:\n% x\n% x", obj, inst)
	}
}
