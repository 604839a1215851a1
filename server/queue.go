package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/content"
	"github.com/lwm2md/lwm2md/objects/linkformat"
	"github.com/lwm2md/lwm2md/registry"
)

// Queue mode (LwM2M 1.0 §5.3.1 and Transport 1.1 "Queue Mode Operation"):
// a device that registered with Q is reachable only for a while after it
// sent something (Register, Update, Notify, Send, or an answer). The
// server keeps it "awake" for Config.AwakeWindow after its last message;
// then it is "sleeping", and device management requests for it wait in
// its queue (Config.Queue) until it next wakes, when they are sent one at
// a time, in order.

// The operations a Request names; they are also the Op of EventRequest.
const (
	OpRead            = "read"
	OpDiscover        = "discover"
	OpWrite           = "write"
	OpWriteAttributes = "write-attributes"
	OpExecute         = "execute"
	OpCreate          = "create"
	OpDelete          = "delete"
	OpObserve         = "observe"
	OpReadComposite   = "read-composite"
	OpWriteComposite  = "write-composite"
	// OpObserveComposite is Observe-Composite (LwM2M Core 1.1 §5.5.1).
	OpObserveComposite = "observe-composite"
)

// The errors of queue mode.
var (
	// ErrSleeping: the device is in queue mode and sleeping. A blocking
	// call given NoQueue returns it at once; one whose context ended while
	// its request waited in the queue returns it with ErrTimeout.
	ErrSleeping = errors.New("device is sleeping (queue mode)")
	// ErrExpired: a queued request's deadline passed before the device
	// woke. Errors wrapping it also match ErrTimeout.
	ErrExpired = errors.New("queued request expired")
	// ErrCancelled: the queued request was withdrawn (CancelQueued, or
	// its blocking caller gave up).
	ErrCancelled = errors.New("queued request cancelled")
	// ErrNoRequest: no such queued request for the endpoint.
	ErrNoRequest = errors.New("no such queued request")
)

// The defaults of the queue mode settings.
const (
	// DefaultAwakeWindow is CoAP's MAX_TRANSMIT_WAIT (RFC 7252 §4.8.2),
	// the longest a device may need to take an exchange to its end.
	DefaultAwakeWindow  = 93 * time.Second
	DefaultQueueTimeout = 24 * time.Hour
)

// queueTick is how often deadlines are checked; queuePurgeEvery how often
// finished requests older than QueueTimeout are removed.
const (
	queueTick       = time.Second
	queuePurgeEvery = time.Hour
	leaseSlack      = 2 * time.Second
)

// queueDefaults checks and fills in the queue mode settings of Config.
func (c *Config) queueDefaults() error {
	if c.AwakeWindow < 0 || c.QueueTimeout < 0 {
		return fmt.Errorf("server: Config: negative AwakeWindow or QueueTimeout")
	}
	if c.AwakeWindow == 0 {
		c.AwakeWindow = DefaultAwakeWindow
	}
	if c.QueueTimeout == 0 {
		c.QueueTimeout = DefaultQueueTimeout
	}
	if c.Queue == nil {
		c.Queue = NewMemoryQueue()
	}
	return nil
}

// Request is a device management request for Enqueue. Which fields are
// used depends on Op.
type Request struct {
	Op   string       // OpRead, OpWrite, ...
	Path objects.Path // the target; the object for OpCreate; unused by the composite ones

	Node     objects.Node          // OpWrite: the node at Path
	Replace  bool                  // OpWrite: replace (PUT) rather than partial update (POST)
	Instance *objects.Instance     // OpCreate: the new instance
	Args     string                // OpExecute: the arguments, "" for none
	Attrs    linkformat.Attributes // OpWriteAttributes
	Paths    []objects.Path        // OpReadComposite, OpObserveComposite
	Records  []objects.Record      // OpWriteComposite

	// Format, when ForceFormat is set, is the content format of the call
	// (WithFormat); otherwise the one the registration prefers when the
	// request is sent.
	Format      objects.Format
	ForceFormat bool
	// Deadline is when the request is given up if the device has not
	// woken; zero: Config.QueueTimeout after Enqueue.
	Deadline time.Time
}

// RequestResult is how a queued request ended, in EventRequestResult and
// for a blocking call that waited for its device to wake.
type RequestResult struct {
	ID       string
	Endpoint string
	Op       string
	Path     objects.Path
	// Status is Done (the device answered success), Failed (an error,
	// Err), Expired (ErrExpired) or Cancelled (ErrCancelled).
	Status registry.RequestStatus

	Node        objects.Node                  // read, observe
	Nodes       map[objects.Path]objects.Node // read-composite, observe-composite
	Links       []linkformat.DiscoverLink     // discover
	Created     objects.Path                  // create
	Observation *Observation                  // observe, observe-composite
	Err         error
}

