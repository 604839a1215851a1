package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/server"
)

// TestServerMetrics runs a server and a device on loopback and reads the
// exposition the way Prometheus would.
func TestServerMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := server.New(server.Config{UDPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	reg := NewRegistry()
	m, err := WatchServer(ctx, s, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()

	c, err := client.New(client.Config{Endpoint: "metrics-1", ServerURI: "coap://" + s.Addr().String(),
		LocalAddr: "127.0.0.1:0", Version: "1.1", Lifetime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := s.Read(ctx, "metrics-1", objects.MustParsePath("/3/0/0")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(ctx, "metrics-1", objects.MustParsePath("/3/7")); err == nil {
		t.Fatal("read of a missing instance succeeded")
	}

	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()
	want := []string{
		`lwm2md_registrations{version="1.1"} 1`,
		`lwm2md_registration_events_total{kind="registered"} 1`,
		`lwm2md_operation_duration_seconds_count{op="read",outcome="ok"} 1`,
		`lwm2md_operation_duration_seconds_count{op="read",outcome="4.04"} 1`,
		`lwm2md_server_associations 1`,
		`lwm2md_server_coap_messages_received_total `,
		`lwm2md_server_dtls_handshake_failures_total{reason="credentials"} 0`,
		`lwm2md_server_dtls_handshakes_total 0`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	}
	poll(t, srv.URL, want)

	if err := c.Close(); err != nil { // de-registers
		t.Fatal(err)
	}
	poll(t, srv.URL, []string{`lwm2md_registrations{version="1.1"} 0`, `lwm2md_registration_events_total{kind="deregistered"} 1`})
}

// poll scrapes until every wanted line is in the exposition: events reach
// the metrics asynchronously.
func poll(t *testing.T, url string, want []string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := srvGet(url)
		if err != nil {
			t.Fatal(err)
		}
		missing := ""
		for _, w := range want {
			if !strings.Contains(resp, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return resp
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the exposition:\n%s", missing, grep(resp, "lwm2md_"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func srvGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func grep(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestOutcome(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{fmt.Errorf("wrapped: %w", server.ErrTimeout), "timeout"},
		{&server.CoAPError{Op: "read", Code: server.Code(0x84)}, "4.04"},
		{errors.New("other"), "error"},
	} {
		if got := Outcome(tc.err); got != tc.want {
			t.Errorf("Outcome(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestQueueMetrics(t *testing.T) {
	m := newServerMetrics()
	for _, e := range []server.Event{
		{Kind: server.EventSleeping, Endpoint: "q1"},
		{Kind: server.EventSleeping, Endpoint: "q1"}, // twice: counted once
		{Kind: server.EventSleeping, Endpoint: "q2"},
		{Kind: server.EventQueued, Endpoint: "q1", Op: "read"},
		{Kind: server.EventQueued, Endpoint: "q1", Op: "write"},
		{Kind: server.EventAwake, Endpoint: "q1"},
		{Kind: server.EventRequestResult, Endpoint: "q1", Op: "read"},
		{Kind: server.EventRequestResult, Endpoint: "q1", Op: "write", Err: server.ErrTimeout},
		{Kind: server.EventDeregistered, Endpoint: "q2"},
	} {
		m.observe(e)
	}
	for name, tc := range map[string]struct {
		c    prometheus.Collector
		want float64
	}{
		"sleeping":     {m.sleeping, 0},
		"queued":       {m.queued, 2},
		"read ok":      {m.results.WithLabelValues("read", "ok"), 1},
		"write expire": {m.results.WithLabelValues("write", "timeout"), 1},
	} {
		if got := testutil.ToFloat64(tc.c); got != tc.want {
			t.Errorf("%s = %v, want %v", name, got, tc.want)
		}
	}
	m.observe(server.Event{Kind: server.EventSleeping, Endpoint: "q3"})
	if got := testutil.ToFloat64(m.sleeping); got != 1 {
		t.Errorf("sleeping = %v, want 1", got)
	}
}
