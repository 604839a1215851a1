package tlv

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/lwm2md/lwm2md/objects"
)

// Codec is the TLV objects.Codec. TLV carries no types, so values are
// typed by the model: a resource the model does not know decodes as
// Opaque (its raw bytes), and on encoding a value is first converted to
// the model's type (a String "5" for an Integer resource becomes 5).
//
// Decoding accepts what clients send for each request path:
//
//   - /o: Object Instance TLVs; bare resource TLVs are taken as instance 0;
//   - /o/i: resource TLVs, or one Object Instance TLV with ID i wrapping
//     them (both occur in the field);
//   - /o/i/r: one Resource TLV or one Multiple Resource TLV with ID r, or
//     bare Resource Instance TLVs; an empty payload is a multiple resource
//     with no instances;
//   - /o/i/r/ri: one Resource Instance TLV with ID ri, or a Multiple
//     Resource TLV with ID r wrapping exactly that instance.
//
// The payload's TLV kinds decide whether a resource is single or multiple;
// when the model knows the resource and disagrees, decoding fails with
// objects.ErrType rather than build a node the model cannot hold.
//
// Encoding writes the shortest form of every header and value, in node
// order (nodes are sorted by ID), and at /o/i the resource TLVs without an
// instance wrapper, as in the spec's Read /3/0 example (LwM2M Core 1.0
// §6.4.3.1) and as Leshan and Wakaama expect in a Write to an instance;
// EncodeInstanceWrapped gives the wrapped form.
type Codec struct{}

var _ objects.Codec = Codec{}

// Decode implements objects.Codec.
func (Codec) Decode(root objects.Path, data []byte, m objects.Models) (objects.Node, error) {
	if root.IsRoot() {
		return nil, nodeErr(root, "TLV cannot carry the root path: %w", objects.ErrUnsupported)
	}
	p := parser{data: data}
	entries, err := p.seq(0, len(data), top, 0, root, 0)
	if err != nil {
		return nil, err
	}
	d := decoder{m: m}
	switch root.Len() {
	case 1:
		return d.object(root, entries)
	case 2:
		return d.instanceAt(root, entries)
	case 3:
		return d.resourceAt(root, entries)
	}
	return d.resourceInstanceAt(root, entries)
}

type decoder struct {
	m objects.Models
}

func (d decoder) object(root objects.Path, entries []Entry) (*objects.Object, error) {
	obj := &objects.Object{ID: root.Object()}
	if len(entries) > 0 && entries[0].Kind != ObjectInstance {
		// A single-instance object read answered without the instance
		// wrapper: take the resources as instance 0.
		in, err := d.instance(root.Child(0), entries)
		if err != nil {
			return nil, err
		}
		obj.Instances = []objects.Instance{in}
		return obj, nil
	}
	obj.Instances = make([]objects.Instance, 0, len(entries))
	for i := range entries {
		e := &entries[i]
		if e.Kind != ObjectInstance {
			return nil, nodeErr(root, "%s TLV %d among object instances: %w", e.Kind, e.ID, objects.ErrMalformed)
		}
		in, err := d.instance(root.Child(e.ID), e.Children)
		if err != nil {
			return nil, err
		}
		obj.Instances = append(obj.Instances, in)
	}
	if err := sortByID(root, obj.Instances, func(in objects.Instance) uint16 { return in.ID }); err != nil {
		return nil, err
	}
	return obj, nil
}

func (d decoder) instanceAt(root objects.Path, entries []Entry) (*objects.Instance, error) {
	for i := range entries {
		e := &entries[i]
		if e.Kind != ObjectInstance {
			continue
		}
		if len(entries) > 1 {
			return nil, nodeErr(root, "an Object Instance TLV must be alone in the payload: %w", objects.ErrMalformed)
		}
		if e.ID != root.Instance() {
			return nil, nodeErr(root.Parent().Child(e.ID), "outside the requested path %s: %w", root, objects.ErrMalformed)
		}
		entries = e.Children
	}
	in, err := d.instance(root, entries)
	if err != nil {
		return nil, err
	}
	return &in, nil
}

