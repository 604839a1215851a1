package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Role is what an API token may do. Each role includes the ones below it.
type Role int

const (
	// RoleViewer reads: devices, values (Read, Discover), events, models.
	RoleViewer Role = iota + 1
	// RoleOperator also runs device operations that change something
	// (Write, Execute, Create, Delete, Observe, Write-Attributes).
	RoleOperator
	// RoleAdmin also manages credentials and imports devices.
	RoleAdmin
)

// ParseRole reads "viewer", "operator" or "admin".
func ParseRole(s string) (Role, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "viewer":
		return RoleViewer, nil
	case "operator":
		return RoleOperator, nil
	case "admin":
		return RoleAdmin, nil
	}
	return 0, fmt.Errorf("api: unknown role %q (viewer, operator or admin)", s)
}

func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleOperator:
		return "operator"
	case RoleAdmin:
		return "admin"
	}
	return "Role(" + strconv.Itoa(int(r)) + ")"
}

// tokenInfo is what a token grants; id names it in audit lines without
// giving it away (the first 8 hex digits of its SHA-256).
type tokenInfo struct {
	role Role
	id   string
}

// hashTokens keys the tokens by their SHA-256, so that looking a token up
// does not compare secrets byte by byte.
func hashTokens(in map[string]Role) (map[[32]byte]tokenInfo, error) {
	out := make(map[[32]byte]tokenInfo, len(in))
	for tok, role := range in {
		if len(tok) < 16 {
			return nil, fmt.Errorf("api: an API token must have at least 16 characters (one has %d)", len(tok))
		}
		if role < RoleViewer || role > RoleAdmin {
			return nil, fmt.Errorf("api: token %s: unknown role %d", tokenID(tok), role)
		}
		out[sha256.Sum256([]byte(tok))] = tokenInfo{role: role, id: tokenID(tok)}
	}
	return out, nil
}

func tokenID(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return "token:" + hex.EncodeToString(h[:4])
}

type whoKey struct{}

// who is the caller: its token's role and name for the audit log.
type who struct {
	role Role
	id   string
}

func callerOf(ctx context.Context) who {
	w, _ := ctx.Value(whoKey{}).(who)
	return w
}

// authenticate finds the caller's role from "Authorization: Bearer". With
// no tokens configured every caller is admin, but only from loopback: the
// binary refuses other listen addresses (CheckListen), and this keeps a
// forwarded connection from slipping through.
func (a *API) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c who
		if len(a.tokens) == 0 {
			if !loopback(r.RemoteAddr) {
				writeProblem(w, r, problem(http.StatusForbidden, "no API tokens are configured: the API answers loopback clients only"))
				return
			}
			c = who{role: RoleAdmin, id: "loopback"}
		} else {
			h := r.Header.Get("Authorization")
			scheme, tok, ok := strings.Cut(h, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="lwm2md"`)
				writeProblem(w, r, problem(http.StatusUnauthorized, "an API token is required: Authorization: Bearer <token>"))
				return
			}
			info, found := a.tokens[sha256.Sum256([]byte(strings.TrimSpace(tok)))]
			if !found {
				w.Header().Set("WWW-Authenticate", `Bearer realm="lwm2md", error="invalid_token"`)
				writeProblem(w, r, problem(http.StatusUnauthorized, "the API token is not valid"))
				return
			}
			c = who{role: info.role, id: info.id}
		}
		if !a.limits.allow(c.id, r.RemoteAddr) {
			writeProblem(w, r, problem(http.StatusTooManyRequests, "rate limit of "+c.id+" exceeded; retry later"))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), whoKey{}, c)))
	})
}

func loopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// limiters are the per-caller token buckets.
type limiters struct {
	mu    sync.Mutex
	rate  float64
	burst int
	m     map[string]*rate.Limiter
}

func newLimiters(r float64, burst int) *limiters {
	return &limiters{rate: r, burst: burst, m: map[string]*rate.Limiter{}}
}

// allow takes a token from the caller's bucket: per API token, or per
// client IP on an unauthenticated (loopback) API.
func (l *limiters) allow(id, remote string) bool {
	if l.rate < 0 {
		return true
	}
	if id == "loopback" {
		if host, _, err := net.SplitHostPort(remote); err == nil {
			id = host
		}
	}
	l.mu.Lock()
	lim, ok := l.m[id]
	if !ok {
		lim = rate.NewLimiter(rate.Limit(l.rate), l.burst)
		l.m[id] = lim
	}
	l.mu.Unlock()
	return lim.Allow()
}

// cors answers CORS preflights and marks answers for the configured
// origins (Fetch Standard, "CORS protocol"). Without origins it does
// nothing, and browsers keep to the same origin.
func (a *API) cors(next http.Handler) http.Handler {
	if len(a.cfg.CORSOrigins) == 0 {
		return next
	}
	anyOrigin := slices.Contains(a.cfg.CORSOrigins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !(anyOrigin || slices.Contains(a.cfg.CORSOrigins, origin)) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Expose-Headers", "Location, Retry-After")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, PUT, PATCH, POST, DELETE")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody caps request bodies at MaxBody; reading past it fails and
// the handler answers 413.
func (a *API) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > a.cfg.MaxBody {
			writeProblem(w, r, problem(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", a.cfg.MaxBody)))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, a.cfg.MaxBody)
		next.ServeHTTP(w, r)
	})
}

// recorder keeps the status for the audit line and the metrics; it
// passes Flush through for the event stream.
type recorder struct {
	http.ResponseWriter
	status int
}

func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 {
		rec.status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec.ResponseWriter.Write(b)
}

func (rec *recorder) Flush() {
	if f, ok := rec.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// handlerFunc is a route's handler: an error becomes a problem answer.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// wrap checks the caller's role, runs h, answers its error as a problem,
// counts the request and writes the audit line of a change.
func (a *API) wrap(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		c := callerOf(r.Context())
		ep := endpointParam(r)
		if c.role < rt.role {
			writeProblem(rec, r, problem(http.StatusForbidden, fmt.Sprintf("%s needs the %s role; %s has %s", rt.op, rt.role, c.id, c.role)))
		} else if err := rt.h(rec, r); err != nil {
			writeProblem(rec, r, a.toProblem(r.Method+" "+r.URL.Path, ep, err))
		}
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		a.metrics.requests.WithLabelValues(rt.op, strconv.Itoa(rec.status)).Inc()
		a.metrics.duration.WithLabelValues(rt.op).Observe(time.Since(start).Seconds())
		if rt.method != http.MethodGet {
			a.log.Info("audit", "who", c.id, "role", c.role.String(), "op", rt.op,
				"method", r.Method, "endpoint", ep, "path", r.URL.Path, "status", rec.status,
				"location", rec.Header().Get("Location"))
		}
	}
}

// endpointParam is the {ep} of the route, unescaped (chi matches the raw
// path, so an endpoint name may hold an escaped "/").
func endpointParam(r *http.Request) string {
	return urlParam(r, "ep")
}

func urlParam(r *http.Request, name string) string {
	v := chi.URLParam(r, name)
	if r.URL.RawPath == "" {
		return v // chi matched the decoded path: decoding again would be wrong ("%2541")
	}
	return unescape(v)
}

// metrics are the API's Prometheus collectors.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	streams  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lwm2md_api_requests_total", Help: "REST API requests by operation and HTTP status.",
		}, []string{"op", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "lwm2md_api_request_duration_seconds", Help: "REST API request durations by operation.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"op"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lwm2md_api_event_streams", Help: "Open Server-Sent Events streams.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration, m.streams} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("api: metrics: %w", err)
			}
		}
	}
	return m, nil
}