func (r *RequestResult) node() objects.Node {
	if r == nil {
		return nil
	}
	return r.Node
}

// QueuedRequest is one open request of a device's queue, as Server.Queue
// lists it.
type QueuedRequest struct {
	ID        string
	Endpoint  string
	Op        string
	Path      objects.Path
	Status    registry.RequestStatus // Pending, or Sent while it is on its way
	Deadline  time.Time
	CreatedAt time.Time
	Attempts  int // how many times it was sent
}

// queuedBody is the Payload of a registry.Request: what the request needs
// besides its Op and Path. Nodes and records are kept in SenML JSON,
// whatever the format they are sent in, so that a queue is readable and
// independent of the registration's format at the time.
type queuedBody struct {
	Forced  bool     `json:"forced,omitempty"`
	Format  uint16   `json:"format,omitempty"`
	Replace bool     `json:"replace,omitempty"`
	Args    string   `json:"args,omitempty"`
	Attrs   []string `json:"attrs,omitempty"`
	Paths   []string `json:"paths,omitempty"`
	Data    []byte   `json:"data,omitempty"`
}

// storedFormat is the format nodes and records are kept in.
const storedFormat = objects.FormatSenMLJSON

// deliveryKey marks the context of a call made by the queue itself,
// which must go out even though the device is in queue mode.
type deliveryKey struct{}

// NoQueue makes a blocking call fail at once with ErrSleeping when the
// device is sleeping, instead of queuing the request and waiting.
func NoQueue() Option { return func(o *callOptions) { o.noQueue = true } }

// queueState is the server's queue mode state.
type queueState struct {
	store registry.Queue
	owner string // this server, as the holder of claimed requests
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup

	// epLocks serialize an Enqueue with the delivery of its endpoint's
	// results, so that a blocking caller's waiter is in place before its
	// result can arrive.
	epLocks [64]sync.Mutex

	// mu guards eps and waiters. It may be held while taking Server.mu
	// for reading, never the other way round.
	mu      sync.Mutex
	eps     map[string]*epState
	waiters map[uint64]chan *RequestResult
}

// epState is the queue mode state of one endpoint.
type epState struct {
	awake      bool
	until      time.Time // awake until then
	timer      *time.Timer
	delivering bool // a delivery goroutine runs
	again      bool // something was queued while it ran
	queueMode  bool
}

func newQueueState(store registry.Queue) *queueState {
	ctx, cancel := context.WithCancel(context.Background())
	owner, _ := newRegistrationID()
	return &queueState{store: store, owner: "lwm2md-" + owner, ctx: ctx, stop: cancel,
		eps: make(map[string]*epState), waiters: make(map[uint64]chan *RequestResult)}
}

func (q *queueState) epLock(ep string) *sync.Mutex {
	h := uint32(2166136261)
	for i := 0; i < len(ep); i++ {
		h = (h ^ uint32(ep[i])) * 16777619
	}
	return &q.epLocks[h%uint32(len(q.epLocks))]
}

// close stops the timers and waits for the deliveries in progress.
func (q *queueState) close() {
	q.mu.Lock()
	q.stop() // under mu: no kick starts a delivery after this
	for _, st := range q.eps {
		if st.timer != nil {
			st.timer.Stop()
		}
	}
	q.mu.Unlock()
	q.wg.Wait()
}

// Awake reports whether a queue-mode device is awake: it sent something
// less than Config.AwakeWindow ago. A device not in queue mode is always
// awake; an unknown endpoint is not.
func (s *Server) Awake(endpoint string) bool {
	sess, err := s.session(endpoint)
	if err != nil {
		return false
	}
	s.mu.RLock()
	qm := sess.reg.QueueMode
	s.mu.RUnlock()
	if !qm {
		return true
	}
	s.q.mu.Lock()
	defer s.q.mu.Unlock()
	st := s.q.eps[endpoint]
	return st != nil && st.awake
}

// wake records a message from a queue-mode device: it is awake for
// AwakeWindow from now. A device that was sleeping gets EventAwake and
// its queue is delivered.
func (s *Server) wake(reg *Registration) {
	if s.closed.Load() {
		return
	}
	q := s.q
	now := time.Now()
	q.mu.Lock()
	st := q.eps[reg.Endpoint]
	if st == nil {
		st = &epState{}
		q.eps[reg.Endpoint] = st
	}
	st.queueMode = true
	was := st.awake
	st.awake, st.until = true, now.Add(s.cfg.AwakeWindow)
	if st.timer == nil {
		ep := reg.Endpoint
		st.timer = time.AfterFunc(s.cfg.AwakeWindow, func() { s.awakeTimer(ep) })
	} else if !was {
		st.timer.Reset(s.cfg.AwakeWindow)
	}
	if !was {
		s.kickLocked(reg.Endpoint, st)
		// Published under q.mu, so that awake and sleeping events of a
		// device keep their order (publish never blocks).
		s.log.Debug("device awake", "ep", reg.Endpoint)
		s.events.publish(Event{Kind: EventAwake, Endpoint: reg.Endpoint, RegistrationID: reg.ID, Registration: reg, Time: now})
	}
	q.mu.Unlock()
}

