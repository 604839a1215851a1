// Command bench is lwm2md's benchmark harness (issue 9): it builds and
// starts the lwm2md binary and the lwm2m-sim fleet simulator on loopback,
// runs the scenarios (registration storms over UDP and DTLS PSK, steady
// notifications through the NATS bridge, REST reads fanned out over many
// devices, idle memory per registered device), measures a plain UDP echo
// and a raw go-coap server on the same machine in the same run, and prints
// one markdown table row per scenario, each figure also as a ratio to its
// baseline.
//
//	go run ./bench                  # the full run of docs/benchmarks.md
//	go run ./bench -quick           # a smoke run of a few seconds
//	go run ./bench -scenarios reg-udp,rest -devices 2000 -json
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// allScenarios in the order they run.
var allScenarios = []string{"baseline-udp", "baseline-coap", "reg-udp", "reg-dtls", "notify", "rest", "memory"}

// config is the parsed command line.
type config struct {
	scenarios   []string
	devices     int   // registration storms
	fleet       int   // devices of the notification and REST scenarios
	memory      []int // fleet sizes of the memory scenario
	concurrency int   // baselines, REST workers
	duration    time.Duration
	notifyRate  float64 // samples per device per minute
	ramp        float64 // UDP storm, devices/s; 0: all at once
	dtlsRamp    float64
	memoryRamp  float64
	dataRoot    string
	json        bool
}

// Row is one scenario's result.
type Row struct {
	Scenario string  `json:"scenario"`
	Title    string  `json:"title"`
	Devices  int     `json:"devices"` // devices, or concurrent clients for the baselines
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	P50      float64 `json:"p50_ms,omitempty"`
	P99      float64 `json:"p99_ms,omitempty"`
	Baseline string  `json:"baseline,omitempty"` // the scenario Value is divided by
	Ratio    float64 `json:"ratio,omitempty"`
	Failed   int     `json:"failed"` // requests that failed (baselines, REST), devices not registered (storms), undecodable NATS messages
	Note     string  `json:"note"`
}

// Report is the -json output.
type Report struct {
	Start       time.Time `json:"start"`
	Command     string    `json:"command"`
	GoVersion   string    `json:"go_version"`
	CPUs        int       `json:"cpus"`
	LoadAverage string    `json:"load_average"` // /proc/loadavg at the start
	Rows        []Row     `json:"rows"`
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scen := fs.String("scenarios", strings.Join(allScenarios, ","), "scenarios to run, comma-separated: "+strings.Join(allScenarios, ", "))
	fs.IntVar(&c.devices, "devices", 10000, "devices of each registration storm")
	fs.IntVar(&c.fleet, "fleet", 1000, "devices of the notification and REST scenarios")
	mem := fs.String("memory-devices", "10000,100000", "fleet sizes of the idle memory scenario, comma-separated")
	fs.IntVar(&c.concurrency, "concurrency", 32, "concurrent clients of the baselines and HTTP workers of the REST scenario")
	fs.DurationVar(&c.duration, "duration", 20*time.Second, "measuring time of the baselines, the notification and the REST scenarios")
	fs.Float64Var(&c.notifyRate, "notify-rate", 60, "temperature samples per device per minute in the notification scenario")
	fs.Float64Var(&c.ramp, "ramp", 0, "UDP storm: devices started per second; 0 starts them all at once")
	fs.Float64Var(&c.dtlsRamp, "dtls-ramp", 1000, "DTLS storm: devices started per second; 0 starts them all at once")
	fs.Float64Var(&c.memoryRamp, "memory-ramp", 1000, "memory scenario: devices started per second")
	fs.StringVar(&c.dataRoot, "data-root", "", "parent of lwm2md's temporary data directories (default: the system's temporary directory; /dev/shm keeps fsync out of the figures)")
	fs.BoolVar(&c.json, "json", false, "write the report as JSON instead of a markdown table")
	quick := fs.Bool("quick", false, "small numbers for a smoke run: 100 devices, a fleet of 20, memory at 200 and 400, 4 clients, 2 s")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		// -quick changes only what was not given explicitly.
		defaults := map[string]func(){
			"devices":        func() { c.devices = 100 },
			"fleet":          func() { c.fleet = 20 },
			"memory-devices": func() { *mem = "200,400" },
			"concurrency":    func() { c.concurrency = 4 },
			"duration":       func() { c.duration = 2 * time.Second },
			"notify-rate":    func() { c.notifyRate = 120 },
			"dtls-ramp":      func() { c.dtlsRamp = 200 },
			"memory-ramp":    func() { c.memoryRamp = 400 },
		}
		for name, apply := range defaults {
			if !set[name] {
				apply()
			}
		}
	}
	for s := range strings.SplitSeq(*scen, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(allScenarios, s) {
			return c, fmt.Errorf("bench: -scenarios: unknown scenario %q (want %s)", s, strings.Join(allScenarios, ", "))
		}
		c.scenarios = append(c.scenarios, s)
	}
	for s := range strings.SplitSeq(*mem, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return c, fmt.Errorf("bench: -memory-devices: %q is not a positive number", s)
		}
		c.memory = append(c.memory, n)
	}
	switch {
	case c.devices < 1:
		return c, errors.New("bench: -devices must be at least 1")
	case c.fleet < 1:
		return c, errors.New("bench: -fleet must be at least 1")
	case c.concurrency < 1:
		return c, errors.New("bench: -concurrency must be at least 1")
	case c.duration <= 0:
		return c, errors.New("bench: -duration must be positive")
	case c.notifyRate <= 0:
		return c, errors.New("bench: -notify-rate must be positive")
	case c.ramp < 0 || c.dtlsRamp < 0:
		return c, errors.New("bench: -ramp and -dtls-ramp must not be negative")
	case c.memoryRamp <= 0:
		return c, errors.New("bench: -memory-ramp must be positive")
	}
	return c, nil
}

