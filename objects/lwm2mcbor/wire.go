package lwm2mcbor

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/x448/float16"

	"github.com/lwm2md/lwm2md/objects"
)

// CBOR major types (RFC 8949 §3.1).
const (
	majUint   = 0
	majNeg    = 1
	majBytes  = 2
	majText   = 3
	majArray  = 4
	majMap    = 5
	majTag    = 6
	majSimple = 7

	aiIndefinite = 31
	breakByte    = 0xff
)

// reader reads CBOR items from a payload that fxamacker/cbor has already
// found well-formed; it still checks every length against the bytes
// left, so a bug elsewhere cannot make it read out of bounds.
type reader struct {
	data []byte
	off  int
}

// head reads an initial byte and its argument. For an indefinite length
// (ai 31) arg is 0.
func (r *reader) head() (maj, ai byte, arg uint64, err error) {
	if r.off >= len(r.data) {
		return 0, 0, 0, errAt(r.off, objects.ErrMalformed, "payload ends inside an item")
	}
	b := r.data[r.off]
	r.off++
	maj, ai = b>>5, b&0x1f
	var n int
	switch {
	case ai < 24:
		return maj, ai, uint64(ai), nil
	case ai <= 27:
		n = 1 << (ai - 24)
	case ai == aiIndefinite:
		if maj == majUint || maj == majNeg || maj == majTag {
			return 0, 0, 0, errAt(r.off-1, objects.ErrMalformed, "indefinite length on a type that has none")
		}
		return maj, ai, 0, nil
	default:
		return 0, 0, 0, errAt(r.off-1, objects.ErrMalformed, "reserved additional information")
	}
	if len(r.data)-r.off < n {
		return 0, 0, 0, errAt(r.off, objects.ErrMalformed, "payload ends inside an item head")
	}
	switch n {
	case 1:
		arg = uint64(r.data[r.off])
	case 2:
		arg = uint64(binary.BigEndian.Uint16(r.data[r.off:]))
	case 4:
		arg = uint64(binary.BigEndian.Uint32(r.data[r.off:]))
	case 8:
		arg = binary.BigEndian.Uint64(r.data[r.off:])
	}
	r.off += n
	return maj, ai, arg, nil
}

func (r *reader) peekMajor() byte {
	if r.off < len(r.data) {
		return r.data[r.off] >> 5
	}
	return 0xff
}

func (r *reader) atBreak() bool { return r.off < len(r.data) && r.data[r.off] == breakByte }

// key reads a map key: one ID as an unsigned integer, or an array of
// one to four IDs (LwM2M Core 1.2 §7.4.6).
func (r *reader) key() (ids [4]uint16, n int, err error) {
	start := r.off
	maj, ai, arg, err := r.head()
	if err != nil {
		return ids, 0, err
	}
	switch maj {
	case majUint:
		if arg > objects.MaxID {
			return ids, 0, errAt(start, objects.ErrMalformed, "key "+strconv.FormatUint(arg, 10)+" is not an ID (0-65535)")
		}
		ids[0] = uint16(arg)
		return ids, 1, nil
	case majArray:
	default:
		return ids, 0, errAt(start, objects.ErrMalformed, "key is not an ID or an array of IDs")
	}
	indef := ai == aiIndefinite
	if !indef && (arg == 0 || arg > 4) {
		return ids, 0, errAt(start, objects.ErrMalformed, "key array has "+strconv.FormatUint(arg, 10)+" IDs, not 1 to 4")
	}
	for indef || uint64(n) < arg {
		if indef && r.atBreak() {
			r.off++
			break
		}
		if n == 4 {
			return ids, 0, errAt(start, objects.ErrMalformed, "key array has more than 4 IDs")
		}
		at := r.off
		m, _, id, err := r.head()
		if err != nil {
			return ids, 0, err
		}
		if m != majUint || id > objects.MaxID {
			return ids, 0, errAt(at, objects.ErrMalformed, "key array element is not an ID (0-65535)")
		}
		ids[n] = uint16(id)
		n++
	}
	if n == 0 {
		return ids, 0, errAt(start, objects.ErrMalformed, "empty key array")
	}
	return ids, n, nil
}

