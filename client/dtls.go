package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"

	"github.com/lwm2md/lwm2md/internal/dtlslog"
)

// DTLSConfig are the client's DTLS 1.2 credentials, used when the server
// URI is coaps:// (LwM2M Transport 1.1 §5.2.8). Set a PSK (identity and
// key) or a certificate with the trust store for the server's
// certificate; raw public keys are not supported (pion/dtls has none).
type DTLSConfig struct {
	// PSKIdentity and PSKKey are the pre-shared key (Security mode 0).
	PSKIdentity string
	PSKKey      []byte
	// Certificate is the client's ECDSA certificate and key (Security mode
	// 2), and RootCAs the trust store the server's certificate must chain
	// to. ServerName is the name checked in the server's certificate;
	// default: the host of the server URI.
	Certificate *tls.Certificate
	RootCAs     *x509.CertPool
	ServerName  string
	// CipherSuites are offered in this order. Default: for a PSK
	// TLS_PSK_WITH_AES_128_CCM_8 and TLS_PSK_WITH_AES_128_CBC_SHA256, for a
	// certificate TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 and
	// TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, the suites LwM2M makes
	// mandatory.
	CipherSuites []dtls.CipherSuiteID
	// DisableConnectionID stops the client from offering to send the
	// server's Connection ID (RFC 9146); with it on (the default), the
	// session survives a change of the client's address (Rebind).
	DisableConnectionID bool
	// HandshakeTimeout bounds the handshake. Default 15 s.
	HandshakeTimeout time.Duration
}

// DefaultDTLSHandshakeTimeout bounds a handshake (DTLSConfig).
const DefaultDTLSHandshakeTimeout = 15 * time.Second

// check validates the DTLS settings for a coaps server URI.
func (d *DTLSConfig) check(uri string) error {
	psk := d.PSKIdentity != "" || len(d.PSKKey) > 0
	switch {
	case psk && d.Certificate != nil:
		return fmt.Errorf("client: Config.DTLS: set a PSK or a certificate, not both")
	case psk && (d.PSKIdentity == "" || len(d.PSKKey) == 0):
		return fmt.Errorf("client: Config.DTLS: a PSK needs both PSKIdentity and PSKKey")
	case !psk && d.Certificate == nil:
		return fmt.Errorf("client: server URI %q is coaps but Config.DTLS has neither a PSK nor a certificate", uri)
	case d.Certificate != nil && d.RootCAs == nil:
		return fmt.Errorf("client: Config.DTLS.RootCAs is nil: the server's certificate could not be verified")
	case d.HandshakeTimeout < 0:
		return fmt.Errorf("client: Config.DTLS.HandshakeTimeout is negative")
	}
	return nil
}

