// Package testdevice is a small LwM2M client for the server's tests, built
// on go-coap's UDP client: it registers with a link-format object list and
// answers Read, Write, Execute, Discover, Write-Attributes, Create, Delete
// and Observe from an in-memory object tree with the real codecs, and sends
// notifications and Send. It is not the client engine (another package):
// it obeys the server and records what it was asked, so tests can check
// both sides.
package testdevice

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/net/responsewriter"
	"github.com/plgd-dev/go-coap/v3/udp"
	"github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/content"
	"github.com/lwm2md/lwm2md/objects/linkformat"
)

// Config describes a device.
type Config struct {
	Endpoint string
	Version  string // lwm2m query parameter; "" leaves it out
	Lifetime int    // lt in seconds; 0 leaves it out
	Binding  string // b; "" leaves it out
	Query    []string
	Root     string           // alternate root path ("/lwm2m"); "" is "/"
	Announce []objects.Format // ct of the root link
	// Registry gives the device's models: the newest version of each
	// object, announced with ver in the Register payload.
	Registry *objects.Registry
	Objects  []objects.Object // the initial tree
	// Formats the device reads and writes; nil means every format lwm2md
	// has. DefaultFormat answers a request without Accept (TLV if zero).
	Formats       []objects.Format
	DefaultFormat objects.Format
	// ConfirmableNotify sends confirmable notifications (the default is
	// non-confirmable, as Wakaama and Anjay send them). They are sent once,
	// not retransmitted.
	ConfirmableNotify bool
}

// Exec is an Execute the device received.
type Exec struct {
	Path objects.Path
	Args string
}

type observer struct {
	token  message.Token
	path   objects.Path
	format objects.Format
}

// Device is a running test device.
type Device struct {
	cfg    Config
	models objects.Models
	cc     *client.Conn

	mu        sync.Mutex
	tree      map[uint16]*objects.Object
	location  string
	observers map[string]*observer // by token
	sentMIDs  map[int32]string     // notification message ID -> observer token
	seq       uint32
	resets    int
	executed  []Exec
	attrs     map[objects.Path]linkformat.Attributes
	requests  []string // "GET /3/0 accept=11542", for assertions
}

// Dial starts a device talking to the server at addr.
func Dial(addr string, cfg Config) (*Device, error) {
	if cfg.Registry == nil {
		return nil, errors.New("testdevice: no registry")
	}
	if cfg.DefaultFormat == 0 {
		cfg.DefaultFormat = objects.FormatTLV
	}
	d := &Device{
		cfg:       cfg,
		models:    cfg.Registry.ForVersions(nil),
		tree:      make(map[uint16]*objects.Object),
		observers: make(map[string]*observer),
		sentMIDs:  make(map[int32]string),
		attrs:     make(map[objects.Path]linkformat.Attributes),
	}
	for i := range cfg.Objects {
		o := cloneObject(&cfg.Objects[i])
		if err := conform(objects.NewPath(o.ID), o, d.models); err != nil {
			return nil, err
		}
		d.tree[o.ID] = o
	}
	cc, err := udp.Dial(addr, clientOptions{d})
	if err != nil {
		return nil, err
	}
	d.cc = cc
	return d, nil
}

type clientOptions struct{ d *Device }

func (o clientOptions) UDPClientApply(cfg *client.Config) {
	cfg.Handler = o.d.handle
	cfg.Errors = func(error) {}
}

// Close closes the device's socket.
func (d *Device) Close() error { return d.cc.Close() }

// LocalAddr is the device's UDP address.
func (d *Device) LocalAddr() net.Addr { return d.cc.LocalAddr() }

// NetConn is the device's socket, to write what go-coap would not.
func (d *Device) NetConn() net.Conn { return d.cc.NetConn() }

// Location is the registration's Location-Path, "/rd/{id}".
func (d *Device) Location() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.location
}

// RegisterPayload is the link-format object list the device registers.
func (d *Device) RegisterPayload() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := &linkformat.Registration{Root: d.cfg.Root, Formats: d.cfg.Announce}
	ids := make([]uint16, 0, len(d.tree))
	for id := range d.tree {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		o := linkformat.Object{ID: id, Version: "1.0"}
		if def := d.models.Object(id); def != nil {
			o.Version, o.HasVersion = def.Version, true
		}
		for _, in := range d.tree[id].Instances {
			o.Instances = append(o.Instances, in.ID)
		}
		r.Objects = append(r.Objects, o)
	}
	return linkformat.EncodeRegistration(r)
}

