// Package lwm2mcbor implements the LwM2M CBOR content format
// (application/vnd.oma.lwm2m+cbor, 11544; LwM2M Core 1.2 §7.4.6): nested
// CBOR maps whose keys are path segments, either one ID (an unsigned
// integer) or several IDs at once (an array of unsigned integers), and
// whose leaves are resource values typed by their CBOR type. Paths in
// the payload are absolute: {[3, 0]: {0: "x", 6: {0: 1}}} is /3/0/0 and
// /3/0/6/0 whatever path was requested.
//
// Decoding accepts what the spec allows and the field sends: definite
// and indefinite lengths (Anjay writes every map as bf … ff), integer and
// array keys mixed at any level, floats of every width, byte and text
// strings in chunks, Time as an integer with or without tag 1. The
// payload must first be well-formed CBOR (checked with fxamacker/cbor);
// duplicate keys in a map, keys that are not uint16 IDs, paths deeper
// than four IDs and a top level that is not a map are refused.
//
// Encoding is canonical: definite lengths, shortest integer heads,
// floats in the shortest exact width, keys in ascending path order (IDs
// compared as numbers, a parent before its children; not the bytewise
// key order of RFC 8949 §4.2.1, which would put every array key after
// every integer key), and the
// compact key form: a map level whose only content is one child is
// folded into its parent's key, so every single-child chain of IDs
// becomes one array key ({[3, 0, 0]: "x"} for a resource read,
// {[3, 0]: {…, [11, 0]: 0}} for an instance whose resource 11 has one
// instance); a key with a single ID is a plain integer. Empty objects,
// instances and multiple resources are empty maps. Time is an untagged
// integer and Objlnk the text "o:i", as Anjay sends them. LwM2M CBOR
// carries no timestamps.
package lwm2mcbor

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fxamacker/cbor/v2"

	"github.com/lwm2md/lwm2md/objects"
)

// Codec is the LwM2M CBOR codec.
type Codec struct{}

var (
	_ objects.Codec       = Codec{}
	_ objects.RecordCodec = Codec{}
)

// maxNesting bounds arrays, maps and tags inside one another. A valid
// payload needs at most 5 maps (the top level and one per path ID), a
// key array or a tag holding an array.
const maxNesting = 16

var wellformed = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		IndefLength:     cbor.IndefLengthAllowed,
		TagsMd:          cbor.TagsAllowed,
		MaxNestedLevels: maxNesting,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// Decode decodes the node at root from data.
func (c Codec) Decode(root objects.Path, data []byte, m objects.Models) (objects.Node, error) {
	if root.IsRoot() {
		return nil, decodeErr(root, -1, fmt.Errorf("a node needs at least an object path: %w", objects.ErrUnsupported))
	}
	events, err := parse(root, data)
	if err != nil {
		return nil, err
	}
	for i, ev := range events {
		if !ev.path.HasPrefix(root) {
			return nil, decodeErr(ev.path, ev.off, fmt.Errorf("lies outside the requested path %s: %w", root, objects.ErrMalformed))
		}
		if ev.empty {
			if def := objects.ResourceOf(m, ev.path); ev.path.Len() == 3 && def != nil && !def.Multiple {
				return nil, decodeErr(ev.path, ev.off, fmt.Errorf("resource %d is single: it cannot be an empty map: %w", ev.path.Resource(), objects.ErrType))
			}
			continue
		}
		if ev.value.IsNone() {
			return nil, decodeErr(ev.path, ev.off, fmt.Errorf("null is not a resource value: %w", objects.ErrType))
		}
		v, err := objects.Conform(m, ev.path, ev.value)
		if err != nil {
			return nil, decodeErr(ev.path, ev.off, err)
		}
		events[i].value = v
	}
	return build(root, events, m)
}

// DecodeRecords decodes every value as a record. A null value is a
// record with no value (a path only); empty maps give no records.
func (c Codec) DecodeRecords(data []byte, m objects.Models) ([]objects.Record, error) {
	events, err := parse(objects.RootPath, data)
	if err != nil {
		return nil, err
	}
	recs := make([]objects.Record, 0, len(events))
	for _, ev := range events {
		if ev.empty {
			continue
		}
		v := ev.value
		if !v.IsNone() {
			if v, err = objects.Conform(m, ev.path, v); err != nil {
				return nil, decodeErr(ev.path, ev.off, err)
			}
		}
		recs = append(recs, objects.Record{Path: ev.path, Value: v})
	}
	return recs, nil
}

// Encode encodes n, the node at root.
func (c Codec) Encode(root objects.Path, n objects.Node, m objects.Models) ([]byte, error) {
	if err := objects.CheckNode(root, n); err != nil {
		return nil, fmt.Errorf("lwm2mcbor: %w", err)
	}
	leaves, err := collect(root, n, make([]leaf, 0, 32))
	if err != nil {
		return nil, err
	}
	return encode(leaves)
}

