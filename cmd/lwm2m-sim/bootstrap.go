package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lwm2md/lwm2md/client"
)

// Provisioning by claim: with -bootstrap every device starts with only a
// Bootstrap-Server account and the factory credential (-factory-psk, or
// a certificate -factory-cert/-factory-key issue), bootstraps, takes what
// the Bootstrap-Server wrote (its own PSK, for a PSK account) and
// registers to the LwM2M server it was given.

// factory is the bootstrap credential of the fleet.
type factory struct {
	identity string
	key      []byte
	ca       *x509.Certificate // issues each device a certificate (CN: endpoint)
	caKey    any
	roots    *x509.CertPool // trust for the servers' certificates
}

// parseFactoryPSK reads -factory-psk identity:hexkey.
func parseFactoryPSK(s string) (string, []byte, error) {
	id, hexKey, ok := strings.Cut(s, ":")
	if !ok || id == "" || hexKey == "" {
		return "", nil, errors.New("-factory-psk: want identity:hexkey")
	}
	key, err := hex.DecodeString(hexKey)
	if err != nil || len(key) > 64 {
		return "", nil, errors.New("-factory-psk: the key is not hex of at most 64 bytes")
	}
	return id, key, nil
}

// checkBootstrap checks the -bootstrap flags of o and loads the factory
// credential.
func (o *Options) checkBootstrap() (*factory, error) {
	if o.Bootstrap == "" {
		if o.FactoryPSK != "" || o.FactoryCert != "" || o.FactoryKey != "" {
			return nil, errors.New("-factory-psk, -factory-cert and -factory-key need -bootstrap")
		}
		return nil, nil
	}
	u, err := url.Parse(o.Bootstrap)
	if err != nil || (u.Scheme != "coap" && u.Scheme != "coaps") || u.Host == "" {
		return nil, fmt.Errorf("-bootstrap %q: want coap://host:port or coaps://host:port", o.Bootstrap)
	}
	switch {
	case o.Server != "":
		return nil, errors.New("-bootstrap and -server: the Bootstrap-Server gives the devices their LwM2M server; give one")
	case o.Shared > 0:
		return nil, errors.New("-bootstrap: the devices' DTLS sessions need a socket each; -shared does not apply")
	case o.FactoryPSK != "" && o.FactoryCert != "":
		return nil, errors.New("-factory-psk and -factory-cert: give one")
	case (o.FactoryCert == "") != (o.FactoryKey == ""):
		return nil, errors.New("-factory-cert and -factory-key go together")
	}
	f := &factory{}
	if o.FactoryPSK != "" {
		if f.identity, f.key, err = parseFactoryPSK(o.FactoryPSK); err != nil {
			return nil, err
		}
	}
	if o.FactoryCert != "" {
		if f.ca, f.caKey, err = loadCA(o.FactoryCert, o.FactoryKey); err != nil {
			return nil, err
		}
	}
	if o.ServerCA != "" {
		if f.roots, err = loadPool(o.ServerCA); err != nil {
			return nil, err
		}
	}
	if f.ca != nil && f.roots == nil {
		return nil, errors.New("-factory-cert: give -server-ca, the CA the servers' certificates chain to")
	}
	if u.Scheme == "coaps" && f.key == nil && f.ca == nil && o.PSKSeed == "" && o.PSKCSV == "" {
		return nil, fmt.Errorf("-bootstrap %q is coaps: give -factory-psk or -factory-cert/-factory-key (or the devices' own -psk-seed/-psk-csv)", o.Bootstrap)
	}
	return f, nil
}

// loadCA reads the factory CA's certificate and key (PEM).
func loadCA(certFile, keyFile string) (*x509.Certificate, any, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("-factory-cert/-factory-key: %w", err)
	}
	ca, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("-factory-cert %s: %w", certFile, err)
	}
	if !ca.IsCA {
		return nil, nil, fmt.Errorf("-factory-cert %s: not a CA certificate (the simulator issues each device its own)", certFile)
	}
	return ca, pair.PrivateKey, nil
}

// loadPool reads PEM certificates into a pool.
func loadPool(name string) (*x509.CertPool, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("-server-ca: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("-server-ca %s: no PEM certificate", name)
	}
	return p, nil
}

