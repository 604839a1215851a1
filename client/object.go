package client

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/lwm2md/lwm2md/objects"
)

// Object is one object the client hosts: its instances and their resource
// values, kept in memory and checked against the object's model. The
// engine enforces the model's access rules (R, W, E) on server requests
// before it reaches an Object; local calls (Set, AddInstance) may change
// any resource, as the device itself may.
//
// Behaviour beyond storage comes from hooks: OnRead computes a value when
// it is read (a clock), OnExecute runs an executable resource, OnWrite
// checks or reacts to a server's write, OnCreate and OnDelete to the
// server's instance management. An Object belongs to one Client; its
// methods are safe for concurrent use.
type Object struct {
	id      uint16
	version string             // the requested version; "" picks one for the client's LwM2M version
	def     *objects.ObjectDef // set by bind
	lenient bool               // a ready-made object: bind drops the resources the model lacks

	mu    sync.RWMutex
	insts []objects.Instance // sorted by ID, resources sorted by ID
	// initial is the state given at construction, restored by a factory
	// reset. insts shares it until the first change (shared), so that an
	// object nothing writes to is held once.
	initial []objects.Instance
	shared  bool

	readFns  map[uint16]ReadFunc
	execFns  map[uint16]ExecuteFunc
	writeFn  WriteFunc
	createFn CreateFunc
	deleteFn DeleteFunc
	startFn  func(c *Client) (stop func())

	// Set by bind: how the object tells its client about changes.
	changed     func(p objects.Path)
	listChanged func()
	client      *Client
}

// ReadFunc computes the value of a resource of instance inst when it is
// read or observed; it overrides the stored value.
type ReadFunc func(inst uint16) objects.Value

// ExecuteFunc runs an executable resource. It is called after the engine
// checked that the resource is executable, before the answer is sent: a
// long action (a reboot) should be started in the background. A returned
// *StatusError is answered with its code, any other error with 5.00.
type ExecuteFunc func(e *Execution) error

// Execution is one Execute request.
type Execution struct {
	Client *Client
	Path   objects.Path // /o/i/r
	Args   []Arg        // parsed arguments (LwM2M Core 1.1 §5.4.5)
	Raw    string       // the payload as sent
}

// Arg is one Execute argument: a digit and an optional value ("0='v'").
type Arg struct {
	Digit    int
	Value    string
	HasValue bool
}

// WriteFunc is called for each resource a server writes, with the
// resource as it will be stored (for a partial update of a multiple
// resource, the merged instances), before anything is stored. An error
// refuses the whole write: a *StatusError with its code, any other error
// with 4.00.
type WriteFunc func(p objects.Path, r objects.Resource) error

// CreateFunc is called before an instance a server creates is stored; it
// may add or change resources. An error refuses the Create (as for
// WriteFunc).
type CreateFunc func(in *objects.Instance) error

// DeleteFunc is called before a server deletes an instance; an error
// refuses the Delete.
type DeleteFunc func(inst uint16) error

// StatusError is an error a hook returns to choose the CoAP code of the
// answer, with a diagnostic message.
type StatusError struct {
	Code codes.Code
	Msg  string
}

func (e *StatusError) Error() string { return fmt.Sprintf("client: %v: %s", e.Code, e.Msg) }

