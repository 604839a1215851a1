package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/net/responsewriter"
	"github.com/plgd-dev/go-coap/v3/pkg/runner/periodic"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
	udpServer "github.com/plgd-dev/go-coap/v3/udp/server"

	"github.com/lwm2md/lwm2md/objects"
)

// Server is an LwM2M server over CoAP/UDP and DTLS: the registration interface,
// device management and information reporting. Its methods are safe for
// concurrent use.
type Server struct {
	cfg      Config
	versions []objects.Version
	log      *slog.Logger
	store    Store
	events   *hub
	limiter  *rateLimiter
	q        *queueState // queue mode: awake devices, request queues

	udp       *udpServer.Server
	listener  *coapNet.UDPConn
	addr      net.Addr
	stop      chan struct{} // closed by Close: ends the janitor and the periodic runner
	serveDone chan struct{}
	lifeMu    sync.Mutex // serializes Start and Close
	started   atomic.Bool
	serving   atomic.Bool // set once udp and addr are ready
	closed    atomic.Bool
	inflight  atomic.Int64 // handlers running

	// regLocks serialize the registration changes of one endpoint
	// (Register, Update, De-register, expiry) with their Store writes;
	// changes of different endpoints run in parallel, so that the Store
	// can group their writes into one commit (see regLock). Enough of
	// them that a registration storm is not serialized by endpoints
	// sharing a lock: with 64, at most 64 Puts waited on one commit, and
	// a slow fsync capped the storm at 64 registrations per fsync.
	regLocks [4096]sync.Mutex
	// mu guards the session maps and the reg and cc fields of sessions.
	mu     sync.RWMutex
	byEP   map[string]*session
	byID   map[string]*session
	byAddr map[netip.AddrPort]*session

	// obsMu guards obs and every session's obs set.
	obsMu sync.RWMutex
	obs   map[string]*Observation // by raw token
	// unstoring counts the deletes from Config.Observations in flight;
	// Close waits for them (observestore.go).
	unstoring unstoreGroup

	assocs     atomic.Int64
	lastCapLog atomic.Int64 // unix nanoseconds of the last association-cap log line
	stats      counters

	dtls *dtlsTransport // nil without Config.DTLSAddr

	ingest ingestPool   // notifications taken off go-coap's read loop (ingest.go)
	blocks blockFetches // block-wise notifications being completed (observeblock.go)
}

// session is the running state of one registration.
type session struct {
	reg   *Registration           // guarded by Server.mu; replaced on Update
	cc    *udpClient.Conn         // guarded by Server.mu; the device's association, nil when unknown
	timer *time.Timer             // guarded by its endpoint's registration lock; nil when the registration never expires
	obs   map[string]*Observation // guarded by Server.obsMu

	secure bool // registered over DTLS; set at creation, never changed
}

// counters are the server's statistics.
type counters struct {
	refused       atomic.Uint64
	rateLimited   atomic.Uint64
	resets        atomic.Uint64
	foreignNotify atomic.Uint64
	notifications atomic.Uint64
	sends         atomic.Uint64
	transport     atomic.Uint64
	oversized     atomic.Uint64
	forbidden     atomic.Uint64
	received      atomic.Uint64
	retransmitted atomic.Uint64
	hs            handshakeCounters // DTLS handshakes (stats.go)
}

// Stats are counters for monitoring.
type Stats struct {
	Registrations       int    // registrations held
	Associations        int    // CoAP associations (peers) held
	Observations        int    // observations held
	AssociationsRefused uint64 // datagrams dropped because MaxAssociations was reached
	RequestsDropped     uint64 // Registers and requests of unregistered peers dropped by the per-address rate limit
	Resets              uint64 // RSTs sent for notifications of unknown observations
	ForeignNotify       uint64 // notifications dropped because they came from another address than the registration's
	Notifications       uint64 // notifications delivered as events
	Sends               uint64 // Send requests delivered as events
	EventsDropped       uint64 // events lost because a subscriber's channel was full
	TransportErrors     uint64 // datagrams go-coap could not process (malformed CoAP, write errors)
	Oversized           uint64 // datagrams over MaxMessageSize, dropped (a confirmable request gets 4.13)
	SecurityRefused     uint64 // Registers, Updates and De-registers refused 4.03 by the security binding (DTLS)
	MessagesReceived    uint64 // CoAP messages decoded, both transports
	Retransmissions     uint64 // confirmable messages received again from a peer (stats.go)
	DTLSHandshakes      uint64 // DTLS handshakes that ended in an authenticated session
	// HandshakeFailures are the DTLS handshakes that did not (stats.go).
	HandshakeFailures HandshakeFailures
}

