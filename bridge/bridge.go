package bridge

import (
	"errors"
	"log/slog"
	"sync"

	"github.com/lwm2md/lwm2md/bootstrap"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/server"
)

// Source is what the bridge needs of the LwM2M server to publish its
// events: *server.Server implements it.
type Source interface {
	Subscribe(buffer int) *server.Subscription
	Models(r *server.Registration) objects.Models
}

// Config configures a Bridge.
type Config struct {
	Source Source
	// SenML adds one message per notification or Send on
	// {prefix}.{ep}.senml, in SenML JSON or CBOR; off by default.
	SenML SenML
	// EventBuffer is the server subscription's channel size. The bridge
	// empties it into the outboxes without waiting for any broker, so it
	// only absorbs scheduling hiccups. Default 4096.
	EventBuffer int
	// Bootstrap, when set, adds the bootstrap server's events on
	// {prefix}.{ep}.bootstrap.{started|step|finished|failed|retry}.
	Bootstrap BootstrapSource
	Logger    *slog.Logger
}

// Bridge feeds the server's events, as Messages, into the outboxes of
// its transports.
type Bridge struct {
	cfg  Config
	log  *slog.Logger
	tr   translator
	ids  *idSource
	sub  *server.Subscription
	mu   sync.RWMutex
	outs []*Outbox
	done chan struct{}

	bsSub  *bootstrap.Subscription // nil without Config.Bootstrap
	bsDone chan struct{}
}

// New subscribes to the source's events and starts delivering them to the
// outboxes (more can be added with AddOutbox). Close ends it.
func New(cfg Config, outs ...*Outbox) (*Bridge, error) {
	if cfg.Source == nil {
		return nil, errors.New("bridge: Config.Source is required")
	}
	if _, err := ParseSenML(string(cfg.SenML)); err != nil {
		return nil, err
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = 4096
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ids := newIDSource()
	b := &Bridge{
		cfg: cfg, log: log, ids: ids, outs: outs, done: make(chan struct{}),
		tr: translator{models: cfg.Source.Models, senml: cfg.SenML, ids: ids},
	}
	b.sub = cfg.Source.Subscribe(cfg.EventBuffer)
	go b.run()
	if cfg.Bootstrap != nil {
		b.bsSub, b.bsDone = cfg.Bootstrap.Subscribe(1024), make(chan struct{})
		go b.runBootstrap()
	}
	return b, nil
}

// AddOutbox adds a transport's outbox; events from now on reach it.
func (b *Bridge) AddOutbox(o *Outbox) {
	b.mu.Lock()
	b.outs = append(b.outs, o)
	b.mu.Unlock()
}

// Publish hands m to every outbox: for messages made outside the event
// path (job progress).
func (b *Bridge) Publish(m Message) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, o := range b.outs {
		o.Add(m)
	}
}

// Dropped is the number of server events lost because the bridge's
// subscription channel was full.
func (b *Bridge) Dropped() uint64 { return b.sub.Dropped() }

// NewID returns a fresh de-duplication ID, for messages made outside the
// event path (command results, job progress).
func (b *Bridge) NewID() string { return b.ids.next() }

// Close ends the subscription and waits for the event loop; the outboxes
// are the caller's to flush and close.
func (b *Bridge) Close() {
	b.sub.Close()
	<-b.done
	if b.bsSub != nil {
		b.bsSub.Close()
		<-b.bsDone
	}
}

func (b *Bridge) run() {
	defer close(b.done)
	for e := range b.sub.C {
		msgs, err := b.tr.messages(e)
		if err != nil {
			b.log.Warn("bridge: event not fully translated", "endpoint", e.Endpoint, "event", e.Kind.String(), "err", err)
		}
		if len(msgs) == 0 {
			continue
		}
		b.mu.RLock()
		for _, o := range b.outs {
			o.Add(msgs...)
		}
		b.mu.RUnlock()
	}
}
