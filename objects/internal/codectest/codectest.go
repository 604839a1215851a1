// Package codectest holds test fixtures the LwM2M JSON and LwM2M CBOR
// codec tests share: a model with a resource of every type, edge values
// of every type, the spec's Device instance, and comparisons that know
// what a format can and cannot keep.
package codectest

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lwm2md/lwm2md/objects"
)

// Models is an objects.Models for tests.
type Models map[uint16]*objects.ObjectDef

func (f Models) Object(id uint16) *objects.ObjectDef { return f[id] }

// AllTypes lists every value type; object 1000 has a single resource of
// each at IDs 0-8 and a multiple one at IDs 10-18.
var AllTypes = []objects.Type{
	objects.TypeString, objects.TypeInteger, objects.TypeUnsigned, objects.TypeFloat, objects.TypeBoolean,
	objects.TypeOpaque, objects.TypeTime, objects.TypeObjlnk, objects.TypeCorelnk,
}

// TestModels returns the model of object 1000.
func TestModels() Models {
	def := &objects.ObjectDef{ID: 1000, Name: "Test", Multiple: true}
	for i, t := range AllTypes {
		def.Resources = append(def.Resources, objects.ResourceDef{ID: uint16(i), Name: t.String(), Type: t, Operations: objects.OpRead | objects.OpWrite})
	}
	for i, t := range AllTypes {
		def.Resources = append(def.Resources, objects.ResourceDef{ID: uint16(10 + i), Name: t.String() + "s", Type: t, Multiple: true, Operations: objects.OpRead})
	}
	return Models{1000: def}
}

// Samples returns edge values of every type, with extra floats added
// (for formats that carry infinities and every width).
func Samples(extraFloats ...objects.Value) map[objects.Type][]objects.Value {
	m := map[objects.Type][]objects.Value{
		objects.TypeString: {
			objects.StringValue(""), objects.StringValue("Open Mobile Alliance"),
			objects.StringValue("quote\" back\\ slash/ ctrl\x01\x1f nl\n tab\t"), objects.StringValue("ünïcødé ☃ 😀 \u2028"),
		},
		objects.TypeInteger: {
			objects.IntegerValue(0), objects.IntegerValue(-1), objects.IntegerValue(math.MinInt64),
			objects.IntegerValue(math.MaxInt64), objects.IntegerValue(1<<53 + 1),
		},
		objects.TypeUnsigned: {objects.UnsignedValue(0), objects.UnsignedValue(math.MaxUint64), objects.UnsignedValue(1 << 63)},
		objects.TypeFloat: {
			objects.FloatValue(0), objects.FloatValue(-0.5), objects.FloatValue(math.Pi), objects.FloatValue(1e300),
			objects.FloatValue(5e-324), objects.FloatValue(8495), objects.FloatValue(-1e-7), objects.FloatValue(27.98606491088867),
			objects.FloatValue(math.MaxFloat64), objects.FloatValue(1e21),
		},
		objects.TypeBoolean: {objects.BooleanValue(true), objects.BooleanValue(false)},
		objects.TypeOpaque: {
			objects.OpaqueValue([]byte{}), objects.OpaqueValue([]byte{0, 1, 2, 0xfb, 0xff}),
			objects.OpaqueValue([]byte(strings.Repeat("\xfe\x00", 150))),
		},
		objects.TypeTime:    {objects.TimeSecondsValue(0), objects.TimeSecondsValue(-1), objects.TimeSecondsValue(1367491215), objects.TimeSecondsValue(1 << 40)},
		objects.TypeObjlnk:  {objects.ObjlnkValue(objects.ObjLink{}), objects.ObjlnkValue(objects.ObjLink{Object: 65535, Instance: 65535}), objects.ObjlnkValue(objects.ObjLink{Object: 33606})},
		objects.TypeCorelnk: {objects.CorelnkValue("</3/0>;ct=11543,</1/0>"), objects.CorelnkValue("")},
	}
	m[objects.TypeFloat] = append(m[objects.TypeFloat], extraFloats...)
	return m
}

