package objects

import (
	"errors"
	"fmt"
	"slices"
	"sort"
)

// Node is one of *Object, *Instance, *Resource or *ResourceInstance: what
// a payload for an object, instance, resource or resource-instance path
// holds.
type Node interface {
	nodeID() uint16
}

// Object is an object with its instances, sorted by ID.
type Object struct {
	ID        uint16
	Instances []Instance
}

// Instance is an object instance with its resources, sorted by ID.
type Instance struct {
	ID        uint16
	Resources []Resource
}

// Resource is a single resource (Multiple false, Value set) or a multiple
// resource (Multiple true, Instances set and sorted by ID; it may be empty).
type Resource struct {
	ID        uint16
	Multiple  bool
	Value     Value
	Instances []ResourceInstance
}

// ResourceInstance is one instance of a multiple resource.
type ResourceInstance struct {
	ID    uint16
	Value Value
}

func (o *Object) nodeID() uint16           { return o.ID }
func (i *Instance) nodeID() uint16         { return i.ID }
func (r *Resource) nodeID() uint16         { return r.ID }
func (r *ResourceInstance) nodeID() uint16 { return r.ID }

// NodeID returns the last ID of the node's path.
func NodeID(n Node) uint16 { return n.nodeID() }

// NodeDepth is the path length at which n lives: 1 for an object, 4 for a
// resource instance.
func NodeDepth(n Node) int {
	switch n.(type) {
	case *Object:
		return 1
	case *Instance:
		return 2
	case *Resource:
		return 3
	case *ResourceInstance:
		return 4
	}
	return 0
}

// Instance returns the instance with the given ID, or nil.
func (o *Object) Instance(id uint16) *Instance {
	for i := range o.Instances {
		if o.Instances[i].ID == id {
			return &o.Instances[i]
		}
	}
	return nil
}

// Resource returns the resource with the given ID, or nil.
func (i *Instance) Resource(id uint16) *Resource {
	for k := range i.Resources {
		if i.Resources[k].ID == id {
			return &i.Resources[k]
		}
	}
	return nil
}

// Instance returns the resource instance with the given ID, or nil.
func (r *Resource) Instance(id uint16) *ResourceInstance {
	for k := range r.Instances {
		if r.Instances[k].ID == id {
			return &r.Instances[k]
		}
	}
	return nil
}

// NewSingle and NewMultiple build resources.
func NewSingle(id uint16, v Value) Resource { return Resource{ID: id, Value: v} }

func NewMultiple(id uint16, vals map[uint16]Value) Resource {
	r := Resource{ID: id, Multiple: true, Instances: make([]ResourceInstance, 0, len(vals))}
	for k, v := range vals {
		r.Instances = append(r.Instances, ResourceInstance{ID: k, Value: v})
	}
	sort.Slice(r.Instances, func(a, b int) bool { return r.Instances[a].ID < r.Instances[b].ID })
	return r
}

// Record is one value at a resource or resource-instance path, with the
// time it was taken (zero when the payload gave none): the flat form that
// SenML and LwM2M JSON carry, and the unit of Send and of historical
// notifications. A record with no value (Value.IsNone) names a path only,
// as in a Read-Composite request.
type Record struct {
	Path  Path
	Value Value
	Time  Time
}

// Time is a record's timestamp in seconds since the Unix epoch, with a
// fraction; 0 means "no time given".
type Time = float64

// Flatten lists the values of n, which lives at path p, as records in
// path order. A multiple resource with no instances yields nothing.
func Flatten(p Path, n Node) []Record {
	var out []Record
	return appendRecords(out, p, n)
}

func appendRecords(out []Record, p Path, n Node) []Record {
	switch n := n.(type) {
	case *Object:
		for k := range n.Instances {
			out = appendRecords(out, p.Child(n.Instances[k].ID), &n.Instances[k])
		}
	case *Instance:
		for k := range n.Resources {
			out = appendRecords(out, p.Child(n.Resources[k].ID), &n.Resources[k])
		}
	case *Resource:
		if !n.Multiple {
			return append(out, Record{Path: p, Value: n.Value})
		}
		for _, ri := range n.Instances {
			out = append(out, Record{Path: p.Child(ri.ID), Value: ri.Value})
		}
	case *ResourceInstance:
		out = append(out, Record{Path: p, Value: n.Value})
	}
	return out
}

// Builder assembles a node for a path from records in any order, as the
// flat formats deliver them. The model, when given, decides whether a
// resource is multiple; without it a resource is multiple when a record
// names one of its instances.
type Builder struct {
	root   Path
	models Models
	recs   []Record
}

// NewBuilder starts a node for root, which must not be the root path.
func NewBuilder(root Path, m Models) *Builder {
	return &Builder{root: root, models: m}
}

// Add places a record's value. The record path must lie at or below the
// builder's root and reach at least a resource. Values given twice are
// reported by Node.
func (b *Builder) Add(p Path, v Value) error {
	if err := checkPlace(b.root, p); err != nil {
		return err
	}
	if v.IsNone() {
		return fmt.Errorf("objects: %s: record without a value", p)
	}
	b.recs = append(b.recs, Record{Path: p, Value: v})
	return nil
}

