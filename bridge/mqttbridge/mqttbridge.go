// Package mqttbridge carries the bridge over MQTT 5 (eclipse/paho.golang):
// events and telemetry on {prefix}/{ep}/... topics, commands taken on
// {prefix}/{ep}/cmd/{op} and answered on {prefix}/{ep}/result/{request}.
// See docs/bridge.md.
package mqttbridge

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/lwm2md/lwm2md/bridge"
	"github.com/lwm2md/lwm2md/bridge/subject"
)

// DefaultPrefix is the topics' first level.
const DefaultPrefix = "lwm2m"

// maxInFlight bounds the commands run at once.
const maxInFlight = 1024

// Config configures the MQTT transport.
type Config struct {
	// URL is the broker: tcp:// or mqtt:// (1883), ssl://, tls:// or
	// mqtts:// (8883), ws:// or wss://; user and password in the URL are
	// the CONNECT credentials.
	URL string
	// Prefix is the topics' first level(s), "lwm2m" by default.
	Prefix string
	// ClientID is the MQTT client identifier; default "lwm2md-" and 8
	// random hex digits.
	ClientID string
	// TLS configures ssl:// and wss:// connections (roots, client
	// certificate); nil uses the system roots.
	TLS *tls.Config
	// QoS of what lwm2md publishes: 1 (at least once, the default) or 0.
	QoS byte
	// Outbox bounds and tunes the buffer in front of the broker.
	Outbox bridge.OutboxConfig
	// Commands, when set, answers the commands.
	Commands *bridge.Commands
	Logger   *slog.Logger
}

// MQTT is the running MQTT transport.
type MQTT struct {
	cfg    Config
	log    *slog.Logger
	layout subject.Layout
	cm     *autopaho.ConnectionManager
	out    *bridge.Outbox
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sem    chan struct{}
	up     chan struct{} // closed at the first connection
	upOnce sync.Once
}

// Start connects to the broker in the background (retrying for ever) and
// starts the outbox; it does not wait for the broker.
func Start(cfg Config) (*MQTT, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if err := subject.CheckPrefix(cfg.Prefix, '/'); err != nil {
		return nil, fmt.Errorf("mqttbridge: %w", err)
	}
	if cfg.QoS > 1 {
		return nil, fmt.Errorf("mqttbridge: QoS %d: only 0 and 1 are supported", cfg.QoS)
	}
	if cfg.ClientID == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		cfg.ClientID = "lwm2md-" + hex.EncodeToString(b[:])
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("mqttbridge: url: not a broker URL (scheme://host:port)")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &MQTT{cfg: cfg, log: log, layout: subject.MQTT(cfg.Prefix), sem: make(chan struct{}, maxInFlight), up: make(chan struct{})}
	m.ctx, m.cancel = context.WithCancel(context.Background())

	ac := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{stripUser(u)},
		TlsCfg:                        cfg.TLS,
		KeepAlive:                     30,
		CleanStartOnInitialConnection: true,
		ReconnectBackoff:              backoff,
		ConnectTimeout:                10 * time.Second,
		OnConnectionUp:                m.onUp,
		OnConnectionDown: func() bool {
			log.Warn("mqttbridge: connection down")
			return true
		},
		OnConnectError: func(err error) { log.Warn("mqttbridge: connect failed", "err", err) },
		ClientConfig:   paho.ClientConfig{ClientID: cfg.ClientID},
	}
	if u.User != nil {
		pw, _ := u.User.Password()
		ac.ConnectUsername, ac.ConnectPassword = u.User.Username(), []byte(pw)
	}
	if cfg.Commands != nil {
		ac.OnPublishReceived = []func(paho.PublishReceived) (bool, error){m.onPublish}
	}
	if m.cm, err = autopaho.NewConnection(m.ctx, ac); err != nil {
		m.cancel()
		return nil, fmt.Errorf("mqttbridge: %w", err)
	}
	ocfg := cfg.Outbox
	ocfg.Name, ocfg.Publisher = "mqtt", publisher{m}
	if ocfg.Logger == nil {
		ocfg.Logger = log
	}
	m.out = bridge.NewOutbox(ocfg)
	return m, nil
}

// backoff waits 100 ms after the first failed attempt, doubling up to 5 s.
func backoff(attempt int) time.Duration {
	d := 100 * time.Millisecond
	for i := 0; i < attempt && d < 5*time.Second; i++ {
		d *= 2
	}
	return min(d, 5*time.Second)
}

func stripUser(u *url.URL) *url.URL {
	c := *u
	c.User = nil
	return &c
}

