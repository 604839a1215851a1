package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/content"
	"github.com/lwm2md/lwm2md/objects/linkformat"
)

// Option adjusts one device management call.
type Option func(*callOptions)

type callOptions struct {
	format  objects.Format
	forced  bool
	noQueue bool // queue mode: fail with ErrSleeping instead of waiting (NoQueue)
}

// WithFormat forces the content format of the call: the Accept of a
// Read or Observe, the Content-Format of a Write or Create. Without it the
// registration's PreferredFormat is used.
func WithFormat(f objects.Format) Option {
	return func(o *callOptions) { o.format, o.forced = f, true }
}

// call is one device management exchange in progress.
type call struct {
	s     *Server
	op    string
	ep    string
	path  objects.Path
	start time.Time
	sess  *session
	reg   *Registration
	cc    *udpClient.Conn
	opts  callOptions
}

// begin finds the device and its association, and bounds ctx by
// RequestTimeout when it has no deadline.
func (s *Server) begin(ctx context.Context, op, ep string, path objects.Path, opts []Option) (*call, context.Context, context.CancelFunc, error) {
	c := &call{s: s, op: op, ep: ep, path: path, start: time.Now()}
	for _, o := range opts {
		o(&c.opts)
	}
	cancel := context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok {
		ctx, cancel = context.WithTimeout(ctx, s.cfg.RequestTimeout)
	}
	sess, err := s.session(ep)
	if err != nil {
		cancel()
		return nil, nil, nil, c.end(err)
	}
	cc, reg, err := s.conn(sess)
	if err != nil {
		cancel()
		return nil, nil, nil, c.end(err)
	}
	c.sess, c.reg, c.cc = sess, reg, cc
	if !c.opts.forced {
		c.opts.format = reg.PreferredFormat()
	}
	return c, ctx, cancel, nil
}

// fail is for a call refused before it is sent.
func (s *Server) fail(op, ep string, path objects.Path, format string, args ...any) error {
	c := &call{s: s, op: op, ep: ep, path: path, start: time.Now()}
	return c.end(fmt.Errorf("server: %s %s %s: %s: %w", op, ep, path, fmt.Sprintf(format, args...), ErrInvalidRequest))
}

// end publishes the call's result and returns err.
func (c *call) end(err error) error {
	c.answered(err)
	c.s.events.publish(Event{Kind: EventRequest, Endpoint: c.ep, RegistrationID: c.regID(), Path: c.path,
		Op: c.op, Duration: time.Since(c.start), Err: err})
	return err
}

func (c *call) regID() string {
	if c.reg == nil {
		return ""
	}
	return c.reg.ID
}

func (c *call) models() objects.Models { return c.s.Models(c.reg) }

// uriPath is the request path under the device's alternate root.
func (c *call) uriPath() string {
	root := strings.TrimSuffix(c.reg.Root, "/")
	if c.path.IsRoot() {
		return root + "/"
	}
	return root + c.path.String()
}

// request builds a confirmable request with a fresh token (or the given
// one).
func (c *call) request(ctx context.Context, code codes.Code, token message.Token) (*pool.Message, error) {
	if token == nil {
		var err error
		if token, err = message.GetToken(); err != nil {
			return nil, err
		}
	}
	req := c.cc.AcquireMessage(ctx)
	req.SetType(message.Confirmable)
	req.SetCode(code)
	req.SetToken(token)
	if err := req.SetPath(c.uriPath()); err != nil {
		c.cc.ReleaseMessage(req)
		return nil, fmt.Errorf("server: %s %s %s: %w", c.op, c.ep, c.path, err)
	}
	return req, nil
}

// exchange sends req and waits for the answer, releasing req. The caller
// releases the answer.
func (c *call) exchange(ctx context.Context, req *pool.Message) (*pool.Message, error) {
	resp, err := c.cc.Do(req)
	c.cc.ReleaseMessage(req)
	if err == nil {
		return resp, nil
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, fmt.Errorf("server: %s %s %s: %w (%w)", c.op, c.ep, c.path, ErrTimeout, ctx.Err())
	case ctx.Err() != nil:
		return nil, fmt.Errorf("server: %s %s %s: %w", c.op, c.ep, c.path, ctx.Err())
	case c.s.closed.Load():
		return nil, fmt.Errorf("server: %s %s %s: %w", c.op, c.ep, c.path, ErrClosed)
	}
	return nil, fmt.Errorf("server: %s %s %s: %w", c.op, c.ep, c.path, err)
}

// check turns an error answer into a *CoAPError.
func (c *call) check(resp *pool.Message) error {
	code := Code(resp.Code())
	if code.Class() == 2 {
		return nil
	}
	body, _ := resp.ReadBody()
	return &CoAPError{Op: c.op, Endpoint: c.ep, Path: c.path, Code: code, Diagnostic: diagnostic(body)}
}

