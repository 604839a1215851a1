package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/bootstrap"
	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/bolt"
	"github.com/lwm2md/lwm2md/server"
)

// fleet is a bootstrap server and an LwM2M server sharing one bolt
// registry, as in one lwm2md.
type fleet struct {
	store *bolt.Store
	bs    *bootstrap.Server
	dm    *server.Server
}

func newFleet(t *testing.T, bsCfg func(*bootstrap.Config), dmCfg func(*server.Config), acc bootstrap.Security) *fleet {
	t.Helper()
	cipher, err := registry.NewCipher(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	store, err := bolt.Open(t.TempDir(), bolt.Options{Cipher: cipher})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	dc := server.Config{DTLSAddr: "127.0.0.1:0", Credentials: server.NewRegistryCredentials(store.Credentials()), RegisterRate: -1}
	if dmCfg != nil {
		dmCfg(&dc)
	}
	dm, err := server.New(dc)
	if err != nil {
		t.Fatal(err)
	}
	if err := dm.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dm.Close() })
	bc := bootstrap.Config{DTLSAddr: "127.0.0.1:0", Credentials: store.Credentials(), DeviceCredentials: store.Credentials(),
		StatusStore: store.Tags(), RequestTimeout: 5 * time.Second}
	bsCfg(&bc)
	bs, err := bootstrap.New(bc)
	if err != nil {
		t.Fatal(err)
	}
	mute := false // the devices Send
	acct := bootstrap.ServerAccount{URI: "coaps://" + dm.DTLSAddr().String(), ShortServerID: 1, Lifetime: 300, Security: acc, MuteSend: &mute}
	if err := bs.Configs().SetTemplates(context.Background(), []bootstrap.Template{{Name: "fleet",
		Config: bootstrap.Configuration{Servers: []bootstrap.ServerAccount{acct}}}}); err != nil {
		t.Fatal(err)
	}
	if err := bs.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bs.Close() })
	return &fleet{store: store, bs: bs, dm: dm}
}

func runSim(t *testing.T, args ...string) *Summary {
	t.Helper()
	var stdout, stderr bytes.Buffer
	run(context.Background(), append(args, "-ack-timeout", "1s", "-retry-timer", "2s", "-progress", "0", "-json"), &stdout, &stderr)
	var sum Summary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	return &sum
}

