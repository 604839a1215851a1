package objects

import (
	"fmt"
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
	obj    Object
	// Indexes into obj, so that a payload of n values builds in O(n log n)
	// rather than searching every instance and resource for each value.
	insts map[uint16]int // instance ID -> index in obj.Instances
	res   map[Path]int   // /o/i/r -> index in its instance's Resources
	seen  map[Path]bool  // resource-instance paths already given
}

// NewBuilder starts a node for root, which must not be the root path.
func NewBuilder(root Path, m Models) *Builder {
	return &Builder{root: root, models: m, obj: Object{ID: root.Object()},
		insts: map[uint16]int{}, res: map[Path]int{}, seen: map[Path]bool{}}
}

// Add places a record's value. The record path must lie at or below the
// builder's root and reach at least a resource.
func (b *Builder) Add(p Path, v Value) error {
	if !p.HasPrefix(b.root) {
		return fmt.Errorf("objects: %s: outside the requested path %s", p, b.root)
	}
	if p.Len() < 3 {
		return fmt.Errorf("objects: %s: a value needs a resource path", p)
	}
	inst := b.instance(p.Instance())
	res := b.resource(inst, p.Truncate(3), p.Len() == 4)
	if p.Len() == 3 {
		if res.Multiple {
			return fmt.Errorf("objects: %s: value for a multiple resource needs a resource-instance path", p)
		}
		if !res.Value.IsNone() {
			return fmt.Errorf("objects: %s: value given twice", p)
		}
		res.Value = v
		return nil
	}
	if !res.Multiple {
		return fmt.Errorf("objects: %s: resource %d is single but a record names an instance of it", p, p.Resource())
	}
	if b.seen[p] {
		return fmt.Errorf("objects: %s: value given twice", p)
	}
	b.seen[p] = true
	res.Instances = append(res.Instances, ResourceInstance{ID: p.ResourceInstance(), Value: v})
	return nil
}

// AddEmpty records that the resource at p exists but is a multiple
// resource with no instances, or that the instance at p exists with no
// resources.
func (b *Builder) AddEmpty(p Path) error {
	if !p.HasPrefix(b.root) || p.Len() < 2 || p.Len() > 3 {
		return fmt.Errorf("objects: %s: cannot be empty here", p)
	}
	inst := b.instance(p.Instance())
	if p.Len() == 3 {
		b.resource(inst, p, true)
	}
	return nil
}

func (b *Builder) instance(id uint16) *Instance {
	if k, ok := b.insts[id]; ok {
		return &b.obj.Instances[k]
	}
	b.insts[id] = len(b.obj.Instances)
	b.obj.Instances = append(b.obj.Instances, Instance{ID: id})
	return &b.obj.Instances[len(b.obj.Instances)-1]
}

// resource finds or adds the resource at rp (an /o/i/r path) in inst. A
// new resource is multiple when the model says so or when multiple is set
// (a record named one of its instances).
func (b *Builder) resource(inst *Instance, rp Path, multiple bool) *Resource {
	if k, ok := b.res[rp]; ok {
		return &inst.Resources[k]
	}
	if def := ResourceOf(b.models, rp); def != nil && def.Multiple {
		multiple = true
	}
	b.res[rp] = len(inst.Resources)
	inst.Resources = append(inst.Resources, Resource{ID: rp.Resource(), Multiple: multiple})
	return &inst.Resources[len(inst.Resources)-1]
}

// Node returns the node at the builder's root path, sorted by IDs. It
// fails when no record reached the root (a resource read that came back
// without the resource).
func (b *Builder) Node() (Node, error) {
	SortNode(&b.obj)
	switch b.root.Len() {
	case 1:
		return &b.obj, nil
	case 2:
		if in := b.obj.Instance(b.root.Instance()); in != nil {
			return in, nil
		}
		return &Instance{ID: b.root.Instance()}, nil
	case 3, 4:
		in := b.obj.Instance(b.root.Instance())
		var res *Resource
		if in != nil {
			res = in.Resource(b.root.Resource())
		}
		if res == nil {
			return nil, fmt.Errorf("objects: %s: payload holds no value for it", b.root)
		}
		if b.root.Len() == 3 {
			return res, nil
		}
		if ri := res.Instance(b.root.ResourceInstance()); ri != nil {
			return ri, nil
		}
		return nil, fmt.Errorf("objects: %s: payload holds no value for it", b.root)
	}
	return nil, fmt.Errorf("objects: no node for the root path")
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
// root are an error.
func NodesFromRecords(roots []Path, recs []Record, m Models) (map[Path]Node, error) {
	builders := make(map[Path]*Builder, len(roots))
	for _, r := range roots {
		builders[r] = NewBuilder(r, m)
	}
	for _, rec := range recs {
		var b *Builder
		for _, r := range roots {
			if rec.Path.HasPrefix(r) {
				b = builders[r]
				break
			}
		}
		if b == nil {
			return nil, fmt.Errorf("objects: %s: not below any requested path", rec.Path)
		}
		if err := b.Add(rec.Path, rec.Value); err != nil {
			return nil, err
		}
	}
	out := make(map[Path]Node, len(roots))
	for p, b := range builders {
		n, err := b.Node()
		if err != nil {
			continue // a composite read may leave a path out (LwM2M Core 1.1 §6.3.8)
		}
		out[p] = n
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
