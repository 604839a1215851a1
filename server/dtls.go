package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/dtls/server"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	"github.com/plgd-dev/go-coap/v3/pkg/runner/periodic"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/lwm2md/lwm2md/internal/dtlslog"
)

// The errors of the DTLS security binding.
var (
	// ErrUnknownCredentials: no device holds the PSK identity or the
	// certificate of a handshake, which then fails.
	ErrUnknownCredentials = errors.New("unknown DTLS credentials")
	// ErrForbidden: the peer's credentials are not bound to the endpoint
	// it asked for (a Register, Update or De-register answered 4.03).
	ErrForbidden = errors.New("credentials not bound to the endpoint")
	// ErrNoDTLSSession: the device registered over DTLS and its session
	// is gone; the server cannot open one (the device handshakes), so the
	// request waits for the device's next handshake and Update.
	ErrNoDTLSSession = errors.New("no DTLS session with the device")
)

// DefaultHandshakeTimeout bounds a DTLS handshake (Config.HandshakeTimeout).
const DefaultHandshakeTimeout = 15 * time.Second

// cidSize is the length of the Connection IDs the server asks its peers to
// send (RFC 9146 §3): 8 random bytes, so that a device cannot guess
// another's.
const cidSize = 8

// credentialTimeout bounds a credential lookup made during a handshake.
const credentialTimeout = 5 * time.Second

// The cipher suites offered: the ones LwM2M makes mandatory (Transport 1.1
// §5.2.8.1 for PSK, §5.2.8.4 for certificates).
var (
	pskSuites  = []dtls.CipherSuiteID{dtls.TLS_PSK_WITH_AES_128_CCM_8, dtls.TLS_PSK_WITH_AES_128_CBC_SHA256}
	certSuites = []dtls.CipherSuiteID{dtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
)

// Credentials find the device behind a DTLS handshake. Implementations
// must be safe for concurrent use; NewRegistryCredentials is the one over
// the persistent registry.
type Credentials interface {
	// PSK returns the endpoint a PSK identity is bound to and its key,
	// or an error wrapping ErrUnknownCredentials.
	PSK(ctx context.Context, identity []byte) (endpoint string, key []byte, err error)
	// Certificate returns the endpoint a client certificate, already
	// verified against Config.RootCAs, is bound to, or an error wrapping
	// ErrUnknownCredentials.
	Certificate(ctx context.Context, cert *x509.Certificate) (endpoint string, err error)
	// Secured reports whether an endpoint has DTLS credentials, which
	// keeps it off NoSec: its Register, Update and De-register over UDP
	// are refused.
	Secured(ctx context.Context, endpoint string) (bool, error)
}

// dtlsPeer is what a DTLS handshake authenticated.
type dtlsPeer struct {
	endpoint string // the endpoint the credentials are bound to
	identity string // PSK identity, or the certificate's subject
	mode     string // "psk" or "x509"
}

// checkDTLS checks the DTLS settings and fills in their defaults.
func (c *Config) checkDTLS() error {
	if c.HandshakeTimeout < 0 {
		return fmt.Errorf("server: Config.HandshakeTimeout is negative")
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.DTLSAddr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.DTLSAddr); err != nil {
		return fmt.Errorf("server: Config.DTLSAddr %q: %w", c.DTLSAddr, err)
	}
	if c.Credentials == nil {
		return fmt.Errorf("server: Config.DTLSAddr is set but Config.Credentials is nil")
	}
	if len(c.Certificate.Certificate) == 0 {
		return nil
	}
	if c.RootCAs == nil {
		return fmt.Errorf("server: Config.Certificate is set but Config.RootCAs is nil: client certificates could not be verified")
	}
	if _, ok := c.Certificate.PrivateKey.(*ecdsa.PrivateKey); !ok {
		// The X.509 suites of LwM2M are ECDHE_ECDSA: an RSA key could not
		// sign the handshake.
		return fmt.Errorf("server: Config.Certificate: the private key must be ECDSA, not %T", c.Certificate.PrivateKey)
	}
	return nil
}

// dtlsTransport is the DTLS listener and go-coap's server on it.
type dtlsTransport struct {
	listener       *dtlsListener
	coap           *server.Server
	done           chan struct{}
	lastRefusedLog atomic.Int64 // unix nanoseconds of the last info line of logRefused
	psk            pskBindings  // endpoints found by the handshakes' key lookups
}

// dtlsListener adapts pion's listener to go-coap's Listener; udp is the
// packet listener under pion (dtlsnet.go).
type dtlsListener struct {
	net.Listener
	udp *cidListener
}

// AcceptWithContext hands go-coap a session that follows its device's
// address as soon as pion authenticates a record from a new one (see
// followConn). go-coap accepts from one goroutine, so the packet session
// the last Accept made is the one under pion's new connection.
func (l dtlsListener) AcceptWithContext(ctx context.Context) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := l.Accept()
	pc := l.udp.takeAccepted()
	if err != nil {
		if pc != nil {
			_ = pc.Close() // refused by dtlsAttempt: pion leaves it open
		}
		return nil, err
	}
	dc, ok := c.(*dtls.Conn)
	if !ok || pc == nil {
		return c, nil
	}
	return &followConn{Conn: dc, pc: pc}, nil
}

