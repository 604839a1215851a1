package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/api"
	"github.com/lwm2md/lwm2md/api/web"
	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/server"
)

// browserTools finds node, Debian's chromium and npm's playwright-core
// (both installed by .ci/run), or skips saying what to install.
func browserTools(t *testing.T) (node, chromium, nodeModules string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed; the browser test needs Node.js (apt-get install nodejs npm)")
	}
	chromium = os.Getenv("LWM2MD_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("Chromium is not installed at %s (apt-get install chromium, or set LWM2MD_CHROMIUM)", chromium)
	}
	nodeModules = os.Getenv("LWM2MD_NODE_MODULES")
	if nodeModules == "" {
		dir := os.Getenv("LWM2M_NODE_LIB")
		if dir == "" {
			dir = filepath.Join(os.TempDir(), "lwm2md-npm")
		}
		nodeModules = filepath.Join(dir, "node_modules")
	}
	if _, err := os.Stat(filepath.Join(nodeModules, "playwright-core", "package.json")); err != nil {
		t.Skipf("playwright-core is not installed in %s (run .ci/run, or npm install --prefix %s playwright-core@1.65.1; or set LWM2MD_NODE_MODULES)", nodeModules, filepath.Dir(nodeModules))
	}
	return node, chromium, nodeModules
}

// stack is an LwM2M server on UDP loopback with the REST API and the object
// browser on HTTP loopback, twice: without tokens (web) and with a viewer
// token (tokenWeb).
type stack struct {
	srv      *server.Server
	web      *httptest.Server
	tokenWeb *httptest.Server
}

const viewerToken = "browser-test-viewer-token"

