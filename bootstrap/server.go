package bootstrap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/pkg/runner/periodic"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
	udpServer "github.com/plgd-dev/go-coap/v3/udp/server"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/builtin"
	"github.com/lwm2md/lwm2md/registry"
)

// Errors of the Go API.
var (
	// ErrNotConnected: server-initiated bootstrap needs the device's
	// association, from an earlier Bootstrap-Request, still open.
	ErrNotConnected = errors.New("bootstrap: device not connected to the bootstrap server")
	// ErrClosed: the server is closed.
	ErrClosed = errors.New("bootstrap: server closed")
	// ErrDevice: the device refused a step (a *StepError says which).
	ErrDevice = errors.New("bootstrap: device refused a step")
)

// StepError is a step the device answered with an error code, or did
// not answer.
type StepError struct {
	Step string
	Path objects.Path
	Code uint8  // class*32+detail, 0 when no answer came
	Diag string // the device's diagnostic payload
	Err  error  // the transport error when no answer came
}

func (e *StepError) Error() string {
	s := fmt.Sprintf("bootstrap: %s %s", e.Step, e.Path)
	if e.Code != 0 {
		s += fmt.Sprintf(": device answered %d.%02d", e.Code>>5, e.Code&31)
	}
	if e.Diag != "" {
		s += ": " + e.Diag
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *StepError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrDevice, e.Err}
	}
	return []error{ErrDevice}
}

// Config holds the bootstrap server's settings; zero fields take the
// default written beside them.
type Config struct {
	// UDPAddr is the CoAP over UDP listen address (NoSec); port 0 picks
	// one; "" turns UDP off.
	UDPAddr string
	// DTLSAddr is the CoAP over DTLS 1.2 listen address (PSK); "" turns
	// DTLS off. It needs Factory or DeviceCredentials.
	DTLSAddr string
	// Factory are the bootstrap PSKs shared by batches of devices; see
	// FactoryCredential and Server.RevokeFactory.
	Factory []FactoryCredential
	// DeviceCredentials let a device bootstrap again over DTLS with the
	// PSK an earlier bootstrap gave it (bound to its endpoint). May be
	// nil.
	DeviceCredentials registry.CredentialLookup
	// HandshakeTimeout bounds a DTLS handshake. Default: 15 s.
	HandshakeTimeout time.Duration
	// Certificate is the bootstrap server's own ECDSA certificate and
	// key; with it the DTLS port also offers the certificate suites
	// (Transport 1.1 §5.2.8.4) and accepts device certificates that chain
	// to RootCAs (the factory CAs). See x509.go.
	Certificate tls.Certificate
	// RootCAs are the factory CAs device certificates must chain to.
	RootCAs *x509.CertPool
	// RevokedCAs withdraw factory CAs, by subject (as
	// pkix.Name.String() writes it: "CN=Factory CA,O=Acme") or by the
	// SHA-256 fingerprint of the CA certificate (hex). Server.RevokeCA
	// (the REST API) adds revocations that the Configs' store keeps.
	RevokedCAs []string
	// RevocationRefresh is how long the revocations read from the
	// Configs' store are used before they are read again: a CA revoked
	// on another node sharing the registry is refused within it (on this
	// node, from the next handshake). Default 1 s.
	RevocationRefresh time.Duration
	// StatusStore keeps each endpoint's last bootstrap outcome in its
	// tags, so that Status survives a restart (see status.go). May be
	// nil: the status is then kept in memory only.
	StatusStore registry.Tags
	// Configs finds each device's configuration. Default: templates and
	// per-endpoint configurations in memory.
	Configs *Configs
	// Credentials receives the PSK of each account that has one, so that
	// the LwM2M server's DTLS handshake accepts the device. Nil: PSKs are
	// not stored, and a configuration that generates one is refused.
	Credentials registry.CredentialWriter
	// Models are the object definitions. Default: builtin.Registry().
	Models *objects.Registry
	// Logger receives the server's log lines. Default: none.
	Logger *slog.Logger
	// RequestTimeout bounds each request to the device. Default: 93 s,
	// CoAP's MAX_TRANSMIT_WAIT (RFC 7252 §4.8.2).
	RequestTimeout time.Duration
	// IdleTimeout closes a device's association after this long without
	// a datagram; until then server-initiated bootstrap can use it.
	// Default: 5 minutes.
	IdleTimeout time.Duration
	// MaxMessageSize bounds a CoAP message. Default: 64 KiB.
	MaxMessageSize uint32
}

