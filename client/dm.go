package client

import (
	"bytes"
	"errors"
	"strconv"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/net/responsewriter"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/content"
	"github.com/lwm2md/lwm2md/objects/linkformat"
)

// The CoAP methods of RFC 8132 that LwM2M 1.1 uses for the composite
// operations; go-coap has no names for them.
const (
	codeFETCH  codes.Code = 5
	codeIPATCH codes.Code = 7
)

// answer is what the client replies to one request.
type answer struct {
	op     string
	code   codes.Code
	format objects.Format
	body   []byte // nil: no payload
	diag   string // diagnostic payload of an error (RFC 7252 §5.5.2)
	opts   []message.Option
}

func fail(op string, err error) answer {
	var se *StatusError
	if errors.As(err, &se) {
		return answer{op: op, code: se.Code, diag: se.Msg}
	}
	return answer{op: op, code: codes.InternalServerError, diag: err.Error()}
}

// handle answers the server's requests and takes the RSTs of
// notifications (go-coap hands both to the handler).
func (c *Client) handle(w *responsewriter.ResponseWriter[*udpClient.Conn], r *pool.Message) {
	if r.Type() == message.Reset {
		c.onReset(r.MessageID())
		return
	}
	code := r.Code()
	if code == codes.Empty || code >= 32 {
		return // a late or duplicate response: go-coap acknowledged it if needed
	}
	var a answer
	p, err := requestPath(r)
	switch {
	case err != nil:
		a = answer{op: "unknown", code: codes.NotFound, diag: err.Error()}
	case code == codes.GET:
		a = c.get(r, p)
	case code == codes.PUT:
		a = c.put(r, p)
	case code == codes.POST:
		a = c.postRequest(r, p)
	case code == codes.DELETE:
		a = c.del(p)
	case code == codeFETCH && c.cfg.Version != "1.0":
		a = c.fetch(r, p)
	case code == codeIPATCH && c.cfg.Version != "1.0":
		a = c.ipatch(r, p)
	default:
		a = answer{op: "unknown", code: codes.MethodNotAllowed, diag: "method not allowed"}
	}
	c.reply(w, a)
	c.stats.requests.Add(1)
	c.emit(Event{Kind: EventRequest, Op: a.op, Path: p, Code: a.code})
}

// reply writes a into the response.
func (c *Client) reply(w *responsewriter.ResponseWriter[*udpClient.Conn], a answer) {
	var err error
	if a.body != nil {
		err = w.SetResponse(a.code, message.MediaType(a.format), bytes.NewReader(a.body), a.opts...)
	} else {
		err = w.SetResponse(a.code, message.TextPlain, nil, a.opts...)
		if err == nil && a.diag != "" {
			w.Message().SetBody(bytes.NewReader([]byte(a.diag)))
		}
	}
	if err != nil {
		c.log.Debug("coap: cannot set response", "err", err)
	}
}

// requestPath reads the LwM2M path of a request; no Uri-Path is the root.
func requestPath(r *pool.Message) (objects.Path, error) {
	s, err := r.Options().Path()
	if err != nil || s == "" {
		return objects.RootPath, nil
	}
	return objects.ParsePath(s)
}

// get answers Read, Observe and Discover (a GET whose Accept is
// link-format).
func (c *Client) get(r *pool.Message, p objects.Path) answer {
	accept, hasAccept := acceptOf(r)
	if hasAccept && accept == objects.FormatLinkFormat {
		return c.discover(p)
	}
	obs, obsErr := r.Observe()
	op := "read"
	if obsErr == nil {
		op = "observe"
		if obs == 1 {
			op = "cancel-observation"
		}
	}
	if p.IsRoot() {
		return answer{op: op, code: codes.MethodNotAllowed, diag: "cannot read the root path"}
	}
	node, err := c.readNode(p)
	if err != nil {
		if obsErr == nil && obs == 1 {
			c.cancelObservation(string(r.Token()))
		}
		return fail(op, err)
	}
	f := accept
	if !hasAccept {
		f = c.defaultFormat(p, node)
	}
	body, err := c.encode(f, p, node)
	if err != nil {
		return fail(op, err)
	}
	a := answer{op: op, code: codes.Content, format: f, body: body}
	if obsErr == nil {
		switch obs {
		case 0:
			seq := c.observe(r.Token(), []objects.Path{p}, f, node, nil)
			a.opts = []message.Option{{ID: message.Observe, Value: observeValue(seq)}}
		case 1:
			c.cancelObservation(string(r.Token()))
		}
	}
	return a
}

