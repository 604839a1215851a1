package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// fleet is the shared lwm2md process of the registration, notification
// and REST scenarios, with the binaries' paths.
type fleet struct {
	cfg    config
	sim    string
	srv    *lwm2md
	log    io.Writer
	pskCSV string
}

// endpoint is the simulator's endpoint name of device i.
func endpoint(prefix string, i int) string { return fmt.Sprintf("%s%06d", prefix, i) }

// waitLimit is how long the harness waits for n devices to register.
func waitLimit(n int) time.Duration {
	return max(60*time.Second, time.Duration(n)*10*time.Millisecond)
}

// storm registers cfg.devices devices at cfg.ramp per second (0: all at
// once) and reads the simulator's registration rate and latency.
func (f *fleet) storm(ctx context.Context, dtls bool) (Row, error) {
	n := f.cfg.devices
	row := Row{Scenario: "reg-udp", Title: "registration storm, UDP", Devices: n, Unit: "registrations/s", Baseline: "baseline-coap"}
	args := []string{"-server", "coap://" + f.srv.coap, "-n", strconv.Itoa(n), "-endpoint-prefix", "udp-",
		"-ramp", fmt.Sprint(f.cfg.ramp), "-lifetime", "1h", "-duration", "2h", "-shared", "8"}
	prefix := "udp-"
	if dtls {
		prefix = "dtls-"
		row.Scenario, row.Title = "reg-dtls", "registration storm, DTLS 1.2 PSK"
		// A DTLS session keeps a socket each (docs/simulator.md): no -shared.
		args = []string{"-server", "coaps://" + f.srv.coaps, "-n", strconv.Itoa(n), "-psk-csv", f.pskCSV,
			"-ramp", fmt.Sprint(f.cfg.dtlsRamp), "-lifetime", "1h", "-duration", "2h",
			"-source-addrs", "127.0.0.1-127.0.0.4"}
	}
	p, err := startSim(f.sim, args, f.log)
	if err != nil {
		return row, err
	}
	got, err := f.srv.waitRegistered(ctx, p, prefix, n, waitLimit(n), f.log)
	if err != nil {
		p.kill()
		return row, err
	}
	sum, err := p.finish(waitLimit(n))
	if err != nil {
		return row, err
	}
	row.Value, row.P50, row.P99 = sum.RegistrationRate, sum.RegistrationLatency.P50, sum.RegistrationLatency.P99
	row.Failed = n - got
	row.Note = fmt.Sprintf("%d/%d registered (ramp %s), %d Register attempts failed; latency from start to accepted Register",
		got, n, rampText(f.cfg.ramp, dtls, f.cfg.dtlsRamp), sum.RegisterAttemptsFailed)
	return row, nil
}

func rampText(udp float64, dtls bool, dtlsRamp float64) string {
	r := udp
	if dtls {
		r = dtlsRamp
	}
	if r == 0 {
		return "all at once"
	}
	return fmt.Sprintf("%g/s", r)
}

// startFleet starts cfg.fleet simulated devices with prefix and waits
// until all are registered.
func (f *fleet) startFleet(ctx context.Context, prefix string, extra ...string) (*simProc, error) {
	args := append([]string{"-server", "coap://" + f.srv.coap, "-n", strconv.Itoa(f.cfg.fleet), "-endpoint-prefix", prefix,
		"-ramp", "0", "-lifetime", "1h", "-duration", "2h", "-shared", "4"}, extra...)
	p, err := startSim(f.sim, args, f.log)
	if err != nil {
		return nil, err
	}
	got, err := f.srv.waitRegistered(ctx, p, prefix, f.cfg.fleet, waitLimit(f.cfg.fleet), f.log)
	if err == nil && got < f.cfg.fleet {
		err = fmt.Errorf("bench: only %d/%d devices registered", got, f.cfg.fleet)
	}
	if err != nil {
		p.kill()
		return nil, err
	}
	return p, nil
}