// AddEmpty records that the resource at p exists but is a multiple
// resource with no instances, or that the instance at p exists with no
// resources.
func (b *Builder) AddEmpty(p Path) error {
	if !p.HasPrefix(b.root) || p.Len() < 2 || p.Len() > 3 {
		return fmt.Errorf("objects: %s: cannot be empty here", p)
	}
	b.recs = append(b.recs, Record{Path: p})
	return nil
}

// Node returns the node at the builder's root path (see BuildNode).
func (b *Builder) Node() (Node, error) {
	n, err := BuildNode(b.root, b.recs, b.models)
	if err != nil {
		var be *BuildError
		if errors.As(err, &be) {
			return nil, fmt.Errorf("objects: %s: %w", be.Path, be.Err)
		}
	}
	return n, err
}

func checkPlace(root, p Path) error {
	if !p.HasPrefix(root) {
		return fmt.Errorf("objects: %s: outside the requested path %s", p, root)
	}
	if p.Len() < 3 {
		return fmt.Errorf("objects: %s: a value needs a resource path", p)
	}
	return nil
}

// BuildError says which record BuildNode could not place: its index in
// the records given, so a decoder can name the byte offset it came from.
type BuildError struct {
	Index int // -1 when no single record is to blame
	Path  Path
	Err   error // wraps ErrMalformed or ErrType
}

func (e *BuildError) Error() string { return e.Path.String() + ": " + e.Err.Error() }
func (e *BuildError) Unwrap() error { return e.Err }

// BuildNode assembles the node at root from records in any order. A
// record with a value must name a resource or resource instance at or
// below root; a record without a value marks an empty instance (/o/i) or
// an empty multiple resource (/o/i/r) as present, and one at /o is
// ignored. The model decides whether a resource is multiple; without it a
// resource is multiple when a record names one of its instances or marks
// it empty. Records are sorted first and placed in one pass, so n records
// cost O(n log n). A resource path with nothing in the payload yields an
// empty multiple resource unless the model says the resource is single.
func BuildNode(root Path, recs []Record, m Models) (Node, error) {
	idx := make([]int, len(recs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return recs[a].Path.Compare(recs[b].Path) })
	obj := Object{ID: root.Object()}
	for _, i := range idx {
		if err := place(&obj, root, recs[i], m); err != nil {
			return nil, &BuildError{Index: i, Path: recs[i].Path, Err: err}
		}
	}
	return pick(root, &obj, m)
}

// place adds one record to obj; records arrive in path order, so the
// instance and resource it belongs to, if present, are the last ones.
func place(obj *Object, root Path, r Record, m Models) error {
	p := r.Path
	empty := r.Value.IsNone()
	switch {
	case !p.HasPrefix(root):
		return fmt.Errorf("outside the requested path %s: %w", root, ErrMalformed)
	case p.Len() < 3 && !empty:
		return fmt.Errorf("a value needs a resource path: %w", ErrMalformed)
	case p.Len() < 2:
		return nil // the requested object itself, present but empty
	}
	if n := len(obj.Instances); n == 0 || obj.Instances[n-1].ID != p.Instance() {
		obj.Instances = append(obj.Instances, Instance{ID: p.Instance()})
	}
	in := &obj.Instances[len(obj.Instances)-1]
	if p.Len() < 3 {
		return nil
	}
	if n := len(in.Resources); n == 0 || in.Resources[n-1].ID != p.Resource() {
		def := ResourceOf(m, p)
		multiple := p.Len() == 4 || empty
		if def != nil {
			multiple = def.Multiple
		}
		in.Resources = append(in.Resources, Resource{ID: p.Resource(), Multiple: multiple})
	}
	res := &in.Resources[len(in.Resources)-1]
	switch {
	case empty && p.Len() == 4:
		return fmt.Errorf("a resource instance needs a value: %w", ErrMalformed)
	case empty:
		if !res.Multiple {
			return fmt.Errorf("resource %d is single: it cannot be empty: %w", p.Resource(), ErrType)
		}
	case p.Len() == 3 && res.Multiple:
		return fmt.Errorf("resource %d is multiple: a value needs a resource-instance path: %w", p.Resource(), ErrType)
	case p.Len() == 3:
		if !res.Value.IsNone() {
			return fmt.Errorf("value given twice: %w", ErrMalformed)
		}
		res.Value = r.Value
	case !res.Multiple:
		return fmt.Errorf("resource %d is single but a record names an instance of it: %w", p.Resource(), ErrType)
	default:
		if n := len(res.Instances); n > 0 && res.Instances[n-1].ID == p.ResourceInstance() {
			return fmt.Errorf("value given twice: %w", ErrMalformed)
		}
		res.Instances = append(res.Instances, ResourceInstance{ID: p.ResourceInstance(), Value: r.Value})
	}
	return nil
}