// value reads a resource value, typed by its CBOR type: unsigned and
// negative integers are Integer (Unsigned beyond int64), byte strings
// Opaque, text strings String, floats of any width Float, true and false
// Boolean, null no value, tag 1 (epoch time) around an integer Time, and
// tag 4 (decimal fraction) Float.
func (r *reader) value() (objects.Value, error) {
	start := r.off
	maj, ai, arg, err := r.head()
	if err != nil {
		return objects.Value{}, err
	}
	switch maj {
	case majUint, majNeg:
		return intValue(maj, arg, start)
	case majBytes:
		b, err := r.str(maj, ai, arg, start)
		return objects.OpaqueValue(append([]byte{}, b...)), err
	case majText:
		b, err := r.str(maj, ai, arg, start)
		if err != nil {
			return objects.Value{}, err
		}
		if !utf8.Valid(b) {
			return objects.Value{}, errAt(start, objects.ErrUTF8, "text string is not valid UTF-8")
		}
		return objects.StringValue(string(b)), nil
	case majTag:
		switch arg {
		case 1:
			return r.epochTime(start)
		case 4:
			return r.decimal(start)
		}
		return objects.Value{}, errAt(start, objects.ErrType, "tag "+strconv.FormatUint(arg, 10)+" is not a resource value")
	case majSimple:
		return simpleValue(ai, arg, start)
	}
	return objects.Value{}, errAt(start, objects.ErrMalformed, "an array is not a resource value")
}

func intValue(maj byte, arg uint64, at int) (objects.Value, error) {
	if maj == majUint {
		if arg > math.MaxInt64 {
			return objects.UnsignedValue(arg), nil
		}
		return objects.IntegerValue(int64(arg)), nil
	}
	if arg > math.MaxInt64 {
		return objects.Value{}, errAt(at, objects.ErrRange, "negative integer below -2^63")
	}
	return objects.IntegerValue(-1 - int64(arg)), nil
}

func simpleValue(ai byte, arg uint64, at int) (objects.Value, error) {
	switch ai {
	case 20:
		return objects.BooleanValue(false), nil
	case 21:
		return objects.BooleanValue(true), nil
	case 22:
		return objects.Value{}, nil // null: a path without a value
	case 25:
		return objects.FloatValue(float64(float16.Frombits(uint16(arg)).Float32())), nil
	case 26:
		return objects.FloatValue(float64(math.Float32frombits(uint32(arg)))), nil
	case 27:
		return objects.FloatValue(math.Float64frombits(arg)), nil
	case aiIndefinite:
		return objects.Value{}, errAt(at, objects.ErrMalformed, "break outside an indefinite-length item")
	}
	return objects.Value{}, errAt(at, objects.ErrType, "simple value "+strconv.FormatUint(arg, 10)+" is not a resource value")
}

// str reads the content of a byte or text string, joining the chunks of
// an indefinite-length one. A definite-length string is returned as a
// slice of the payload: callers copy it.
func (r *reader) str(maj, ai byte, arg uint64, start int) ([]byte, error) {
	if ai != aiIndefinite {
		if arg > uint64(len(r.data)-r.off) {
			return nil, errAt(start, objects.ErrMalformed, "string length "+strconv.FormatUint(arg, 10)+" exceeds the payload")
		}
		b := r.data[r.off : r.off+int(arg) : r.off+int(arg)]
		r.off += int(arg)
		return b, nil
	}
	var out []byte
	for {
		if r.atBreak() {
			r.off++
			return out, nil
		}
		at := r.off
		m, cai, n, err := r.head()
		if err != nil {
			return nil, err
		}
		if m != maj || cai == aiIndefinite {
			return nil, errAt(at, objects.ErrMalformed, "bad chunk in an indefinite-length string")
		}
		if n > uint64(len(r.data)-r.off) {
			return nil, errAt(at, objects.ErrMalformed, "chunk length exceeds the payload")
		}
		out = append(out, r.data[r.off:r.off+int(n)]...)
		r.off += int(n)
	}
}

// epochTime reads the content of tag 1: an integer, or a float without
// a fraction, in seconds.
func (r *reader) epochTime(start int) (objects.Value, error) {
	maj, ai, arg, err := r.head()
	if err != nil {
		return objects.Value{}, err
	}
	var v objects.Value
	switch {
	case maj == majUint || maj == majNeg:
		v, err = intValue(maj, arg, start)
	case maj == majSimple && ai >= 25 && ai <= 27:
		v, err = simpleValue(ai, arg, start)
	default:
		return objects.Value{}, errAt(start, objects.ErrType, "tag 1 holds neither an integer nor a float")
	}
	if err != nil {
		return v, err
	}
	t, err := v.Convert(objects.TypeTime)
	if err != nil {
		if v.Type() == objects.TypeFloat {
			return v, nil // fractional seconds: keep the float
		}
		return objects.Value{}, errAt(start, objects.ErrRange, "time out of range")
	}
	return t, nil
}