// roundTrip is exchange and check in one, for the calls that only need
// the answer's success.
func (c *call) roundTrip(ctx context.Context, req *pool.Message) error {
	resp, err := c.exchange(ctx, req)
	if err != nil {
		return err
	}
	defer c.cc.ReleaseMessage(resp)
	return c.check(resp)
}

// decode reads the node at the call's path from a successful answer, in
// the content format the answer names (the requested one when it names
// none).
func (c *call) decode(resp *pool.Message, requested objects.Format) (objects.Node, objects.Format, error) {
	body, err := resp.ReadBody()
	if err != nil {
		return nil, 0, fmt.Errorf("server: %s %s %s: %w", c.op, c.ep, c.path, err)
	}
	f := requested
	if mt, err := resp.ContentFormat(); err == nil {
		f = objects.Format(mt)
	}
	n, err := decodeNode(c.path, f, body, c.models())
	if err != nil {
		return nil, f, fmt.Errorf("server: %s %s %s: %w", c.op, c.ep, c.path, err)
	}
	return n, f, nil
}

func decodeNode(path objects.Path, f objects.Format, body []byte, m objects.Models) (objects.Node, error) {
	codec, ok := content.Codec(f)
	if !ok {
		return nil, fmt.Errorf("content format %s cannot be decoded: %w", f, ErrUnsupportedFormat)
	}
	return codec.Decode(path, body, m)
}

// acceptFormat returns the format a Read or Observe asks for, and whether
// to send it as the Accept option. Unless a format was forced, an LwM2M
// 1.0 device is left to choose the format of a resource or resource
// instance, as its specification allows (1.0 §6.4: the client picks when
// the server names none): several 1.0 clients answer single values only
// in text (lwm2m-node-lib never answers an Accept of TLV). The answer is
// then decoded by its Content-Format, or as text/plain when it has none.
func (c *call) acceptFormat() (objects.Format, bool) {
	if !c.opts.forced && c.path.Len() >= 3 && c.reg.is10() {
		return objects.FormatText, false
	}
	return c.opts.format, true
}

// setPayload encodes n, the node at the call's path, in the call's format.
func (c *call) setPayload(req *pool.Message, n objects.Node) error {
	codec, ok := content.Codec(c.opts.format)
	if !ok {
		return fmt.Errorf("server: %s %s %s: content format %s cannot be encoded: %w", c.op, c.ep, c.path, c.opts.format, ErrInvalidRequest)
	}
	b, err := codec.Encode(c.path, n, c.models())
	if err != nil {
		return fmt.Errorf("server: %s %s %s: %w: %w", c.op, c.ep, c.path, ErrInvalidRequest, err)
	}
	req.SetContentFormat(message.MediaType(c.opts.format))
	req.SetBody(bytes.NewReader(b))
	return nil
}

// Read reads the object, instance, resource or resource instance at path
// (LwM2M Core 1.0 §5.4.1, 1.1 §6.3.1) and decodes it with the device's
// models.
func (s *Server) Read(ctx context.Context, ep string, path objects.Path, opts ...Option) (objects.Node, error) {
	if path.IsRoot() {
		return nil, s.fail("read", ep, path, "cannot read the root path")
	}
	if res, held, err := s.holdIfSleeping(ctx, ep, Request{Op: OpRead, Path: path}, opts); held {
		return res.node(), err
	}
	c, ctx, cancel, err := s.begin(ctx, "read", ep, path, opts)
	if err != nil {
		return nil, err
	}
	defer cancel()
	req, err := c.request(ctx, codes.GET, nil)
	if err != nil {
		return nil, c.end(err)
	}
	f, accept := c.acceptFormat()
	if accept {
		req.SetAccept(message.MediaType(f))
	}
	resp, err := c.exchange(ctx, req)
	if err != nil {
		return nil, c.end(err)
	}
	defer c.cc.ReleaseMessage(resp)
	if err := c.check(resp); err != nil {
		return nil, c.end(err)
	}
	n, _, err := c.decode(resp, f)
	return n, c.endRead(n, nil, err)
}

