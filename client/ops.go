package client

import (
	"errors"
	"fmt"
	"strings"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/lwm2md/lwm2md/objects"
)

// The device management operations on the client's objects, with the
// model's access rules. Each returns a *StatusError for the answer's code.

// object returns the hosted object p names. The Security and OSCORE
// objects hold keys and are only for the Bootstrap-Server (Core 1.1
// Appendix E.1 and E.11): to an LwM2M server they do not exist, as in
// Leshan, so that their presence is not revealed (4.04 rather than 4.01).
func (c *Client) object(p objects.Path) (*Object, error) {
	if p.IsRoot() {
		return nil, Status(codes.MethodNotAllowed, "the root path is for the Bootstrap-Server")
	}
	o := c.objs[p.Object()]
	if o == nil || p.Object() == 0 || p.Object() == 21 {
		return nil, Status(codes.NotFound, "no object %d", p.Object())
	}
	return o, nil
}

// readNode returns the node at p with what a server may read: an object
// or instance with its readable resources, a readable resource or
// resource instance. Reading an executable or write-only resource is 4.05
// (Core 1.1 §5.4.1).
func (c *Client) readNode(p objects.Path) (objects.Node, error) {
	o, err := c.object(p)
	if err != nil {
		return nil, err
	}
	if p.Len() == 1 {
		obj := &objects.Object{ID: o.id}
		for _, id := range o.Instances() {
			if in, ok := o.Instance(id); ok {
				obj.Instances = append(obj.Instances, readable(o.def, in))
			}
		}
		return obj, nil
	}
	var def *objects.ResourceDef
	if p.Len() >= 3 {
		if def = o.def.Resource(p.Resource()); def == nil {
			return nil, Status(codes.NotFound, "object %d has no resource %d", o.id, p.Resource())
		}
		if !def.Operations.Readable() {
			return nil, Status(codes.MethodNotAllowed, "resource %s is not readable (operations %q)", p.Truncate(3), def.Operations)
		}
	}
	in, ok := o.Instance(p.Instance())
	if !ok {
		return nil, Status(codes.NotFound, "no instance %s", p.Truncate(2))
	}
	if p.Len() == 2 {
		in = readable(o.def, in)
		return &in, nil
	}
	r := in.Resource(p.Resource())
	if r == nil {
		return nil, Status(codes.NotFound, "no resource %s", p.Truncate(3))
	}
	if p.Len() == 3 {
		return r, nil
	}
	if !r.Multiple {
		return nil, Status(codes.NotFound, "resource %s is single: it has no instance %d", p.Truncate(3), p.ResourceInstance())
	}
	ri := r.Instance(p.ResourceInstance())
	if ri == nil {
		return nil, Status(codes.NotFound, "no resource instance %s", p)
	}
	return ri, nil
}

// readable keeps the readable resources of in.
func readable(def *objects.ObjectDef, in objects.Instance) objects.Instance {
	out := in.Resources[:0]
	for _, r := range in.Resources {
		if d := def.Resource(r.ID); d != nil && d.Operations.Readable() {
			out = append(out, r)
		}
	}
	in.Resources = out
	return in
}

// exists reports whether p names something the client hosts (for
// Write-Attributes and Discover): an object, an instance, a resource
// present in its instance, a resource instance.
func (c *Client) exists(p objects.Path) error {
	o, err := c.object(p)
	if err != nil {
		return err
	}
	if p.Len() == 1 {
		return nil
	}
	in, ok := o.Instance(p.Instance())
	if !ok {
		return Status(codes.NotFound, "no instance %s", p.Truncate(2))
	}
	if p.Len() == 2 {
		return nil
	}
	r := in.Resource(p.Resource())
	if r == nil {
		return Status(codes.NotFound, "no resource %s", p.Truncate(3))
	}
	if p.Len() == 4 && (!r.Multiple || r.Instance(p.ResourceInstance()) == nil) {
		return Status(codes.NotFound, "no resource instance %s", p)
	}
	return nil
}

// writeMode says how a write applies.
type writeMode uint8

const (
	writeReplace writeMode = iota // PUT: the instance or resource becomes the payload
	writePartial                  // POST: the payload's resources and resource instances are added or updated
)