// awakeTimer fires at the end of the awake window, or earlier when the
// window was extended since it was armed (it then re-arms).
func (s *Server) awakeTimer(ep string) {
	q := s.q
	q.mu.Lock()
	st := q.eps[ep]
	if st == nil || !st.awake || s.closed.Load() {
		q.mu.Unlock()
		return
	}
	if d := time.Until(st.until); d > 0 {
		st.timer.Reset(d)
		q.mu.Unlock()
		return
	}
	st.awake = false
	s.sleepingLocked(ep)
	q.mu.Unlock()
}

// sleepingLocked publishes EventSleeping for ep; q.mu is held.
func (s *Server) sleepingLocked(ep string) {
	var reg *Registration
	s.mu.RLock()
	if sess := s.byEP[ep]; sess != nil {
		reg = sess.reg
	}
	s.mu.RUnlock()
	if reg == nil {
		return
	}
	s.log.Debug("device sleeping", "ep", ep)
	s.events.publish(Event{Kind: EventSleeping, Endpoint: ep, RegistrationID: reg.ID, Registration: reg})
}

// queueRegistered follows a Register or an Update: a queue-mode device is
// awake (the Update is its way of saying so); for any device, what waits
// in its queue is delivered.
func (s *Server) queueRegistered(reg *Registration) {
	if reg.QueueMode {
		s.wake(reg)
		s.kick(reg.Endpoint)
		return
	}
	q := s.q
	q.mu.Lock()
	if st := q.eps[reg.Endpoint]; st != nil {
		st.queueMode, st.awake = false, false
		if st.timer != nil {
			st.timer.Stop()
			st.timer = nil
		}
	}
	q.mu.Unlock()
	s.kick(reg.Endpoint)
}

// queueForget drops the queue mode state of an endpoint whose
// registration ended; its queued requests stay until their deadline, and
// go out when it registers again.
func (s *Server) queueForget(ep string) {
	q := s.q
	q.mu.Lock()
	defer q.mu.Unlock()
	st := q.eps[ep]
	if st == nil {
		return
	}
	if st.timer != nil {
		st.timer.Stop()
	}
	if st.delivering {
		st.awake, st.queueMode, st.timer = false, false, nil
		return
	}
	delete(q.eps, ep)
}

// kick starts delivering ep's queue if the device can be reached.
func (s *Server) kick(ep string) {
	s.q.mu.Lock()
	defer s.q.mu.Unlock()
	st := s.q.eps[ep]
	if st == nil {
		st = &epState{}
		s.q.eps[ep] = st
	}
	s.kickLocked(ep, st)
}

func (s *Server) kickLocked(ep string, st *epState) {
	if st.delivering {
		st.again = true
		return
	}
	if s.closed.Load() || s.q.ctx.Err() != nil {
		return
	}
	st.delivering, st.again = true, false
	s.q.wg.Add(1)
	go s.deliver(ep)
}

// reachable reports whether requests can go to ep now: it is registered,
// and awake when in queue mode.
func (s *Server) reachable(ep string) (*Registration, bool) {
	s.mu.RLock()
	sess := s.byEP[ep]
	var reg *Registration
	if sess != nil {
		reg = sess.reg
	}
	s.mu.RUnlock()
	if reg == nil {
		return nil, false
	}
	if !reg.QueueMode {
		return reg, true
	}
	s.q.mu.Lock()
	st := s.q.eps[ep]
	awake := st != nil && st.awake
	s.q.mu.Unlock()
	return reg, awake
}

// endDelivery ends ep's delivery goroutine unless something was queued
// meanwhile (false: go on).
func (s *Server) endDelivery(ep string, force bool) bool {
	q := s.q
	q.mu.Lock()
	defer q.mu.Unlock()
	st := q.eps[ep]
	if st == nil {
		return true
	}
	if st.again && !force && q.ctx.Err() == nil {
		st.again = false
		return false
	}
	st.delivering, st.again = false, false
	if !st.queueMode {
		delete(q.eps, ep) // nothing to remember for a device not in queue mode
	}
	return true
}

