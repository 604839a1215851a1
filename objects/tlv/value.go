package tlv

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/lwm2md/lwm2md/objects"
)

// DecodeValue reads a TLV value field as type t (LwM2M Core 1.0 §6.4.3,
// 1.1 §7.4.3, and the data types of Appendix C):
//
//   - Integer and Time: 1, 2, 4 or 8 bytes, two's complement, big-endian;
//   - Unsigned Integer: 1, 2, 4 or 8 bytes, big-endian;
//   - Float: 4 or 8 bytes IEEE 754, big-endian;
//   - Boolean: one byte, 0 or 1;
//   - String and Corelnk: UTF-8;
//   - Objlnk: object ID then instance ID, 16 bits each;
//   - Opaque, and TypeNone (type unknown): the bytes as they are, copied.
//
// Errors wrap objects.ErrType for a length or byte the type does not
// allow, objects.ErrRange for an integer wider than 64 bits and
// objects.ErrUTF8 for a string that is not UTF-8.
func DecodeValue(t objects.Type, b []byte) (objects.Value, error) {
	switch t {
	case objects.TypeInteger, objects.TypeTime:
		n, err := decodeInt(t, b)
		if err != nil {
			return objects.Value{}, err
		}
		if t == objects.TypeTime {
			return objects.TimeSecondsValue(n), nil
		}
		return objects.IntegerValue(n), nil
	case objects.TypeUnsigned:
		if err := intLen(t, len(b)); err != nil {
			return objects.Value{}, err
		}
		var n uint64
		for _, c := range b {
			n = n<<8 | uint64(c)
		}
		return objects.UnsignedValue(n), nil
	case objects.TypeFloat:
		switch len(b) {
		case 4:
			return objects.FloatValue(float64(math.Float32frombits(binary.BigEndian.Uint32(b)))), nil
		case 8:
			return objects.FloatValue(math.Float64frombits(binary.BigEndian.Uint64(b))), nil
		}
		return objects.Value{}, fmt.Errorf("%d-byte Float, want 4 or 8 bytes: %w", len(b), objects.ErrType)
	case objects.TypeBoolean:
		if len(b) != 1 || b[0] > 1 {
			return objects.Value{}, fmt.Errorf("Boolean must be one byte 0 or 1, got % x: %w", b, objects.ErrType)
		}
		return objects.BooleanValue(b[0] == 1), nil
	case objects.TypeString, objects.TypeCorelnk:
		if !utf8.Valid(b) {
			return objects.Value{}, fmt.Errorf("%v: %w", t, objects.ErrUTF8)
		}
		if t == objects.TypeCorelnk {
			return objects.CorelnkValue(string(b)), nil
		}
		return objects.StringValue(string(b)), nil
	case objects.TypeObjlnk:
		if len(b) != 4 {
			return objects.Value{}, fmt.Errorf("%d-byte Objlnk, want 4 bytes: %w", len(b), objects.ErrType)
		}
		return objects.ObjlnkValue(objects.ObjLink{
			Object:   binary.BigEndian.Uint16(b),
			Instance: binary.BigEndian.Uint16(b[2:]),
		}), nil
	case objects.TypeOpaque, objects.TypeNone:
		return objects.OpaqueValue(append([]byte{}, b...)), nil
	}
	return objects.Value{}, fmt.Errorf("unknown type %v: %w", t, objects.ErrType)
}

func decodeInt(t objects.Type, b []byte) (int64, error) {
	if err := intLen(t, len(b)); err != nil {
		return 0, err
	}
	n := int64(int8(b[0])) // sign-extend from the first byte
	for _, c := range b[1:] {
		n = n<<8 | int64(c)
	}
	return n, nil
}

// intLen checks the width of an integer value: TLV allows 1, 2, 4 and 8
// bytes; wider ones do not fit 64 bits.
func intLen(t objects.Type, n int) error {
	switch n {
	case 1, 2, 4, 8:
		return nil
	}
	if n > 8 {
		return fmt.Errorf("%d-byte %v does not fit 64 bits: %w", n, t, objects.ErrRange)
	}
	return fmt.Errorf("%d-byte %v, want 1, 2, 4 or 8 bytes: %w", n, t, objects.ErrType)
}

// AppendValue appends v's TLV value field to b, in the shortest form:
// the narrowest integer width that holds the value (for Unsigned Integer,
// also with the top bit clear, so that a reader taking it as signed still
// reads it right: 200 is 2 bytes, not 1), and a 4-byte Float when the
// value is exactly a float32. A String or Corelnk that is not UTF-8 and a
// value of TypeNone are errors.
func AppendValue(b []byte, v objects.Value) ([]byte, error) {
	switch v.Type() {
	case objects.TypeInteger, objects.TypeTime:
		return appendInt(b, v.Int()), nil
	case objects.TypeUnsigned:
		return appendUint(b, v.Uint()), nil
	case objects.TypeFloat:
		f := v.Float()
		if f32 := float32(f); float64(f32) == f {
			return binary.BigEndian.AppendUint32(b, math.Float32bits(f32)), nil
		}
		return binary.BigEndian.AppendUint64(b, math.Float64bits(f)), nil
	case objects.TypeBoolean:
		if v.Bool() {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	case objects.TypeString, objects.TypeCorelnk:
		if !utf8.ValidString(v.Str()) {
			return b, fmt.Errorf("%v: %w", v.Type(), objects.ErrUTF8)
		}
		return append(b, v.Str()...), nil
	case objects.TypeOpaque:
		return append(b, v.Bytes()...), nil
	case objects.TypeObjlnk:
		l := v.Objlnk()
		b = binary.BigEndian.AppendUint16(b, l.Object)
		return binary.BigEndian.AppendUint16(b, l.Instance), nil
	}
	return b, fmt.Errorf("no value to encode: %w", objects.ErrType)
}

// valueLen is the length AppendValue writes for v, for values it accepts.
func valueLen(v objects.Value) int {
	switch v.Type() {
	case objects.TypeInteger, objects.TypeTime:
		return intWidth(v.Int())
	case objects.TypeUnsigned:
		return uintWidth(v.Uint())
	case objects.TypeFloat:
		if f := v.Float(); float64(float32(f)) == f {
			return 4
		}
		return 8
	case objects.TypeBoolean:
		return 1
	case objects.TypeString, objects.TypeCorelnk:
		return len(v.Str())
	case objects.TypeOpaque:
		return len(v.Bytes())
	case objects.TypeObjlnk:
		return 4
	}
	return 0
}

func intWidth(n int64) int {
	switch {
	case n >= math.MinInt8 && n <= math.MaxInt8:
		return 1
	case n >= math.MinInt16 && n <= math.MaxInt16:
		return 2
	case n >= math.MinInt32 && n <= math.MaxInt32:
		return 4
	}
	return 8
}

func uintWidth(n uint64) int {
	switch {
	case n <= math.MaxInt8:
		return 1
	case n <= math.MaxInt16:
		return 2
	case n <= math.MaxInt32:
		return 4
	}
	return 8
}

func appendInt(b []byte, n int64) []byte {
	w := intWidth(n)
	for i := w - 1; i >= 0; i-- {
		b = append(b, byte(n>>(8*i)))
	}
	return b
}

func appendUint(b []byte, n uint64) []byte {
	w := uintWidth(n)
	for i := w - 1; i >= 0; i-- {
		b = append(b, byte(n>>(8*i)))
	}
	return b
}
