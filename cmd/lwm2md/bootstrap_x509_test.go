package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/bootstrap"
	"github.com/lwm2md/lwm2md/internal/config"
)

// TestLoadBootstrapX509 checks bs-dtls-ca and bs-revoked-cas.
func TestLoadBootstrapX509(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certPEM := write("cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyPEM := write("key.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	empty := write("empty.pem", []byte("no certificate here\n"))

	for _, tc := range []struct {
		name string
		cfg  config.Config
		want string // error text; "" for none
		x509 bool
	}{
		{"off", config.Config{}, "", false},
		{"revoked only", config.Config{BSRevokedCAs: "CN=old; ; 00"}, "", false},
		{"ca without cert", config.Config{BSDTLSCA: certPEM}, "without dtls-cert", false},
		{"ca with no PEM", config.Config{BSDTLSCA: empty, DTLSCert: certPEM, DTLSKey: keyPEM}, "bs-dtls-ca", false},
		{"key mismatch", config.Config{BSDTLSCA: certPEM, DTLSCert: certPEM, DTLSKey: empty}, "dtls-cert/dtls-key", false},
		{"on", config.Config{BSDTLSCA: certPEM, DTLSCert: certPEM, DTLSKey: keyPEM}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var bc bootstrap.Config
			err := loadBootstrapX509(&tc.cfg, &bc)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("want an error with %q, got %v", tc.want, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := len(bc.Certificate.Certificate) > 0 && bc.RootCAs != nil; got != tc.x509 {
				t.Fatalf("x509 %v, want %v", got, tc.x509)
			}
			if tc.name == "revoked only" && strings.Join(bc.RevokedCAs, "|") != "CN=old|00" {
				t.Fatalf("revoked %q", bc.RevokedCAs)
			}
		})
	}
}
