package registry_test

import (
	"errors"
	"math"
	"testing"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/registry"
)

// TestValueEncoding pins the stable encoding of docs/registry.md.
func TestValueEncoding(t *testing.T) {
	cases := []struct {
		v         objects.Value
		typ, text string
	}{
		{objects.StringValue("Open Mobile Alliance"), "string", "Open Mobile Alliance"},
		{objects.StringValue(""), "string", ""},
		{objects.IntegerValue(-5), "integer", "-5"},
		{objects.IntegerValue(math.MinInt64), "integer", "-9223372036854775808"},
		{objects.UnsignedValue(math.MaxUint64), "unsigned", "18446744073709551615"},
		{objects.FloatValue(0.1), "float", "0.1"},
		{objects.FloatValue(1e300), "float", "1e+300"},
		{objects.FloatValue(math.Inf(1)), "float", "+Inf"},
		{objects.FloatValue(math.Copysign(0, -1)), "float", "-0"},
		{objects.FloatValue(float64(float32(3.3))), "float", "3.299999952316284"},
		{objects.BooleanValue(true), "boolean", "true"},
		{objects.BooleanValue(false), "boolean", "false"},
		{objects.OpaqueValue([]byte{0, 0xff, 0x10}), "opaque", "AP8Q"},
		{objects.OpaqueValue(nil), "opaque", ""},
		{objects.TimeSecondsValue(1700000000), "time", "1700000000"},
		{objects.TimeSecondsValue(-1), "time", "-1"},
		{objects.ObjlnkValue(objects.ObjLink{Object: 3, Instance: 0}), "objlnk", "3:0"},
		{objects.CorelnkValue("</3/0>;ct=110"), "corelnk", "</3/0>;ct=110"},
		{objects.Value{}, "none", ""},
	}
	for _, c := range cases {
		typ, text, err := registry.FormatValue(c.v)
		if err != nil || typ != c.typ || text != c.text {
			t.Fatalf("FormatValue(%v) = %q %q %v, want %q %q", c.v, typ, text, err, c.typ, c.text)
		}
		back, err := registry.ParseValue(typ, text)
		if err != nil {
			t.Fatalf("ParseValue(%q, %q): %v", typ, text, err)
		}
		if back.Type() != c.v.Type() || (!back.Equal(c.v) && !c.v.IsNone()) {
			t.Fatalf("round trip of %v: %v", c.v, back)
		}
		if c.v.Type() == objects.TypeFloat && math.Signbit(back.Float()) != math.Signbit(c.v.Float()) {
			t.Fatalf("sign of %v lost", c.v)
		}
	}
	nan, _ := registry.ParseValue("float", "NaN")
	if !math.IsNaN(nan.Float()) {
		t.Fatal("NaN")
	}
	for _, bad := range [][2]string{
		{"integer", "1.5"}, {"unsigned", "-1"}, {"boolean", "yes"}, {"opaque", "!!"},
		{"objlnk", "3"}, {"string", "\xff"}, {"none", "x"}, {"Integer", "1"}, {"", ""},
	} {
		if _, err := registry.ParseValue(bad[0], bad[1]); !errors.Is(err, registry.ErrCorrupt) {
			t.Fatalf("ParseValue(%q, %q): %v", bad[0], bad[1], err)
		}
	}
	if _, _, err := registry.FormatValue(objects.StringValue("a\x00b")); !errors.Is(err, registry.ErrInvalid) {
		t.Fatalf("NUL in a string: %v", err)
	}
}