// listenDTLS binds Config.DTLSAddr.
func (s *Server) listenDTLS() (*dtlsTransport, error) {
	laddr, err := net.ResolveUDPAddr("udp", s.cfg.DTLSAddr)
	if err != nil {
		return nil, fmt.Errorf("server: DTLSAddr %s: %w", s.cfg.DTLSAddr, err)
	}
	cidLen := cidSize
	if s.cfg.DisableConnectionID {
		cidLen = 0
	}
	udp, err := listenCID(laddr, s.cfg.SocketBuffer, cidLen)
	if err != nil {
		return nil, fmt.Errorf("server: listen dtls %s: %w", s.cfg.DTLSAddr, err)
	}
	l, err := dtls.NewListenerWithOptions(udp, s.dtlsOptions()...)
	if err != nil {
		_ = udp.Close()
		return nil, fmt.Errorf("server: listen dtls %s: %w", s.cfg.DTLSAddr, err)
	}
	return &dtlsTransport{listener: &dtlsListener{Listener: l, udp: udp}}, nil
}

// dtlsOptions configure pion for the LwM2M security modes.
func (s *Server) dtlsOptions() []dtls.ServerOption {
	suites := pskSuites
	opts := []dtls.ServerOption{
		dtls.WithPSK(s.pskKey),
		dtls.WithExtendedMasterSecret(dtls.RequestExtendedMasterSecret),
		dtls.WithLoggerFactory(dtlslog.Factory{Log: s.log}),
		dtls.WithOnConnectionAttempt(s.dtlsAttempt),
	}
	if len(s.cfg.Certificate.Certificate) > 0 {
		suites = append(append([]dtls.CipherSuiteID{}, pskSuites...), certSuites...)
		opts = append(opts,
			dtls.WithCertificates(s.cfg.Certificate),
			// pion's RequireAndVerifyClientCert would refuse PSK handshakes
			// too; the requirement for the certificate suites is in
			// requireCertificate.
			dtls.WithClientAuth(dtls.VerifyClientCertIfGiven),
			dtls.WithClientCAs(s.cfg.RootCAs),
			dtls.WithVerifyPeerCertificate(s.verifyCertificate),
			dtls.WithVerifyConnection(requireCertificate))
	}
	opts = append(opts, dtls.WithCipherSuites(suites...))
	if !s.cfg.DisableConnectionID {
		// RFC 9146: the server asks for a Connection ID in every record, so
		// that pion routes a record arriving from a new address to the
		// session and, once authenticated, sends there (§6).
		opts = append(opts, dtls.WithConnectionIDGenerator(dtls.RandomCIDGenerator(cidSize)))
	}
	return opts
}

// pskKey is pion's PSK callback: the key of the identity the client sent.
// An unknown identity fails the handshake. The endpoint found with the key
// is kept for authenticated, which then need not read the store again.
func (s *Server) pskKey(identity []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), credentialTimeout)
	defer cancel()
	ep, key, err := s.cfg.Credentials.PSK(ctx, identity)
	if err != nil {
		s.logRefused("dtls handshake refused: PSK identity", "identity", fmt.Sprintf("%q", identity), "err", err)
		return nil, err
	}
	s.dtls.psk.remember(identity, ep, time.Now())
	return key, nil
}