// EncodeRecords encodes records; a record with no value is written as
// null. LwM2M CBOR has no timestamps: a record with a time is refused.
func (c Codec) EncodeRecords(recs []objects.Record, m objects.Models) ([]byte, error) {
	leaves := make([]leaf, len(recs))
	for i, r := range recs {
		switch {
		case r.Time != 0:
			return nil, fmt.Errorf("lwm2mcbor: %s: LwM2M CBOR carries no timestamps: %w", r.Path, objects.ErrUnsupported)
		case r.Path.IsRoot():
			return nil, fmt.Errorf("lwm2mcbor: a record needs a path below the root")
		case !r.Value.IsNone() && r.Path.Len() < 3:
			return nil, fmt.Errorf("lwm2mcbor: %s: a value needs a resource path", r.Path)
		}
		leaves[i] = leaf{path: r.Path, value: r.Value}
	}
	return encode(leaves)
}

// leaf is a value, or an empty map, at a path: what the encoder writes.
type leaf struct {
	path  objects.Path
	value objects.Value
	empty bool
}

func byPath(a, b leaf) int { return a.path.Compare(b.path) }

// collect lists the leaves of n, which lives at p.
func collect(p objects.Path, n objects.Node, out []leaf) ([]leaf, error) {
	var err error
	switch n := n.(type) {
	case *objects.Object:
		if len(n.Instances) == 0 {
			return append(out, leaf{path: p, empty: true}), nil
		}
		for i := range n.Instances {
			if out, err = collect(p.Child(n.Instances[i].ID), &n.Instances[i], out); err != nil {
				return nil, err
			}
		}
	case *objects.Instance:
		if len(n.Resources) == 0 {
			return append(out, leaf{path: p, empty: true}), nil
		}
		for i := range n.Resources {
			if out, err = collect(p.Child(n.Resources[i].ID), &n.Resources[i], out); err != nil {
				return nil, err
			}
		}
	case *objects.Resource:
		if !n.Multiple {
			return appendLeaf(out, p, n.Value)
		}
		if len(n.Instances) == 0 {
			return append(out, leaf{path: p, empty: true}), nil
		}
		for _, ri := range n.Instances {
			if out, err = appendLeaf(out, p.Child(ri.ID), ri.Value); err != nil {
				return nil, err
			}
		}
	case *objects.ResourceInstance:
		return appendLeaf(out, p, n.Value)
	}
	return out, nil
}

func appendLeaf(out []leaf, p objects.Path, v objects.Value) ([]leaf, error) {
	if v.IsNone() {
		return nil, fmt.Errorf("lwm2mcbor: %s: resource has no value", p)
	}
	return append(out, leaf{path: p, value: v}), nil
}

func encode(leaves []leaf) ([]byte, error) {
	if !slices.IsSortedFunc(leaves, byPath) {
		leaves = slices.Clone(leaves)
		slices.SortStableFunc(leaves, byPath)
	}
	return appendMap(make([]byte, 0, 16+16*len(leaves)), leaves, 0)
}

// appendMap writes the map holding leaves, which all share the first
// depth IDs and are sorted. Each group of leaves with the same next ID is
// one key; the key grows while the group is a single-child chain.
func appendMap(b []byte, leaves []leaf, depth int) ([]byte, error) {
	groups := 0
	for i := 0; i < len(leaves); i = groupEnd(leaves, i, depth) {
		groups++
	}
	b = appendHead(b, majMap, uint64(groups))
	for i := 0; i < len(leaves); {
		j := groupEnd(leaves, i, depth)
		g := leaves[i:j]
		first := g[0].path
		l := depth + 1
		for first.Len() > l && first.ID(l) == g[len(g)-1].path.ID(l) {
			l++
		}
		var ids [4]uint16
		for k := depth; k < l; k++ {
			ids[k-depth] = first.ID(k)
		}
		b = appendKey(b, ids[:l-depth])
		var err error
		switch {
		case first.Len() > l:
			b, err = appendMap(b, g, l)
		case len(g) > 1 && g[1].path == first:
			err = fmt.Errorf("lwm2mcbor: %s: path given twice", first)
		case len(g) > 1:
			err = fmt.Errorf("lwm2mcbor: %s holds a value and also %s", first, g[1].path)
		case g[0].empty:
			b = appendHead(b, majMap, 0)
		default:
			if b, err = appendValue(b, g[0].value); err != nil {
				err = fmt.Errorf("lwm2mcbor: %s: %w", first, err)
			}
		}
		if err != nil {
			return nil, err
		}
		i = j
	}
	return b, nil
}

func groupEnd(leaves []leaf, i, depth int) int {
	id := leaves[i].path.ID(depth)
	j := i + 1
	for j < len(leaves) && leaves[j].path.ID(depth) == id {
		j++
	}
	return j
}

// event is what the walker finds at a path: a value or an empty map.
type event struct {
	path  objects.Path
	value objects.Value
	empty bool
	off   int
}