// TestBootstrapFleet: 50 devices go from the factory PSK to their own PSK
// and a DTLS registration against in-process bootstrap and LwM2M servers
// sharing one registry; every device has its own key and a stored
// bootstrap status, the factory key does not open the LwM2M server, and
// an unknown factory identity bootstraps nobody.
func TestBootstrapFleet(t *testing.T) {
	factoryKey := []byte("fleet-factory-16")
	f := newFleet(t, func(c *bootstrap.Config) {
		c.Factory = []bootstrap.FactoryCredential{{Identity: "factory-1", Key: factoryKey, Endpoints: []string{"sim-*"}}}
	}, nil, bootstrap.Security{Mode: bootstrap.ModePSK, GeneratePSK: true})
	bsURI := "coaps://" + f.bs.DTLSAddr().String()
	const n = 50
	sum := runSim(t, "-bootstrap", bsURI, "-factory-psk", "factory-1:"+hex.EncodeToString(factoryKey),
		"-n", itoa(n), "-ramp", "100", "-duration", "8s", "-send-rate", "30")
	b := sum.Bootstrap
	if b == nil || b.Bootstrapped != n || b.Failed != 0 || sum.Registered != n || sum.Failed != 0 {
		t.Fatalf("summary %+v, bootstrap %+v, errors %v", sum, b, sum.Errors)
	}
	if b.BootstrapMs.P50 <= 0 || b.RegisterMs.P50 <= 0 || b.RegisterMs.Max < b.RegisterMs.P50 {
		t.Errorf("step timings %+v", b)
	}
	if sum.Sends == 0 {
		t.Errorf("no Send over the new DTLS sessions: %d failed, errors %v", sum.SendsFailed, sum.Errors)
	}
	keys := map[string]bool{}
	for i := range n {
		ep := "sim-" + strings.Repeat("0", 6-len(itoa(i))) + itoa(i)
		cr, err := f.store.Credentials().Get(context.Background(), ep)
		if err != nil || cr.PSKIdentity != ep || len(cr.PSKKey) != 16 || bytes.Equal(cr.PSKKey, factoryKey) {
			t.Fatalf("%s: credential %+v %v", ep, cr, err)
		}
		keys[string(cr.PSKKey)] = true
		st, ok := f.bs.Status(ep)
		if tags, _ := f.store.Tags().Get(context.Background(), ep); !ok || st.State != bootstrap.StateFinished || tags[bootstrap.TagState] != bootstrap.TagOK {
			t.Fatalf("%s: status %+v, tags %v", ep, st, tags)
		}
	}
	if len(keys) != n {
		t.Errorf("%d distinct keys for %d devices", len(keys), n)
	}

	t.Run("factory key at the LwM2M server", func(t *testing.T) {
		csv := filepath.Join(t.TempDir(), "factory.csv")
		if err := os.WriteFile(csv, []byte("endpoint,psk_identity,psk_key\nsim-000000,factory-1,"+hex.EncodeToString(factoryKey)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		sum := runSim(t, "-server", "coaps://"+f.dm.DTLSAddr().String(), "-psk-csv", csv, "-n", "1", "-duration", "3s")
		if sum.Registered != 0 || len(sum.Errors) == 0 {
			t.Fatalf("the factory key registered: %+v", sum)
		}
	})
	t.Run("unknown factory identity", func(t *testing.T) {
		sum := runSim(t, "-bootstrap", bsURI, "-factory-psk", "factory-9:"+hex.EncodeToString(factoryKey),
			"-n", "3", "-endpoint-prefix", "sim-x", "-duration", "3s")
		if b := sum.Bootstrap; b == nil || b.Bootstrapped != 0 || b.Failed != 3 || sum.Registered != 0 {
			t.Fatalf("summary %+v bootstrap %+v", sum, sum.Bootstrap)
		}
	})
}

// TestBootstrapFleetX509: devices with certificates the simulator issues
// from a factory CA bootstrap, keep their certificates (the bootstrap
// server binds each to its endpoint) and register with them.
func TestBootstrapFleetX509(t *testing.T) {
	dir := t.TempDir()
	factoryCA, _ := writeCA(t, dir, "factory")
	serverCA, serverKey := writeCA(t, dir, "servers")
	factoryPool := x509.NewCertPool()
	factoryPool.AddCert(factoryCA)
	f := newFleet(t, func(c *bootstrap.Config) {
		c.Certificate = serverCert(t, serverCA, serverKey)
		c.RootCAs = factoryPool
	}, func(c *server.Config) {
		c.Certificate = serverCert(t, serverCA, serverKey)
		c.RootCAs = factoryPool
	}, bootstrap.Security{Mode: bootstrap.ModeX509, KeepCertificate: true})
	const n = 10
	sum := runSim(t, "-bootstrap", "coaps://"+f.bs.DTLSAddr().String(), "-factory-cert", filepath.Join(dir, "factory.pem"),
		"-factory-key", filepath.Join(dir, "factory.key"), "-server-ca", filepath.Join(dir, "servers.pem"),
		"-n", itoa(n), "-ramp", "100", "-duration", "5s")
	if b := sum.Bootstrap; b == nil || b.Bootstrapped != n || sum.Registered != n {
		t.Fatalf("summary %+v bootstrap %+v errors %v", sum, sum.Bootstrap, sum.Errors)
	}
	cr, err := f.store.Credentials().Get(context.Background(), "sim-000003")
	if err != nil || len(cr.Certificates) != 1 || cr.Certificates[0].Subject != "CN=sim-000003" {
		t.Fatalf("credential %+v %v", cr, err)
	}
}

// writeCA writes a CA certificate and key as name.pem and name.key.
func writeCA(t *testing.T, dir, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// serverCert is a server certificate for 127.0.0.1 issued by ca.
func serverCert(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