// deliver sends ep's queued requests one at a time, in order, while the
// device can be reached. As Transport 1.1 "Queue Mode Operation" says, a
// request the device does not answer stays in the queue, and the server
// stops emptying it until the device is online again.
func (s *Server) deliver(ep string) {
	defer s.q.wg.Done()
	for {
		reg, ok := s.reachable(ep)
		if !ok || s.q.ctx.Err() != nil {
			if s.endDelivery(ep, true) {
				return
			}
			continue
		}
		now := time.Now()
		head, err := s.q.store.Peek(s.q.ctx, ep, now)
		if err == nil {
			timeout := s.cfg.RequestTimeout
			if !head.Deadline.IsZero() && head.Deadline.Sub(now) < timeout {
				timeout = head.Deadline.Sub(now)
			}
			var claimed *registry.Request
			claimed, err = s.q.store.Claim(s.q.ctx, ep, s.q.owner, now, now.Add(timeout+leaseSlack))
			if err == nil {
				if !s.deliverOne(reg, claimed, timeout) {
					s.endDelivery(ep, true)
					return
				}
				continue
			}
			if head.Status == registry.StatusSent && head.LeaseUntil.After(now) {
				// Held by an earlier attempt (of this server before a
				// timeout or a restart, or of another node): look again
				// when the lease runs out.
				time.AfterFunc(head.LeaseUntil.Sub(now)+10*time.Millisecond, func() { s.kick(ep) })
			}
		}
		if !errors.Is(err, registry.ErrNotFound) && s.q.ctx.Err() == nil {
			s.log.Error("queue: cannot read the queue", "ep", ep, "err", err)
			s.endDelivery(ep, true)
			return
		}
		if s.endDelivery(ep, false) {
			return
		}
	}
}

// deliverOne sends one claimed request and records its result; false
// stops the delivery (the device did not answer, or the server stops).
func (s *Server) deliverOne(reg *Registration, r *registry.Request, timeout time.Duration) bool {
	req, err := s.decodeRequest(reg, r)
	var res *RequestResult
	if err != nil {
		res = &RequestResult{Err: err}
	} else {
		ctx, cancel := context.WithTimeout(context.WithValue(s.q.ctx, deliveryKey{}, true), timeout)
		res = s.execute(ctx, reg.Endpoint, req)
		cancel()
	}
	res.ID, res.Endpoint, res.Op, res.Path = strconv.FormatUint(r.ID, 10), r.Endpoint, r.Operation, r.Path
	// A device that went away keeps its request: it de-registered
	// meanwhile (the request waits for its next registration), or, in
	// queue mode, went back to sleep before answering.
	retry := errors.Is(res.Err, ErrNotRegistered) || (reg.QueueMode && errors.Is(res.Err, ErrTimeout))
	if errors.Is(res.Err, ErrClosed) || s.q.ctx.Err() != nil {
		return false // the server stops: the lease runs out and the request goes out again
	}
	if retry {
		// The request stays, and goes out again at the device's next
		// wake once the lease runs out.
		s.log.Info("queue: device did not answer, request kept", "ep", reg.Endpoint, "id", res.ID, "op", res.Op)
		s.q.mu.Lock()
		if st := s.q.eps[reg.Endpoint]; st != nil && st.awake {
			st.awake = false
			s.sleepingLocked(reg.Endpoint)
		}
		s.q.mu.Unlock()
		return false
	}
	res.Status = registry.StatusDone
	if res.Err != nil {
		res.Status = registry.StatusFailed
	}
	if err := s.q.store.Complete(s.q.ctx, r.ID, s.q.owner, s.storedResult(reg, res)); err != nil {
		// Cancelled or expired while it was on its way: that result was
		// published already.
		s.log.Debug("queue: result not recorded", "ep", reg.Endpoint, "id", res.ID, "err", err)
		return true
	}
	s.finish(r.ID, res) // the call's answer extended the awake window (call.answered)
	return true
}

// answered extends a queue-mode device's awake window when it answered
// the call (success or an error code): an answer is a message from it.
func (c *call) answered(err error) {
	var ce *CoAPError
	if c.reg != nil && c.reg.QueueMode && (err == nil || errors.As(err, &ce)) {
		c.s.wake(c.reg)
	}
}

// finish publishes a request's result and hands it to its blocking
// caller, if one waits.
func (s *Server) finish(id uint64, res *RequestResult) {
	l := s.q.epLock(res.Endpoint)
	l.Lock()
	s.q.mu.Lock()
	ch := s.q.waiters[id]
	delete(s.q.waiters, id)
	s.q.mu.Unlock()
	l.Unlock()
	if ch != nil {
		ch <- res
	}
	s.events.publish(Event{Kind: EventRequestResult, Endpoint: res.Endpoint, RequestID: res.ID, Op: res.Op,
		Path: res.Path, Node: res.Node, Err: res.Err, Result: res})
}