// parse checks data and lists its values and empty maps in payload
// order, refusing two values for one path.
func parse(root objects.Path, data []byte) ([]event, error) {
	if len(data) == 0 {
		return nil, decodeErr(root, 0, fmt.Errorf("empty payload: %w", objects.ErrMalformed))
	}
	if err := wellformed.Wellformed(data); err != nil {
		return nil, decodeErr(root, -1, fmt.Errorf("%s: %w", strings.TrimPrefix(err.Error(), "cbor: "), objects.ErrMalformed))
	}
	if data[0]>>5 != majMap {
		return nil, decodeErr(root, 0, fmt.Errorf("top level is not a map: %w", objects.ErrMalformed))
	}
	w := walker{r: reader{data: data}, events: make([]event, 0, 16)}
	if _, err := w.walkMap(objects.RootPath); err != nil {
		return nil, err
	}
	if err := conflicts(w.events); err != nil {
		return nil, err
	}
	return w.events, nil
}

type walker struct {
	r      reader
	events []event
}

// walkMap reads the map at the reader, whose keys extend prefix, and
// returns its number of pairs. Recursion is bounded: every level adds
// at least one ID and a path has at most four.
func (w *walker) walkMap(prefix objects.Path) (int, error) {
	maj, ai, n, err := w.r.head()
	if err != nil {
		return 0, wireErr(prefix, err)
	}
	if maj != majMap {
		return 0, decodeErr(prefix, w.r.off, fmt.Errorf("expected a map: %w", objects.ErrMalformed))
	}
	indef := ai == aiIndefinite
	var keys keySet
	pairs := 0
	for ; indef || uint64(pairs) < n; pairs++ {
		if indef && w.r.atBreak() {
			w.r.off++
			break
		}
		koff := w.r.off
		ids, k, err := w.r.key()
		if err != nil {
			return 0, wireErr(prefix, err)
		}
		if prefix.Len()+k > 4 {
			return 0, decodeErr(prefix, koff, fmt.Errorf("key adds %d IDs to a path of %d: %w: %w", k, prefix.Len(), objects.ErrTooDeep, objects.ErrMalformed))
		}
		p := prefix
		for _, id := range ids[:k] {
			p = p.Child(id)
		}
		if !keys.add(p) {
			return 0, decodeErr(p, koff, fmt.Errorf("duplicate key: %w", objects.ErrMalformed))
		}
		voff := w.r.off
		if w.r.peekMajor() == majMap {
			if p.Len() == 4 {
				return 0, decodeErr(p, voff, fmt.Errorf("a resource instance holds a value, not a map: %w", objects.ErrMalformed))
			}
			np, err := w.walkMap(p)
			if err != nil {
				return 0, err
			}
			if np == 0 {
				w.events = append(w.events, event{path: p, empty: true, off: voff})
			}
			continue
		}
		v, err := w.r.value()
		if err != nil {
			return 0, wireErr(p, err)
		}
		w.events = append(w.events, event{path: p, value: v, off: voff})
	}
	return pairs, nil
}

// keySet finds duplicate keys of one map: a short list first, a map
// once the CBOR map is large, so that a huge map stays linear.
type keySet struct {
	few  [8]objects.Path
	n    int
	many map[objects.Path]struct{}
}

func (k *keySet) add(p objects.Path) bool {
	if k.many == nil {
		for _, q := range k.few[:k.n] {
			if q == p {
				return false
			}
		}
		if k.n < len(k.few) {
			k.few[k.n] = p
			k.n++
			return true
		}
		k.many = make(map[objects.Path]struct{}, 2*len(k.few))
		for _, q := range k.few {
			k.many[q] = struct{}{}
		}
	}
	if _, dup := k.many[p]; dup {
		return false
	}
	k.many[p] = struct{}{}
	return true
}

// conflicts refuses two values for one path and a value at a path that
// also has paths below it ({[3,0,1]: 5, [3,0]: {1: 6}}).
func conflicts(events []event) error {
	if len(events) < 2 {
		return nil
	}
	type at struct {
		path  objects.Path
		empty bool
		off   int
	}
	list := make([]at, len(events))
	for i, ev := range events {
		list[i] = at{ev.path, ev.empty, ev.off}
	}
	slices.SortStableFunc(list, func(a, b at) int { return a.path.Compare(b.path) })
	for i := 1; i < len(list); i++ {
		a, b := list[i-1], list[i]
		switch {
		case a.path == b.path && !(a.empty && b.empty):
			return decodeErr(b.path, b.off, fmt.Errorf("value given twice: %w", objects.ErrMalformed))
		case a.path != b.path && b.path.HasPrefix(a.path) && !a.empty:
			return decodeErr(b.path, b.off, fmt.Errorf("%s holds a value, so nothing can lie below it: %w", a.path, objects.ErrMalformed))
		}
	}
	return nil
}

func decodeErr(p objects.Path, off int, err error) error {
	return &objects.DecodeError{Format: objects.FormatLwM2MCBOR, Path: p, Offset: off, Err: err}
}

func wireErr(p objects.Path, err error) error {
	var we *wireError
	if errors.As(err, &we) {
		return decodeErr(p, we.off, we)
	}
	return decodeErr(p, -1, err)
}
