package client

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/linkformat"
)

// Client is an LwM2M client: it registers with one LwM2M server over
// CoAP/UDP, keeps the registration up to date and answers the server's
// requests from its objects. Its methods are safe for concurrent use.
type Client struct {
	cfg    Config
	log    *slog.Logger
	raddr  *net.UDPAddr
	laddr  *net.UDPAddr
	objs   map[uint16]*Object
	ids    []uint16 // sorted
	models modelSet
	server *Object // the Server object (1)

	// dtlsHost is the host of a coaps server URI, "" over plain UDP.
	dtlsHost string
	// dtlsUsed is set by the first Register over DTLS (see renewDTLS).
	dtlsUsed atomic.Bool

	sess *session
	cc   *udpClient.Conn
	bs   bsState // the association with the Bootstrap-Server, while bootstrapping

	mu        sync.Mutex
	state     State
	location  string    // "/rd/{id}", the registration's Location-Path
	sent      regParams // what the last Register or Update told the server
	updatedAt time.Time // when the last Register or Update succeeded
	listDirty bool      // the object list changed since it was last sent
	obs       map[string]*observation
	attrs     map[objects.Path]linkformat.Attributes
	mids      midRing             // notification message IDs, for RSTs
	acks      map[int32]chan bool // confirmable notifications waiting for their ACK (true) or RST
	stops     []func()
	waiters   []chan struct{} // closed at the next successful registration

	kick    chan struct{} // an Update is due
	cmds    chan command
	stop    chan struct{}
	done    chan struct{}
	first   chan error
	started atomic.Bool
	// running is set, under mu, when the registration loop starts; Close
	// waits for the loop only then. Start checks closed under the same
	// lock, so a Close during Start (bootstrap, handshake) never waits
	// for a loop that will not run.
	running bool
	closed  atomic.Bool
	seq     atomic.Uint32 // Observe sequence numbers
	faults  *faults
	stats   counters
	q       queueState // queue mode: the sleep cycle
}

// State is where the client is in its registration life.
type State int32

// The states of a client.
const (
	StateIdle        State = iota // not started
	StateRegistering              // a registration procedure is running
	StateRegistered               // registered
	StateFailed                   // the registration procedure failed; the client waits for Close or Reboot
	StateDisabled                 // the server disabled the account (Server object's Disable)
	StateRebooting                // a simulated reboot is in progress
	StateClosed                   // closed
)

