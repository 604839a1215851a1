package registrytest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/registry"
)

func fingerprint(cert []byte) string {
	sum := sha256.Sum256(cert)
	return hex.EncodeToString(sum[:])
}

func pskCredential(ep, identity string, key []byte) *registry.Credential {
	return &registry.Credential{Endpoint: ep, PSKIdentity: identity, PSKKey: key}
}

func sameCredential(t testing.TB, got, want *registry.Credential) {
	t.Helper()
	if got.UpdatedAt.IsZero() {
		t.Fatalf("credentials of %q: no UpdatedAt", want.Endpoint)
	}
	g, w := *got, *want
	g.UpdatedAt, w.UpdatedAt = time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		// %x of a Secret is redacted: compare the bytes in hex by hand.
		t.Fatalf("credentials of %q differ:\n got %+v key %s\nwant %+v key %s", want.Endpoint,
			g, hex.EncodeToString(g.PSKKey), w, hex.EncodeToString(w.PSKKey))
	}
}

func testCredentials(t *testing.T, s registry.Store) {
	creds := s.Credentials()
	wantErr(t, errOf(creds.Get(ctx, "dev-a")), registry.ErrNotFound, "Get of unknown credentials")
	wantErr(t, errOf(creds.ByPSKIdentity(ctx, "nobody")), registry.ErrNotFound, "ByPSKIdentity of an unknown identity")

	certDER := []byte("not really DER, but bytes")
	fp := fingerprint(certDER)
	a := &registry.Credential{
		Endpoint: "dev-a", PSKIdentity: "dev-a-id", PSKKey: []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		Certificates: []registry.CertBinding{{Fingerprint: strings.ToUpper(fp), Subject: "CN=dev-a", Certificate: certDER}},
	}
	must(t, creds.Put(ctx, a))
	a.Certificates[0].Fingerprint = fp // Put normalizes
	for name, get := range map[string]func() (*registry.Credential, error){
		"Get":           func() (*registry.Credential, error) { return creds.Get(ctx, "dev-a") },
		"ByPSKIdentity": func() (*registry.Credential, error) { return creds.ByPSKIdentity(ctx, "dev-a-id") },
		"ByCertificate": func() (*registry.Credential, error) { return creds.ByCertificate(ctx, fp) },
		"ByCertificate with colons": func() (*registry.Credential, error) {
			var parts []string
			for i := 0; i < len(fp); i += 2 {
				parts = append(parts, strings.ToUpper(fp[i:i+2]))
			}
			return creds.ByCertificate(ctx, strings.Join(parts, ":"))
		},
	} {
		got, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sameCredential(t, got, a)
	}
	// Identities are case-sensitive (RFC 4279 compares octets).
	wantErr(t, errOf(creds.ByPSKIdentity(ctx, "DEV-A-ID")), registry.ErrNotFound, "ByPSKIdentity in another case")

	// A certificate-only device, and a PSK-only one.
	cert2 := []byte("second certificate")
	b := &registry.Credential{Endpoint: "dev-b", Certificates: []registry.CertBinding{{Fingerprint: fingerprint(cert2)}}}
	c := pskCredential("dev-c", "dev-c-id", bytes.Repeat([]byte{0xc3}, 32))
	must(t, creds.Put(ctx, b))
	must(t, creds.Put(ctx, c))
	got, err := creds.ByCertificate(ctx, fingerprint(cert2))
	must(t, err)
	sameCredential(t, got, b)

	// Changing an endpoint's identity frees the old one.
	a2 := pskCredential("dev-a", "dev-a-id2", []byte("sixteen byte key"))
	must(t, creds.Put(ctx, a2))
	wantErr(t, errOf(creds.ByPSKIdentity(ctx, "dev-a-id")), registry.ErrNotFound, "old identity after a change")
	wantErr(t, errOf(creds.ByCertificate(ctx, fp)), registry.ErrNotFound, "dropped certificate")
	got, err = creds.ByPSKIdentity(ctx, "dev-a-id2")
	must(t, err)
	sameCredential(t, got, a2)
	must(t, creds.Put(ctx, pskCredential("dev-d", "dev-a-id", []byte("another key 1234"))))

	list, err := creds.List(ctx, "", 0)
	must(t, err)
	var eps []string
	for _, c := range list {
		eps = append(eps, c.Endpoint)
	}
	if fmt.Sprint(eps) != "[dev-a dev-b dev-c dev-d]" {
		t.Fatalf("List: %v", eps)
	}
	list, err = creds.List(ctx, "dev-a", 2)
	must(t, err)
	if len(list) != 2 || list[0].Endpoint != "dev-b" || list[1].Endpoint != "dev-c" {
		t.Fatalf("List after dev-a, 2: %v", list)
	}
	sameCredential(t, list[1], c)

	// Delete frees the identity; deleting twice is fine.
	must(t, creds.Delete(ctx, "dev-c"))
	must(t, creds.Delete(ctx, "dev-c"))
	wantErr(t, errOf(creds.Get(ctx, "dev-c")), registry.ErrNotFound, "Get after Delete")
	wantErr(t, errOf(creds.ByPSKIdentity(ctx, "dev-c-id")), registry.ErrNotFound, "identity after Delete")
	must(t, creds.Put(ctx, pskCredential("dev-e", "dev-c-id", []byte("0123456789abcdef"))))
}

