package server

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/bolt"
)

// boltCredentials opens a registry store in a temporary directory with an
// encryption key (PSK keys are sealed at rest) and returns its
// credentials.
func boltCredentials(t testing.TB) registry.Credentials {
	t.Helper()
	ciph, err := registry.NewCipher([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := bolt.Open(t.TempDir(), bolt.Options{Cipher: ciph})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store.Credentials()
}

func TestRegistryCredentials(t *testing.T) {
	pki := newPKI(t)
	pinned := pki.issue(t, "pinned-dev", false)
	other := pki.issue(t, "pinned-dev", false) // same CN, not the pinned one
	bound := pki.issue(t, "cn-says-this", false)
	free := pki.issue(t, "cn-dev", false)
	noCN := pki.issue(t, "", false)
	store := boltCredentials(t)
	c := context.Background()
	for _, cr := range []*registry.Credential{
		{Endpoint: "psk-dev", PSKIdentity: "id-1", PSKKey: registry.Secret("key-1")},
		{Endpoint: "pinned-dev", Certificates: []registry.CertBinding{{Fingerprint: fingerprint(pinned.Leaf)}}},
		{Endpoint: "bound-dev", Certificates: []registry.CertBinding{{Fingerprint: fingerprint(bound.Leaf)}}},
	} {
		if err := store.Put(c, cr); err != nil {
			t.Fatal(err)
		}
	}
	creds := NewRegistryCredentials(store)

	t.Run("psk", func(t *testing.T) {
		ep, key, err := creds.PSK(c, []byte("id-1"))
		if err != nil || ep != "psk-dev" || string(key) != "key-1" {
			t.Fatalf("%q %q %v", ep, key, err)
		}
		for _, id := range []string{"id-2", ""} {
			if _, _, err := creds.PSK(c, []byte(id)); !errors.Is(err, ErrUnknownCredentials) {
				t.Errorf("identity %q: %v", id, err)
			}
		}
	})
	certs := []struct {
		name string
		cert []byte
		ep   string // "" when refused
	}{
		{"pinned by fingerprint", pinned.Certificate[0], "pinned-dev"},
		{"fingerprint wins over CN", bound.Certificate[0], "bound-dev"},
		{"CN of an endpoint without pinned certificates", free.Certificate[0], "cn-dev"},
		{"CN of an endpoint that pins others", other.Certificate[0], ""},
		{"no CN", noCN.Certificate[0], ""},
	}
	for _, tt := range certs {
		t.Run(tt.name, func(t *testing.T) {
			leaf := mustParse(t, tt.cert)
			ep, err := creds.Certificate(c, leaf)
			if tt.ep == "" {
				if !errors.Is(err, ErrUnknownCredentials) {
					t.Fatalf("ep %q err %v, want ErrUnknownCredentials", ep, err)
				}
				return
			}
			if err != nil || ep != tt.ep {
				t.Fatalf("ep %q err %v, want %q", ep, err, tt.ep)
			}
		})
	}
	t.Run("secured", func(t *testing.T) {
		for ep, want := range map[string]bool{"psk-dev": true, "pinned-dev": true, "nosec-dev": false} {
			if got, err := creds.Secured(c, ep); err != nil || got != want {
				t.Errorf("%s: %v %v, want %v", ep, got, err, want)
			}
		}
	})
}

// TestDTLSRegistryEndToEnd: the key a handshake uses comes from the
// registry (sealed at rest), and a key changed there applies to the next
// handshake.
func TestDTLSRegistryEndToEnd(t *testing.T) {
	store := boltCredentials(t)
	c := context.Background()
	if err := store.Put(c, &registry.Credential{Endpoint: "reg-dev", PSKIdentity: "reg-id", PSKKey: registry.Secret("registry-key-001")}); err != nil {
		t.Fatal(err)
	}
	s := newDTLSServer(t, NewRegistryCredentials(store), nil)
	sub := s.Subscribe(16)
	startDTLSEngine(t, s, "reg-dev", client.DTLSConfig{PSKIdentity: "reg-id", PSKKey: []byte("registry-key-001")}, nil)
	waitEvent(t, sub, EventRegistered)

	if err := store.Put(c, &registry.Credential{Endpoint: "reg-dev", PSKIdentity: "reg-id", PSKKey: registry.Secret("registry-key-002")}); err != nil {
		t.Fatal(err)
	}
	old, err := newDTLSEngine(t, s, "reg-dev", client.DTLSConfig{PSKIdentity: "reg-id", PSKKey: []byte("registry-key-001"), HandshakeTimeout: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Start(ctx(t)); err == nil {
		t.Fatal("the replaced key still works")
	}
	startDTLSEngine(t, s, "reg-dev", client.DTLSConfig{PSKIdentity: "reg-id", PSKKey: []byte("registry-key-002")}, nil)
	if e := waitEvent(t, sub, EventRegistered); e.Previous == nil {
		t.Fatalf("the re-registration did not replace the first: %+v", e)
	}
}

func mustParse(t testing.TB, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