// acceptOf reads the Accept option.
func acceptOf(r *pool.Message) (objects.Format, bool) {
	a, err := r.Accept()
	if err != nil {
		return 0, false
	}
	return objects.Format(a), true
}

// defaultFormat is the format of an answer without Accept: text/plain for
// a single value (octet-stream for an Opaque one), the DefaultFormat for
// anything with several values.
func (c *Client) defaultFormat(p objects.Path, n objects.Node) objects.Format {
	var v objects.Value
	switch n := n.(type) {
	case *objects.Resource:
		if n.Multiple {
			return c.cfg.DefaultFormat
		}
		v = n.Value
	case *objects.ResourceInstance:
		v = n.Value
	default:
		return c.cfg.DefaultFormat
	}
	if v.Type() == objects.TypeOpaque {
		return objects.FormatOpaque
	}
	return objects.FormatText
}

// encode writes n in format f: 4.06 Not Acceptable when the client's
// LwM2M version lacks the format or the format cannot carry the node
// (Core 1.1 §5.4.1).
func (c *Client) encode(f objects.Format, p objects.Path, n objects.Node) ([]byte, error) {
	if !supported(c.cfg.Version, f) {
		return nil, Status(codes.NotAcceptable, "content format %v is not supported by this LwM2M %s client", f, c.cfg.Version)
	}
	b, err := content.Encode(f, p, n, c.models)
	if err != nil {
		if errors.Is(err, objects.ErrUnsupported) {
			return nil, Status(codes.NotAcceptable, "%v", err)
		}
		return nil, Status(codes.InternalServerError, "%v", err)
	}
	return b, nil
}

// decode reads a request's payload for p: 4.15 for a content format the
// client does not have (or one that cannot carry the node), 4.00 for a
// payload that breaks its format or the model's types.
func (c *Client) decode(r *pool.Message, p objects.Path) (objects.Node, objects.Format, error) {
	f := objects.FormatText // RFC 7252 §5.10.3 leaves it open; LwM2M 1.0 §6.4 assumes text/plain
	if cf, err := r.ContentFormat(); err == nil {
		f = objects.Format(cf)
	}
	if !supported(c.cfg.Version, f) {
		return nil, f, Status(codes.UnsupportedMediaType, "content format %v is not supported by this LwM2M %s client", f, c.cfg.Version)
	}
	body, err := r.ReadBody()
	if err != nil {
		return nil, f, Status(codes.BadRequest, "cannot read the payload: %v", err)
	}
	n, err := content.Decode(f, p, body, c.models)
	if err != nil {
		if errors.Is(err, objects.ErrUnsupported) {
			return nil, f, Status(codes.UnsupportedMediaType, "%v", err)
		}
		return nil, f, Status(codes.BadRequest, "%v", err)
	}
	return n, f, nil
}

// discover answers a Discover (Core 1.1 §5.4.2) in link-format: of an
// object, the object with its attributes, its instances and their
// resources (with dim for a multiple resource); of an instance, the
// instance and its resources with their own attributes; of a resource,
// the resource with the attributes in force, inherited ones included.
func (c *Client) discover(p objects.Path) answer {
	const op = "discover"
	if p.IsRoot() || p.Len() > 3 {
		return answer{op: op, code: codes.BadRequest, diag: "Discover needs an object, instance or resource path"}
	}
	o, err := c.object(p)
	if err != nil {
		return fail(op, err)
	}
	if err := c.exists(p); err != nil {
		return fail(op, err)
	}
	// The instances are read first: c.mu is not held while an object's
	// OnRead functions run.
	var insts []objects.Instance
	if p.Len() == 1 {
		for _, id := range o.Instances() {
			if in, ok := o.Instance(id); ok {
				insts = append(insts, in)
			}
		}
	} else if in, ok := o.Instance(p.Instance()); ok {
		insts = append(insts, in)
	} else {
		return answer{op: op, code: codes.NotFound, diag: "no instance " + p.Truncate(2).String()}
	}
	var links []linkformat.DiscoverLink
	add := func(q objects.Path, a linkformat.Attributes, r *objects.Resource) {
		if r != nil && r.Multiple {
			a.Set |= linkformat.AttrDim
			a.Dim = uint8(min(len(r.Instances), 255))
		}
		links = append(links, linkformat.DiscoverLink{Path: q, Attributes: a})
	}
	c.mu.Lock()
	switch p.Len() {
	case 1:
		add(p, c.attrs[p], nil)
		for _, in := range insts {
			ip := p.Child(in.ID)
			add(ip, linkformat.Attributes{}, nil)
			for k := range in.Resources {
				add(ip.Child(in.Resources[k].ID), linkformat.Attributes{}, &in.Resources[k])
			}
		}
	case 2:
		add(p, c.attrs[p], nil)
		for k := range insts[0].Resources {
			rp := p.Child(insts[0].Resources[k].ID)
			add(rp, c.attrs[rp], &insts[0].Resources[k])
		}
	case 3:
		add(p, c.effectiveLocked(p), insts[0].Resource(p.Resource()))
	}
	c.mu.Unlock()
	return answer{op: op, code: codes.Content, format: objects.FormatLinkFormat, body: linkformat.EncodeDiscover(links)}
}

