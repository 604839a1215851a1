// Package text is the text/plain content format of LwM2M (content format
// 0, and 1541 used by LwM2M 1.0 clients before the number was registered):
// the value of one single resource or one resource instance as a UTF-8
// string (LwM2M Core 1.1 §7.4.1 and the text column of Appendix C "Data
// Types").
//
// The format cannot carry an object, an object instance or a multiple
// resource; Encode and Decode answer those with objects.ErrUnsupported,
// which the server maps to 4.06 Not Acceptable.
//
// Opaque values: LwM2M 1.0 and the Data Type Mapping table of 1.2 write
// an Opaque resource in text/plain as base64 (RFC 4648, "AQIDBAU="), while
// the 1.1 table marks it not supported. This codec writes standard base64
// with padding and reads either alphabet, with or without padding and line
// breaks: a client that refuses base64 answers 4.15 and the server falls
// back to application/octet-stream; nothing is ever lost silently.
package text

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lwm2md/lwm2md/objects"
)

// Codec implements objects.Codec for text/plain.
type Codec struct{}

var _ objects.Codec = Codec{}

// maxNumberLen bounds the text of a non-string value before it is parsed,
// so that an error message never quotes a megabyte of payload. The longest
// sane number (a float64 written with all its digits and no exponent) is
// far shorter.
const maxNumberLen = 512

// Encode writes the value of n, a single resource (root /o/i/r) or a
// resource instance (root /o/i/r/ri). When m knows the resource, the value
// is converted to the resource's type first, so that what is sent is what
// the client expects (a String "12" for an Integer resource becomes 12).
func (Codec) Encode(root objects.Path, n objects.Node, m objects.Models) ([]byte, error) {
	v, err := nodeValue(root, n, m)
	if err != nil {
		return nil, err
	}
	if t := objects.TypeOf(m, root); t != objects.TypeNone {
		if v, err = v.Convert(t); err != nil {
			return nil, fmt.Errorf("text: %s: %w", root, err)
		}
	}
	if (v.Type() == objects.TypeString || v.Type() == objects.TypeCorelnk) && !utf8.ValidString(v.Str()) {
		return nil, fmt.Errorf("text: %s: %w", root, objects.ErrUTF8)
	}
	if v.Type() == objects.TypeFloat {
		return []byte(formatFloat(v.Float())), nil
	}
	return []byte(v.Text()), nil
}

// formatFloat writes a float without an exponent, as the Data Type
// Mapping table of Core 1.2 does (6.667e-11 is "0.00000000006667"): the
// shortest decimal that reads back to the same float64. Constrained
// parsers (Wakaama's) do not all read exponents.
func formatFloat(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return objects.FormatFloat(f)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// Decode reads the value at root. With a model it parses the text as the
// resource's type; without one (or for a resource of no type) the value is
// a String.
func (Codec) Decode(root objects.Path, data []byte, m objects.Models) (objects.Node, error) {
	if err := checkRoot(root, m); err != nil {
		return nil, &objects.DecodeError{Format: objects.FormatText, Path: root, Offset: -1, Err: err}
	}
	if !utf8.Valid(data) {
		return nil, &objects.DecodeError{Format: objects.FormatText, Path: root, Offset: invalidUTF8At(data), Err: objects.ErrUTF8}
	}
	v, err := parse(objects.TypeOf(m, root), string(data))
	if err != nil {
		return nil, &objects.DecodeError{Format: objects.FormatText, Path: root, Offset: -1, Err: err}
	}
	if root.Len() == 3 {
		return &objects.Resource{ID: root.Resource(), Value: v}, nil
	}
	return &objects.ResourceInstance{ID: root.ResourceInstance(), Value: v}, nil
}

func parse(t objects.Type, s string) (objects.Value, error) {
	switch t {
	case objects.TypeNone, objects.TypeString:
		return objects.StringValue(s), nil
	case objects.TypeCorelnk:
		return objects.CorelnkValue(s), nil
	case objects.TypeOpaque:
		// Base64 may arrive wrapped in lines (RFC 2045 style); the line
		// breaks carry nothing.
		s = strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, s)
		return objects.ParseText(t, s)
	}
	if len(s) > maxNumberLen {
		return objects.Value{}, fmt.Errorf("%d bytes of text is too long for a%s %v: %w", len(s), article(t), t, objects.ErrType)
	}
	return objects.ParseText(t, s)
}

func article(t objects.Type) string {
	if t == objects.TypeInteger || t == objects.TypeUnsigned || t == objects.TypeObjlnk {
		return "n"
	}
	return ""
}

// checkRoot tells whether text/plain can carry the node at root: a single
// resource or a resource instance, nothing above.
func checkRoot(root objects.Path, m objects.Models) error {
	switch root.Len() {
	case 3:
		if def := objects.ResourceOf(m, root); def != nil && def.Multiple {
			return fmt.Errorf("resource %d is a multiple resource, text/plain carries one value: %w", root.Resource(), objects.ErrUnsupported)
		}
		return nil
	case 4:
		return nil
	}
	return fmt.Errorf("text/plain carries one resource value, not %s: %w", kindOf(root.Len()), objects.ErrUnsupported)
}

// nodeValue checks that n is the node root names and returns its value.
func nodeValue(root objects.Path, n objects.Node, m objects.Models) (objects.Value, error) {
	if err := checkRoot(root, m); err != nil {
		return objects.Value{}, fmt.Errorf("text: %s: %w", root, err)
	}
	var v objects.Value
	switch n := n.(type) {
	case *objects.Resource:
		if n == nil {
			return v, fmt.Errorf("text: %s: nil resource", root)
		}
		if root.Len() != 3 || n.ID != root.Resource() {
			return v, fmt.Errorf("text: %s: node is resource %d, not the node the path names", root, n.ID)
		}
		if n.Multiple {
			return v, fmt.Errorf("text: %s: a multiple resource has no single value: %w", root, objects.ErrUnsupported)
		}
		v = n.Value
	case *objects.ResourceInstance:
		if n == nil {
			return v, fmt.Errorf("text: %s: nil resource instance", root)
		}
		if root.Len() != 4 || n.ID != root.ResourceInstance() {
			return v, fmt.Errorf("text: %s: node is resource instance %d, not the node the path names", root, n.ID)
		}
		v = n.Value
	default:
		return v, fmt.Errorf("text: %s: node is %s, not the node the path names", root, kindOf(objects.NodeDepth(n)))
	}
	if v.IsNone() {
		return v, fmt.Errorf("text: %s: node has no value to write: %w", root, objects.ErrType)
	}
	return v, nil
}

func kindOf(depth int) string {
	switch depth {
	case 0:
		return "the root"
	case 1:
		return "an object"
	case 2:
		return "an object instance"
	case 3:
		return "a resource"
	case 4:
		return "a resource instance"
	}
	return "nothing"
}

// invalidUTF8At returns the offset of the first byte that is not UTF-8.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}