// verifyCertificate binds a client certificate, which pion has verified
// against RootCAs, to an endpoint; a certificate bound to none fails the
// handshake.
func (s *Server) verifyCertificate(_ [][]byte, chains [][]*x509.Certificate) error {
	if len(chains) == 0 || len(chains[0]) == 0 {
		return fmt.Errorf("server: dtls: no verified client certificate: %w", ErrUnknownCredentials)
	}
	ctx, cancel := context.WithTimeout(context.Background(), credentialTimeout)
	defer cancel()
	cert := chains[0][0]
	if _, err := s.cfg.Credentials.Certificate(ctx, cert); err != nil {
		s.logRefused("dtls handshake refused: certificate", "subject", cert.Subject.String(), "err", err)
		return err
	}
	return nil
}

// requireCertificate fails a handshake on an ECDHE_ECDSA suite without a
// client certificate: the X.509 mode authenticates both sides (LwM2M
// Transport 1.1 §5.2.8.4).
func requireCertificate(st *dtls.State) error {
	for _, id := range certSuites {
		if st.CipherSuiteID == id && len(st.PeerCertificates) == 0 {
			return fmt.Errorf("server: dtls: the certificate mode needs a client certificate: %w", ErrUnknownCredentials)
		}
	}
	return nil
}

// logRefused logs a refused handshake at info level, at most one line a
// second (a peer can make handshakes fail at will), the others at debug.
func (s *Server) logRefused(msg string, args ...any) {
	now := time.Now().UnixNano()
	if last := s.dtls.lastRefusedLog.Load(); now-last > int64(time.Second) && s.dtls.lastRefusedLog.CompareAndSwap(last, now) {
		s.log.Info(msg, args...)
		return
	}
	s.log.Debug(msg, args...)
}

// dtlsAttempt refuses a new handshake while the association cap is
// reached, before pion allocates anything for it.
func (s *Server) dtlsAttempt(addr net.Addr) error {
	if s.assocs.Load() < int64(s.cfg.MaxAssociations) {
		return nil
	}
	s.stats.hs.capped.Add(1)
	s.capReached(addr.String())
	return fmt.Errorf("server: association cap %d reached", s.cfg.MaxAssociations)
}

// capReached counts a peer refused for the association cap and logs it,
// at most every 10 s.
func (s *Server) capReached(peer string) {
	s.stats.refused.Add(1)
	now := time.Now().UnixNano()
	if last := s.lastCapLog.Load(); now-last > int64(10*time.Second) && s.lastCapLog.CompareAndSwap(last, now) {
		s.log.Warn("association cap reached: refusing new peers",
			"max_associations", s.cfg.MaxAssociations, "refused_total", s.stats.refused.Load(), "peer", peer)
	}
}

// serve starts go-coap's DTLS server on the bound listener.
func (d *dtlsTransport) serve(s *Server) {
	d.coap = server.New(dtlsOptions{s})
	d.done = make(chan struct{})
	go func() {
		defer close(d.done)
		if err := d.coap.Serve(d.listener); err != nil {
			s.log.Error("lwm2m dtls server stopped", "addr", d.listener.Addr().String(), "err", err)
		}
	}()
	s.log.Info("lwm2m server listening (dtls)", "addr", d.listener.Addr().String(),
		"x509", len(s.cfg.Certificate.Certificate) > 0, "cid", !s.cfg.DisableConnectionID)
}

// stop closes the listener and every DTLS association.
func (d *dtlsTransport) stop() {
	if d.coap == nil {
		_ = d.listener.Close()
		return
	}
	d.coap.Stop()
	<-d.done
}

// DTLSAddr is the bound DTLS address, nil until Start has returned and
// when DTLS is off.
func (s *Server) DTLSAddr() net.Addr {
	if !s.serving.Load() || s.dtls == nil {
		return nil
	}
	return s.dtls.listener.Addr()
}

// dtlsOptions configures go-coap's DTLS server like the UDP one: the same
// handler, monitor and association idle times.
type dtlsOptions struct{ s *Server }

