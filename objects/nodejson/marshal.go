package nodejson

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/internal/jsontext"
)

// Marshal writes the node n that lives at root. A node does not know its
// own parents' IDs, so the path is needed: it must be of n's depth and end
// in n's ID (objects.CheckNode).
func Marshal(root objects.Path, n objects.Node) ([]byte, error) {
	if err := objects.CheckNode(root, n); err != nil {
		return nil, fmt.Errorf("nodejson: %s: %w", root, err)
	}
	w, err := toWire(root, n)
	if err != nil {
		return nil, err
	}
	return encode(w)
}

// MarshalRecords writes records as a JSON array; a record without a value
// (a path of a composite request) has only "path".
func MarshalRecords(recs []objects.Record) ([]byte, error) {
	ws := make([]wire, len(recs))
	for i, r := range recs {
		ws[i].Path = r.Path.String()
		if err := setValue(&ws[i], r.Path, r.Value, true); err != nil {
			return nil, err
		}
		if r.Time != 0 {
			t := r.Time
			ws[i].Time = &t
		}
	}
	return encode(ws)
}

func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // values are data, not HTML; keep "<" readable
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("nodejson: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func toWire(p objects.Path, n objects.Node) (wire, error) {
	w := wire{Path: p.String()}
	switch n := n.(type) {
	case *objects.Object:
		list := make([]wire, 0, len(n.Instances))
		for i := range n.Instances {
			c, err := toWire(p.Child(n.Instances[i].ID), &n.Instances[i])
			if err != nil {
				return w, err
			}
			list = append(list, c)
		}
		w.Instances = &list
	case *objects.Instance:
		list := make([]wire, 0, len(n.Resources))
		for i := range n.Resources {
			c, err := toWire(p.Child(n.Resources[i].ID), &n.Resources[i])
			if err != nil {
				return w, err
			}
			list = append(list, c)
		}
		w.Resources = &list
	case *objects.Resource:
		if !n.Multiple {
			return w, setValue(&w, p, n.Value, true)
		}
		list := make([]wire, len(n.Instances))
		for i, ri := range n.Instances {
			list[i].Path = p.Child(ri.ID).String()
			// The type sits on the resource; an instance repeats it only
			// when it differs (a device that mixes types).
			if w.Type == "" {
				w.Type = TypeName(ri.Value.Type())
			}
			if err := setValue(&list[i], p.Child(ri.ID), ri.Value, TypeName(ri.Value.Type()) != w.Type); err != nil {
				return w, err
			}
		}
		w.Instances = &list
	case *objects.ResourceInstance:
		return w, setValue(&w, p, n.Value, true)
	}
	return w, nil
}

// setValue fills value (and type when withType) for v.
func setValue(w *wire, p objects.Path, v objects.Value, withType bool) error {
	if v.IsNone() {
		return nil
	}
	if withType {
		w.Type = TypeName(v.Type())
	}
	raw, err := valueJSON(v)
	if err != nil {
		return fmt.Errorf("nodejson: %s: value: %w", p, err)
	}
	w.Value = raw
	return nil
}

// valueJSON is the JSON text of one value.
func valueJSON(v objects.Value) (json.RawMessage, error) {
	switch v.Type() {
	case objects.TypeInteger, objects.TypeTime:
		return strconv.AppendInt(nil, v.Int(), 10), nil
	case objects.TypeUnsigned:
		return strconv.AppendUint(nil, v.Uint(), 10), nil
	case objects.TypeFloat:
		f := v.Float()
		switch {
		case math.IsNaN(f):
			return json.RawMessage(`"NaN"`), nil
		case math.IsInf(f, 1):
			return json.RawMessage(`"Infinity"`), nil
		case math.IsInf(f, -1):
			return json.RawMessage(`"-Infinity"`), nil
		}
		return json.RawMessage(objects.FormatFloat(f)), nil
	case objects.TypeBoolean:
		return json.RawMessage(strconv.FormatBool(v.Bool())), nil
	case objects.TypeOpaque:
		return jsonString(base64.StdEncoding.EncodeToString(v.Bytes())), nil
	case objects.TypeObjlnk:
		return jsonString(v.Objlnk().String()), nil
	case objects.TypeString, objects.TypeCorelnk:
		if !utf8.ValidString(v.Str()) {
			// The codecs refuse invalid UTF-8, so only a value built in
			// Go gets here; writing U+FFFD would change it silently.
			return nil, objects.ErrUTF8
		}
		return jsonString(v.Str()), nil
	}
	return nil, fmt.Errorf("type %v cannot be written", v.Type())
}

func jsonString(s string) json.RawMessage { return jsontext.AppendString(nil, s) }
