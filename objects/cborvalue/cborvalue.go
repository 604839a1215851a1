// Package cborvalue is the application/cbor content format of LwM2M
// (content format 60, LwM2M Core 1.1 §7.4.3 "CBOR" and the CBOR column of
// Appendix C "Data Types"): the value of one single resource or one
// resource instance as one CBOR data item (RFC 8949).
//
// Types on the wire:
//
//	Integer        major type 0 or 1
//	Unsigned       major type 0
//	Float          major type 7, half, single or double precision
//	Boolean        major type 7, false / true
//	String         major type 3 (text string)
//	Opaque         major type 2 (byte string)
//	Time           tag 1 (epoch seconds) around an integer; an untagged
//	               integer, tag 1 around a float and tag 0 around an
//	               RFC 3339 string are accepted
//	Objlnk         text string "o:i"
//	Corelnk        text string
//
// Decoding is strict about structure (one well-formed item, nothing after
// it, nesting bounded) and liberal about form (any integer or float width,
// indefinite-length strings, tag 1 or tag 0 for a Time). Encoding is the
// preferred serialization of RFC 8949 §4.1: shortest integer heads,
// definite lengths and the shortest float width that keeps the value.
//
// A Time goes out tagged: the Data Type Mapping table of Core 1.2
// (Appendix C) describes it with the date/time tags of RFC 7049 §2.4.1,
// and Leshan decodes a Time only from a tagged item. Clients (Anjay's
// LwM2M CBOR, everyone's SenML CBOR) send it untagged, so both are read.
package cborvalue

import (
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"

	"github.com/lwm2md/lwm2md/objects"
)

// Codec implements objects.Codec for application/cbor.
type Codec struct{}

var _ objects.Codec = Codec{}

var (
	decMode = mustDecMode(cbor.DecOptions{
		MaxNestedLevels:  4, // the least the library allows; a value needs one level, plus one tag
		MaxArrayElements: 16,
		MaxMapPairs:      16,
		IndefLength:      cbor.IndefLengthAllowed,
		TagsMd:           cbor.TagsAllowed,
		// Text strings are checked here, so that invalid UTF-8 is
		// reported as objects.ErrUTF8 and not as a generic CBOR error.
		UTF8: cbor.UTF8DecodeInvalid,
	})
	encMode = mustEncMode(cbor.EncOptions{
		ShortestFloat: cbor.ShortestFloat16,
		NaNConvert:    cbor.NaNConvert7e00,
		InfConvert:    cbor.InfConvertFloat16,
		IndefLength:   cbor.IndefLengthForbidden,
		String:        cbor.StringToTextString,
	})
)

func mustDecMode(o cbor.DecOptions) cbor.DecMode {
	m, err := o.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}

func mustEncMode(o cbor.EncOptions) cbor.EncMode {
	m, err := o.EncMode()
	if err != nil {
		panic(err)
	}
	return m
}

// Encode writes the value of n, the single resource (root /o/i/r) or the
// resource instance (root /o/i/r/ri) that root names. When m knows the
// resource, the value is converted to its type first.
func (Codec) Encode(root objects.Path, n objects.Node, m objects.Models) ([]byte, error) {
	v, err := nodeValue(root, n, m)
	if err != nil {
		return nil, err
	}
	if t := objects.TypeOf(m, root); t != objects.TypeNone {
		if v, err = v.Convert(t); err != nil {
			return nil, fmt.Errorf("cbor: %s: %w", root, err)
		}
	}
	var item any
	switch v.Type() {
	case objects.TypeInteger:
		item = v.Int()
	case objects.TypeTime:
		item = cbor.Tag{Number: 1, Content: v.Int()}
	case objects.TypeUnsigned:
		item = v.Uint()
	case objects.TypeFloat:
		item = v.Float()
	case objects.TypeBoolean:
		item = v.Bool()
	case objects.TypeOpaque:
		item = v.Bytes()
		if v.Bytes() == nil {
			item = []byte{} // a nil slice would be CBOR null
		}
	case objects.TypeString, objects.TypeCorelnk:
		if !utf8.ValidString(v.Str()) {
			return nil, fmt.Errorf("cbor: %s: %w", root, objects.ErrUTF8)
		}
		item = v.Str()
	case objects.TypeObjlnk:
		item = v.Text()
	default:
		return nil, fmt.Errorf("cbor: %s: a %v value has no CBOR form: %w", root, v.Type(), objects.ErrType)
	}
	b, err := encMode.Marshal(item)
	if err != nil {
		return nil, fmt.Errorf("cbor: %s: %w", root, err)
	}
	return b, nil
}

