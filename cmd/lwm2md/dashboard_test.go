package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/client"
)

// The secrets of the fleet scenario: no log line may hold them.
var (
	scenarioSecretsKey = strings.Repeat("5a17", 16) // 32 bytes, hex
	scenarioPSKKey     = []byte("dash-psk-key-16b")
)

// scenario is what runFleet saw: the exposition after the fleet's
// traffic and every log line of the binary, at debug level.
type scenario struct {
	metrics string
	log     []string
}

// runFleet runs the real binary with every role that has metrics (UDP,
// DTLS, the embedded NATS bridge, the REST API) and drives, through the
// REST API and the client engine, the traffic that makes the labelled
// series exist: a PSK credential put, a DTLS registration, a Read, an
// Observe with notifications, and a queue-mode device whose queued Read
// is answered when it wakes. It scrapes /metrics and stops the binary.
func runFleet(t *testing.T) scenario {
	t.Helper()
	start := time.Now()
	p := startBinary(t, nil, "--data-dir", t.TempDir(), "--log-format", "json",
		"--coap-addr", "127.0.0.1:0", "--coaps-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:0",
		"--secrets-key", scenarioSecretsKey, "--awake-window", "500ms")
	lines := p.expectAll("lwm2m server listening\"", "lwm2m server listening (dtls)", "embedded NATS listening", "http listening")
	udpAddr, dtlsAddr := listenAddr(t, lines[0]), listenAddr(t, lines[1])
	web := "http://" + listenAddr(t, lines[3]) + "/api/v1"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	cred := fmt.Sprintf(`{"mode":"psk","identity":"dash-psk-id","key":"%s"}`, hex.EncodeToString(scenarioPSKKey))
	if code, body := httpCall(t, "PUT", web+"/credentials/dash-psk", cred); code/100 != 2 {
		t.Fatalf("PUT credentials: %d %s", code, body)
	}
	temp := client.NewTemperature(client.SensorConfig{Interval: 100 * time.Millisecond, Seed: 1})
	psk := startClient(ctx, t, client.Config{Endpoint: "dash-psk", ServerURI: "coaps://" + dtlsAddr,
		DTLS: client.DTLSConfig{PSKIdentity: "dash-psk-id", PSKKey: scenarioPSKKey}, Objects: []*client.Object{temp.Object}})
	defer psk.Close()
	if code, body := httpCall(t, "GET", web+"/clients/dash-psk/3/0/0", ""); code != http.StatusOK {
		t.Fatalf("Read over DTLS: %d %s", code, body)
	}
	if code, body := httpCall(t, "POST", web+"/clients/dash-psk/3303/0/5700/observe", ""); code/100 != 2 {
		t.Fatalf("Observe: %d %s", code, body)
	}

	t.Logf("%s: DTLS device registered, read and observed", time.Since(start))
	q := startClient(ctx, t, client.Config{Endpoint: "dash-q", ServerURI: "coap://" + udpAddr, Queue: true, AwakeWindow: 300 * time.Millisecond})
	defer q.Close()
	waitFor(t, 10*time.Second, "dash-q asleep on both sides", func() bool {
		_, body := httpCall(t, "GET", web+"/clients/dash-q", "")
		return q.Asleep() && strings.Contains(body, `"status":"sleeping"`)
	})
	if code, body := httpCall(t, "GET", web+"/clients/dash-q/3/0/0", ""); code != http.StatusAccepted {
		t.Fatalf("Read of a sleeping device: %d %s, want 202", code, body)
	}
	t.Logf("%s: read queued for the sleeping device", time.Since(start))
	if err := q.Wake(ctx); err != nil {
		t.Fatal(err)
	}

	var exposition string
	waitFor(t, 15*time.Second, "notifications and the queued read's result in /metrics", func() bool {
		_, exposition = httpCall(t, "GET", strings.TrimSuffix(web, "/api/v1")+"/metrics", "")
		return strings.Contains(exposition, `lwm2md_queued_request_results_total{op="read",outcome="ok"} 1`) &&
			regexp.MustCompile(`(?m)^lwm2md_server_notifications_total [1-9]`).MatchString(exposition) &&
			regexp.MustCompile(`(?m)^lwm2md_server_dtls_handshakes_total [1-9]`).MatchString(exposition)
	})
	t.Logf("%s: all series in /metrics", time.Since(start))
	// De-register while the server is up (Close is idempotent; the
	// deferred ones cover the failures above).
	for _, c := range []*client.Client{psk, q} {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}
	return scenario{metrics: exposition, log: p.stopAll()}
}

