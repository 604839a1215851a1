package natsbridge

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lwm2md/lwm2md/bridge"
	"github.com/lwm2md/lwm2md/bridge/subject"
)

// Config configures the NATS side of the bridge.
type Config struct {
	// Prefix is the subjects' first token(s). Default "lwm2m".
	Prefix string
	// URL names an external NATS server or cluster; empty starts the
	// embedded server (Embedded).
	URL      string
	Embedded EmbeddedConfig
	// Conn holds the credentials and TLS settings for URL.
	Conn   ConnConfig
	Stream StreamConfig
	// Outbox bounds and tunes the buffer in front of JetStream (Name
	// and Publisher are set here).
	Outbox bridge.OutboxConfig
	// Commands, when set, answers commands through the micro service.
	Commands *bridge.Commands
	// Version is the micro service's version (semver). Default "0.0.0".
	Version string
	Logger  *slog.Logger
}

// NATS is the running NATS transport.
type NATS struct {
	emb    *Embedded
	nc     *nats.Conn
	out    *bridge.Outbox
	svc    *service
	cancel context.CancelFunc
	layout subject.Layout
}

// Start starts the embedded server (when URL is empty), connects, and
// starts the outbox and, with Commands, the micro service. It does not
// wait for an external server: the outbox holds what is published until
// the connection comes up.
func Start(cfg Config) (*NATS, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if err := subject.CheckPrefix(cfg.Prefix, '.'); err != nil {
		return nil, fmt.Errorf("natsbridge: %w", err)
	}
	if cfg.Version == "" {
		cfg.Version = "0.0.0"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sc, err := cfg.Stream.jetstream(cfg.Prefix)
	if err != nil {
		return nil, err
	}
	n := &NATS{layout: subject.NATS(cfg.Prefix)}
	url := cfg.URL
	if url == "" {
		if cfg.Embedded.Logger == nil {
			cfg.Embedded.Logger = log
		}
		if n.emb, err = StartEmbedded(cfg.Embedded); err != nil {
			return nil, err
		}
		url = n.emb.URL()
	}
	conn := cfg.Conn
	conn.URL = url
	if conn.Logger == nil {
		conn.Logger = log
	}
	if n.nc, err = Connect(conn); err != nil {
		n.shutdownEmbedded()
		return nil, err
	}
	js, err := jetstream.New(n.nc, jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		n.nc.Close()
		n.shutdownEmbedded()
		return nil, fmt.Errorf("natsbridge: jetstream: %w", err)
	}
	ocfg := cfg.Outbox
	ocfg.Name, ocfg.Publisher = "nats", &publisher{js: js, layout: n.layout, stream: sc}
	if ocfg.Logger == nil {
		ocfg.Logger = log
	}
	n.out = bridge.NewOutbox(ocfg)
	if cfg.Commands != nil {
		ctx, cancel := context.WithCancel(context.Background())
		n.cancel = cancel
		if n.svc, err = startService(ctx, n.nc, cfg.Prefix, cfg.Version, cfg.Commands, func(m bridge.Message) { n.out.Add(m) }, log); err != nil {
			n.Close()
			return nil, err
		}
		n.flushSubs()
	}
	return n, nil
}

// flushSubs makes sure the server has the service's subscriptions before
// Start returns, so that a request right after it finds a responder. An
// unreachable server gets them when the connection comes up.
func (n *NATS) flushSubs() {
	if n.nc.IsConnected() {
		_ = n.nc.FlushTimeout(5 * time.Second)
	}
}

// Outbox is the buffer the bridge feeds (bridge.New / AddOutbox).
func (n *NATS) Outbox() *bridge.Outbox { return n.out }

// Conn is the NATS connection.
func (n *NATS) Conn() *nats.Conn { return n.nc }

// Layout is the subject layout under the configured prefix.
func (n *NATS) Layout() subject.Layout { return n.layout }

// Embedded is the embedded server, nil with an external URL.
func (n *NATS) Embedded() *Embedded { return n.emb }

// Close stops the service, gives the outbox up to 5 s to publish what it
// holds, closes the connection and the embedded server.
func (n *NATS) Close() {
	if n.svc != nil {
		_ = n.svc.stop()
	}
	if n.cancel != nil {
		n.cancel()
	}
	if n.out != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = n.out.Flush(ctx)
		cancel()
		n.out.Close()
	}
	if n.nc != nil {
		n.nc.Close()
	}
	n.shutdownEmbedded()
}

func (n *NATS) shutdownEmbedded() {
	if n.emb != nil {
		n.emb.Shutdown()
	}
}