// Register sends a Register and keeps the Location-Path of a 2.01.
func (d *Device) Register(ctx context.Context) (codes.Code, error) {
	q := []string{"ep=" + d.cfg.Endpoint}
	if d.cfg.Lifetime > 0 {
		q = append(q, "lt="+strconv.Itoa(d.cfg.Lifetime))
	}
	if d.cfg.Version != "" {
		q = append(q, "lwm2m="+d.cfg.Version)
	}
	if d.cfg.Binding != "" {
		q = append(q, "b="+d.cfg.Binding)
	}
	q = append(q, d.cfg.Query...)
	resp, err := d.post(ctx, "/rd", message.AppLinkFormat, d.RegisterPayload(), q)
	if err != nil {
		return 0, err
	}
	defer d.cc.ReleaseMessage(resp)
	if resp.Code() == codes.Created {
		loc, err := resp.Options().LocationPath()
		if err != nil {
			return resp.Code(), fmt.Errorf("testdevice: 2.01 without Location-Path: %w", err)
		}
		d.mu.Lock()
		d.location = loc
		d.mu.Unlock()
	}
	return resp.Code(), nil
}

// Update sends an Update with the given query parameters, and the object
// list when withObjects is set.
func (d *Device) Update(ctx context.Context, withObjects bool, query ...string) (codes.Code, error) {
	var payload []byte
	if withObjects {
		payload = d.RegisterPayload()
	}
	resp, err := d.post(ctx, d.Location(), message.AppLinkFormat, payload, query)
	if err != nil {
		return 0, err
	}
	defer d.cc.ReleaseMessage(resp)
	return resp.Code(), nil
}

// Deregister sends a De-register.
func (d *Device) Deregister(ctx context.Context) (codes.Code, error) {
	resp, err := d.cc.Delete(ctx, d.Location())
	if err != nil {
		return 0, err
	}
	defer d.cc.ReleaseMessage(resp)
	return resp.Code(), nil
}

// Send sends records with POST /dp in format f.
func (d *Device) Send(ctx context.Context, f objects.Format, recs []objects.Record) (codes.Code, error) {
	rc, ok := content.RecordCodec(f)
	if !ok {
		return 0, fmt.Errorf("testdevice: %s is not a multi-path format", f)
	}
	b, err := rc.EncodeRecords(recs, d.models)
	if err != nil {
		return 0, err
	}
	return d.PostRaw(ctx, "/dp", message.MediaType(f), b)
}

// PostRaw sends any POST and returns the answer's code.
func (d *Device) PostRaw(ctx context.Context, path string, cf message.MediaType, payload []byte, query ...string) (codes.Code, error) {
	resp, err := d.post(ctx, path, cf, payload, query)
	if err != nil {
		return 0, err
	}
	defer d.cc.ReleaseMessage(resp)
	return resp.Code(), nil
}

func (d *Device) post(ctx context.Context, path string, cf message.MediaType, payload []byte, query []string) (*pool.Message, error) {
	var body *bytes.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	var req *pool.Message
	var err error
	if body != nil {
		req, err = d.cc.NewPostRequest(ctx, path, cf, body)
	} else {
		req, err = d.cc.NewPostRequest(ctx, path, cf, nil)
	}
	if err != nil {
		return nil, err
	}
	defer d.cc.ReleaseMessage(req)
	for _, q := range query {
		req.AddQuery(q)
	}
	return d.cc.Do(req)
}

// Value returns the value at a resource or resource-instance path.
func (d *Device) Value(p objects.Path) (objects.Value, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, ok := d.nodeLocked(p)
	if !ok {
		return objects.Value{}, false
	}
	switch n := n.(type) {
	case *objects.Resource:
		return n.Value, !n.Multiple
	case *objects.ResourceInstance:
		return n.Value, true
	}
	return objects.Value{}, false
}

// Node returns a copy of the node at p.
func (d *Device) Node(p objects.Path) (objects.Node, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.nodeLocked(p)
}

