// Package metrics exposes lwm2md's state to Prometheus: the LwM2M
// server's counters and gauges (read from server.Stats at scrape time, so
// the CoAP path pays nothing for them), registrations by LwM2M version and
// operation latencies (kept from the server's events), and the Go runtime
// and process collectors.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lwm2md/lwm2md/server"
)

// Namespace prefixes every lwm2md metric.
const Namespace = "lwm2md"

// NewRegistry returns a Prometheus registry holding the Go runtime and
// process collectors; roles add their own collectors to it.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Handler serves the registry in the Prometheus exposition format.
func Handler(r *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(r, promhttp.HandlerOpts{Registry: r, EnableOpenMetrics: true})
}

// ServerMetrics follows one LwM2M server. Stop it before closing the
// server.
type ServerMetrics struct {
	sub      *server.Subscription
	cancel   context.CancelFunc
	done     chan struct{}
	regs     *prometheus.GaugeVec
	regEvent *prometheus.CounterVec
	ops      *prometheus.HistogramVec
	queued   prometheus.Counter
	results  *prometheus.CounterVec
	sleeping prometheus.Gauge
	mu       sync.Mutex
	versions map[string]string   // endpoint -> LwM2M version, to move the gauge on change
	asleep   map[string]struct{} // queue-mode endpoints sleeping now
}

// WatchServer registers the server's metrics in r and follows its events
// until Stop. The registrations the server already holds (restored from
// the store) are counted first.
func WatchServer(ctx context.Context, s *server.Server, r prometheus.Registerer) (*ServerMetrics, error) {
	m := newServerMetrics()
	for _, c := range []prometheus.Collector{m.regs, m.regEvent, m.ops, m.queued, m.results, m.sleeping, statsCollector{s}} {
		if err := r.Register(c); err != nil {
			return nil, err
		}
	}
	// Subscribe before listing, so a registration between the two is
	// counted by its event (the map makes counting it twice harmless).
	// The listing runs beside the start: on PostgreSQL with many devices
	// it takes a while, and the gauges can fill in later.
	m.sub = s.Subscribe(4096)
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	go m.follow(func() {
		regs, err := s.Registrations(lctx)
		if err != nil {
			return // stopped before the listing finished
		}
		for _, reg := range regs {
			m.set(reg.Endpoint, reg.Version)
		}
	})
	return m, nil
}

func newServerMetrics() *ServerMetrics {
	return &ServerMetrics{
		done:     make(chan struct{}),
		versions: map[string]string{},
		asleep:   map[string]struct{}{},
		queued: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "requests_queued_total",
			Help: "Requests put in the queue of a sleeping queue-mode device."}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "queued_request_results_total",
			Help: "Queued requests that ended, by outcome (ok, the device's CoAP code, timeout for expired, error)."}, []string{"op", "outcome"}),
		sleeping: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "devices_sleeping",
			Help: "Queue-mode devices sleeping now (requests for them wait in their queue)."}),
		regs: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "registrations",
			Help: "Registrations held, by LwM2M version."}, []string{"version"}),
		regEvent: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "registration_events_total",
			Help: "Registration interface events: registered, updated, deregistered, expired."}, []string{"kind"}),
		ops: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "operation_duration_seconds",
			Help:    "Device management operations sent to devices, by operation and outcome (ok, timeout, the device's CoAP code, or error).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 93}}, []string{"op", "outcome"}),
	}
}

// Stop ends the following of events.
func (m *ServerMetrics) Stop() {
	m.cancel()
	m.sub.Close()
	<-m.done
}

func (m *ServerMetrics) follow(count func()) {
	defer close(m.done)
	count()
	for e := range m.sub.C {
		m.observe(e)
	}
}

func (m *ServerMetrics) observe(e server.Event) {
	switch e.Kind {
	case server.EventRegistered, server.EventUpdated:
		m.regEvent.WithLabelValues(e.Kind.String()).Inc()
		if e.Registration != nil {
			m.set(e.Endpoint, e.Registration.Version)
		}
	case server.EventDeregistered, server.EventExpired:
		m.regEvent.WithLabelValues(e.Kind.String()).Inc()
		m.set(e.Endpoint, "")
		m.setAsleep(e.Endpoint, false)
	case server.EventRequest:
		m.ops.WithLabelValues(e.Op, Outcome(e.Err)).Observe(e.Duration.Seconds())
	case server.EventQueued:
		m.queued.Inc()
	case server.EventRequestResult:
		m.results.WithLabelValues(e.Op, Outcome(e.Err)).Inc()
	case server.EventSleeping:
		m.setAsleep(e.Endpoint, true)
	case server.EventAwake:
		m.setAsleep(e.Endpoint, false)
	}
}

func (m *ServerMetrics) setAsleep(endpoint string, asleep bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, was := m.asleep[endpoint]
	switch {
	case asleep && !was:
		m.asleep[endpoint] = struct{}{}
		m.sleeping.Inc()
	case !asleep && was:
		delete(m.asleep, endpoint)
		m.sleeping.Dec()
	}
}

