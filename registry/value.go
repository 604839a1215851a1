package registry

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/lwm2md/lwm2md/objects"
)

// The stable encoding of a value is a pair of strings: a type name that
// does not depend on objects.Type's numbering, and the value's text. The
// text is the LwM2M text/plain form (Core §7.4.1) except that Opaque is
// standard padded base64 and Boolean is "true"/"false"; floats use the
// shortest form that reads back to the same float64, so every value round
// trips exactly. docs/registry.md lists them.
var valueTypeNames = map[objects.Type]string{
	objects.TypeNone:     "none",
	objects.TypeString:   "string",
	objects.TypeInteger:  "integer",
	objects.TypeUnsigned: "unsigned",
	objects.TypeFloat:    "float",
	objects.TypeBoolean:  "boolean",
	objects.TypeOpaque:   "opaque",
	objects.TypeTime:     "time",
	objects.TypeObjlnk:   "objlnk",
	objects.TypeCorelnk:  "corelnk",
}

var valueTypes = func() map[string]objects.Type {
	m := make(map[string]objects.Type, len(valueTypeNames))
	for t, n := range valueTypeNames {
		m[n] = t
	}
	return m
}()

// FormatValue returns the stable encoding of v: its type name and text.
func FormatValue(v objects.Value) (typ, text string, err error) {
	typ, ok := valueTypeNames[v.Type()]
	if !ok {
		return "", "", fmt.Errorf("registry: value of unknown type %v: %w", v.Type(), ErrInvalid)
	}
	switch v.Type() {
	case objects.TypeString, objects.TypeCorelnk:
		if err := checkText(v.Str()); err != nil {
			return "", "", fmt.Errorf("registry: %s value: %w", typ, err)
		}
		return typ, v.Str(), nil
	case objects.TypeOpaque:
		return typ, base64.StdEncoding.EncodeToString(v.Bytes()), nil
	case objects.TypeBoolean:
		return typ, strconv.FormatBool(v.Bool()), nil
	case objects.TypeFloat:
		return typ, strconv.FormatFloat(v.Float(), 'g', -1, 64), nil
	}
	return typ, v.Text(), nil
}

// ParseValue is the inverse of FormatValue.
func ParseValue(typ, text string) (objects.Value, error) {
	t, ok := valueTypes[typ]
	if !ok {
		return objects.Value{}, fmt.Errorf("registry: unknown value type %q: %w", typ, ErrCorrupt)
	}
	var v objects.Value
	var err error
	switch t {
	case objects.TypeNone:
		if text != "" {
			err = fmt.Errorf("text %q for no value", text)
		}
	case objects.TypeOpaque:
		var b []byte
		b, err = base64.StdEncoding.DecodeString(text)
		v = objects.OpaqueValue(b)
	case objects.TypeBoolean:
		var b bool
		b, err = strconv.ParseBool(text)
		v = objects.BooleanValue(b)
	case objects.TypeString, objects.TypeCorelnk:
		if !utf8.ValidString(text) {
			err = objects.ErrUTF8
		}
		v, _ = objects.ParseText(t, text)
	default:
		v, err = objects.ParseText(t, text)
	}
	if err != nil {
		return objects.Value{}, fmt.Errorf("registry: %s value %q: %v: %w", typ, text, err, ErrCorrupt)
	}
	return v, nil
}