func (c Config) withDefaults() (Config, error) {
	if c.UDPAddr == "" && c.DTLSAddr == "" {
		return c, fmt.Errorf("bootstrap: Config.UDPAddr and Config.DTLSAddr are empty")
	}
	if c.UDPAddr != "" {
		if _, _, err := net.SplitHostPort(c.UDPAddr); err != nil {
			return c, fmt.Errorf("bootstrap: Config.UDPAddr %q: %w", c.UDPAddr, err)
		}
	}
	if err := c.checkDTLS(); err != nil {
		return c, err
	}
	if c.Configs == nil {
		c.Configs = NewConfigs(NewMemoryConfigs(), nil)
	}
	if c.Models == nil {
		c.Models = builtin.Registry()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 93 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 5 * time.Minute
	}
	if c.RevocationRefresh <= 0 {
		c.RevocationRefresh = time.Second
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = 64 * 1024
	}
	return c, nil
}

// Status is where an endpoint's last bootstrap stands.
type Status struct {
	Endpoint  string
	State     string // "running", "finished", "failed"
	Initiator string // "client", "server"
	Source    string // where the configuration came from
	Step      string // the step running, or the one that failed
	Error     string // why it failed
	Code      uint8  // the device's error answer, when it gave one
	Started   time.Time
	Ended     time.Time
	Attempts  int // bootstrap sequences started (and requests refused) for the endpoint; kept in the StatusStore across restarts
	Retries   int // times the last one was repeated after a failure (Configuration.Retries)
}

// The states of Status.
const (
	StateRunning  = "running"
	StateFinished = "finished"
	StateFailed   = "failed"
)

// Server is an LwM2M Bootstrap-Server over CoAP/UDP (LwM2M Core 1.1
// §5.2 and §6.1, Transport §6.1): it answers Bootstrap-Request and
// Bootstrap-Pack-Request, drives each device's bootstrap sequence from its
// configuration, and stores the credentials it gives out. Its methods are
// safe for concurrent use.
type Server struct {
	cfg    Config
	log    *slog.Logger
	events *hub

	udp       *udpServer.Server
	addr      net.Addr
	dtls      *dtlsState // nil without DTLS
	stop      chan struct{}
	serveDone chan struct{}
	wg        sync.WaitGroup
	lifeMu    sync.Mutex
	started   atomic.Bool
	closed    atomic.Bool

	revoked revokedCache // the revoked CAs of the Configs' store

	mu     sync.Mutex
	conns  map[string]peer               // endpoint -> its association, from its last request
	runs   map[string]context.CancelFunc // endpoint -> the sequence running
	status map[string]*Status
}

// New checks cfg and returns a server that is not listening yet.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Server{
		cfg:    cfg,
		log:    cfg.Logger,
		events: newHub(),
		stop:   make(chan struct{}),
		conns:  make(map[string]peer),
		runs:   make(map[string]context.CancelFunc),
		status: make(map[string]*Status),
	}, nil
}

// Configs is where the server finds configurations.
func (s *Server) Configs() *Configs { return s.cfg.Configs }

