package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/lwm2md/lwm2md/bridge/subject"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/linkformat"
	"github.com/lwm2md/lwm2md/objects/nodejson"
	"github.com/lwm2md/lwm2md/server"
)

// Ops are the command operations, the last token of
// {prefix}.cmd.{ep}.{op} and of lwm2m/{ep}/cmd/{op}.
var Ops = []string{"read", "write", "execute", "create", "delete", "discover", "observe", "cancel", "write-attributes"}

// DeviceManager is the part of *server.Server that commands call.
type DeviceManager interface {
	Registration(ctx context.Context, ep string) (*server.Registration, error)
	// Awake reports whether a queue-mode device is reachable now.
	Awake(ep string) bool
	Models(r *server.Registration) objects.Models
	Read(ctx context.Context, ep string, p objects.Path, opts ...server.Option) (objects.Node, error)
	Write(ctx context.Context, ep string, p objects.Path, n objects.Node, replace bool, opts ...server.Option) error
	Execute(ctx context.Context, ep string, p objects.Path, args string) error
	Create(ctx context.Context, ep string, p objects.Path, in *objects.Instance, opts ...server.Option) (objects.Path, error)
	Delete(ctx context.Context, ep string, p objects.Path) error
	Discover(ctx context.Context, ep string, p objects.Path) ([]linkformat.DiscoverLink, error)
	Observe(ctx context.Context, ep string, p objects.Path, opts ...server.Option) (*server.Observation, objects.Node, error)
	Observations(ep string) []*server.Observation
	CancelObservation(ctx context.Context, o *server.Observation) error
	WriteAttributes(ctx context.Context, ep string, p objects.Path, a linkformat.Attributes) error
}

// Command is the JSON body of a command request. Every field but Path is
// optional; which ones an operation reads is in docs/bridge.md.
type Command struct {
	Path string `json:"path"`
	// Node is the value to write or the instance to create, in the JSON
	// node form of objects/nodejson ({"value":...} for one resource).
	Node json.RawMessage `json:"node,omitempty"`
	// Replace makes a write a Replace (PUT) instead of a Partial Update.
	Replace bool `json:"replace,omitempty"`
	// Args are the Execute arguments, "0='v',1".
	Args string `json:"args,omitempty"`
	// Attributes are the Write-Attributes, as a query: "pmin=10&pmax=60&st".
	Attributes string `json:"attributes,omitempty"`
	// Format forces the content format ("tlv", "senml+cbor", "11542").
	Format string `json:"format,omitempty"`
	// Request names the request in the result subject; the bridge makes
	// one up when it is empty.
	Request string `json:"request,omitempty"`
	// Timeout bounds the call ("30s"); the default is the Commands'.
	Timeout string `json:"timeout,omitempty"`
}

// Reply is the JSON answer to a command, and the payload of
// {prefix}.{ep}.result.{request} for a queued one.
type Reply struct {
	Endpoint string `json:"endpoint"`
	Op       string `json:"op"`
	Path     string `json:"path,omitempty"`
	Request  string `json:"request"`
	// Status is "ok", "queued" (the device sleeps: the result follows on
	// the result subject) or "error".
	Status string `json:"status"`
	// Node is what read and observe return, in objects/nodejson form.
	Node        json.RawMessage `json:"node,omitempty"`
	Links       []string        `json:"links,omitempty"`       // discover: one CoRE link each, "</3/0/1>;pmin=10"
	Location    string          `json:"location,omitempty"`    // create: the new instance
	Observation string          `json:"observation,omitempty"` // observe: the token (hex) its data carries
	Error       *ReplyError     `json:"error,omitempty"`
}

// ReplyError says why a command failed. Code is the device's CoAP code
// ("4.04") or one of bad-request, unknown-operation, not-registered,
// invalid-request, expired (a queued request's deadline passed before the
// device woke), cancelled, timeout, not-observed, unavailable, internal.
type ReplyError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// CommandsConfig configures Commands.
type CommandsConfig struct {
	Server DeviceManager
	// Timeout bounds a call to an awake device when the command gives
	// none. Default 30 s.
	Timeout time.Duration
	// QueueTimeout bounds a call to a queue-mode device, which answers
	// when it wakes up. Default 24 h.
	QueueTimeout time.Duration
	// NewID makes request IDs. Default: a random-prefix counter.
	NewID  func() string
	Logger *slog.Logger
}

