package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lwm2md/lwm2md/api"
	"github.com/lwm2md/lwm2md/api/web"
	"github.com/lwm2md/lwm2md/bootstrap"
	"github.com/lwm2md/lwm2md/bridge"
	"github.com/lwm2md/lwm2md/bridge/mqttbridge"
	"github.com/lwm2md/lwm2md/bridge/natsbridge"
	"github.com/lwm2md/lwm2md/internal/config"
	"github.com/lwm2md/lwm2md/internal/lastvalue"
	"github.com/lwm2md/lwm2md/internal/metrics"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/server"
)

// node is one running lwm2md: the roles it started, stopped in the
// reverse order (the HTTP API before the LwM2M server its requests use,
// the store last).
type node struct {
	cfg    *config.Config
	log    *slog.Logger
	models *objects.Registry
	store  registry.Store
	reg    *prometheus.Registry
	ready  *readiness
	lwm2m  *server.Server
	bs     *bootstrap.Server
	// jobs runs the jobs submitted over REST, NATS and MQTT; nil when the
	// LwM2M server is off.
	jobs  *bridge.Jobs
	stops []stopper
}

type stopper struct {
	name string
	stop func(ctx context.Context) error
}

// onStop adds what to undo when the node stops.
func (n *node) onStop(name string, stop func(ctx context.Context) error) {
	n.stops = append(n.stops, stopper{name, stop})
}

// stop undoes every start in reverse order, giving the whole stop up to
// 20 s, and joins the errors.
func (n *node) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var errs []error
	for i := len(n.stops) - 1; i >= 0; i-- {
		s := n.stops[i]
		if err := s.stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stopping %s: %w", s.name, err))
		}
	}
	n.stops = nil
	return errors.Join(errs...)
}

// serve runs until ctx is cancelled (SIGINT or SIGTERM).
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger) (err error) {
	log.Info("lwm2md starting", "version", version(), "config_file", cfg.ConfigFile,
		"coap_addr", cfg.CoAPAddr, "coaps_addr", cfg.CoAPSAddr, "bs_coap_addr", cfg.BSCoAPAddr,
		"bs_coaps_addr", cfg.BSCoAPSAddr, "http_addr", cfg.HTTPAddr,
		"data_dir", cfg.DataDir, "postgres_url", config.Mask(cfg.PostgresURL))
	n := &node{cfg: cfg, log: log, reg: metrics.NewRegistry(), ready: &readiness{}}
	defer func() {
		if serr := n.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	if n.models, err = loadModels(cfg.Models); err != nil {
		return err
	}
	log.Info("object models loaded", "objects", len(n.models.IDs()), "definitions", n.models.Len(), "models_dir", cfg.Models)
	if n.store, err = openStore(ctx, cfg, log); err != nil {
		return err
	}
	n.onStop("the registry store", func(context.Context) error { return n.store.Close() })
	// Store latency in /metrics: the roles below get the timed store.
	if n.store, err = metrics.InstrumentStore(n.store, n.reg); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	n.ready.add("store", storeCheck(n.store))
	for _, start := range []func(context.Context) error{n.startLwM2M, n.startBootstrap, n.startBridge, n.startHTTP} {
		if err := start(ctx); err != nil {
			if ctx.Err() != nil { // SIGTERM during the start: a clean stop
				break
			}
			return err
		}
	}
	<-ctx.Done()
	log.Info("lwm2md shutting down", "reason", context.Cause(ctx))
	if err := n.stop(); err != nil {
		return err
	}
	log.Info("lwm2md stopped")
	return nil
}

// startLwM2M runs the LwM2M server on coap-addr (NoSec) and coaps-addr
// (DTLS), with registrations, credentials and request queues in the
// store.
func (n *node) startLwM2M(ctx context.Context) error {
	cfg := n.cfg
	if cfg.CoAPAddr == "" && cfg.CoAPSAddr == "" {
		n.log.Warn("LwM2M server off: coap-addr and coaps-addr are both empty")
		return nil
	}
	sc := server.Config{
		UDPAddr:  cfg.CoAPAddr,
		DTLSAddr: cfg.CoAPSAddr,
		Models:   n.models,
		Logger:   n.log.With("component", "server"),
		Store:    server.RegistryStore(n.store.Registrations()),
		Queue:    n.store.Queue(),
		// Observations survive a restart (server/observestore.go).
		Observations: n.store.Observations(),

		AwakeWindow:  config.Duration(cfg.AwakeWindow),
		QueueTimeout: config.Duration(cfg.QueueTimeout),
	}
	if cfg.CoAPSAddr != "" {
		sc.Credentials = server.NewRegistryCredentials(n.store.Credentials())
		cert, roots, err := loadX509(cfg)
		if err != nil {
			return err
		}
		sc.Certificate, sc.RootCAs = cert, roots
	}
	srv, err := server.New(sc)
	if err != nil {
		return err
	}
	// The last known values: subscribed before Start, stopped after the
	// server (it writes what the server's last events carried), before
	// the store.
	rec := lastvalue.New(srv, n.store.Values(), lastvalue.Config{Logger: n.log.With("component", "lastvalue")})
	n.onStop("the last-value recorder", func(context.Context) error { return rec.Close() })
	if err := rec.Register(n.reg); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := srv.Start(ctx); err != nil {
		return fmt.Errorf("LwM2M server: %w", err)
	}
	n.lwm2m = srv
	n.onStop("the LwM2M server", func(context.Context) error { return srv.Close() })
	m, err := metrics.WatchServer(ctx, srv, n.reg)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	n.onStop("the LwM2M server metrics", func(context.Context) error { m.Stop(); return nil })
	n.ready.add("lwm2m", func(context.Context) error { return nil }) // listening since Start returned
	return nil
}

// loadX509 reads dtls-cert, dtls-key and dtls-ca; without dtls-cert the
// DTLS listener offers PSK only.
func loadX509(cfg *config.Config) (tls.Certificate, *x509.CertPool, error) {
	if cfg.DTLSCert == "" && cfg.DTLSKey == "" {
		if cfg.DTLSCA != "" {
			return tls.Certificate{}, nil, errors.New("dtls-ca is set without dtls-cert and dtls-key")
		}
		return tls.Certificate{}, nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.DTLSCert, cfg.DTLSKey)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("dtls-cert/dtls-key: %w", err)
	}
	if cfg.DTLSCA == "" {
		return tls.Certificate{}, nil, errors.New("dtls-cert is set without dtls-ca: device certificates cannot be verified")
	}
	pem, err := os.ReadFile(cfg.DTLSCA)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("dtls-ca: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return tls.Certificate{}, nil, fmt.Errorf("dtls-ca: %s holds no PEM certificate", cfg.DTLSCA)
	}
	return cert, roots, nil
}

