package objects

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Value is one typed resource value. The zero Value has TypeNone: no value
// (an Execute target, or a path without a value in a composite request).
type Value struct {
	typ Type
	num uint64 // Integer and Time as int64 bits, Unsigned, Float as float64 bits, Boolean 0/1, Objlnk o<<16|i
	str string // String, Corelnk
	raw []byte // Opaque
}

// ObjLink is the value of an Objlnk resource: an object ID and an instance
// ID. 65535:65535 is the "null" link (LwM2M Core 1.1 Appendix C).
type ObjLink struct{ Object, Instance uint16 }

func (l ObjLink) String() string {
	return strconv.Itoa(int(l.Object)) + ":" + strconv.Itoa(int(l.Instance))
}

// ParseObjLink parses "o:i".
func ParseObjLink(s string) (ObjLink, error) {
	o, i, ok := strings.Cut(s, ":")
	if !ok {
		return ObjLink{}, fmt.Errorf("object link %q is not o:i", s)
	}
	ov, err1 := strconv.ParseUint(o, 10, 16)
	iv, err2 := strconv.ParseUint(i, 10, 16)
	if err1 != nil || err2 != nil {
		return ObjLink{}, fmt.Errorf("object link %q: IDs must be 0-65535", s)
	}
	return ObjLink{uint16(ov), uint16(iv)}, nil
}

func IntegerValue(v int64) Value     { return Value{typ: TypeInteger, num: uint64(v)} }
func UnsignedValue(v uint64) Value   { return Value{typ: TypeUnsigned, num: v} }
func FloatValue(v float64) Value     { return Value{typ: TypeFloat, num: math.Float64bits(v)} }
func StringValue(v string) Value     { return Value{typ: TypeString, str: v} }
func CorelnkValue(v string) Value    { return Value{typ: TypeCorelnk, str: v} }
func OpaqueValue(v []byte) Value     { return Value{typ: TypeOpaque, raw: v} }
func TimeSecondsValue(s int64) Value { return Value{typ: TypeTime, num: uint64(s)} }
func TimeValue(t time.Time) Value    { return TimeSecondsValue(t.Unix()) }
func ObjlnkValue(l ObjLink) Value {
	return Value{typ: TypeObjlnk, num: uint64(l.Object)<<16 | uint64(l.Instance)}
}
func BooleanValue(v bool) Value {
	if v {
		return Value{typ: TypeBoolean, num: 1}
	}
	return Value{typ: TypeBoolean}
}

// Type is the value's type; TypeNone for the zero Value.
func (v Value) Type() Type { return v.typ }

// IsNone reports whether v holds no value.
func (v Value) IsNone() bool { return v.typ == TypeNone }

// The accessors below return the value as the named Go type. They are
// meant for a value whose Type is known; on another type they return the
// zero value of the Go type (use Convert to change types with checks).
func (v Value) Int() int64 {
	if v.typ == TypeInteger || v.typ == TypeTime {
		return int64(v.num)
	}
	return 0
}
func (v Value) Uint() uint64 {
	if v.typ == TypeUnsigned {
		return v.num
	}
	return 0
}
func (v Value) Float() float64 {
	if v.typ == TypeFloat {
		return math.Float64frombits(v.num)
	}
	return 0
}
func (v Value) Bool() bool     { return v.typ == TypeBoolean && v.num != 0 }
func (v Value) Str() string    { return v.str }
func (v Value) Bytes() []byte  { return v.raw }
func (v Value) Seconds() int64 { return v.Int() }
func (v Value) Time() time.Time {
	return time.Unix(v.Int(), 0).UTC()
}
func (v Value) Objlnk() ObjLink {
	if v.typ != TypeObjlnk {
		return ObjLink{}
	}
	return ObjLink{uint16(v.num >> 16), uint16(v.num)}
}

// Equal reports whether two values have the same type and value. Floats
// compare by value (so +0 equals -0, and NaN never equals).
func (v Value) Equal(w Value) bool {
	if v.typ != w.typ {
		return false
	}
	switch v.typ {
	case TypeFloat:
		return v.Float() == w.Float()
	case TypeString, TypeCorelnk:
		return v.str == w.str
	case TypeOpaque:
		return bytes.Equal(v.raw, w.raw)
	}
	return v.num == w.num
}

// Text formats v as LwM2M text/plain does (LwM2M Core 1.1 §7.4.1, Table
// 7.4.1-1): decimal numbers, Boolean as 0/1, Time as integer seconds,
// Objlnk as "o:i", Opaque as base64.
func (v Value) Text() string {
	switch v.typ {
	case TypeString, TypeCorelnk:
		return v.str
	case TypeInteger, TypeTime:
		return strconv.FormatInt(int64(v.num), 10)
	case TypeUnsigned:
		return strconv.FormatUint(v.num, 10)
	case TypeFloat:
		return FormatFloat(v.Float())
	case TypeBoolean:
		if v.num != 0 {
			return "1"
		}
		return "0"
	case TypeOpaque:
		return base64.StdEncoding.EncodeToString(v.raw)
	case TypeObjlnk:
		return v.Objlnk().String()
	}
	return ""
}

// String is for logs and test failures: the type and the text form.
func (v Value) String() string {
	if v.typ == TypeNone {
		return "none"
	}
	if v.typ == TypeString || v.typ == TypeCorelnk {
		return v.typ.String() + "(" + strconv.Quote(v.str) + ")"
	}
	return v.typ.String() + "(" + v.Text() + ")"
}

