package natsbridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lwm2md/lwm2md/bridge"
	"github.com/lwm2md/lwm2md/bridge/subject"
)

// DefaultPrefix is the first token of every subject.
const DefaultPrefix = "lwm2m"

// DefaultStream is the JetStream stream's name.
const DefaultStream = "LWM2M"

// ConnConfig says how to reach NATS.
type ConnConfig struct {
	// URL is one or more server URLs, comma-separated.
	URL string
	// CredsFile is a NATS credentials file (JWT and NKey seed).
	CredsFile string
	// TLS, when set, is used for the connection (client certificates,
	// root CAs); a tls:// URL without it uses the system roots.
	TLS *tls.Config
	// Name is the connection's name, as the server lists it. Default
	// "lwm2md".
	Name   string
	Logger *slog.Logger
}

// Connect connects to NATS. The connection retries forever, also when the
// first attempt fails, and keeps no reconnect buffer: while it is down,
// publishing fails at once, and the bridge's outbox does the buffering
// (bounded, counted) instead of nats.go.
func Connect(cfg ConnConfig) (*nats.Conn, error) {
	if cfg.Name == "" {
		cfg.Name = "lwm2md"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("natsbridge: disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("natsbridge: reconnected", "url", c.ConnectedUrlRedacted())
		}),
		nats.ConnectHandler(func(c *nats.Conn) {
			log.Info("natsbridge: connected", "url", c.ConnectedUrlRedacted())
		}),
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.TLS != nil {
		opts = append(opts, nats.Secure(cfg.TLS))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("natsbridge: connect %s: %w", redact(cfg.URL), err)
	}
	return nc, nil
}

