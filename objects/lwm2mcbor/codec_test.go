package lwm2mcbor

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/objects"
)

var codec = Codec{}

func roundTrip(t *testing.T, root objects.Path, n objects.Node, m objects.Models) []byte {
	t.Helper()
	b, err := codec.Encode(root, n, m)
	if err != nil {
		t.Fatalf("Encode(%s): %v", root, err)
	}
	got, err := codec.Decode(root, b, m)
	if err != nil {
		t.Fatalf("Decode(%s, %x): %v", root, b, err)
	}
	if !objects.EqualNodes(n, got) {
		t.Fatalf("round trip of %s through %x:\n got %+v\nwant %+v", root, b, got, n)
	}
	return b
}

func TestRoundTripNodeKinds(t *testing.T) {
	in0, in1 := fullInstance(0), fullInstance(7)
	obj := &objects.Object{ID: 1000, Instances: []objects.Instance{in0, in1}}
	withEmpty := fullInstance(2)
	withEmpty.Resources[10].Instances = nil // an empty multiple resource inside
	tests := []struct {
		name string
		root string
		node objects.Node
	}{
		{"object", "/1000", obj},
		{"object with one instance", "/1000", &objects.Object{ID: 1000, Instances: []objects.Instance{in1}}},
		{"instance", "/1000/7", &in1},
		{"instance with an empty multiple resource", "/1000/2", &withEmpty},
		{"empty object", "/1000", &objects.Object{ID: 1000}},
		{"empty instance", "/1000/3", &objects.Instance{ID: 3}},
		{"single resource", "/1000/0/3", &objects.Resource{ID: 3, Value: objects.FloatValue(2.5)}},
		{"multiple resource", "/1000/0/11", &in0.Resources[10]},
		{"empty multiple resource", "/1000/0/12", &objects.Resource{ID: 12, Multiple: true}},
		{"resource instance", "/1000/0/11/7", &objects.ResourceInstance{ID: 7, Value: objects.IntegerValue(-1)}},
		{"device instance", "/3/0", deviceInstance()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := objects.Models(testModels)
			if tc.root[1] == '3' {
				m = shared.Registry(t)
			}
			roundTrip(t, objects.MustParsePath(tc.root), tc.node, m)
		})
	}
	// The empty multiple resource survives, which EqualNodes cannot see.
	b := roundTrip(t, objects.MustParsePath("/1000/2"), &withEmpty, testModels)
	n, _ := codec.Decode(objects.MustParsePath("/1000/2"), b, testModels)
	if r := n.(*objects.Instance).Resource(11); r == nil || !r.Multiple || len(r.Instances) != 0 {
		t.Errorf("empty multiple resource 11 came back as %+v", r)
	}
	// Without a model, an empty map at a resource is a multiple resource.
	n, err := codec.Decode(objects.MustParsePath("/9999/0/1"), mustHex(t, "a1 8319270f0001 a0"), nil)
	if err != nil || !n.(*objects.Resource).Multiple {
		t.Errorf("empty map at /9999/0/1: %+v, %v", n, err)
	}
}