// notify observes /3303/0/5700 on every device of a fleet sampling
// cfg.notifyRate times a minute, and counts the bridge's telemetry
// messages on NATS for cfg.duration; latency runs from the message's
// serverTime (lwm2md received the notification) to the subscriber.
func (f *fleet) notify(ctx context.Context) (Row, error) {
	n := f.cfg.fleet
	row := Row{Scenario: "notify", Title: "notifications through the bridge to NATS", Devices: n, Unit: "messages/s", Baseline: "baseline-coap"}
	nc, err := nats.Connect("nats://"+f.srv.nats, nats.Name("lwm2md-bench"))
	if err != nil {
		return row, fmt.Errorf("bench: nats: %w", err)
	}
	defer nc.Close()
	var counting atomic.Bool
	var lat latencies
	var mu sync.Mutex
	var batch []time.Duration
	var bad atomic.Int64
	sub, err := nc.Subscribe("lwm2m.*.data.>", func(m *nats.Msg) {
		now := time.Now()
		if !counting.Load() {
			return
		}
		var v struct {
			ServerTime time.Time `json:"serverTime"`
		}
		if err := json.Unmarshal(m.Data, &v); err != nil || v.ServerTime.IsZero() {
			bad.Add(1)
			return
		}
		mu.Lock()
		batch = append(batch, now.Sub(v.ServerTime))
		mu.Unlock()
	})
	if err != nil {
		return row, fmt.Errorf("bench: nats subscribe: %w", err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	if err := nc.Flush(); err != nil {
		return row, fmt.Errorf("bench: nats: %w", err)
	}
	p, err := f.startFleet(ctx, "obs-", "-notify-rate", fmt.Sprint(f.cfg.notifyRate))
	if err != nil {
		return row, err
	}
	defer p.kill()
	fmt.Fprintf(f.log, "bench:   observing /3303/0/5700 on %d devices\n", n)
	if err := f.observeAll(ctx, "obs-", n); err != nil {
		return row, err
	}
	counting.Store(true)
	start := time.Now()
	select {
	case <-time.After(f.cfg.duration):
	case <-ctx.Done():
		return row, ctx.Err()
	}
	counting.Store(false)
	el := time.Since(start)
	mu.Lock()
	lat.add(batch)
	mu.Unlock()
	row.Value = float64(lat.count()) / el.Seconds()
	row.P50, row.P99, row.Failed = lat.percentile(50), lat.percentile(99), int(bad.Load())
	row.Note = fmt.Sprintf("offered %g/s (%d devices, %g samples/min each), over %s; latency from serverTime to the NATS subscriber; %d undecodable",
		float64(n)*f.cfg.notifyRate/60, n, f.cfg.notifyRate, f.cfg.duration, bad.Load())
	return row, nil
}

// observeAll posts an Observe of /3303/0/5700 for each device, from
// cfg.concurrency workers.
func (f *fleet) observeAll(ctx context.Context, prefix string, n int) error {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: f.cfg.concurrency}, Timeout: 60 * time.Second}
	next := atomic.Int64{}
	errs := make(chan error, f.cfg.concurrency)
	for range f.cfg.concurrency {
		go func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					errs <- nil
					return
				}
				u := "http://" + f.srv.http + "/api/v1/clients/" + endpoint(prefix, i) + "/3303/0/5700/observe"
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
				resp, err := client.Do(req)
				if err != nil {
					errs <- fmt.Errorf("bench: observe: %w", err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					errs <- fmt.Errorf("bench: POST %s: %s", u, resp.Status)
					return
				}
			}
		}()
	}
	var first error
	for range f.cfg.concurrency {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// rest reads /3/0/0 (Manufacturer) through the REST API from
// cfg.concurrency workers, each going round the fleet.
func (f *fleet) rest(ctx context.Context) (Row, error) {
	n := f.cfg.fleet
	row := Row{Scenario: "rest", Title: "REST reads GET /api/v1/clients/{ep}/3/0/0", Devices: n, Unit: "reads/s", Baseline: "baseline-coap"}
	p, err := f.startFleet(ctx, "rest-")
	if err != nil {
		return row, err
	}
	defer p.kill()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: f.cfg.concurrency}, Timeout: 30 * time.Second}
	rate, lat, failed, err := loop(f.log, f.cfg.concurrency, f.cfg.duration, func(w int) (func() error, func(), error) {
		i := w
		return func() error {
			u := "http://" + f.srv.http + "/api/v1/clients/" + endpoint("rest-", i%n) + "/3/0/0"
			i += f.cfg.concurrency
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("bench: GET %s: %s", u, resp.Status)
			}
			return nil
		}, func() {}, nil
	})
	if err != nil {
		return row, err
	}
	row.Value, row.P50, row.P99, row.Failed = rate, lat.percentile(50), lat.percentile(99), failed
	row.Note = fmt.Sprintf("%d concurrent HTTP workers over %d devices, %s, %d failed", f.cfg.concurrency, n, f.cfg.duration, failed)
	return row, nil
}

// memory starts a fresh lwm2md (no NATS, no DTLS), registers n devices
// over shared sockets and divides the growth of its VmRSS by n.
func memory(ctx context.Context, cfg config, server, sim string, n int, log io.Writer) (Row, error) {
	row := Row{Scenario: fmt.Sprintf("memory-%d", n), Title: "idle memory per registered device", Devices: n, Unit: "KiB/device"}
	srv, err := prepare(server, cfg.dataRoot, serverOpts{})
	if err != nil {
		return row, err
	}
	defer srv.stop()
	if err := srv.start(ctx); err != nil {
		return row, err
	}
	// Let start-up allocation settle before the baseline, and the last
	// Registers' garbage and the store's commits after (longer for more
	// devices).
	settle := min(3*time.Second, time.Second+time.Duration(n)*20*time.Microsecond)
	time.Sleep(settle)
	before, err := srv.rss()
	if err != nil {
		return row, err
	}
	p, err := startSim(sim, []string{"-server", "coap://" + srv.coap, "-n", strconv.Itoa(n), "-endpoint-prefix", "mem-",
		"-ramp", fmt.Sprint(cfg.memoryRamp), "-lifetime", "2h", "-duration", "3h", "-shared", "8"}, log)
	if err != nil {
		return row, err
	}
	defer p.kill()
	got, err := srv.waitRegistered(ctx, p, "mem-", n, waitLimit(n)+time.Duration(float64(n)/cfg.memoryRamp*float64(time.Second)), log)
	if err != nil {
		return row, err
	}
	if got < n {
		return row, fmt.Errorf("bench: memory: only %d/%d devices registered", got, n)
	}
	time.Sleep(settle)
	after, err := srv.rss()
	if err != nil {
		return row, err
	}
	if after <= before {
		return row, fmt.Errorf("bench: memory: VmRSS did not grow (%d then %d bytes)", before, after)
	}
	row.Value = float64(after-before) / float64(n) / 1024
	row.Note = fmt.Sprintf("VmRSS %.0f MiB idle, %.0f MiB with %d registered (bbolt in %s)", mib(before), mib(after), n, storeKind(cfg.dataRoot))
	return row, nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func storeKind(root string) string {
	if root == "" {
		root = os.TempDir()
	}
	return filepath.Clean(root)
}