// options are pion's client options for d.
func (d *DTLSConfig) options(serverHost string, log *dtlslog.Factory) []dtls.ClientOption {
	opts := []dtls.ClientOption{
		dtls.WithLoggerFactory(log),
		dtls.WithExtendedMasterSecret(dtls.RequestExtendedMasterSecret),
	}
	suites := d.CipherSuites
	if d.Certificate != nil {
		if suites == nil {
			suites = []dtls.CipherSuiteID{dtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
		}
		name := d.ServerName
		if name == "" {
			name = serverHost
		}
		opts = append(opts, dtls.WithCertificates(*d.Certificate), dtls.WithRootCAs(d.RootCAs), dtls.WithServerName(name))
	} else {
		if suites == nil {
			suites = []dtls.CipherSuiteID{dtls.TLS_PSK_WITH_AES_128_CCM_8, dtls.TLS_PSK_WITH_AES_128_CBC_SHA256}
		}
		key := d.PSKKey
		opts = append(opts,
			dtls.WithPSK(func([]byte) ([]byte, error) { return key, nil }),
			dtls.WithPSKIdentityHint([]byte(d.PSKIdentity)))
	}
	opts = append(opts, dtls.WithCipherSuites(suites...))
	if !d.DisableConnectionID {
		// RFC 9146: the client sends the Connection ID the server asks for
		// and asks for none itself (a zero-length one): the server is the
		// side whose view of the address changes.
		opts = append(opts, dtls.WithConnectionIDGenerator(dtls.OnlySendCIDGenerator()))
	}
	return opts
}

// newDTLSSession opens a DTLS session to the server over a socket that
// Rebind can replace under it, and runs the handshake.
func newDTLSSession(ctx context.Context, raddr, laddr *net.UDPAddr, cfg Config, serverHost string, f *faults, errs func(error)) (*session, error) {
	redial := func(ctx context.Context) (net.Conn, func() (net.Addr, error), error) {
		return dialDTLS(ctx, raddr, laddr, cfg, serverHost)
	}
	dc, rebinder, err := redial(ctx)
	if err != nil {
		return nil, err
	}
	sctx, scancel := context.WithCancel(context.Background())
	s := &session{raddr: raddr, laddr: laddr, maxSize: cfg.MaxMessageSize, errs: errs, cancel: scancel,
		done: make(chan struct{}), conn: dc, faults: f, rebinder: rebinder,
		dtls: &dtlsState{redial: redial, renewed: make(chan struct{})}}
	s.ctx.Store(&sctx)
	return s, nil
}

// dialDTLS runs a handshake with the server from a new socket and returns
// the DTLS connection and the function that rebinds its socket.
func dialDTLS(ctx context.Context, raddr, laddr *net.UDPAddr, cfg Config, serverHost string) (net.Conn, func() (net.Addr, error), error) {
	pc, err := newSwapConn(laddr)
	if err != nil {
		return nil, nil, err
	}
	d := cfg.DTLS
	dc, err := dtls.ClientWithOptions(pc, raddr, d.options(serverHost, &dtlslog.Factory{Log: cfg.Logger})...)
	if err != nil {
		_ = pc.Close()
		return nil, nil, fmt.Errorf("client: dtls %s: %w", raddr, err)
	}
	timeout := d.HandshakeTimeout
	if timeout == 0 {
		timeout = DefaultDTLSHandshakeTimeout
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := dc.HandshakeContext(hctx); err != nil {
		_ = dc.Close()
		return nil, nil, fmt.Errorf("client: dtls handshake with %s: %w", raddr, err)
	}
	return dc, pc.rebind, nil
}

// dtlsState is what a DTLS session needs to start over with a new
// handshake.
type dtlsState struct {
	redial  func(ctx context.Context) (net.Conn, func() (net.Addr, error), error)
	renewed chan struct{} // guarded by session.mu; closed and replaced by renew
}

// renew replaces the session's DTLS connection with a new one (a new
// handshake from a new socket) under go-coap's association, which keeps
// its state; the old connection is closed, which tells the server
// (close_notify).
func (s *session) renew(ctx context.Context) error {
	conn, rebinder, err := s.dtls.redial(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	old := s.conn
	s.conn, s.rebinder = conn, rebinder
	close(s.dtls.renewed)
	s.dtls.renewed = make(chan struct{})
	s.mu.Unlock()
	_ = old.Close() // wakes Run, which moves to the new connection
	return nil
}

// awaitRenew waits, after conn failed (the server closed the session or
// sent a fatal alert), until renew has replaced it or the session is
// closed; it reports whether Run should read on.
func (s *session) awaitRenew(conn net.Conn) bool {
	for {
		s.mu.Lock()
		cur, renewed := s.conn, s.dtls.renewed
		s.mu.Unlock()
		if cur != conn {
			return true
		}
		select {
		case <-renewed:
		case <-s.Context().Done():
			return false
		}
	}
}

// renewDTLS runs a new handshake before every Register but the first,
// whose handshake Start has just made: a client registers again when its
// registration is gone, after a reboot or when the server stopped
// answering, and then its DTLS session is likely gone too (a restarted
// server has forgotten it), as a device's would be.
func (c *Client) renewDTLS() error {
	if c.dtlsHost == "" || c.sess == nil || c.sess.dtls == nil {
		return nil
	}
	if !c.dtlsUsed.Swap(true) {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := c.sess.renew(ctx); err != nil {
		c.transportError(err)
		return err
	}
	c.log.Debug("dtls session renewed", "local", c.sess.LocalAddr().String())
	return nil
}

// swapConn is the packet socket under a client's DTLS connection: an
// unconnected UDP socket that rebind replaces with one on a new local
// port (a NAT rebinding) while pion's connection, and the DTLS session
// with its Connection ID, stay.
type swapConn struct {
	laddr *net.UDPAddr // requested local address; its IP is kept on rebind

	mu           sync.Mutex
	conn         *net.UDPConn
	readDeadline time.Time // applied to a new socket too: pion cancels reads with it
	closed       atomic.Bool
}

func newSwapConn(laddr *net.UDPAddr) (*swapConn, error) {
	conn, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, fmt.Errorf("client: listen %v: %w", laddr, err)
	}
	return &swapConn{laddr: laddr, conn: conn}, nil
}

func (c *swapConn) current() *net.UDPConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn
}

// ReadFrom reads from the current socket, moving to the new one when
// rebind closed the one it was reading.
func (c *swapConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		conn := c.current()
		n, addr, err := conn.ReadFrom(b)
		if err != nil && !c.closed.Load() && c.current() != conn {
			continue
		}
		return n, addr, err
	}
}

func (c *swapConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	conn := c.current()
	n, err := conn.WriteTo(b, addr)
	if err != nil && c.current() != conn {
		return c.current().WriteTo(b, addr)
	}
	return n, err
}

func (c *swapConn) Close() error {
	c.closed.Store(true)
	err := c.current().Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (c *swapConn) LocalAddr() net.Addr { return c.current().LocalAddr() }

func (c *swapConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *swapConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readDeadline = t
	return c.conn.SetReadDeadline(t)
}

func (c *swapConn) SetWriteDeadline(t time.Time) error { return c.current().SetWriteDeadline(t) }

// rebind moves to a new local port (same IP); the next record the client
// sends carries the Connection ID, by which the server finds the session
// and learns the new address (RFC 9146 §6).
func (c *swapConn) rebind() (net.Addr, error) {
	var laddr *net.UDPAddr
	if c.laddr != nil {
		laddr = &net.UDPAddr{IP: c.laddr.IP, Zone: c.laddr.Zone}
	}
	conn, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, fmt.Errorf("client: rebind: %w", err)
	}
	c.mu.Lock()
	old := c.conn
	c.conn = conn
	if !c.readDeadline.IsZero() {
		_ = conn.SetReadDeadline(c.readDeadline)
	}
	c.mu.Unlock()
	_ = old.Close() // wakes ReadFrom, which moves to the new socket
	return conn.LocalAddr(), nil
}

// useDTLS turns DTLS on for a coaps server URI, after checking the
// credentials.
func (c *Client) useDTLS(uri string) error {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "coaps" {
		return nil // serverAddress has checked the URI
	}
	if err := c.cfg.DTLS.check(uri); err != nil {
		return err
	}
	c.dtlsHost = u.Hostname()
	return nil
}