var stateNames = [...]string{"idle", "registering", "registered", "failed", "disabled", "rebooting", "closed"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// regParams are the registration parameters the server was last told.
type regParams struct {
	lifetime time.Duration
	binding  string
}

// Errors of the client's own operations.
var (
	// ErrRegistrationFailed: every attempt of the registration procedure
	// failed (Config.Retry).
	ErrRegistrationFailed = errors.New("client: registration failed")
	// ErrNotRegistered: the operation needs a registration.
	ErrNotRegistered = errors.New("client: not registered")
	// ErrClosed: the client is closed.
	ErrClosed = errors.New("client: closed")
	// ErrSendMuted: the Server object's Mute Send is true or absent (Core
	// 1.1 Appendix E.2, resource 23), or the client is LwM2M 1.0.
	ErrSendMuted = errors.New("client: Send is not allowed by the Server object or the LwM2M version")
)

// CoAPError is an error answer of the server to the client's request.
type CoAPError struct {
	Op   string // "register", "update", "deregister", "send"
	Code uint8  // class*32 + detail
	Diag string // the diagnostic payload, when readable
}

func (e *CoAPError) Error() string {
	s := fmt.Sprintf("client: %s: server answered %d.%02d", e.Op, e.Code>>5, e.Code&31)
	if e.Diag != "" {
		s += ": " + e.Diag
	}
	return s
}

// counters are the client's statistics.
type counters struct {
	registers, registerFails, updates, updateFails atomic.Uint64
	requests, notifications, notifyFails, sends    atomic.Uint64
	transport                                      atomic.Uint64
}

// Stats are the client's counters.
type Stats struct {
	Registrations       uint64 // successful Registers
	RegisterFailures    uint64 // failed Register attempts
	Updates             uint64 // successful Updates
	UpdateFailures      uint64 // failed Updates
	Requests            uint64 // server requests answered
	Notifications       uint64 // notifications sent
	NotifyFailures      uint64 // confirmable notifications never acknowledged
	Sends               uint64 // successful Sends
	Observations        int    // observations held
	DatagramsDroppedIn  uint64 // incoming datagrams dropped by the loss setting
	DatagramsDroppedOut uint64 // outgoing datagrams dropped by the loss setting
	TransportErrors     uint64 // datagrams go-coap could not process, failed writes
}

// New checks cfg and builds a client, with the ready-made Security,
// Server and Device objects for the objects cfg.Objects does not hold.
func New(cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:    cfg,
		log:    cfg.Logger.With("ep", cfg.Endpoint),
		objs:   make(map[uint16]*Object),
		models: make(modelSet),
		obs:    make(map[string]*observation),
		attrs:  make(map[objects.Path]linkformat.Attributes),
		kick:   make(chan struct{}, 1),
		cmds:   make(chan command),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		first:  make(chan error, 1),
		q:      queueState{wake: make(chan struct{}, 1)},
	}
	objs := slices.Clone(cfg.Objects)
	has := func(id uint16) bool {
		return slices.ContainsFunc(objs, func(o *Object) bool { return o != nil && o.id == id })
	}
	bootstrapOnly := !has(0) && cfg.ServerURI == "" && cfg.BootstrapURI != ""
	if !has(0) {
		sec, err := securityFor(cfg)
		if err != nil {
			return nil, err
		}
		objs = append(objs, sec)
	}
	if !has(1) {
		srv := NewServer(cfg.ShortServerID, cfg.Lifetime, cfg.Binding)
		if bootstrapOnly {
			srv.insts = nil // the Bootstrap-Server writes the accounts
		}
		objs = append(objs, srv)
	}
	if !has(3) {
		info := cfg.Device
		if info.Serial == "" {
			info.Serial = cfg.Endpoint
		}
		objs = append(objs, NewDevice(info))
	}
	for _, o := range objs {
		if o == nil {
			return nil, fmt.Errorf("client: Config.Objects holds a nil object")
		}
		if c.objs[o.id] != nil {
			return nil, fmt.Errorf("client: object %d given twice", o.id)
		}
		def := o.def
		if def == nil {
			ver := o.version
			if ver == "" {
				ver = pickVersion(cfg.Models, o.id, cfg.Version)
			}
			if def = cfg.Models.Get(o.id, ver); def == nil {
				return nil, fmt.Errorf("client: object %d version %q: no model in Config.Models", o.id, ver)
			}
		}
		if err := o.bind(c, def); err != nil {
			return nil, err
		}
		c.objs[o.id] = o
		c.ids = append(c.ids, o.id)
		c.models[o.id] = def
	}
	slices.Sort(c.ids)
	c.server = c.objs[1]
	c.faults = newFaults(c.seed())
	if err := c.account(); err != nil {
		return nil, err
	}
	return c, nil
}

// account finds the server account: the first Security instance that is
// not for a Bootstrap-Server, its URI, and the Server instance with its
// Short Server ID.
func (c *Client) account() error {
	sec := c.objs[0]
	for _, id := range sec.Instances() {
		if bs, _ := sec.Get(objects.NewPath(0, id, 1)); bs.Bool() {
			continue
		}
		uri, _ := sec.Get(objects.NewPath(0, id, 0))
		addr, err := serverAddress(uri.Str())
		if err != nil {
			return err
		}
		c.raddr = addr
		if err := c.useDTLS(uri.Str()); err != nil {
			return err
		}
		ssid, _ := sec.Get(objects.NewPath(0, id, 10))
		if c.serverInstance(uint16(ssid.Int())) < 0 {
			return fmt.Errorf("client: no Server object instance with Short Server ID %d (Security instance %d)", ssid.Int(), id)
		}
		c.cfg.ShortServerID = uint16(ssid.Int())
		if c.cfg.LocalAddr != "" {
			c.laddr, _ = net.ResolveUDPAddr("udp", c.cfg.LocalAddr)
		}
		return nil
	}
	if _, _, ok := c.bootstrapAccount(); ok {
		if c.cfg.LocalAddr != "" {
			c.laddr, _ = net.ResolveUDPAddr("udp", c.cfg.LocalAddr)
		}
		return nil // Start bootstraps first
	}
	return fmt.Errorf("client: the Security object has no instance for an LwM2M server")
}