func (o dtlsOptions) DTLSServerApply(cfg *server.Config) {
	s := o.s
	cfg.Handler = s.coapHandler()
	cfg.Errors = s.dtlsError // counts the failed handshakes (stats.go)
	cfg.MaxMessageSize = uint32(s.cfg.MaxMessageSize) + 1
	cfg.PeriodicRunner = s.dtlsPeriodic(periodic.New(s.stop, time.Second))
	// go-coap's default closes a DTLS association after 16 s without a
	// datagram; ours follows the registration's lifetime (see bind).
	cfg.CreateInactivityMonitor = s.newAssociation
	cfg.OnNewConn = s.onNewDTLSConn
	cfg.RequestMonitor = s.monitor
	cfg.HandshakeTimeout = s.cfg.HandshakeTimeout
}

// dtlsPeriodic adds to go-coap's periodic sweep (retransmissions, idle
// associations) the forgetting of PSK lookups whose handshake failed.
func (s *Server) dtlsPeriodic(run periodic.Func) periodic.Func {
	return func(f func(now time.Time) bool) {
		run(func(now time.Time) bool {
			s.dtls.psk.sweep(now.Add(-s.cfg.HandshakeTimeout))
			return f(now)
		})
	}
}

// onNewDTLSConn runs after a successful handshake, before the first
// record is processed: it records what the handshake authenticated,
// enforces the association cap and makes the new session the one its
// endpoint's registration is served over (a device that handshakes again
// has lost the previous session).
func (s *Server) onNewDTLSConn(cc *udpClient.Conn) {
	peer, err := s.authenticated(cc)
	if err != nil {
		s.stats.hs.refused.Add(1)
		s.log.Info("dtls session refused", "peer", cc.RemoteAddr().String(), "err", err)
		_ = cc.Close()
		return
	}
	a := associationOf(cc)
	if a == nil {
		_ = cc.Close()
		return
	}
	a.peer.Store(peer)
	n := s.assocs.Add(1)
	cc.AddOnClose(func() {
		s.assocs.Add(-1)
		s.mu.Lock()
		if sess := s.byEP[peer.endpoint]; sess != nil && sess.cc == cc {
			sess.cc = nil
		}
		s.mu.Unlock()
	})
	if n > int64(s.cfg.MaxAssociations) {
		s.stats.hs.capped.Add(1)
		s.capReached(cc.RemoteAddr().String())
		_ = cc.Close()
		return
	}
	s.stats.hs.ok.Add(1)
	s.log.Debug("dtls session", "peer", cc.RemoteAddr().String(), "ep", peer.endpoint, "mode", peer.mode, "identity", peer.identity)
	s.mu.Lock()
	var reg *Registration
	var old *udpClient.Conn
	if sess := s.byEP[peer.endpoint]; sess != nil {
		old, sess.cc, reg = sess.cc, cc, sess.reg
	}
	s.mu.Unlock()
	if reg != nil {
		s.bind(cc, reg)
		if old != nil && old != cc {
			s.bind(old, nil)
		}
	}
}

// authenticated reads the endpoint a finished handshake is bound to.
func (s *Server) authenticated(cc *udpClient.Conn) (*dtlsPeer, error) {
	dc, ok := cc.NetConn().(interface{ ConnectionState() (dtls.State, bool) })
	if !ok {
		return nil, fmt.Errorf("server: dtls: not a DTLS connection (%T)", cc.NetConn())
	}
	state, ok := dc.ConnectionState()
	if !ok {
		return nil, fmt.Errorf("server: dtls: handshake not finished")
	}
	ctx, cancel := context.WithTimeout(context.Background(), credentialTimeout)
	defer cancel()
	if len(state.PeerCertificates) > 0 {
		cert, err := x509.ParseCertificate(state.PeerCertificates[0])
		if err != nil {
			return nil, fmt.Errorf("server: dtls: client certificate: %w", err)
		}
		ep, err := s.cfg.Credentials.Certificate(ctx, cert)
		if err != nil {
			return nil, err
		}
		return &dtlsPeer{endpoint: ep, identity: cert.Subject.String(), mode: "x509"}, nil
	}
	ep, ok := s.dtls.psk.take(state.IdentityHint)
	if !ok {
		// The entry is gone: another handshake with this identity took
		// it, or it outlived HandshakeTimeout.
		var err error
		if ep, _, err = s.cfg.Credentials.PSK(ctx, state.IdentityHint); err != nil {
			return nil, err
		}
	}
	return &dtlsPeer{endpoint: ep, identity: string(state.IdentityHint), mode: "psk"}, nil
}

