package server

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/message/codes"
)

// countingCredentials count the PSK lookups of the Credentials they wrap.
type countingCredentials struct {
	Credentials
	psk atomic.Int64
}

func (c *countingCredentials) PSK(ctx context.Context, identity []byte) (string, []byte, error) {
	c.psk.Add(1)
	return c.Credentials.PSK(ctx, identity)
}

// TestDTLSPSKOneLookup: a PSK handshake reads the credentials once (pion's
// key callback); the session is bound to the endpoint found then, and a
// failed handshake's lookup does not outlive HandshakeTimeout.
func TestDTLSPSKOneLookup(t *testing.T) {
	mem := newMemCredentials()
	mem.addPSK("id-a", "ep-a", []byte("key-a-0123456789"))
	creds := &countingCredentials{Credentials: mem}
	s := newDTLSServer(t, creds, nil)

	cc := rawDTLS(t, s, "id-a", []byte("key-a-0123456789"))
	if code, _ := rawRegister(t, cc, "ep-a"); code != codes.Created {
		t.Fatalf("register ep-a: %v", code)
	}
	if n := creds.psk.Load(); n != 1 {
		t.Fatalf("%d PSK lookups for one handshake, want 1", n)
	}
	if n := s.dtls.psk.size(); n != 0 {
		t.Fatalf("%d PSK lookups kept after the handshake, want 0", n)
	}

	// A wrong key fails the handshake after the lookup: its entry stays
	// until the periodic sweep passes HandshakeTimeout.
	bad, err := dtls.Dial("udp", s.DTLSAddr().(*net.UDPAddr), &dtls.Config{
		PSK:             func([]byte) ([]byte, error) { return []byte("wrong-key-456789"), nil },
		PSKIdentityHint: []byte("id-a"),
		CipherSuites:    []dtls.CipherSuiteID{dtls.TLS_PSK_WITH_AES_128_CCM_8},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	c, cancel := context.WithTimeout(ctx(t), 2*time.Second)
	defer cancel()
	if err := bad.HandshakeContext(c); err == nil {
		t.Fatal("handshake with a wrong key succeeded")
	}
	if n := s.dtls.psk.size(); n != 1 {
		t.Fatalf("%d PSK lookups kept after a failed handshake, want 1", n)
	}
	s.dtls.psk.sweep(time.Now().Add(time.Second))
	if n := s.dtls.psk.size(); n != 0 {
		t.Fatalf("%d PSK lookups kept after the sweep, want 0", n)
	}
}

func TestPSKBindings(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name   string
		do     func(b *pskBindings)
		take   string
		wantEP string
		wantOK bool
	}{
		{"remembered", func(b *pskBindings) { b.remember([]byte("id"), "ep", t0) }, "id", "ep", true},
		{"unknown", func(b *pskBindings) { b.remember([]byte("id"), "ep", t0) }, "other", "", false},
		{"taken once", func(b *pskBindings) {
			b.remember([]byte("id"), "ep", t0)
			b.take([]byte("id"))
		}, "id", "", false},
		{"newest lookup", func(b *pskBindings) {
			b.remember([]byte("id"), "ep-old", t0)
			b.remember([]byte("id"), "ep-new", t0.Add(time.Second))
		}, "id", "ep-new", true},
		{"swept", func(b *pskBindings) {
			b.remember([]byte("id"), "ep", t0)
			b.sweep(t0.Add(time.Nanosecond))
		}, "id", "", false},
		{"younger than the cutoff", func(b *pskBindings) {
			b.remember([]byte("id"), "ep", t0)
			b.sweep(t0)
		}, "id", "ep", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b pskBindings
			tt.do(&b)
			ep, ok := b.take([]byte(tt.take))
			if ep != tt.wantEP || ok != tt.wantOK {
				t.Fatalf("take(%q) = %q, %v; want %q, %v", tt.take, ep, ok, tt.wantEP, tt.wantOK)
			}
		})
	}
}
