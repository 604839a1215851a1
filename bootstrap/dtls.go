package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path"
	"time"

	"github.com/pion/dtls/v3"
	dtlsServer "github.com/plgd-dev/go-coap/v3/dtls/server"
	"github.com/plgd-dev/go-coap/v3/mux"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/pkg/runner/periodic"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/lwm2md/lwm2md/internal/dtlslog"
	"github.com/lwm2md/lwm2md/registry"
)

// ErrUnknownIdentity: a DTLS handshake named a PSK identity that is no
// factory credential (or a revoked one) and no device's credential.
var ErrUnknownIdentity = errors.New("bootstrap: unknown or revoked PSK identity")

// FactoryCredential is a bootstrap PSK that a batch of devices shares
// from the factory (provisioning by claim): any endpoint matching
// Endpoints (globs as path.Match; none: every endpoint) may bootstrap with
// it, and the configuration then gives each its own credential.
type FactoryCredential struct {
	Identity  string
	Key       []byte
	Endpoints []string
}

// The PSK suites of LwM2M (Transport 1.1 §5.2.8.1).
var pskSuites = []dtls.CipherSuiteID{dtls.TLS_PSK_WITH_AES_128_CCM_8, dtls.TLS_PSK_WITH_AES_128_CBC_SHA256}

// credentialTimeout bounds a registry lookup during a handshake.
const credentialTimeout = 5 * time.Second

// dtlsState is the DTLS side of the server.
type dtlsState struct {
	listener net.Listener
	coap     *dtlsServer.Server
	done     chan struct{}

	// Config.Factory by identity and Config.RevokedCAs by revocationKey,
	// fixed at start (the run-time revocations are in the Configs' store).
	factory map[string]FactoryCredential
	revoked map[string]bool
}

type dtlsListener struct{ net.Listener }

func (l dtlsListener) AcceptWithContext(ctx context.Context) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.Accept()
}

// checkDTLS checks the DTLS settings.
func (c *Config) checkDTLS() error {
	if c.DTLSAddr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.DTLSAddr); err != nil {
		return fmt.Errorf("bootstrap: Config.DTLSAddr %q: %w", c.DTLSAddr, err)
	}
	if err := c.checkX509(); err != nil {
		return err
	}
	if len(c.Factory) == 0 && c.DeviceCredentials == nil && !c.x509Enabled() {
		return fmt.Errorf("bootstrap: Config.DTLSAddr is set but there is neither a factory credential, DeviceCredentials nor a factory CA (Config.RootCAs)")
	}
	seen := make(map[string]bool)
	for i, f := range c.Factory {
		if f.Identity == "" || len(f.Key) == 0 {
			return fmt.Errorf("bootstrap: Config.Factory[%d]: identity and key are needed", i)
		}
		if seen[f.Identity] {
			return fmt.Errorf("bootstrap: Config.Factory[%d]: identity %q given twice", i, f.Identity)
		}
		seen[f.Identity] = true
		for _, g := range f.Endpoints {
			if _, err := path.Match(g, ""); err != nil {
				return fmt.Errorf("bootstrap: Config.Factory[%d].Endpoints: %q: %w", i, g, err)
			}
		}
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 15 * time.Second
	}
	return nil
}

