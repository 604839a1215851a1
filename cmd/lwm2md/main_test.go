package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp"
	bbolt "go.etcd.io/bbolt"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/bolt"
)

func noEnv(string) (string, bool) { return "", false }

// testListeners turns off the listeners a test does not ask for and
// moves the HTTP one to a free port, so that no test binds a standard
// port; a test's own arguments come after and win.
var testListeners = []string{"--coaps-addr=", "--bs-coap-addr=", "--bs-coaps-addr=", "--nats-addr=", "--http-addr=127.0.0.1:0"}

// syncBuffer is a bytes.Buffer safe for a writer and a poller.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// waitFor polls until cond holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan int)
	go func() {
		done <- run(ctx, append(append([]string(nil), testListeners...), "--http-addr=", "--log-format", "json", "--data-dir", t.TempDir(), "--coap-addr", "127.0.0.1:0", "--models", shared.Dir(t, "lwm2m-registry")), noEnv, &bytes.Buffer{}, &stderr)
	}()
	waitFor(t, 10*time.Second, "models loaded", func() bool { return strings.Contains(stderr.String(), "object models loaded") })
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("did not stop")
	}
	if !strings.Contains(stderr.String(), `"msg":"lwm2md shutting down"`) {
		t.Errorf("no structured shutdown line:\n%s", stderr.String())
	}
}

func TestBadConfigExits2(t *testing.T) {
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"--coap-addr", "nonsense"}, noEnv, &bytes.Buffer{}, &stderr); code != 2 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(stderr.String(), "coap-addr") {
		t.Errorf("error does not name the setting: %s", stderr.String())
	}
}

func TestConfigPrintAndVersion(t *testing.T) {
	var out bytes.Buffer
	env := func(k string) (string, bool) {
		if k == "LWM2MD_POSTGRES_URL" {
			return "postgres://u:topsecret@db/x", true
		}
		return "", false
	}
	if code := run(context.Background(), []string{"config", "print", "--coap-addr", ""}, env, &out, &bytes.Buffer{}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if strings.Contains(out.String(), "topsecret") || !strings.Contains(out.String(), `coap-addr: "" # flag --coap-addr`) {
		t.Fatalf("config print:\n%s", out.String())
	}
	out.Reset()
	if run(context.Background(), []string{"version"}, noEnv, &out, &bytes.Buffer{}) != 0 || !strings.HasPrefix(out.String(), "lwm2md ") {
		t.Fatalf("version: %q", out.String())
	}
}

// buildBinary builds the lwm2md binary once for the tests that run it.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "lwm2md-test-bin")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "lwm2md")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("build: %v\n%s", err, out)
	}
	return bin, nil
})

var binDir string // removed by TestMain

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// proc is a running lwm2md binary and its log lines.
type proc struct {
	t     *testing.T
	cmd   *exec.Cmd
	lines chan string
	log   []string
}

// startBinary runs the real binary, as an init system would, with the
// extra environment variables env.
func startBinary(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append(append([]string(nil), testListeners...), args...)...)
	cmd.Env = append(append(os.Environ(), "LWM2MD_LOG_LEVEL=debug"), env...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, lines: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return p
}

// expect waits for a log line holding s and returns it.
func (p *proc) expect(s string) string {
	p.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("stderr closed before %q; log:\n%s", s, strings.Join(p.log, "\n"))
			}
			p.log = append(p.log, l)
			if strings.Contains(l, s) {
				return l
			}
		case <-timeout:
			p.t.Fatalf("no %q in:\n%s", s, strings.Join(p.log, "\n"))
		}
	}
}

// stop sends SIGTERM and checks the binary stops cleanly.
func (p *proc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.expect("lwm2md shutting down")
	p.expect("lwm2md stopped")
	for range p.lines { // drain until the pipe closes, then Wait
	}
	if err := p.cmd.Wait(); err != nil {
		p.t.Fatalf("exit: %v\n%s", err, strings.Join(p.log, "\n"))
	}
}

// TestBinarySIGTERM builds the real binary and stops it with SIGTERM, as
// an init system would.
func TestBinarySIGTERM(t *testing.T) {
	p := startBinary(t, nil, "--data-dir", t.TempDir(), "--coap-addr", "127.0.0.1:0", "--log-format", "json")
	p.expect("object models loaded")
	p.expect(`"no secrets-key`)
	p.expect(`"store":"bolt"`)
	addr := listenAddr(t, p.expect("lwm2m server listening"))
	registerOnce(t, addr)
	p.stop()
}

// The "devices registered before the crash keep being served":
// a device registers, lwm2md stops and starts again on the same data
// directory, and the device's Update to its Location is answered 2.04
// Changed without a new Register.
func TestBinaryRestartKeepsRegistration(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // created by lwm2md
	restartKeepsRegistration(t, nil, `"store":"bolt"`, "--data-dir", dir)
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("data dir: %v %v", st.Mode(), err)
	}
}