// Set changes a single resource's value (creating the resource if
// needed) without notifying.
func (d *Device) Set(p objects.Path, v objects.Value) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.writeLocked(p, &objects.Resource{ID: p.Resource(), Value: v}, true)
}

// Notify sends a notification to every observer of a path at, above or
// below p.
func (d *Device) Notify(ctx context.Context, p objects.Path) error {
	d.mu.Lock()
	var obs []*observer
	for _, o := range d.observers {
		if p.HasPrefix(o.path) || o.path.HasPrefix(p) {
			obs = append(obs, o)
		}
	}
	d.mu.Unlock()
	for _, o := range obs {
		if err := d.notify(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

// NotifyRaw sends a notification with any token, code and payload: for
// the server's passive-cancel and error paths.
func (d *Device) NotifyRaw(ctx context.Context, token message.Token, code codes.Code, cf objects.Format, payload []byte) (int32, error) {
	msg := d.cc.AcquireMessage(ctx)
	defer d.cc.ReleaseMessage(msg)
	msg.SetToken(token)
	msg.SetCode(code)
	d.mu.Lock()
	d.seq++
	seq := d.seq
	d.mu.Unlock()
	msg.SetObserve(seq)
	if payload != nil {
		msg.SetContentFormat(message.MediaType(cf))
		msg.SetBody(bytes.NewReader(payload))
	}
	typ := message.NonConfirmable
	if d.cfg.ConfirmableNotify {
		typ = message.Confirmable
	}
	msg.SetType(typ)
	mid := d.cc.GetMessageID()
	msg.SetMessageID(mid)
	d.mu.Lock()
	d.sentMIDs[mid] = string(token)
	d.mu.Unlock()
	// Written once on the socket, past go-coap's block-wise layer (which
	// would give the message a new ID) and its retransmission: the RST of
	// a passive cancel is matched by this message ID.
	return mid, d.cc.Session().WriteMessage(msg)
}

func (d *Device) notify(ctx context.Context, o *observer) error {
	d.mu.Lock()
	n, ok := d.nodeLocked(o.path)
	d.mu.Unlock()
	if !ok {
		_, err := d.NotifyRaw(ctx, o.token, codes.NotFound, 0, nil)
		return err
	}
	b, err := content.Encode(o.format, o.path, n, d.models)
	if err != nil {
		return err
	}
	_, err = d.NotifyRaw(ctx, o.token, codes.Content, o.format, b)
	return err
}

// Observers is the number of observations the device holds.
func (d *Device) Observers() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.observers)
}

// Resets is the number of RSTs the device received for its notifications.
func (d *Device) Resets() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.resets
}

// Executed lists the Executes received.
func (d *Device) Executed() []Exec {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.executed)
}

// Attributes returns the attributes written at p.
func (d *Device) Attributes(p objects.Path) linkformat.Attributes {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.attrs[p]
}

// Requests lists the requests received, as "GET /3/0 accept=11542".
func (d *Device) Requests() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.requests)
}

// handle answers the server.
func (d *Device) handle(w *responsewriter.ResponseWriter[*client.Conn], r *pool.Message) {
	if r.Type() == message.Reset {
		d.mu.Lock()
		if tok, ok := d.sentMIDs[r.MessageID()]; ok {
			delete(d.observers, tok)
			d.resets++
		}
		d.mu.Unlock()
		return
	}
	if r.Code() < codes.GET || r.Code() > codes.DELETE {
		return
	}
	p, err := d.requestPath(r)
	if err != nil {
		answer(w, codes.NotFound, 0, nil)
		return
	}
	d.log(r, p)
	switch r.Code() {
	case codes.GET:
		d.get(w, r, p)
	case codes.PUT:
		d.put(w, r, p)
	case codes.POST:
		d.post2(w, r, p)
	case codes.DELETE:
		d.delete(w, p)
	}
}

func (d *Device) log(r *pool.Message, p objects.Path) {
	s := r.Code().String() + " " + p.String()
	if a, err := r.Accept(); err == nil {
		s += " accept=" + strconv.Itoa(int(a))
	}
	if cf, err := r.ContentFormat(); err == nil {
		s += " cf=" + strconv.Itoa(int(cf))
	}
	if o, err := r.Observe(); err == nil {
		s += " observe=" + strconv.Itoa(int(o))
	}
	if q, _ := r.Queries(); len(q) > 0 {
		s += " ?" + strings.Join(q, "&")
	}
	d.mu.Lock()
	d.requests = append(d.requests, s)
	d.mu.Unlock()
}

