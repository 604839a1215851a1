package senml

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lwm2md/lwm2md/objects"
)

// Decoder resolves packs into LwM2M records and nodes. Format is the
// content format named in errors; Now is the clock that relative times
// (RFC 8428 §4.5.3) count from, time.Now when nil.
type Decoder struct {
	Format objects.Format
	Now    func() time.Time
}

// Error builds the *objects.DecodeError every decoder of this family
// returns: sentinel is ErrMalformed, ErrType and so on, and the message says
// what is wrong.
func (d Decoder) Error(p objects.Path, offset int, sentinel error, format string, args ...any) error {
	return d.Wrap(p, offset, fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), sentinel))
}

// Wrap puts an error that already wraps a sentinel into a DecodeError.
func (d Decoder) Wrap(p objects.Path, offset int, err error) error {
	return &objects.DecodeError{Format: d.Format, Path: p, Offset: offset, Err: err}
}

// Records resolves every record of the pack (RFC 8428 §4.6): the name is
// the base name in force followed by the record's name, as plain string
// concatenation, which reads both "bn":"/3/0/","n":"0" and
// "bn":"/3/0","n":"/0"; the time is the base time plus the record's time,
// relative to now when below 2^28; a numeric value gets the base value
// added. Values are typed by the model where it knows the resource
// (Value.Convert), else by the field: v Float, vs String, vb Boolean, vd
// Opaque, vlo Objlnk. A record without a value names a path only (the
// Read-Composite and Observe-Composite requests of LwM2M Core 1.1 §6.3.8).
func (d Decoder) Records(p Pack, m objects.Models) ([]objects.Record, error) {
	if len(p) > MaxRecords {
		return nil, d.Error(objects.RootPath, -1, objects.ErrMalformed, "pack has %d records, more than %d", len(p), MaxRecords)
	}
	out := make([]objects.Record, 0, len(p))
	var (
		bn  string
		bt  float64
		bv  objects.Value
		now float64
	)
	for i := range p {
		r := &p[i]
		if r.Fields&HasBaseVersion != 0 {
			if r.BaseVersion <= 0 {
				return nil, d.Error(objects.RootPath, r.Offset, objects.ErrMalformed, "record %d: bver %d is not a positive integer", i, r.BaseVersion)
			}
			if r.BaseVersion > Version {
				return nil, d.Error(objects.RootPath, r.Offset, objects.ErrUnsupported, "record %d: SenML version %d is newer than %d", i, r.BaseVersion, Version)
			}
		}
		if r.Fields&HasBaseName != 0 {
			bn = r.BaseName
		}
		if r.Fields&HasBaseTime != 0 {
			bt = r.BaseTime
		}
		if r.Fields&HasBaseValue != 0 {
			bv = r.BaseValue
		}
		path, err := d.name(i, r, bn)
		if err != nil {
			return nil, err
		}
		t, err := d.time(path, r, bt, &now)
		if err != nil {
			return nil, err
		}
		v, err := d.value(path, r, bv, m)
		if err != nil {
			return nil, err
		}
		out = append(out, objects.Record{Path: path, Value: v, Time: t})
	}
	return out, nil
}

func (d Decoder) name(i int, r *Record, bn string) (objects.Path, error) {
	name := bn + r.Name
	if name == "" {
		return objects.Path{}, d.Error(objects.RootPath, r.Offset, objects.ErrMalformed, "record %d has no name", i)
	}
	if !utf8.ValidString(name) {
		return objects.Path{}, d.Error(objects.RootPath, r.Offset, objects.ErrUTF8, "record %d: name is not valid UTF-8", i)
	}
	path, err := objects.ParsePath(name)
	if err != nil {
		return objects.Path{}, d.Error(objects.RootPath, r.Offset, objects.ErrMalformed, "record %d: name %q is not an LwM2M path", i, name)
	}
	if path.IsRoot() {
		return objects.Path{}, d.Error(objects.RootPath, r.Offset, objects.ErrMalformed, "record %d: name %q names no object", i, name)
	}
	return path, nil
}

// time resolves bt + t. Zero means "now, or unknown" (RFC 8428 §4.5.3)
// and stays 0, which objects.Record reads as "no time given".
func (d Decoder) time(p objects.Path, r *Record, bt float64, now *float64) (objects.Time, error) {
	t := bt + r.Time
	if !isFinite(t) {
		return 0, d.Error(p, r.Offset, objects.ErrRange, "time %v is not a finite number", t)
	}
	if t == 0 || t >= RelativeTimeLimit {
		return t, nil
	}
	if *now == 0 {
		clock := d.Now
		if clock == nil {
			clock = time.Now
		}
		*now = float64(clock().UnixNano()) / 1e9
	}
	abs := *now + t
	if abs < RelativeTimeLimit {
		return 0, d.Error(p, r.Offset, objects.ErrRange, "relative time %v resolves to %v, before 1978", t, abs)
	}
	return abs, nil
}

