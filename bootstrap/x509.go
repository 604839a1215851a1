package bootstrap

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/mux"

	"github.com/lwm2md/lwm2md/registry"
)

// X.509 on the bootstrap DTLS port (LwM2M Transport 1.1 §5.2.8.4, the
// Certificate mode): devices leave the factory with a certificate issued
// by a factory CA (Config.RootCAs). A certificate may bootstrap one
// endpoint: the one a registry binding gives it (its fingerprint in
// Config.DeviceCredentials), else the one its subject's Common Name names.
// Provisioning by claim then either binds that certificate to the endpoint
// in the registry (Security.KeepCertificate), so that the LwM2M server's
// handshake accepts it, or gives the device a PSK (Security.GeneratePSK).

// ErrRevokedCA: a device certificate chains only through revoked factory
// CAs.
var ErrRevokedCA = errors.New("bootstrap: the certificate's factory CA is revoked")

// certSuites are the ECDHE_ECDSA suites LwM2M makes mandatory for the
// Certificate mode.
var certSuites = []dtls.CipherSuiteID{dtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}

// checkX509 checks the certificate settings.
func (c *Config) checkX509() error {
	for i, r := range c.RevokedCAs {
		if strings.TrimSpace(r) == "" {
			return fmt.Errorf("bootstrap: Config.RevokedCAs[%d] is empty", i)
		}
	}
	if len(c.Certificate.Certificate) == 0 {
		if c.RootCAs != nil {
			return fmt.Errorf("bootstrap: Config.RootCAs is set but Config.Certificate is not: the certificate suites need the server's own certificate")
		}
		return nil
	}
	if c.RootCAs == nil {
		return fmt.Errorf("bootstrap: Config.Certificate is set but Config.RootCAs is nil: device certificates could not be verified")
	}
	if _, ok := c.Certificate.PrivateKey.(*ecdsa.PrivateKey); !ok {
		// The LwM2M certificate suites are ECDHE_ECDSA.
		return fmt.Errorf("bootstrap: Config.Certificate: the private key must be ECDSA, not %T", c.Certificate.PrivateKey)
	}
	return nil
}

// x509Enabled reports whether the DTLS port takes certificates.
func (c *Config) x509Enabled() bool { return len(c.Certificate.Certificate) > 0 }

// revocationKey is how a revoked CA is kept: a fingerprint in lower-case
// hex, or a subject as written.
func revocationKey(s string) string {
	s = strings.TrimSpace(s)
	if fp, err := registry.NormalizeFingerprint(s); err == nil {
		return fp
	}
	return s
}

// x509Options are pion's options for the certificate suites.
func (s *Server) x509Options() []dtls.ServerOption {
	return []dtls.ServerOption{
		dtls.WithCertificates(s.cfg.Certificate),
		// RequireAndVerifyClientCert would refuse the PSK handshakes too;
		// requireCertificate makes the certificate suites need one.
		dtls.WithClientAuth(dtls.VerifyClientCertIfGiven),
		dtls.WithClientCAs(s.cfg.RootCAs),
		dtls.WithVerifyPeerCertificate(s.verifyDevice),
		dtls.WithVerifyConnection(requireCertificate),
	}
}

// requireCertificate fails a handshake on a certificate suite without a
// client certificate: the Certificate mode authenticates both sides.
func requireCertificate(st *dtls.State) error {
	for _, id := range certSuites {
		if st.CipherSuiteID == id && len(st.PeerCertificates) == 0 {
			return fmt.Errorf("bootstrap: dtls: the certificate mode needs a client certificate")
		}
	}
	return nil
}

// verifyDevice runs after pion verified the chains against RootCAs: a
// certificate whose every chain passes through a revoked CA fails the
// handshake.
func (s *Server) verifyDevice(_ [][]byte, chains [][]*x509.Certificate) error {
	if len(chains) == 0 {
		return fmt.Errorf("bootstrap: dtls: no verified client certificate")
	}
	ctx, cancel := context.WithTimeout(context.Background(), credentialTimeout)
	defer cancel()
	if err := s.checkRevoked(ctx, chains); err != nil {
		s.log.Info("bootstrap dtls handshake refused", "subject", chains[0][0].Subject.String(), "err", err)
		return err
	}
	return nil
}

// checkRevoked passes when some chain has no revoked CA, by
// Config.RevokedCAs or by the Configs' store. A store that cannot be read
// fails the check: a revocation must not be missed.
func (s *Server) checkRevoked(ctx context.Context, chains [][]*x509.Certificate) error {
	stored, err := s.storedRevocations(ctx)
	if err != nil {
		return err
	}
	revoked := func(k string) bool { return s.dtls.revoked[k] || stored.cas[k] }
	var hit string
	for _, chain := range chains {
		bad := ""
		for _, ca := range chain[1:] {
			if revoked(ca.Subject.String()) {
				bad = ca.Subject.String()
				break
			}
			if fp := fingerprint(ca.Raw); revoked(fp) {
				bad = fp
				break
			}
		}
		if bad == "" {
			return nil
		}
		hit = bad
	}
	return fmt.Errorf("%w: %s", ErrRevokedCA, hit)
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// peerCertificate is the certificate the DTLS session of cc was opened
// with; nil over UDP or with a PSK.
func peerCertificate(cc mux.Conn) *x509.Certificate {
	dc, ok := cc.NetConn().(*dtls.Conn)
	if !ok {
		return nil
	}
	st, ok := dc.ConnectionState()
	if !ok || len(st.PeerCertificates) == 0 {
		return nil
	}
	cert, err := x509.ParseCertificate(st.PeerCertificates[0])
	if err != nil {
		return nil
	}
	return cert
}

// authorizeCert checks that a session opened with a certificate may
// bootstrap ep: the chain is verified again (a CA revoked since the
// handshake no longer counts), then the certificate must be bound to ep
// in the registry, or, bound nowhere, have ep as its Common Name.
func (s *Server) authorizeCert(ctx context.Context, raw [][]byte, ep string) error {
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return fmt.Errorf("bootstrap: client certificate: %w", err)
	}
	inter := x509.NewCertPool()
	for _, der := range raw[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: s.cfg.RootCAs, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return fmt.Errorf("bootstrap: certificate %q: %w", leaf.Subject.String(), err)
	}
	if err := s.checkRevoked(ctx, chains); err != nil {
		return err
	}
	fp := fingerprint(leaf.Raw)
	if s.cfg.DeviceCredentials != nil {
		cr, err := s.cfg.DeviceCredentials.ByCertificate(ctx, fp)
		switch {
		case err == nil && cr.Endpoint == ep:
			return nil
		case err == nil:
			return fmt.Errorf("bootstrap: certificate %s is bound to another endpoint and may not bootstrap %q", fp, ep)
		case !errors.Is(err, registry.ErrNotFound):
			return fmt.Errorf("bootstrap: certificate %s: %w", fp, err)
		}
	}
	if leaf.Subject.CommonName != ep {
		return fmt.Errorf("bootstrap: certificate with CN %q may not bootstrap endpoint %q", leaf.Subject.CommonName, ep)
	}
	return nil
}

// certBinding is the registry binding of a device's certificate.
func certBinding(c *x509.Certificate) registry.CertBinding {
	return registry.CertBinding{Fingerprint: fingerprint(c.Raw), Subject: c.Subject.String(), Certificate: c.Raw}
}