// writeNode applies a server's Write (Core 1.1 §5.4.3) of node n at p
// (an instance, resource or resource instance). Every resource must be
// writable (4.05 otherwise) and known to the model (4.04); the object's
// WriteFunc sees each resource before anything is stored, so a write is
// all or nothing.
//
// A Replace of an instance removes the optional writable resources the
// payload leaves out, and keeps the others (read-only resources are the
// device's). A Replace of a multiple resource replaces all its instances;
// a Partial Update merges them.
func (c *Client) writeNode(p objects.Path, n objects.Node, mode writeMode) error {
	o, err := c.object(p)
	if err != nil {
		return err
	}
	if p.Len() < 2 {
		return Status(codes.MethodNotAllowed, "Write needs an instance, resource or resource-instance path")
	}
	var updates []objects.Resource
	switch n := n.(type) {
	case *objects.Instance:
		updates = n.Resources
	case *objects.Resource:
		updates = []objects.Resource{*n}
	case *objects.ResourceInstance:
		updates = []objects.Resource{{ID: p.Resource(), Multiple: true, Instances: []objects.ResourceInstance{*n}}}
	default:
		return Status(codes.BadRequest, "payload does not match the path %s", p)
	}
	for i := range updates {
		u := &updates[i]
		def := o.def.Resource(u.ID)
		rp := p.Truncate(2).Child(u.ID)
		switch {
		case def == nil:
			return Status(codes.NotFound, "object %d has no resource %d", o.id, u.ID)
		case !def.Operations.Writable():
			return Status(codes.MethodNotAllowed, "resource %s is not writable (operations %q)", rp, def.Operations)
		case def.Multiple != u.Multiple:
			return Status(codes.BadRequest, "resource %s is %s", rp, shape(def.Multiple))
		}
		if err := checkValues(rp, u, def.Type); err != nil {
			return err
		}
	}
	if p.Len() == 4 && c.cfg.Version == "1.0" {
		return Status(codes.MethodNotAllowed, "LwM2M 1.0 has no resource-instance paths")
	}

	// Compute the resources as they will be stored.
	o.mu.RLock()
	in := o.find(p.Instance())
	if in == nil {
		o.mu.RUnlock()
		return Status(codes.NotFound, "no instance %s", p.Truncate(2))
	}
	final := make([]objects.Resource, len(updates))
	for i, u := range updates {
		final[i] = cloneResource(&u)
		old := in.Resource(u.ID)
		merge := u.Multiple && old != nil && old.Multiple && (mode == writePartial || p.Len() == 4)
		if merge {
			final[i] = mergeInstances(old, &final[i])
		}
	}
	var removed []uint16
	if mode == writeReplace && p.Len() == 2 {
		for _, r := range in.Resources {
			def := o.def.Resource(r.ID)
			if def != nil && def.Operations.Writable() && !def.Mandatory && !hasResource(updates, r.ID) {
				removed = append(removed, r.ID)
			}
		}
	}
	writeFn := o.writeFn
	o.mu.RUnlock()

	if writeFn != nil {
		for _, r := range final {
			if err := writeFn(p.Truncate(2).Child(r.ID), r); err != nil {
				return hookStatus(err, codes.BadRequest)
			}
		}
	}

	o.mu.Lock()
	in = o.mutable(p.Instance())
	if in == nil {
		o.mu.Unlock()
		return Status(codes.NotFound, "no instance %s", p.Truncate(2))
	}
	var changed []objects.Path
	for _, r := range final {
		rp := p.Truncate(2).Child(r.ID)
		if old := in.Resource(r.ID); old == nil || !objects.EqualNodes(old, &r) {
			changed = append(changed, rp)
		}
		setResource(in, r)
	}
	for _, id := range removed {
		if removeAt(in, p.Truncate(2).Child(id)) {
			changed = append(changed, p.Truncate(2).Child(id))
		}
	}
	o.mu.Unlock()
	for _, cp := range changed {
		c.changed(cp)
	}
	return nil
}

// checkValues converts the values of a written resource to its type; the
// codecs already did when they knew the model, so this catches a value a
// format carried loosely.
func checkValues(rp objects.Path, r *objects.Resource, t objects.Type) error {
	if !r.Multiple {
		v, err := r.Value.Convert(t)
		if err != nil || r.Value.IsNone() {
			return Status(codes.BadRequest, "resource %s: value %v is not a %v", rp, r.Value, t)
		}
		r.Value = v
		return nil
	}
	for i := range r.Instances {
		v, err := r.Instances[i].Value.Convert(t)
		if err != nil || r.Instances[i].Value.IsNone() {
			return Status(codes.BadRequest, "resource %s: value %v is not a %v", rp.Child(r.Instances[i].ID), r.Instances[i].Value, t)
		}
		r.Instances[i].Value = v
	}
	return nil
}

