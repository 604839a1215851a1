// Package api is lwm2md's operator REST API under /api/v1: the devices and
// their registrations, every LwM2M device-management operation on a
// device's objects (values in and out as objects/nodejson), queued requests
// of sleeping devices, DTLS credentials, object models, bulk import and
// export, server status and a Server-Sent Events stream of everything the
// LwM2M server reports. It is built only on the server package's Go API
// and the registry interfaces, so it runs wherever a *server.Server does.
//
// Access is by API tokens with roles (viewer, operator, admin); without
// tokens the API must listen on loopback only (CheckListen). Errors are
// RFC 9457 problem+json. The OpenAPI 3.1 description is generated from the
// same route table that builds the router (GET /api/v1/openapi.json).
// docs/api.md introduces the API with curl examples.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lwm2md/lwm2md/bootstrap"
	"github.com/lwm2md/lwm2md/bridge"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/builtin"
	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/server"
)

// Prefix is where the API lives.
const Prefix = "/api/v1"

// The defaults of Config.
const (
	DefaultMaxBody     = 1 << 20
	DefaultRate        = 20.0 // requests per second per token
	DefaultBurst       = 100
	DefaultEventBuffer = 4096
	DefaultMaxTimeout  = 10 * time.Minute
	DefaultResults     = 10000
)

// Config holds the API's settings. Server is required; the zero value of
// every other field picks the default written beside it.
type Config struct {
	// Server is the LwM2M server the API drives.
	Server *server.Server
	// Store is the persistent registry, for credentials, tags and bulk
	// import/export; nil turns those resources off (they answer 501).
	Store registry.Store
	// Models are the object definitions served by /objects. Default: the
	// server's default, builtin.Registry().
	Models *objects.Registry
	// Tokens maps an API token to its role. Empty: no authentication,
	// which is only safe on a loopback address (see CheckListen).
	Tokens map[string]Role
	// Logger receives audit lines and errors. Default: no logging.
	Logger *slog.Logger
	// UI is mounted at "/" (the web object browser, api/web.Handler()).
	UI http.Handler
	// MaxBody bounds a request body. Default: 1 MiB.
	MaxBody int64
	// Rate and Burst are each token's token bucket (per client address
	// without tokens). Defaults: 20 per second, burst 100; a negative
	// Rate turns the limit off.
	Rate  float64
	Burst int
	// CORSOrigins are the origins allowed to call the API from a browser
	// ("*" for any). Empty: no CORS headers, so browsers allow the same
	// origin only.
	CORSOrigins []string
	// EventBuffer is how many recent events the stream keeps for
	// Last-Event-ID resume. Default: 4096.
	EventBuffer int
	// MaxTimeout caps ?timeout=. Default: 10 min.
	MaxTimeout time.Duration
	// Version is the lwm2md version reported by /status.
	Version string
	// Registerer receives the API's Prometheus metrics. Default: none
	// (the metrics are kept but not exported).
	Registerer prometheus.Registerer
	// Bootstrap is the bootstrap server behind /bootstrap/... (its
	// configurations, templates, status, server-initiated bootstrap and
	// factory credentials), whose events also go to the event stream.
	// Nil turns those resources off (they answer 501).
	Bootstrap *bootstrap.Server
	// Jobs is the job runner behind /jobs (*bridge.Jobs), whose events
	// also go to the event stream. Nil turns those resources off (they
	// answer 501).
	Jobs Jobs
}

// API serves the REST API. Make it with New and stop it with Close.
type API struct {
	cfg     Config
	srv     *server.Server
	log     *slog.Logger
	mux     *chi.Mux
	tokens  map[[32]byte]tokenInfo
	limits  *limiters
	events  *ring
	results *results
	metrics *metrics
	start   time.Time

	sub  *server.Subscription
	done chan struct{}
	once sync.Once

	bsSub  *bootstrap.Subscription // nil without Config.Bootstrap
	bsDone chan struct{}

	jobsSub  *bridge.JobSubscription // nil without Config.Jobs
	jobsDone chan struct{}
}

// New checks cfg, subscribes to the server's events and builds the router.
func New(cfg Config) (*API, error) {
	if cfg.Server == nil {
		return nil, errors.New("api: Config.Server is required")
	}
	if cfg.Models == nil {
		cfg.Models = builtin.Registry()
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = DefaultEventBuffer
	}
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = DefaultMaxTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	tokens, err := hashTokens(cfg.Tokens)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	a := &API{
		cfg:     cfg,
		srv:     cfg.Server,
		log:     cfg.Logger,
		tokens:  tokens,
		limits:  newLimiters(cfg.Rate, cfg.Burst),
		events:  newRing(cfg.EventBuffer),
		results: newResults(DefaultResults),
		metrics: m,
		start:   time.Now(),
		done:    make(chan struct{}),
	}
	a.mux = a.router()
	// A generous buffer: the server drops events for a full subscriber
	// rather than block, and the pump only copies them into the ring.
	a.sub = cfg.Server.Subscribe(4096)
	go a.pump()
	if cfg.Bootstrap != nil {
		a.bsSub, a.bsDone = cfg.Bootstrap.Subscribe(1024), make(chan struct{})
		go a.pumpBootstrap()
	}
	if cfg.Jobs != nil {
		a.jobsSub, a.jobsDone = cfg.Jobs.Subscribe(1024), make(chan struct{})
		go a.pumpJobs()
	}
	return a, nil
}

// Handler returns the API's HTTP handler (the UI, when configured, at "/").
func (a *API) Handler() http.Handler { return a.mux }

// Close stops following the server's events and ends every event stream.
func (a *API) Close() error {
	a.once.Do(func() {
		a.sub.Close()
		<-a.done
		if a.bsSub != nil {
			a.bsSub.Close()
			<-a.bsDone
		}
		if a.jobsSub != nil {
			a.jobsSub.Close()
			<-a.jobsDone
		}
		a.events.close()
	})
	return nil
}

// pump copies the server's events into the ring and the results table.
func (a *API) pump() {
	defer close(a.done)
	for e := range a.sub.C {
		if e.Kind == server.EventRequestResult && e.Result != nil {
			a.results.put(e.Result)
		}
		a.events.add(a.eventJSON(e))
	}
}

// CheckListen refuses to serve the API on a non-loopback address when no
// API token is configured: anyone who reaches the port could then manage
// every device. The binary calls it before listening.
func CheckListen(addr string, tokensConfigured bool) error {
	if tokensConfigured {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("api: listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("api: refusing to serve the REST API on %q without API tokens: bind a loopback address (127.0.0.1:8080) or configure tokens", addr)
	}
	return nil
}

// timeoutCtx applies ?timeout= (a Go duration or seconds).
func (a *API) timeoutCtx(r *http.Request) (context.Context, context.CancelFunc, error) {
	s := r.URL.Query().Get("timeout")
	if s == "" {
		return r.Context(), func() {}, nil
	}
	d, err := parseTimeout(s)
	if err != nil || d <= 0 || d > a.cfg.MaxTimeout {
		return nil, nil, badField("timeout", fmt.Sprintf("%q is not a duration between 0 and %s (e.g. 30s)", s, a.cfg.MaxTimeout))
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	return ctx, cancel, nil
}