// issue gives endpoint a device certificate of the factory CA: an ECDSA
// P-256 key, CN the endpoint name (what the Bootstrap-Server binds it to),
// client authentication.
func (f *factory) issue(endpoint string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn, Subject: pkix.Name{CommonName: endpoint},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.ca, &key.PublicKey, f.caKey)
	if err != nil {
		return nil, fmt.Errorf("issue a certificate for %s: %w", endpoint, err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// bootstrapDTLS is device i's credential for the Bootstrap-Server.
func (s *Sim) bootstrapDTLS(i int) (client.DTLSConfig, error) {
	f := s.factory
	switch {
	case !strings.HasPrefix(s.opts.Bootstrap, "coaps:"):
		return client.DTLSConfig{}, nil
	case f.key != nil:
		return client.DTLSConfig{PSKIdentity: f.identity, PSKKey: f.key, RootCAs: f.roots}, nil
	case f.ca != nil:
		cert, err := f.issue(s.endpoint(i))
		if err != nil {
			return client.DTLSConfig{}, err
		}
		return client.DTLSConfig{Certificate: cert, RootCAs: f.roots}, nil
	}
	// The device's own PSK (-psk-seed, -psk-csv): a device that has
	// bootstrapped before does it again with its key.
	return client.DTLSConfig{PSKIdentity: s.creds[i].Identity, PSKKey: s.creds[i].Key}, nil
}

// bootStats are the bootstrap figures of a run.
type bootStats struct {
	bootstrapped, failed, attemptsFailed atomic.Int64

	mu       sync.Mutex
	boot     []time.Duration // start to bootstrapped
	register []time.Duration // bootstrapped to registered
}

// deviceClock times one device's steps.
type deviceClock struct {
	mu           sync.Mutex
	start        time.Time
	bootstrapped time.Time // until the Register that follows
	done         bool      // bootstrapped at least once
}

// isBootstrapping reports whether the device has not bootstrapped yet.
func (c *deviceClock) isBootstrapping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.done
}

// bootEvent counts device events of the bootstrap: it runs on the
// device's goroutines and must not block.
func (s *Sim) bootEvent(c *deviceClock, e client.Event) {
	switch e.Kind {
	case client.EventBootstrapped:
		now := time.Now()
		c.mu.Lock()
		c.bootstrapped, c.done = now, true
		d := now.Sub(c.start)
		c.mu.Unlock()
		s.boot.bootstrapped.Add(1)
		s.boot.mu.Lock()
		s.boot.boot = append(s.boot.boot, d)
		s.boot.mu.Unlock()
	case client.EventBootstrapFailed:
		s.boot.attemptsFailed.Add(1)
		s.st.errorKind("bootstrap: " + kindOf(e.Err))
	case client.EventRegistered:
		c.mu.Lock()
		b := c.bootstrapped
		c.bootstrapped = time.Time{} // a later Register is no longer the bootstrap's
		c.mu.Unlock()
		if !b.IsZero() {
			s.boot.mu.Lock()
			s.boot.register = append(s.boot.register, time.Since(b))
			s.boot.mu.Unlock()
		}
	}
}

// BootstrapSummary are the bootstrap figures of the summary.
type BootstrapSummary struct {
	Server         string `json:"server"`
	Bootstrapped   int64  `json:"bootstrapped"`
	Failed         int64  `json:"failed"`
	AttemptsFailed int64  `json:"attempts_failed"`
	// BootstrapMs is from the device's start to its BS-Finish (the
	// Bootstrap-Request, the server's sequence, the DTLS handshake).
	BootstrapMs Latency `json:"bootstrap_ms"`
	// RegisterMs is from BS-Finish to the accepted Register with the new
	// credential (a new DTLS handshake included).
	RegisterMs Latency `json:"register_ms"`
}

func (s *Sim) bootSummary() *BootstrapSummary {
	if s.opts.Bootstrap == "" {
		return nil
	}
	s.boot.mu.Lock()
	defer s.boot.mu.Unlock()
	return &BootstrapSummary{
		Server: s.opts.Bootstrap, Bootstrapped: s.boot.bootstrapped.Load(), Failed: s.boot.failed.Load(),
		AttemptsFailed: s.boot.attemptsFailed.Load(), BootstrapMs: latency(s.boot.boot), RegisterMs: latency(s.boot.register),
	}
}

// writeText prints the bootstrap lines of the text summary.
func (b *BootstrapSummary) writeText(w interface{ Write([]byte) (int, error) }) {
	fmt.Fprintf(w, "  bootstrap      %d bootstrapped, %d failed (%d failed attempts) from %s\n", b.Bootstrapped, b.Failed, b.AttemptsFailed, b.Server)
	fmt.Fprintf(w, "    to BS-Finish     p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", b.BootstrapMs.P50, b.BootstrapMs.P99, b.BootstrapMs.Max)
	fmt.Fprintf(w, "    then registered  p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", b.RegisterMs.P50, b.RegisterMs.P99, b.RegisterMs.Max)
}