// serve runs the API with the object browser on 127.0.0.1:0.
func serve(t *testing.T, cfg api.Config) *httptest.Server {
	t.Helper()
	cfg.UI = web.Handler()
	a, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	hs := httptest.NewUnstartedServer(a.Handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs.Listener = ln
	hs.Start()
	// The page holds an event stream open; close it before the server.
	t.Cleanup(func() { hs.CloseClientConnections(); hs.Close() })
	return hs
}

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	// A short awake window, so that the queue-mode device falls asleep
	// during the test (the others are not in queue mode).
	srv, err := server.New(server.Config{UDPAddr: "127.0.0.1:0", AwakeWindow: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &stack{
		srv:      srv,
		web:      serve(t, api.Config{Server: srv}),
		tokenWeb: serve(t, api.Config{Server: srv, Tokens: map[string]api.Role{viewerToken: api.RoleViewer}}),
	}
}

// device starts a client engine with the Device object and an IPSO
// temperature sensor whose value changes every 300 ms; a queue-mode one
// sleeps after a second without traffic.
func (s *stack) device(t *testing.T, ep, version string, queue bool) *client.Client {
	t.Helper()
	temp := client.NewTemperature(client.SensorConfig{Interval: 300 * time.Millisecond, Seed: 7})
	cfg := client.Config{
		Endpoint:  ep,
		ServerURI: "coap://" + s.srv.Addr().String(),
		Version:   version,
		Lifetime:  300 * time.Second,
		Objects:   []*client.Object{temp.Object},
		Device:    client.DeviceInfo{Manufacturer: "lwm2md test works", Model: "browser-1"},
	}
	if queue {
		// A sleeping sensor does not sample: its notifications would
		// wake it.
		temp = client.NewTemperature(client.SensorConfig{Seed: 7})
		cfg.Objects = []*client.Object{temp.Object}
		cfg.Queue, cfg.AwakeWindow = true, time.Second
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("%s: start: %v", ep, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestBrowser drives the object browser in headless Chromium against a
// real server, the REST API and two client engine devices: the list with
// live updates and filters, a device page, Read, Write (checked on the
// device), Observe with changing values, an error shown from the API, and
// the end of the observation. Screenshots go to the test's temporary
// directory (kept with LWM2MD_SCREENSHOTS=dir).
func TestBrowser(t *testing.T) {
	node, chromium, nodeModules := browserTools(t)
	s := newStack(t)
	const ep, ep2, ep3 = "browser-dev-1", "browser-dev-2", "browser-sleeper"
	dev := s.device(t, ep, "1.1", false)
	var sleeper *client.Client

	// The page must be reachable before a browser is spent on it.
	res, err := http.Get(s.web.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET /: %s", res.Status)
	}

	shots := os.Getenv("LWM2MD_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	script, err := filepath.Abs(filepath.Join("testdata", "browser.cjs"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Env = append(os.Environ(),
		"NODE_PATH="+nodeModules,
		"LWM2MD_UI_URL="+s.web.URL+"/",
		"LWM2MD_CHROMIUM="+chromium,
		"LWM2MD_SCREENSHOTS="+shots,
		"LWM2MD_EP="+ep,
		"LWM2MD_EP2="+ep2,
		"LWM2MD_EP3="+ep3,
		"LWM2MD_TOKEN_URL="+s.tokenWeb.URL+"/",
		"LWM2MD_TOKEN="+viewerToken,
	)
	cmd.Stderr = &testWriter{t: t, prefix: "node: "}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	steps := map[string]map[string]any{}
	failed := runScript(t, stdout, stdin, steps, func(wait string) {
		switch wait {
		case "register-second":
			s.device(t, ep2, "1.2", false)
		case "register-sleeper":
			sleeper = s.device(t, ep3, "1.1", true)
		case "wake-sleeper":
			// The queued Read must still be waiting: the device is
			// asleep until now.
			if qs, err := s.srv.Queue(context.Background(), ep3); err != nil || len(qs) != 1 {
				t.Errorf("queue of %s before waking: %v, %v", ep3, qs, err)
			}
			wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := sleeper.Wake(wctx); err != nil {
				t.Errorf("wake %s: %v", ep3, err)
			}
			wcancel()
		default:
			t.Errorf("script waits for %q, which the test does not know", wait)
		}
	})
	stdin.Close()
	if err := cmd.Wait(); err != nil || failed != "" {
		t.Fatalf("browser script: %v\n%s\nscreenshots in %s", err, failed, shots)
	}

	checks := []struct {
		step, key string
		want      func(any) bool
		desc      string
	}{
		{"list", "status", eq("online"), "the device is online in the list"},
		{"live-list", "version", eq("1.2"), "the second device appears live, LwM2M 1.2"},
		{"device", "object", eq("Temperature"), "the object's name from the model"},
		{"device", "resource", eq("Manufacturer"), "the resource's name from the model"},
		{"read", "manufacturer", eq("lwm2md test works"), "Read /3/0 shows the manufacturer"},
		{"read", "model", eq("browser-1"), "Read /3/0 shows the model number"},
		{"write", "value", eq("+02:00"), "the written UTC offset is read back"},
		{"write-instance", "value", eq("greenhouse"), "the instance written as JSON is read back"},
		{"write-instance", "executed", contains("Executed"), "Execute is confirmed"},
		{"create", "value", eq("cellar"), "a created instance is shown with its value"},
		{"observe", "rowClass", contains("observed"), "the observed row is marked"},
		{"error", "toast", contains("/3/0"), "the device's refusal is shown with the path"},
		{"error", "toast", contains("4.05"), "the device's CoAP code is shown"},
		{"queued", "queued", contains("Read /3/0"), "the queued Read is listed"},
		{"queued", "manufacturer", eq("lwm2md test works"), "the queued Read's result fills the tree"},
		{"token", "denied", contains("401"), "without a token the page shows the 401"},
		{"token", "denied", contains("Set an API token"), "and says what to do"},
		{"token", "stored", isTrue, "the token is kept in local storage"},
		{"token", "forbidden", contains("403"), "a viewer's Write shows the 403"},
	}
	for _, c := range checks {
		t.Run(c.step+"/"+c.key, func(t *testing.T) {
			got, ok := steps[c.step][c.key]
			if !ok || !c.want(got) {
				t.Errorf("%s: %s = %v", c.desc, c.key, got)
			}
		})
	}
	for _, st := range []string{"filters", "cancel", "sleeping"} {
		if _, ok := steps[st]; !ok {
			t.Errorf("step %s did not report", st)
		}
	}

	// The write reached the device itself, not only the page.
	v, ok := dev.Object(3).Get(objects.MustParsePath("/3/0/14"))
	if !ok || v.Str() != "+02:00" {
		t.Errorf("device /3/0/14 = %v (%v), want +02:00", v, ok)
	}
	if v, ok := dev.Object(3303).Get(objects.MustParsePath("/3303/0/5750")); !ok || v.Str() != "greenhouse" {
		t.Errorf("device /3303/0/5750 = %v (%v), want greenhouse", v, ok)
	}
	if dev.Object(3303).HasInstance(1) {
		t.Error("instance /3303/1 deleted from the page is still on the device")
	}
	// Distinct temperatures were seen, each a number.
	vals, _ := steps["observe"]["values"].([]any)
	if len(vals) < 3 {
		t.Fatalf("observed values %v", vals)
	}
	for i, x := range vals {
		if i > 0 && x == vals[i-1] {
			t.Errorf("value %d did not change: %v", i, vals)
		}
		if s, _ := x.(string); strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "Cel")) == "" {
			t.Errorf("value %d is %q", i, x)
		}
	}
	for _, f := range []string{"list.png", "device.png"} {
		if st, err := os.Stat(filepath.Join(shots, f)); err != nil || st.Size() < 10000 {
			t.Errorf("screenshot %s: %v", f, err)
		}
	}
	t.Logf("screenshots in %s", shots)
}

// runScript reads the script's JSON lines into steps, answers its waits
// with act, and returns the failure it reported ("" when none).
func runScript(t *testing.T, stdout io.Reader, stdin io.Writer, steps map[string]map[string]any, act func(string)) string {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Logf("script: %s", sc.Text())
			continue
		}
		t.Logf("script: %s", sc.Text())
		switch {
		case m["fail"] != nil:
			return m["fail"].(string)
		case m["wait"] != nil:
			act(m["wait"].(string))
			io.WriteString(stdin, "ok\n")
		case m["step"] != nil:
			steps[m["step"].(string)] = m
		}
	}
	return ""
}

func isTrue(v any) bool { b, _ := v.(bool); return b }

func eq(want string) func(any) bool {
	return func(v any) bool { s, _ := v.(string); return s == want }
}

func contains(want string) func(any) bool {
	return func(v any) bool { s, _ := v.(string); return strings.Contains(s, want) }
}

// testWriter sends a process's output to the test log, line by line.
type testWriter struct {
	t      *testing.T
	prefix string
}

func (w *testWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log(w.prefix + l)
	}
	return len(p), nil
}