// mergeInstances returns old with the instances of u added or replaced.
func mergeInstances(old, u *objects.Resource) objects.Resource {
	m := cloneResource(old)
	for _, ri := range u.Instances {
		if x := m.Instance(ri.ID); x != nil {
			x.Value = ri.Value
		} else {
			m.Instances = append(m.Instances, ri)
		}
	}
	objects.SortNode(&m)
	return m
}

func hasResource(rs []objects.Resource, id uint16) bool {
	for i := range rs {
		if rs[i].ID == id {
			return true
		}
	}
	return false
}

// hookStatus maps a hook's error to a status: its own code for a
// *StatusError, def otherwise.
func hookStatus(err error, def codes.Code) error {
	var se *StatusError
	if errors.As(err, &se) {
		return se
	}
	return &StatusError{Code: def, Msg: err.Error()}
}

// execute runs an executable resource (Core 1.1 §5.4.5): 4.05 when the
// resource is not executable, 4.00 for arguments that break the syntax.
func (c *Client) execute(p objects.Path, payload []byte) error {
	o, err := c.object(p)
	if err != nil {
		return err
	}
	if p.Len() != 3 {
		return Status(codes.MethodNotAllowed, "Execute needs a resource path")
	}
	def := o.def.Resource(p.Resource())
	if def == nil {
		return Status(codes.NotFound, "object %d has no resource %d", o.id, p.Resource())
	}
	if !def.Operations.Executable() {
		return Status(codes.MethodNotAllowed, "resource %s is not executable (operations %q)", p, def.Operations)
	}
	in, ok := o.Instance(p.Instance())
	if !ok {
		return Status(codes.NotFound, "no instance %s", p.Truncate(2))
	}
	o.mu.RLock()
	f := o.execFns[p.Resource()]
	o.mu.RUnlock()
	if in.Resource(p.Resource()) == nil && f == nil {
		return Status(codes.NotFound, "instance %s does not implement resource %d", p.Truncate(2), p.Resource())
	}
	args, err := ParseArgs(string(payload))
	if err != nil {
		return Status(codes.BadRequest, "%v", err)
	}
	if f == nil {
		return nil
	}
	if err := f(&Execution{Client: c, Path: p, Args: args, Raw: string(payload)}); err != nil {
		return hookStatus(err, codes.InternalServerError)
	}
	return nil
}