// Status returns a *StatusError.
func Status(code codes.Code, format string, args ...any) error {
	return &StatusError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// errModel is wrapped by errors about values or resources the model does
// not allow.
var errModel = errors.New("not allowed by the object model")

// NewObject returns an object with the given instances. version is the
// object version to use ("1.1"); empty picks, when the client is built,
// the version that goes with the client's LwM2M version (for the core
// objects the one its release defines; for others the newest written for
// it). The model comes from Config.Models.
func NewObject(id uint16, version string, insts ...objects.Instance) *Object {
	o := &Object{id: id, version: version}
	for _, in := range insts {
		o.insts = append(o.insts, cloneInstance(&in))
	}
	sortInstances(o.insts)
	return o
}

// NewObjectWithDef returns an object for a model of the caller's own (an
// object that is not in Config.Models).
func NewObjectWithDef(def *objects.ObjectDef, insts ...objects.Instance) *Object {
	o := NewObject(def.ID, def.Version, insts...)
	o.def = def
	return o
}

// ID is the object ID.
func (o *Object) ID() uint16 { return o.id }

// Def is the object's model; nil until the object is given to New (unless
// built by NewObjectWithDef).
func (o *Object) Def() *objects.ObjectDef { return o.def }

// OnRead sets the function that computes resource res on each read.
func (o *Object) OnRead(res uint16, f ReadFunc) *Object {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.readFns == nil {
		o.readFns = make(map[uint16]ReadFunc)
	}
	o.readFns[res] = f
	return o
}

// OnExecute sets the function run by an Execute of resource res.
func (o *Object) OnExecute(res uint16, f ExecuteFunc) *Object {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.execFns == nil {
		o.execFns = make(map[uint16]ExecuteFunc)
	}
	o.execFns[res] = f
	return o
}

// OnWrite sets the function that checks the server's writes.
func (o *Object) OnWrite(f WriteFunc) *Object {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.writeFn = f
	return o
}

// OnCreate sets the function that checks the server's Creates.
func (o *Object) OnCreate(f CreateFunc) *Object {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.createFn = f
	return o
}

// OnDelete sets the function that checks the server's Deletes.
func (o *Object) OnDelete(f DeleteFunc) *Object {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.deleteFn = f
	return o
}

// OnStart sets a function run when the client starts; the function it
// returns is run when the client closes. Sensors start their sampling
// here.
func (o *Object) OnStart(f func(c *Client) (stop func())) *Object {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.startFn = f
	return o
}

// Instances lists the instance IDs in ascending order.
func (o *Object) Instances() []uint16 {
	o.mu.RLock()
	defer o.mu.RUnlock()
	ids := make([]uint16, len(o.insts))
	for i := range o.insts {
		ids[i] = o.insts[i].ID
	}
	return ids
}

// HasInstance reports whether instance id exists.
func (o *Object) HasInstance(id uint16) bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.find(id) != nil
}

// Instance returns a copy of instance id with its current values (those of
// OnRead functions included), every resource whatever its access rights.
func (o *Object) Instance(id uint16) (objects.Instance, bool) {
	o.mu.RLock()
	in := o.find(id)
	if in == nil {
		o.mu.RUnlock()
		return objects.Instance{}, false
	}
	c := cloneInstance(in)
	fns := o.readFns
	o.mu.RUnlock()
	applyReadFns(&c, fns)
	return c, true
}

// applyReadFns replaces the values of computed resources. It runs without
// the object's lock, so that a ReadFunc may call the object's methods.
func applyReadFns(in *objects.Instance, fns map[uint16]ReadFunc) {
	for k := range in.Resources {
		r := &in.Resources[k]
		if f := fns[r.ID]; f != nil && !r.Multiple {
			r.Value = f(in.ID)
		}
	}
}

// Get returns the value of the single resource (/o/i/r) or resource
// instance (/o/i/r/ri) at p.
func (o *Object) Get(p objects.Path) (objects.Value, bool) {
	if p.Len() < 3 || p.Object() != o.id {
		return objects.Value{}, false
	}
	in, ok := o.Instance(p.Instance())
	if !ok {
		return objects.Value{}, false
	}
	r := in.Resource(p.Resource())
	switch {
	case r == nil:
		return objects.Value{}, false
	case p.Len() == 3:
		return r.Value, !r.Multiple
	case !r.Multiple:
		return objects.Value{}, false
	}
	ri := r.Instance(p.ResourceInstance())
	if ri == nil {
		return objects.Value{}, false
	}
	return ri.Value, true
}