// New checks cfg and returns a server that is not listening yet.
func New(cfg Config) (*Server, error) {
	cfg, vers, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Server{
		cfg:      cfg,
		versions: vers,
		log:      cfg.Logger,
		store:    cfg.Store,
		events:   newHub(),
		limiter:  newRateLimiter(cfg.RegisterRate, cfg.RegisterBurst),
		q:        newQueueState(cfg.Queue),
		stop:     make(chan struct{}),
		byEP:     make(map[string]*session),
		byID:     make(map[string]*session),
		byAddr:   make(map[netip.AddrPort]*session),
		obs:      make(map[string]*Observation),
	}, nil
}

// Start restores the registrations of the Store (dropping the expired
// ones), binds Config.UDPAddr and Config.DTLSAddr (those set) and serves
// in the background until Close.
// ctx bounds the start only.
func (s *Server) Start(ctx context.Context) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	if !s.started.CompareAndSwap(false, true) {
		return fmt.Errorf("server: already started")
	}
	var l *coapNet.UDPConn
	if s.cfg.UDPAddr != "" {
		var err error
		l, err = listenUDP(s.cfg.UDPAddr, s.cfg.SocketBuffer)
		if err != nil {
			s.started.Store(false)
			return fmt.Errorf("server: listen %s: %w", s.cfg.UDPAddr, err)
		}
	}
	if s.cfg.DTLSAddr != "" {
		d, err := s.listenDTLS()
		if err != nil {
			if l != nil {
				_ = l.Close()
			}
			s.started.Store(false)
			return err
		}
		s.dtls = d
	}
	if err := s.restore(ctx); err != nil {
		if l != nil {
			_ = l.Close()
		}
		if s.dtls != nil {
			_ = s.dtls.listener.Close()
		}
		s.started.Store(false)
		return err
	}
	if s.dtls != nil {
		s.dtls.serve(s)
	}
	if l == nil {
		s.serving.Store(true)
		s.startQueue() // once serving: a resumed queue sends at once
		go s.janitor()
		return nil
	}
	s.listener = l
	s.addr = l.LocalAddr()
	s.udp = udpServer.New(coapOptions{s})
	s.serveDone = make(chan struct{})
	go func() {
		defer close(s.serveDone)
		if err := s.udp.Serve(l); err != nil {
			s.log.Error("lwm2m server stopped", "addr", s.addr.String(), "err", err)
		}
	}()
	s.waitServing(ctx)
	s.serving.Store(true)
	s.startQueue() // once serving: a resumed queue sends at once
	go s.janitor()
	s.log.Info("lwm2m server listening", "addr", s.addr.String(), "versions", s.cfg.Versions)
	return nil
}