// startClient starts a device engine on loopback and waits until it is
// registered.
func startClient(ctx context.Context, t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	cfg.LocalAddr, cfg.Version, cfg.Lifetime = "127.0.0.1:0", "1.1", time.Minute
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start %s: %v", cfg.Endpoint, err)
	}
	return c
}

// httpCall makes one HTTP request and returns the status and body.
func httpCall(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// expectAll waits until a line holding each of subs has been logged, in
// any order, and returns the first line for each.
func (p *proc) expectAll(subs ...string) []string {
	p.t.Helper()
	found := make([]string, len(subs))
	missing := len(subs)
	timeout := time.After(10 * time.Second)
	for missing > 0 {
		select {
		case l, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("stderr closed; log:\n%s", strings.Join(p.log, "\n"))
			}
			p.log = append(p.log, l)
			for i, s := range subs {
				if found[i] == "" && strings.Contains(l, s) {
					found[i] = l
					missing--
				}
			}
		case <-timeout:
			p.t.Fatalf("not all of %q in:\n%s", subs, strings.Join(p.log, "\n"))
		}
	}
	return found
}

// stopAll stops the binary with SIGTERM, checks that it exits cleanly and
// returns every line it logged.
func (p *proc) stopAll() []string {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	for l := range p.lines {
		p.log = append(p.log, l)
	}
	if err := p.cmd.Wait(); err != nil {
		p.t.Fatalf("exit: %v\n%s", err, strings.Join(p.log, "\n"))
	}
	if !slices.ContainsFunc(p.log, func(l string) bool { return strings.Contains(l, "lwm2md stopped") }) {
		p.t.Fatalf("no clean stop:\n%s", strings.Join(p.log, "\n"))
	}
	return p.log
}

// TestDashboardMetricsExported: every metric docs/grafana/lwm2md.json
// queries is in the exposition of `lwm2md serve` once a fleet has used
// every role, so that no panel stays empty for a misspelt or removed
// metric.
func TestDashboardMetricsExported(t *testing.T) {
	const file = "../../docs/grafana/lwm2md.json"
	used := dashboardMetrics(t, file)
	if len(used) < 20 {
		t.Fatalf("only %d metrics found in the dashboard: %v", len(used), used)
	}
	exported := exposedLabels(runFleet(t).metrics)
	for _, name := range used {
		if _, ok := exported[name]; !ok {
			t.Errorf("the dashboard queries %s, which /metrics does not export", name)
		}
	}
	// A label the panel groups by or names in its legend must be on one
	// of the metrics it queries, or the panel shows one unnamed series.
	for _, q := range dashboardQueries(t, file) {
		for _, label := range q.labels {
			if label == "instance" || label == "job" { // added by Prometheus
				continue
			}
			if !slices.ContainsFunc(promqlMetrics(q.expr), func(m string) bool { return exported[m][label] }) {
				t.Errorf("panel %q uses label %q, which none of its metrics has: %s", q.panel, label, q.expr)
			}
		}
	}
}