// storedResult is what the registry keeps of a result: the code, the
// error text and, for a read, the value in SenML JSON.
func (s *Server) storedResult(reg *Registration, res *RequestResult) registry.Result {
	out := registry.Result{Status: res.Status}
	var ce *CoAPError
	switch {
	case errors.As(res.Err, &ce):
		out.Code = uint8(ce.Code)
	case res.Err == nil:
		out.Code = successCode(res.Op)
	}
	if res.Err != nil {
		out.Error = printableText(res.Err.Error())
	}
	if res.Node != nil {
		if codec, ok := content.Codec(storedFormat); ok {
			if b, err := codec.Encode(res.Path, res.Node, s.Models(reg)); err == nil {
				out.Format, out.Payload = storedFormat, b
			}
		}
	}
	return out
}

// successCode is the code a device answers an operation with (LwM2M Core
// 1.1 §6.3: 2.05 Content, 2.04 Changed, 2.01 Created, 2.02 Deleted).
func successCode(op string) uint8 {
	switch op {
	case OpRead, OpDiscover, OpObserve, OpReadComposite:
		return 0x45
	case OpCreate:
		return 0x41
	case OpDelete:
		return 0x42
	}
	return 0x44
}

// printableText keeps an error text storable (no NUL or other control
// bytes, which the registry refuses).
func printableText(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 && c != '\t' {
			b[i] = ' '
		}
	}
	return string(b)
}

// execute runs a request through the blocking calls, under a context
// that lets it go out to a queue-mode device.
func (s *Server) execute(ctx context.Context, ep string, r Request) *RequestResult {
	var opts []Option
	if r.ForceFormat {
		opts = append(opts, WithFormat(r.Format))
	}
	res := &RequestResult{}
	switch r.Op {
	case OpRead:
		res.Node, res.Err = s.Read(ctx, ep, r.Path, opts...)
	case OpDiscover:
		res.Links, res.Err = s.Discover(ctx, ep, r.Path)
	case OpWrite:
		res.Err = s.Write(ctx, ep, r.Path, r.Node, r.Replace, opts...)
	case OpWriteAttributes:
		res.Err = s.WriteAttributes(ctx, ep, r.Path, r.Attrs)
	case OpExecute:
		res.Err = s.Execute(ctx, ep, r.Path, r.Args)
	case OpCreate:
		res.Created, res.Err = s.Create(ctx, ep, r.Path, r.Instance, opts...)
	case OpDelete:
		res.Err = s.Delete(ctx, ep, r.Path)
	case OpObserve:
		res.Observation, res.Node, res.Err = s.Observe(ctx, ep, r.Path, opts...)
	case OpReadComposite:
		res.Nodes, res.Err = s.ReadComposite(ctx, ep, r.Paths, opts...)
	case OpWriteComposite:
		res.Err = s.WriteComposite(ctx, ep, r.Records, opts...)
	case OpObserveComposite:
		res.Observation, res.Nodes, res.Err = s.ObserveComposite(ctx, ep, r.Paths, opts...)
	default:
		res.Err = fmt.Errorf("server: %s %s: unknown operation %q: %w", r.Op, ep, r.Op, ErrInvalidRequest)
	}
	return res
}

// checkRequest refuses a request the device could never carry out, with
// the checks the blocking calls make before sending.
func checkRequest(r Request, reg *Registration) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("server: %s %s %s: %s: %w", r.Op, reg.Endpoint, r.Path, fmt.Sprintf(format, args...), ErrInvalidRequest)
	}
	switch r.Op {
	case OpRead, OpDelete, OpObserve:
		if r.Path.IsRoot() {
			return bad("needs a path below the root")
		}
	case OpDiscover:
		if r.Path.IsRoot() || r.Path.Len() > 3 {
			return bad("Discover needs an object, instance or resource path")
		}
	case OpWrite:
		if err := objects.CheckNode(r.Path, r.Node); err != nil {
			return bad("%v", err)
		}
		if r.Path.Len() < 2 {
			return bad("Write needs an instance, resource or resource-instance path")
		}
		if !r.Replace && r.Path.Len() == 4 {
			return bad("a resource instance can only be replaced")
		}
	case OpWriteAttributes:
		if r.Path.IsRoot() || r.Attrs.IsZero() {
			return bad("needs a path below the root and an attribute")
		}
		if (r.Attrs.Set|r.Attrs.Unset)&linkformat.Properties != 0 {
			return bad("%s cannot be written", (r.Attrs.Set|r.Attrs.Unset)&linkformat.Properties)
		}
		if err := r.Attrs.Validate(); err != nil {
			return bad("%v", err)
		}
	case OpExecute:
		if r.Path.Len() != 3 {
			return bad("Execute needs a resource path")
		}
		if err := checkExecuteArgs(r.Args); err != nil {
			return bad("%v", err)
		}
	case OpCreate:
		if r.Path.Len() != 1 || r.Instance == nil {
			return bad("Create needs an object path and an instance")
		}
	case OpReadComposite, OpWriteComposite, OpObserveComposite:
		if reg.is10() {
			return bad("composite operations need LwM2M 1.1 or later")
		}
		if r.Op != OpWriteComposite && len(r.Paths) == 0 {
			return bad("no path to read")
		}
		for _, p := range r.Paths {
			if p.IsRoot() {
				return bad("cannot read the root path")
			}
		}
		if r.Op == OpWriteComposite && len(r.Records) == 0 {
			return bad("no value to write")
		}
		for _, rec := range r.Records {
			if rec.Path.Len() < 3 || rec.Value.IsNone() {
				return bad("Write-Composite needs a value at a resource or resource-instance path")
			}
		}
	default:
		return bad("unknown operation")
	}
	return nil
}

