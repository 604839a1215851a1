package tlv

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/lwm2md/lwm2md/objects"
)

// allTypesInstance holds one value of every type in each resource of the
// all-types object, with edge values.
func allTypesInstance(id uint16) *objects.Instance {
	v := objects.IntegerValue
	return &objects.Instance{ID: id, Resources: []objects.Resource{
		objects.NewSingle(0, objects.StringValue("héllo, wörld")),
		objects.NewSingle(1, v(math.MinInt64)),
		objects.NewSingle(2, objects.UnsignedValue(math.MaxUint64)),
		objects.NewSingle(3, objects.FloatValue(math.Pi)),
		objects.NewSingle(4, objects.BooleanValue(true)),
		objects.NewSingle(5, objects.OpaqueValue([]byte{0, 1, 2, 0xff})),
		objects.NewSingle(6, objects.TimeSecondsValue(3162797181)),
		objects.NewSingle(7, objects.ObjlnkValue(objects.ObjLink{Object: 33606, Instance: 0})),
		objects.NewSingle(8, objects.CorelnkValue(`</3/0>;rt="oma.lwm2m"`)),
		objects.NewMultiple(10, map[uint16]objects.Value{0: objects.StringValue(""), 1: objects.StringValue("x"), 310: objects.StringValue(strings.Repeat("long ", 60))}),
		objects.NewMultiple(11, map[uint16]objects.Value{0: v(0), 1: v(-1), 2: v(127), 3: v(128), 4: v(-129), 5: v(32767), 6: v(32768), 7: v(math.MaxInt32), 8: v(math.MinInt32 - 1), 9: v(math.MaxInt64)}),
		objects.NewMultiple(12, map[uint16]objects.Value{0: objects.UnsignedValue(0), 1: objects.UnsignedValue(128), 2: objects.UnsignedValue(1 << 31), 3: objects.UnsignedValue(1 << 63)}),
		objects.NewMultiple(13, map[uint16]objects.Value{0: objects.FloatValue(0), 1: objects.FloatValue(1.5), 2: objects.FloatValue(-1e300), 3: objects.FloatValue(math.Inf(1)), 4: objects.FloatValue(math.SmallestNonzeroFloat64)}),
		objects.NewMultiple(14, map[uint16]objects.Value{0: objects.BooleanValue(false), 1: objects.BooleanValue(true)}),
		objects.NewMultiple(15, map[uint16]objects.Value{0: objects.OpaqueValue(nil), 1: objects.OpaqueValue(bytes.Repeat([]byte{0xa5}, 300))}),
		objects.NewMultiple(16, map[uint16]objects.Value{0: objects.TimeSecondsValue(0), 1: objects.TimeSecondsValue(-1)}),
		objects.NewMultiple(17, map[uint16]objects.Value{0: objects.ObjlnkValue(objects.ObjLink{Object: 65535, Instance: 65535})}),
		objects.NewMultiple(18, map[uint16]objects.Value{0: objects.CorelnkValue("</1>,</3/0>")}),
		objects.NewSingle(5700, objects.FloatValue(21.5)),
	}}
}

// opaqueInstance is what a model-less decode gives back: every value Opaque.
func opaqueInstance(id uint16) *objects.Instance {
	return &objects.Instance{ID: id, Resources: []objects.Resource{
		objects.NewSingle(0, objects.OpaqueValue([]byte("abc"))),
		objects.NewSingle(1, objects.OpaqueValue(nil)),
		objects.NewMultiple(2, map[uint16]objects.Value{0: objects.OpaqueValue([]byte{1}), 65535: objects.OpaqueValue([]byte{2, 3})}),
		objects.NewMultiple(3, nil),
		objects.NewSingle(300, objects.OpaqueValue(bytes.Repeat([]byte{7}, 70000))),
	}}
}

func TestRoundTrip(t *testing.T) {
	all := allTypesInstance(1)
	opq := opaqueInstance(4)
	tests := []struct {
		name string
		root string
		node objects.Node
		m    objects.Models
	}{
		{"object", "/60000", &objects.Object{ID: allTypesID, Instances: []objects.Instance{*allTypesInstance(0), *allTypesInstance(300)}}, localModels},
		{"empty object", "/60000", &objects.Object{ID: allTypesID}, localModels},
		{"instance", "/60000/1", all, localModels},
		{"empty instance", "/60000/1", &objects.Instance{ID: 1}, localModels},
		{"single resource", "/60000/1/3", &all.Resources[3], localModels},
		{"string resource", "/60000/1/0", &all.Resources[0], localModels},
		{"multiple resource", "/60000/1/11", &all.Resources[10], localModels},
		{"empty multiple resource", "/60000/1/13", &objects.Resource{ID: 13, Multiple: true}, localModels},
		{"resource instance", "/60000/1/10/310", &all.Resources[9].Instances[2], localModels},
		{"16-bit resource ID", "/60000/1/5700", &all.Resources[18], localModels},
		{"no model instance", "/9999/4", opq, nil},
		{"no model object", "/9999", &objects.Object{ID: 9999, Instances: []objects.Instance{*opq}}, nil},
		{"no model resource", "/9999/4/2", &opq.Resources[2], nil},
		{"no model resource instance", "/9999/4/2/65535", &opq.Resources[2].Instances[1], nil},
		{"no model 24-bit length", "/9999/4/300", &opq.Resources[4], nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := objects.MustParsePath(tt.root)
			data, err := Codec{}.Encode(root, tt.node, tt.m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Codec{}.Decode(root, data, tt.m)
			if err != nil {
				t.Fatalf("decode % x: %v", data, err)
			}
			if !objects.EqualNodes(tt.node, got) {
				t.Fatalf("round trip changed the node:\nwant\n%s\ngot\n%s", dump(root, tt.node), dump(root, got))
			}
			again, err := Codec{}.Encode(root, got, tt.m)
			if err != nil || !bytes.Equal(again, data) {
				t.Fatalf("re-encoding differs: %v\n% x\n% x", err, data, again)
			}
		})
	}
}