// ParseArgs parses Execute arguments (LwM2M Core 1.1 §5.4.5):
// arg *("," arg), arg = DIGIT ["=" "'" *CHAR "'"], CHAR a printable ASCII
// character other than the quotes. The empty string has no argument.
func ParseArgs(s string) ([]Arg, error) {
	if s == "" {
		return nil, nil
	}
	var args []Arg
	for len(s) > 0 {
		if s[0] < '0' || s[0] > '9' {
			return nil, fmt.Errorf("execute arguments: %q does not start with a digit", short(s))
		}
		a := Arg{Digit: int(s[0] - '0')}
		s = s[1:]
		if strings.HasPrefix(s, "=") {
			if !strings.HasPrefix(s, "='") {
				return nil, fmt.Errorf("execute arguments: the value of argument %d is not quoted", a.Digit)
			}
			end := strings.IndexByte(s[2:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("execute arguments: the value of argument %d has no closing quote", a.Digit)
			}
			a.Value, a.HasValue = s[2:2+end], true
			for i := 0; i < len(a.Value); i++ {
				if ch := a.Value[i]; ch < 0x21 || ch > 0x7e || ch == '"' {
					return nil, fmt.Errorf("execute arguments: character %q is not allowed in a value", ch)
				}
			}
			s = s[2+end+1:]
		}
		args = append(args, a)
		if s == "" {
			break
		}
		if s[0] != ',' || len(s) == 1 {
			return nil, fmt.Errorf("execute arguments: expected \",\" and an argument at %q", short(s))
		}
		s = s[1:]
	}
	return args, nil
}

func short(s string) string {
	if len(s) > 20 {
		return s[:20] + "..."
	}
	return s
}

// create adds the instances of obj to object p (Core 1.1 §5.4.6): 4.00
// when an instance exists or the object is single-instance and has one,
// or when a resource is not in the model. It returns the first new
// instance's path.
func (c *Client) create(p objects.Path, obj *objects.Object) (objects.Path, error) {
	o, err := c.object(p)
	if err != nil {
		return objects.Path{}, err
	}
	if len(obj.Instances) == 0 {
		return objects.Path{}, Status(codes.BadRequest, "Create without an instance")
	}
	o.mu.RLock()
	n := len(o.insts)
	for _, in := range obj.Instances {
		if o.find(in.ID) != nil {
			o.mu.RUnlock()
			return objects.Path{}, Status(codes.BadRequest, "instance %s exists", p.Child(in.ID))
		}
	}
	createFn := o.createFn
	o.mu.RUnlock()
	if !o.def.Multiple && n+len(obj.Instances) > 1 {
		return objects.Path{}, Status(codes.BadRequest, "object %d is single-instance", o.id)
	}
	made := make([]objects.Instance, 0, len(obj.Instances))
	for _, in := range obj.Instances {
		in := cloneInstance(&in)
		for k := range in.Resources {
			r := &in.Resources[k]
			def := o.def.Resource(r.ID)
			rp := p.Child(in.ID).Child(r.ID)
			if def == nil {
				return objects.Path{}, Status(codes.BadRequest, "object %d has no resource %d", o.id, r.ID)
			}
			if def.Multiple != r.Multiple {
				return objects.Path{}, Status(codes.BadRequest, "resource %s is %s", rp, shape(def.Multiple))
			}
			if def.Operations.Executable() {
				return objects.Path{}, Status(codes.BadRequest, "resource %s is executable and takes no value", rp)
			}
			if err := checkValues(rp, r, def.Type); err != nil {
				return objects.Path{}, err
			}
		}
		if createFn != nil {
			if err := createFn(&in); err != nil {
				return objects.Path{}, hookStatus(err, codes.BadRequest)
			}
		}
		if err := o.conformInstance(&in); err != nil {
			return objects.Path{}, Status(codes.InternalServerError, "%v", err)
		}
		made = append(made, in)
	}
	o.mu.Lock()
	for _, in := range made {
		if o.find(in.ID) != nil {
			o.mu.Unlock()
			return objects.Path{}, Status(codes.BadRequest, "instance %s exists", p.Child(in.ID))
		}
	}
	o.detach()
	o.insts = append(o.insts, made...)
	sortInstances(o.insts)
	o.mu.Unlock()
	for _, in := range made {
		c.changed(p.Child(in.ID))
	}
	c.objectListChanged()
	return p.Child(made[0].ID), nil
}

// freeInstanceID is the lowest instance ID object o does not use.
func freeInstanceID(o *Object) (uint16, bool) {
	next := uint16(0)
	for _, id := range o.Instances() { // ascending
		if id != next {
			break
		}
		if next == objects.MaxID-1 {
			return 0, false
		}
		next++
	}
	return next, true
}

// deletePath deletes an instance, or from LwM2M 1.1 on a resource
// instance of a writable multiple resource (Core 1.1 §5.4.7). The
// mandatory single-instance objects (Device) cannot lose their instance.
func (c *Client) deletePath(p objects.Path) error {
	o, err := c.object(p)
	if err != nil {
		return err
	}
	switch {
	case p.Len() == 4 && c.cfg.Version != "1.0":
		def := o.def.Resource(p.Resource())
		if def == nil {
			return Status(codes.NotFound, "object %d has no resource %d", o.id, p.Resource())
		}
		if !def.Multiple || !def.Operations.Writable() {
			return Status(codes.MethodNotAllowed, "resource %s is not a writable multiple resource", p.Truncate(3))
		}
		o.mu.Lock()
		in := o.mutable(p.Instance())
		ok := in != nil && removeAt(in, p)
		o.mu.Unlock()
		if !ok {
			return Status(codes.NotFound, "no resource instance %s", p)
		}
		c.changed(p)
		return nil
	case p.Len() != 2:
		return Status(codes.MethodNotAllowed, "Delete needs an instance path")
	}
	if o.def.Mandatory && !o.def.Multiple {
		return Status(codes.MethodNotAllowed, "object %d must keep its instance", o.id)
	}
	o.mu.RLock()
	exists := o.find(p.Instance()) != nil
	deleteFn := o.deleteFn
	o.mu.RUnlock()
	if !exists {
		return Status(codes.NotFound, "no instance %s", p)
	}
	if deleteFn != nil {
		if err := deleteFn(p.Instance()); err != nil {
			return hookStatus(err, codes.BadRequest)
		}
	}
	o.mu.Lock()
	ok := o.drop(p.Instance())
	o.mu.Unlock()
	if !ok {
		return Status(codes.NotFound, "no instance %s", p)
	}
	c.changed(p)
	c.objectListChanged()
	return nil
}