// peerOf is what the DTLS handshake of cc authenticated; nil over UDP.
func (s *Server) peerOf(cc *udpClient.Conn) *dtlsPeer {
	if cc == nil {
		return nil
	}
	if a := associationOf(cc); a != nil {
		return a.peer.Load()
	}
	return nil
}

// peerSession is the registration a peer's Send and notifications belong
// to: over DTLS the registration of the endpoint its session is bound to,
// wherever its records come from (RFC 9146 lets the address change);
// over UDP the registration made from its address, unless that one was
// made over DTLS.
func (s *Server) peerSession(cc *udpClient.Conn) *session {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if p := s.peerOf(cc); p != nil {
		return s.byEP[p.endpoint]
	}
	sess := s.byAddr[addrPort(cc.RemoteAddr())]
	if sess != nil && sess.secure {
		return nil
	}
	return sess
}

// fromDevice reports whether a notification for observation o, whose
// device was last seen at addr, may come over cc: over DTLS from a
// session bound to its endpoint, over UDP from the device's address.
func (s *Server) fromDevice(o *Observation, addr netip.AddrPort, cc *udpClient.Conn) bool {
	if p := s.peerOf(cc); p != nil {
		return p.endpoint == o.Endpoint
	}
	if o.sess != nil && o.sess.secure {
		return false
	}
	return addr == addrPort(cc.RemoteAddr())
}

// forbid answers a registration request refused by the security binding
// with 4.03 Forbidden, and one whose check failed with 5.00.
func (s *Server) forbid(w mux.ResponseWriter, op, endpoint string, addr netip.AddrPort, err error) {
	if !errors.Is(err, ErrForbidden) {
		s.log.Error(op+": security binding", "ep", endpoint, "peer", addr.String(), "err", err)
		s.answer(w, codes.InternalServerError, "")
		return
	}
	s.stats.forbidden.Add(1)
	s.log.Warn(op+" refused: security binding", "ep", endpoint, "peer", addr.String(), "err", err)
	s.answer(w, codes.Forbidden, "the credentials of this session are not bound to this endpoint")
}

// authorize applies the security binding (LwM2M Core 1.1 §7.1: the
// server checks that the endpoint name matches the credentials) to a
// Register, Update or De-register of endpoint over cc. Over DTLS the
// session's credentials must be bound to the endpoint; over UDP (NoSec)
// the registration must not have been made over DTLS, and the endpoint
// must have no DTLS credentials.
func (s *Server) authorize(cc *udpClient.Conn, endpoint string, secure bool) error {
	if p := s.peerOf(cc); p != nil {
		if p.endpoint != endpoint {
			return fmt.Errorf("server: %s identity %q is bound to endpoint %q, not %q: %w", p.mode, p.identity, p.endpoint, endpoint, ErrForbidden)
		}
		return nil
	}
	if secure {
		return fmt.Errorf("server: endpoint %q registered over DTLS: NoSec refused: %w", endpoint, ErrForbidden)
	}
	if s.cfg.Credentials == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), credentialTimeout)
	defer cancel()
	has, err := s.cfg.Credentials.Secured(ctx, endpoint)
	if err != nil {
		return fmt.Errorf("server: credentials of %q: %w", endpoint, err)
	}
	if has {
		return fmt.Errorf("server: endpoint %q has DTLS credentials: NoSec refused: %w", endpoint, ErrForbidden)
	}
	return nil
}

// redialable checks, before the server opens a new association to a
// device whose association is gone, that the device is reached over
// NoSec: a DTLS device handshakes itself, the server cannot.
func (s *Server) redialable(sess *session, reg *Registration) error {
	if s.udp == nil {
		return fmt.Errorf("server: endpoint %q: %w", reg.Endpoint, ErrNoDTLSSession)
	}
	if !sess.secure && s.cfg.Credentials == nil {
		return nil
	}
	if !sess.secure {
		ctx, cancel := context.WithTimeout(context.Background(), credentialTimeout)
		defer cancel()
		has, err := s.cfg.Credentials.Secured(ctx, reg.Endpoint)
		if err != nil {
			return fmt.Errorf("server: credentials of %q: %w", reg.Endpoint, err)
		}
		if !has {
			return nil
		}
	}
	return fmt.Errorf("server: endpoint %q: %w", reg.Endpoint, ErrNoDTLSSession)
}