// pick returns the node at root from obj, which holds only paths at or
// below root.
func pick(root Path, obj *Object, m Models) (Node, error) {
	if root.Len() == 1 {
		return obj, nil
	}
	in := obj.Instance(root.Instance())
	if root.Len() == 2 {
		if in == nil {
			return &Instance{ID: root.Instance()}, nil
		}
		return in, nil
	}
	var res *Resource
	if in != nil {
		res = in.Resource(root.Resource())
	}
	if res == nil && root.Len() == 3 {
		// Nothing at a resource path: only a multiple resource can be empty.
		if def := ResourceOf(m, root); def == nil || def.Multiple {
			return &Resource{ID: root.Resource(), Multiple: true}, nil
		}
	}
	if res == nil {
		return nil, &BuildError{Index: -1, Path: root, Err: fmt.Errorf("payload holds no value for it: %w", ErrMalformed)}
	}
	if root.Len() == 3 {
		return res, nil
	}
	if ri := res.Instance(root.ResourceInstance()); ri != nil {
		return ri, nil
	}
	return nil, &BuildError{Index: -1, Path: root, Err: fmt.Errorf("payload holds no value for it: %w", ErrMalformed)}
}

// SortNode orders every level of n by ID, in place.
func SortNode(n Node) {
	switch n := n.(type) {
	case *Object:
		sort.Slice(n.Instances, func(a, b int) bool { return n.Instances[a].ID < n.Instances[b].ID })
		for k := range n.Instances {
			SortNode(&n.Instances[k])
		}
	case *Instance:
		sort.Slice(n.Resources, func(a, b int) bool { return n.Resources[a].ID < n.Resources[b].ID })
		for k := range n.Resources {
			SortNode(&n.Resources[k])
		}
	case *Resource:
		sort.Slice(n.Instances, func(a, b int) bool { return n.Instances[a].ID < n.Instances[b].ID })
	}
}

// NodesFromRecords groups records by the paths they lie in and builds one
// node per path in roots, for composite responses. Records outside every
// root are an error; a root with nothing in the payload is left out of
// the result (a composite read omits the paths that do not exist).
func NodesFromRecords(roots []Path, recs []Record, m Models) (map[Path]Node, error) {
	groups := make(map[Path][]Record, len(roots))
	for _, rec := range recs {
		k := slices.IndexFunc(roots, func(r Path) bool { return rec.Path.HasPrefix(r) })
		if k < 0 {
			return nil, fmt.Errorf("objects: %s: not below any requested path", rec.Path)
		}
		groups[roots[k]] = append(groups[roots[k]], rec)
	}
	out := make(map[Path]Node, len(roots))
	for _, root := range roots {
		if len(groups[root]) == 0 {
			continue // left out: flat formats cannot tell "absent" from "empty"
		}
		n, err := BuildNode(root, groups[root], m)
		var be *BuildError
		if errors.As(err, &be) && be.Index < 0 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("objects: %w", err)
		}
		out[root] = n
	}
	return out, nil
}

// EqualNodes reports whether two nodes hold the same IDs and values.
func EqualNodes(a, b Node) bool {
	if NodeDepth(a) != NodeDepth(b) {
		return false
	}
	pa, pb := Flatten(placeholderPath(a), a), Flatten(placeholderPath(b), b)
	if len(pa) != len(pb) {
		return false
	}
	for i := range pa {
		if pa[i].Path != pb[i].Path || !pa[i].Value.Equal(pb[i].Value) {
			return false
		}
	}
	return true
}

// placeholderPath puts n at a path of its own depth whose last ID is n's,
// so that flattening keeps every ID of the node.
func placeholderPath(n Node) Path {
	ids := make([]uint16, NodeDepth(n))
	ids[len(ids)-1] = NodeID(n)
	return NewPath(ids...)
}

// CheckNode reports whether n can be encoded at root: root is not "/", and
// n is a non-nil node of root's depth with root's last ID. Codecs call it
// before encoding and add their name to the error.
func CheckNode(root Path, n Node) error {
	if n == nil || reflectNil(n) {
		return fmt.Errorf("%s: no node to encode", root)
	}
	if root.IsRoot() {
		return fmt.Errorf("a node cannot be encoded at the root path: %w", ErrUnsupported)
	}
	if d := NodeDepth(n); d != root.Len() {
		return fmt.Errorf("%s: the path needs %s node, not %s", root, kindNames[root.Len()], kindNames[d])
	}
	if id := NodeID(n); id != root.ID(root.Len()-1) {
		return fmt.Errorf("%s: node has ID %d", root, id)
	}
	return nil
}

var kindNames = [...]string{"no", "an object", "an instance", "a resource", "a resource-instance"}

// reflectNil catches a typed nil pointer in the interface.
func reflectNil(n Node) bool {
	switch n := n.(type) {
	case *Object:
		return n == nil
	case *Instance:
		return n == nil
	case *Resource:
		return n == nil
	case *ResourceInstance:
		return n == nil
	}
	return false
}