// Start binds Config.UDPAddr and serves in the background until Close.
func (s *Server) Start(ctx context.Context) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	if !s.started.CompareAndSwap(false, true) {
		return fmt.Errorf("bootstrap: already started")
	}
	router := mux.NewRouter()
	router.SetErrorHandler(s.transportError)
	router.HandleFunc("/bs", s.serveRequest)
	router.HandleFunc("/bspack", s.servePack)
	router.DefaultHandleFunc(func(w mux.ResponseWriter, r *mux.Message) {
		answer(w, codes.NotFound, "no such resource on the LwM2M Bootstrap-Server")
	})
	if s.cfg.DTLSAddr != "" {
		if err := s.listenDTLS(ctx, router); err != nil {
			s.started.Store(false)
			return err
		}
	}
	if s.cfg.UDPAddr == "" {
		return nil
	}
	l, err := coapNet.NewListenUDP("udp", s.cfg.UDPAddr)
	if err != nil {
		if s.dtls != nil {
			s.dtls.stop()
		}
		s.started.Store(false)
		return fmt.Errorf("bootstrap: listen %s: %w", s.cfg.UDPAddr, err)
	}
	s.udp = udpServer.New(
		options.WithMux(router),
		options.WithErrors(s.transportError),
		options.WithMaxMessageSize(s.cfg.MaxMessageSize),
		options.WithPeriodicRunner(periodic.New(s.stop, time.Second)),
		options.WithInactivityMonitor(s.cfg.IdleTimeout, func(cc *udpClient.Conn) { _ = cc.Close() }),
		options.WithContext(ctx),
	)
	s.addr = l.LocalAddr()
	s.serveDone = make(chan struct{})
	go func() {
		defer close(s.serveDone)
		if err := s.udp.Serve(l); err != nil {
			s.log.Error("bootstrap server stopped", "addr", s.addr.String(), "err", err)
		}
	}()
	s.log.Info("bootstrap server listening", "addr", s.addr.String())
	return nil
}

// Addr is the bound UDP address, nil before Start or without UDP.
func (s *Server) Addr() net.Addr {
	if !s.started.Load() || s.udp == nil {
		return nil
	}
	return s.addr
}

// Close stops the server: running sequences are cancelled, associations
// closed, subscriptions ended.
func (s *Server) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	s.mu.Lock()
	for _, cancel := range s.runs {
		cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
	close(s.stop)
	if s.udp != nil {
		s.udp.Stop()
		<-s.serveDone
	}
	if s.dtls != nil && s.dtls.coap != nil {
		s.dtls.stop()
	}
	s.events.close()
	return nil
}

// Subscribe returns a subscription to the server's events with a channel
// of that buffer size.
func (s *Server) Subscribe(buffer int) *Subscription { return s.events.subscribe(buffer) }

func (s *Server) transportError(err error) {
	if !coapNet.IsCancelOrCloseError(err) {
		s.log.Debug("coap", "err", err)
	}
}

// answer sets an answer with a diagnostic payload (RFC 7252 §5.5.2).
func answer(w mux.ResponseWriter, code codes.Code, diag string) {
	var body []byte
	if diag != "" {
		body = []byte(diag)
	}
	if body == nil {
		_ = w.SetResponse(code, message.TextPlain, nil)
		return
	}
	_ = w.SetResponse(code, message.TextPlain, bytesReader(body))
}

// endpointOf reads and checks the ep query of a request.
func endpointOf(r *mux.Message) (string, string, error) {
	qs, _ := r.Queries()
	var ep, pct string
	var hasEP bool
	for _, q := range qs {
		k, v, _ := cut(q, '=')
		switch k {
		case "ep":
			if hasEP {
				return "", "", fmt.Errorf("ep given twice")
			}
			ep, hasEP = v, true
		case "pct":
			pct = v
		}
	}
	if !hasEP {
		return "", "", fmt.Errorf("the ep query parameter (endpoint client name) is missing")
	}
	if err := CheckEndpointName(ep); err != nil {
		return "", "", err
	}
	return ep, pct, nil
}