// waitServing waits until go-coap's Serve has taken the listener, after
// which the server can open associations to devices (NewConn); go-coap
// has no signal for it, so the probe is a NewConn without address, which
// fails differently once the server runs.
func (s *Server) waitServing(ctx context.Context) {
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		_, err := s.udp.NewConn(nil)
		if err == nil || err.Error() != "server is not running" {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// Addr is the bound UDP address, nil until Start has returned and when
// UDP is off.
func (s *Server) Addr() net.Addr {
	if !s.serving.Load() || s.addr == nil {
		return nil
	}
	return s.addr
}

// Close stops accepting datagrams, lets the handlers that are running
// finish (for up to 5 s), closes every association, stops the expiry
// timers and closes every event subscription. Registrations stay in the
// Store. Device management calls in flight fail.
func (s *Server) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	close(s.stop)
	deadline := time.Now().Add(5 * time.Second)
	for s.inflight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if s.udp != nil {
		s.udp.Stop()
		<-s.serveDone
	}
	if s.dtls != nil {
		s.dtls.stop()
	}
	// After the transports: no monitor queues a notification any more.
	s.ingest.close()
	s.q.close() // after the transports: no device message wakes a queue any more
	s.lockAllRegs()
	s.mu.Lock()
	for _, sess := range s.byID {
		if sess.timer != nil {
			sess.timer.Stop()
		}
	}
	s.mu.Unlock()
	s.unlockAllRegs()
	s.obsMu.Lock()
	clear(s.obs) // not removeObservation: they stay in Config.Observations
	s.obsMu.Unlock()
	s.unstoring.close()
	s.events.close()
	s.log.Info("lwm2m server closed", "addr", fmt.Sprint(s.addr))
	return nil
}

// Subscribe returns a subscription to the server's events with a channel
// of the given buffer. See Subscription for the delivery rules.
func (s *Server) Subscribe(buffer int) *Subscription { return s.events.subscribe(buffer) }

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.mu.RLock()
	regs := len(s.byID)
	s.mu.RUnlock()
	s.obsMu.RLock()
	obs := len(s.obs)
	s.obsMu.RUnlock()
	return Stats{
		Registrations:       regs,
		Associations:        int(s.assocs.Load()),
		Observations:        obs,
		AssociationsRefused: s.stats.refused.Load(),
		RequestsDropped:     s.stats.rateLimited.Load(),
		Resets:              s.stats.resets.Load(),
		ForeignNotify:       s.stats.foreignNotify.Load(),
		Notifications:       s.stats.notifications.Load(),
		Sends:               s.stats.sends.Load(),
		EventsDropped:       s.events.Dropped(),
		TransportErrors:     s.stats.transport.Load(),
		Oversized:           s.stats.oversized.Load(),
		SecurityRefused:     s.stats.forbidden.Load(),
		MessagesReceived:    s.stats.received.Load(),
		Retransmissions:     s.stats.retransmitted.Load(),
		DTLSHandshakes:      s.stats.hs.ok.Load(),
		HandshakeFailures:   s.stats.hs.failures(),
	}
}

// Registration returns the registration of an endpoint, from the Store.
func (s *Server) Registration(ctx context.Context, endpoint string) (*Registration, error) {
	return s.store.Get(ctx, endpoint)
}

// Registrations lists every registration, from the Store.
func (s *Server) Registrations(ctx context.Context) ([]*Registration, error) {
	return s.store.List(ctx)
}

// Models returns the object definitions in force for a registration: the
// versions the device announced, the newest for the others.
func (s *Server) Models(r *Registration) objects.Models {
	return s.cfg.Models.ForVersions(r.ObjectVersions)
}

// janitor does the periodic housekeeping: it forgets idle rate-limit
// buckets.
func (s *Server) janitor() {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.limiter.sweep(now)
		}
	}
}

// coapOptions configures go-coap's UDP server for the LwM2M server.
type coapOptions struct{ s *Server }

func (o coapOptions) UDPServerApply(cfg *udpServer.Config) {
	s := o.s
	cfg.Handler = s.coapHandler()
	cfg.Errors = s.transportError
	// One byte over the limit: go-coap reads each datagram into a buffer of
	// this size and does not report truncation, so a datagram that fills
	// it is over the limit, which the monitor checks.
	cfg.MaxMessageSize = uint32(s.cfg.MaxMessageSize) + 1
	cfg.PeriodicRunner = periodic.New(s.stop, time.Second) // retransmissions and idle checks
	cfg.CreateInactivityMonitor = s.newAssociation
	cfg.OnNewConn = s.onNewConn
	cfg.RequestMonitor = s.monitor
}

// newAssociation is go-coap's inactivity monitor of a new association,
// with the idle time of an unregistered peer.
func (s *Server) newAssociation() udpClient.InactivityMonitor {
	a := &association{}
	a.idle.Store(int64(s.cfg.IdleTimeout))
	a.Notify()
	return a
}

// coapHandler is the CoAP request and response handler of both
// transports (UDP and DTLS).
func (s *Server) coapHandler() func(w *responsewriter.ResponseWriter[*udpClient.Conn], r *pool.Message) {
	router := mux.NewRouter()
	router.SetErrorHandler(s.transportError)
	router.HandleFunc("/rd", s.serveRD)
	router.HandleFunc("/rd/{id}", s.serveRDID)
	router.HandleFunc("/dp", s.serveDP)
	router.DefaultHandleFunc(func(w mux.ResponseWriter, r *mux.Message) {
		s.answer(w, codes.NotFound, "no such resource on this LwM2M server")
	})
	serveMux := mux.ToHandler[*udpClient.Conn](router)
	return func(w *responsewriter.ResponseWriter[*udpClient.Conn], r *pool.Message) {
		s.inflight.Add(1)
		defer s.inflight.Add(-1)
		if s.closed.Load() {
			return
		}
		if r.Code() >= codes.Created || r.Code() == codes.Empty {
			s.handleResponse(w.Conn(), r)
			return
		}
		serveMux(w, r)
	}
}