// Decode reads the one CBOR data item of data as the value at root. With
// a model the item is converted to the resource's type (Value.Convert);
// without one its major type decides: an unsigned integer that fits int64
// and every negative integer is an Integer (the commoner LwM2M type),
// larger ones Unsigned; tag 1 is a Time; text is a String; bytes are
// Opaque.
func (Codec) Decode(root objects.Path, data []byte, m objects.Models) (objects.Node, error) {
	fail := func(off int, err error) (objects.Node, error) {
		return nil, &objects.DecodeError{Format: objects.FormatCBOR, Path: root, Offset: off, Err: err}
	}
	if err := checkRoot(root, m); err != nil {
		return fail(-1, err)
	}
	v, off, err := decodeItem(data)
	if err != nil {
		return fail(off, err)
	}
	if t := objects.TypeOf(m, root); t != objects.TypeNone {
		if v, err = v.Convert(t); err != nil {
			return fail(-1, err)
		}
	}
	if root.Len() == 3 {
		return &objects.Resource{ID: root.Resource(), Value: v}, nil
	}
	return &objects.ResourceInstance{ID: root.ResourceInstance(), Value: v}, nil
}

// decodeItem decodes the single data item of data. On error it returns
// the byte offset the problem lies at (or -1).
func decodeItem(data []byte) (objects.Value, int, error) {
	if len(data) == 0 {
		return objects.Value{}, 0, fmt.Errorf("empty payload, want one CBOR data item: %w", objects.ErrMalformed)
	}
	v, rest, err := decodeFirst(data, true)
	if err != nil {
		return objects.Value{}, 0, err
	}
	if len(rest) > 0 {
		off := len(data) - len(rest)
		return objects.Value{}, off, fmt.Errorf("%d bytes after the CBOR data item: %w", len(rest), objects.ErrMalformed)
	}
	return v, -1, nil
}

// decodeFirst decodes the first item of data by its major type. A tag is
// accepted only at the top (tagOK) and only for a Time.
func decodeFirst(data []byte, tagOK bool) (objects.Value, []byte, error) {
	major, info := data[0]>>5, data[0]&0x1f
	var (
		v    objects.Value
		rest []byte
		err  error
	)
	switch major {
	case 0:
		var u uint64
		if rest, err = decMode.UnmarshalFirst(data, &u); err == nil {
			if u <= math.MaxInt64 {
				v = objects.IntegerValue(int64(u))
			} else {
				v = objects.UnsignedValue(u)
			}
		}
	case 1:
		var i int64
		if rest, err = decMode.UnmarshalFirst(data, &i); err == nil {
			v = objects.IntegerValue(i)
		} else if ute := (*cbor.UnmarshalTypeError)(nil); errors.As(err, &ute) {
			return v, nil, fmt.Errorf("negative integer below -2^63: %w", objects.ErrRange)
		}
	case 2:
		var b []byte
		if rest, err = decMode.UnmarshalFirst(data, &b); err == nil {
			if b == nil {
				b = []byte{}
			}
			v = objects.OpaqueValue(b)
		}
	case 3:
		var s string
		if rest, err = decMode.UnmarshalFirst(data, &s); err == nil {
			if !utf8.ValidString(s) {
				return v, nil, fmt.Errorf("CBOR text string: %w", objects.ErrUTF8)
			}
			v = objects.StringValue(s)
		}
	case 4, 5:
		if _, err = decMode.UnmarshalFirst(data, new(cbor.RawMessage)); err == nil {
			what := "an array"
			if major == 5 {
				what = "a map"
			}
			return v, nil, fmt.Errorf("CBOR %s is not a single resource value: %w", what, objects.ErrType)
		}
	case 6:
		return decodeTag(data, tagOK)
	case 7:
		switch {
		case info == 20 || info == 21:
			var b bool
			if rest, err = decMode.UnmarshalFirst(data, &b); err == nil {
				v = objects.BooleanValue(b)
			}
		case info >= 25 && info <= 27:
			var f float64
			if rest, err = decMode.UnmarshalFirst(data, &f); err == nil {
				v = objects.FloatValue(f)
			}
		default:
			if _, err = decMode.UnmarshalFirst(data, new(cbor.RawMessage)); err == nil {
				return v, nil, fmt.Errorf("CBOR simple value %s is not a resource value: %w", simpleName(data), objects.ErrType)
			}
		}
	}
	if err != nil {
		return v, nil, fmt.Errorf("%s: %w", trimCBOR(err), objects.ErrMalformed)
	}
	return v, rest, nil
}