// exposedLabels are the sample names of a text exposition (histograms give
// their _bucket, _sum and _count), each with the label names its series
// carry.
func exposedLabels(exposition string) map[string]map[string]bool {
	names := map[string]map[string]bool{}
	for _, l := range strings.Split(exposition, "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.IndexAny(l, "{ ")
		if i <= 0 {
			continue
		}
		labels := names[l[:i]]
		if labels == nil {
			labels = map[string]bool{}
			names[l[:i]] = labels
		}
		if l[i] == '{' {
			for _, m := range exposedLabel.FindAllStringSubmatch(l[i:strings.LastIndexByte(l, '}')+1], -1) {
				labels[m[1]] = true
			}
		}
	}
	return names
}

// query is one panel target: its expression and the labels it groups by
// or shows in its legend.
type query struct {
	panel, expr string
	labels      []string
}

var (
	exposedLabel = regexp.MustCompile(`[{,]([a-zA-Z_][a-zA-Z0-9_]*)="`)
	groupBy      = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	legendLabel  = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
)

// dashboardQueries reads the panels' targets of a Grafana dashboard.
func dashboardQueries(t *testing.T, file string) []query {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr   string `json:"expr"`
				Legend string `json:"legendFormat"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var qs []query
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			q := query{panel: p.Title, expr: tg.Expr}
			for _, m := range groupBy.FindAllStringSubmatch(tg.Expr, -1) {
				for _, l := range strings.Split(m[1], ",") {
					if l = strings.TrimSpace(l); l != "" {
						q.labels = append(q.labels, l)
					}
				}
			}
			for _, m := range legendLabel.FindAllStringSubmatch(tg.Legend, -1) {
				q.labels = append(q.labels, m[1])
			}
			qs = append(qs, q)
		}
	}
	return qs
}

// dashboardMetrics reads a Grafana dashboard and returns the metric names
// of its panels' PromQL and of its label_values() variables, sorted.
func dashboardMetrics(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	set := map[string]bool{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, m := range promqlMetrics(tg.Expr) {
				set[m] = true
			}
		}
	}
	for _, v := range d.Templating.List {
		q, _ := v.Query.(string)
		if m := labelValues.FindStringSubmatch(q); m != nil {
			set[strings.TrimSpace(m[1])] = true
		}
	}
	var names []string
	for n := range set {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

var (
	labelValues = regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,`)
	// What is not a metric name: strings, label matchers, ranges and
	// the label lists of by/without/on/ignoring/group_*.
	promqlNoise = []*regexp.Regexp{
		regexp.MustCompile(`"(?:[^"\\]|\\.)*"`),
		regexp.MustCompile(`\{[^}]*\}`),
		regexp.MustCompile(`\[[^\]]*\]`),
		regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`),
	}
	promqlIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promqlKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
		"group_right": true, "bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true, "nan": true}
)

// promqlMetrics returns the metric names of a PromQL expression: the
// identifiers left once the noise is gone that are neither keywords nor
// function calls.
func promqlMetrics(expr string) []string {
	for _, re := range promqlNoise {
		expr = re.ReplaceAllString(expr, " ")
	}
	var out []string
	for _, loc := range promqlIdent.FindAllStringIndex(expr, -1) {
		name := expr[loc[0]:loc[1]]
		rest := strings.TrimLeft(expr[loc[1]:], " \t\n")
		if promqlKeywords[strings.ToLower(name)] || strings.HasPrefix(rest, "(") {
			continue
		}
		out = append(out, name)
	}
	return out
}

func TestPromQLMetrics(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum by (version) (lwm2md_registrations{instance=~"$instance"})`, []string{"lwm2md_registrations"}},
		{`histogram_quantile(0.99, sum by (le, op) (rate(lwm2md_api_request_duration_seconds_bucket{instance=~"$instance"}[$__rate_interval])))`,
			[]string{"lwm2md_api_request_duration_seconds_bucket"}},
		{`rate(process_cpu_seconds_total{job="a,b"}[5m]) / on (instance) group_left go_goroutines`, []string{"process_cpu_seconds_total", "go_goroutines"}},
	} {
		if got := promqlMetrics(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("promqlMetrics(%q) = %v, want %v", tc.expr, got, tc.want)
		}
	}
}

// TestBinaryNoSecretsInLog: at debug level, through a credential PUT, a
// DTLS PSK handshake and registration and the traffic after, no log line
// holds the PSK key or the secrets-key, in any encoding.
func TestBinaryNoSecretsInLog(t *testing.T) {
	log := strings.Join(runFleet(t).log, "\n")
	if !strings.Contains(log, `"level":"DEBUG"`) || !strings.Contains(log, "dash-psk-id") {
		t.Fatalf("the log is not at debug level or missed the DTLS session:\n%s", log)
	}
	secretsKey, _ := hex.DecodeString(scenarioSecretsKey)
	for name, secret := range map[string][]byte{"PSK key": scenarioPSKKey, "secrets-key": secretsKey} {
		for _, enc := range []string{string(secret), hex.EncodeToString(secret), strings.ToUpper(hex.EncodeToString(secret)),
			base64.StdEncoding.EncodeToString(secret), base64.RawURLEncoding.EncodeToString(secret), fmt.Sprint(secret)} {
			if strings.Contains(log, enc) {
				t.Errorf("the %s reached the log as %q", name, enc)
			}
		}
	}
}