// transportError counts what go-coap reports (malformed datagrams, failed
// writes); each is logged at debug level only, as a peer can cause them at
// will.
func (s *Server) transportError(err error) {
	s.stats.transport.Add(1)
	s.log.Debug("coap", "err", err)
}

// association is the per-peer inactivity monitor of go-coap: it closes
// the association after idle time without a datagram. The idle time
// follows the registration: its lifetime plus grace while the peer is
// registered (zero: never), IdleTimeout otherwise.
type association struct {
	last atomic.Int64 // unix nanoseconds of the last datagram
	idle atomic.Int64 // nanoseconds; 0 means no timeout
	// peer is what the DTLS handshake authenticated; nil over UDP.
	peer atomic.Pointer[dtlsPeer]
	// lastCON is the message ID + 1 of the peer's last confirmable
	// message, to count retransmissions (stats.go).
	lastCON atomic.Uint32
	// sends are the peer's last Sends and their answers (send.go), from
	// its first Send on.
	sends atomic.Pointer[sendAnswers]
}

func (a *association) Notify() { a.last.Store(time.Now().UnixNano()) }

func (a *association) CheckInactivity(now time.Time, cc *udpClient.Conn) {
	idle := a.idle.Load()
	if idle > 0 && now.UnixNano()-a.last.Load() > idle {
		_ = cc.Close()
	}
}

func associationOf(cc *udpClient.Conn) *association {
	a, _ := cc.InactivityMonitor().(*association)
	return a
}

// bind sets the association's idle time for registration r (nil: none).
func (s *Server) bind(cc *udpClient.Conn, r *Registration) {
	if cc == nil {
		return
	}
	a := associationOf(cc)
	if a == nil {
		return
	}
	switch {
	case r == nil:
		a.idle.Store(int64(s.cfg.IdleTimeout))
	case r.Lifetime == 0:
		a.idle.Store(0)
	default:
		a.idle.Store(int64(r.Lifetime + s.cfg.LifetimeGrace))
	}
}

// onNewConn enforces the association cap and attaches a new association
// from a registered address to its registration (after go-coap dropped
// the previous one, for a malformed datagram for example).
func (s *Server) onNewConn(cc *udpClient.Conn) {
	n := s.assocs.Add(1)
	addr := addrPort(cc.RemoteAddr())
	cc.AddOnClose(func() {
		s.assocs.Add(-1)
		s.mu.Lock()
		if sess := s.byAddr[addr]; sess != nil && sess.cc == cc {
			sess.cc = nil
		}
		s.mu.Unlock()
	})
	if n > int64(s.cfg.MaxAssociations) {
		s.stats.refused.Add(1)
		now := time.Now().UnixNano()
		if last := s.lastCapLog.Load(); now-last > int64(10*time.Second) && s.lastCapLog.CompareAndSwap(last, now) {
			s.log.Warn("association cap reached: dropping datagrams from new peers",
				"max_associations", s.cfg.MaxAssociations, "refused_total", s.stats.refused.Load(), "peer", cc.RemoteAddr().String())
		}
		_ = cc.Close()
		return
	}
	s.mu.Lock()
	sess := s.byAddr[addr]
	if sess != nil && sess.secure {
		sess = nil // a DTLS registration is never served over NoSec
	}
	if sess != nil && (sess.cc == nil || sess.cc.Context().Err() != nil) {
		sess.cc = cc
	}
	var reg *Registration
	if sess != nil {
		reg = sess.reg
	}
	s.mu.Unlock()
	if reg != nil {
		s.bind(cc, reg)
	}
}