// encodeRequest turns r into the registry's form.
func (s *Server) encodeRequest(reg *Registration, r Request, deadline time.Time) (*registry.Request, error) {
	m := s.Models(reg)
	b := queuedBody{Forced: r.ForceFormat, Replace: r.Replace, Args: r.Args}
	if r.ForceFormat {
		b.Format = uint16(r.Format)
	}
	if !r.Attrs.IsZero() {
		b.Attrs = r.Attrs.Query()
	}
	for _, p := range r.Paths {
		b.Paths = append(b.Paths, p.String())
	}
	codec, _ := content.Codec(storedFormat)
	rc, _ := content.RecordCodec(storedFormat)
	var err error
	switch r.Op {
	case OpWrite:
		b.Data, err = codec.Encode(r.Path, r.Node, m)
	case OpCreate:
		b.Data, err = codec.Encode(r.Path, &objects.Object{ID: r.Path.Object(), Instances: []objects.Instance{*r.Instance}}, m)
	case OpWriteComposite:
		b.Data, err = rc.EncodeRecords(r.Records, m)
	}
	if err != nil {
		return nil, fmt.Errorf("server: %s %s %s: %w: %w", r.Op, reg.Endpoint, r.Path, ErrInvalidRequest, err)
	}
	payload, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	return &registry.Request{Endpoint: reg.Endpoint, Operation: r.Op, Path: r.Path, Format: r.Format,
		Payload: payload, Deadline: deadline}, nil
}

// decodeRequest is the inverse of encodeRequest, with the models of the
// registration in force when the request goes out.
func (s *Server) decodeRequest(reg *Registration, q *registry.Request) (Request, error) {
	fail := func(err error) (Request, error) {
		return Request{}, fmt.Errorf("server: %s %s %s: queued request %d: %w", q.Operation, q.Endpoint, q.Path, q.ID, err)
	}
	var b queuedBody
	if err := json.Unmarshal(q.Payload, &b); err != nil {
		return fail(fmt.Errorf("stored request: %v: %w", err, ErrInvalidRequest))
	}
	r := Request{Op: q.Operation, Path: q.Path, Replace: b.Replace, Args: b.Args, ForceFormat: b.Forced,
		Format: objects.Format(b.Format), Deadline: q.Deadline}
	if len(b.Attrs) > 0 {
		a, err := linkformat.ParseQuery(b.Attrs)
		if err != nil {
			return fail(err)
		}
		r.Attrs = a
	}
	for _, p := range b.Paths {
		pp, err := objects.ParsePath(p)
		if err != nil {
			return fail(err)
		}
		r.Paths = append(r.Paths, pp)
	}
	m := s.Models(reg)
	codec, _ := content.Codec(storedFormat)
	rc, _ := content.RecordCodec(storedFormat)
	var err error
	switch r.Op {
	case OpWrite:
		r.Node, err = codec.Decode(r.Path, b.Data, m)
	case OpCreate:
		var n objects.Node
		if n, err = codec.Decode(r.Path, b.Data, m); err == nil {
			if o, ok := n.(*objects.Object); ok && len(o.Instances) == 1 {
				r.Instance = &o.Instances[0]
			} else {
				err = fmt.Errorf("stored instance does not decode to one instance: %w", ErrInvalidRequest)
			}
		}
	case OpWriteComposite:
		r.Records, err = rc.DecodeRecords(b.Data, m)
	}
	if err != nil {
		return fail(err)
	}
	return r, nil
}

// Enqueue puts a request in the endpoint's queue and returns its ID at
// once; the result comes later as an EventRequestResult with that ID (in
// RequestID). The request goes out when the device can be reached: at
// once for a device that is awake or not in queue mode, else when it next
// wakes, after the requests queued before it. It expires at r.Deadline
// (Config.QueueTimeout from now when zero) with ErrExpired. ctx bounds the
// call only. A request that is wrong in itself (ErrInvalidRequest) or for
// an unknown endpoint (ErrNotRegistered) is refused, and nothing is queued.
func (s *Server) Enqueue(ctx context.Context, endpoint string, r Request) (string, error) {
	id, err := s.enqueue(ctx, endpoint, r, nil)
	if err != nil {
		return "", err
	}
	return strconv.FormatUint(id, 10), nil
}