func (d Decoder) value(p objects.Path, r *Record, bv objects.Value, m objects.Models) (objects.Value, error) {
	v := r.Value
	switch r.Kind {
	case KindNone:
		return objects.Value{}, nil
	case KindNumber:
		if !bv.IsNone() {
			v = addNumbers(bv, v)
		}
		if v.Type() == objects.TypeFloat && !isFinite(v.Float()) {
			return objects.Value{}, d.Error(p, r.Offset, objects.ErrRange, "v %v is not a finite number", v.Float())
		}
	case KindString:
		if !utf8.ValidString(v.Str()) {
			return objects.Value{}, d.Error(p, r.Offset, objects.ErrUTF8, "vs is not valid UTF-8")
		}
	case KindData:
		if v.Type() == objects.TypeString {
			b, err := objects.DecodeBase64(v.Str())
			if err != nil {
				return objects.Value{}, d.Error(p, r.Offset, objects.ErrType, "vd %q is not base64", clip(v.Str()))
			}
			v = objects.OpaqueValue(b)
		}
	case KindObjlnk:
		l, err := objects.ParseObjLink(v.Text())
		if err != nil && strings.EqualFold(v.Text(), "FFFF:FFFF") {
			// LwM2M Core 1.1 Table 7.4.4-4 writes the null link in hex.
			l, err = objects.ObjLink{Object: objects.MaxID, Instance: objects.MaxID}, nil
		}
		if err != nil {
			return objects.Value{}, d.Error(p, r.Offset, objects.ErrType, "vlo: %v", err)
		}
		v = objects.ObjlnkValue(l)
	}
	if p.Len() < 3 {
		return objects.Value{}, d.Error(p, r.Offset, objects.ErrMalformed, "a value needs a resource path")
	}
	def := objects.ResourceOf(m, p)
	if def != nil && def.Multiple != (p.Len() == 4) {
		if def.Multiple {
			return objects.Value{}, d.Error(p, r.Offset, objects.ErrMalformed, "resource %d is multiple: a value needs a resource-instance path", p.Resource())
		}
		return objects.Value{}, d.Error(p, r.Offset, objects.ErrMalformed, "resource %d is single: it has no instances", p.Resource())
	}
	t := objects.TypeNone
	if def != nil {
		t = def.Type
	}
	if t == objects.TypeNone {
		if r.Kind != KindNumber {
			return v, nil
		}
		t = objects.TypeFloat // the contract: without a model, v is a Float
	}
	cv, err := v.Convert(t)
	if err != nil {
		return objects.Value{}, d.Wrap(p, r.Offset, fmt.Errorf("%s value for a resource of type %v: %w", r.Kind, t, err))
	}
	return cv, nil
}

// addNumbers applies a base value (RFC 8428 §4.6), exactly when both are
// integers that do not overflow.
func addNumbers(a, b objects.Value) objects.Value {
	if a.Type() == objects.TypeInteger && b.Type() == objects.TypeInteger {
		x, y := a.Int(), b.Int()
		if s := x + y; (s > x) == (y > 0) {
			return objects.IntegerValue(s)
		}
	}
	return objects.FloatValue(toFloat(a) + toFloat(b))
}

func toFloat(v objects.Value) float64 {
	switch v.Type() {
	case objects.TypeInteger:
		return float64(v.Int())
	case objects.TypeUnsigned:
		return float64(v.Uint())
	}
	return v.Float()
}

// Node resolves the pack and builds the node at root from it. Every record
// must lie at or below root and carry a value. An empty pack is an empty
// instance or object, or an empty multiple resource when the model says
// the resource at root is multiple.
func (d Decoder) Node(root objects.Path, p Pack, m objects.Models) (objects.Node, error) {
	if root.IsRoot() {
		return nil, d.Error(root, -1, objects.ErrUnsupported, "a node needs an object path; decode records for the root")
	}
	recs, err := d.Records(p, m)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 && root.IsResource() {
		if def := objects.ResourceOf(m, root); def != nil && def.Multiple {
			return &objects.Resource{ID: root.Resource(), Multiple: true}, nil
		}
	}
	b := objects.NewBuilder(root, m)
	for i, r := range recs {
		if !r.Path.HasPrefix(root) {
			return nil, d.Error(r.Path, p[i].Offset, objects.ErrMalformed, "record lies outside the requested path %s", root)
		}
		if r.Value.IsNone() {
			return nil, d.Error(r.Path, p[i].Offset, objects.ErrMalformed, "record has no value")
		}
		if err := b.Add(r.Path, r.Value); err != nil {
			return nil, d.Error(r.Path, p[i].Offset, objects.ErrMalformed, "%s", unwrapText(err))
		}
	}
	n, err := b.Node()
	if err != nil {
		return nil, d.Error(root, -1, objects.ErrMalformed, "%s", unwrapText(err))
	}
	return n, nil
}

// unwrapText drops the "objects: /3/0/1: " prefix of model errors, since
// the DecodeError already names the path.
func unwrapText(err error) string {
	s := err.Error()
	const pfx = "objects: "
	if len(s) > len(pfx) && s[:len(pfx)] == pfx {
		s = s[len(pfx):]
		for i := 0; i+1 < len(s); i++ {
			if s[i] == ':' && s[i+1] == ' ' {
				return s[i+2:]
			}
		}
	}
	return s
}

// clip shortens payload text quoted in an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
