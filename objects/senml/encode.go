package senml

import (
	"fmt"
	"strconv"

	"github.com/lwm2md/lwm2md/objects"
)

// The pack lwm2md sends has one shape, whatever it carries:
//
//   - The first record has a base name: the deepest path that every record
//     lies strictly below, with a trailing "/", and each record's name is
//     its path relative to it ("bn":"/3/0/","n":"0" ... "n":"6/1"), the
//     style of the examples in LwM2M Core 1.1 §7.4.4 (Table 7.4.4-2).
//   - When every record has the same path (a single resource, a resource
//     instance, the history of one resource) the base name is that path
//     and the records have no name: [{"bn":"/3/0/13","v":...}].
//   - When the records share no object (composite operations across
//     objects) there is no base name and names are absolute paths
//     ("n":"/3/0/0"), as in Tables 7.4.4-6 to 7.4.4-8.
//   - Times: the first record that has one carries it as bt, and later
//     records carry t relative to the base time in force. A later record
//     without a time gets t = -bt, which resolves to 0, "no time". When
//     bt + t would not give the time back exactly, the record starts a new
//     bt instead (RFC 8428 §4.5 lets bt change).
//   - Values go in the field of their type: Integer, Unsigned, Time and
//     Float in v, String and Corelnk in vs, Boolean in vb, Opaque in vd,
//     Objlnk in vlo.
//
// Encode with a node uses the request path as the base instead of the
// deepest common one, so a read of /3/0 always answers "bn":"/3/0/".

// FromNode builds the pack for node n at root. n's kind and ID must match
// root. When m knows a resource, its value is converted to the resource's
// type first (a String "100" for an Integer resource goes out as v 100).
func FromNode(root objects.Path, n objects.Node, m objects.Models) (Pack, error) {
	if err := CheckNode(root, n); err != nil {
		return nil, err
	}
	recs := objects.Flatten(root, n)
	for _, r := range recs {
		if r.Value.IsNone() {
			return nil, fmt.Errorf("senml: %s: resource has no value to encode", r.Path)
		}
	}
	return build(root, recs, m)
}

// CheckNode reports whether n can be encoded at root (objects.CheckNode).
func CheckNode(root objects.Path, n objects.Node) error {
	if err := objects.CheckNode(root, n); err != nil {
		return fmt.Errorf("senml: %w", err)
	}
	return nil
}

// FromRecords builds the pack for records with absolute paths, in their
// order: Send, composite operations and notifications with history. A
// record without a value names its path only.
func FromRecords(recs []objects.Record, m objects.Models) (Pack, error) {
	if len(recs) == 0 {
		return Pack{}, nil
	}
	return build(commonBase(recs), recs, m)
}

// commonBase is the deepest path that all records share. When the records
// differ and one of them sits at that path, it moves up one level, so that
// every record keeps a non-empty relative name.
func commonBase(recs []objects.Record) objects.Path {
	base := recs[0].Path
	same := true
	for _, r := range recs[1:] {
		if r.Path != base {
			same = false
		}
		for !r.Path.HasPrefix(base) {
			base = base.Parent()
		}
	}
	if same {
		return base
	}
	for _, r := range recs {
		if r.Path == base {
			return base.Parent()
		}
	}
	return base
}

func build(base objects.Path, recs []objects.Record, m objects.Models) (Pack, error) {
	pack := make(Pack, len(recs))
	same := true
	for _, r := range recs {
		if r.Path.IsRoot() {
			return nil, fmt.Errorf("senml: a record cannot name the root path")
		}
		if r.Path != base {
			same = false
		}
	}
	var bt float64 // base time in force, 0 before the first timed record
	for i, r := range recs {
		out := &pack[i]
		out.Offset = -1
		switch {
		case same:
			if i == 0 {
				out.Fields |= HasBaseName
				out.BaseName = base.String()
			}
		case base.IsRoot():
			out.Fields |= HasName
			out.Name = r.Path.String()
		default:
			if i == 0 {
				out.Fields |= HasBaseName
				out.BaseName = base.String() + "/"
			}
			out.Fields |= HasName
			out.Name = relative(base, r.Path)
		}
		if err := setTime(out, r, &bt); err != nil {
			return nil, err
		}
		if err := setValue(out, r, m); err != nil {
			return nil, err
		}
	}
	return pack, nil
}

// relative writes p's IDs below base as "6/0".
func relative(base, p objects.Path) string {
	b := make([]byte, 0, 16)
	for i := base.Len(); i < p.Len(); i++ {
		if i > base.Len() {
			b = append(b, '/')
		}
		b = strconv.AppendUint(b, uint64(p.ID(i)), 10)
	}
	return string(b)
}

func setTime(out *Record, r objects.Record, bt *float64) error {
	t := r.Time
	if t == 0 {
		if *bt != 0 {
			out.Fields |= HasTime
			out.Time = -*bt
		}
		return nil
	}
	if !isFinite(t) || t < RelativeTimeLimit {
		// Below 2^28 a receiver would read the time as relative to now.
		return fmt.Errorf("senml: %s: time %v is not an absolute time after 1978", r.Path, t)
	}
	if *bt != 0 {
		if d := t - *bt; *bt+d == t {
			if d != 0 {
				out.Fields |= HasTime
				out.Time = d
			}
			return nil
		}
	}
	out.Fields |= HasBaseTime
	out.BaseTime = t
	*bt = t
	return nil
}

func setValue(out *Record, r objects.Record, m objects.Models) error {
	v := r.Value
	if v.IsNone() {
		return nil
	}
	if t := objects.TypeOf(m, r.Path); t != objects.TypeNone && t != v.Type() {
		cv, err := v.Convert(t)
		if err != nil {
			return fmt.Errorf("senml: %s: %w", r.Path, err)
		}
		v = cv
	}
	switch v.Type() {
	case objects.TypeInteger, objects.TypeUnsigned, objects.TypeFloat:
		out.Kind = KindNumber
	case objects.TypeTime:
		out.Kind, v = KindNumber, objects.IntegerValue(v.Int())
	case objects.TypeString, objects.TypeCorelnk:
		out.Kind = KindString
	case objects.TypeBoolean:
		out.Kind = KindBool
	case objects.TypeOpaque:
		out.Kind = KindData
	case objects.TypeObjlnk:
		out.Kind = KindObjlnk
	default:
		return fmt.Errorf("senml: %s: cannot encode a value of type %v", r.Path, v.Type())
	}
	out.Value = v
	return nil
}
