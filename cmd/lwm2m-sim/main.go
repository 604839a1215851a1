// Command lwm2m-sim is the fleet simulator: it runs N LwM2M devices of
// lwm2md's client engine (package client) against any LwM2M server, with
// a registration ramp, telemetry (notifications, Send), queue-mode
// devices, DTLS PSK credentials, field conditions (loss, delay, NAT
// rebinding), a progress line and a final summary. See docs/simulator.md.
//
//	lwm2m-sim -server coap://127.0.0.1:5683 -n 10000 -ramp 500 -duration 2m
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lwm2md/lwm2md/internal/metrics"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it returns the exit code (0 when
// every device registered, 1 when some did not or the run failed, 2 for
// bad flags).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, out, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "lwm2m-sim:", err)
		return 2
	}
	sim, err := New(opts)
	if err != nil {
		fmt.Fprintln(stderr, "lwm2m-sim:", err)
		return 2
	}
	sim.out = stderr
	if out.writeCSV != "" {
		if sim.creds == nil {
			fmt.Fprintln(stderr, "lwm2m-sim: -write-psk-csv needs -psk-seed")
			return 2
		}
		if err := writeCredsFile(out.writeCSV, sim.creds); err != nil {
			fmt.Fprintln(stderr, "lwm2m-sim:", err)
			return 1
		}
		fmt.Fprintf(stderr, "lwm2m-sim: wrote %d PSKs to %s\n", len(sim.creds), out.writeCSV)
		if opts.Server == "" && opts.Bootstrap == "" {
			return 0
		}
	}
	if out.metricsAddr != "" {
		_, stop, err := serveMetrics(out.metricsAddr, sim, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "lwm2m-sim:", err)
			return 1
		}
		defer stop()
	}
	sum, err := sim.Run(ctx)
	if sum != nil {
		if out.json {
			_ = sum.WriteJSON(stdout)
		} else {
			sum.WriteText(stdout)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "lwm2m-sim:", err)
		return 1
	}
	if sum.Registered < int64(sum.Devices) {
		return 1
	}
	return 0
}

// outputs are the flags that do not shape the run itself.
type outputs struct {
	json        bool
	writeCSV    string
	metricsAddr string
}