// A value whose type differs from the model is converted on encoding.
func TestEncodeConvertsToModelType(t *testing.T) {
	root := objects.MustParsePath("/60000/0/1")
	data, err := Codec{}.Encode(root, &objects.Resource{ID: 1, Value: objects.StringValue("-2")}, localModels)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0xc1, 0x01, 0xfe}; !bytes.Equal(data, want) {
		t.Fatalf("got % x, want % x", data, want)
	}
	_, err = Codec{}.Encode(root, &objects.Resource{ID: 1, Value: objects.StringValue("two")}, localModels)
	if !errors.Is(err, objects.ErrType) || !strings.Contains(err.Error(), "/60000/0/1") {
		t.Fatalf("got %v, want ErrType naming the path", err)
	}
	_, err = Codec{}.Encode(objects.MustParsePath("/60000/0/2"), &objects.Resource{ID: 2, Value: objects.IntegerValue(-1)}, localModels)
	if !errors.Is(err, objects.ErrRange) {
		t.Fatalf("negative Unsigned: got %v, want ErrRange", err)
	}
}

func TestEncodeErrors(t *testing.T) {
	inst := &objects.Instance{ID: 0}
	tests := []struct {
		name string
		root string
		node objects.Node
		want error
	}{
		{"root path", "/", inst, objects.ErrUnsupported},
		{"kind mismatch", "/3", inst, nil},
		{"ID mismatch", "/3/1", inst, nil},
		{"nil node", "/3/0", nil, nil},
		{"no value", "/3/0/4", &objects.Resource{ID: 4}, objects.ErrType},
		{"invalid UTF-8", "/9999/0/0", &objects.Resource{ID: 0, Value: objects.StringValue("\xff")}, objects.ErrUTF8},
		{"single node for multiple resource", "/60000/0/11", &objects.Resource{ID: 11, Value: objects.IntegerValue(1)}, objects.ErrType},
		{"multiple node for single resource", "/60000/0/1", &objects.Resource{ID: 1, Multiple: true}, objects.ErrType},
		{"instance of a single resource", "/60000/0/1/0", &objects.ResourceInstance{ID: 0, Value: objects.IntegerValue(1)}, objects.ErrType},
		{"value too long", "/9999/0/0", &objects.Resource{ID: 0, Value: objects.OpaqueValue(make([]byte, MaxValueLen+1))}, nil},
		{"container too long", "/9999/0/0", &objects.Resource{ID: 0, Multiple: true, Instances: []objects.ResourceInstance{
			{ID: 0, Value: objects.OpaqueValue(make([]byte, MaxValueLen/2))}, {ID: 1, Value: objects.OpaqueValue(make([]byte, MaxValueLen/2))}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := objects.MustParsePath(tt.root)
			_, err := Codec{}.Encode(root, tt.node, localModels)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), "tlv: ") {
				t.Errorf("error %q does not name the package", err)
			}
		})
	}
}

func TestEncodeInstanceWrapped(t *testing.T) {
	in := &objects.Instance{ID: 7, Resources: []objects.Resource{objects.NewSingle(0, objects.IntegerValue(1))}}
	want := []byte{0x03, 0x07, 0xc1, 0x00, 0x01}
	for _, root := range []string{"/1", "/1/7"} {
		got, err := Codec{}.EncodeInstanceWrapped(objects.MustParsePath(root), in, nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: got % x, %v; want % x", root, got, err, want)
		}
	}
	for _, root := range []string{"/", "/1/8", "/1/7/0"} {
		if _, err := (Codec{}).EncodeInstanceWrapped(objects.MustParsePath(root), in, nil); err == nil {
			t.Errorf("%s: no error", root)
		}
	}
	// The wrapped form decodes at the instance path and, as one instance,
	// at the object path.
	b, _ := Codec{}.EncodeInstanceWrapped(objects.MustParsePath("/1"), in, nil)
	for _, root := range []string{"/1/7", "/1"} {
		if _, err := (Codec{}).Decode(objects.MustParsePath(root), b, nil); err != nil {
			t.Errorf("decode at %s: %v", root, err)
		}
	}
}