// Discover lists the objects, instances and resources under path with
// their attributes (LwM2M Core 1.0 §5.4.2, 1.1 §6.3.2).
func (s *Server) Discover(ctx context.Context, ep string, path objects.Path) ([]linkformat.DiscoverLink, error) {
	if path.IsRoot() || path.Len() > 3 {
		return nil, s.fail("discover", ep, path, "Discover needs an object, instance or resource path")
	}
	if res, held, err := s.holdIfSleeping(ctx, ep, Request{Op: OpDiscover, Path: path}, nil); held {
		if res == nil {
			return nil, err
		}
		return res.Links, err
	}
	c, ctx, cancel, err := s.begin(ctx, "discover", ep, path, nil)
	if err != nil {
		return nil, err
	}
	defer cancel()
	req, err := c.request(ctx, codes.GET, nil)
	if err != nil {
		return nil, c.end(err)
	}
	req.SetAccept(message.AppLinkFormat)
	resp, err := c.exchange(ctx, req)
	if err != nil {
		return nil, c.end(err)
	}
	defer c.cc.ReleaseMessage(resp)
	if err := c.check(resp); err != nil {
		return nil, c.end(err)
	}
	if mt, err := resp.ContentFormat(); err == nil && mt != message.AppLinkFormat {
		return nil, c.end(fmt.Errorf("server: discover %s %s: answer in content format %d, not link-format: %w", ep, path, mt, ErrUnsupportedFormat))
	}
	body, err := resp.ReadBody()
	if err != nil {
		return nil, c.end(err)
	}
	links, err := linkformat.ParseDiscover(path, body)
	if err != nil {
		return nil, c.end(fmt.Errorf("server: discover %s %s: %w", ep, path, err))
	}
	return links, c.end(nil)
}

// Write writes node n at path (LwM2M Core 1.0 §5.4.3, 1.1 §6.3.3): with
// replace, a Replace (PUT: the instance or resource becomes n); without,
// a Partial Update (POST: the resources of n are written, the others
// kept). n must be the node of path's kind and ID. A Partial Update of a
// single resource is the same as a Replace, and is sent as one.
func (s *Server) Write(ctx context.Context, ep string, path objects.Path, n objects.Node, replace bool, opts ...Option) error {
	if err := objects.CheckNode(path, n); err != nil {
		return s.fail("write", ep, path, "%v", err)
	}
	if path.Len() < 2 {
		return s.fail("write", ep, path, "Write needs an instance, resource or resource-instance path")
	}
	code := codes.PUT
	if !replace {
		switch r, _ := n.(*objects.Resource); {
		case path.Len() == 4:
			return s.fail("write", ep, path, "a resource instance can only be replaced")
		case path.Len() == 2 || (r != nil && r.Multiple):
			code = codes.POST
		}
	}
	if _, held, err := s.holdIfSleeping(ctx, ep, Request{Op: OpWrite, Path: path, Node: n, Replace: replace}, opts); held {
		return err
	}
	c, ctx, cancel, err := s.begin(ctx, "write", ep, path, opts)
	if err != nil {
		return err
	}
	defer cancel()
	req, err := c.request(ctx, code, nil)
	if err != nil {
		return c.end(err)
	}
	if err := c.setPayload(req, n); err != nil {
		c.cc.ReleaseMessage(req)
		return c.end(err)
	}
	return c.end(c.roundTrip(ctx, req))
}

// WriteAttributes sets (and, for the attributes in attrs.Unset, clears)
// the notification attributes of path (LwM2M Core 1.0 §5.4.4, 1.1 §6.3.4).
func (s *Server) WriteAttributes(ctx context.Context, ep string, path objects.Path, attrs linkformat.Attributes) error {
	if path.IsRoot() {
		return s.fail("write-attributes", ep, path, "cannot write attributes of the root path")
	}
	if attrs.IsZero() {
		return s.fail("write-attributes", ep, path, "no attribute to write")
	}
	if attrs.Set&linkformat.Properties != 0 || attrs.Unset&linkformat.Properties != 0 {
		return s.fail("write-attributes", ep, path, "%s cannot be written", (attrs.Set|attrs.Unset)&linkformat.Properties)
	}
	if err := attrs.Validate(); err != nil {
		return s.fail("write-attributes", ep, path, "%v", err)
	}
	if _, held, err := s.holdIfSleeping(ctx, ep, Request{Op: OpWriteAttributes, Path: path, Attrs: attrs}, nil); held {
		return err
	}
	c, ctx, cancel, err := s.begin(ctx, "write-attributes", ep, path, nil)
	if err != nil {
		return err
	}
	defer cancel()
	req, err := c.request(ctx, codes.PUT, nil)
	if err != nil {
		return c.end(err)
	}
	for _, q := range attrs.Query() {
		req.AddQuery(q)
	}
	return c.end(c.roundTrip(ctx, req))
}