// put answers Write (replace) and Write-Attributes (a PUT with a query and
// no payload).
func (c *Client) put(r *pool.Message, p objects.Path) answer {
	q, _ := r.Queries()
	size, _ := r.BodySize()
	if size == 0 && len(q) > 0 {
		if err := c.writeAttributes(p, q); err != nil {
			return fail("write-attributes", err)
		}
		return answer{op: "write-attributes", code: codes.Changed}
	}
	const op = "write"
	if p.Len() < 2 {
		if _, err := c.object(p); err != nil {
			return fail(op, err)
		}
		return answer{op: op, code: codes.MethodNotAllowed, diag: "Write needs an instance, resource or resource-instance path"}
	}
	if err := c.writable(p); err != nil {
		return fail(op, err)
	}
	n, _, err := c.decode(r, p)
	if err != nil {
		return fail(op, err)
	}
	if err := c.writeNode(p, n, writeReplace); err != nil {
		return fail(op, err)
	}
	return answer{op: op, code: codes.Changed}
}

// writable checks, before the payload is decoded, that the instance of p
// exists and that the resource p names (if it names one) is writable, so
// that a write to a read-only resource is 4.05 whatever its payload.
func (c *Client) writable(p objects.Path) error {
	o, err := c.object(p)
	if err != nil {
		return err
	}
	if p.Len() >= 3 {
		def := o.def.Resource(p.Resource())
		if def == nil {
			return Status(codes.NotFound, "object %d has no resource %d", o.id, p.Resource())
		}
		if !def.Operations.Writable() {
			return Status(codes.MethodNotAllowed, "resource %s is not writable (operations %q)", p.Truncate(3), def.Operations)
		}
	}
	if !o.HasInstance(p.Instance()) {
		return Status(codes.NotFound, "no instance %s", p.Truncate(2))
	}
	return nil
}

// postRequest answers Create (object path), Partial Update (instance path,
// or a multiple resource with a payload) and Execute (resource path).
func (c *Client) postRequest(r *pool.Message, p objects.Path) answer {
	o, err := c.object(p)
	if err != nil {
		return fail("post", err)
	}
	switch p.Len() {
	case 1:
		return c.createRequest(r, p, o)
	case 2:
		if err := c.writable(p); err != nil {
			return fail("write", err)
		}
		n, _, err := c.decode(r, p)
		if err != nil {
			return fail("write", err)
		}
		if err := c.writeNode(p, n, writePartial); err != nil {
			return fail("write", err)
		}
		return answer{op: "write", code: codes.Changed}
	case 3:
		def := o.def.Resource(p.Resource())
		cf, cfErr := r.ContentFormat()
		if def != nil && def.Multiple && !def.Operations.Executable() && cfErr == nil && cf != message.TextPlain {
			if err := c.writable(p); err != nil {
				return fail("write", err)
			}
			n, _, err := c.decode(r, p)
			if err != nil {
				return fail("write", err)
			}
			if err := c.writeNode(p, n, writePartial); err != nil {
				return fail("write", err)
			}
			return answer{op: "write", code: codes.Changed}
		}
		body, err := r.ReadBody()
		if err != nil {
			return answer{op: "execute", code: codes.BadRequest, diag: "cannot read the payload"}
		}
		if err := c.execute(p, body); err != nil {
			return fail("execute", err)
		}
		return answer{op: "execute", code: codes.Changed}
	}
	return answer{op: "post", code: codes.MethodNotAllowed, diag: "POST is not defined on a resource instance"}
}

