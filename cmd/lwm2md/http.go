package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lwm2md/lwm2md/internal/metrics"
	"github.com/lwm2md/lwm2md/registry"
)

// readiness collects the checks /readyz runs: each names a dependency
// (a listener, the store, NATS) and says whether it is usable now.
type readiness struct {
	mu     sync.Mutex
	checks []check
}

type check struct {
	name string
	fn   func(ctx context.Context) error
}

func (r *readiness) add(name string, fn func(ctx context.Context) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks = append(r.checks, check{name, fn})
}

// ServeHTTP answers 200 when every check passes and 503 otherwise, with
// each check's result as JSON.
func (r *readiness) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
	defer cancel()
	r.mu.Lock()
	checks := append([]check(nil), r.checks...)
	r.mu.Unlock()
	status := http.StatusOK
	res := map[string]string{}
	for _, c := range checks {
		if err := c.fn(ctx); err != nil {
			status = http.StatusServiceUnavailable
			res[c.name] = err.Error()
		} else {
			res[c.name] = "ok"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(res)
}

// storeCheck reads one record that does not exist: any answer but "not
// found" means the store cannot be used.
func storeCheck(s registry.Store) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		_, err := s.Registrations().Get(ctx, "lwm2md-readiness-probe")
		if err == nil || errors.Is(err, registry.ErrNotFound) {
			return nil
		}
		return err
	}
}

// opsMux serves the operator endpoints that are not the REST API:
// /metrics, /healthz (the process is alive) and /readyz.
func opsMux(reg *prometheus.Registry, ready *readiness) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(reg))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /readyz", ready)
	return mux
}

// httpListener runs the HTTP server on addr until shutdown.
type httpListener struct {
	srv  *http.Server
	done chan error
}

func startHTTP(addr string, h http.Handler, log *slog.Logger) (*httpListener, net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	l := &httpListener{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		done: make(chan error, 1),
	}
	go func() { l.done <- l.srv.Serve(ln) }()
	log.Info("http listening", "addr", ln.Addr().String())
	return l, ln.Addr(), nil
}

// shutdown stops accepting and lets requests in flight finish, for up to
// the context's deadline. Server-Sent Event streams end when their
// request context is cancelled by Shutdown's deadline.
func (l *httpListener) shutdown(ctx context.Context) error {
	err := l.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = l.srv.Close()
	}
	if serr := <-l.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