// Set stores v at the single resource (/o/i/r) or resource instance
// (/o/i/r/ri) p of an existing instance, creating the resource or resource
// instance if needed. The value is converted to the resource's type. A
// change is reported to the client's observations.
func (o *Object) Set(p objects.Path, v objects.Value) error {
	if p.Len() < 3 || p.Object() != o.id {
		return fmt.Errorf("client: set %s: not a resource of object %d", p, o.id)
	}
	v, err := o.conform(p, v)
	if err != nil {
		return err
	}
	o.mu.Lock()
	in := o.mutable(p.Instance())
	if in == nil {
		o.mu.Unlock()
		return fmt.Errorf("client: set %s: no instance %d", p, p.Instance())
	}
	changed := false
	r := in.Resource(p.Resource())
	multiple := p.Len() == 4
	if def := o.def.Resource(p.Resource()); def != nil {
		if def.Multiple != multiple {
			o.mu.Unlock()
			return fmt.Errorf("client: set %s: resource %d is %s: %w", p, p.Resource(), shape(def.Multiple), errModel)
		}
	}
	if r == nil {
		in.Resources = append(in.Resources, objects.Resource{ID: p.Resource(), Multiple: multiple})
		objects.SortNode(in)
		r = in.Resource(p.Resource())
		changed = true
	}
	if r.Multiple != multiple {
		o.mu.Unlock()
		return fmt.Errorf("client: set %s: resource %d is %s", p, p.Resource(), shape(r.Multiple))
	}
	if !multiple {
		changed = changed || !r.Value.Equal(v)
		r.Value = v
	} else if ri := r.Instance(p.ResourceInstance()); ri != nil {
		changed = !ri.Value.Equal(v)
		ri.Value = v
	} else {
		r.Instances = append(r.Instances, objects.ResourceInstance{ID: p.ResourceInstance(), Value: v})
		objects.SortNode(r)
		changed = true
	}
	notify := o.changed
	o.mu.Unlock()
	if changed && notify != nil {
		notify(p)
	}
	return nil
}

// SetMultiple replaces the instances of the multiple resource at p
// (/o/i/r) with vals.
func (o *Object) SetMultiple(p objects.Path, vals map[uint16]objects.Value) error {
	if p.Len() != 3 || p.Object() != o.id {
		return fmt.Errorf("client: set %s: not a resource of object %d", p, o.id)
	}
	if def := o.def.Resource(p.Resource()); def != nil && !def.Multiple {
		return fmt.Errorf("client: set %s: resource %d is single: %w", p, p.Resource(), errModel)
	}
	r := objects.NewMultiple(p.Resource(), nil)
	for id, v := range vals {
		cv, err := o.conform(p.Child(id), v)
		if err != nil {
			return err
		}
		r.Instances = append(r.Instances, objects.ResourceInstance{ID: id, Value: cv})
	}
	objects.SortNode(&r)
	o.mu.Lock()
	in := o.mutable(p.Instance())
	if in == nil {
		o.mu.Unlock()
		return fmt.Errorf("client: set %s: no instance %d", p, p.Instance())
	}
	old := in.Resource(p.Resource())
	changed := old == nil || !objects.EqualNodes(old, &r)
	setResource(in, r)
	notify := o.changed
	o.mu.Unlock()
	if changed && notify != nil {
		notify(p)
	}
	return nil
}

// Remove deletes an optional resource (/o/i/r) or a resource instance
// (/o/i/r/ri) from an instance.
func (o *Object) Remove(p objects.Path) error {
	if p.Len() < 3 || p.Object() != o.id {
		return fmt.Errorf("client: remove %s: not a resource of object %d", p, o.id)
	}
	if def := o.def.Resource(p.Resource()); def != nil && def.Mandatory && p.Len() == 3 {
		return fmt.Errorf("client: remove %s: resource %d is mandatory: %w", p, p.Resource(), errModel)
	}
	o.mu.Lock()
	in := o.mutable(p.Instance())
	removed := false
	if in != nil {
		removed = removeAt(in, p)
	}
	notify := o.changed
	o.mu.Unlock()
	if !removed {
		return fmt.Errorf("client: remove %s: no such resource", p)
	}
	if notify != nil {
		notify(p)
	}
	return nil
}