func parseFlags(args []string, stderr io.Writer) (Options, outputs, error) {
	var o Options
	var out outputs
	fs := flag.NewFlagSet("lwm2m-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Server, "server", "", "LwM2M server URI: coap://host:port or coaps://host:port")
	fs.IntVar(&o.N, "n", 1, "number of devices (with -psk-csv: at most the file's; 0 takes them all)")
	fs.Float64Var(&o.Ramp, "ramp", 100, "devices started per second; 0 starts them all at once")
	fs.StringVar(&o.Prefix, "endpoint-prefix", "sim-", "endpoint names are this prefix and a 6-digit index")
	fs.DurationVar(&o.Lifetime, "lifetime", 300*time.Second, "registration lifetime")
	fs.StringVar(&o.Version, "version", "1.1", "LwM2M version: 1.0, 1.1 or 1.2")
	fs.Float64Var(&o.NotifyRate, "notify-rate", 0, "temperature samples per device per minute: a notification each where the server observes /3303/0/5700")
	fs.Float64Var(&o.SendRate, "send-rate", 0, "Sends of /3303/0/5700 per device per minute (LwM2M 1.1+)")
	fs.Float64Var(&o.QueueShare, "queue-share", 0, "share of devices in queue mode (0 to 1)")
	fs.DurationVar(&o.AwakeWindow, "awake-window", 0, "queue mode: how long a device stays awake after its last message (default: the engine's, 93 s)")
	fs.DurationVar(&o.SleepPeriod, "sleep-period", 0, "queue mode: wake and send an Update this often (0: only for the lifetime Update and telemetry)")
	fs.StringVar(&o.PSKSeed, "psk-seed", "", "derive each device's DTLS PSK from this seed (identity: the endpoint name)")
	fs.StringVar(&o.PSKCSV, "psk-csv", "", "read endpoints and PSKs from this CSV (lwm2md import format: endpoint,psk_identity,psk_key)")
	fs.StringVar(&o.Bootstrap, "bootstrap", "", "Bootstrap-Server URI (coap:// or coaps://): each device bootstraps with the factory credential, then registers where it was told, with what it was given")
	fs.StringVar(&o.FactoryPSK, "factory-psk", "", "with a coaps -bootstrap: the fleet's factory PSK, identity:hexkey")
	fs.StringVar(&o.FactoryCert, "factory-cert", "", "with a coaps -bootstrap: the factory CA certificate (PEM) that issues each device a certificate with CN = its endpoint name")
	fs.StringVar(&o.FactoryKey, "factory-key", "", "the private key (PEM) of -factory-cert")
	fs.StringVar(&o.ServerCA, "server-ca", "", "CA certificates (PEM) the servers' certificates chain to (certificate mode)")
	fs.StringVar(&out.writeCSV, "write-psk-csv", "", "write the PSKs -psk-seed derives to this CSV for 'lwm2md import', then run (or stop when -server is empty)")
	fs.Float64Var(&o.Loss, "loss", 0, "share of datagrams each device drops, each way (0 to 1)")
	fs.DurationVar(&o.Delay, "delay", 0, "each device waits this long before answering the server")
	fs.DurationVar(&o.RebindEvery, "rebind-every", 0, "each device changes its source port this often (NAT rebinding), then sends an Update")
	fs.DurationVar(&o.Duration, "duration", time.Minute, "length of the run from the first start; then every device de-registers")
	srcs := fs.String("source-addrs", "", "spread devices over these source addresses: a list (127.0.0.1,127.0.0.2) or a range (127.0.0.1-127.0.0.4)")
	fs.IntVar(&o.Shared, "shared", 0, "carry every device over this many shared sockets, each device from its own 127.x address (Linux, loopback server, plain UDP): for more devices than file descriptors")
	base := fs.String("shared-base", "127.1.0.1", "with -shared: the first device's source address")
	fs.BoolVar(&o.Firmware, "firmware", false, "host a Firmware Update object (5) on every device")
	fs.DurationVar(&o.AckTimeout, "ack-timeout", 2*time.Second, "CoAP ACK_TIMEOUT of the devices")
	fs.DurationVar(&o.RetryTimer, "retry-timer", 10*time.Second, "registration Communication Retry Timer (LwM2M Core 1.1 §6.2.1.1)")
	fs.DurationVar(&o.Tick, "tick", 500*time.Millisecond, "how often the devices' retransmissions are checked")
	fs.DurationVar(&o.Progress, "progress", 5*time.Second, "status line period on stderr; 0 for none")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of sensor values, loss and the queue-mode draw")
	fs.BoolVar(&out.json, "json", false, "write the summary as JSON")
	fs.StringVar(&out.metricsAddr, "metrics-addr", "", "serve Prometheus metrics on this address (/metrics)")
	logLevel := fs.String("log-level", "error", "device log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return o, out, err
	}
	if fs.NArg() > 0 {
		return o, out, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if o.SourceAddrs, err = parseAddrs(*srcs); err != nil {
		return o, out, err
	}
	if o.Shared > 0 {
		if o.SharedBase, err = netip.ParseAddr(*base); err != nil {
			return o, out, fmt.Errorf("-shared-base: %w", err)
		}
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		return o, out, fmt.Errorf("-log-level: %w", err)
	}
	o.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	return o, out, nil
}

// parseAddrs reads -source-addrs: comma-separated addresses or ranges
// (a-b, both ends included, IPv4).
func parseAddrs(s string) ([]netip.Addr, error) {
	if s == "" {
		return nil, nil
	}
	var out []netip.Addr
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := netip.ParseAddr(lo)
		if err != nil {
			return nil, fmt.Errorf("-source-addrs: %q: %w", part, err)
		}
		if !isRange {
			out = append(out, a)
			continue
		}
		b, err := netip.ParseAddr(hi)
		if err != nil || !a.Is4() || !b.Is4() || b.Less(a) {
			return nil, fmt.Errorf("-source-addrs: %q: want an IPv4 range low-high", part)
		}
		for x := a; ; x = x.Next() {
			out = append(out, x)
			if x == b || len(out) > 1<<16 {
				break
			}
		}
	}
	if len(out) > 1<<16 {
		return nil, errors.New("-source-addrs: more than 65536 addresses")
	}
	return out, nil
}

func readCredsFile(name string) ([]cred, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("-psk-csv: %w", err)
	}
	defer f.Close()
	creds, err := readCreds(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return creds, nil
}

func writeCredsFile(name string, creds []cred) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600) // keys: owner only
	if err != nil {
		return fmt.Errorf("-write-psk-csv: %w", err)
	}
	if err := writeCreds(f, creds); err != nil {
		_ = f.Close()
		return fmt.Errorf("-write-psk-csv: %s: %w", name, err)
	}
	return f.Close()
}

// serveMetrics serves the run's counters to Prometheus.
func serveMetrics(addr string, s *Sim, stderr io.Writer) (bound net.Addr, stop func(), err error) {
	reg := metrics.NewRegistry()
	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "lwm2m_sim", Name: name, Help: help}, f))
	}
	counter := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "lwm2m_sim", Name: name, Help: help}, f))
	}
	gauge("devices_target", "Devices the run starts.", func() float64 { return float64(s.opts.N) })
	counter("devices_started_total", "Devices started.", func() float64 { return float64(s.st.started.Load()) })
	counter("devices_registered_total", "Devices that registered.", func() float64 { return float64(s.st.registered.Load()) })
	counter("devices_failed_total", "Devices that did not register.", func() float64 { return float64(s.st.failed.Load()) })
	counter("register_attempts_failed_total", "Failed Register attempts.", func() float64 { return float64(s.st.registerFails.Load()) })
	counter("updates_total", "Successful Updates.", func() float64 { return float64(s.st.updates.Load()) })
	counter("notifications_total", "Notifications sent.", func() float64 { return float64(s.st.notifications.Load()) })
	counter("sends_total", "Successful Sends.", func() float64 { return float64(s.st.sends.Load()) })
	counter("requests_total", "Server requests answered.", func() float64 { return float64(s.st.requests.Load()) })
	counter("sleeps_total", "Times a queue-mode device fell asleep.", func() float64 { return float64(s.st.sleeps.Load()) })
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("-metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler(reg))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(stderr, "lwm2m-sim: metrics:", err)
		}
	}()
	return l.Addr(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