// decodeTag accepts tag 1 (epoch seconds, an integer or a float) and tag
// 0 (an RFC 3339 date-time string) around a Time value (RFC 8949 §3.4.1,
// §3.4.2). A Time has a one-second resolution: a fraction is dropped
// (rounded down).
func decodeTag(data []byte, tagOK bool) (objects.Value, []byte, error) {
	var tag cbor.RawTag
	rest, err := decMode.UnmarshalFirst(data, &tag)
	if err != nil {
		return objects.Value{}, nil, fmt.Errorf("%s: %w", trimCBOR(err), objects.ErrMalformed)
	}
	if !tagOK || (tag.Number != 0 && tag.Number != 1) {
		return objects.Value{}, nil, fmt.Errorf("CBOR tag %d is not a resource value (only tag 0 or 1 around a Time): %w", tag.Number, objects.ErrType)
	}
	inner, _, err := decodeFirst(tag.Content, false)
	if err != nil {
		return objects.Value{}, nil, fmt.Errorf("in tag %d: %w", tag.Number, err)
	}
	if tag.Number == 0 {
		if inner.Type() != objects.TypeString {
			return objects.Value{}, nil, fmt.Errorf("tag 0 around a %v, want a date-time string: %w", inner.Type(), objects.ErrType)
		}
		t, err := time.Parse(time.RFC3339Nano, inner.Str())
		if err != nil {
			return objects.Value{}, nil, fmt.Errorf("tag 0 date-time %q: %w", short(inner.Str()), objects.ErrType)
		}
		return objects.TimeSecondsValue(t.Unix()), rest, nil
	}
	switch inner.Type() {
	case objects.TypeInteger:
		return objects.TimeSecondsValue(inner.Int()), rest, nil
	case objects.TypeFloat:
		f := math.Floor(inner.Float())
		if math.IsNaN(f) || f < -9223372036854775808.0 || f >= 9223372036854775808.0 {
			return objects.Value{}, nil, fmt.Errorf("tag 1 epoch time %v: %w", inner.Float(), objects.ErrRange)
		}
		return objects.TimeSecondsValue(int64(f)), rest, nil
	case objects.TypeUnsigned:
		return objects.Value{}, nil, fmt.Errorf("tag 1 epoch time %d: %w", inner.Uint(), objects.ErrRange)
	}
	return objects.Value{}, nil, fmt.Errorf("tag 1 around a %v, want a number of seconds: %w", inner.Type(), objects.ErrType)
}

func simpleName(data []byte) string {
	switch data[0] {
	case 0xf6:
		return "null"
	case 0xf7:
		return "undefined"
	}
	if data[0] == 0xf8 && len(data) > 1 {
		return fmt.Sprintf("simple(%d)", data[1])
	}
	return fmt.Sprintf("simple(%d)", data[0]&0x1f)
}

// trimCBOR shortens the library's messages ("cbor: unexpected EOF").
func trimCBOR(err error) string {
	s := err.Error()
	if len(s) > 6 && s[:6] == "cbor: " {
		s = s[6:]
	}
	return s
}

func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func checkRoot(root objects.Path, m objects.Models) error {
	switch root.Len() {
	case 3:
		if def := objects.ResourceOf(m, root); def != nil && def.Multiple {
			return fmt.Errorf("resource %d is a multiple resource, application/cbor carries one value: %w", root.Resource(), objects.ErrUnsupported)
		}
		return nil
	case 4:
		return nil
	}
	return fmt.Errorf("application/cbor carries one resource value, not a node at depth %d: %w", root.Len(), objects.ErrUnsupported)
}

// nodeValue checks that n is the node root names and returns its value.
func nodeValue(root objects.Path, n objects.Node, m objects.Models) (objects.Value, error) {
	if err := checkRoot(root, m); err != nil {
		return objects.Value{}, fmt.Errorf("cbor: %s: %w", root, err)
	}
	var v objects.Value
	switch n := n.(type) {
	case *objects.Resource:
		if n == nil || root.Len() != 3 || n.ID != root.Resource() {
			return v, fmt.Errorf("cbor: %s: node is not the resource the path names", root)
		}
		if n.Multiple {
			return v, fmt.Errorf("cbor: %s: a multiple resource has no single value: %w", root, objects.ErrUnsupported)
		}
		v = n.Value
	case *objects.ResourceInstance:
		if n == nil || root.Len() != 4 || n.ID != root.ResourceInstance() {
			return v, fmt.Errorf("cbor: %s: node is not the resource instance the path names", root)
		}
		v = n.Value
	default:
		return v, fmt.Errorf("cbor: %s: node %T is not the node the path names", root, n)
	}
	if v.IsNone() {
		return v, fmt.Errorf("cbor: %s: node has no value to write: %w", root, objects.ErrType)
	}
	return v, nil
}