// listenDTLS binds Config.DTLSAddr and serves the same routes as UDP.
func (s *Server) listenDTLS(ctx context.Context, router *mux.Router) error {
	d := &dtlsState{factory: make(map[string]FactoryCredential), revoked: make(map[string]bool)}
	for _, f := range s.cfg.Factory {
		d.factory[f.Identity] = f
	}
	for _, r := range s.cfg.RevokedCAs {
		d.revoked[revocationKey(r)] = true
	}
	s.dtls = d
	laddr, err := net.ResolveUDPAddr("udp", s.cfg.DTLSAddr)
	if err != nil {
		return fmt.Errorf("bootstrap: DTLSAddr %s: %w", s.cfg.DTLSAddr, err)
	}
	opts := []dtls.ServerOption{
		dtls.WithPSK(s.pskKey),
		dtls.WithCipherSuites(pskSuites...),
		dtls.WithExtendedMasterSecret(dtls.RequestExtendedMasterSecret),
		dtls.WithLoggerFactory(dtlslog.Factory{Log: s.log}),
	}
	if s.cfg.x509Enabled() {
		opts = append(opts, s.x509Options()...)
		opts = append(opts, dtls.WithCipherSuites(append(append([]dtls.CipherSuiteID{}, pskSuites...), certSuites...)...))
	}
	l, err := dtls.ListenWithOptions("udp", laddr, opts...)
	if err != nil {
		return fmt.Errorf("bootstrap: listen dtls %s: %w", s.cfg.DTLSAddr, err)
	}
	d.listener = l
	d.coap = dtlsServer.New(
		options.WithMux(router),
		options.WithErrors(s.transportError),
		options.WithMaxMessageSize(s.cfg.MaxMessageSize),
		options.WithPeriodicRunner(periodic.New(s.stop, time.Second)),
		options.WithInactivityMonitor(s.cfg.IdleTimeout, func(cc *udpClient.Conn) { _ = cc.Close() }),
		options.WithDTLSHandshakeTimeout(s.cfg.HandshakeTimeout),
		options.WithContext(ctx),
	)
	d.done = make(chan struct{})
	go func() {
		defer close(d.done)
		if err := d.coap.Serve(dtlsListener{l}); err != nil {
			s.log.Error("bootstrap dtls server stopped", "addr", l.Addr().String(), "err", err)
		}
	}()
	s.log.Info("bootstrap server listening (dtls)", "addr", l.Addr().String(), "factory_credentials", len(s.cfg.Factory), "x509", s.cfg.x509Enabled())
	return nil
}

func (d *dtlsState) stop() {
	d.coap.Stop()
	<-d.done
}

// DTLSAddr is the bound DTLS address, nil before Start or without DTLS.
func (s *Server) DTLSAddr() net.Addr {
	if !s.started.Load() || s.dtls == nil || s.dtls.listener == nil {
		return nil
	}
	return s.dtls.listener.Addr()
}

// pskKey is pion's PSK callback: a factory credential's key, else the key
// of the device whose credentials hold the identity.
func (s *Server) pskKey(identity []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), credentialTimeout)
	defer cancel()
	if f, ok := s.factoryCredential(ctx, string(identity)); ok {
		return f.Key, nil
	}
	if s.cfg.DeviceCredentials != nil {
		cr, err := s.cfg.DeviceCredentials.ByPSKIdentity(ctx, string(identity))
		if err == nil && len(cr.PSKKey) > 0 {
			return cr.PSKKey, nil
		}
		if err != nil && !errors.Is(err, registry.ErrNotFound) {
			s.log.Warn("bootstrap dtls: credential lookup", "err", err)
		}
	}
	s.log.Info("bootstrap dtls handshake refused", "identity", fmt.Sprintf("%q", identity))
	return nil, fmt.Errorf("%w: %q", ErrUnknownIdentity, identity)
}

// factoryCredential is the factory credential with that identity, unless
// it is revoked in the Configs' store, or the store cannot be read (a
// revocation must not be missed).
func (s *Server) factoryCredential(ctx context.Context, identity string) (FactoryCredential, bool) {
	f, ok := s.dtls.factory[identity]
	if !ok {
		return f, false
	}
	stored, err := s.storedRevocations(ctx)
	if err != nil || stored.factory[identity] {
		return FactoryCredential{}, false
	}
	return f, true
}

// authorize checks that the DTLS session a request came over may
// bootstrap endpoint ep: a factory credential whose patterns match it,
// or the device's own credential. A request over UDP (NoSec) passes.
func (s *Server) authorize(ctx context.Context, cc mux.Conn, ep string) error {
	dc, ok := cc.NetConn().(*dtls.Conn)
	if !ok {
		return nil
	}
	state, ok := dc.ConnectionState()
	if !ok {
		return fmt.Errorf("bootstrap: dtls handshake not finished")
	}
	if len(state.PeerCertificates) > 0 {
		return s.authorizeCert(ctx, state.PeerCertificates, ep)
	}
	identity := string(state.IdentityHint)
	if f, ok := s.factoryCredential(ctx, identity); ok {
		if len(f.Endpoints) == 0 {
			return nil
		}
		for _, g := range f.Endpoints {
			if m, _ := path.Match(g, ep); m {
				return nil
			}
		}
		return fmt.Errorf("bootstrap: factory credential %q is not for endpoint %q", identity, ep)
	}
	if s.cfg.DeviceCredentials != nil {
		cr, err := s.cfg.DeviceCredentials.ByPSKIdentity(ctx, identity)
		if err == nil && cr.Endpoint == ep {
			return nil
		}
	}
	return fmt.Errorf("bootstrap: PSK identity %q may not bootstrap endpoint %q (revoked, or another device's)", identity, ep)
}