func testDuplicateIdentity(t *testing.T, s registry.Store) {
	creds := s.Credentials()
	a := pskCredential("dev-a", "shared", []byte("0123456789abcdef"))
	must(t, creds.Put(ctx, a))
	err := creds.Put(ctx, pskCredential("dev-b", "shared", []byte("fedcba9876543210")))
	wantErr(t, err, registry.ErrDuplicateIdentity, "second endpoint with the same PSK identity")
	wantErr(t, err, registry.ErrConflict, "duplicate identity is a conflict")
	if strings.Contains(err.Error(), "fedcba") || strings.Contains(err.Error(), "0123456789") {
		t.Fatalf("error message holds a key: %v", err)
	}
	// Nothing of the refused Put was written.
	wantErr(t, errOf(creds.Get(ctx, "dev-b")), registry.ErrNotFound, "refused credentials")
	got, err := creds.ByPSKIdentity(ctx, "shared")
	must(t, err)
	sameCredential(t, got, a)

	// The same for certificates, and for an existing endpoint: its old
	// credentials stay.
	cert := fingerprint([]byte("cert"))
	must(t, creds.Put(ctx, &registry.Credential{Endpoint: "dev-c", Certificates: []registry.CertBinding{{Fingerprint: cert}}}))
	err = creds.Put(ctx, &registry.Credential{Endpoint: "dev-a", PSKIdentity: "new", PSKKey: []byte("0123456789abcdef"),
		Certificates: []registry.CertBinding{{Fingerprint: cert}}})
	wantErr(t, err, registry.ErrDuplicateIdentity, "certificate of another endpoint")
	got, err = creds.Get(ctx, "dev-a")
	must(t, err)
	sameCredential(t, got, a)
	wantErr(t, errOf(creds.ByPSKIdentity(ctx, "new")), registry.ErrNotFound, "identity of a refused Put")
}

// testSecretsRedacted: a Secret never prints.
func testSecretsRedacted(t *testing.T, s registry.Store) {
	key := []byte("super-secret-key")
	c := pskCredential("dev-a", "dev-a-id", key)
	must(t, s.Credentials().Put(ctx, c))
	got, err := s.Credentials().Get(ctx, "dev-a")
	must(t, err)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("credential", "c", got, "key", got.PSKKey)
	js, _ := json.Marshal(got)
	for _, out := range []string{
		fmt.Sprintf("%v %+v %#v %s %x %q", got, got, got, got.PSKKey, got.PSKKey, got.PSKKey),
		fmt.Sprint(*got), logged.String(), string(js),
	} {
		if strings.Contains(out, string(key)) || strings.Contains(out, hex.EncodeToString(key)) ||
			strings.Contains(out, base64.StdEncoding.EncodeToString(key)) || strings.Contains(out, fmt.Sprint([]byte(key))) {
			t.Fatalf("key printed: %s", out)
		}
	}
	if !bytes.Equal(got.PSKKey, key) {
		t.Fatal("key changed")
	}
}

// testEncryptionAtRest: neither keys nor bootstrap configurations reach
// the disk in clear.
func testEncryptionAtRest(t *testing.T, s registry.Store) {
	d, ok := s.(RawDumper)
	if !ok {
		t.Skip("the store does not implement registrytest.RawDumper")
	}
	key := []byte("PSK-KEY-9f3b2c71")
	boot := `{"servers":[{"uri":"coaps://lwm2m.example:5684","secret":"BOOTSTRAP-SECRET-77a1"}]}`
	must(t, s.Credentials().Put(ctx, pskCredential("dev-secret", "dev-secret-id", key)))
	must(t, s.Bootstrap().Put(ctx, &registry.BootstrapConfig{Endpoint: "dev-secret", Config: json.RawMessage(boot)}))
	raw, err := d.RawDump(ctx)
	must(t, err)
	if !bytes.Contains(raw, []byte("dev-secret-id")) {
		t.Fatal("the dump does not hold the identity: is it the raw data?")
	}
	for _, secret := range [][]byte{
		key, []byte(hex.EncodeToString(key)), []byte(base64.StdEncoding.EncodeToString(key)),
		[]byte("BOOTSTRAP-SECRET-77a1"), []byte(base64.StdEncoding.EncodeToString([]byte(boot))[8:40]),
	} {
		if bytes.Contains(raw, secret) {
			t.Fatalf("%q is stored in clear", secret)
		}
	}
	got, err := s.Credentials().Get(ctx, "dev-secret")
	must(t, err)
	if !bytes.Equal(got.PSKKey, key) {
		t.Fatal("key does not read back")
	}
}

func testBootstrap(t *testing.T, s registry.Store) {
	b := s.Bootstrap()
	wantErr(t, errOf(b.Get(ctx, "dev-a")), registry.ErrNotFound, "unknown bootstrap configuration")
	cfg := json.RawMessage(`{"servers":[{"ssid":101,"uri":"coap://lwm2m.example"}]}`)
	must(t, b.Put(ctx, &registry.BootstrapConfig{Endpoint: "dev-a", Config: cfg}))
	got, err := b.Get(ctx, "dev-a")
	must(t, err)
	if got.Endpoint != "dev-a" || !bytes.Equal(got.Config, cfg) || got.UpdatedAt.IsZero() {
		t.Fatalf("got %+v (%s)", got, got.Config)
	}
	cfg2 := json.RawMessage(`{"servers":[]}`)
	must(t, b.Put(ctx, &registry.BootstrapConfig{Endpoint: "dev-a", Config: cfg2}))
	got, err = b.Get(ctx, "dev-a")
	must(t, err)
	if !bytes.Equal(got.Config, cfg2) {
		t.Fatalf("replaced: %s", got.Config)
	}
	wantErr(t, b.Put(ctx, &registry.BootstrapConfig{Endpoint: "dev-a", Config: json.RawMessage(`{"x":`)}), registry.ErrInvalid, "bad JSON")
	must(t, b.Delete(ctx, "dev-a"))
	must(t, b.Delete(ctx, "dev-a"))
	wantErr(t, errOf(b.Get(ctx, "dev-a")), registry.ErrNotFound, "deleted bootstrap configuration")
}