// The same on PostgreSQL, in a schema of its own (made by the test and
// named in the URL's search_path, since lwm2md has no schema setting).
func TestBinaryRestartKeepsRegistrationPostgres(t *testing.T) {
	url, schema, env := postgresEnv(t)
	// Also gives a key: the first run stores its check, the second must
	// open with it.
	key := "LWM2MD_SECRETS_KEY=" + strings.Repeat("42", 32)
	unused := filepath.Join(t.TempDir(), "unused")
	restartKeepsRegistration(t, []string{env, key},
		`"store":"postgres"`, "--data-dir", unused)
	if _, err := os.Stat(unused); !os.IsNotExist(err) {
		t.Errorf("data-dir created with postgres-url set: %v", err)
	}
	// The registration is in the test's schema.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, "registrations"}.Sanitize()).Scan(&n); err != nil || n != 1 {
		t.Fatalf("registrations in schema %s: %d, %v", schema, n, err)
	}
}

func restartKeepsRegistration(t *testing.T, env []string, store string, args ...string) {
	args = append(args, "--coap-addr", "127.0.0.1:0", "--log-format", "json")
	p := startBinary(t, env, args...)
	if l := p.expect("registry store opened"); !strings.Contains(l, store) {
		t.Fatalf("want %s: %s", store, l)
	}
	addr := listenAddr(t, p.expect("lwm2m server listening"))
	loc := registerOnce(t, addr)
	if code := update(t, addr, loc); code != codes.Changed {
		t.Fatalf("Update before the restart answered %v", code)
	}
	p.stop()

	p = startBinary(t, env, args...)
	p.expect("registry store opened")
	if l := p.expect("registrations restored"); !strings.Contains(l, `"count":1`) {
		t.Fatalf("restored: %s", l)
	}
	addr = listenAddr(t, p.expect("lwm2m server listening"))
	if code := update(t, addr, "/rd/nosuchregistration"); code != codes.NotFound {
		t.Fatalf("Update of an unknown registration answered %v", code)
	}
	if code := update(t, addr, loc); code != codes.Changed {
		t.Fatalf("Update after the restart answered %v, want 2.04", code)
	}
	p.stop()
}

// postgresEnv skips without LWM2MD_TEST_POSTGRES; else it makes a schema
// for the test and returns the URL, the schema and the environment
// variable that points lwm2md at it.
func postgresEnv(t *testing.T) (url, schema, env string) {
	t.Helper()
	url = os.Getenv("LWM2MD_TEST_POSTGRES")
	if url == "" {
		t.Skip("LWM2MD_TEST_POSTGRES is not set (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	schema = newSchema(t, url)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url, schema, "LWM2MD_POSTGRES_URL=" + url + sep + "search_path=" + schema
}

// newSchema creates a fresh PostgreSQL schema, dropped when the test
// ends.
func newSchema(t *testing.T, url string) string {
	t.Helper()
	ctx := context.Background()
	var b [6]byte
	rand.Read(b[:])
	name := "lwm2md_cmd_test_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("LWM2MD_TEST_POSTGRES: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// A registry lwm2md cannot trust stops the start with exit code 1 and a
// message naming the problem.
func TestStoreOpenErrors(t *testing.T) {
	key := strings.Repeat("42", 32)
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		args  []string
		want  string
	}{
		{"corrupt file", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, bolt.FileName), bytes.Repeat([]byte("not a bbolt file "), 1000), 0o600)
		}, nil, "damaged or not a registry file"},
		{"schema from the future", func(t *testing.T, dir string) {
			db, err := bbolt.Open(filepath.Join(dir, bolt.FileName), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			db.Update(func(tx *bbolt.Tx) error {
				meta, _ := tx.CreateBucket([]byte("meta"))
				return meta.Put([]byte("schema_version"), binary.BigEndian.AppendUint64(nil, bolt.SchemaVersion+1))
			})
		}, nil, "upgrade lwm2md"},
		{"locked file", func(t *testing.T, dir string) {
			s, err := bolt.Open(dir, bolt.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
		}, nil, "locked by another process"},
		{"wrong key", func(t *testing.T, dir string) {
			other, _ := registry.NewCipher(bytes.Repeat([]byte{7}, 32))
			s, err := bolt.Open(dir, bolt.Options{Cipher: other})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
		}, []string{"--secrets-key", key}, "not configured"},
		{"postgres unreachable", func(t *testing.T, dir string) {},
			[]string{"--postgres-url", "postgres://lwm2md:topsecret@127.0.0.1:1/lwm2md?connect_timeout=2"}, "postgres://lwm2md:xxxxx@127.0.0.1:1/lwm2md"},
		{"data dir is a file", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "file"), nil, 0o600)
		}, []string{"--data-dir"}, "data-dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			args := []string{"--log-format", "json", "--coap-addr", "127.0.0.1:0", "--data-dir", dir}
			if len(tt.args) == 1 && tt.args[0] == "--data-dir" {
				args[len(args)-1] = filepath.Join(dir, "file")
			} else {
				args = append(args, tt.args...)
			}
			var stderr syncBuffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if code := run(ctx, args, noEnv, &bytes.Buffer{}, &stderr); code != 1 {
				t.Fatalf("exit %d, want 1:\n%s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) || strings.Contains(stderr.String(), "lwm2m server listening") {
				t.Fatalf("want %q before any listener:\n%s", tt.want, stderr.String())
			}
			if strings.Contains(stderr.String(), key) || strings.Contains(stderr.String(), "topsecret") {
				t.Fatalf("secret in the log:\n%s", stderr.String())
			}
		})
	}
}

