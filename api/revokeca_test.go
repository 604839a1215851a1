package api

import (
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
	"math/big"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/bootstrap"
	"github.com/lwm2md/lwm2md/client"
)

var certSerial atomic.Int64

// issue makes an ECDSA certificate for cn signed by parent (self-signed
// when parent is nil): a CA, a server certificate for 127.0.0.1, or a
// device's client certificate.
func issue(t *testing.T, cn string, parent *tls.Certificate, kind string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(certSerial.Add(1)), Subject: pkix.Name{CommonName: cn, Organization: []string{"lwm2md test"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	switch kind {
	case "ca":
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign|x509.KeyUsageDigitalSignature
	case "server":
		tmpl.ExtKeyUsage, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []net.IP{net.IPv4(127, 0, 0, 1)}
	default:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	signer, signKey := tmpl, any(key)
	if parent != nil {
		signer, signKey = parent.Leaf, parent.PrivateKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// TestRevokeCAThroughREST: a factory CA revoked through POST
// /bootstrap/revoked-cas refuses the next X.509 bootstrap handshake of a
// device it issued, is listed by GET, and is still revoked after the
// bootstrap server restarts on the same registry.
func TestRevokeCAThroughREST(t *testing.T) {
	store := openStore(t)
	serverCA := issue(t, "lwm2md servers", nil, "ca")
	factory1, factory2 := issue(t, "Factory CA 1", nil, "ca"), issue(t, "Factory CA 2", nil, "ca")
	factories := x509.NewCertPool()
	factories.AddCert(factory1.Leaf)
	factories.AddCert(factory2.Leaf)
	roots := x509.NewCertPool()
	roots.AddCert(serverCA.Leaf)
	start := func() *bootstrap.Server {
		bs, err := bootstrap.New(bootstrap.Config{
			DTLSAddr: "127.0.0.1:0", RequestTimeout: 5 * time.Second, HandshakeTimeout: 2 * time.Second,
			Certificate: issue(t, "bootstrap", &serverCA, "server"), RootCAs: factories,
			Configs: bootstrap.NewConfigs(store.Bootstrap(), store.Tags()),
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := bs.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return bs
	}
	bs := start()
	e := newEnv(t, func(c *Config) { c.Bootstrap = bs }, nil)
	e.expect(200, "PUT", "/api/v1/bootstrap/templates", `[{"name":"all","config":`+dmConfig("coap://"+e.srv.Addr().String(), 120)+`}]`, "application/json")
	device := func(bs *bootstrap.Server, ep string, ca *tls.Certificate) error {
		cert := issue(t, ep, ca, "device")
		c, err := client.New(client.Config{
			Endpoint: ep, Version: "1.1", BootstrapURI: "coaps://" + bs.DTLSAddr().String(), LocalAddr: "127.0.0.1:0",
			DTLS:       client.DTLSConfig{Certificate: &cert, RootCAs: roots, HandshakeTimeout: 2 * time.Second},
			AckTimeout: 200 * time.Millisecond, MaxRetransmit: 2, BootstrapTimeout: 5 * time.Second,
			Retry: client.RetryPolicy{Count: 1, SequenceCount: 1},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		return c.Start(ctx)
	}
	if err := device(bs, "rev-1", &factory1); err != nil {
		t.Fatalf("before the revocation: %v", err)
	}

	subject := factory1.Leaf.Subject.String()
	r := e.expect(201, "POST", "/api/v1/bootstrap/revoked-cas", `{"ca":"`+subject+`"}`, "application/json").json(t)
	if r["ca"] != subject || r["kind"] != "subject" || r["source"] != "registry" || r["revokedAt"] == nil {
		t.Fatalf("revocation %v", r)
	}
	if again := e.expect(200, "POST", "/api/v1/bootstrap/revoked-cas", `{"ca":"`+subject+`"}`, "application/json").json(t); again["revokedAt"] != r["revokedAt"] {
		t.Fatalf("a second revocation %v, want the first %v", again, r)
	}
	if err := device(bs, "rev-2", &factory1); !errors.Is(err, client.ErrBootstrapFailed) {
		t.Fatalf("a device of the revoked CA: %v", err)
	}
	if err := device(bs, "rev-3", &factory2); err != nil {
		t.Fatalf("a device of the other CA: %v", err)
	}
	// By fingerprint, in upper case with colons as tools print it.
	sum := sha256.Sum256(factory2.Leaf.Raw)
	fp := hex.EncodeToString(sum[:])
	var colons []string
	for i := 0; i < len(fp); i += 2 {
		colons = append(colons, strings.ToUpper(fp[i:i+2]))
	}
	r = e.expect(201, "POST", "/api/v1/bootstrap/revoked-cas", `{"ca":"`+strings.Join(colons, ":")+`"}`, "application/json").json(t)
	if r["ca"] != fp || r["kind"] != "fingerprint" {
		t.Fatalf("revocation by fingerprint %v", r)
	}
	for _, tc := range []struct{ body, field string }{
		{`{"ca":" "}`, "ca"},
		{`{"subject":"CN=x"}`, "body"},
		{`not json`, "body"},
	} {
		if p := e.do("POST", "/api/v1/bootstrap/revoked-cas", tc.body, "application/json").problem(t, 400); p["field"] != tc.field {
			t.Errorf("%s: problem %v, want field %s", tc.body, p, tc.field)
		}
	}

	// A restart: the new bootstrap server reads the revocations from the
	// registry.
	if err := bs.Close(); err != nil {
		t.Fatal(err)
	}
	bs2 := start()
	t.Cleanup(func() { _ = bs2.Close() })
	e2 := newEnv(t, func(c *Config) { c.Bootstrap = bs2 }, nil)
	list, _ := e2.expect(200, "GET", "/api/v1/bootstrap/revoked-cas", nil, "").json(t)["revokedCAs"].([]any)
	if len(list) != 2 || list[0].(map[string]any)["ca"] != subject || list[1].(map[string]any)["ca"] != fp {
		t.Fatalf("revoked CAs after the restart: %v", list)
	}
	if err := device(bs2, "rev-4", &factory1); !errors.Is(err, client.ErrBootstrapFailed) {
		t.Fatalf("a device of the revoked CA after the restart: %v", err)
	}
}