// set moves endpoint's registration to version ("" = gone).
func (m *ServerMetrics) set(endpoint, version string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, had := m.versions[endpoint]
	if had && old == version {
		return
	}
	if had {
		m.regs.WithLabelValues(old).Dec()
		delete(m.versions, endpoint)
	}
	if version != "" {
		m.versions[endpoint] = version
		m.regs.WithLabelValues(version).Inc()
	}
}

// Outcome names an operation's result for the outcome label: "ok",
// "timeout", "sleeping", the device's CoAP code ("4.04"), or "error".
func Outcome(err error) string {
	var ce *server.CoAPError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, server.ErrTimeout):
		return "timeout"
	case errors.As(err, &ce):
		return ce.Code.String()
	}
	return "error"
}

// statsCollector reads server.Stats at scrape time.
type statsCollector struct{ s *server.Server }

var statDescs = map[string]*prometheus.Desc{}

type stat struct {
	name, help string
	counter    bool
	value      func(server.Stats) float64
}

var stats = []stat{
	{"associations", "CoAP associations (peers) held.", false, func(s server.Stats) float64 { return float64(s.Associations) }},
	{"observations", "Observations held.", false, func(s server.Stats) float64 { return float64(s.Observations) }},
	{"associations_refused_total", "Datagrams dropped because the association cap was reached.", true, func(s server.Stats) float64 { return float64(s.AssociationsRefused) }},
	{"security_refused_total", "Register, Update and De-register refused 4.03 because the DTLS credentials are bound to another endpoint, or NoSec was used for an endpoint with credentials.", true, func(s server.Stats) float64 { return float64(s.SecurityRefused) }},
	{"requests_rate_limited_total", "Registers and requests of unregistered peers dropped by the per-address rate limit.", true, func(s server.Stats) float64 { return float64(s.RequestsDropped) }},
	{"observe_resets_total", "RSTs sent for notifications of unknown observations.", true, func(s server.Stats) float64 { return float64(s.Resets) }},
	{"notifications_foreign_total", "Notifications dropped because they came from another address than the registration's.", true, func(s server.Stats) float64 { return float64(s.ForeignNotify) }},
	{"notifications_total", "Notifications delivered.", true, func(s server.Stats) float64 { return float64(s.Notifications) }},
	{"sends_total", "Send (POST /dp) requests delivered.", true, func(s server.Stats) float64 { return float64(s.Sends) }},
	{"events_dropped_total", "Events lost because a subscriber was too slow.", true, func(s server.Stats) float64 { return float64(s.EventsDropped) }},
	{"transport_errors_total", "Datagrams the CoAP layer could not process.", true, func(s server.Stats) float64 { return float64(s.TransportErrors) }},
	{"oversized_total", "Datagrams over the maximum message size.", true, func(s server.Stats) float64 { return float64(s.Oversized) }},
	{"coap_messages_received_total", "CoAP messages received and decoded, UDP and DTLS.", true, func(s server.Stats) float64 { return float64(s.MessagesReceived) }},
	{"coap_retransmissions_received_total", "Confirmable messages a peer sent again (same message ID): lost answers or a slow server.", true, func(s server.Stats) float64 { return float64(s.Retransmissions) }},
	{"dtls_handshakes_total", "DTLS handshakes that ended in an authenticated session.", true, func(s server.Stats) float64 { return float64(s.DTLSHandshakes) }},
}

// handshakeFailures is lwm2md_server_dtls_handshake_failures_total by
// reason; every reason is exported from the start, at 0.
var handshakeFailures = prometheus.NewDesc(prometheus.BuildFQName(Namespace, "server", "dtls_handshake_failures_total"),
	"DTLS handshakes that failed, by reason: credentials (unknown PSK identity or certificate), timeout (a wrong PSK key ends here), cap (association cap), refused (credentials gone after the handshake), other.",
	[]string{"reason"}, nil)

func failureReasons(f server.HandshakeFailures) []struct {
	reason string
	n      uint64
} {
	return []struct {
		reason string
		n      uint64
	}{{"credentials", f.Credentials}, {"timeout", f.Timeout}, {"cap", f.Cap}, {"refused", f.Refused}, {"other", f.Other}}
}

func init() {
	for _, st := range stats {
		statDescs[st.name] = prometheus.NewDesc(prometheus.BuildFQName(Namespace, "server", st.name), st.help, nil, nil)
	}
}

func (c statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, st := range stats {
		ch <- statDescs[st.name]
	}
	ch <- handshakeFailures
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s.Stats()
	for _, st := range stats {
		t := prometheus.GaugeValue
		if st.counter {
			t = prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(statDescs[st.name], t, st.value(s))
	}
	for _, f := range failureReasons(s.HandshakeFailures) {
		ch <- prometheus.MustNewConstMetric(handshakeFailures, prometheus.CounterValue, float64(f.n), f.reason)
	}
}