// listenAddr reads the "addr" field of a JSON log line.
func listenAddr(t *testing.T, line string) string {
	t.Helper()
	var rec struct {
		Addr string `json:"addr"`
	}
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Addr == "" {
		t.Fatalf("no addr in %q: %v", line, err)
	}
	return rec.Addr
}

// registerOnce registers an endpoint over UDP, as a device would, checks
// the server answers 2.01 Created with a location, and returns it.
func registerOnce(t *testing.T, addr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cc, err := udp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	resp, err := cc.Post(ctx, "/rd", message.AppLinkFormat, strings.NewReader("</1/0>,</3/0>"),
		message.Option{ID: message.URIQuery, Value: []byte("ep=cmd-test")},
		message.Option{ID: message.URIQuery, Value: []byte("lt=60")},
		message.Option{ID: message.URIQuery, Value: []byte("lwm2m=1.1")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code() != codes.Created {
		t.Fatalf("Register answered %v", resp.Code())
	}
	loc, err := resp.Options().LocationPath()
	if err != nil || !strings.HasPrefix(loc, "/rd/") {
		t.Fatalf("Location-Path %q, %v", loc, err)
	}
	return loc
}

// update sends a registration Update without parameters to loc (LwM2M
// Core 1.1 §6.2.2) from a new socket, and returns the answer's code.
func update(t *testing.T, addr, loc string) codes.Code {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cc, err := udp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	resp, err := cc.Post(ctx, loc, message.AppLinkFormat, nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Code()
}

// TestBinaryHTTPOps checks the operator endpoints of the real binary:
// /healthz, /readyz with the store's check, /metrics with a device, the
// REST API and the web object browser.
func TestBinaryHTTPOps(t *testing.T) {
	p := startBinary(t, nil, "--data-dir", t.TempDir(), "--coap-addr", "127.0.0.1:0", "--log-format", "json")
	coap := listenAddr(t, p.expect("lwm2m server listening"))
	web := "http://" + listenAddr(t, p.expect("http listening"))
	registerOnce(t, coap)
	for _, tc := range []struct{ path, want string }{
		{"/healthz", "ok"},
		{"/readyz", `"store":"ok"`},
		{"/metrics", `lwm2md_registrations{version="1.1"} 1`},
		{"/metrics", "lwm2md_server_associations"},
		{"/api/v1/clients", `"endpoint":"cmd-test"`},
		{"/api/v1/status", `"version"`},
		{"/", "<html"},
	} {
		var body string
		waitFor(t, 5*time.Second, tc.path+" "+tc.want, func() bool {
			resp, err := http.Get(web + tc.path)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
			return resp.StatusCode == http.StatusOK && strings.Contains(body, tc.want)
		})
	}
	p.stop()
}

// The REST API refuses to serve a non-loopback address without tokens,
// and serves it with a token file.
func TestBinaryAPITokens(t *testing.T) {
	var stderr bytes.Buffer
	code := run(context.Background(), append(append([]string(nil), testListeners...), "--data-dir", t.TempDir(), "--coap-addr", "127.0.0.1:0", "--http-addr", "0.0.0.0:0"), noEnv, &bytes.Buffer{}, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "http-addr") {
		t.Fatalf("no tokens on 0.0.0.0: exit %d\n%s", code, stderr.String())
	}
	file := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(file, []byte("# role token\nviewer view-token-0123456789\nadmin admin-token-0123456789\n"), 0o600)
	p := startBinary(t, nil, "--data-dir", t.TempDir(), "--coap-addr", "127.0.0.1:0", "--log-format", "json", "--api-token-file", file)
	web := "http://" + listenAddr(t, p.expect("http listening"))
	for _, tc := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {"wrong-token-0123456789", http.StatusUnauthorized}, {"view-token-0123456789", http.StatusOK}} {
		req, _ := http.NewRequest("GET", web+"/api/v1/clients", nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("token %q: %d, want %d", tc.token, resp.StatusCode, tc.want)
		}
	}
	p.stop()
	for _, l := range p.log {
		if strings.Contains(l, "0123456789") {
			t.Errorf("a token reached the log: %s", l)
		}
	}
}