// run is main without the process: 0 when every scenario ran, 1 when one
// failed, 2 for bad flags.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	load, _ := os.ReadFile("/proc/loadavg")
	rep := Report{Start: time.Now().UTC(), Command: "go run ./bench " + strings.Join(args, " "),
		GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), LoadAverage: strings.TrimSpace(string(load))}
	fmt.Fprintf(stderr, "bench: load average %s\n", rep.LoadAverage)
	rows, err := runScenarios(ctx, cfg, stderr)
	rep.Rows = rows
	ratios(rep.Rows)
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		writeTable(stdout, rep)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func runScenarios(ctx context.Context, cfg config, log io.Writer) ([]Row, error) {
	var rows []Row
	want := func(s string) bool { return slices.Contains(cfg.scenarios, s) }
	step := func(name string, f func() (Row, error)) error {
		fmt.Fprintf(log, "bench: %s\n", name)
		t0 := time.Now()
		r, err := f()
		if err != nil {
			return fmt.Errorf("bench: %s: %w", name, err)
		}
		fmt.Fprintf(log, "bench: %s: %.1f %s (%s)\n", name, r.Value, r.Unit, time.Since(t0).Round(time.Second))
		rows = append(rows, r)
		return nil
	}
	if want("baseline-udp") {
		if err := step("baseline-udp", func() (Row, error) { return baselineUDP(log, cfg.concurrency, cfg.duration) }); err != nil {
			return rows, err
		}
	}
	if want("baseline-coap") {
		if err := step("baseline-coap", func() (Row, error) { return baselineCoAP(log, cfg.concurrency, cfg.duration) }); err != nil {
			return rows, err
		}
	}
	if !slices.ContainsFunc(cfg.scenarios, func(s string) bool { return !strings.HasPrefix(s, "baseline-") }) {
		return rows, nil
	}
	tmp, err := os.MkdirTemp("", "lwm2md-bench-bin-")
	if err != nil {
		return rows, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(tmp)
	server, sim, err := binaries(ctx, tmp, log)
	if err != nil {
		return rows, err
	}
	if slices.ContainsFunc(cfg.scenarios, func(s string) bool { return s == "reg-udp" || s == "reg-dtls" || s == "notify" || s == "rest" }) {
		if err := runFleet(ctx, cfg, server, sim, tmp, log, step); err != nil {
			return rows, err
		}
	}
	if want("memory") {
		for _, n := range cfg.memory {
			if err := step(fmt.Sprintf("memory-%d", n), func() (Row, error) { return memory(ctx, cfg, server, sim, n, log) }); err != nil {
				return rows, err
			}
		}
	}
	return rows, nil
}

// runFleet runs the scenarios that share one lwm2md with DTLS and NATS.
func runFleet(ctx context.Context, cfg config, server, sim, tmp string, log io.Writer, step func(string, func() (Row, error)) error) error {
	want := func(s string) bool { return slices.Contains(cfg.scenarios, s) }
	srv, err := prepare(server, cfg.dataRoot, serverOpts{dtls: want("reg-dtls"), nats: want("notify")})
	if err != nil {
		return err
	}
	defer srv.stop()
	f := &fleet{cfg: cfg, sim: sim, srv: srv, log: log}
	if want("reg-dtls") {
		// The simulator derives the PSKs from a seed and writes them in
		// lwm2md's import format; lwm2md imports them before it starts.
		f.pskCSV = filepath.Join(tmp, "psk.csv")
		p, err := startSim(sim, []string{"-n", strconv.Itoa(cfg.devices), "-endpoint-prefix", "dtls-",
			"-psk-seed", "lwm2md-bench", "-write-psk-csv", f.pskCSV}, log)
		if err != nil {
			return err
		}
		<-p.exited
		if p.cmd.ProcessState.ExitCode() != 0 {
			return fmt.Errorf("bench: lwm2m-sim -write-psk-csv: %s", p.stderrTail())
		}
		fmt.Fprintf(log, "bench: lwm2md import %d PSKs\n", cfg.devices)
		if err := srv.importFile(ctx, f.pskCSV); err != nil {
			return err
		}
	}
	fmt.Fprintf(log, "bench: starting lwm2md (CoAP %s, HTTP %s)\n", srv.coap, srv.http)
	if err := srv.start(ctx); err != nil {
		return err
	}
	steps := []struct {
		name string
		f    func() (Row, error)
	}{
		{"reg-udp", func() (Row, error) { return f.storm(ctx, false) }},
		{"reg-dtls", func() (Row, error) { return f.storm(ctx, true) }},
		{"notify", func() (Row, error) { return f.notify(ctx) }},
		{"rest", func() (Row, error) { return f.rest(ctx) }},
	}
	for _, s := range steps {
		if want(s.name) {
			if err := step(s.name, s.f); err != nil {
				return err
			}
		}
	}
	return nil
}

// ratios divides each row's figure by its baseline's, when the baseline
// ran; the go-coap baseline is itself compared with the UDP echo.
func ratios(rows []Row) {
	by := map[string]float64{}
	for _, r := range rows {
		by[r.Scenario] = r.Value
	}
	for i := range rows {
		if rows[i].Scenario == "baseline-coap" {
			rows[i].Baseline = "baseline-udp"
		}
		if b := by[rows[i].Baseline]; b > 0 {
			rows[i].Ratio = rows[i].Value / b
		} else {
			rows[i].Baseline = ""
		}
	}
}

func writeTable(w io.Writer, rep Report) {
	fmt.Fprintf(w, "%s, %s, %d CPUs, load average at the start: %s\n\n", rep.Start.Format(time.RFC3339), rep.GoVersion, rep.CPUs, rep.LoadAverage)
	fmt.Fprintln(w, "| scenario | devices | result | p50 | p99 | ratio to baseline | notes |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---|")
	for _, r := range rep.Rows {
		ratio := "—"
		if r.Baseline != "" {
			ratio = fmt.Sprintf("%.3g × %s", r.Ratio, r.Baseline)
		}
		fmt.Fprintf(w, "| %s: %s | %s | %s %s | %s | %s | %s | %s |\n", r.Scenario, r.Title, groupInt(int64(r.Devices)),
			group(r.Value), r.Unit, ms(r.P50), ms(r.P99), ratio, r.Note)
	}
}

func ms(v float64) string {
	if v == 0 {
		return "—"
	}
	return strconv.FormatFloat(v, 'g', 3, 64) + " ms"
}

// group formats v with thousands separators, one decimal below 100.
func group(v float64) string {
	if v < 100 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return groupInt(int64(v + 0.5))
}

// groupInt formats n with thousands separators.
func groupInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