// serveRequest answers a Bootstrap-Request (POST /bs?ep=..&pct=.., Core
// 1.1 §5.2.7.1, Transport 1.1 §6.1) with 2.04 and starts the sequence;
// 4.00 for a missing or bad ep or pct, or an endpoint without a
// configuration.
func (s *Server) serveRequest(w mux.ResponseWriter, r *mux.Message) {
	if r.Code() != codes.POST {
		answer(w, codes.MethodNotAllowed, "Bootstrap-Request is a POST")
		return
	}
	ep, pctText, err := endpointOf(r)
	if err != nil {
		s.refuse(w, "", StepRequest, err)
		return
	}
	var pct objects.Format
	if pctText != "" {
		if pct, err = parsePCT(pctText); err != nil {
			s.refuse(w, ep, StepRequest, err)
			return
		}
	}
	if err := s.authorize(r.Context(), w.Conn(), ep); err != nil {
		s.forbid(w, ep, StepRequest, err)
		return
	}
	cfg, source, err := s.cfg.Configs.Resolve(r.Context(), ep)
	if err != nil {
		s.refuse(w, ep, StepRequest, err)
		return
	}
	if s.closed.Load() {
		answer(w, codes.ServiceUnavailable, "bootstrap server closing")
		return
	}
	s.remember(ep, w.Conn(), pct)
	answer(w, codes.Changed, "")
	// The sequence runs in the background: go-coap sends the 2.04 when
	// this handler returns, normally before the first BS-Discover goes out
	// (a device has to cope with the reverse order, as UDP may reorder).
	s.start(ep, w.Conn(), cfg, source, "client", pct)
}

// forbid answers 4.03 (the DTLS credential may not bootstrap the
// endpoint) and records the failure.
func (s *Server) forbid(w mux.ResponseWriter, ep, step string, err error) {
	s.refuse(w, ep, step, err)
	answer(w, codes.Forbidden, err.Error())
}

// refuse answers 4.00 and records the failure.
func (s *Server) refuse(w mux.ResponseWriter, ep, step string, err error) {
	s.log.Info("bootstrap request refused", "ep", ep, "err", err)
	answer(w, codes.BadRequest, err.Error())
	if ep != "" {
		ours := s.ours(ep, err)
		if ours {
			s.seedAttempts(ep)
		}
		now := time.Now()
		s.mu.Lock()
		st := s.statusLocked(ep)
		*st = Status{Endpoint: ep, State: StateFailed, Initiator: "client", Step: step, Error: err.Error(), Started: now, Ended: now, Attempts: st.Attempts + 1}
		s.mu.Unlock()
		if ours {
			s.persistCurrent(ep)
		}
	}
	s.events.publish(Event{Kind: EventFailed, Endpoint: ep, Initiator: "client", Step: step, Err: err})
}

func (s *Server) statusLocked(ep string) *Status {
	st := s.status[ep]
	if st == nil {
		st = &Status{Endpoint: ep}
		s.status[ep] = st
	}
	return st
}

// peer is a device's association and the preferred content format its
// Bootstrap-Request gave.
type peer struct {
	cc  mux.Conn
	pct objects.Format
}

// remember keeps the device's association for server-initiated
// bootstrap, forgetting it when go-coap closes it.
func (s *Server) remember(ep string, cc mux.Conn, pct objects.Format) {
	s.mu.Lock()
	old := s.conns[ep]
	s.conns[ep] = peer{cc: cc, pct: pct}
	s.mu.Unlock()
	if old.cc == cc {
		return
	}
	cc.AddOnClose(func() {
		s.mu.Lock()
		if s.conns[ep].cc == cc {
			delete(s.conns, ep)
		}
		s.mu.Unlock()
	})
}

func parsePCT(s string) (objects.Format, error) {
	f, err := objects.ParseFormat(s)
	if err != nil {
		return 0, fmt.Errorf("pct %q: %w", s, err)
	}
	if _, ok := contentCodec(f); !ok {
		return 0, fmt.Errorf("pct %s: not a content format this server knows", s)
	}
	return f, nil
}

