package bootstrap_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/bootstrap"
	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/server"
)

// testCA issues ECDSA certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

var serialNo atomic.Int64

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serialNo.Add(1)), Subject: pkix.Name{CommonName: name, Organization: []string{"lwm2md test"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

// issue returns a device certificate for cn, or a server certificate for
// 127.0.0.1.
func (ca *testCA) issue(t *testing.T, cn string, serverCert bool) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serialNo.Add(1)), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if serverCert {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func pool(cas ...*testCA) *x509.CertPool {
	p := x509.NewCertPool()
	for _, ca := range cas {
		p.AddCert(ca.cert)
	}
	return p
}

func certFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// TestX509Claim is provisioning by claim with a factory CA: devices
// bootstrap over DTLS with certificates their factory CA issued, as the
// endpoint their certificate names, and either keep the certificate (the
// bootstrap server binds it to the endpoint in the registry) or get a
// unique PSK, then register over DTLS to the LwM2M server with what they
// were given. A certificate of another CA, a spoofed endpoint and a
// revoked CA are refused.
func TestX509Claim(t *testing.T) {
	store := openStore(t)
	serverCA := newCA(t, "lwm2md servers")
	factory1, factory2, rogue := newCA(t, "Factory CA 1"), newCA(t, "Factory CA 2"), newCA(t, "Rogue CA")
	bs := newBS(t, func(c *bootstrap.Config) {
		c.UDPAddr = ""
		c.DTLSAddr = "127.0.0.1:0"
		c.Certificate = serverCA.issue(t, "bootstrap", true)
		c.RootCAs = pool(factory1, factory2)
		c.Credentials = store.Credentials()
		c.DeviceCredentials = store.Credentials()
		c.StatusStore = store.Tags()
		c.HandshakeTimeout = 2 * time.Second
	})
	dm := newDM(t, func(c *server.Config) {
		c.UDPAddr = ""
		c.DTLSAddr = "127.0.0.1:0"
		c.Certificate = serverCA.issue(t, "dm", true)
		c.RootCAs = pool(factory1, factory2)
		c.Credentials = server.NewRegistryCredentials(store.Credentials())
		c.HandshakeTimeout = 2 * time.Second
	})
	keep := account("coaps://"+dm.DTLSAddr().String(), 1, 100)
	keep.Security = bootstrap.Security{Mode: bootstrap.ModeX509, KeepCertificate: true}
	psk := account("coaps://"+dm.DTLSAddr().String(), 1, 100)
	psk.Security = bootstrap.Security{Mode: bootstrap.ModePSK, GeneratePSK: true}
	if err := bs.Configs().SetTemplates(ctxT(t), []bootstrap.Template{
		{Name: "keep", Endpoints: []string{"keep-*"}, Config: bootstrap.Configuration{Servers: []bootstrap.ServerAccount{keep}}},
		{Name: "psk", Endpoints: []string{"psk-*"}, Config: bootstrap.Configuration{Servers: []bootstrap.ServerAccount{psk}}},
	}); err != nil {
		t.Fatal(err)
	}
	device := func(ep string, cert tls.Certificate) *client.Client {
		return newDevice(t, ep, "1.1", bs, func(c *client.Config) {
			c.BootstrapURI = "coaps://" + bs.DTLSAddr().String()
			c.DTLS = client.DTLSConfig{Certificate: &cert, RootCAs: pool(serverCA), HandshakeTimeout: 2 * time.Second}
		})
	}

	t.Run("keep the certificate", func(t *testing.T) {
		cert := factory1.issue(t, "keep-1", false)
		if err := device("keep-1", cert).Start(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if _, err := dm.Registration(ctxT(t), "keep-1"); err != nil {
			t.Fatal(err)
		}
		cr, err := store.Credentials().ByCertificate(ctxT(t), certFingerprint(cert.Certificate[0]))
		if err != nil || cr.Endpoint != "keep-1" || cr.PSKIdentity != "" || len(cr.Certificates) != 1 || cr.Certificates[0].Subject != "CN=keep-1" {
			t.Fatalf("credential %+v %v", cr, err)
		}
		// The server records the end after the device's answer to
		// BS-Finish, which may come after the device registered.
		deadline := time.Now().Add(10 * time.Second)
		for {
			tags, err := store.Tags().Get(ctxT(t), "keep-1")
			if err == nil && tags[bootstrap.TagState] == bootstrap.TagOK && tags[bootstrap.TagSource] == "template:keep" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("status tags %v %v", tags, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("Bootstrap-Pack", func(t *testing.T) {
		cert := factory1.issue(t, "keep-pack", false)
		c := newDevice(t, "keep-pack", "1.2", bs, func(c *client.Config) {
			c.BootstrapURI = "coaps://" + bs.DTLSAddr().String()
			c.BootstrapPack = true
			c.DTLS = client.DTLSConfig{Certificate: &cert, RootCAs: pool(serverCA), HandshakeTimeout: 2 * time.Second}
		})
		if err := c.Start(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if _, err := dm.Registration(ctxT(t), "keep-pack"); err != nil {
			t.Fatal(err)
		}
		if cr, err := store.Credentials().ByCertificate(ctxT(t), certFingerprint(cert.Certificate[0])); err != nil || cr.Endpoint != "keep-pack" {
			t.Fatalf("credential %+v %v", cr, err)
		}
	})
	t.Run("generated PSK", func(t *testing.T) {
		if err := device("psk-1", factory2.issue(t, "psk-1", false)).Start(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if _, err := dm.Registration(ctxT(t), "psk-1"); err != nil {
			t.Fatal(err)
		}
		cr, err := store.Credentials().Get(ctxT(t), "psk-1")
		if err != nil || cr.PSKIdentity != "psk-1" || len(cr.PSKKey) != 16 || len(cr.Certificates) != 0 {
			t.Fatalf("credential %+v %v", cr, err)
		}
	})
	t.Run("spoofed endpoint", func(t *testing.T) {
		var ce *client.CoAPError
		err := device("keep-3", factory1.issue(t, "keep-2", false)).Start(ctxT(t))
		if !errors.As(err, &ce) || ce.Code != 0x83 {
			t.Fatalf("want 4.03, got %v", err)
		}
		st, ok := bs.Status("keep-3")
		if !ok || st.State != bootstrap.StateFailed || st.Step != bootstrap.StepRequest {
			t.Fatalf("status %+v", st)
		}
		// keep-3 has a configuration (the keep-* template): the refusal
		// is in the registry.
		if tags, err := store.Tags().Get(ctxT(t), "keep-3"); err != nil || tags[bootstrap.TagState] != bootstrap.TagFailed || tags[bootstrap.TagStep] != bootstrap.StepRequest || !strings.Contains(tags[bootstrap.TagReason], "CN") {
			t.Fatalf("stored status %v %v", tags, err)
		}
	})
	t.Run("another certificate with the same CN", func(t *testing.T) {
		// keep-1's certificate is pinned to keep-1 in the registry: a new
		// certificate of the same factory CA naming keep-1 does not open
		// the LwM2M server as keep-1.
		other := factory1.issue(t, "keep-1", false)
		c, err := client.New(client.Config{Endpoint: "keep-1", ServerURI: "coaps://" + dm.DTLSAddr().String(),
			DTLS:       client.DTLSConfig{Certificate: &other, RootCAs: pool(serverCA), HandshakeTimeout: time.Second},
			AckTimeout: 200 * time.Millisecond, MaxRetransmit: 1, Retry: client.RetryPolicy{Count: 1, SequenceCount: 1}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Start(ctxT(t)); err == nil {
			t.Fatal("another certificate with the same CN registered as keep-1")
		}
	})
	t.Run("wrong CA", func(t *testing.T) {
		err := device("keep-4", rogue.issue(t, "keep-4", false)).Start(ctxT(t))
		if !errors.Is(err, client.ErrBootstrapFailed) {
			t.Fatalf("%v", err)
		}
		if _, ok := bs.Status("keep-4"); ok {
			t.Error("a refused handshake left a status")
		}
	})
	t.Run("revoked by fingerprint", func(t *testing.T) {
		fp := certFingerprint(factory2.cert.Raw)
		r, added, err := bs.RevokeCA(ctxT(t), strings.ToUpper(fp))
		if err != nil || !added || r.CA != fp || r.Kind != bootstrap.RevokedByFingerprint || r.Source != bootstrap.RevokedInRegistry || r.RevokedAt.IsZero() {
			t.Fatalf("revocation %+v %v %v", r, added, err)
		}
		if again, added, err := bs.RevokeCA(ctxT(t), fp); err != nil || added || !again.RevokedAt.Equal(r.RevokedAt) {
			t.Errorf("revoked twice: %+v %v %v", again, added, err)
		}
		if err := device("psk-2", factory2.issue(t, "psk-2", false)).Start(ctxT(t)); !errors.Is(err, client.ErrBootstrapFailed) {
			t.Fatalf("%v", err)
		}
		if err := device("keep-5", factory1.issue(t, "keep-5", false)).Start(ctxT(t)); err != nil {
			t.Fatalf("the other CA was revoked too: %v", err)
		}
	})
	t.Run("revoked by subject", func(t *testing.T) {
		if _, added, err := bs.RevokeCA(ctxT(t), factory1.cert.Subject.String()); err != nil || !added {
			t.Fatalf("not revoked: %v", err)
		}
		if err := device("keep-6", factory1.issue(t, "keep-6", false)).Start(ctxT(t)); !errors.Is(err, client.ErrBootstrapFailed) {
			t.Fatalf("%v", err)
		}
		rs, err := bs.RevokedCAs(ctxT(t))
		if err != nil || len(rs) != 2 || rs[0].CA != certFingerprint(factory2.cert.Raw) || rs[1].CA != factory1.cert.Subject.String() || rs[1].Kind != bootstrap.RevokedBySubject {
			t.Fatalf("revoked CAs %+v %v", rs, err)
		}
	})
}

// TestRevokedCAShared: a CA revoked on one bootstrap server is kept in
// the registry: a second server on the same store refuses its
// certificates at the next handshake after its refresh, without a
// restart, and a server started afterwards lists it beside its own
// Config.RevokedCAs.
func TestRevokedCAShared(t *testing.T) {
	store := openStore(t)
	serverCA := newCA(t, "lwm2md servers")
	factory := newCA(t, "Factory CA")
	configs := bootstrap.NewConfigs(store.Bootstrap(), store.Tags())
	const refresh = 50 * time.Millisecond
	node := func(mut func(*bootstrap.Config)) *bootstrap.Server {
		return newBS(t, func(c *bootstrap.Config) {
			c.UDPAddr = ""
			c.DTLSAddr = "127.0.0.1:0"
			c.Certificate = serverCA.issue(t, "bootstrap", true)
			c.RootCAs = pool(factory)
			c.Configs = configs
			c.HandshakeTimeout = 2 * time.Second
			c.RevocationRefresh = refresh
			if mut != nil {
				mut(c)
			}
		})
	}
	a, b := node(nil), node(nil)
	dm := newDM(t, nil)
	if err := configs.SetTemplates(ctxT(t), []bootstrap.Template{
		{Name: "all", Config: bootstrap.Configuration{Servers: []bootstrap.ServerAccount{account("coap://"+dm.Addr().String(), 1, 100)}}},
	}); err != nil {
		t.Fatal(err)
	}
	device := func(bs *bootstrap.Server, ep string) error {
		cert := factory.issue(t, ep, false)
		return newDevice(t, ep, "1.1", bs, func(c *client.Config) {
			c.BootstrapURI = "coaps://" + bs.DTLSAddr().String()
			c.DTLS = client.DTLSConfig{Certificate: &cert, RootCAs: pool(serverCA), HandshakeTimeout: 2 * time.Second}
		}).Start(ctxT(t))
	}
	if err := device(b, "shared-1"); err != nil {
		t.Fatalf("before the revocation: %v", err)
	}
	if _, _, err := a.RevokeCA(ctxT(t), factory.cert.Subject.String()); err != nil {
		t.Fatal(err)
	}
	// b read the store at its last handshake; it reads it again once its
	// refresh has passed (a time to wait out, not an event to poll for).
	time.Sleep(2 * refresh)
	if err := device(b, "shared-2"); !errors.Is(err, client.ErrBootstrapFailed) {
		t.Fatalf("the other node after the revocation: %v", err)
	}

	c := node(func(c *bootstrap.Config) { c.RevokedCAs = []string{"CN=Old Factory"} })
	rs, err := c.RevokedCAs(ctxT(t))
	if err != nil || len(rs) != 2 || rs[0].CA != "CN=Old Factory" || rs[0].Source != bootstrap.RevokedInConfig ||
		rs[1].CA != factory.cert.Subject.String() || rs[1].Source != bootstrap.RevokedInRegistry {
		t.Fatalf("revoked CAs of a new node %+v %v", rs, err)
	}
	if _, added, err := c.RevokeCA(ctxT(t), " CN=Old Factory "); err != nil || added {
		t.Errorf("a CA of Config.RevokedCAs revoked again: %v %v", added, err)
	}
	if _, _, err := c.RevokeCA(ctxT(t), " "); err == nil {
		t.Error("an empty revocation was taken")
	}
	if err := device(c, "shared-3"); !errors.Is(err, client.ErrBootstrapFailed) {
		t.Fatalf("a new node: %v", err)
	}
}

// TestX509Config: the certificate settings are checked.
func TestX509Config(t *testing.T) {
	ca := newCA(t, "ca")
	cert := ca.issue(t, "bs", true)
	for _, tc := range []struct {
		name string
		cfg  bootstrap.Config
	}{
		{"roots without certificate", bootstrap.Config{DTLSAddr: "127.0.0.1:0", RootCAs: pool(ca)}},
		{"certificate without roots", bootstrap.Config{DTLSAddr: "127.0.0.1:0", Certificate: cert}},
		{"no private key", bootstrap.Config{DTLSAddr: "127.0.0.1:0", Certificate: tls.Certificate{Certificate: cert.Certificate}, RootCAs: pool(ca)}},
		{"empty revocation", bootstrap.Config{DTLSAddr: "127.0.0.1:0", Certificate: cert, RootCAs: pool(ca), RevokedCAs: []string{" "}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := bootstrap.New(tc.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := bootstrap.New(bootstrap.Config{DTLSAddr: "127.0.0.1:0", Certificate: cert, RootCAs: pool(ca), RevokedCAs: []string{"CN=ca"}}); err != nil {
		t.Fatalf("X.509 alone refused: %v", err)
	}
}

// TestKeepCertificateNeedsX509: a configuration that keeps the device's
// certificate fails the bootstrap, at the write step, for a device that
// came without one; and the configuration is checked.
func TestKeepCertificateNeedsX509(t *testing.T) {
	bs := newBS(t, nil)
	acc := account("coaps://127.0.0.1:9", 1, 100)
	acc.Security = bootstrap.Security{Mode: bootstrap.ModeX509, KeepCertificate: true}
	if err := bs.Configs().Put(ctxT(t), "nocert", &bootstrap.Configuration{Servers: []bootstrap.ServerAccount{acc}}); err != nil {
		t.Fatal(err)
	}
	sub := bs.Subscribe(64)
	// The device waits for a BS-Finish that does not come: it gives up
	// after its BootstrapTimeout.
	short := func(c *client.Config) { c.BootstrapTimeout = time.Second }
	if err := newDevice(t, "nocert", "1.1", bs, short).Start(ctxT(t)); !errors.Is(err, client.ErrBootstrapFailed) {
		t.Fatalf("%v", err)
	}
	es := events(t, sub, "nocert")
	if last := es[len(es)-1]; last.Kind != bootstrap.EventFailed || last.Step != bootstrap.StepWrite || !errors.Is(last.Err, bootstrap.ErrInvalidConfig) {
		t.Fatalf("%s: %+v", steps(es), last)
	}
	for _, s := range []bootstrap.Security{
		{Mode: bootstrap.ModePSK, KeepCertificate: true, GeneratePSK: true},
		{Mode: bootstrap.ModeX509, KeepCertificate: true, Certificate: []byte{1}, PrivateKey: []byte{2}},
	} {
		a := account("coaps://127.0.0.1:9", 1, 100)
		a.Security = s
		if err := bs.Configs().Put(ctxT(t), "bad", &bootstrap.Configuration{Servers: []bootstrap.ServerAccount{a}}); !errors.Is(err, bootstrap.ErrInvalidConfig) {
			t.Errorf("%+v: %v", s, err)
		}
	}
}

// TestStatusPersisted: the last bootstrap of each endpoint is kept in the
// registry (its tags) and read back by a new bootstrap server on the same
// store; an endpoint without a configuration leaves nothing there, and a
// sequence cut off by a stop reads as failed.
func TestStatusPersisted(t *testing.T) {
	store := openStore(t)
	dm := newDM(t, nil)
	cfg := func(c *bootstrap.Config) { c.StatusStore = store.Tags() }
	bs := newBS(t, cfg)
	good := &bootstrap.Configuration{Servers: []bootstrap.ServerAccount{account("coap://"+dm.Addr().String(), 1, 100)}}
	bad := &bootstrap.Configuration{Servers: []bootstrap.ServerAccount{{URI: "coap+tcp://127.0.0.1:9", ShortServerID: 3}}}
	if err := bs.Configs().Put(ctxT(t), "st-ok", good); err != nil {
		t.Fatal(err)
	}
	if err := bs.Configs().Put(ctxT(t), "st-bad", bad); err != nil {
		t.Fatal(err)
	}
	if err := newDevice(t, "st-ok", "1.1", bs, nil).Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := newDevice(t, "st-bad", "1.1", bs, nil).Start(ctxT(t)); !errors.Is(err, client.ErrBootstrapFailed) {
		t.Fatal(err)
	}
	if err := newDevice(t, "st-unknown", "1.1", bs, nil).Start(ctxT(t)); err == nil {
		t.Fatal("an endpoint without configuration bootstrapped")
	}
	// The device gives up on BS-Finish's 4.06 at once; the server records
	// the failure right after sending it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		tags, _ := store.Tags().Get(ctxT(t), "st-bad")
		if tags[bootstrap.TagState] == bootstrap.TagFailed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failure stored: %v", tags)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := bs.Close(); err != nil {
		t.Fatal(err)
	}
	if err := store.Tags().Set(ctxT(t), "st-cut", map[string]string{bootstrap.TagState: bootstrap.TagRunning, bootstrap.TagTime: time.Now().UTC().Format(time.RFC3339Nano)}); err != nil {
		t.Fatal(err)
	}

	again := newBS(t, cfg)
	for _, tc := range []struct {
		ep, state, step string
		code            uint8
	}{
		{"st-ok", bootstrap.StateFinished, bootstrap.StepFinish, 0},
		{"st-bad", bootstrap.StateFailed, bootstrap.StepFinish, 0x86},
		{"st-cut", bootstrap.StateFailed, "", 0},
	} {
		t.Run(tc.ep, func(t *testing.T) {
			st, ok := again.Status(tc.ep)
			if !ok || st.State != tc.state || st.Step != tc.step || st.Code != tc.code {
				t.Fatalf("status %+v %v", st, ok)
			}
			if st.State == bootstrap.StateFailed && st.Error == "" {
				t.Error("no reason")
			}
			if tc.ep != "st-cut" && (st.Ended.IsZero() || st.Started.IsZero() || st.Started.After(st.Ended) || st.Initiator != "client" || st.Source != "endpoint") {
				t.Errorf("status %+v", st)
			}
		})
	}
	if _, ok := again.Status("st-unknown"); ok {
		t.Error("an endpoint without configuration was stored")
	}
	// The attempts go on counting across the restart: a device that
	// bootstraps in a loop shows as such.
	if st, _ := again.Status("st-ok"); st.Attempts != 1 {
		t.Errorf("st-ok: %d attempts read back, want 1", st.Attempts)
	}
	if err := again.Configs().Put(ctxT(t), "st-ok", good); err != nil {
		t.Fatal(err)
	}
	if err := newDevice(t, "st-ok", "1.1", again, nil).Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// The server stores the end right after the device's last answer.
	deadline = time.Now().Add(10 * time.Second)
	for {
		tags, _ := store.Tags().Get(ctxT(t), "st-ok")
		if tags[bootstrap.TagAttempts] == "2" && tags[bootstrap.TagState] == bootstrap.TagOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored status after a bootstrap on the restarted server: %v, want 2 attempts", tags)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st, _ := again.Status("st-ok"); st.Attempts != 2 {
		t.Errorf("st-ok: %+v, want 2 attempts", st)
	}
	var eps []string
	for _, st := range again.Statuses() {
		eps = append(eps, st.Endpoint)
	}
	if got := strings.Join(eps, ","); got != "st-bad,st-cut,st-ok" {
		t.Errorf("Statuses: %s", got)
	}
}