// enqueue stores r and, with waiter set, registers it for the result
// before the result can arrive.
func (s *Server) enqueue(ctx context.Context, endpoint string, r Request, waiter chan *RequestResult) (uint64, error) {
	sess, err := s.session(endpoint)
	if err != nil {
		return 0, err
	}
	s.mu.RLock()
	reg := sess.reg
	s.mu.RUnlock()
	if err := checkRequest(r, reg); err != nil {
		return 0, err
	}
	deadline := r.Deadline
	if deadline.IsZero() {
		deadline = time.Now().Add(s.cfg.QueueTimeout)
	}
	stored, err := s.encodeRequest(reg, r, deadline)
	if err != nil {
		return 0, err
	}
	l := s.q.epLock(endpoint)
	l.Lock()
	id, err := s.q.store.Enqueue(ctx, stored)
	if err != nil {
		l.Unlock()
		return 0, fmt.Errorf("server: queue %s %s %s: %w", r.Op, endpoint, r.Path, err)
	}
	if waiter != nil {
		s.q.mu.Lock()
		s.q.waiters[id] = waiter
		s.q.mu.Unlock()
	}
	l.Unlock()
	ids := strconv.FormatUint(id, 10)
	s.events.publish(Event{Kind: EventQueued, Endpoint: endpoint, RegistrationID: reg.ID, RequestID: ids, Op: r.Op, Path: r.Path})
	if _, ok := s.reachable(endpoint); ok {
		s.kick(endpoint)
	}
	return id, nil
}

// holdIfSleeping is the queue mode step of the blocking calls: for a
// sleeping queue-mode device the request is queued and the call waits for
// its result (held is true). It waits until ctx ends (RequestTimeout when
// ctx has no deadline), then withdraws the request and returns an error
// matching ErrSleeping and ErrTimeout. With NoQueue it returns ErrSleeping
// at once.
func (s *Server) holdIfSleeping(ctx context.Context, ep string, r Request, opts []Option) (*RequestResult, bool, error) {
	if ctx.Value(deliveryKey{}) != nil {
		return nil, false, nil
	}
	if reg, ok := s.reachable(ep); ok || reg == nil {
		return nil, false, nil
	}
	var co callOptions
	for _, o := range opts {
		o(&co)
	}
	fail := func(err error) (*RequestResult, bool, error) {
		c := &call{s: s, op: r.Op, ep: ep, path: r.Path, start: time.Now()}
		return nil, true, c.end(err)
	}
	if co.noQueue {
		return fail(fmt.Errorf("server: %s %s %s: %w", r.Op, ep, r.Path, ErrSleeping))
	}
	r.Format, r.ForceFormat = co.format, co.forced
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.RequestTimeout)
		defer cancel()
	}
	r.Deadline, _ = ctx.Deadline()
	ch := make(chan *RequestResult, 1)
	id, err := s.enqueue(ctx, ep, r, ch)
	if err != nil {
		return fail(err)
	}
	select {
	case res := <-ch:
		return res, true, res.Err
	case <-ctx.Done():
	case <-s.q.ctx.Done():
	}
	if err := s.cancelQueued(context.Background(), id, ctx.Err()); err != nil {
		select {
		case res := <-ch: // it finished meanwhile
			return res, true, res.Err
		default:
		}
	}
	s.q.mu.Lock()
	delete(s.q.waiters, id)
	s.q.mu.Unlock()
	if s.q.ctx.Err() != nil {
		return nil, true, fmt.Errorf("server: %s %s %s: %w", r.Op, ep, r.Path, ErrClosed)
	}
	err = fmt.Errorf("server: %s %s %s: the device slept until the deadline: %w, %w (%w)", r.Op, ep, r.Path, ErrSleeping, ErrTimeout, ctx.Err())
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("server: %s %s %s: %w while the device slept: %w", r.Op, ep, r.Path, ctx.Err(), ErrSleeping)
	}
	return nil, true, err
}

// Queue lists the open requests of an endpoint's queue (Pending, and Sent
// while on their way), in order.
func (s *Server) Queue(ctx context.Context, endpoint string) ([]QueuedRequest, error) {
	rs, err := s.q.store.List(ctx, endpoint, registry.StatusPending, registry.StatusSent)
	if err != nil {
		return nil, fmt.Errorf("server: queue of %s: %w", endpoint, err)
	}
	out := make([]QueuedRequest, len(rs))
	for i, r := range rs {
		out[i] = QueuedRequest{ID: strconv.FormatUint(r.ID, 10), Endpoint: r.Endpoint, Op: r.Operation, Path: r.Path,
			Status: r.Status, Deadline: r.Deadline, CreatedAt: r.CreatedAt, Attempts: r.Attempts}
	}
	return out, nil
}