// Bootstrap starts a server-initiated bootstrap (Core 1.1 §6.1.4) of a
// device whose association with the bootstrap server is still open (it
// sent a Bootstrap-Request within Config.IdleTimeout), and waits for the
// sequence to end. The device's earlier Bootstrap-Request told its
// preferred content format, which the writes use again.
func (s *Server) Bootstrap(ctx context.Context, ep string) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := CheckEndpointName(ep); err != nil {
		return err
	}
	s.mu.Lock()
	pr := s.conns[ep]
	s.mu.Unlock()
	if pr.cc == nil || pr.cc.Context().Err() != nil {
		return fmt.Errorf("bootstrap: %s: %w", ep, ErrNotConnected)
	}
	cfg, source, err := s.cfg.Configs.Resolve(ctx, ep)
	if err != nil {
		return err
	}
	done := s.start(ep, pr.cc, cfg, source, "server", pr.pct)
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// start runs the sequence for ep in the background, cancelling one that
// is still running for it; the channel gets its result.
func (s *Server) start(ep string, cc mux.Conn, cfg *Configuration, source, initiator string, pct objects.Format) <-chan error {
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	now := time.Now()
	s.mu.Lock()
	if prev := s.runs[ep]; prev != nil {
		prev()
	}
	s.runs[ep] = cancel
	s.wg.Add(1)
	s.mu.Unlock()
	s.begin(ep, source, initiator, now)
	go func() {
		defer s.wg.Done()
		defer cancel()
		s.persistCurrent(ep)
		var err error
		var step string
		for retry := 0; ; retry++ {
			sq := &sequence{s: s, cc: cc, ep: ep, cfg: cfg, initiator: initiator, pct: pct}
			err, step = sq.run(ctx), sq.step
			if err == nil || retry >= cfg.Retries || ctx.Err() != nil || s.closed.Load() {
				break
			}
			// The device is still waiting for BS-Finish (it has not been
			// told anything): the whole sequence is repeated over the same
			// association, as the configuration's retries allow.
			s.log.Info("bootstrap failed, retrying", "ep", ep, "step", step, "err", err, "retry", retry+1)
			s.events.publish(Event{Kind: EventRetry, Endpoint: ep, Initiator: initiator, Step: step, Err: err})
			s.mu.Lock()
			if st := s.status[ep]; st != nil && st.Started.Equal(now) {
				st.Retries++
			}
			s.mu.Unlock()
			t := time.NewTimer(cfg.retryDelay())
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		s.finish(ctx, ep, initiator, step, now, err)
		done <- err
	}()
	return done
}

// begin records and publishes the start of a sequence.
func (s *Server) begin(ep, source, initiator string, now time.Time) {
	s.seedAttempts(ep)
	s.mu.Lock()
	st := s.statusLocked(ep)
	*st = Status{Endpoint: ep, State: StateRunning, Initiator: initiator, Source: source, Started: now, Attempts: st.Attempts + 1}
	s.mu.Unlock()
	s.events.publish(Event{Kind: EventStarted, Endpoint: ep, Initiator: initiator, Source: source})
}

// finish records the end of a sequence and publishes it.
func (s *Server) finish(ctx context.Context, ep, initiator, step string, started time.Time, err error) {
	s.mu.Lock()
	st := s.statusLocked(ep)
	current := st.Started.Equal(started)
	if current {
		st.Ended = time.Now()
		st.Step = step
		if err != nil {
			st.State, st.Error = StateFailed, err.Error()
			var se *StepError
			if errors.As(err, &se) {
				st.Code = se.Code
			}
		} else {
			st.State = StateFinished
		}
		if step != StepPack {
			delete(s.runs, ep)
		}
	}
	s.mu.Unlock()
	if current {
		s.persistCurrent(ep)
	}
	if err != nil {
		if ctx.Err() != nil && !s.closed.Load() && !current {
			err = fmt.Errorf("bootstrap: %s: replaced by a new sequence: %w", ep, err)
		}
		s.log.Info("bootstrap failed", "ep", ep, "step", step, "err", err)
		s.events.publish(Event{Kind: EventFailed, Endpoint: ep, Initiator: initiator, Step: step, Err: err, Duration: time.Since(started)})
		return
	}
	s.log.Info("bootstrap finished", "ep", ep, "initiator", initiator)
	s.events.publish(Event{Kind: EventFinished, Endpoint: ep, Initiator: initiator, Step: step, Duration: time.Since(started)})
}
