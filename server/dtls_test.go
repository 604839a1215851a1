package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	coapdtls "github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/options"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/objects"
)

// memCredentials are test Credentials: PSK identities and certificate
// fingerprints, each bound to an endpoint; certificates listed nowhere are
// refused (no Common Name rule, which RegistryCredentials adds).
type memCredentials struct {
	mu    sync.Mutex
	psk   map[string]pskEntry
	certs map[string]string // SHA-256 hex -> endpoint
}

type pskEntry struct {
	endpoint string
	key      []byte
}

func newMemCredentials() *memCredentials {
	return &memCredentials{psk: map[string]pskEntry{}, certs: map[string]string{}}
}

func (m *memCredentials) addPSK(identity, endpoint string, key []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.psk[identity] = pskEntry{endpoint, key}
}

func (m *memCredentials) addCert(cert *x509.Certificate, endpoint string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.certs[fingerprint(cert)] = endpoint
}

func (m *memCredentials) PSK(_ context.Context, identity []byte) (string, []byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.psk[string(identity)]
	if !ok {
		return "", nil, fmt.Errorf("identity %q: %w", identity, ErrUnknownCredentials)
	}
	return e.endpoint, e.key, nil
}

func (m *memCredentials) Certificate(_ context.Context, cert *x509.Certificate) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ep, ok := m.certs[fingerprint(cert)]
	if !ok {
		return "", fmt.Errorf("certificate %s: %w", cert.Subject, ErrUnknownCredentials)
	}
	return ep, nil
}

func (m *memCredentials) Secured(_ context.Context, endpoint string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.psk {
		if e.endpoint == endpoint {
			return true, nil
		}
	}
	for _, ep := range m.certs {
		if ep == endpoint {
			return true, nil
		}
	}
	return false, nil
}

func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// testPKI is a CA issuing ECDSA certificates for a test.
type testPKI struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "lwm2md test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testPKI{cert: cert, key: key, pool: pool}
}

var serial = struct {
	sync.Mutex
	n int64
}{n: 100}

// issue returns a certificate for cn signed by the CA: a server one (for
// 127.0.0.1) or a client one.
func (p *testPKI) issue(t testing.TB, cn string, server bool) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial.Lock()
	serial.n++
	sn := serial.n
	serial.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(sn),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// newDTLSServer starts a server with only a DTLS listener (NoSec off).
func newDTLSServer(t testing.TB, creds Credentials, mut func(*Config)) *testServer {
	t.Helper()
	return newServer(t, func(c *Config) {
		c.UDPAddr = ""
		c.DTLSAddr = "127.0.0.1:0"
		c.Credentials = creds
		if mut != nil {
			mut(c)
		}
	})
}

// startDTLSEngine starts a client engine over DTLS and waits until it is
// registered.
func startDTLSEngine(t testing.TB, s *testServer, ep string, d client.DTLSConfig, mut func(*client.Config)) *client.Client {
	t.Helper()
	c, err := newDTLSEngine(t, s, ep, d, mut)
	if err != nil {
		t.Fatal(err)
	}
	c2, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(c2); err != nil {
		t.Fatalf("start %s: %v", ep, err)
	}
	return c
}