// requestPath strips the alternate root and parses the LwM2M path.
func (d *Device) requestPath(r *pool.Message) (objects.Path, error) {
	s, err := r.Path()
	if err != nil {
		return objects.Path{}, err
	}
	if root := strings.TrimSuffix(d.cfg.Root, "/"); root != "" {
		if !strings.HasPrefix(s, root+"/") {
			return objects.Path{}, fmt.Errorf("not under %s", root)
		}
		s = strings.TrimPrefix(s, root)
	}
	return objects.ParsePath(s)
}

func answer(w *responsewriter.ResponseWriter[*client.Conn], code codes.Code, cf objects.Format, body []byte, opts ...message.Option) {
	var rd *bytes.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	if rd != nil {
		_ = w.SetResponse(code, message.MediaType(cf), rd, opts...)
		return
	}
	_ = w.SetResponse(code, message.TextPlain, nil, opts...)
}

func (d *Device) supports(f objects.Format) bool {
	_, ok := content.Codec(f)
	return ok && (d.cfg.Formats == nil || slices.Contains(d.cfg.Formats, f.Canonical()))
}

func (d *Device) get(w *responsewriter.ResponseWriter[*client.Conn], r *pool.Message, p objects.Path) {
	accept := d.cfg.DefaultFormat
	if a, err := r.Accept(); err == nil {
		accept = objects.Format(a)
	}
	if accept == objects.FormatLinkFormat {
		d.discover(w, p)
		return
	}
	obs, obsErr := r.Observe()
	d.mu.Lock()
	n, ok := d.nodeLocked(p)
	d.mu.Unlock()
	if !ok {
		answer(w, codes.NotFound, 0, nil)
		return
	}
	if !d.supports(accept) {
		answer(w, codes.NotAcceptable, 0, nil)
		return
	}
	b, err := content.Encode(accept, p, n, d.models)
	if err != nil {
		answer(w, codes.NotAcceptable, 0, nil)
		return
	}
	var opts []message.Option
	if obsErr == nil {
		d.mu.Lock()
		switch obs {
		case 0:
			d.observers[string(r.Token())] = &observer{token: append(message.Token(nil), r.Token()...), path: p, format: accept}
			d.seq++
			opts = append(opts, message.Option{ID: message.Observe, Value: encodeUint(d.seq)})
		case 1:
			delete(d.observers, string(r.Token()))
		}
		d.mu.Unlock()
	}
	answer(w, codes.Content, accept, b, opts...)
}

func encodeUint(v uint32) []byte {
	switch {
	case v == 0:
		return nil
	case v < 1<<8:
		return []byte{byte(v)}
	case v < 1<<16:
		return []byte{byte(v >> 8), byte(v)}
	}
	return []byte{byte(v >> 16), byte(v >> 8), byte(v)}
}

func (d *Device) discover(w *responsewriter.ResponseWriter[*client.Conn], p objects.Path) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, ok := d.nodeLocked(p)
	if !ok {
		answer(w, codes.NotFound, 0, nil)
		return
	}
	var links []linkformat.DiscoverLink
	add := func(q objects.Path) {
		links = append(links, linkformat.DiscoverLink{Path: q, Attributes: d.attrs[q]})
	}
	add(p)
	var walk func(q objects.Path, n objects.Node)
	walk = func(q objects.Path, n objects.Node) {
		switch n := n.(type) {
		case *objects.Object:
			for i := range n.Instances {
				add(q.Child(n.Instances[i].ID))
				walk(q.Child(n.Instances[i].ID), &n.Instances[i])
			}
		case *objects.Instance:
			for i := range n.Resources {
				r := &n.Resources[i]
				add(q.Child(r.ID))
				if r.Multiple {
					l := &links[len(links)-1]
					l.Attributes.Set |= linkformat.AttrDim
					l.Attributes.Dim = uint8(len(r.Instances))
				}
			}
		}
	}
	walk(p, n)
	answer(w, codes.Content, objects.FormatLinkFormat, linkformat.EncodeDiscover(links))
}