// FormatFloat writes a float in the shortest decimal form that reads back
// to the same float64, without an exponent for the everyday range so that
// constrained parsers cope.
func FormatFloat(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// Errors wrapped by ParseText and Convert.
var (
	ErrType  = errors.New("value does not fit the resource type")
	ErrRange = errors.New("value out of range")
	ErrUTF8  = errors.New("string is not valid UTF-8")
)

// ParseText parses the text/plain form of a value of type t.
func ParseText(t Type, s string) (Value, error) {
	switch t {
	case TypeString:
		if !utf8.ValidString(s) {
			return Value{}, ErrUTF8
		}
		return StringValue(s), nil
	case TypeCorelnk:
		if !utf8.ValidString(s) {
			return Value{}, ErrUTF8
		}
		return CorelnkValue(s), nil
	case TypeInteger, TypeTime:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return Value{}, numErr(t, s, err)
		}
		if t == TypeTime {
			return TimeSecondsValue(n), nil
		}
		return IntegerValue(n), nil
	case TypeUnsigned:
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return Value{}, numErr(t, s, err)
		}
		return UnsignedValue(n), nil
	case TypeFloat:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return Value{}, numErr(t, s, err)
		}
		return FloatValue(f), nil
	case TypeBoolean:
		switch strings.TrimSpace(s) {
		case "1", "true":
			return BooleanValue(true), nil
		case "0", "false":
			return BooleanValue(false), nil
		}
		return Value{}, fmt.Errorf("%q is not a Boolean (0 or 1): %w", s, ErrType)
	case TypeOpaque:
		b, err := DecodeBase64(s)
		if err != nil {
			return Value{}, fmt.Errorf("opaque text is not base64: %w", ErrType)
		}
		return OpaqueValue(b), nil
	case TypeObjlnk:
		l, err := ParseObjLink(strings.TrimSpace(s))
		if err != nil {
			return Value{}, fmt.Errorf("%v: %w", err, ErrType)
		}
		return ObjlnkValue(l), nil
	case TypeNone:
		if s == "" {
			return Value{}, nil
		}
		return StringValue(s), nil
	}
	return Value{}, fmt.Errorf("type %v: %w", t, ErrType)
}

func numErr(t Type, s string, err error) error {
	if errors.Is(err, strconv.ErrRange) {
		return fmt.Errorf("%q does not fit %v: %w", s, t, ErrRange)
	}
	return fmt.Errorf("%q is not a%s %v: %w", s, article(t), t, ErrType)
}

func article(t Type) string {
	if t == TypeInteger || t == TypeUnsigned {
		return "n"
	}
	return ""
}

// DecodeBase64 accepts both alphabets of RFC 4648 (standard and URL-safe),
// with or without padding: clients in the field use all four (see
// testdata's interop notes), and being liberal here costs nothing.
func DecodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "-_") {
		return base64.RawURLEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// Convert returns v as a value of type t, for formats whose values are
// looser than the model (a SenML "v" number for an Integer resource, a
// text value for a Time). It fails with ErrType or ErrRange rather than
// lose information: a float with a fraction is not an integer.
func (v Value) Convert(t Type) (Value, error) {
	if v.typ == t || t == TypeNone {
		return v, nil
	}
	switch v.typ {
	case TypeString, TypeCorelnk:
		if t == TypeString || t == TypeCorelnk {
			return Value{typ: t, str: v.str}, nil
		}
		return ParseText(t, v.str)
	case TypeInteger, TypeTime:
		return fromInt(int64(v.num), t)
	case TypeUnsigned:
		if v.num > math.MaxInt64 {
			if t == TypeFloat {
				return FloatValue(float64(v.num)), nil
			}
			return Value{}, fmt.Errorf("%d as %v: %w", v.num, t, ErrRange)
		}
		return fromInt(int64(v.num), t)
	case TypeFloat:
		return fromFloat(v.Float(), t)
	case TypeBoolean:
		if t == TypeInteger || t == TypeUnsigned {
			return fromInt(int64(v.num), t)
		}
	case TypeOpaque:
		if t == TypeString && utf8.Valid(v.raw) {
			return StringValue(string(v.raw)), nil
		}
	}
	return Value{}, fmt.Errorf("%v as %v: %w", v.typ, t, ErrType)
}

func fromInt(n int64, t Type) (Value, error) {
	switch t {
	case TypeInteger:
		return IntegerValue(n), nil
	case TypeTime:
		return TimeSecondsValue(n), nil
	case TypeUnsigned:
		if n < 0 {
			return Value{}, fmt.Errorf("%d as Unsigned Integer: %w", n, ErrRange)
		}
		return UnsignedValue(uint64(n)), nil
	case TypeFloat:
		return FloatValue(float64(n)), nil
	case TypeBoolean:
		if n == 0 || n == 1 {
			return BooleanValue(n == 1), nil
		}
	}
	return Value{}, fmt.Errorf("integer %d as %v: %w", n, t, ErrType)
}

func fromFloat(f float64, t Type) (Value, error) {
	switch t {
	case TypeInteger, TypeTime, TypeUnsigned:
		if f != math.Trunc(f) || math.IsInf(f, 0) || math.IsNaN(f) {
			return Value{}, fmt.Errorf("%v as %v: %w", f, t, ErrType)
		}
		if t == TypeUnsigned {
			if f < 0 || f >= 18446744073709551616.0 {
				return Value{}, fmt.Errorf("%v as %v: %w", f, t, ErrRange)
			}
			return UnsignedValue(uint64(f)), nil
		}
		if f < -9223372036854775808.0 || f >= 9223372036854775808.0 {
			return Value{}, fmt.Errorf("%v as %v: %w", f, t, ErrRange)
		}
		return fromInt(int64(f), t)
	case TypeBoolean:
		if f == 0 || f == 1 {
			return BooleanValue(f == 1), nil
		}
	}
	return Value{}, fmt.Errorf("float %v as %v: %w", f, t, ErrType)
}