func newDTLSEngine(t testing.TB, s *testServer, ep string, d client.DTLSConfig, mut func(*client.Config)) (*client.Client, error) {
	t.Helper()
	cfg := client.Config{
		Endpoint:  ep,
		ServerURI: "coaps://" + s.DTLSAddr().String(),
		LocalAddr: "127.0.0.1:0",
		Version:   "1.1",
		Lifetime:  60 * time.Second,
		Models:    testModels,
		DTLS:      d,
		Device:    client.DeviceInfo{Manufacturer: "lwm2md", Battery: 87},
		Retry:     client.RetryPolicy{Count: 1, Timer: time.Second, SequenceCount: 1, SequenceDelay: time.Second},
	}
	if mut != nil {
		mut(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, nil
}

// exerciseDevice runs every kind of exchange over the device's session:
// Read, Write, Observe with a notification, and the device's Send.
func exerciseDevice(t *testing.T, s *testServer, c *client.Client, sub *Subscription, ep string) {
	t.Helper()
	n, err := s.Read(ctx(t), ep, path("/3/0/0"))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if r, ok := n.(*objects.Resource); !ok || r.Value.Str() != "lwm2md" {
		t.Fatalf("read /3/0/0 = %#v", n)
	}
	res := objects.NewSingle(14, objects.StringValue("+02:00"))
	if err := s.Write(ctx(t), ep, path("/3/0/14"), &res, true); err != nil {
		t.Fatalf("write: %v", err)
	}
	if v, _ := c.Object(3).Get(path("/3/0/14")); v.Str() != "+02:00" {
		t.Fatalf("after write, the device has /3/0/14 = %q", v.Str())
	}
	o, _, err := s.Observe(ctx(t), ep, path("/3/0/9"))
	if err != nil {
		t.Fatalf("observe: %v", err)
	}
	if err := c.Object(3).Set(path("/3/0/9"), objects.IntegerValue(42)); err != nil {
		t.Fatal(err)
	}
	for {
		e := waitEvent(t, sub, EventNotification)
		if e.Token != o.Token {
			continue
		}
		if r, ok := e.Node.(*objects.Resource); !ok || r.Value.Int() != 42 {
			t.Fatalf("notification %#v", e.Node)
		}
		break
	}
	if err := c.Send(ctx(t), path("/3/0/9")); err != nil {
		t.Fatalf("send: %v", err)
	}
	if e := waitEvent(t, sub, EventSend); e.Endpoint != ep || len(e.Records) != 1 {
		t.Fatalf("send event %+v", e)
	}
}

func TestDTLSPSK(t *testing.T) {
	for _, suite := range []dtls.CipherSuiteID{dtls.TLS_PSK_WITH_AES_128_CCM_8, dtls.TLS_PSK_WITH_AES_128_CBC_SHA256} {
		t.Run(suite.String(), func(t *testing.T) {
			creds := newMemCredentials()
			creds.addPSK("id-psk", "psk-dev", []byte("0123456789abcdef"))
			s := newDTLSServer(t, creds, nil)
			if s.Addr() != nil {
				t.Fatalf("UDP address %v with UDP off", s.Addr())
			}
			sub := s.Subscribe(64)
			c := startDTLSEngine(t, s, "psk-dev", client.DTLSConfig{
				PSKIdentity: "id-psk", PSKKey: []byte("0123456789abcdef"), CipherSuites: []dtls.CipherSuiteID{suite},
			}, nil)
			e := waitEvent(t, sub, EventRegistered)
			if e.Endpoint != "psk-dev" {
				t.Fatalf("%+v", e)
			}
			exerciseDevice(t, s, c, sub, "psk-dev")
			if err := c.TriggerUpdate(ctx(t)); err != nil {
				t.Fatalf("update: %v", err)
			}
			waitEvent(t, sub, EventUpdated)
			if err := c.Close(); err != nil { // de-registers
				t.Fatal(err)
			}
			waitEvent(t, sub, EventDeregistered)
		})
	}
}

func TestDTLSX509(t *testing.T) {
	pki := newPKI(t)
	creds := newMemCredentials()
	devCert := pki.issue(t, "x509-dev", false)
	creds.addCert(devCert.Leaf, "x509-dev")
	creds.addPSK("id-mixed", "mixed-dev", []byte("mixed-key-16byte"))
	s := newDTLSServer(t, creds, func(c *Config) {
		c.Certificate = pki.issue(t, "lwm2md", true)
		c.RootCAs = pki.pool
	})
	sub := s.Subscribe(64)
	for _, suite := range []dtls.CipherSuiteID{dtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256} {
		t.Run(suite.String(), func(t *testing.T) {
			c := startDTLSEngine(t, s, "x509-dev", client.DTLSConfig{
				Certificate: &devCert, RootCAs: pki.pool, CipherSuites: []dtls.CipherSuiteID{suite},
			}, nil)
			waitEvent(t, sub, EventRegistered)
			exerciseDevice(t, s, c, sub, "x509-dev")
			_ = c.Close()
			waitEvent(t, sub, EventDeregistered)
		})
	}
	t.Run("psk beside x509", func(t *testing.T) {
		c := startDTLSEngine(t, s, "mixed-dev", client.DTLSConfig{PSKIdentity: "id-mixed", PSKKey: []byte("mixed-key-16byte")}, nil)
		waitEvent(t, sub, EventRegistered)
		if _, err := s.Read(ctx(t), "mixed-dev", path("/3/0/0")); err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
	})
	t.Run("certificate from another CA", func(t *testing.T) {
		other := newPKI(t)
		cert := other.issue(t, "x509-dev", false)
		c, err := newDTLSEngine(t, s, "x509-dev", client.DTLSConfig{Certificate: &cert, RootCAs: pki.pool, HandshakeTimeout: 3 * time.Second}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(ctx(t)); err == nil {
			t.Fatal("a certificate from an untrusted CA was accepted")
		}
	})
	t.Run("trusted certificate bound to no endpoint", func(t *testing.T) {
		cert := pki.issue(t, "stranger", false)
		c, err := newDTLSEngine(t, s, "stranger", client.DTLSConfig{Certificate: &cert, RootCAs: pki.pool, HandshakeTimeout: 3 * time.Second}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(ctx(t)); err == nil {
			t.Fatal("a certificate bound to no endpoint was accepted")
		}
	})
	t.Run("no client certificate", func(t *testing.T) {
		// A peer offering only the certificate suites without a
		// certificate: the server requires one.
		cc, err := coapdtls.Dial(s.DTLSAddr().String(), &dtls.Config{
			RootCAs: pki.pool, ServerName: "127.0.0.1",
			CipherSuites: []dtls.CipherSuiteID{dtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8},
		}, options.WithErrors(func(error) {}))
		if err == nil {
			defer cc.Close()
			c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if code, _, _ := rawRegisterCtx(c, cc, "x509-dev"); code != 0 {
				t.Fatalf("a handshake without a client certificate got through: %v", code)
			}
		}
	})
}

// TestDTLSRefused covers the handshakes that must fail: nothing is
// registered and the server keeps serving.
func TestDTLSRefused(t *testing.T) {
	creds := newMemCredentials()
	creds.addPSK("id-good", "good-dev", []byte("good-key-16bytes"))
	s := newDTLSServer(t, creds, nil)
	tests := []struct {
		name string
		d    client.DTLSConfig
	}{
		{"wrong key", client.DTLSConfig{PSKIdentity: "id-good", PSKKey: []byte("bad-key-16bytes!")}},
		{"unknown identity", client.DTLSConfig{PSKIdentity: "id-nobody", PSKKey: []byte("good-key-16bytes")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.d.HandshakeTimeout = 3 * time.Second
			c, err := newDTLSEngine(t, s, "good-dev", tt.d, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Start(ctx(t)); err == nil {
				t.Fatal("handshake succeeded")
			}
			if st := s.Stats(); st.Registrations != 0 {
				t.Fatalf("%d registrations", st.Registrations)
			}
		})
	}
	startDTLSEngine(t, s, "good-dev", client.DTLSConfig{PSKIdentity: "id-good", PSKKey: []byte("good-key-16bytes")}, nil)
	if _, err := s.Read(ctx(t), "good-dev", path("/3/0/0")); err != nil {
		t.Fatal(err)
	}
}

// rawDTLS opens a go-coap DTLS association with a PSK.
func rawDTLS(t testing.TB, s *testServer, identity string, key []byte) *udpClient.Conn {
	t.Helper()
	cc, err := coapdtls.Dial(s.DTLSAddr().String(), &dtls.Config{
		PSK:                   func([]byte) ([]byte, error) { return key, nil },
		PSKIdentityHint:       []byte(identity),
		CipherSuites:          []dtls.CipherSuiteID{dtls.TLS_PSK_WITH_AES_128_CCM_8},
		ConnectionIDGenerator: dtls.OnlySendCIDGenerator(),
	}, options.WithErrors(func(error) {}))
	if err != nil {
		t.Fatalf("dtls dial: %v", err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func rawRegister(t testing.TB, cc *udpClient.Conn, ep string) (codes.Code, string) {
	t.Helper()
	code, loc, err := rawRegisterCtx(ctx(t), cc, ep)
	if err != nil {
		t.Fatalf("register %s: %v", ep, err)
	}
	return code, loc
}

// rawRegisterCtx sends a Register of ep; the code is 0 when no answer came.
func rawRegisterCtx(ctx context.Context, cc *udpClient.Conn, ep string) (codes.Code, string, error) {
	resp, err := cc.Post(ctx, "/rd", message.AppLinkFormat, bytes.NewReader([]byte("</3/0>")),
		message.Option{ID: message.URIQuery, Value: []byte("ep=" + ep)},
		message.Option{ID: message.URIQuery, Value: []byte("lwm2m=1.1")})
	if err != nil {
		return 0, "", err
	}
	loc, _ := resp.Options().LocationPath()
	return resp.Code(), loc, nil
}

// TestDTLSSecurityBinding: a session may only register, update and
// de-register the endpoint its credentials are bound to; NoSec may not
// touch an endpoint with DTLS credentials.
func TestDTLSSecurityBinding(t *testing.T) {
	creds := newMemCredentials()
	creds.addPSK("id-a", "ep-a", []byte("key-a-0123456789"))
	creds.addPSK("id-c", "ep-c", []byte("key-c-0123456789"))
	s := newServer(t, func(c *Config) {
		c.DTLSAddr = "127.0.0.1:0"
		c.Credentials = creds
	})
	sub := s.Subscribe(64)
	a := rawDTLS(t, s, "id-a", []byte("key-a-0123456789"))
	if code, _ := rawRegister(t, a, "ep-b"); code != codes.Forbidden {
		t.Fatalf("identity of ep-a registering ep-b: %v, want 4.03", code)
	}
	code, loc := rawRegister(t, a, "ep-a")
	if code != codes.Created {
		t.Fatalf("register ep-a: %v", code)
	}
	waitEvent(t, sub, EventRegistered)
	if !bytes.Contains([]byte(s.logs.String()), []byte("register refused: security binding")) {
		t.Errorf("no log line for the refused Register")
	}

	// Another DTLS session, bound to ep-c, on ep-a's registration.
	c := rawDTLS(t, s, "id-c", []byte("key-c-0123456789"))
	resp, err := c.Post(ctx(t), loc, message.TextPlain, nil, message.Option{ID: message.URIQuery, Value: []byte("lt=5")})
	if err != nil || resp.Code() != codes.Forbidden {
		t.Fatalf("update from ep-c's session: %v %v, want 4.03", resp, err)
	}
	resp, err = c.Delete(ctx(t), loc)
	if err != nil || resp.Code() != codes.Forbidden {
		t.Fatalf("de-register from ep-c's session: %v %v, want 4.03", resp, err)
	}

	// NoSec: the same registration, and a Register of an endpoint with
	// DTLS credentials.
	p := newRawPeer(t, s)
	if m := p.request(codes.POST, loc, []string{"lt=5"}, -1, nil); m.Code != codes.Forbidden {
		t.Fatalf("update over NoSec: %v, want 4.03", m.Code)
	}
	if m := p.request(codes.POST, "/rd", []string{"ep=ep-a"}, int(message.AppLinkFormat), []byte("</3/0>")); m.Code != codes.Forbidden {
		t.Fatalf("register of a DTLS endpoint over NoSec: %v, want 4.03", m.Code)
	}
	if m := p.request(codes.POST, "/rd", []string{"ep=nosec-dev"}, int(message.AppLinkFormat), []byte("</3/0>")); m.Code != codes.Created {
		t.Fatalf("register of a NoSec endpoint: %v, want 2.01", m.Code)
	}
	reg, err := s.Registration(ctx(t), "ep-a")
	if err != nil || reg.Lifetime != DefaultLifetime {
		t.Fatalf("ep-a changed: %+v %v", reg, err)
	}
	if n := s.Stats().SecurityRefused; n != 5 {
		t.Errorf("Stats.SecurityRefused = %d, want 5", n)
	}
	noEvent(t, sub, EventUpdated, 100*time.Millisecond)

	// ep-a's own session still updates and de-registers it.
	resp, err = a.Post(ctx(t), loc, message.TextPlain, nil, message.Option{ID: message.URIQuery, Value: []byte("lt=120")})
	if err != nil || resp.Code() != codes.Changed {
		t.Fatalf("own update: %v %v", resp, err)
	}
	resp, err = a.Delete(ctx(t), loc)
	if err != nil || resp.Code() != codes.Deleted {
		t.Fatalf("own de-register: %v %v", resp, err)
	}
}

// TestDTLSConnectionID: the device moves to a new source port (a NAT
// rebinding) without a new handshake; the server follows it for requests,
// notifications and Send.
func TestDTLSConnectionID(t *testing.T) {
	creds := newMemCredentials()
	creds.addPSK("id-cid", "cid-dev", []byte("cid-key-16bytes!"))
	s := newDTLSServer(t, creds, nil)
	sub := s.Subscribe(64)
	c := startDTLSEngine(t, s, "cid-dev", client.DTLSConfig{PSKIdentity: "id-cid", PSKKey: []byte("cid-key-16bytes!")}, nil)
	waitEvent(t, sub, EventRegistered)
	o, _, err := s.Observe(ctx(t), "cid-dev", path("/3/0/9"))
	if err != nil {
		t.Fatal(err)
	}
	before := c.LocalAddr().String()
	if err := c.Rebind(ctx(t)); err != nil {
		t.Fatal(err)
	}
	after := c.LocalAddr().String()
	if before == after {
		t.Fatalf("rebind kept %s", before)
	}
	// The Update's registration usually has the new address, but not
	// always: pion moves the session's address only after it has handed
	// the record to go-coap (see docs/server.md, "DTLS"), so what counts is
	// that the session goes on.
	waitEvent(t, sub, EventUpdated)
	if st := s.Stats(); st.Associations != 1 {
		t.Fatalf("%d associations after the rebind, want the one session", st.Associations)
	}
	if _, err := s.Read(ctx(t), "cid-dev", path("/3/0/0")); err != nil {
		t.Fatalf("read after rebind: %v", err)
	}
	// A second move; the notification and the Send travel over the moved
	// session (TestDTLSFollowsAddressWithoutUpdate covers a move that no
	// Update follows).
	if err := c.Rebind(ctx(t)); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, sub, EventUpdated)
	if err := c.Object(3).Set(path("/3/0/9"), objects.IntegerValue(7)); err != nil {
		t.Fatal(err)
	}
	for {
		e := waitEvent(t, sub, EventNotification)
		if e.Token == o.Token {
			break
		}
	}
	if err := c.Send(ctx(t), path("/3/0/9")); err != nil {
		t.Fatalf("send after rebind: %v", err)
	}
	waitEvent(t, sub, EventSend)
	if st := s.Stats(); st.ForeignNotify != 0 || st.Associations != 1 {
		t.Fatalf("stats after rebinds: %+v", st)
	}
}

// TestDTLSIdleFollowsLifetime: a registered device's session outlives
// go-coap's 16 s default and the server's IdleTimeout; a session that
// never registers closes after IdleTimeout.
func TestDTLSIdleFollowsLifetime(t *testing.T) {
	creds := newMemCredentials()
	creds.addPSK("id-idle", "idle-dev", []byte("idle-key-16byte!"))
	creds.addPSK("id-quiet", "quiet-dev", []byte("quiet-key-16byte"))
	s := newDTLSServer(t, creds, func(c *Config) { c.IdleTimeout = 500 * time.Millisecond })
	startDTLSEngine(t, s, "idle-dev", client.DTLSConfig{PSKIdentity: "id-idle", PSKKey: []byte("idle-key-16byte!")}, nil)
	rawDTLS(t, s, "id-quiet", []byte("quiet-key-16byte"))
	eventually(t, 3*time.Second, "unregistered session closed", func() bool { return s.Stats().Associations == 1 })
	time.Sleep(1500 * time.Millisecond) // three idle timeouts
	if st := s.Stats(); st.Associations != 1 {
		t.Fatalf("%d associations", st.Associations)
	}
	if _, err := s.Read(ctx(t), "idle-dev", path("/3/0/0")); err != nil {
		t.Fatalf("read after the idle time: %v", err)
	}
}

// TestDTLSAssociationCap: beyond MaxAssociations, handshakes are refused,
// counted and logged; the sessions held keep working.
func TestDTLSAssociationCap(t *testing.T) {
	creds := newMemCredentials()
	creds.addPSK("id-1", "cap-1", []byte("cap-key-1-16byte"))
	creds.addPSK("id-2", "cap-2", []byte("cap-key-2-16byte"))
	s := newDTLSServer(t, creds, func(c *Config) { c.MaxAssociations = 1 })
	startDTLSEngine(t, s, "cap-1", client.DTLSConfig{PSKIdentity: "id-1", PSKKey: []byte("cap-key-1-16byte")}, nil)
	c, err := newDTLSEngine(t, s, "cap-2", client.DTLSConfig{PSKIdentity: "id-2", PSKKey: []byte("cap-key-2-16byte"), HandshakeTimeout: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx(t)); err == nil {
		t.Fatal("a session beyond the cap was accepted")
	}
	if st := s.Stats(); st.AssociationsRefused == 0 || st.Associations != 1 {
		t.Fatalf("stats %+v", st)
	}
	if !bytes.Contains([]byte(s.logs.String()), []byte("association cap reached")) {
		t.Error("no log line for the cap")
	}
	if _, err := s.Read(ctx(t), "cap-1", path("/3/0/0")); err != nil {
		t.Fatal(err)
	}
}

// TestDTLSSessionGone: requests to a DTLS device whose session closed fail
// with ErrNoDTLSSession rather than going out over NoSec.
func TestDTLSSessionGone(t *testing.T) {
	creds := newMemCredentials()
	creds.addPSK("id-gone", "gone-dev", []byte("gone-key-16byte!"))
	s := newServer(t, func(c *Config) {
		c.DTLSAddr = "127.0.0.1:0"
		c.Credentials = creds
	})
	sub := s.Subscribe(16)
	cc := rawDTLS(t, s, "id-gone", []byte("gone-key-16byte!"))
	if code, _ := rawRegister(t, cc, "gone-dev"); code != codes.Created {
		t.Fatal(code)
	}
	waitEvent(t, sub, EventRegistered)
	_ = cc.Close()
	eventually(t, 3*time.Second, "session closed on the server", func() bool { return s.Stats().Associations == 0 })
	if _, err := s.Read(ctx(t), "gone-dev", path("/3/0/0")); !errors.Is(err, ErrNoDTLSSession) {
		t.Fatalf("err = %v, want ErrNoDTLSSession", err)
	}
}

func TestDTLSConfig(t *testing.T) {
	pki := newPKI(t)
	cert := pki.issue(t, "srv", true)
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no listener", Config{}},
		{"dtls without credentials", Config{DTLSAddr: "127.0.0.1:0"}},
		{"bad dtls address", Config{DTLSAddr: "nowhere", Credentials: newMemCredentials()}},
		{"certificate without trust store", Config{DTLSAddr: "127.0.0.1:0", Credentials: newMemCredentials(), Certificate: cert}},
		{"negative handshake timeout", Config{DTLSAddr: "127.0.0.1:0", Credentials: newMemCredentials(), HandshakeTimeout: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// TestDTLSGarbage: datagrams that are not DTLS, truncated records and a
// flood of half handshakes leave the listener serving its devices.
func TestDTLSGarbage(t *testing.T) {
	creds := newMemCredentials()
	creds.addPSK("id-g", "garbage-dev", []byte("garbage-key-16by"))
	s := newDTLSServer(t, creds, func(c *Config) { c.HandshakeTimeout = time.Second })
	startDTLSEngine(t, s, "garbage-dev", client.DTLSConfig{PSKIdentity: "id-g", PSKKey: []byte("garbage-key-16by")}, nil)
	conn, err := net.Dial("udp", s.DTLSAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	junk := [][]byte{
		{},
		[]byte("GET /rd HTTP/1.1\r\n\r\n"),
		{0x40, 0x01, 0x00, 0x01}, // plain CoAP
		{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff},                                    // handshake header claiming 64 KiB
		{25, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 0, 4, 1, 2, 3, 4},      // CID record with an unknown CID
		{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 1, 0, 0, 200, 0, 0, 0, 0, 0, 0, 0, 200}, // truncated ClientHello
	}
	for i := 0; i < 50; i++ {
		for _, b := range junk {
			if _, err := conn.Write(b); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, p := range []string{"/3/0/0", "/3/0/2"} {
		if _, err := s.Read(ctx(t), "garbage-dev", path(p)); err != nil {
			t.Fatalf("read %s after the garbage: %v", p, err)
		}
	}
	c2 := rawDTLS(t, s, "id-g", []byte("garbage-key-16by"))
	if code, _ := rawRegister(t, c2, "garbage-dev"); code != codes.Created {
		t.Fatalf("a new session after the garbage: %v", code)
	}
}