func (d *Device) put(w *responsewriter.ResponseWriter[*client.Conn], r *pool.Message, p objects.Path) {
	q, _ := r.Queries()
	if size, _ := r.BodySize(); size == 0 && len(q) > 0 {
		a, err := linkformat.ParseQuery(q)
		if err != nil {
			answer(w, codes.BadRequest, 0, nil)
			return
		}
		d.mu.Lock()
		if _, ok := d.nodeLocked(p); !ok {
			d.mu.Unlock()
			answer(w, codes.NotFound, 0, nil)
			return
		}
		d.attrs[p] = d.attrs[p].Merge(a)
		d.mu.Unlock()
		answer(w, codes.Changed, 0, nil)
		return
	}
	d.write(w, r, p, true)
}

func (d *Device) write(w *responsewriter.ResponseWriter[*client.Conn], r *pool.Message, p objects.Path, replace bool) {
	n, code := d.decodeBody(r, p)
	if n == nil {
		answer(w, code, 0, nil)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.nodeLocked(p.Truncate(2)); !ok {
		answer(w, codes.NotFound, 0, nil)
		return
	}
	if !d.writeLocked(p, n, replace) {
		answer(w, codes.BadRequest, 0, nil)
		return
	}
	answer(w, codes.Changed, 0, nil)
}

func (d *Device) decodeBody(r *pool.Message, p objects.Path) (objects.Node, codes.Code) {
	cf, err := r.ContentFormat()
	if err != nil {
		return nil, codes.BadRequest
	}
	f := objects.Format(cf)
	if !d.supports(f) {
		return nil, codes.UnsupportedMediaType
	}
	body, err := r.ReadBody()
	if err != nil {
		return nil, codes.BadRequest
	}
	n, err := content.Decode(f, p, body, d.models)
	if err != nil {
		return nil, codes.BadRequest
	}
	return n, 0
}

func (d *Device) post2(w *responsewriter.ResponseWriter[*client.Conn], r *pool.Message, p objects.Path) {
	switch p.Len() {
	case 1:
		d.create(w, r, p)
	case 2:
		d.write(w, r, p, false)
	case 3:
		res := objects.ResourceOf(d.models, p)
		if res != nil && res.Operations&objects.OpExecute != 0 {
			d.execute(w, r, p)
			return
		}
		d.write(w, r, p, false)
	default:
		answer(w, codes.MethodNotAllowed, 0, nil)
	}
}

func (d *Device) execute(w *responsewriter.ResponseWriter[*client.Conn], r *pool.Message, p objects.Path) {
	body, _ := r.ReadBody()
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.nodeLocked(p.Truncate(2)); !ok {
		answer(w, codes.NotFound, 0, nil)
		return
	}
	d.executed = append(d.executed, Exec{Path: p, Args: string(body)})
	answer(w, codes.Changed, 0, nil)
}

func (d *Device) create(w *responsewriter.ResponseWriter[*client.Conn], r *pool.Message, p objects.Path) {
	n, code := d.decodeBody(r, p)
	if n == nil {
		answer(w, code, 0, nil)
		return
	}
	obj := n.(*objects.Object)
	if len(obj.Instances) != 1 {
		answer(w, codes.BadRequest, 0, nil)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	o := d.tree[p.Object()]
	if o == nil {
		answer(w, codes.NotFound, 0, nil)
		return
	}
	in := obj.Instances[0]
	if o.Instance(in.ID) != nil {
		answer(w, codes.BadRequest, 0, nil)
		return
	}
	o.Instances = append(o.Instances, in)
	objects.SortNode(o)
	answer(w, codes.Created, 0, nil,
		message.Option{ID: message.LocationPath, Value: []byte(strconv.Itoa(int(p.Object())))},
		message.Option{ID: message.LocationPath, Value: []byte(strconv.Itoa(int(in.ID)))})
}

func (d *Device) delete(w *responsewriter.ResponseWriter[*client.Conn], p objects.Path) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p.Len() != 2 {
		answer(w, codes.MethodNotAllowed, 0, nil)
		return
	}
	o := d.tree[p.Object()]
	if o == nil || o.Instance(p.Instance()) == nil {
		answer(w, codes.NotFound, 0, nil)
		return
	}
	o.Instances = slices.DeleteFunc(o.Instances, func(in objects.Instance) bool { return in.ID == p.Instance() })
	answer(w, codes.Deleted, 0, nil)
}

// nodeLocked returns a copy of the node at p.
func (d *Device) nodeLocked(p objects.Path) (objects.Node, bool) {
	if p.IsRoot() {
		return nil, false
	}
	o := d.tree[p.Object()]
	if o == nil {
		return nil, false
	}
	if p.Len() == 1 {
		return cloneObject(o), true
	}
	in := o.Instance(p.Instance())
	if in == nil {
		return nil, false
	}
	if p.Len() == 2 {
		c := cloneInstance(in)
		return &c, true
	}
	r := in.Resource(p.Resource())
	if r == nil {
		return nil, false
	}
	if p.Len() == 3 {
		c := cloneResource(r)
		return &c, true
	}
	ri := r.Instance(p.ResourceInstance())
	if ri == nil {
		return nil, false
	}
	c := *ri
	return &c, true
}

// writeLocked applies a decoded node at p: replace swaps the instance or
// resource, otherwise the given resources are merged into the instance.
func (d *Device) writeLocked(p objects.Path, n objects.Node, replace bool) bool {
	o := d.tree[p.Object()]
	if o == nil {
		o = &objects.Object{ID: p.Object()}
		d.tree[o.ID] = o
	}
	in := o.Instance(p.Instance())
	if in == nil {
		o.Instances = append(o.Instances, objects.Instance{ID: p.Instance()})
		objects.SortNode(o)
		in = o.Instance(p.Instance())
	}
	switch n := n.(type) {
	case *objects.Instance:
		if replace {
			in.Resources = cloneInstance(n).Resources
			return true
		}
		for _, r := range n.Resources {
			setResource(in, cloneResource(&r))
		}
	case *objects.Resource:
		old := in.Resource(n.ID)
		if !replace && old != nil && old.Multiple && n.Multiple {
			for _, ri := range n.Instances {
				if x := old.Instance(ri.ID); x != nil {
					x.Value = ri.Value
				} else {
					old.Instances = append(old.Instances, ri)
				}
			}
			objects.SortNode(old)
			return true
		}
		setResource(in, cloneResource(n))
	case *objects.ResourceInstance:
		r := in.Resource(p.Resource())
		if r == nil || !r.Multiple {
			return false
		}
		if x := r.Instance(n.ID); x != nil {
			x.Value = n.Value
		} else {
			r.Instances = append(r.Instances, *n)
			objects.SortNode(r)
		}
	default:
		return false
	}
	objects.SortNode(in)
	return true
}

func setResource(in *objects.Instance, r objects.Resource) {
	if old := in.Resource(r.ID); old != nil {
		*old = r
		return
	}
	in.Resources = append(in.Resources, r)
}

func cloneObject(o *objects.Object) *objects.Object {
	c := &objects.Object{ID: o.ID, Instances: make([]objects.Instance, len(o.Instances))}
	for i := range o.Instances {
		c.Instances[i] = cloneInstance(&o.Instances[i])
	}
	return c
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
	c.Instances = slices.Clone(r.Instances)
	return c
}

// conform converts the tree's values to the types of the device's models
// (an Integer literal for an Unsigned resource), so that what the device
// holds is what a codec reads back.
func conform(p objects.Path, o *objects.Object, m objects.Models) error {
	for i := range o.Instances {
		in := &o.Instances[i]
		for k := range in.Resources {
			r := &in.Resources[k]
			rp := p.Child(in.ID).Child(r.ID)
			t := objects.TypeOf(m, rp)
			if t == objects.TypeNone {
				continue
			}
			if !r.Multiple {
				v, err := r.Value.Convert(t)
				if err != nil {
					return fmt.Errorf("testdevice: %s: %w", rp, err)
				}
				r.Value = v
				continue
			}
			for j := range r.Instances {
				v, err := r.Instances[j].Value.Convert(t)
				if err != nil {
					return fmt.Errorf("testdevice: %s: %w", rp.Child(r.Instances[j].ID), err)
				}
				r.Instances[j].Value = v
			}
		}
	}
	return nil
}