// Outbox is the buffer the bridge feeds.
func (m *MQTT) Outbox() *bridge.Outbox { return m.out }

// Layout is the topic layout under the configured prefix.
func (m *MQTT) Layout() subject.Layout { return m.layout }

// AwaitConnection waits until the broker accepted the connection once.
func (m *MQTT) AwaitConnection(ctx context.Context) error {
	select {
	case <-m.up:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close gives the outbox up to 5 s to publish what it holds, then
// disconnects.
func (m *MQTT) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = m.out.Flush(ctx)
	m.out.Close()
	_ = m.cm.Disconnect(ctx)
	m.cancel()
	m.wg.Wait()
}

// onUp subscribes to the command topics on every connection: the session
// is clean, so the broker forgets subscriptions when the link drops.
func (m *MQTT) onUp(cm *autopaho.ConnectionManager, _ *paho.Connack) {
	m.log.Info("mqttbridge: connected", "client", m.cfg.ClientID)
	go func() {
		if m.cfg.Commands != nil {
			ctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
			defer cancel()
			topic := m.layout.Join("+", "cmd", "+")
			if _, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic, QoS: 1}}}); err != nil {
				m.log.Warn("mqttbridge: subscribe failed", "topic", topic, "err", err)
				return
			}
		}
		m.upOnce.Do(func() { close(m.up) })
	}()
}

// onPublish takes a command from {prefix}/{ep}/cmd/{op}.
func (m *MQTT) onPublish(pr paho.PublishReceived) (bool, error) {
	p := pr.Packet
	rest, ok := strings.CutPrefix(p.Topic, m.cfg.Prefix+"/")
	if !ok {
		return false, nil
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[1] != "cmd" {
		return false, nil
	}
	op := parts[2]
	ep, err := subject.Unescape(parts[0])
	if err != nil {
		m.log.Warn("mqttbridge: command for a badly escaped endpoint", "topic", p.Topic, "err", err)
		return true, nil
	}
	var respTopic string
	var corr []byte
	if p.Properties != nil {
		// MQTT 5 request/response (§4.10): answer there as well.
		respTopic, corr = p.Properties.ResponseTopic, p.Properties.CorrelationData
	}
	select {
	case m.sem <- struct{}{}:
	default:
		m.log.Warn("mqttbridge: too many commands in flight, dropping one", "topic", p.Topic)
		return true, nil
	}
	m.wg.Add(1)
	payload := append([]byte(nil), p.Payload...)
	go func() {
		defer m.wg.Done()
		defer func() { <-m.sem }()
		r := m.cfg.Commands.Handle(m.ctx, ep, op, payload, func(msg bridge.Message) { m.out.Add(msg) })
		data, err := json.Marshal(r)
		if err != nil {
			m.log.Error("mqttbridge: reply not encoded", "err", err)
			return
		}
		msg := bridge.Message{
			Tokens: []string{subject.Escape(ep), "result", subject.Escape(r.Request)}, ID: "reply-" + r.Request,
			ContentType: "application/json", Data: data,
		}
		m.out.Add(msg)
		if respTopic != "" {
			ctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
			defer cancel()
			_, err := m.cm.Publish(ctx, &paho.Publish{Topic: respTopic, QoS: m.cfg.QoS, Payload: data,
				Properties: &paho.PublishProperties{CorrelationData: corr, ContentType: "application/json"}})
			if err != nil {
				m.log.Warn("mqttbridge: response not sent", "topic", respTopic, "err", err)
			}
		}
	}()
	return true, nil
}

// publisher publishes an outbox batch in order, one PUBACK at a time.
type publisher struct{ m *MQTT }

func (p publisher) Publish(ctx context.Context, msgs []bridge.Message) (int, error) {
	for i, msg := range msgs {
		pub := &paho.Publish{
			Topic: msg.Subject(p.m.layout), QoS: p.m.cfg.QoS, Payload: msg.Data,
			Properties: &paho.PublishProperties{ContentType: msg.ContentType, User: paho.UserProperties{{Key: "msg-id", Value: msg.ID}}},
		}
		resp, err := p.m.cm.Publish(ctx, pub)
		if err != nil {
			return i, fmt.Errorf("mqttbridge: publish %s: %w", pub.Topic, err)
		}
		if resp != nil && resp.ReasonCode >= 0x80 {
			return i, fmt.Errorf("mqttbridge: publish %s: broker refused, reason code 0x%02x", pub.Topic, resp.ReasonCode)
		}
	}
	return len(msgs), nil
}
