package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Publisher delivers messages to one broker. Publish sends msgs in order
// and returns how many of the leading ones the broker acknowledged; the
// rest are offered again later, with the same IDs. It must honour ctx.
type Publisher interface {
	Publish(ctx context.Context, msgs []Message) (int, error)
}

// idSource makes de-duplication IDs: a random instance ID (so that two
// lwm2md processes, or one restarted, never share IDs) and a counter.
type idSource struct {
	prefix string
	n      atomic.Uint64
}

func newIDSource() *idSource {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	return &idSource{prefix: hex.EncodeToString(b[:])}
}

func (s *idSource) next() string { return s.prefix + "-" + strconv.FormatUint(s.n.Add(1), 36) }

// Metrics are the bridge's Prometheus collectors, labelled by transport.
type Metrics struct {
	Published *prometheus.CounterVec
	Dropped   *prometheus.CounterVec
	Failures  *prometheus.CounterVec
	Buffered  *prometheus.GaugeVec
}

// NewMetrics creates the collectors and registers them with reg when it is
// not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Published: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lwm2md_bridge_published_total", Help: "Messages the broker acknowledged."}, []string{"transport"}),
		Dropped:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lwm2md_bridge_dropped_total", Help: "Messages dropped because the outbox was full."}, []string{"transport"}),
		Failures:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lwm2md_bridge_publish_failures_total", Help: "Publish attempts that failed and will be retried."}, []string{"transport"}),
		Buffered:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lwm2md_bridge_buffered", Help: "Messages waiting in the outbox."}, []string{"transport"}),
	}
	if reg != nil {
		reg.MustRegister(m.Published, m.Dropped, m.Failures, m.Buffered)
	}
	return m
}

// OutboxConfig configures an Outbox.
type OutboxConfig struct {
	Name      string // transport name, the metrics' label: "nats", "mqtt"
	Publisher Publisher
	// Capacity bounds the messages held while the broker is slow or
	// away; beyond it new messages are dropped. Default 100000.
	Capacity int
	// Batch is the most messages handed to one Publish. Default 256.
	Batch int
	// Timeout bounds one Publish. Default 5 s.
	Timeout time.Duration
	Logger  *slog.Logger
	Metrics *Metrics // default: unregistered collectors
}

// Outbox buffers messages for one Publisher and publishes them in order
// from its own goroutine, retrying with backoff while the broker is
// unreachable. Add never blocks: a full outbox drops the new message,
// counts it and says so in the log (at most every 10 s).
type Outbox struct {
	cfg  OutboxConfig
	log  *slog.Logger
	pub  prometheus.Counter
	drop prometheus.Counter
	fail prometheus.Counter
	buf  prometheus.Gauge

	stats struct{ published, dropped, failures atomic.Uint64 }

	mu       sync.Mutex
	queue    []Message // FIFO; queue[head:] are pending
	head     int
	wake     chan struct{}
	dropped  uint64 // since the last log line
	lastLog  time.Time
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// NewOutbox starts an outbox's publishing goroutine; Close stops it.
func NewOutbox(cfg OutboxConfig) *Outbox {
	if cfg.Capacity <= 0 {
		cfg.Capacity = 100000
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 256
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := &Outbox{
		cfg: cfg, log: log.With("transport", cfg.Name),
		pub:  cfg.Metrics.Published.WithLabelValues(cfg.Name),
		drop: cfg.Metrics.Dropped.WithLabelValues(cfg.Name),
		fail: cfg.Metrics.Failures.WithLabelValues(cfg.Name),
		buf:  cfg.Metrics.Buffered.WithLabelValues(cfg.Name),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	go o.run()
	return o
}

// Add queues msgs; it never blocks.
func (o *Outbox) Add(msgs ...Message) {
	if len(msgs) == 0 {
		return
	}
	o.mu.Lock()
	n := len(o.queue) - o.head
	room := o.cfg.Capacity - n
	lost := 0
	if room < len(msgs) {
		if room < 0 {
			room = 0
		}
		lost = len(msgs) - room
		msgs = msgs[:room]
	}
	o.queue = append(o.queue, msgs...)
	o.buf.Set(float64(n + len(msgs)))
	if lost > 0 {
		o.dropped += uint64(lost)
		o.drop.Add(float64(lost))
		o.stats.dropped.Add(uint64(lost))
		if now := time.Now(); now.Sub(o.lastLog) >= 10*time.Second {
			o.log.Warn("bridge: outbox full, dropping messages", "dropped", o.dropped, "capacity", o.cfg.Capacity)
			o.dropped, o.lastLog = 0, now
		}
	}
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Stats returns the messages published and dropped so far, and the failed
// Publish calls (each retried).
func (o *Outbox) Stats() (published, dropped, failures uint64) {
	return o.stats.published.Load(), o.stats.dropped.Load(), o.stats.failures.Load()
}

// Len is the number of messages waiting.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.queue) - o.head
}

// Close stops publishing; what is still buffered is lost (the caller
// can Flush first).
func (o *Outbox) Close() {
	o.stopOnce.Do(func() { close(o.stop) })
	<-o.done
}

// Flush waits until the outbox is empty or ctx ends.
func (o *Outbox) Flush(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for o.Len() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

func (o *Outbox) batch() []Message {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := len(o.queue) - o.head
	if n > o.cfg.Batch {
		n = o.cfg.Batch
	}
	return o.queue[o.head : o.head+n : o.head+n]
}

func (o *Outbox) pop(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := o.head; i < o.head+n; i++ {
		o.queue[i] = Message{} // let the payloads go
	}
	o.head += n
	if o.head == len(o.queue) {
		o.queue, o.head = o.queue[:0], 0
	} else if o.head > 4096 && o.head > len(o.queue)/2 {
		o.queue = append(o.queue[:0], o.queue[o.head:]...)
		o.head = 0
	}
	o.buf.Set(float64(len(o.queue) - o.head))
}

func (o *Outbox) run() {
	defer close(o.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-o.stop
		cancel()
	}()
	backoff := time.Duration(0)
	down := false
	for {
		msgs := o.batch()
		if len(msgs) == 0 {
			select {
			case <-o.stop:
				return
			case <-o.wake:
			}
			continue
		}
		pctx, pcancel := context.WithTimeout(ctx, o.cfg.Timeout)
		n, err := o.cfg.Publisher.Publish(pctx, msgs)
		pcancel()
		if n > 0 {
			o.pub.Add(float64(n))
			o.stats.published.Add(uint64(n))
			o.pop(n)
		}
		if err == nil || n > 0 {
			// Progress: the broker is there; offer the rest at once.
			if down {
				o.log.Info("bridge: broker reachable again, flushing", "buffered", o.Len())
				down = false
			}
			backoff = 0
			continue
		}
		o.fail.Inc()
		o.stats.failures.Add(1)
		if !down {
			o.log.Warn("bridge: publish failed, buffering", "err", err, "buffered", o.Len())
			down = true
		}
		backoff = min(max(2*backoff, 20*time.Millisecond), 2*time.Second)
		select {
		case <-o.stop:
			return
		case <-time.After(backoff):
		}
	}
}
