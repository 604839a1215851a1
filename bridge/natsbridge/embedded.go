// Package natsbridge carries the bridge over NATS: an embedded NATS server
// with JetStream (or a connection to an external one), the JetStream
// stream that keeps events and telemetry, a publisher with acknowledgement
// and de-duplication IDs, and the NATS micro service that takes commands.
// See docs/bridge.md.
package natsbridge

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// DefaultAddr is the embedded server's client address by default.
const DefaultAddr = "127.0.0.1:4222"

// EmbeddedConfig configures the embedded NATS server.
type EmbeddedConfig struct {
	// Addr is the client listen address, "host:port"; port -1 or 0 picks
	// a free one (see Embedded.URL). Default 127.0.0.1:4222.
	Addr string
	// DataDir is lwm2md's data directory; JetStream keeps its store in
	// DataDir/nats. Required.
	DataDir string
	// MaxStore bounds JetStream's file store, bytes; 0: the NATS default
	// (a share of the free disk).
	MaxStore int64
	Logger   *slog.Logger
}

// Embedded is an in-process NATS server with JetStream.
type Embedded struct {
	srv *natsserver.Server
}

// StartEmbedded starts the embedded NATS server and waits until it
// accepts connections.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("natsbridge: embedded: DataDir is required")
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	host, portS, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("natsbridge: embedded: addr %q: %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(portS)
	if err != nil || port < -1 || port > 65535 {
		return nil, fmt.Errorf("natsbridge: embedded: addr %q: bad port", cfg.Addr)
	}
	if port == 0 {
		port = natsserver.RANDOM_PORT
	}
	opts := &natsserver.Options{
		ServerName:            "lwm2md",
		Host:                  host,
		Port:                  port,
		JetStream:             true,
		StoreDir:              filepath.Join(cfg.DataDir, "nats"),
		JetStreamMaxStore:     cfg.MaxStore,
		NoSigs:                true, // lwm2md handles the signals
		NoSystemAccount:       true,
		DisableShortFirstPing: true,
	}
	srv, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsbridge: embedded: %w", err)
	}
	if cfg.Logger != nil {
		srv.SetLoggerV2(slogAdapter{cfg.Logger.With("component", "nats")}, false, false, false)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("natsbridge: embedded: not ready after 10 s on %s", cfg.Addr)
	}
	return &Embedded{srv: srv}, nil
}

// URL is the client URL, "nats://127.0.0.1:4222".
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Addr is the bound client address.
func (e *Embedded) Addr() net.Addr { return e.srv.Addr() }

// Shutdown stops the server and waits for it.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// slogAdapter hands nats-server's log lines to slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Noticef(format string, v ...any) { a.l.Info(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Debugf(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Tracef(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
