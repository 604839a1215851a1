package client

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/builtin"
	"github.com/lwm2md/lwm2md/server"
)

var testModels = builtin.Registry()

// logBuffer collects log lines of a test, and stops taking them when the
// test ends so that late goroutines cannot write into a finished test.
type logBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	closed bool
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.buf.Write(p)
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}

func testLogger(t testing.TB, name string) *slog.Logger {
	logs := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log:\n%s", name, logs.String())
		}
		logs.close()
	})
	return slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newServer starts an lwm2md server on a free loopback port.
func newServer(t testing.TB, mut func(*server.Config)) *server.Server {
	t.Helper()
	cfg := server.Config{
		UDPAddr:      "127.0.0.1:0",
		Models:       testModels,
		Logger:       testLogger(t, "server"),
		RegisterRate: -1, // tests register many times from one address
	}
	if mut != nil {
		mut(&cfg)
	}
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// testConfig is a client configuration for s with fast retransmissions.
func testConfig(t testing.TB, addr, ep, version string) Config {
	return Config{
		Endpoint:      ep,
		ServerURI:     "coap://" + addr,
		LocalAddr:     "127.0.0.1:0",
		Version:       version,
		Lifetime:      60 * time.Second,
		Models:        testModels,
		AckTimeout:    300 * time.Millisecond,
		MaxRetransmit: 3,
		Tick:          50 * time.Millisecond,
		RebootDelay:   50 * time.Millisecond,
		Retry:         RetryPolicy{Count: 3, Timer: 100 * time.Millisecond, SequenceDelay: 200 * time.Millisecond, SequenceCount: 2},
		Logger:        testLogger(t, "client "+ep),
	}
}

// startClient builds and starts a client, failing the test unless it
// registers.
func startClient(t testing.TB, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		_ = c.Close()
		t.Fatalf("start %s: %v", cfg.Endpoint, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitEvent waits for the first event of sub that matches.
func waitEvent(t testing.TB, sub *server.Subscription, d time.Duration, what string, match func(server.Event) bool) server.Event {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-sub.C:
			if !ok {
				t.Fatalf("subscription closed waiting for %s", what)
			}
			if match(e) {
				return e
			}
		case <-timer.C:
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

func path(s string) objects.Path { return objects.MustParsePath(s) }