// CancelQueued withdraws a request of an endpoint's queue. Its result,
// with ErrCancelled, is published as EventRequestResult. A request that
// already finished, or that the endpoint does not have, is an error
// wrapping ErrNoRequest. A request on its way may still reach the device.
func (s *Server) CancelQueued(ctx context.Context, endpoint, id string) error {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return fmt.Errorf("server: cancel queued request %q of %s: %w", id, endpoint, ErrNoRequest)
	}
	r, err := s.q.store.Get(ctx, n)
	if errors.Is(err, registry.ErrNotFound) || (err == nil && r.Endpoint != endpoint) {
		return fmt.Errorf("server: cancel queued request %s of %s: %w", id, endpoint, ErrNoRequest)
	}
	if err != nil {
		return fmt.Errorf("server: cancel queued request %s of %s: %w", id, endpoint, err)
	}
	return s.cancelQueued(ctx, n, nil)
}

// cancelQueued marks request id Cancelled and publishes its result.
func (s *Server) cancelQueued(ctx context.Context, id uint64, cause error) error {
	r, err := s.q.store.Get(ctx, id)
	if err != nil {
		return err
	}
	if err := s.q.store.Complete(ctx, id, "", registry.Result{Status: registry.StatusCancelled, Error: "cancelled"}); err != nil {
		if errors.Is(err, registry.ErrConflict) {
			return fmt.Errorf("server: cancel queued request %d: %w: %w", id, ErrNoRequest, err)
		}
		return err
	}
	e := fmt.Errorf("server: %s %s %s: queued request %d: %w", r.Operation, r.Endpoint, r.Path, id, ErrCancelled)
	if cause != nil {
		e = fmt.Errorf("%w (%w)", e, cause)
	}
	s.finish(id, &RequestResult{ID: strconv.FormatUint(id, 10), Endpoint: r.Endpoint, Op: r.Operation, Path: r.Path,
		Status: registry.StatusCancelled, Err: e})
	return nil
}

// queueLoop expires requests whose deadline passed and purges old
// finished ones, until Close.
func (s *Server) queueLoop() {
	defer s.q.wg.Done()
	t := time.NewTicker(queueTick)
	defer t.Stop()
	lastPurge := time.Now()
	for {
		select {
		case <-s.q.ctx.Done():
			return
		case now := <-t.C:
			s.expireQueued(now)
			if now.Sub(lastPurge) >= queuePurgeEvery {
				lastPurge = now
				if _, err := s.q.store.Purge(s.q.ctx, now.Add(-s.cfg.QueueTimeout)); err != nil && s.q.ctx.Err() == nil {
					s.log.Error("queue: purge", "err", err)
				}
			}
		}
	}
}

// expireQueued publishes an ErrExpired result for each request whose
// deadline passed.
func (s *Server) expireQueued(now time.Time) {
	rs, err := s.q.store.Expire(s.q.ctx, now)
	if err != nil {
		if s.q.ctx.Err() == nil {
			s.log.Error("queue: expire", "err", err)
		}
		return
	}
	for _, r := range rs {
		s.log.Info("queued request expired", "ep", r.Endpoint, "id", r.ID, "op", r.Operation, "path", r.Path.String())
		s.finish(r.ID, &RequestResult{ID: strconv.FormatUint(r.ID, 10), Endpoint: r.Endpoint, Op: r.Operation, Path: r.Path,
			Status: registry.StatusExpired,
			Err:    fmt.Errorf("server: %s %s %s: queued request %d: %w before the device woke: %w", r.Operation, r.Endpoint, r.Path, r.ID, ErrExpired, ErrTimeout)})
	}
}

// startQueue starts the expiry of queued requests, at Start, and the
// delivery of what waits for the restored devices that are not in queue
// mode (those in queue mode wait for their next message).
func (s *Server) startQueue() {
	s.q.wg.Add(2)
	go s.queueLoop()
	go s.resumeQueues()
}

// resumeQueues looks, one registration after another, for restored
// devices without queue mode that have requests waiting, and delivers
// them.
func (s *Server) resumeQueues() {
	defer s.q.wg.Done()
	s.mu.RLock()
	var eps []string
	for ep, sess := range s.byEP {
		if !sess.reg.QueueMode {
			eps = append(eps, ep)
		}
	}
	s.mu.RUnlock()
	for _, ep := range eps {
		if s.q.ctx.Err() != nil {
			return
		}
		if _, err := s.q.store.Peek(s.q.ctx, ep, time.Now()); err == nil {
			s.kick(ep)
		}
	}
}