// redact hides the user information of URLs in error messages.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		if at := strings.LastIndex(u, "@"); at >= 0 {
			if s := strings.Index(u, "://"); s >= 0 && s < at {
				parts[i] = u[:s+3] + "***" + u[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}

// StreamConfig configures the JetStream stream.
type StreamConfig struct {
	// Name of the stream. Default "LWM2M".
	Name string
	// Retention: "limits" (the default: keep until MaxAge/MaxBytes/
	// MaxMsgs), "interest" (until every consumer acknowledged) or
	// "workqueue" (until one consumer acknowledged).
	Retention string
	MaxAge    time.Duration // 0: no limit
	MaxBytes  int64         // 0: no limit
	MaxMsgs   int64         // 0: no limit
	// Duplicates is the de-duplication window for Nats-Msg-Id. Default
	// 2 min; it should outlast the longest outage after which the
	// outbox re-sends a message.
	Duplicates time.Duration
	Replicas   int  // default 1
	Memory     bool // memory storage instead of file
}

// lifecycle are the event subjects' last tokens.
var lifecycle = []string{"registered", "updated", "deregistered", "expired", "sleeping", "awake"}

// StreamSubjects are the subjects the stream captures under prefix: the
// events, bootstrap events, data, SenML and command results of every
// endpoint, and the job events. The command subjects ({prefix}.cmd.>)
// and the job requests ({prefix}.jobs.submit, .get, .cancel) are left
// out, since JetStream would acknowledge a request in place of the
// service. The patterns may not overlap (JetStream refuses a stream whose
// subjects do): the escaped endpoint is never "cmd", "jobs", "data" nor
// "result" (bridge/subject), and the job events put the event before the
// job ({prefix}.jobs.progress.{job}), so that {prefix}.jobs.data.x, which
// {prefix}.*.data.> matches, is never a job event's subject.
func StreamSubjects(prefix string) []string {
	var out []string
	for _, t := range lifecycle {
		out = append(out, prefix+".*."+t)
	}
	out = append(out, prefix+".*.data.>", prefix+".*.senml", prefix+".*.result.*", prefix+".*.bootstrap.*")
	for _, ev := range bridge.JobEvents {
		out = append(out, prefix+".jobs."+ev+".*")
	}
	return out
}

func (c StreamConfig) jetstream(prefix string) (jetstream.StreamConfig, error) {
	sc := jetstream.StreamConfig{
		Name: c.Name, Subjects: StreamSubjects(prefix), MaxAge: c.MaxAge, MaxBytes: c.MaxBytes, MaxMsgs: c.MaxMsgs,
		Duplicates: c.Duplicates, Replicas: c.Replicas, Storage: jetstream.FileStorage,
		Description: "lwm2md events and telemetry (docs/bridge.md)",
	}
	if sc.Name == "" {
		sc.Name = DefaultStream
	}
	if sc.MaxBytes == 0 {
		sc.MaxBytes = -1
	}
	if sc.MaxMsgs == 0 {
		sc.MaxMsgs = -1
	}
	if sc.Duplicates == 0 {
		sc.Duplicates = 2 * time.Minute
	}
	if sc.Replicas == 0 {
		sc.Replicas = 1
	}
	if c.Memory {
		sc.Storage = jetstream.MemoryStorage
	}
	switch c.Retention {
	case "", "limits":
		sc.Retention = jetstream.LimitsPolicy
	case "interest":
		sc.Retention = jetstream.InterestPolicy
	case "workqueue":
		sc.Retention = jetstream.WorkQueuePolicy
	default:
		return sc, fmt.Errorf("natsbridge: stream retention %q is not one of limits, interest, workqueue", c.Retention)
	}
	return sc, nil
}

// publisher publishes to JetStream with acknowledgement; the stream is
// created (or updated) before the first publish and again after a
// failure, so that lwm2md can start before NATS does.
type publisher struct {
	js     jetstream.JetStream
	layout subject.Layout
	stream jetstream.StreamConfig
	ready  atomic.Bool
	mu     sync.Mutex
}

func (p *publisher) ensure(ctx context.Context) error {
	if p.ready.Load() {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ready.Load() {
		return nil
	}
	if _, err := p.js.CreateOrUpdateStream(ctx, p.stream); err != nil {
		return fmt.Errorf("natsbridge: stream %s: %w", p.stream.Name, err)
	}
	p.ready.Store(true)
	return nil
}

// Publish implements bridge.Publisher: it sends the batch asynchronously
// and counts the leading messages JetStream acknowledged. Every message
// the bridge makes has a subject the stream captures (StreamSubjects).
func (p *publisher) Publish(ctx context.Context, msgs []bridge.Message) (int, error) {
	if err := p.ensure(ctx); err != nil {
		return 0, err
	}
	futs := make([]jetstream.PubAckFuture, 0, len(msgs))
	var sendErr error
	for _, m := range msgs {
		nm := nats.NewMsg(m.Subject(p.layout))
		nm.Data = m.Data
		nm.Header.Set("Content-Type", m.ContentType)
		f, err := p.js.PublishMsgAsync(nm, jetstream.WithMsgID(m.ID), jetstream.WithExpectStream(p.stream.Name))
		if err != nil {
			sendErr = err
			break
		}
		futs = append(futs, f)
	}
	// A lost connection loses the acknowledgements on their way: stop
	// waiting for them then, rather than until ctx ends.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i, f := range futs {
	wait:
		for {
			select {
			case <-f.Ok():
				break wait
			case err := <-f.Err():
				p.fail(err)
				return i, fmt.Errorf("natsbridge: publish %s: %w", f.Msg().Subject, err)
			case <-ctx.Done():
				return i, fmt.Errorf("natsbridge: publish %s: no acknowledgement: %w", f.Msg().Subject, ctx.Err())
			case <-tick.C:
				if !p.js.Conn().IsConnected() {
					return i, fmt.Errorf("natsbridge: publish %s: %w", f.Msg().Subject, nats.ErrDisconnected)
				}
			}
		}
	}
	if sendErr != nil {
		p.fail(sendErr)
		return len(futs), fmt.Errorf("natsbridge: publish: %w", sendErr)
	}
	return len(futs), nil
}

// fail makes the next Publish check the stream again when the error says
// it is missing (a new, empty embedded server, a stream deleted by hand).
func (p *publisher) fail(err error) {
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrStreamNotFound) {
		p.ready.Store(false)
	}
}
