package client

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/server"
)

// pskCredentials are server.Credentials with one PSK per endpoint.
type pskCredentials map[string]struct {
	ep  string
	key []byte
}

func (p pskCredentials) PSK(_ context.Context, identity []byte) (string, []byte, error) {
	e, ok := p[string(identity)]
	if !ok {
		return "", nil, fmt.Errorf("%q: %w", identity, server.ErrUnknownCredentials)
	}
	return e.ep, e.key, nil
}

func (p pskCredentials) Certificate(_ context.Context, c *x509.Certificate) (string, error) {
	sum := sha256.Sum256(c.Raw)
	return "", fmt.Errorf("%s: %w", hex.EncodeToString(sum[:]), server.ErrUnknownCredentials)
}

func (p pskCredentials) Secured(_ context.Context, ep string) (bool, error) {
	for _, e := range p {
		if e.ep == ep {
			return true, nil
		}
	}
	return false, nil
}

// newDTLSServer starts an lwm2md server with DTLS only.
func newDTLSServer(t testing.TB, creds server.Credentials) *server.Server {
	t.Helper()
	return newServer(t, func(c *server.Config) {
		c.UDPAddr = ""
		c.DTLSAddr = "127.0.0.1:0"
		c.Credentials = creds
	})
}

func dtlsClient(t testing.TB, s *server.Server, ep string, d DTLSConfig, mut func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		Endpoint:  ep,
		ServerURI: "coaps://" + s.DTLSAddr().String(),
		LocalAddr: "127.0.0.1:0",
		Lifetime:  60 * time.Second,
		Models:    testModels,
		DTLS:      d,
		Logger:    testLogger(t, "client"),
	}
	if mut != nil {
		mut(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestDTLSRebind: over DTLS with a Connection ID, Rebind keeps the
// session: the Update after it goes through, the server reaches the
// device at its new address, and no new handshake happens.
func TestDTLSRebind(t *testing.T) {
	s := newDTLSServer(t, pskCredentials{"id-r": {"rebind-dev", []byte("rebind-key-16byt")}})
	c := dtlsClient(t, s, "rebind-dev", DTLSConfig{PSKIdentity: "id-r", PSKKey: []byte("rebind-key-16byt")}, nil)
	if err := c.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		before := c.LocalAddr().String()
		if err := c.Rebind(ctx(t)); err != nil {
			t.Fatalf("rebind %d: %v", i, err)
		}
		if c.LocalAddr().String() == before {
			t.Fatalf("rebind %d kept %s", i, before)
		}
		// The registration's Addr may lag one Update behind (pion moves the
		// address after delivering the record); the Read below must reach
		// the device on its new socket, the old one being closed.
		n, err := s.Read(ctx(t), "rebind-dev", objects.MustParsePath("/3/0/2"))
		if err != nil {
			t.Fatalf("read after rebind %d: %v", i, err)
		}
		if r, ok := n.(*objects.Resource); !ok || r.Value.Str() != "rebind-dev" {
			t.Fatalf("serial %#v", n)
		}
	}
	if st := s.Stats(); st.Associations != 1 {
		t.Fatalf("%d associations: the session did not survive", st.Associations)
	}
	if st := c.Stats(); st.Registrations != 1 || st.Updates != 3 {
		t.Fatalf("client stats %+v", st)
	}
}

// TestDTLSRebindWithoutCID is the control: without a Connection ID the
// server cannot tell the moved device's records from a stranger's, and
// the Update after the rebind gets no answer.
func TestDTLSRebindWithoutCID(t *testing.T) {
	s := newDTLSServer(t, pskCredentials{"id-n": {"nocid-dev", []byte("nocid-key-16byte")}})
	c := dtlsClient(t, s, "nocid-dev", DTLSConfig{PSKIdentity: "id-n", PSKKey: []byte("nocid-key-16byte"), DisableConnectionID: true},
		func(c *Config) { c.AckTimeout, c.MaxRetransmit = 100*time.Millisecond, 1 })
	if err := c.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := c.Rebind(ctx(t)); err == nil {
		t.Fatal("the Update after a rebind went through without a Connection ID")
	}
}

func TestDTLSConfigCheck(t *testing.T) {
	cert := &tls.Certificate{}
	tests := []struct {
		name string
		uri  string
		d    DTLSConfig
		want string
	}{
		{"coaps without credentials", "coaps://127.0.0.1", DTLSConfig{}, "neither a PSK nor a certificate"},
		{"identity without key", "coaps://127.0.0.1", DTLSConfig{PSKIdentity: "x"}, "both PSKIdentity and PSKKey"},
		{"psk and certificate", "coaps://127.0.0.1", DTLSConfig{PSKIdentity: "x", PSKKey: []byte("k"), Certificate: cert}, "not both"},
		{"certificate without trust store", "coaps://127.0.0.1", DTLSConfig{Certificate: cert}, "RootCAs"},
		{"other scheme", "http://127.0.0.1", DTLSConfig{}, "coap or coaps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{Endpoint: "cfg-dev", ServerURI: tt.uri, DTLS: tt.d})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	c, err := New(Config{Endpoint: "cfg-dev", ServerURI: "coaps://127.0.0.1", DTLS: DTLSConfig{PSKIdentity: "x", PSKKey: []byte("k")}})
	if err != nil {
		t.Fatal(err)
	}
	if a := c.ServerAddr().(*net.UDPAddr); a.Port != 5684 {
		t.Fatalf("default coaps port %d, want 5684", a.Port)
	}
}

// TestDTLSHandshakeFails: a wrong key is Start's error, and the client
// can be closed afterwards.
func TestDTLSHandshakeFails(t *testing.T) {
	s := newDTLSServer(t, pskCredentials{"id-w": {"wrong-dev", []byte("right-key-16byte")}})
	c := dtlsClient(t, s, "wrong-dev", DTLSConfig{PSKIdentity: "id-w", PSKKey: []byte("wrong-key-16byte"), HandshakeTimeout: 2 * time.Second}, nil)
	err := c.Start(ctx(t))
	if err == nil || !strings.Contains(err.Error(), "handshake") {
		t.Fatalf("err = %v, want a handshake error", err)
	}
	if err := c.Close(); err != nil && !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}

// TestDTLSServerRestart: a restarted server has forgotten the session; the
// client's Update gets no answer, and its next Register runs a new
// handshake.
func TestDTLSServerRestart(t *testing.T) {
	creds := pskCredentials{"id-s": {"restart-dev", []byte("restart-key-16by")}}
	s1 := newDTLSServer(t, creds)
	addr := s1.DTLSAddr().String()
	c := dtlsClient(t, s1, "restart-dev", DTLSConfig{PSKIdentity: "id-s", PSKKey: []byte("restart-key-16by")},
		func(c *Config) {
			c.AckTimeout, c.MaxRetransmit = 100*time.Millisecond, 1
			c.Retry = RetryPolicy{Count: 5, Timer: 100 * time.Millisecond, SequenceCount: 1, SequenceDelay: time.Second}
		})
	if err := c.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	_ = s1.Close()
	s2 := newServer(t, func(sc *server.Config) {
		sc.UDPAddr = ""
		sc.DTLSAddr = addr
		sc.Credentials = creds
	})
	sub := s2.Subscribe(8)
	if err := c.TriggerUpdate(ctx(t)); err == nil {
		t.Fatal("an Update over the forgotten session got through")
	}
	select {
	case e := <-sub.C:
		if e.Kind != server.EventRegistered || e.Endpoint != "restart-dev" {
			t.Fatalf("%+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the client did not register with the restarted server")
	}
	if _, err := s2.Read(ctx(t), "restart-dev", objects.MustParsePath("/3/0/2")); err != nil {
		t.Fatal(err)
	}
}
