package tlv

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/lwm2md/lwm2md/objects"
)

func TestValueEncodings(t *testing.T) {
	tests := []struct {
		v    objects.Value
		want []byte
	}{
		{objects.IntegerValue(0), []byte{0}},
		{objects.IntegerValue(-1), []byte{0xff}},
		{objects.IntegerValue(127), []byte{0x7f}},
		{objects.IntegerValue(128), []byte{0x00, 0x80}},
		{objects.IntegerValue(-128), []byte{0x80}},
		{objects.IntegerValue(-129), []byte{0xff, 0x7f}},
		{objects.IntegerValue(32768), []byte{0, 0, 0x80, 0}},
		{objects.IntegerValue(math.MaxInt32 + 1), []byte{0, 0, 0, 0, 0x80, 0, 0, 0}},
		{objects.IntegerValue(math.MinInt64), []byte{0x80, 0, 0, 0, 0, 0, 0, 0}},
		{objects.TimeSecondsValue(1367491215), []byte{0x51, 0x82, 0x42, 0x8f}},
		{objects.TimeSecondsValue(3162797181), []byte{0, 0, 0, 0, 0xbc, 0x84, 0x74, 0x7d}},
		// Unsigned: the next width when the top bit would be set.
		{objects.UnsignedValue(127), []byte{0x7f}},
		{objects.UnsignedValue(200), []byte{0x00, 0xc8}},
		{objects.UnsignedValue(0xffff), []byte{0, 0, 0xff, 0xff}},
		{objects.UnsignedValue(0x80000000), []byte{0, 0, 0, 0, 0x80, 0, 0, 0}},
		{objects.UnsignedValue(math.MaxUint64), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		// Float: 4 bytes when exact as float32.
		{objects.FloatValue(0), []byte{0, 0, 0, 0}},
		{objects.FloatValue(1.5), []byte{0x3f, 0xc0, 0, 0}},
		{objects.FloatValue(math.Inf(-1)), []byte{0xff, 0x80, 0, 0}},
		{objects.FloatValue(0.1), []byte{0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a}},
		{objects.BooleanValue(true), []byte{1}},
		{objects.BooleanValue(false), []byte{0}},
		{objects.StringValue(""), nil},
		{objects.StringValue("U"), []byte("U")},
		{objects.CorelnkValue("</1>"), []byte("</1>")},
		{objects.OpaqueValue([]byte{0, 0xff}), []byte{0, 0xff}},
		{objects.ObjlnkValue(objects.ObjLink{Object: 0x8346, Instance: 1}), []byte{0x83, 0x46, 0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.v.String(), func(t *testing.T) {
			got, err := AppendValue(nil, tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("got % x, want % x", got, tt.want)
			}
			if n := valueLen(tt.v); n != len(got) {
				t.Fatalf("valueLen %d, wrote %d", n, len(got))
			}
			back, err := DecodeValue(tt.v.Type(), got)
			if err != nil || !back.Equal(tt.v) {
				t.Fatalf("decodes to %v, %v", back, err)
			}
		})
	}
}

// Readers take every width the spec allows, not only the shortest.
func TestDecodeValueWidths(t *testing.T) {
	tests := []struct {
		t    objects.Type
		in   []byte
		want objects.Value
	}{
		{objects.TypeInteger, []byte{0, 0, 0, 0, 0, 0, 0, 1}, objects.IntegerValue(1)},
		{objects.TypeInteger, []byte{0xff, 0xfe}, objects.IntegerValue(-2)},
		{objects.TypeInteger, []byte{0x80, 0, 0, 0}, objects.IntegerValue(math.MinInt32)},
		{objects.TypeUnsigned, []byte{0xff, 0xfe}, objects.UnsignedValue(0xfffe)},
		{objects.TypeTime, []byte{0x6b, 0x02, 0x32, 0x18}, objects.TimeSecondsValue(0x6b023218)},
		{objects.TypeFloat, []byte{0x40, 0x49, 0x0a, 0xae, 0xea, 0x63, 0xb6, 0x89}, objects.FloatValue(math.Float64frombits(0x40490aaeea63b689))},
		{objects.TypeFloat, []byte{0x41, 0xdf, 0xe3, 0x76}, objects.FloatValue(float64(math.Float32frombits(0x41dfe376)))},
		{objects.TypeNone, []byte{1, 2}, objects.OpaqueValue([]byte{1, 2})},
		{objects.TypeNone, nil, objects.OpaqueValue(nil)},
	}
	for _, tt := range tests {
		got, err := DecodeValue(tt.t, tt.in)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("DecodeValue(%v, % x) = %v, %v; want %v", tt.t, tt.in, got, err, tt.want)
		}
	}
	if _, err := DecodeValue(objects.Type(99), nil); !errors.Is(err, objects.ErrType) {
		t.Errorf("unknown type: %v", err)
	}
	if _, err := AppendValue(nil, objects.Value{}); !errors.Is(err, objects.ErrType) {
		t.Errorf("no value: %v", err)
	}
}