// decimal reads the content of tag 4, [exponent, mantissa], both plain
// integers, as the float nearest to mantissa × 10^exponent.
func (r *reader) decimal(start int) (objects.Value, error) {
	maj, ai, arg, err := r.head()
	if err != nil {
		return objects.Value{}, err
	}
	if maj != majArray || (ai != aiIndefinite && arg != 2) {
		return objects.Value{}, errAt(start, objects.ErrType, "decimal fraction is not [exponent, mantissa]")
	}
	var parts [2]int64
	for i := range parts {
		m, _, a, err := r.head()
		if err != nil {
			return objects.Value{}, err
		}
		if m != majUint && m != majNeg {
			return objects.Value{}, errAt(start, objects.ErrType, "decimal fraction part is not an integer")
		}
		v, err := intValue(m, a, start)
		if err != nil || v.Type() != objects.TypeInteger {
			return objects.Value{}, errAt(start, objects.ErrRange, "decimal fraction part does not fit 64 bits")
		}
		parts[i] = v.Int()
	}
	if ai == aiIndefinite {
		if !r.atBreak() {
			return objects.Value{}, errAt(start, objects.ErrType, "decimal fraction is not [exponent, mantissa]")
		}
		r.off++
	}
	f, err := strconv.ParseFloat(strconv.FormatInt(parts[1], 10)+"e"+strconv.FormatInt(parts[0], 10), 64)
	if err != nil {
		return objects.Value{}, errAt(start, objects.ErrRange, "decimal fraction out of range")
	}
	return objects.FloatValue(f), nil
}

// wireError is an error at a byte offset of the payload.
type wireError struct {
	off  int
	msg  string
	kind error
}

func (e *wireError) Error() string { return e.msg + ": " + e.kind.Error() }
func (e *wireError) Unwrap() error { return e.kind }

func errAt(off int, kind error, msg string) error { return &wireError{off: off, msg: msg, kind: kind} }

// appendHead writes an item head with the shortest argument.
func appendHead(b []byte, maj byte, n uint64) []byte {
	m := maj << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= math.MaxUint8:
		return append(b, m|24, byte(n))
	case n <= math.MaxUint16:
		return append(b, m|25, byte(n>>8), byte(n))
	case n <= math.MaxUint32:
		return append(b, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// appendKey writes one ID as an integer and several as an array.
func appendKey(b []byte, ids []uint16) []byte {
	if len(ids) == 1 {
		return appendHead(b, majUint, uint64(ids[0]))
	}
	b = appendHead(b, majArray, uint64(len(ids)))
	for _, id := range ids {
		b = appendHead(b, majUint, uint64(id))
	}
	return b
}

// appendFloat writes f in the shortest of half, single and double
// precision that holds it exactly (RFC 8949 §4.1 preferred
// serialization); NaN is the half-precision quiet NaN.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) {
		return append(b, 0xf9, 0x7e, 0x00)
	}
	if f32 := float32(f); float64(f32) == f {
		if float16.PrecisionFromfloat32(f32) == float16.PrecisionExact {
			h := float16.Fromfloat32(f32).Bits()
			return append(b, 0xf9, byte(h>>8), byte(h))
		}
		u := math.Float32bits(f32)
		return append(b, 0xfa, byte(u>>24), byte(u>>16), byte(u>>8), byte(u))
	}
	u := math.Float64bits(f)
	return append(b, 0xfb, byte(u>>56), byte(u>>48), byte(u>>40), byte(u>>32), byte(u>>24), byte(u>>16), byte(u>>8), byte(u))
}

// appendValue writes a resource value: String and Corelnk as text,
// Integer and Time as integers (Time untagged, as Anjay sends it), Float
// in its shortest exact width, Opaque as a byte string, Objlnk as the
// text "o:i" (the text form LwM2M CBOR uses for object links, as Anjay
// sends /3/0/22/0 "33606:0"), and no value as null.
func appendValue(b []byte, v objects.Value) ([]byte, error) {
	switch v.Type() {
	case objects.TypeNone:
		return append(b, 0xf6), nil
	case objects.TypeString, objects.TypeCorelnk:
		if !utf8.ValidString(v.Str()) {
			return b, objects.ErrUTF8
		}
		b = appendHead(b, majText, uint64(len(v.Str())))
		return append(b, v.Str()...), nil
	case objects.TypeInteger, objects.TypeTime:
		if n := v.Int(); n < 0 {
			return appendHead(b, majNeg, uint64(-1-n)), nil
		}
		return appendHead(b, majUint, uint64(v.Int())), nil
	case objects.TypeUnsigned:
		return appendHead(b, majUint, v.Uint()), nil
	case objects.TypeFloat:
		return appendFloat(b, v.Float()), nil
	case objects.TypeBoolean:
		if v.Bool() {
			return append(b, 0xf5), nil
		}
		return append(b, 0xf4), nil
	case objects.TypeOpaque:
		b = appendHead(b, majBytes, uint64(len(v.Bytes())))
		return append(b, v.Bytes()...), nil
	case objects.TypeObjlnk:
		s := v.Objlnk().String()
		b = appendHead(b, majText, uint64(len(s)))
		return append(b, s...), nil
	}
	return b, fmt.Errorf("value type %v: %w", v.Type(), objects.ErrUnsupported)
}