// Execute executes the resource at path with the given arguments, ""
// for none (LwM2M Core 1.0 §5.4.5, 1.1 §6.3.5; the argument syntax is
// checked before sending: "0='v',1").
func (s *Server) Execute(ctx context.Context, ep string, path objects.Path, args string) error {
	if path.Len() != 3 {
		return s.fail("execute", ep, path, "Execute needs a resource path")
	}
	if err := checkExecuteArgs(args); err != nil {
		return s.fail("execute", ep, path, "%v", err)
	}
	if _, held, err := s.holdIfSleeping(ctx, ep, Request{Op: OpExecute, Path: path, Args: args}, nil); held {
		return err
	}
	c, ctx, cancel, err := s.begin(ctx, "execute", ep, path, nil)
	if err != nil {
		return err
	}
	defer cancel()
	req, err := c.request(ctx, codes.POST, nil)
	if err != nil {
		return c.end(err)
	}
	if args != "" {
		req.SetContentFormat(message.TextPlain)
		req.SetBody(bytes.NewReader([]byte(args)))
	}
	return c.end(c.roundTrip(ctx, req))
}

// checkExecuteArgs checks the Execute argument list of LwM2M Core 1.0
// §5.4.5: arg *("," arg), arg = DIGIT ["=" "'" *CHAR "'"], where CHAR is
// a printable ASCII character other than the double and single quotes.
func checkExecuteArgs(args string) error {
	if args == "" {
		return nil
	}
	for _, arg := range strings.Split(args, ",") {
		if arg == "" || arg[0] < '0' || arg[0] > '9' {
			return fmt.Errorf("execute arguments %q: each argument starts with one digit", args)
		}
		rest := arg[1:]
		if rest == "" {
			continue
		}
		if len(rest) < 3 || rest[0] != '=' || rest[1] != '\'' || rest[len(rest)-1] != '\'' {
			return fmt.Errorf("execute arguments %q: a value is written ='value'", args)
		}
		for _, ch := range []byte(rest[2 : len(rest)-1]) {
			if ch < 0x21 || ch > 0x7e || ch == '"' || ch == '\'' {
				return fmt.Errorf("execute arguments %q: character %q is not allowed in a value", args, ch)
			}
		}
	}
	return nil
}

// Create creates instance inst of the object at objectPath (LwM2M Core
// 1.0 §5.4.6, 1.1 §6.3.6) and returns the new instance's path, from the
// device's Location-Path.
func (s *Server) Create(ctx context.Context, ep string, objectPath objects.Path, inst *objects.Instance, opts ...Option) (objects.Path, error) {
	if objectPath.Len() != 1 {
		return objects.Path{}, s.fail("create", ep, objectPath, "Create needs an object path")
	}
	if inst == nil {
		return objects.Path{}, s.fail("create", ep, objectPath, "no instance")
	}
	if res, held, err := s.holdIfSleeping(ctx, ep, Request{Op: OpCreate, Path: objectPath, Instance: inst}, opts); held {
		if res == nil {
			return objects.Path{}, err
		}
		return res.Created, err
	}
	c, ctx, cancel, err := s.begin(ctx, "create", ep, objectPath, opts)
	if err != nil {
		return objects.Path{}, err
	}
	defer cancel()
	req, err := c.request(ctx, codes.POST, nil)
	if err != nil {
		return objects.Path{}, c.end(err)
	}
	if err := c.setPayload(req, &objects.Object{ID: objectPath.Object(), Instances: []objects.Instance{*inst}}); err != nil {
		c.cc.ReleaseMessage(req)
		return objects.Path{}, c.end(err)
	}
	resp, err := c.exchange(ctx, req)
	if err != nil {
		return objects.Path{}, c.end(err)
	}
	defer c.cc.ReleaseMessage(resp)
	if err := c.check(resp); err != nil {
		return objects.Path{}, c.end(err)
	}
	created := objectPath.Child(inst.ID)
	if loc, err := resp.Options().LocationPath(); err == nil && loc != "" {
		if root := strings.TrimSuffix(c.reg.Root, "/"); root != "" {
			loc = strings.TrimPrefix(loc, root)
		}
		p, err := objects.ParsePath(loc)
		if err != nil || p.Len() != 2 || p.Object() != objectPath.Object() {
			return objects.Path{}, c.end(fmt.Errorf("server: create %s %s: the device answered a Location-Path that is not an instance of the object: %q", ep, objectPath, loc))
		}
		created = p
	}
	return created, c.end(nil)
}

// Delete deletes the instance (or, LwM2M 1.1+, resource instance) at path
// (LwM2M Core 1.0 §5.4.7, 1.1 §6.3.7).
func (s *Server) Delete(ctx context.Context, ep string, path objects.Path) error {
	if path.IsRoot() {
		return s.fail("delete", ep, path, "cannot delete the root path")
	}
	if _, held, err := s.holdIfSleeping(ctx, ep, Request{Op: OpDelete, Path: path}, nil); held {
		return err
	}
	c, ctx, cancel, err := s.begin(ctx, "delete", ep, path, nil)
	if err != nil {
		return err
	}
	defer cancel()
	req, err := c.request(ctx, codes.DELETE, nil)
	if err != nil {
		return c.end(err)
	}
	return c.end(c.roundTrip(ctx, req))
}