// monitor runs on go-coap's read loop for every datagram, before it is
// queued to the peer's association: the cheap checks that must not wait
// behind other messages. It drops datagrams over MaxMessageSize and
// requests over the peer's rate limit, and answers a notification of an
// unknown observation with RST (passive cancel, RFC 7641 §3.6): go-coap
// would acknowledge a confirmable one instead.
func (s *Server) monitor(cc *udpClient.Conn, r *pool.Message) (bool, error) {
	if s.closed.Load() {
		return true, nil
	}
	s.countReceived(cc, r)
	if wireSize(r) > s.cfg.MaxMessageSize {
		s.tooLarge(cc, r)
		return true, nil
	}
	code := r.Code()
	switch {
	case code >= codes.Created:
		if s.takeBlock(cc, r) { // an answer to a block request (observeblock.go)
			return true, nil
		}
		if (r.Type() != message.Confirmable && r.Type() != message.NonConfirmable) || !r.HasOption(message.Observe) {
			return false, nil
		}
		s.obsMu.RLock()
		o := s.obs[string(r.Token())]
		var addr netip.AddrPort
		if o != nil {
			addr = o.addr
		}
		s.obsMu.RUnlock()
		if o == nil {
			s.reset(cc, r)
			return true, nil
		}
		if !s.fromDevice(o, addr, cc) {
			// The token is known but the address is not the device's: do
			// not accept it, and do not cancel it either (it may be the
			// device behind a new NAT mapping, which its next Update will
			// tell).
			s.stats.foreignNotify.Add(1)
			return true, nil
		}
		if s.ingestNotification(cc, r, o) {
			return true, nil
		}
	case code >= codes.GET && code <= codes.DELETE:
		// Registers, and every request from an address without a
		// registration, take a token of the address's bucket. Besides
		// throttling a Register flood, this bounds go-coap's per-peer
		// response cache (kept 247 s, scanned on every datagram of the
		// peer) for peers the server does not know.
		addr := addrPort(cc.RemoteAddr())
		if !isRegister(r.Options()) {
			if sess := s.peerSession(cc); sess != nil {
				s.mu.RLock()
				reg := sess.reg
				s.mu.RUnlock()
				return reg != nil && s.takeSend(cc, r, reg), nil // send.go
			}
		}
		if !s.limiter.allow(addr, time.Now()) {
			s.stats.rateLimited.Add(1)
			return true, nil
		}
	}
	return false, nil
}

// reset sends an empty RST matching r's message ID.
func (s *Server) reset(cc *udpClient.Conn, r *pool.Message) {
	rst := cc.AcquireMessage(cc.Context())
	defer cc.ReleaseMessage(rst)
	rst.SetType(message.Reset)
	rst.SetCode(codes.Empty)
	rst.SetMessageID(r.MessageID())
	if err := cc.Session().WriteMessage(rst); err != nil {
		s.transportError(fmt.Errorf("rst to %s: %w", cc.RemoteAddr(), err))
		return
	}
	s.stats.resets.Add(1)
}

// tooLarge answers a confirmable request over MaxMessageSize with 4.13
// Request Entity Too Large and Size1, the largest size accepted (RFC 7959
// §2.9.3); anything else over the limit is dropped.
func (s *Server) tooLarge(cc *udpClient.Conn, r *pool.Message) {
	s.stats.oversized.Add(1)
	if r.Type() != message.Confirmable || r.Code() < codes.GET || r.Code() > codes.DELETE {
		return
	}
	resp := cc.AcquireMessage(cc.Context())
	defer cc.ReleaseMessage(resp)
	resp.SetType(message.Acknowledgement)
	resp.SetMessageID(r.MessageID())
	resp.SetToken(r.Token())
	resp.SetCode(codes.RequestEntityTooLarge)
	resp.SetOptionUint32(message.Size1, uint32(s.cfg.MaxMessageSize))
	if err := cc.Session().WriteMessage(resp); err != nil {
		s.transportError(fmt.Errorf("4.13 to %s: %w", cc.RemoteAddr(), err))
	}
}

// wireSize is the encoded size of a CoAP message over UDP (RFC 7252 §3).
func wireSize(r *pool.Message) int {
	n := 4 + len(r.Token())
	prev := message.OptionID(0)
	for _, o := range r.Options() {
		n += 1 + extSize(int(o.ID-prev)) + extSize(len(o.Value)) + len(o.Value)
		prev = o.ID
	}
	if size, err := r.BodySize(); err == nil && size > 0 {
		n += 1 + int(size)
	}
	return n
}