// serverInstance returns the Server object instance with Short Server ID
// ssid, or -1.
func (c *Client) serverInstance(ssid uint16) int {
	for _, id := range c.server.Instances() {
		if v, ok := c.server.Get(objects.NewPath(1, id, 0)); ok && v.Int() == int64(ssid) {
			return int(id)
		}
	}
	return -1
}

// serverValue reads resource res of the account's Server instance.
func (c *Client) serverValue(res uint16) (objects.Value, bool) {
	id := c.serverInstance(c.cfg.ShortServerID)
	if id < 0 {
		return objects.Value{}, false
	}
	return c.server.Get(objects.NewPath(1, uint16(id), res))
}

// lifetime is the registration lifetime from the Server object.
func (c *Client) lifetime() time.Duration {
	if v, ok := c.serverValue(1); ok && v.Int() > 0 {
		return time.Duration(min(v.Int(), math.MaxInt64/int64(time.Second))) * time.Second
	}
	return c.cfg.Lifetime
}

// binding is the binding mode from the Server object, without Q.
func (c *Client) binding() string {
	if v, ok := c.serverValue(7); ok && v.Str() != "" {
		if b := strings.ReplaceAll(v.Str(), "Q", ""); b != "" {
			return b
		}
	}
	return c.cfg.Binding
}

// Object returns the hosted object id, or nil.
func (c *Client) Object(id uint16) *Object { return c.objs[id] }

// Endpoint is the client's endpoint name.
func (c *Client) Endpoint() string { return c.cfg.Endpoint }

// Version is the LwM2M version the client registers with.
func (c *Client) Version() string { return c.cfg.Version }

// Models are the object definitions the client hosts, by object ID.
func (c *Client) Models() objects.Models { return c.models }

// State is the registration state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Location is the registration's Location-Path ("/rd/5a3f"), empty when
// not registered.
func (c *Client) Location() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != StateRegistered {
		return ""
	}
	return c.location
}

// LocalAddr is the address the client sends from; nil before Start.
func (c *Client) LocalAddr() net.Addr {
	if c.sess == nil {
		return nil
	}
	return c.sess.LocalAddr()
}

// ServerAddr is the server's UDP address.
func (c *Client) ServerAddr() net.Addr { return c.raddr }

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	nobs := len(c.obs)
	c.mu.Unlock()
	st := Stats{
		Registrations:    c.stats.registers.Load(),
		RegisterFailures: c.stats.registerFails.Load(),
		Updates:          c.stats.updates.Load(),
		UpdateFailures:   c.stats.updateFails.Load(),
		Requests:         c.stats.requests.Load(),
		Notifications:    c.stats.notifications.Load(),
		NotifyFailures:   c.stats.notifyFails.Load(),
		Sends:            c.stats.sends.Load(),
		Observations:     nobs,
		TransportErrors:  c.stats.transport.Load(),
	}
	st.DatagramsDroppedIn = c.faults.droppedIn.Load()
	st.DatagramsDroppedOut = c.faults.droppedOut.Load()
	return st
}