// createRequest answers Create. A TLV payload that starts with resources
// rather than an object instance leaves the instance ID to the client
// (Core 1.1 §5.4.6); the client takes the lowest free one.
func (c *Client) createRequest(r *pool.Message, p objects.Path, o *Object) answer {
	const op = "create"
	body, err := r.ReadBody()
	if err != nil {
		return answer{op: op, code: codes.BadRequest, diag: "cannot read the payload"}
	}
	n, f, err := c.decode(r, p)
	if err != nil {
		return fail(op, err)
	}
	obj, ok := n.(*objects.Object)
	if !ok {
		return answer{op: op, code: codes.BadRequest, diag: "Create needs an object instance"}
	}
	if f.Canonical() == objects.FormatTLV && len(body) > 0 && body[0]>>6 != 0 && len(obj.Instances) == 1 {
		id, ok := freeInstanceID(o)
		if !ok {
			return answer{op: op, code: codes.BadRequest, diag: "no free instance ID"}
		}
		obj.Instances[0].ID = id
	}
	created, err := c.create(p, obj)
	if err != nil {
		return fail(op, err)
	}
	return answer{op: op, code: codes.Created, opts: []message.Option{
		{ID: message.LocationPath, Value: []byte(strconv.Itoa(int(created.Object())))},
		{ID: message.LocationPath, Value: []byte(strconv.Itoa(int(created.Instance())))},
	}}
}

func (c *Client) del(p objects.Path) answer {
	if err := c.deletePath(p); err != nil {
		return fail("delete", err)
	}
	return answer{op: "delete", code: codes.Deleted}
}

// writeAttributes answers Write-Attributes (Core 1.1 §5.4.4): the
// notification attributes of the query are merged into those of p.
// 4.00 for an invalid attribute, a <PROPERTIES> attribute (which only the
// client sets), an attribute the client's version lacks, a threshold on
// something that is not a numeric resource, or a result that breaks the
// rules between attributes.
func (c *Client) writeAttributes(p objects.Path, q []string) error {
	if p.IsRoot() {
		return Status(codes.MethodNotAllowed, "cannot write attributes of the root path")
	}
	if err := c.exists(p); err != nil {
		return err
	}
	a, err := linkformat.ParseQuery(q)
	if err != nil {
		return Status(codes.BadRequest, "%v", err)
	}
	named := a.Set | a.Unset
	if x := named & linkformat.Properties; x != 0 {
		return Status(codes.BadRequest, "attribute %s cannot be written", x)
	}
	if x := named & versionAttrs(c.cfg.Version); x != 0 {
		return Status(codes.BadRequest, "attribute %s is not defined in LwM2M %s", x, c.cfg.Version)
	}
	if a.Set&(linkformat.AttrGT|linkformat.AttrLT|linkformat.AttrST) != 0 && !c.numeric(p) {
		return Status(codes.BadRequest, "gt, lt and st need a numeric single resource or resource instance")
	}
	if a.Set&linkformat.AttrEdge != 0 && !c.boolean(p) {
		return Status(codes.BadRequest, "edge needs a Boolean resource")
	}
	c.mu.Lock()
	merged := c.attrs[p].Merge(a)
	if err := merged.Validate(); err != nil {
		c.mu.Unlock()
		return Status(codes.BadRequest, "%v", err)
	}
	if merged.Set == 0 {
		delete(c.attrs, p)
	} else {
		c.attrs[p] = merged
	}
	c.mu.Unlock()
	c.attributesChanged(p)
	return nil
}

// versionAttrs are the notification attributes LwM2M version ver does
// not define: epmin and epmax came with 1.1, edge, con and hqmax with 1.2.
func versionAttrs(ver string) linkformat.Attr {
	switch ver {
	case "1.0":
		return linkformat.AttrEPMin | linkformat.AttrEPMax | linkformat.AttrEdge | linkformat.AttrCon | linkformat.AttrHQMax
	case "1.1":
		return linkformat.AttrEdge | linkformat.AttrCon | linkformat.AttrHQMax
	}
	return 0
}

// numeric reports whether p is a single resource or a resource instance
// of a numeric type.
func (c *Client) numeric(p objects.Path) bool {
	if p.Len() < 3 {
		return false
	}
	def := c.models.Object(p.Object()).Resource(p.Resource())
	if def == nil || (def.Multiple && p.Len() == 3) {
		return false
	}
	switch def.Type {
	case objects.TypeInteger, objects.TypeUnsigned, objects.TypeFloat:
		return true
	}
	return false
}

func (c *Client) boolean(p objects.Path) bool {
	if p.Len() < 3 {
		return false
	}
	def := c.models.Object(p.Object()).Resource(p.Resource())
	return def != nil && def.Type == objects.TypeBoolean && (!def.Multiple || p.Len() == 4)
}

// observeValue encodes an Observe sequence number (RFC 7641 §2: up to 3
// bytes, shortest form).
func observeValue(seq uint32) []byte {
	seq &= 0xffffff
	switch {
	case seq == 0:
		return nil
	case seq < 1<<8:
		return []byte{byte(seq)}
	case seq < 1<<16:
		return []byte{byte(seq >> 8), byte(seq)}
	}
	return []byte{byte(seq >> 16), byte(seq >> 8), byte(seq)}
}
