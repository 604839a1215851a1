package nodejson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/internal/jsontext"
)

// Unmarshal reads the JSON node for root, which must name an object, an
// instance, a resource or a resource instance. Nested nodes name
// themselves by "path" or "id" (or both, which must agree); the top node
// may leave out its path. m may be nil: then the JSON "type" decides, and
// without one a JSON string is a string, a number an integer or a float.
func Unmarshal(data []byte, root objects.Path, m objects.Models) (objects.Node, error) {
	if root.IsRoot() {
		return nil, errAt(root, "path", objects.ErrMalformed, "a node needs an object, instance or resource path")
	}
	var w wire
	if err := decodeStrict(data, root, &w); err != nil {
		return nil, err
	}
	d := decoder{m: m}
	n, err := d.node(root, w, true)
	if err != nil {
		return nil, err
	}
	objects.SortNode(n)
	return n, nil
}

// UnmarshalRecords reads a JSON array of records. A record without a
// value names a path only (Read-/Observe-Composite); one with a value must
// name a resource or resource instance whose model it fits.
func UnmarshalRecords(data []byte, m objects.Models) ([]objects.Record, error) {
	var ws []wire
	if err := decodeStrict(data, objects.RootPath, &ws); err != nil {
		return nil, err
	}
	d := decoder{m: m}
	recs := make([]objects.Record, 0, len(ws))
	for i, w := range ws {
		r, err := d.record(i, w)
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// decodeStrict refuses invalid UTF-8 (encoding/json would replace it),
// unknown fields and anything after the first JSON value.
func decodeStrict(data []byte, p objects.Path, v any) error {
	if !utf8.Valid(data) {
		return errAt(p, "", objects.ErrUTF8, "body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errAt(p, "", objects.ErrMalformed, "empty body")
		}
		return asError(p, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errAt(p, "", objects.ErrMalformed, "data after the JSON value")
	}
	return nil
}

type decoder struct{ m objects.Models }

// childPath resolves a nested node's "path"/"id" below parent.
func childPath(parent objects.Path, w wire, idx int) (objects.Path, error) {
	at := parent
	field := "[" + strconv.Itoa(idx) + "]"
	if w.Path == "" && w.ID == nil {
		return at, errAt(at, field, objects.ErrMalformed, "a nested node needs a path or an id")
	}
	var p objects.Path
	if w.Path != "" {
		q, err := objects.ParsePath(w.Path)
		if err != nil {
			return at, errAt(at, field+".path", objects.ErrMalformed, "%v", err)
		}
		if q.Len() != parent.Len()+1 || q.Parent() != parent {
			return at, errAt(at, field+".path", objects.ErrMalformed, "%s is not a child of %s", q, parent)
		}
		p = q
	}
	if w.ID != nil {
		q := parent.Child(*w.ID)
		if w.Path != "" && q != p {
			return at, errAt(at, field+".id", objects.ErrMalformed, "id %d disagrees with path %s", *w.ID, p)
		}
		p = q
	}
	return p, nil
}

// node builds the node at p; top is true for the outermost node, whose
// path may be left out.
func (d decoder) node(p objects.Path, w wire, top bool) (objects.Node, error) {
	if top && w.Path != "" {
		q, err := objects.ParsePath(w.Path)
		if err != nil {
			return nil, errAt(p, "path", objects.ErrMalformed, "%v", err)
		}
		if q != p {
			return nil, errAt(p, "path", objects.ErrMalformed, "node says %s, the request names %s", q, p)
		}
	}
	if top && w.ID != nil && *w.ID != p.ID(p.Len()-1) {
		return nil, errAt(p, "id", objects.ErrMalformed, "id %d disagrees with the path", *w.ID)
	}
	if w.Time != nil {
		return nil, errAt(p, "time", objects.ErrMalformed, "a node has no time; records do")
	}
	switch p.Len() {
	case 1:
		return d.object(p, w)
	case 2:
		return d.instance(p, w)
	case 3:
		return d.resource(p, w)
	}
	return d.resourceInstance(p, w, objects.TypeNone)
}

func (d decoder) object(p objects.Path, w wire) (objects.Node, error) {
	if err := only(p, w, "instances"); err != nil {
		return nil, err
	}
	if w.Instances == nil {
		return nil, errAt(p, "instances", objects.ErrMalformed, "an object needs instances")
	}
	o := &objects.Object{ID: p.Object()}
	seen := map[uint16]bool{}
	for i, c := range *w.Instances {
		cp, err := childPath(p, c, i)
		if err != nil {
			return nil, err
		}
		if seen[cp.Instance()] {
			return nil, errAt(cp, "", objects.ErrMalformed, "instance given twice")
		}
		seen[cp.Instance()] = true
		n, err := d.instance(cp, c)
		if err != nil {
			return nil, err
		}
		o.Instances = append(o.Instances, *n.(*objects.Instance))
	}
	return o, nil
}

func (d decoder) instance(p objects.Path, w wire) (objects.Node, error) {
	if err := only(p, w, "resources"); err != nil {
		return nil, err
	}
	if w.Resources == nil {
		return nil, errAt(p, "resources", objects.ErrMalformed, "an instance needs resources")
	}
	in := &objects.Instance{ID: p.Instance()}
	seen := map[uint16]bool{}
	for i, c := range *w.Resources {
		cp, err := childPath(p, c, i)
		if err != nil {
			return nil, err
		}
		if seen[cp.Resource()] {
			return nil, errAt(cp, "", objects.ErrMalformed, "resource given twice")
		}
		seen[cp.Resource()] = true
		n, err := d.resource(cp, c)
		if err != nil {
			return nil, err
		}
		in.Resources = append(in.Resources, *n.(*objects.Resource))
	}
	return in, nil
}

// only refuses the fields that do not belong to a node at p's depth.
func only(p objects.Path, w wire, children string) error {
	if len(w.Value) > 0 || w.Type != "" {
		return errAt(p, "value", objects.ErrMalformed, "%s has no value; give %s", kindOf(p), children)
	}
	if children != "instances" && w.Instances != nil {
		return errAt(p, "instances", objects.ErrMalformed, "%s has resources, not instances", kindOf(p))
	}
	if children != "resources" && w.Resources != nil {
		return errAt(p, "resources", objects.ErrMalformed, "%s has no resources", kindOf(p))
	}
	return nil
}

func kindOf(p objects.Path) string {
	return [...]string{"the root", "an object", "an instance", "a resource", "a resource instance"}[p.Len()]
}

func (d decoder) resource(p objects.Path, w wire) (objects.Node, error) {
	if w.Resources != nil {
		return nil, errAt(p, "resources", objects.ErrMalformed, "a resource has no resources")
	}
	def := objects.ResourceOf(d.m, p)
	multiple := w.Instances != nil
	if def != nil && def.Multiple != multiple {
		if def.Multiple {
			return nil, errAt(p, "instances", objects.ErrType, "resource %q is multiple: give instances", def.Name)
		}
		return nil, errAt(p, "instances", objects.ErrType, "resource %q is single: give a value", def.Name)
	}
	if !multiple {
		t, err := parseType(p, w.Type)
		if err != nil {
			return nil, err
		}
		v, err := d.value(p, t, w.Value)
		if err != nil {
			return nil, err
		}
		r := objects.NewSingle(p.Resource(), v)
		return &r, nil
	}
	if len(w.Value) > 0 {
		return nil, errAt(p, "value", objects.ErrMalformed, "a multiple resource has instances, not a value")
	}
	t, err := parseType(p, w.Type)
	if err != nil {
		return nil, err
	}
	r := &objects.Resource{ID: p.Resource(), Multiple: true, Instances: []objects.ResourceInstance{}}
	seen := map[uint16]bool{}
	for i, c := range *w.Instances {
		cp, err := childPath(p, c, i)
		if err != nil {
			return nil, err
		}
		if seen[cp.ResourceInstance()] {
			return nil, errAt(cp, "", objects.ErrMalformed, "resource instance given twice")
		}
		seen[cp.ResourceInstance()] = true
		n, err := d.resourceInstance(cp, c, t)
		if err != nil {
			return nil, err
		}
		r.Instances = append(r.Instances, *n.(*objects.ResourceInstance))
	}
	return r, nil
}

// resourceInstance reads one instance; outer is the type its resource
// declared, which the instance's own "type" may repeat.
func (d decoder) resourceInstance(p objects.Path, w wire, outer objects.Type) (objects.Node, error) {
	if w.Instances != nil || w.Resources != nil {
		return nil, errAt(p, "instances", objects.ErrMalformed, "a resource instance has a value, no children")
	}
	if w.Time != nil {
		return nil, errAt(p, "time", objects.ErrMalformed, "a node has no time; records do")
	}
	t, err := parseType(p, w.Type)
	if err != nil {
		return nil, err
	}
	if t == objects.TypeNone {
		t = outer
	} else if outer != objects.TypeNone && t != outer {
		return nil, errAt(p, "type", objects.ErrType, "%s in a resource of %s", TypeName(t), TypeName(outer))
	}
	if def := objects.ResourceOf(d.m, p); def != nil && !def.Multiple {
		return nil, errAt(p, "path", objects.ErrType, "resource %q is single: it has no instances", def.Name)
	}
	v, err := d.value(p, t, w.Value)
	if err != nil {
		return nil, err
	}
	return &objects.ResourceInstance{ID: p.ResourceInstance(), Value: v}, nil
}

func (d decoder) record(i int, w wire) (objects.Record, error) {
	at := objects.RootPath
	field := "[" + strconv.Itoa(i) + "]"
	if w.Path == "" {
		return objects.Record{}, errAt(at, field+".path", objects.ErrMalformed, "a record needs a path")
	}
	p, err := objects.ParsePath(w.Path)
	if err != nil || p.IsRoot() {
		return objects.Record{}, errAt(at, field+".path", objects.ErrMalformed, "%q is not an object, instance or resource path", w.Path)
	}
	if w.ID != nil || w.Instances != nil || w.Resources != nil {
		return objects.Record{}, errAt(p, "", objects.ErrMalformed, "a record has path, type, value and time only")
	}
	r := objects.Record{Path: p}
	if w.Time != nil {
		if math.IsNaN(*w.Time) || math.IsInf(*w.Time, 0) {
			return r, errAt(p, "time", objects.ErrRange, "not a time")
		}
		r.Time = *w.Time
	}
	if isNull(w.Value) {
		if w.Type != "" {
			return r, errAt(p, "value", objects.ErrMalformed, "a type without a value")
		}
		return r, nil
	}
	if p.Len() < 3 {
		return r, errAt(p, "value", objects.ErrMalformed, "a value needs a resource or resource-instance path")
	}
	if def := objects.ResourceOf(d.m, p); def != nil && def.Multiple != (p.Len() == 4) {
		if def.Multiple {
			return r, errAt(p, "path", objects.ErrType, "resource %q is multiple: a value needs a resource-instance path", def.Name)
		}
		return r, errAt(p, "path", objects.ErrType, "resource %q is single: it has no instances", def.Name)
	}
	t, err := parseType(p, w.Type)
	if err != nil {
		return r, err
	}
	r.Value, err = d.value(p, t, w.Value)
	return r, err
}

// value reads raw as a value at p. declared is the JSON "type" (TypeNone
// when not given); the model's type wins, and a declared type that
// disagrees with it is an error rather than a silent conversion.
func (d decoder) value(p objects.Path, declared objects.Type, raw json.RawMessage) (objects.Value, error) {
	def := objects.ResourceOf(d.m, p)
	t := declared
	if def != nil && def.Type != objects.TypeNone {
		if declared != objects.TypeNone && declared != def.Type {
			return objects.Value{}, errAt(p, "type", objects.ErrType, "%s, but resource %q is %s", TypeName(declared), def.Name, TypeName(def.Type))
		}
		t = def.Type
	}
	if def != nil && def.Type == objects.TypeNone && def.Operations.Executable() {
		if !isNull(raw) {
			return objects.Value{}, errAt(p, "value", objects.ErrType, "resource %q is executable and has no value", def.Name)
		}
		return objects.Value{}, nil
	}
	if isNull(raw) {
		return objects.Value{}, errAt(p, "value", objects.ErrMalformed, "missing")
	}
	v, err := parseValue(t, raw)
	if err != nil {
		return objects.Value{}, &Error{Path: p, Field: "value", Err: err}
	}
	if def != nil {
		if err := checkRange(def, v); err != nil {
			return objects.Value{}, &Error{Path: p, Field: "value", Err: err}
		}
	}
	return v, nil
}

// parseValue reads one JSON value as type t; TypeNone infers the type
// from the JSON (string, integer or float, boolean).
func parseValue(t objects.Type, raw json.RawMessage) (objects.Value, error) {
	raw = bytes.TrimSpace(raw)
	switch raw[0] {
	case '"':
		s, end, jerr := jsontext.String(raw, 0)
		if jerr != nil {
			return objects.Value{}, jerr.Kind
		}
		if end != len(raw) {
			return objects.Value{}, objects.ErrMalformed
		}
		return stringValue(t, s)
	case 't', 'f':
		b := raw[0] == 't'
		if t != objects.TypeNone && t != objects.TypeBoolean {
			return objects.Value{}, typeErr("a boolean", t)
		}
		return objects.BooleanValue(b), nil
	case '{', '[':
		return objects.Value{}, typeErr("an "+map[byte]string{'{': "object", '[': "array"}[raw[0]], t)
	}
	return numberValue(t, string(raw))
}

func typeErr(what string, t objects.Type) error {
	return fmt.Errorf("%s is not %s: %w", what, article(t), objects.ErrType)
}

func article(t objects.Type) string {
	switch t {
	case objects.TypeInteger, objects.TypeUnsigned, objects.TypeOpaque, objects.TypeObjlnk:
		return "an " + TypeName(t)
	}
	return "a " + TypeName(t)
}

// stringValue reads a JSON string: the value itself for string types, the
// base64 of opaque, "o:i", a float's non-finite names, an RFC 3339 time or
// the decimal text of a large integer (JavaScript loses integers above
// 2^53 as numbers).
func stringValue(t objects.Type, s string) (objects.Value, error) {
	switch t {
	case objects.TypeNone, objects.TypeString:
		return objects.StringValue(s), nil
	case objects.TypeCorelnk:
		return objects.CorelnkValue(s), nil
	case objects.TypeFloat:
		switch s {
		case "NaN":
			return objects.FloatValue(math.NaN()), nil
		case "Infinity":
			return objects.FloatValue(math.Inf(1)), nil
		case "-Infinity":
			return objects.FloatValue(math.Inf(-1)), nil
		}
		return objects.Value{}, typeErr("a string other than NaN, Infinity or -Infinity", t)
	case objects.TypeTime:
		if tm, err := time.Parse(time.RFC3339, s); err == nil {
			return objects.TimeValue(tm), nil
		}
	case objects.TypeBoolean:
		return objects.Value{}, typeErr("a string", t)
	}
	v, err := objects.ParseText(t, s)
	if err != nil {
		if errors.Is(err, objects.ErrRange) || errors.Is(err, objects.ErrType) || errors.Is(err, objects.ErrUTF8) {
			return objects.Value{}, err
		}
		return objects.Value{}, fmt.Errorf("%v: %w", err, objects.ErrType)
	}
	return v, nil
}

// numberValue reads a JSON number exactly: integers through strconv (no
// float64 detour that would round above 2^53), fractions as floats that
// convert to the type only when nothing is lost.
func numberValue(t objects.Type, s string) (objects.Value, error) {
	if !jsontext.ValidNumber(s) {
		return objects.Value{}, objects.ErrMalformed
	}
	integral := !strings.ContainsAny(s, ".eE")
	switch t {
	case objects.TypeString, objects.TypeCorelnk, objects.TypeOpaque, objects.TypeObjlnk, objects.TypeBoolean:
		return objects.Value{}, typeErr("a number", t)
	case objects.TypeUnsigned:
		if integral {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return objects.Value{}, fmt.Errorf("%s does not fit an unsigned 64-bit integer: %w", s, objects.ErrRange)
			}
			return objects.UnsignedValue(n), nil
		}
	case objects.TypeNone, objects.TypeInteger, objects.TypeTime:
		if integral {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return objects.Value{}, fmt.Errorf("%s does not fit a signed 64-bit integer: %w", s, objects.ErrRange)
			}
			if t == objects.TypeTime {
				return objects.TimeSecondsValue(n), nil
			}
			return objects.IntegerValue(n), nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return objects.Value{}, fmt.Errorf("%s does not fit a 64-bit float: %w", s, objects.ErrRange)
	}
	if t == objects.TypeNone {
		return objects.FloatValue(f), nil
	}
	return objects.FloatValue(f).Convert(t)
}