// FullInstance holds every sample: each single resource has the first
// sample of its type, each multiple resource all of them.
func FullInstance(id uint16, samples map[objects.Type][]objects.Value) objects.Instance {
	in := objects.Instance{ID: id}
	for i, t := range AllTypes {
		in.Resources = append(in.Resources, objects.NewSingle(uint16(i), samples[t][0]))
	}
	for i, t := range AllTypes {
		vals := map[uint16]objects.Value{}
		for k, v := range samples[t] {
			vals[uint16(k*7)] = v
		}
		in.Resources = append(in.Resources, objects.NewMultiple(uint16(10+i), vals))
	}
	return in
}

// DeviceInstance is the Device object instance of the LwM2M 1.0 spec
// examples (§6.4.3, §6.4.4), used by the golden files and benchmarks.
func DeviceInstance() *objects.Instance {
	return &objects.Instance{ID: 0, Resources: []objects.Resource{
		objects.NewSingle(0, objects.StringValue("Open Mobile Alliance")),
		objects.NewSingle(1, objects.StringValue("Lightweight M2M Client")),
		objects.NewSingle(2, objects.StringValue("345000123")),
		objects.NewSingle(3, objects.StringValue("1.0")),
		objects.NewMultiple(6, map[uint16]objects.Value{0: objects.IntegerValue(1), 1: objects.IntegerValue(5)}),
		objects.NewMultiple(7, map[uint16]objects.Value{0: objects.IntegerValue(3800), 1: objects.IntegerValue(5000)}),
		objects.NewMultiple(8, map[uint16]objects.Value{0: objects.IntegerValue(125), 1: objects.IntegerValue(900)}),
		objects.NewSingle(9, objects.IntegerValue(100)),
		objects.NewSingle(10, objects.IntegerValue(15)),
		objects.NewMultiple(11, map[uint16]objects.Value{0: objects.IntegerValue(0)}),
		objects.NewSingle(13, objects.TimeSecondsValue(1367491215)),
		objects.NewSingle(14, objects.StringValue("+02:00")),
		objects.NewSingle(16, objects.StringValue("U")),
	}}
}

// SameValue is Value.Equal, except that NaN equals NaN and a value the
// format cannot type on its own (a Time read back as an Integer when the
// model does not know the resource) equals its conversion.
func SameValue(a, b objects.Value) bool {
	if a.Equal(b) {
		return true
	}
	if a.Type() == objects.TypeFloat && b.Type() == objects.TypeFloat && math.IsNaN(a.Float()) && math.IsNaN(b.Float()) {
		return true
	}
	c, err := b.Convert(a.Type())
	return err == nil && a.Equal(c)
}

// SameNodes compares two nodes value by value with SameValue.
func SameNodes(t testing.TB, a, b objects.Node) bool {
	t.Helper()
	if objects.NodeDepth(a) != objects.NodeDepth(b) || objects.NodeID(a) != objects.NodeID(b) {
		t.Errorf("node kinds differ: %T %d vs %T %d", a, objects.NodeID(a), b, objects.NodeID(b))
		return false
	}
	fa, fb := objects.Flatten(Placeholder(a), a), objects.Flatten(Placeholder(b), b)
	if len(fa) != len(fb) {
		t.Errorf("%d values vs %d", len(fa), len(fb))
		return false
	}
	for i := range fa {
		if fa[i].Path != fb[i].Path || !SameValue(fa[i].Value, fb[i].Value) {
			t.Errorf("%s=%v vs %s=%v", fa[i].Path, fa[i].Value, fb[i].Path, fb[i].Value)
			return false
		}
	}
	return true
}

// Placeholder is a path of n's depth ending in n's ID.
func Placeholder(n objects.Node) objects.Path {
	ids := make([]uint16, objects.NodeDepth(n))
	ids[len(ids)-1] = objects.NodeID(n)
	return objects.NewPath(ids...)
}

// DecodeErrorOf returns the *objects.DecodeError in err or fails.
func DecodeErrorOf(t *testing.T, err error) *objects.DecodeError {
	t.Helper()
	var de *objects.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *objects.DecodeError", err, err)
	}
	return de
}

// ReadFile reads testdata/name.
func ReadFile(name string) ([]byte, error) { return os.ReadFile(filepath.Join("testdata", name)) }