func TestRoundTripEveryType(t *testing.T) {
	for i, typ := range allTypes {
		for k, v := range samples[typ] {
			t.Run(fmt.Sprintf("%v/%d", typ, k), func(t *testing.T) {
				roundTrip(t, objects.NewPath(1000, 0, uint16(i)), &objects.Resource{ID: uint16(i), Value: v}, testModels)
				roundTrip(t, objects.NewPath(1000, 0, uint16(10+i), 4), &objects.ResourceInstance{ID: 4, Value: v}, testModels)
			})
		}
	}
	// NaN: EqualNodes never matches it, so compare by hand.
	b, err := codec.Encode(objects.NewPath(1000, 0, 3), &objects.Resource{ID: 3, Value: objects.FloatValue(math.NaN())}, testModels)
	if err != nil || hex.EncodeToString(b) != "a1831903e80003f97e00" {
		t.Fatalf("NaN: %x, %v", b, err)
	}
	n, err := codec.Decode(objects.NewPath(1000, 0, 3), b, testModels)
	if err != nil || !math.IsNaN(n.(*objects.Resource).Value.Float()) {
		t.Errorf("NaN came back as %v, %v", n, err)
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	clean := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' && s[i] != '\n' && s[i] != '\t' {
			clean = append(clean, s[i])
		}
	}
	b, err := hex.DecodeString(string(clean))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodeWireForm(t *testing.T) {
	res := func(id uint16, v objects.Value) *objects.Resource { return &objects.Resource{ID: id, Value: v} }
	multi := func(id uint16, vals map[uint16]objects.Value) *objects.Resource {
		r := objects.NewMultiple(id, vals)
		return &r
	}
	tests := []struct {
		root string
		node objects.Node
		want string // hex
	}{
		// {[3, 0, 0]: "vec"}: the request path as one array key, like Anjay.
		{"/3/0/0", res(0, objects.StringValue("vec")), "a1 83030000 63766563"},
		// {[3, 0, 6, 0]: 0}
		{"/3/0/6/0", &objects.ResourceInstance{ID: 0, Value: objects.IntegerValue(0)}, "a1 8403000600 00"},
		// {[3, 0, 6]: {0: 1, 1: 5}}
		{"/3/0/6", multi(6, map[uint16]objects.Value{0: objects.IntegerValue(1), 1: objects.IntegerValue(5)}), "a1 83030006 a2 0001 0105"},
		// A single instance folds into the key: {[3, 0, 11, 0]: 0}.
		{"/3/0/11", multi(11, map[uint16]objects.Value{0: objects.IntegerValue(0)}), "a1 840300 0b00 00"},
		// {3: {}} and {[3, 0]: {}}
		{"/3", &objects.Object{ID: 3}, "a1 03 a0"},
		{"/3/0", &objects.Instance{ID: 0}, "a1 820300 a0"},
		// {[3, 0]: {9: 100, 13: 1367491215, [22, 0]: "33606:0"}}: Time untagged, Objlnk as text.
		{"/3/0", &objects.Instance{ID: 0, Resources: []objects.Resource{
			objects.NewSingle(9, objects.IntegerValue(100)),
			objects.NewSingle(13, objects.TimeSecondsValue(1367491215)),
			objects.NewMultiple(22, map[uint16]objects.Value{0: objects.ObjlnkValue(objects.ObjLink{Object: 33606})}),
		}}, "a1 820300 a3 091864 0d1a5182428f 82160067 33333630363a30"},
		// Floats in the shortest exact width, opaque as a byte string.
		{"/6/0", &objects.Instance{ID: 0, Resources: []objects.Resource{
			objects.NewSingle(0, objects.FloatValue(50.083463)),
			objects.NewSingle(1, objects.FloatValue(float64(float32(27.98606491088867)))), // Wakaama stores C floats
			objects.NewSingle(2, objects.FloatValue(0)),
			objects.NewSingle(3, objects.FloatValue(-2.5)),
			objects.NewSingle(4, objects.OpaqueValue([]byte{0, 0xff})),
		}}, "a1 820600 a5 00fb40490aaeea63b689 01fa41dfe376 02f90000 03f9c100 044200ff"},
		// Integers in the shortest head; negative, unsigned beyond int64, Boolean.
		{"/1000/0", &objects.Instance{ID: 0, Resources: []objects.Resource{
			objects.NewSingle(1, objects.IntegerValue(-500)),
			objects.NewSingle(2, objects.UnsignedValue(math.MaxUint64)),
			objects.NewSingle(4, objects.BooleanValue(true)),
		}}, "a1 821903e800 a3 013901f3 021bffffffffffffffff 04f5"},
	}
	for _, tc := range tests {
		got, err := codec.Encode(objects.MustParsePath(tc.root), tc.node, nil)
		if want := mustHex(t, tc.want); err != nil || string(got) != string(want) {
			t.Errorf("Encode(%s) = %x, %v; want %x", tc.root, got, err, want)
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	tests := []struct {
		name string
		root string
		node objects.Node
	}{
		{"wrong kind", "/3/0", &objects.Resource{ID: 0}},
		{"wrong ID", "/3/0", &objects.Instance{ID: 1}},
		{"nil node", "/3/0", (*objects.Object)(nil)},
		{"root path", "/", &objects.Object{ID: 3}},
		{"no value", "/3/0/0", &objects.Resource{ID: 0}},
		{"no value in an instance", "/3/0/6/0", &objects.ResourceInstance{ID: 0}},
		{"invalid UTF-8", "/3/0/0", &objects.Resource{ID: 0, Value: objects.StringValue("\xff")}},
		{"two resources with one ID", "/3/0", &objects.Instance{ID: 0, Resources: []objects.Resource{
			objects.NewSingle(1, objects.IntegerValue(1)), objects.NewSingle(1, objects.IntegerValue(2))}}},
	}
	for _, tc := range tests {
		if b, err := codec.Encode(objects.MustParsePath(tc.root), tc.node, nil); err == nil {
			t.Errorf("%s: Encode = %x, want an error", tc.name, b)
		}
	}
}

// TestDecodeLiberal feeds the forms a sender may choose: indefinite
// lengths, keys split or nested in any way, every float width, chunked
// strings, tags 1 and 4.
func TestDecodeLiberal(t *testing.T) {
	reg := shared.Registry(t)
	tests := []struct {
		name string
		root string
		data string
		want map[string]objects.Value
	}{
		{"nested maps", "/3/0", "a1 03 a1 00 a1 09 1864", map[string]objects.Value{"/3/0/9": objects.IntegerValue(100)}},
		{"array keys of one", "/3/0", "a1 8103 a1 8100 a1 8109 1864", map[string]objects.Value{"/3/0/9": objects.IntegerValue(100)}},
		{"indefinite everything", "/3/0", "bf 9f0300ff bf 9f09ff 1864 ff ff", map[string]objects.Value{"/3/0/9": objects.IntegerValue(100)}},
		{"split keys", "/3/0", "a2 820300 a1 09 1864 83030010 6155", map[string]objects.Value{"/3/0/9": objects.IntegerValue(100), "/3/0/16": objects.StringValue("U")}},
		{"same prefix twice", "/3/0", "a2 820300 a1 09 1864 03 a1 00 a1 10 6155", map[string]objects.Value{"/3/0/9": objects.IntegerValue(100), "/3/0/16": objects.StringValue("U")}},
		{"half float", "/6/0/0", "a1 83060000 f93e00", map[string]objects.Value{"/6/0/0": objects.FloatValue(1.5)}},
		{"single float zero", "/6/0/0", "a1 83060000 fa00000000", map[string]objects.Value{"/6/0/0": objects.FloatValue(0)}},
		{"integer for a float", "/6/0/0", "a1 83060000 18ff", map[string]objects.Value{"/6/0/0": objects.FloatValue(255)}},
		{"float for an integer", "/3/0/9", "a1 83030009 fb4059000000000000", map[string]objects.Value{"/3/0/9": objects.IntegerValue(100)}},
		{"tag 1 time", "/3/0/13", "a1 8303000d c11a5182428f", map[string]objects.Value{"/3/0/13": objects.TimeSecondsValue(1367491215)}},
		{"tag 1 float time", "/3/0/13", "a1 8303000d c1fb41d46090a3c00000", map[string]objects.Value{"/3/0/13": objects.TimeSecondsValue(1367491215)}},
		{"decimal fraction", "/6/0/0", "a1 83060000 c48220182d", map[string]objects.Value{"/6/0/0": objects.FloatValue(4.5)}},
		{"chunked text", "/3/0/0", "a1 83030000 7f 6276 65 6163 ff", map[string]objects.Value{"/3/0/0": objects.StringValue("vec")}},
		{"chunked bytes", "/6/0/4", "a1 83060004 5f 4101 42 0203 ff", map[string]objects.Value{"/6/0/4": objects.OpaqueValue([]byte{1, 2, 3})}},
		{"text for an object link", "/3/0/22/0", "a1 8403001600 6733333630363a30", map[string]objects.Value{"/3/0/22/0": objects.ObjlnkValue(objects.ObjLink{Object: 33606})}},
		{"bytes for a string", "/3/0/0", "a1 83030000 43766563", map[string]objects.Value{"/3/0/0": objects.StringValue("vec")}},
		{"big unsigned", "/3/0/9", "a1 83030009 1b7fffffffffffffff", map[string]objects.Value{"/3/0/9": objects.IntegerValue(math.MaxInt64)}},
		{"negative", "/3/0/9", "a1 83030009 3b7fffffffffffffff", map[string]objects.Value{"/3/0/9": objects.IntegerValue(math.MinInt64)}},
		{"long heads", "/3/0/9", "a1 83 1803 190000 1a00000009 1b0000000000000064", map[string]objects.Value{"/3/0/9": objects.IntegerValue(100)}},
		{"ID 65535", "/65535/65535/65535", "a1 83 19ffff 19ffff 19ffff 01", map[string]objects.Value{"/65535/65535/65535": objects.IntegerValue(1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := objects.MustParsePath(tc.root)
			n, err := codec.Decode(root, mustHex(t, tc.data), reg)
			if err != nil {
				t.Fatal(err)
			}
			recs := objects.Flatten(root, n)
			if len(recs) != len(tc.want) {
				t.Fatalf("got %v", recs)
			}
			for _, r := range recs {
				if w := tc.want[r.Path.String()]; !r.Value.Equal(w) {
					t.Errorf("%s = %v, want %v", r.Path, r.Value, w)
				}
			}
		})
	}
}

// TestDecodeWithoutModel checks the typing by CBOR type alone.
func TestDecodeWithoutModel(t *testing.T) {
	// {[9999, 0]: {0: 5, 1: -5, 2: 2^64-1, 3: 1.5, 4: true, 5: "x", 6: h'01', 7: 1(5)}}
	data := mustHex(t, "a1 8219270f00 a8 0005 0124 021bffffffffffffffff 03f93e00 04f5 056178 064101 07c105")
	n, err := codec.Decode(objects.MustParsePath("/9999/0"), data, shared.Registry(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []objects.Value{
		objects.IntegerValue(5), objects.IntegerValue(-5), objects.UnsignedValue(math.MaxUint64), objects.FloatValue(1.5),
		objects.BooleanValue(true), objects.StringValue("x"), objects.OpaqueValue([]byte{1}), objects.TimeSecondsValue(5),
	}
	for i, r := range objects.Flatten(objects.MustParsePath("/9999/0"), n) {
		if !r.Value.Equal(want[i]) {
			t.Errorf("%s = %v, want %v", r.Path, r.Value, want[i])
		}
	}
}

func TestRecords(t *testing.T) {
	p := objects.MustParsePath
	recs := []objects.Record{
		{Path: p("/3/0/0"), Value: objects.StringValue("x")},
		{Path: p("/3/0/9"), Value: objects.IntegerValue(100)},
		{Path: p("/3/0/6/1"), Value: objects.IntegerValue(5)},
		{Path: p("/1/0/1"), Value: objects.IntegerValue(300)},
		{Path: p("/5/0/0"), Value: objects.OpaqueValue([]byte{1, 2})},
	}
	b, err := codec.EncodeRecords(recs, shared.Registry(t))
	if err != nil {
		t.Fatal(err)
	}
	// {[1, 0, 1]: 300, [3, 0]: {0: "x", [6, 1]: 5, 9: 100}, [5, 0, 0]: h'0102'}
	if want := mustHex(t, "a3 8301000119012c 820300a3 006178 82060105 091864 83050000420102"); string(b) != string(want) {
		t.Errorf("EncodeRecords = %x\nwant %x", b, want)
	}
	got, err := codec.DecodeRecords(b, shared.Registry(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("got %v", got)
	}
	// The encoder sorts by path; compare as sets.
	for _, r := range recs {
		found := false
		for _, g := range got {
			found = found || (g.Path == r.Path && g.Value.Equal(r.Value) && g.Time == 0)
		}
		if !found {
			t.Errorf("record %v %v lost: %v", r.Path, r.Value, got)
		}
	}

	// Paths only (a Read-Composite request) as nulls.
	b, err = codec.EncodeRecords([]objects.Record{{Path: p("/3/0/0")}, {Path: p("/1/0")}}, nil)
	if want := mustHex(t, "a2 820100 f6 83030000 f6"); err != nil || string(b) != string(want) {
		t.Errorf("paths only: %x, %v; want %x", b, err, want)
	}
	got, err = codec.DecodeRecords(b, nil)
	if err != nil || len(got) != 2 || !got[0].Value.IsNone() || got[0].Path != p("/1/0") {
		t.Errorf("paths only decoded to %v, %v", got, err)
	}

	for name, bad := range map[string][]objects.Record{
		"timestamp":      {{Path: p("/3/0/0"), Value: objects.StringValue("x"), Time: 5}},
		"twice":          {{Path: p("/3/0/0"), Value: objects.StringValue("x")}, {Path: p("/3/0/0"), Value: objects.StringValue("y")}},
		"value above":    {{Path: p("/3/0/6"), Value: objects.IntegerValue(1)}, {Path: p("/3/0/6/0"), Value: objects.IntegerValue(1)}},
		"value too high": {{Path: p("/3/0"), Value: objects.IntegerValue(1)}},
		"root":           {{Path: objects.RootPath}},
	} {
		if b, err := codec.EncodeRecords(bad, nil); err == nil {
			t.Errorf("%s: EncodeRecords = %x, want an error", name, b)
		} else if name == "timestamp" && !errors.Is(err, objects.ErrUnsupported) {
			t.Errorf("timestamp: %v is not ErrUnsupported", err)
		}
	}
	if b, err := codec.EncodeRecords(nil, nil); err != nil || string(b) != "\xa0" {
		t.Errorf("no records: %x, %v", b, err)
	}
}