func extSize(v int) int {
	switch {
	case v < 13:
		return 0
	case v < 269:
		return 1
	}
	return 2
}

// isRegister reports whether the URI path is exactly /rd.
func isRegister(opts message.Options) bool {
	n := 0
	rd := false
	for _, o := range opts {
		if o.ID == message.URIPath {
			n++
			rd = string(o.Value) == "rd"
		}
	}
	return n == 1 && rd
}

// addrPort turns a net.Addr of go-coap into a comparable address, with
// IPv4-mapped IPv6 addresses unmapped.
func addrPort(a net.Addr) netip.AddrPort {
	if u, ok := a.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// conn returns the association of sess's device: the one its last
// Register or Update came over, or a new one to its address.
func (s *Server) conn(sess *session) (*udpClient.Conn, *Registration, error) {
	s.mu.RLock()
	cc, reg := sess.cc, sess.reg
	s.mu.RUnlock()
	if cc != nil && cc.Context().Err() == nil {
		return cc, reg, nil
	}
	if !s.serving.Load() || s.closed.Load() {
		return nil, nil, ErrClosed
	}
	if err := s.redialable(sess, reg); err != nil {
		return nil, nil, err
	}
	cc, err := s.udp.NewConn(net.UDPAddrFromAddrPort(reg.Addr))
	if err != nil {
		if s.closed.Load() {
			return nil, nil, ErrClosed
		}
		return nil, nil, fmt.Errorf("server: association to %s: %w", reg.Addr, err)
	}
	s.mu.Lock()
	if sess.reg.Addr == reg.Addr {
		sess.cc = cc
	}
	s.mu.Unlock()
	s.bind(cc, reg)
	return cc, reg, nil
}

// session returns the running session of an endpoint.
func (s *Server) session(endpoint string) (*session, error) {
	if s.closed.Load() || !s.serving.Load() {
		return nil, ErrClosed
	}
	s.mu.RLock()
	sess := s.byEP[endpoint]
	s.mu.RUnlock()
	if sess == nil {
		return nil, fmt.Errorf("server: endpoint %q: %w", endpoint, ErrNotRegistered)
	}
	return sess, nil
}

// restore loads the Store's registrations at Start.
func (s *Server) restore(ctx context.Context) error {
	regs, err := s.store.List(ctx)
	if err != nil {
		return fmt.Errorf("server: restore registrations: %w", err)
	}
	now := time.Now()
	s.lockAllRegs()
	defer s.unlockAllRegs()
	for _, r := range regs {
		if exp := r.ExpiresAt(s.cfg.LifetimeGrace); !exp.IsZero() && !now.Before(exp) {
			if err := s.store.Delete(ctx, r.ID); err != nil {
				return fmt.Errorf("server: restore registrations: %w", err)
			}
			if err := s.dropStoredObservations(ctx, r.Endpoint); err != nil {
				return err
			}
			s.log.Info("registration expired while the server was down", "ep", r.Endpoint, "id", r.ID)
			continue
		}
		sess := &session{reg: r}
		s.mu.Lock()
		s.byEP[r.Endpoint], s.byID[r.ID], s.byAddr[r.Addr] = sess, sess, sess
		s.mu.Unlock()
		s.armLocked(sess, r)
	}
	if len(regs) > 0 {
		s.log.Info("registrations restored", "count", len(s.byID))
	}
	return s.restoreObservations(ctx)
}

// errClosedConn reports whether err comes from a closed association.
func errClosedConn(err error) bool {
	return errors.Is(err, net.ErrClosed) || coapNet.IsCancelOrCloseError(err)
}

// regLock is the lock of an endpoint's registration changes.
func (s *Server) regLock(endpoint string) *sync.Mutex {
	h := uint32(2166136261) // FNV-1a, without allocating
	for i := 0; i < len(endpoint); i++ {
		h = (h ^ uint32(endpoint[i])) * 16777619
	}
	return &s.regLocks[h%uint32(len(s.regLocks))]
}

// lockAllRegs takes every registration lock, in order, for Start and
// Close, which touch every registration.
func (s *Server) lockAllRegs() {
	for i := range s.regLocks {
		s.regLocks[i].Lock()
	}
}

func (s *Server) unlockAllRegs() {
	for i := range s.regLocks {
		s.regLocks[i].Unlock()
	}
}