// Commands runs device-management commands for the transports.
type Commands struct {
	cfg    CommandsConfig
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewCommands returns the command runner; Close cancels the calls still
// waiting for sleeping devices.
func NewCommands(cfg CommandsConfig) (*Commands, error) {
	if cfg.Server == nil {
		return nil, errors.New("bridge: CommandsConfig.Server is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.QueueTimeout <= 0 {
		cfg.QueueTimeout = 24 * time.Hour
	}
	if cfg.NewID == nil {
		cfg.NewID = newIDSource().next
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Commands{cfg: cfg, log: log, ctx: ctx, cancel: cancel}, nil
}

// Close cancels the queued calls and waits for them.
func (c *Commands) Close() {
	c.cancel()
	c.wg.Wait()
}

// Handle runs one command for endpoint ep and returns the reply. For a
// sleeping queue-mode device it returns at once with Status "queued", runs the call
// in the background and hands its Reply to result, as a Message for
// {prefix}.{ep}.result.{request}.
func (c *Commands) Handle(ctx context.Context, ep, op string, body []byte, result func(Message)) Reply {
	var cmd Command
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &cmd); err != nil {
			cmd = Command{Request: c.cfg.NewID()}
			return failed(ep, op, cmd, "bad-request", fmt.Sprintf("bridge: command body: %v", err))
		}
	}
	if cmd.Request == "" {
		cmd.Request = c.cfg.NewID()
	}
	if !knownOp(op) {
		return failed(ep, op, cmd, "unknown-operation", fmt.Sprintf("bridge: operation %q is not one of %s", op, strings.Join(Ops, ", ")))
	}
	reg, err := c.cfg.Server.Registration(ctx, ep)
	if err != nil {
		return errorReply(ep, op, cmd, err)
	}
	call, err := c.prepare(reg, op, cmd)
	if err != nil {
		return failed(ep, op, cmd, "bad-request", err.Error())
	}
	timeout := c.cfg.Timeout
	if cmd.Timeout != "" {
		d, err := time.ParseDuration(cmd.Timeout)
		if err != nil || d <= 0 {
			return failed(ep, op, cmd, "bad-request", fmt.Sprintf("bridge: timeout: %q is not a positive duration", cmd.Timeout))
		}
		timeout = d
	}
	if reg.QueueMode && result != nil && !c.cfg.Server.Awake(ep) {
		// Queue mode (LwM2M Transport 1.1 "Queue Mode Operation"): the
		// sleeping device is reached when it next sends something; the
		// server holds the call in the device's queue until then.
		if cmd.Timeout == "" {
			timeout = c.cfg.QueueTimeout
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			cctx, cancel := context.WithTimeout(c.ctx, timeout)
			defer cancel()
			r := call(cctx)
			r.Endpoint, r.Op, r.Path, r.Request = ep, op, cmd.Path, cmd.Request
			data, err := json.Marshal(r)
			if err != nil {
				c.log.Error("bridge: result not encoded", "endpoint", ep, "err", err)
				return
			}
			result(Message{Tokens: []string{subject.Escape(ep), "result", subject.Escape(cmd.Request)},
				ID: "result-" + cmd.Request, ContentType: "application/json", Data: data})
		}()
		return Reply{Endpoint: ep, Op: op, Path: cmd.Path, Request: cmd.Request, Status: "queued"}
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := call(cctx)
	r.Endpoint, r.Op, r.Path, r.Request = ep, op, cmd.Path, cmd.Request
	return r
}

// Run carries out cmd for endpoint ep and waits for the answer, however
// long ctx allows: a request for a sleeping device waits in the server's
// queue until the device wakes. Jobs use it.
func (c *Commands) Run(ctx context.Context, ep, op string, cmd Command) Reply {
	if cmd.Request == "" {
		cmd.Request = c.cfg.NewID()
	}
	if !knownOp(op) {
		return failed(ep, op, cmd, "unknown-operation", fmt.Sprintf("bridge: operation %q is not one of %s", op, strings.Join(Ops, ", ")))
	}
	reg, err := c.cfg.Server.Registration(ctx, ep)
	if err != nil {
		return errorReply(ep, op, cmd, err)
	}
	call, err := c.prepare(reg, op, cmd)
	if err != nil {
		return failed(ep, op, cmd, "bad-request", err.Error())
	}
	r := call(ctx)
	r.Endpoint, r.Op, r.Path, r.Request = ep, op, cmd.Path, cmd.Request
	return r
}

func knownOp(op string) bool {
	for _, o := range Ops {
		if o == op {
			return true
		}
	}
	return false
}

func failed(ep, op string, cmd Command, code, msg string) Reply {
	return Reply{Endpoint: ep, Op: op, Path: cmd.Path, Request: cmd.Request, Status: "error", Error: &ReplyError{Code: code, Message: msg}}
}

// errorReply maps a server error to a reply.
func errorReply(ep, op string, cmd Command, err error) Reply {
	code := "internal"
	var ce *server.CoAPError
	switch {
	case errors.As(err, &ce):
		code = ce.Code.String()
	case errors.Is(err, server.ErrNotRegistered):
		code = "not-registered"
	case errors.Is(err, server.ErrInvalidRequest):
		code = "invalid-request"
	case errors.Is(err, server.ErrExpired):
		code = "expired"
	case errors.Is(err, server.ErrCancelled):
		code = "cancelled"
	case errors.Is(err, server.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		code = "timeout"
	case errors.Is(err, server.ErrNotObserved):
		code = "not-observed"
	case errors.Is(err, server.ErrClosed), errors.Is(err, context.Canceled):
		code = "unavailable"
	}
	return failed(ep, op, cmd, code, err.Error())
}

// prepare checks a command and returns the call that carries it out, so
// that a bad command is refused before anything is queued.
func (c *Commands) prepare(reg *server.Registration, op string, cmd Command) (func(context.Context) Reply, error) {
	s, ep := c.cfg.Server, reg.Endpoint
	p, err := objects.ParsePath(cmd.Path)
	if err != nil {
		return nil, fmt.Errorf("bridge: path: %w", err)
	}
	var opts []server.Option
	if cmd.Format != "" {
		f, err := objects.ParseFormat(cmd.Format)
		if err != nil {
			return nil, fmt.Errorf("bridge: format: %w", err)
		}
		opts = append(opts, server.WithFormat(f))
	}
	models := s.Models(reg)
	fail := func(err error) Reply { return errorReply(ep, op, cmd, err) }
	ok := Reply{Status: "ok"}
	switch op {
	case "read":
		return func(ctx context.Context) Reply {
			n, err := s.Read(ctx, ep, p, opts...)
			if err != nil {
				return fail(err)
			}
			return withNode(ok, p, n)
		}, nil
	case "observe":
		return func(ctx context.Context) Reply {
			o, n, err := s.Observe(ctx, ep, p, opts...)
			if err != nil {
				return fail(err)
			}
			r := withNode(ok, p, n)
			r.Observation = o.Token
			return r
		}, nil
	case "write":
		if len(cmd.Node) == 0 {
			return nil, errors.New("bridge: node: required for write")
		}
		n, err := nodejson.Unmarshal(cmd.Node, p, models)
		if err != nil {
			return nil, fmt.Errorf("bridge: node: %w", err)
		}
		return func(ctx context.Context) Reply {
			if err := s.Write(ctx, ep, p, n, cmd.Replace, opts...); err != nil {
				return fail(err)
			}
			return ok
		}, nil
	case "create":
		if len(cmd.Node) == 0 || !p.IsObject() {
			return nil, errors.New("bridge: create needs an object path and a node (the instance)")
		}
		in, err := createInstance(cmd.Node, p, models)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) Reply {
			loc, err := s.Create(ctx, ep, p, in, opts...)
			if err != nil {
				return fail(err)
			}
			r := ok
			r.Location = loc.String()
			return r
		}, nil
	case "execute":
		return func(ctx context.Context) Reply {
			if err := s.Execute(ctx, ep, p, cmd.Args); err != nil {
				return fail(err)
			}
			return ok
		}, nil
	case "delete":
		return func(ctx context.Context) Reply {
			if err := s.Delete(ctx, ep, p); err != nil {
				return fail(err)
			}
			return ok
		}, nil
	case "discover":
		return func(ctx context.Context) Reply {
			links, err := s.Discover(ctx, ep, p)
			if err != nil {
				return fail(err)
			}
			r := ok
			for _, l := range links {
				r.Links = append(r.Links, string(linkformat.EncodeDiscover([]linkformat.DiscoverLink{l})))
			}
			return r
		}, nil
	case "write-attributes":
		var q []string
		if cmd.Attributes != "" {
			q = strings.Split(cmd.Attributes, "&")
		}
		attrs, err := linkformat.ParseQuery(q)
		if err != nil {
			return nil, fmt.Errorf("bridge: attributes: %w", err)
		}
		return func(ctx context.Context) Reply {
			if err := s.WriteAttributes(ctx, ep, p, attrs); err != nil {
				return fail(err)
			}
			return ok
		}, nil
	case "cancel":
		return func(ctx context.Context) Reply {
			n := 0
			for _, o := range s.Observations(ep) {
				if o.Path == p {
					n++
					if err := s.CancelObservation(ctx, o); err != nil {
						return fail(err)
					}
				}
			}
			if n == 0 {
				return failed(ep, op, cmd, "not-observed", fmt.Sprintf("bridge: no observation of %s", p))
			}
			return ok
		}, nil
	}
	return nil, fmt.Errorf("bridge: operation %q unknown", op)
}

// createInstance reads the instance to create; its "path" names the new
// instance ("/3303/1"), which Create always sends (Core 1.1 §6.3.6).
func createInstance(raw json.RawMessage, objPath objects.Path, m objects.Models) (*objects.Instance, error) {
	var probe struct {
		Path string `json:"path"`
	}
	_ = json.Unmarshal(raw, &probe)
	root, err := objects.ParsePath(probe.Path)
	if err != nil || !root.IsInstance() || root.Object() != objPath.Object() {
		return nil, fmt.Errorf("bridge: node: path %q does not name an instance of %s (\"path\":\"%s/0\")", probe.Path, objPath, objPath)
	}
	n, err := nodejson.Unmarshal(raw, root, m)
	if err != nil {
		return nil, fmt.Errorf("bridge: node: %w", err)
	}
	in, ok := n.(*objects.Instance)
	if !ok {
		return nil, fmt.Errorf("bridge: node: not an instance")
	}
	return in, nil
}

func withNode(r Reply, p objects.Path, n objects.Node) Reply {
	b, err := nodejson.Marshal(p, n)
	if err != nil {
		return Reply{Status: "error", Error: &ReplyError{Code: "internal", Message: err.Error()}}
	}
	r.Node = b
	return r
}