// instance builds the instance at p from resource TLVs.
func (d decoder) instance(p objects.Path, entries []Entry) (objects.Instance, error) {
	in := objects.Instance{ID: p.Instance(), Resources: make([]objects.Resource, 0, len(entries))}
	for i := range entries {
		e := &entries[i]
		if e.Kind != Resource && e.Kind != MultipleResource {
			return in, nodeErr(p, "%s TLV %d where resources belong: %w", e.Kind, e.ID, objects.ErrMalformed)
		}
		r, err := d.resource(p.Child(e.ID), e)
		if err != nil {
			return in, err
		}
		in.Resources = append(in.Resources, r)
	}
	err := sortByID(p, in.Resources, func(r objects.Resource) uint16 { return r.ID })
	return in, err
}

func (d decoder) resourceAt(root objects.Path, entries []Entry) (*objects.Resource, error) {
	def := objects.ResourceOf(d.m, root)
	switch {
	case len(entries) == 0:
		if def != nil && !def.Multiple {
			return nil, nodeErr(root, "empty payload for a single resource: %w", objects.ErrMalformed)
		}
		return &objects.Resource{ID: root.Resource(), Multiple: true}, nil
	case entries[0].Kind == ResourceInstance:
		// Bare resource instances, without the Multiple Resource TLV.
		r, err := d.resource(root, &Entry{Kind: MultipleResource, ID: root.Resource(), Children: entries})
		if err != nil {
			return nil, err
		}
		return &r, nil
	case len(entries) > 1:
		return nil, nodeErr(root, "%d TLVs where one resource TLV belongs: %w", len(entries), objects.ErrMalformed)
	}
	e := &entries[0]
	if e.Kind == ObjectInstance {
		return nil, nodeErr(root, "Object Instance TLV where a resource TLV belongs: %w", objects.ErrMalformed)
	}
	if e.ID != root.Resource() {
		return nil, nodeErr(root.Parent().Child(e.ID), "outside the requested path %s: %w", root, objects.ErrMalformed)
	}
	r, err := d.resource(root, e)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// resource builds the resource at p from a Resource or Multiple Resource
// TLV (or from bare resource instances dressed as one).
func (d decoder) resource(p objects.Path, e *Entry) (objects.Resource, error) {
	def := objects.ResourceOf(d.m, p)
	typ := objects.TypeNone
	if def != nil {
		typ = def.Type
	}
	r := objects.Resource{ID: p.Resource(), Multiple: e.Kind == MultipleResource}
	if def != nil && def.Multiple != r.Multiple {
		return r, multiplicityErr(p, def.Multiple)
	}
	if !r.Multiple {
		v, err := DecodeValue(typ, e.Value)
		if err != nil {
			return r, valueErr(p, err)
		}
		r.Value = v
		return r, nil
	}
	r.Instances = make([]objects.ResourceInstance, 0, len(e.Children))
	for i := range e.Children {
		c := &e.Children[i]
		if c.Kind != ResourceInstance {
			return r, nodeErr(p, "%s TLV %d where resource instances belong: %w", c.Kind, c.ID, objects.ErrMalformed)
		}
		v, err := DecodeValue(typ, c.Value)
		if err != nil {
			return r, valueErr(p.Child(c.ID), err)
		}
		r.Instances = append(r.Instances, objects.ResourceInstance{ID: c.ID, Value: v})
	}
	err := sortByID(p, r.Instances, func(ri objects.ResourceInstance) uint16 { return ri.ID })
	return r, err
}

func (d decoder) resourceInstanceAt(root objects.Path, entries []Entry) (*objects.ResourceInstance, error) {
	if len(entries) == 1 && entries[0].Kind == MultipleResource && entries[0].ID == root.Resource() {
		entries = entries[0].Children // the instance wrapped in its resource
	}
	if len(entries) != 1 {
		return nil, nodeErr(root, "%d TLVs where one Resource Instance TLV belongs: %w", len(entries), objects.ErrMalformed)
	}
	e := &entries[0]
	if e.Kind != ResourceInstance {
		return nil, nodeErr(root, "%s TLV %d where a Resource Instance TLV belongs: %w", e.Kind, e.ID, objects.ErrMalformed)
	}
	if e.ID != root.ResourceInstance() {
		return nil, nodeErr(root.Parent().Child(e.ID), "outside the requested path %s: %w", root, objects.ErrMalformed)
	}
	def := objects.ResourceOf(d.m, root)
	typ := objects.TypeNone
	if def != nil {
		if !def.Multiple {
			return nil, multiplicityErr(root, false)
		}
		typ = def.Type
	}
	v, err := DecodeValue(typ, e.Value)
	if err != nil {
		return nil, valueErr(root, err)
	}
	return &objects.ResourceInstance{ID: e.ID, Value: v}, nil
}

// sortByID orders s by ID (payloads are nearly always in order already)
// and rejects a repeated ID, which would make the node ambiguous.
func sortByID[T any](p objects.Path, s []T, id func(T) uint16) error {
	less := func(a, b T) int { return cmp.Compare(id(a), id(b)) }
	if !slices.IsSortedFunc(s, less) {
		slices.SortStableFunc(s, less)
	}
	for i := 1; i < len(s); i++ {
		if id(s[i]) == id(s[i-1]) {
			return nodeErr(p.Child(id(s[i])), "ID given twice: %w", objects.ErrMalformed)
		}
	}
	return nil
}

func nodeErr(p objects.Path, format string, args ...any) error {
	return &objects.DecodeError{Format: objects.FormatTLV, Path: p, Offset: -1, Err: fmt.Errorf(format, args...)}
}

func valueErr(p objects.Path, err error) error {
	return &objects.DecodeError{Format: objects.FormatTLV, Path: p, Offset: -1, Err: err}
}

func multiplicityErr(p objects.Path, multiple bool) error {
	if multiple {
		return nodeErr(p, "the model has a multiple resource, the payload a single value: %w", objects.ErrType)
	}
	return nodeErr(p, "the model has a single resource, the payload resource instances: %w", objects.ErrType)
}

// Encode implements objects.Codec.
func (Codec) Encode(root objects.Path, n objects.Node, m objects.Models) ([]byte, error) {
	if err := checkRoot(root, n); err != nil {
		return nil, err
	}
	e := encoder{m: m}
	var err error
	switch n := n.(type) {
	case *objects.Object:
		for i := range n.Instances {
			if e.b, err = e.instance(e.b, root.Child(n.Instances[i].ID), &n.Instances[i], true); err != nil {
				return nil, err
			}
		}
	case *objects.Instance:
		e.b, err = e.instance(e.b, root, n, false)
	case *objects.Resource:
		e.b, err = e.resource(e.b, root, n)
	case *objects.ResourceInstance:
		if def := objects.ResourceOf(m, root); def != nil && !def.Multiple {
			return nil, fmt.Errorf("tlv: %s: the model has a single resource, without instances: %w", root, objects.ErrType)
		}
		e.b, err = e.leaf(e.b, ResourceInstance, root, n.Value)
	}
	if err != nil {
		return nil, err
	}
	if e.b == nil {
		e.b = []byte{}
	}
	return e.b, nil
}

// EncodeInstanceWrapped encodes an object instance inside its Object
// Instance TLV, as a Create carries it so that the client learns the new
// instance's ID (the Create operation of the Device Management interface,
// LwM2M Core 1.1 §6.3). root is the object path
// the Create goes to, or the instance's own path.
func (Codec) EncodeInstanceWrapped(root objects.Path, in *objects.Instance, m objects.Models) ([]byte, error) {
	switch {
	case in == nil:
		return nil, fmt.Errorf("tlv: %s: no instance to encode", root)
	case root.Len() == 1:
		root = root.Child(in.ID)
	case root.Len() != 2:
		return nil, fmt.Errorf("tlv: %s: an instance needs an object or instance path", root)
	}
	if err := checkRoot(root, in); err != nil {
		return nil, err
	}
	e := encoder{m: m}
	b, err := e.instance(nil, root, in, true)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// checkRoot verifies that n is the node root addresses.
func checkRoot(root objects.Path, n objects.Node) error {
	if err := objects.CheckNode(root, n); err != nil {
		return fmt.Errorf("tlv: %w", err)
	}
	return nil
}

type encoder struct {
	m objects.Models
	b []byte
}

// maxHeader is the widest TLV header: type, 16-bit ID, 24-bit length.
const maxHeader = 6

// open reserves room for a container header; close writes it once the
// content length is known and moves the content up to meet it.
func open(b []byte) ([]byte, int) {
	return append(b, make([]byte, maxHeader)...), len(b)
}

func closeContainer(b []byte, start int, k Kind, id uint16, p objects.Path) ([]byte, error) {
	n := len(b) - start - maxHeader
	if n > MaxValueLen {
		return nil, fmt.Errorf("tlv: %s: %d bytes, over the 24-bit TLV length", p, n)
	}
	var hdr [maxHeader]byte
	h := appendHeader(hdr[:0], k, id, n)
	copy(b[start+len(h):], b[start+maxHeader:])
	copy(b[start:], h)
	return b[:len(b)-(maxHeader-len(h))], nil
}

func (e encoder) instance(b []byte, p objects.Path, in *objects.Instance, wrap bool) ([]byte, error) {
	start := 0
	if wrap {
		b, start = open(b)
	}
	var err error
	for i := range in.Resources {
		r := &in.Resources[i]
		if b, err = e.resource(b, p.Child(r.ID), r); err != nil {
			return nil, err
		}
	}
	if wrap {
		return closeContainer(b, start, ObjectInstance, in.ID, p)
	}
	return b, nil
}

func (e encoder) resource(b []byte, p objects.Path, r *objects.Resource) ([]byte, error) {
	if def := objects.ResourceOf(e.m, p); def != nil && def.Multiple != r.Multiple {
		return nil, fmt.Errorf("tlv: %s: node and model disagree on whether the resource is multiple: %w", p, objects.ErrType)
	}
	if !r.Multiple {
		return e.leaf(b, Resource, p, r.Value)
	}
	b, start := open(b)
	var err error
	for i := range r.Instances {
		ri := &r.Instances[i]
		if b, err = e.leaf(b, ResourceInstance, p.Child(ri.ID), ri.Value); err != nil {
			return nil, err
		}
	}
	return closeContainer(b, start, MultipleResource, r.ID, p)
}

// leaf writes a Resource or Resource Instance TLV, converting the value
// to the model's type first.
func (e encoder) leaf(b []byte, k Kind, p objects.Path, v objects.Value) ([]byte, error) {
	if v.IsNone() {
		return nil, fmt.Errorf("tlv: %s: no value to encode: %w", p, objects.ErrType)
	}
	if t := objects.TypeOf(e.m, p); t != objects.TypeNone && t != v.Type() {
		w, err := v.Convert(t)
		if err != nil {
			return nil, fmt.Errorf("tlv: %s: %w", p, err)
		}
		v = w
	}
	n := valueLen(v)
	if n > MaxValueLen {
		return nil, fmt.Errorf("tlv: %s: %d-byte value, over the 24-bit TLV length", p, n)
	}
	b = appendHeader(b, k, p.ID(p.Len()-1), n)
	b, err := AppendValue(b, v)
	if err != nil {
		return nil, fmt.Errorf("tlv: %s: %w", p, err)
	}
	return b, nil
}