// loadBootstrapX509 reads bs-dtls-ca (the factory CAs) and
// bs-revoked-cas; the bootstrap server presents dtls-cert/dtls-key, the
// certificate of the LwM2M server.
func loadBootstrapX509(cfg *config.Config, bc *bootstrap.Config) error {
	for _, r := range strings.Split(cfg.BSRevokedCAs, ";") {
		if r = strings.TrimSpace(r); r != "" {
			bc.RevokedCAs = append(bc.RevokedCAs, r)
		}
	}
	if cfg.BSDTLSCA == "" {
		return nil
	}
	if cfg.DTLSCert == "" || cfg.DTLSKey == "" {
		return errors.New("bs-dtls-ca is set without dtls-cert and dtls-key: the bootstrap server presents that certificate")
	}
	cert, err := tls.LoadX509KeyPair(cfg.DTLSCert, cfg.DTLSKey)
	if err != nil {
		return fmt.Errorf("dtls-cert/dtls-key: %w", err)
	}
	pem, err := os.ReadFile(cfg.BSDTLSCA)
	if err != nil {
		return fmt.Errorf("bs-dtls-ca: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return fmt.Errorf("bs-dtls-ca: %s holds no PEM certificate", cfg.BSDTLSCA)
	}
	bc.Certificate, bc.RootCAs = cert, roots
	return nil
}

// startBootstrap runs the bootstrap server on bs-coap-addr and
// bs-coaps-addr, with its configurations and the credentials it gives out
// in the store.
func (n *node) startBootstrap(ctx context.Context) error {
	cfg := n.cfg
	if cfg.BSCoAPAddr == "" && cfg.BSCoAPSAddr == "" {
		return nil
	}
	factory, err := config.ParseFactoryPSKs(cfg.BSFactoryPSK) // checked by config
	if err != nil {
		return fmt.Errorf("bs-factory-psk: %w", err)
	}
	bc := bootstrap.Config{
		UDPAddr:           cfg.BSCoAPAddr,
		DTLSAddr:          cfg.BSCoAPSAddr,
		Configs:           bootstrap.NewConfigs(n.store.Bootstrap(), n.store.Tags()),
		Credentials:       n.store.Credentials(),
		DeviceCredentials: n.store.Credentials(),
		StatusStore:       n.store.Tags(),
		Models:            n.models,
		Logger:            n.log.With("component", "bootstrap"),
	}
	if err := loadBootstrapX509(cfg, &bc); err != nil {
		return err
	}
	for _, f := range factory {
		bc.Factory = append(bc.Factory, bootstrap.FactoryCredential{Identity: f.Identity, Key: f.Key, Endpoints: f.Endpoints})
	}
	if cfg.BSTemplates != "" {
		data, err := os.ReadFile(cfg.BSTemplates)
		if err != nil {
			return fmt.Errorf("bs-templates: %w", err)
		}
		ts, err := bootstrap.ParseTemplates(data)
		if err != nil {
			return fmt.Errorf("bs-templates %s: %w", cfg.BSTemplates, err)
		}
		if err := bc.Configs.SetTemplates(ctx, ts); err != nil {
			return fmt.Errorf("bs-templates %s: %w", cfg.BSTemplates, err)
		}
		n.log.Info("bootstrap templates loaded", "file", cfg.BSTemplates, "templates", len(ts))
	}
	bs, err := bootstrap.New(bc)
	if err != nil {
		return err
	}
	if err := bs.Start(ctx); err != nil {
		return fmt.Errorf("bootstrap server: %w", err)
	}
	n.bs = bs
	n.onStop("the bootstrap server", func(context.Context) error { return bs.Close() })
	n.ready.add("bootstrap", func(context.Context) error { return nil })
	return nil
}

// startHTTP serves the REST API and the web object browser, with
// /metrics, /healthz and /readyz, on http-addr.
func (n *node) startHTTP(ctx context.Context) error {
	cfg := n.cfg
	if cfg.HTTPAddr == "" {
		return nil
	}
	log := n.log.With("component", "http")
	mux := opsMux(n.reg, n.ready)
	if n.lwm2m != nil {
		tokens, err := readTokens(cfg.APITokenFile, log)
		if err != nil {
			return err
		}
		if err := api.CheckListen(cfg.HTTPAddr, len(tokens) > 0); err != nil {
			return fmt.Errorf("http-addr: %w", err)
		}
		if len(tokens) == 0 {
			log.Warn("REST API without tokens: it serves loopback addresses only; set api-token-file to serve others", "addr", cfg.HTTPAddr)
		}
		ac := api.Config{
			Server:      n.lwm2m,
			Store:       n.store,
			Models:      n.models,
			Tokens:      tokens,
			Logger:      n.log.With("component", "api"),
			UI:          web.Handler(),
			Bootstrap:   n.bs, // nil when bootstrap is off: its resources answer 501
			CORSOrigins: splitList(cfg.APICORS),
			Rate:        apiRate(cfg.APIRate),
			Burst:       config.Count(cfg.APIBurst),
			Version:     version(),
			Registerer:  n.reg,
		}
		if n.jobs != nil { // a nil *bridge.Jobs must not become a non-nil interface
			ac.Jobs = n.jobs
		}
		a, err := api.New(ac)
		if err != nil {
			return err
		}
		mux.Handle("/", a.Handler())
		// Close the API (it ends the event streams) before the HTTP
		// server waits for its requests to finish.
		defer n.onStop("the REST API", func(context.Context) error { return a.Close() })
	} else {
		log.Warn("REST API off: the LwM2M server is off (coap-addr and coaps-addr are empty)")
	}
	srv, _, err := startHTTP(cfg.HTTPAddr, mux, log)
	if err != nil {
		return fmt.Errorf("http-addr %s: %w", cfg.HTTPAddr, err)
	}
	n.onStop("the HTTP server", srv.shutdown)
	return nil
}

// startBridge publishes the LwM2M server's events, telemetry and
// bootstrap events on NATS (embedded, or nats-url) and MQTT (mqtt-url),
// and takes commands and jobs from them. The job runner (n.jobs, also
// behind the REST API's /jobs) runs with no transport too: its events then
// reach the REST event stream only.
func (n *node) startBridge(ctx context.Context) error {
	cfg := n.cfg
	if n.lwm2m == nil {
		return nil
	}
	log := n.log.With("component", "bridge")
	senml, err := bridge.ParseSenML(strings.TrimPrefix(cfg.BridgeSenML, "off"))
	if err != nil {
		return fmt.Errorf("bridge-senml: %w", err)
	}
	cmds, err := bridge.NewCommands(bridge.CommandsConfig{Server: n.lwm2m, Logger: log})
	if err != nil {
		return err
	}
	n.onStop("the bridge commands", func(context.Context) error { cmds.Close(); return nil })
	if cfg.NATSURL == "" && cfg.NATSAddr == "" && cfg.MQTTURL == "" {
		return n.startJobs(ctx, cmds, nil, log)
	}
	bm := bridge.NewMetrics(n.reg)
	var outs []*bridge.Outbox
	var nb *natsbridge.NATS
	if cfg.NATSURL != "" || cfg.NATSAddr != "" {
		nc := natsbridge.Config{
			Prefix:   cfg.BridgePrefix,
			URL:      cfg.NATSURL,
			Conn:     natsbridge.ConnConfig{CredsFile: cfg.NATSCreds},
			Commands: cmds,
			Outbox:   bridge.OutboxConfig{Metrics: bm},
			Version:  semver(version()),
			Logger:   log.With("transport", "nats"),
		}
		if cfg.NATSURL == "" {
			if err := portFree(cfg.NATSAddr); err != nil {
				return fmt.Errorf("nats-addr %s: %w: another NATS server? Set nats-url to use it, nats-addr to another address, or nats-addr to empty for no NATS", cfg.NATSAddr, err)
			}
			nc.Embedded = natsbridge.EmbeddedConfig{Addr: cfg.NATSAddr, DataDir: cfg.DataDir}
		}
		if nb, err = natsbridge.Start(nc); err != nil {
			return fmt.Errorf("NATS: %w", err)
		}
		n.onStop("the NATS bridge", func(context.Context) error { nb.Close(); return nil })
		if e := nb.Embedded(); e != nil {
			log.Info("embedded NATS listening", "addr", e.Addr().String(), "store", filepath.Join(cfg.DataDir, "nats"))
		}
		n.ready.add("nats", func(context.Context) error {
			if !nb.Conn().IsConnected() {
				return fmt.Errorf("not connected (%s)", nb.Conn().Status())
			}
			return nil
		})
		outs = append(outs, nb.Outbox())
	}
	if cfg.MQTTURL != "" {
		m, err := mqttbridge.Start(mqttbridge.Config{URL: cfg.MQTTURL, Prefix: strings.ReplaceAll(cfg.BridgePrefix, ".", "/"),
			Commands: cmds, Outbox: bridge.OutboxConfig{Metrics: bm}, Logger: log.With("transport", "mqtt")})
		if err != nil {
			return fmt.Errorf("MQTT: %w", err)
		}
		n.onStop("the MQTT bridge", func(context.Context) error { m.Close(); return nil })
		outs = append(outs, m.Outbox())
	}
	bcfg := bridge.Config{Source: n.lwm2m, SenML: senml, Logger: log}
	if n.bs != nil { // lwm2m.{ep}.bootstrap.*
		bcfg.Bootstrap = n.bs
	}
	br, err := bridge.New(bcfg, outs...)
	if err != nil {
		return err
	}
	n.onStop("the bridge", func(context.Context) error { br.Close(); return nil })
	if err := n.startJobs(ctx, cmds, br.Publish, log); err != nil {
		return err
	}
	if nb != nil {
		if err := nb.AddJobs(n.jobs, n.store.Jobs()); err != nil {
			return err
		}
	}
	return nil
}

// startJobs starts the job runner on the store and resumes the jobs it
// holds; publish hands the job events to the transports (nil: none).
func (n *node) startJobs(ctx context.Context, cmds *bridge.Commands, publish func(bridge.Message), log *slog.Logger) error {
	jobs, err := bridge.NewJobs(bridge.JobsConfig{Commands: cmds, Jobs: n.store.Jobs(), Tags: n.store.Tags(),
		Registrations: n.store.Registrations(), Owner: nodeName(n.cfg), Publish: publish, Logger: log.With("part", "jobs")})
	if err != nil {
		return err
	}
	n.jobs = jobs
	n.onStop("the jobs", func(context.Context) error { jobs.Close(); return nil })
	if err := jobs.Resume(ctx); err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	return nil
}

// nodeName names this node in the registry's leases: node-name, else
// the host name, so that a node restarting (after a crash too) takes
// back at once the job targets it held (bridge.JobsConfig.Owner); empty
// when neither is known, for a random name.
func nodeName(cfg *config.Config) string {
	if cfg.NodeName != "" {
		return cfg.NodeName
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return ""
	}
	return "lwm2md@" + host
}

// semver turns the build's version into the x.y.z the NATS micro service
// requires ("devel" and commit hashes become 0.0.0).
func semver(v string) string {
	v = strings.TrimPrefix(v, "v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) != 3 {
		return "0.0.0"
	}
	for _, p := range parts[:2] {
		if _, err := strconv.Atoi(p); err != nil {
			return "0.0.0"
		}
	}
	return v
}

// portFree says whether a TCP address can be listened on, so that a busy
// nats-addr fails the start at once with a clear message rather than
// after the embedded server's readiness timeout.
func portFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return ln.Close()
}

// apiRate maps the api-rate setting to api.Config.Rate, whose zero is the
// default and whose negative turns the limit off.
func apiRate(v string) float64 {
	if n := config.Count(v); n > 0 {
		return float64(n)
	}
	return -1
}
