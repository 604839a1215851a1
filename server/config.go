package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/builtin"
	"github.com/lwm2md/lwm2md/registry"
)

// Config holds the server's settings. The zero value of every field but
// UDPAddr and DTLSAddr picks the default written beside it; at least one of
// those two must be set.
type Config struct {
	// UDPAddr is the CoAP over UDP listen address, "host:port"; port 0
	// picks a free port (see Server.Addr). UDP carries the NoSec security
	// mode: "" turns NoSec off.
	UDPAddr string
	// DTLSAddr is the CoAP over DTLS 1.2 listen address (see
	// Server.DTLSAddr); "" turns DTLS off. It needs Credentials.
	DTLSAddr string
	// Credentials find the device behind a DTLS handshake (PSK identity or
	// client certificate) and say which endpoints must use DTLS. Required
	// with DTLSAddr; with UDP alone it may be nil (no endpoint is refused
	// NoSec). See NewRegistryCredentials.
	Credentials Credentials
	// Certificate is the server's ECDSA certificate chain and key for the
	// X.509 mode; without it the DTLS listener offers the PSK cipher
	// suites only.
	Certificate tls.Certificate
	// RootCAs are the trust store client certificates must chain to; nil
	// with a Certificate is an error (client certificates are required).
	RootCAs *x509.CertPool
	// DisableConnectionID turns off the DTLS Connection ID (RFC 9146),
	// which is on by default so that a device keeps its session when its
	// NAT mapping changes.
	DisableConnectionID bool
	// HandshakeTimeout bounds a DTLS handshake. Default: 15 s.
	HandshakeTimeout time.Duration
	// Models are the object definitions; the device's registered object
	// versions select among them. Default: builtin.Registry().
	Models *objects.Registry
	// Logger receives the server's log lines. Default: no logging.
	Logger *slog.Logger
	// Store keeps registrations. Default: a new MemoryStore.
	Store Store
	// Versions are the LwM2M versions accepted in Register ("1.0", "1.1",
	// "1.2"); a Register with another version is answered 4.12
	// Precondition Failed. Default: all three.
	Versions []string
	// LifetimeGrace is added to a registration's lifetime before it
	// expires, for Updates delayed by the network. Default: 30 s.
	LifetimeGrace time.Duration
	// MaxAssociations caps the CoAP associations (one per peer address)
	// held at once; datagrams from a new peer beyond the cap are dropped,
	// with a log line at most every 10 s. Default: 100000.
	MaxAssociations int
	// IdleTimeout closes the association of a peer that has not sent
	// anything for this long and has no registration. A registered
	// device's association lives as long as its registration. Default: 60 s.
	IdleTimeout time.Duration
	// RequestTimeout bounds a device management call whose context has
	// no deadline. Default: 93 s, CoAP's MAX_TRANSMIT_WAIT (RFC 7252 §4.8.2).
	RequestTimeout time.Duration
	// RegisterRate and RegisterBurst limit the Registers accepted from one
	// peer address (IP and port), and any request from an address without
	// a registration, as a token bucket: RegisterRate per second, up to
	// RegisterBurst at once. Requests beyond it are dropped unanswered
	// (the client's retransmission backs off). Defaults: 1 per second,
	// burst 5; a negative RegisterRate turns the limit off.
	RegisterRate  float64
	RegisterBurst int
	// MaxMessageSize bounds a CoAP message, datagram or block-wise body,
	// in both directions. Default: 64 KiB.
	MaxMessageSize int
	// SocketBuffer is the receive and send buffer asked of the kernel for
	// the UDP and DTLS sockets (SO_RCVBUF, SO_SNDBUF), in bytes: room for the bursts
	// of a large fleet, which the kernel's default (about 200 KiB) drops.
	// Linux caps it at net.core.rmem_max and wmem_max. Default: 4 MiB; a
	// negative value keeps the kernel's default.
	SocketBuffer int

	// Queue mode (see queue.go and docs/server.md, "Queue mode").
	// AwakeWindow is how long a queue-mode device counts as awake after
	// its last message; then its requests wait in its queue. Default:
	// 93 s, CoAP's MAX_TRANSMIT_WAIT.
	AwakeWindow time.Duration
	// QueueTimeout is the deadline of a queued request that has none, and
	// how long finished requests are kept. Default: 24 h.
	QueueTimeout time.Duration
	// Queue keeps the queued requests. Default: a new MemoryQueue; the
	// persistent registry's Queue() keeps them over restarts.
	Queue registry.Queue
	// Observations keeps every observation the devices accepted, so that
	// a restarted server goes on taking their notifications (see
	// observestore.go). nil: observations are kept in memory only.
	Observations registry.Observations
}

// The defaults of Config.
const (
	DefaultLifetimeGrace   = 30 * time.Second
	DefaultMaxAssociations = 100000
	DefaultIdleTimeout     = 60 * time.Second
	DefaultRequestTimeout  = 93 * time.Second
	DefaultRegisterRate    = 1.0
	DefaultRegisterBurst   = 5
	DefaultMaxMessageSize  = 64 * 1024
	DefaultSocketBuffer    = 4 << 20
)

// DefaultVersions are the LwM2M versions the server accepts by default.
var DefaultVersions = []string{"1.0", "1.1", "1.2"}

// withDefaults checks c and fills in the defaults.
func (c Config) withDefaults() (Config, []objects.Version, error) {
	if c.UDPAddr == "" && c.DTLSAddr == "" {
		return c, nil, fmt.Errorf("server: Config.UDPAddr and Config.DTLSAddr are both empty")
	}
	if c.UDPAddr != "" {
		if _, _, err := net.SplitHostPort(c.UDPAddr); err != nil {
			return c, nil, fmt.Errorf("server: Config.UDPAddr %q: %w", c.UDPAddr, err)
		}
	}
	if err := c.checkDTLS(); err != nil {
		return c, nil, err
	}
	if c.Models == nil {
		c.Models = builtin.Registry()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Store == nil {
		c.Store = NewMemoryStore()
	}
	if len(c.Versions) == 0 {
		c.Versions = DefaultVersions
	}
	vers := make([]objects.Version, 0, len(c.Versions))
	for _, s := range c.Versions {
		v, err := objects.ParseVersion(s)
		if err != nil {
			return c, nil, fmt.Errorf("server: Config.Versions: %w", err)
		}
		vers = append(vers, v)
	}
	if c.LifetimeGrace < 0 || c.IdleTimeout < 0 || c.RequestTimeout < 0 || c.MaxAssociations < 0 || c.RegisterBurst < 0 || c.MaxMessageSize < 0 {
		return c, nil, fmt.Errorf("server: Config: negative duration or limit")
	}
	if c.LifetimeGrace == 0 {
		c.LifetimeGrace = DefaultLifetimeGrace
	}
	if c.MaxAssociations == 0 {
		c.MaxAssociations = DefaultMaxAssociations
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.RegisterRate == 0 {
		c.RegisterRate = DefaultRegisterRate
	}
	if c.RegisterBurst == 0 {
		c.RegisterBurst = DefaultRegisterBurst
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.SocketBuffer == 0 {
		c.SocketBuffer = DefaultSocketBuffer
	}
	if err := c.queueDefaults(); err != nil {
		return c, nil, err
	}
	if c.MaxMessageSize < 1152 {
		// RFC 7252 §4.6: a message must fit 1152 bytes, so no smaller bound
		// lets a device register with a common object list.
		return c, nil, fmt.Errorf("server: Config.MaxMessageSize %d is below 1152 bytes", c.MaxMessageSize)
	}
	return c, vers, nil
}
