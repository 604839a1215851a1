package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/internal/shared"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp"
)

func noEnv(string) (string, bool) { return "", false }

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
		done <- run(ctx, []string{"--log-format", "json", "--coap-addr", "127.0.0.1:0", "--models", shared.Dir(t, "lwm2m-registry")}, noEnv, &bytes.Buffer{}, &stderr)
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

// TestBinarySIGTERM builds the real binary and stops it with SIGTERM, as
// an init system would.
func TestBinarySIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "lwm2md")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--data-dir", t.TempDir(), "--coap-addr", "127.0.0.1:0", "--log-format", "json")
	cmd.Env = append(os.Environ(), "LWM2MD_LOG_LEVEL=debug")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var log []string
	expect := func(s string) string {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("stderr closed before %q; log:\n%s", s, strings.Join(log, "\n"))
				}
				log = append(log, l)
				if strings.Contains(l, s) {
					return l
				}
			case <-timeout:
				t.Fatalf("no %q in:\n%s", s, strings.Join(log, "\n"))
			}
		}
	}
	expect("object models loaded")
	addr := listenAddr(t, expect("lwm2m server listening"))
	registerOnce(t, addr)
	cmd.Process.Signal(syscall.SIGTERM)
	expect("lwm2md shutting down")
	expect("lwm2md stopped")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
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

// registerOnce registers an endpoint over UDP, as a device would, and
// checks the server answers 2.01 Created with a location.
func registerOnce(t *testing.T, addr string) {
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
	if loc, err := resp.Options().LocationPath(); err != nil || !strings.HasPrefix(loc, "/rd/") {
		t.Fatalf("Location-Path %q, %v", loc, err)
	}
}