// The liberal decodings the Codec documents.
func TestDecodeShapes(t *testing.T) {
	one := &objects.Instance{ID: 0, Resources: []objects.Resource{objects.NewSingle(1, objects.IntegerValue(5))}}
	multi := &objects.Resource{ID: 11, Multiple: true, Instances: []objects.ResourceInstance{{ID: 0, Value: objects.IntegerValue(1)}, {ID: 2, Value: objects.IntegerValue(3)}}}
	tests := []struct {
		name string
		root string
		hex  []byte
		want objects.Node
	}{
		{"instance, bare resources", "/60000/0", []byte{0xc1, 0x01, 0x05}, one},
		{"instance, wrapped", "/60000/0", []byte{0x03, 0x00, 0xc1, 0x01, 0x05}, one},
		{"instance, wrapped with 16-bit ID and 8-bit length", "/60000/0", []byte{0x28, 0x00, 0x00, 0x03, 0xc1, 0x01, 0x05}, one},
		{"object, bare resources as instance 0", "/60000", []byte{0xc1, 0x01, 0x05}, &objects.Object{ID: allTypesID, Instances: []objects.Instance{*one}}},
		{"object, empty", "/60000", nil, &objects.Object{ID: allTypesID}},
		{"instance, empty", "/60000/0", nil, &objects.Instance{ID: 0}},
		{"multiple resource", "/60000/0/11", []byte{0x86, 0x0b, 0x41, 0x00, 0x01, 0x41, 0x02, 0x03}, multi},
		{"bare resource instances", "/60000/0/11", []byte{0x41, 0x00, 0x01, 0x41, 0x02, 0x03}, multi},
		{"resource instances out of order", "/60000/0/11", []byte{0x41, 0x02, 0x03, 0x41, 0x00, 0x01}, multi},
		{"empty payload, multiple resource", "/60000/0/11", nil, &objects.Resource{ID: 11, Multiple: true}},
		{"resource instance", "/60000/0/11/2", []byte{0x41, 0x02, 0x03}, &multi.Instances[1]},
		{"resource instance wrapped", "/60000/0/11/2", []byte{0x83, 0x0b, 0x41, 0x02, 0x03}, &multi.Instances[1]},
		{"16-bit length field", "/60000/0/1", []byte{0xd0, 0x01, 0x00, 0x01, 0x05}, &one.Resources[0]},
		{"24-bit length field", "/60000/0/1", []byte{0xd8, 0x01, 0x00, 0x00, 0x01, 0x05}, &one.Resources[0]},
		{"8-bit length field, ignored bits 2-0", "/60000/0/1", []byte{0xcf, 0x01, 0x01, 0x05}, &one.Resources[0]},
		{"8-byte integer", "/60000/0/1", []byte{0xc8, 0x01, 0x08, 0, 0, 0, 0, 0, 0, 0, 5}, &one.Resources[0]},
		{"4-byte float", "/60000/0/3", []byte{0xc4, 0x03, 0x3f, 0xc0, 0, 0}, &objects.Resource{ID: 3, Value: objects.FloatValue(1.5)}},
		{"8-byte float", "/60000/0/3", []byte{0xc8, 0x03, 0x08, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}, &objects.Resource{ID: 3, Value: objects.FloatValue(1.5)}},
		{"unsigned 8 bytes top bit", "/60000/0/2", []byte{0xc8, 0x02, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, &objects.Resource{ID: 2, Value: objects.UnsignedValue(math.MaxUint64)}},
		{"unsigned 1 byte top bit", "/60000/0/2", []byte{0xc1, 0x02, 0xff}, &objects.Resource{ID: 2, Value: objects.UnsignedValue(255)}},
		{"unknown resource as opaque", "/60000/0/9", []byte{0xc1, 0x09, 0xff}, &objects.Resource{ID: 9, Value: objects.OpaqueValue([]byte{0xff})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := objects.MustParsePath(tt.root)
			got, err := Codec{}.Decode(root, tt.hex, localModels)
			if err != nil {
				t.Fatal(err)
			}
			if !objects.EqualNodes(got, tt.want) || objects.NodeID(got) != objects.NodeID(tt.want) {
				t.Fatalf("want\n%s\ngot\n%s", dump(root, tt.want), dump(root, got))
			}
		})
	}
}

// Decoded values must not alias the payload, which the caller may reuse.
func TestDecodeCopiesOpaque(t *testing.T) {
	data := []byte{0xc2, 0x05, 0xaa, 0xbb}
	n, err := Codec{}.Decode(objects.MustParsePath("/60000/0/5"), data, localModels)
	if err != nil {
		t.Fatal(err)
	}
	data[2] = 0
	if got := n.(*objects.Resource).Value.Bytes(); !bytes.Equal(got, []byte{0xaa, 0xbb}) {
		t.Fatalf("value changed with the payload: % x", got)
	}
}