// removeAt removes the resource or resource instance p from in.
func removeAt(in *objects.Instance, p objects.Path) bool {
	for k := range in.Resources {
		r := &in.Resources[k]
		if r.ID != p.Resource() {
			continue
		}
		if p.Len() == 3 {
			in.Resources = slices.Delete(in.Resources, k, k+1)
			return true
		}
		for j := range r.Instances {
			if r.Instances[j].ID == p.ResourceInstance() {
				r.Instances = slices.Delete(r.Instances, j, j+1)
				return true
			}
		}
		return false
	}
	return false
}

// AddInstance adds an instance (a local change: the client sends an
// Update with its new object list).
func (o *Object) AddInstance(in objects.Instance) error {
	c := cloneInstance(&in)
	if err := o.conformInstance(&c); err != nil {
		return err
	}
	o.mu.Lock()
	if o.find(c.ID) != nil {
		o.mu.Unlock()
		return fmt.Errorf("client: object %d: instance %d exists", o.id, c.ID)
	}
	if o.def != nil && !o.def.Multiple && len(o.insts) > 0 {
		o.mu.Unlock()
		return fmt.Errorf("client: object %d is single-instance: %w", o.id, errModel)
	}
	o.detach()
	o.insts = append(o.insts, c)
	sortInstances(o.insts)
	notify, list := o.changed, o.listChanged
	o.mu.Unlock()
	if notify != nil {
		notify(objects.NewPath(o.id, c.ID))
	}
	if list != nil {
		list()
	}
	return nil
}

// RemoveInstance deletes an instance (a local change, as AddInstance).
func (o *Object) RemoveInstance(id uint16) error {
	o.mu.Lock()
	if !o.drop(id) {
		o.mu.Unlock()
		return fmt.Errorf("client: object %d: no instance %d", o.id, id)
	}
	notify, list := o.changed, o.listChanged
	o.mu.Unlock()
	if notify != nil {
		notify(objects.NewPath(o.id, id))
	}
	if list != nil {
		list()
	}
	return nil
}

func (o *Object) drop(id uint16) bool {
	o.detach()
	for i := range o.insts {
		if o.insts[i].ID == id {
			o.insts = slices.Delete(o.insts, i, i+1)
			return true
		}
	}
	return false
}

// detach gives the object its own copy of the instances before a change,
// when it still shares them with initial; o.mu is held for writing.
func (o *Object) detach() {
	if !o.shared {
		return
	}
	insts := make([]objects.Instance, len(o.insts))
	for i := range o.insts {
		insts[i] = cloneInstance(&o.insts[i])
	}
	o.insts, o.shared = insts, false
}

// mutable returns instance id for a change; o.mu is held for writing.
func (o *Object) mutable(id uint16) *objects.Instance {
	o.detach()
	return o.find(id)
}

// find returns the stored instance id; o.mu is held.
func (o *Object) find(id uint16) *objects.Instance {
	i := sort.Search(len(o.insts), func(i int) bool { return o.insts[i].ID >= id })
	if i < len(o.insts) && o.insts[i].ID == id {
		return &o.insts[i]
	}
	return nil
}

// bind attaches the object to its client with model def: every stored
// value is checked and converted to its resource's type.
func (o *Object) bind(c *Client, def *objects.ObjectDef) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.client != nil {
		return fmt.Errorf("client: object %d already belongs to a client", o.id)
	}
	o.def = def
	if !def.Multiple && len(o.insts) > 1 {
		return fmt.Errorf("client: object %d is single-instance but has %d instances", o.id, len(o.insts))
	}
	for i := range o.insts {
		if o.lenient {
			in := &o.insts[i]
			in.Resources = slices.DeleteFunc(in.Resources, func(r objects.Resource) bool { return def.Resource(r.ID) == nil })
		}
		if err := o.conformInstance(&o.insts[i]); err != nil {
			return err
		}
	}
	o.initial, o.shared = o.insts, true
	o.client = c
	o.changed = c.changed
	o.listChanged = c.objectListChanged
	return nil
}

// reset restores the instances the object was built with (factory reset).
func (o *Object) reset() {
	o.mu.Lock()
	o.insts, o.shared = o.initial, true
	o.mu.Unlock()
}