// Start opens the client's socket, starts its objects (sensor sampling)
// and its registration procedure, and waits until the client is
// registered or ctx ends. In the second case it returns ctx's error and
// the procedure goes on in the background (Close stops it). It returns
// ErrRegistrationFailed when the procedure gave up (Config.Retry).
func (c *Client) Start(ctx context.Context) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if !c.started.CompareAndSwap(false, true) {
		return fmt.Errorf("client: already started")
	}
	// Close ends a Start still bootstrapping or handshaking.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	if c.raddr == nil {
		if err := c.bootstrap(ctx); err != nil {
			c.started.Store(false)
			return c.startErr(err)
		}
	}
	var sess *session
	var err error
	if c.cfg.Shared != nil && c.dtlsHost != "" {
		err = fmt.Errorf("client: %s: Config.Shared carries plain UDP, not DTLS", c.cfg.Endpoint)
	} else if c.cfg.Shared != nil {
		sess, err = c.cfg.Shared.session(c.raddr, c.laddr, c.cfg.MaxMessageSize, c.faults, c.transportError)
	} else if c.dtlsHost != "" {
		sess, err = newDTLSSession(ctx, c.raddr, c.laddr, c.cfg, c.dtlsHost, c.faults, c.transportError)
	} else {
		sess, err = newSession(c.raddr, c.laddr, c.cfg.MaxMessageSize, c.faults, c.transportError)
	}
	if err != nil {
		c.started.Store(false)
		return c.startErr(err)
	}
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		sess.Close()
		c.started.Store(false)
		return ErrClosed
	}
	c.sess = sess
	c.cc = dialCoAP(sess, c.cfg, c.handle, c.monitor, c.transportError)
	c.running = true
	c.mu.Unlock()
	for _, id := range c.ids {
		o := c.objs[id]
		o.mu.RLock()
		f := o.startFn
		o.mu.RUnlock()
		if f != nil {
			if stop := f(c); stop != nil {
				c.mu.Lock()
				c.stops = append(c.stops, stop)
				c.mu.Unlock()
			}
		}
	}
	go c.run()
	if c.cfg.Queue {
		go c.sleeper()
	}
	select {
	case err := <-c.first:
		return err
	case <-ctx.Done():
		return fmt.Errorf("client: %s: start: %w", c.cfg.Endpoint, ctx.Err())
	}
}

// seed derives the client's random seed from Config.Seed and the
// endpoint name, so that clients of one seed differ.
func (c *Client) seed() uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(c.cfg.Endpoint))
	return c.cfg.Seed ^ h.Sum64()
}

// WaitRegistered waits until the client is registered (at once if it is).
func (c *Client) WaitRegistered(ctx context.Context) error {
	c.mu.Lock()
	if c.state == StateRegistered {
		c.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	c.waiters = append(c.waiters, ch)
	c.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-c.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close de-registers (waiting at most one CoAP exchange for the answer),
// stops the objects and closes the socket. It is safe to call twice.
func (c *Client) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(c.stop)
	c.mu.Lock()
	running := c.running
	c.mu.Unlock()
	if running {
		<-c.done
	}
	c.mu.Lock()
	stops := c.stops
	c.stops = nil
	c.state = StateClosed
	c.mu.Unlock()
	c.dropObservations()
	c.closeBootstrap()
	for _, f := range stops {
		f()
	}
	if c.cc != nil {
		_ = c.cc.Close()
		<-c.sess.Done()
	}
	return nil
}

// startErr is ErrClosed when Start failed because Close ended it.
func (c *Client) startErr(err error) error {
	if c.closed.Load() {
		return ErrClosed
	}
	return err
}

func (c *Client) transportError(err error) {
	c.stats.transport.Add(1)
	c.log.Debug("coap", "err", err)
}

// exchangeTimeout bounds one confirmable exchange: go-coap retransmits
// every AckTimeout up to MaxRetransmit times (linearly, not doubling), so
// this is when the last retransmission has had its chance.
func (c *Client) exchangeTimeout() time.Duration {
	return c.cfg.AckTimeout * time.Duration(c.cfg.MaxRetransmit+2)
}

// modelSet is the client's Models: the definition of each hosted object.
type modelSet map[uint16]*objects.ObjectDef

func (m modelSet) Object(id uint16) *objects.ObjectDef { return m[id] }

// midRing remembers the message IDs of the last notifications sent, with
// their observation tokens, so that an RST (RFC 7641 §3.6: the server is
// not interested any more) cancels the right observation.
type midRing struct {
	ids    [16]int32
	tokens [16]string
	n      int
}

func (r *midRing) add(mid int32, token string) {
	i := r.n % len(r.ids)
	r.ids[i], r.tokens[i] = mid, token
	r.n++
}

func (r *midRing) token(mid int32) (string, bool) {
	for i := 0; i < min(r.n, len(r.ids)); i++ {
		if r.ids[i] == mid && r.tokens[i] != "" {
			return r.tokens[i], true
		}
	}
	return "", false
}