// conformInstance checks an instance against the model and converts its
// values to the resources' types. Without a model (before bind) it only
// sorts.
func (o *Object) conformInstance(in *objects.Instance) error {
	objects.SortNode(in)
	for k := 1; k < len(in.Resources); k++ {
		if in.Resources[k].ID == in.Resources[k-1].ID {
			return fmt.Errorf("client: /%d/%d: resource %d given twice", o.id, in.ID, in.Resources[k].ID)
		}
	}
	if o.def == nil {
		return nil
	}
	base := objects.NewPath(o.id, in.ID)
	for k := range in.Resources {
		r := &in.Resources[k]
		p := base.Child(r.ID)
		def := o.def.Resource(r.ID)
		if def == nil {
			return fmt.Errorf("client: %s: object %d version %s has no resource %d: %w", p, o.id, o.def.Version, r.ID, errModel)
		}
		if def.Multiple != r.Multiple {
			return fmt.Errorf("client: %s: resource %d is %s: %w", p, r.ID, shape(def.Multiple), errModel)
		}
		if def.Operations.Executable() {
			r.Value = objects.Value{}
			continue
		}
		var err error
		if !r.Multiple {
			if r.Value, err = convert(p, r.Value, def.Type); err != nil {
				return err
			}
			continue
		}
		for j := range r.Instances {
			if r.Instances[j].Value, err = convert(p.Child(r.Instances[j].ID), r.Instances[j].Value, def.Type); err != nil {
				return err
			}
		}
	}
	return nil
}

// conform converts v, for resource path p, to the resource's type.
func (o *Object) conform(p objects.Path, v objects.Value) (objects.Value, error) {
	if o.def == nil {
		return v, nil
	}
	def := o.def.Resource(p.Resource())
	if def == nil {
		return v, fmt.Errorf("client: %s: object %d version %s has no resource %d: %w", p, o.id, o.def.Version, p.Resource(), errModel)
	}
	if def.Operations.Executable() {
		return v, fmt.Errorf("client: %s: resource %d is executable and holds no value: %w", p, p.Resource(), errModel)
	}
	return convert(p, v, def.Type)
}

func convert(p objects.Path, v objects.Value, t objects.Type) (objects.Value, error) {
	if v.IsNone() {
		return v, fmt.Errorf("client: %s: no value: %w", p, errModel)
	}
	cv, err := v.Convert(t)
	if err != nil {
		return v, fmt.Errorf("client: %s: %w", p, err)
	}
	return cv, nil
}

func shape(multiple bool) string {
	if multiple {
		return "multiple"
	}
	return "single"
}

// sortInstances orders instances and their resources by ID.
func sortInstances(insts []objects.Instance) {
	sort.Slice(insts, func(a, b int) bool { return insts[a].ID < insts[b].ID })
	for i := range insts {
		objects.SortNode(&insts[i])
	}
}

// setResource stores r in in, replacing the resource with its ID.
func setResource(in *objects.Instance, r objects.Resource) {
	if old := in.Resource(r.ID); old != nil {
		*old = r
		return
	}
	in.Resources = append(in.Resources, r)
	objects.SortNode(in)
}

func cloneInstance(in *objects.Instance) objects.Instance {
	c := objects.Instance{ID: in.ID, Resources: make([]objects.Resource, len(in.Resources))}
	for i := range in.Resources {
		c.Resources[i] = cloneResource(&in.Resources[i])
	}
	return c
}

func cloneResource(r *objects.Resource) objects.Resource {
	c := *r
	c.Value = cloneValue(r.Value)
	if r.Instances != nil {
		c.Instances = make([]objects.ResourceInstance, len(r.Instances))
		for i, ri := range r.Instances {
			c.Instances[i] = objects.ResourceInstance{ID: ri.ID, Value: cloneValue(ri.Value)}
		}
	}
	return c
}

// cloneValue copies the bytes of an Opaque value, the only kind of value
// that shares memory with its creator.
func cloneValue(v objects.Value) objects.Value {
	if v.Type() == objects.TypeOpaque {
		return objects.OpaqueValue(bytes.Clone(v.Bytes()))
	}
	return v
}
