package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/objects/builtin"
	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/bolt"
	"github.com/lwm2md/lwm2md/server"
)

// env is one test's stack: an LwM2M server on 127.0.0.1:0, the API over
// httptest on 127.0.0.1:0, and a bolt registry in t.TempDir().
type env struct {
	t     testing.TB
	srv   *server.Server
	api   *API
	http  *httptest.Server
	store registry.Store
	logs  *syncBuffer
	token string // sent as Bearer when not empty
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// openStore opens a registry with sealed secrets in a temporary
// directory.
func openStore(t testing.TB) *bolt.Store {
	t.Helper()
	cipher, err := registry.NewCipher(bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		t.Fatal(err)
	}
	store, err := bolt.Open(t.TempDir(), bolt.Options{Cipher: cipher})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store
}

func newEnv(t testing.TB, mut func(*Config), smut func(*server.Config)) *env {
	t.Helper()
	store := openStore(t)
	scfg := server.Config{UDPAddr: "127.0.0.1:0", Models: builtin.Registry(), RegisterRate: -1}
	if smut != nil {
		smut(&scfg)
	}
	srv, err := server.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	logs := &syncBuffer{}
	cfg := Config{Server: srv, Store: store, Logger: slog.New(slog.NewTextHandler(logs, nil)), Version: "test", Rate: -1}
	if mut != nil {
		mut(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	hs := httptest.NewServer(a.Handler())
	t.Cleanup(hs.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("API log:\n%s", logs.String())
		}
	})
	return &env{t: t, srv: srv, api: a, http: hs, store: store, logs: logs}
}

// device starts the client engine as a device of e's server.
func (e *env) device(ep, version string, mut func(*client.Config)) *client.Client {
	e.t.Helper()
	cfg := client.Config{
		Endpoint:  ep,
		ServerURI: "coap://" + e.srv.Addr().String(),
		LocalAddr: "127.0.0.1:0",
		Version:   version,
		Lifetime:  60 * time.Second,
		Device:    client.DeviceInfo{Manufacturer: "lwm2md", Battery: 87},
		Objects:   []*client.Object{client.NewTemperature(client.SensorConfig{Seed: 1}).Object},
	}
	if mut != nil {
		mut(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		e.t.Fatalf("start %s: %v", ep, err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

// response is an HTTP answer, read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer %d is not a JSON object: %v\n%s", r.status, err, r.body)
	}
	return m
}

// problem checks that the answer is problem+json with the status, and
// returns it.
func (r response) problem(t *testing.T, status int) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json: %s", ct, r.body)
	}
	m := r.json(t)
	if m["status"] != float64(status) || m["title"] == "" || m["detail"] == "" || m["type"] != "about:blank" {
		t.Fatalf("not a complete problem: %s", r.body)
	}
	return m
}

// do sends a request; body may be nil, a string or a []byte, sent with
// Content-Type ctype.
func (e *env) do(method, path string, body any, ctype string, hdr ...string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.http.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.http.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// expect checks the status and returns the answer.
func (e *env) expect(status int, method, path string, body any, ctype string) response {
	e.t.Helper()
	r := e.do(method, path, body, ctype)
	if r.status != status {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, status, r.body)
	}
	return r
}

// sse is an open event stream.
type sse struct {
	t      testing.TB
	events chan sseEvent
	cancel context.CancelFunc
	status int
}

type sseEvent struct {
	id, kind string
	data     map[string]any
}

// stream opens GET path as an event stream.
func (e *env) stream(path string, hdr ...string) *sse {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.http.URL+path, nil)
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.http.Client().Do(req)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	s := &sse{t: e.t, events: make(chan sseEvent, 256), cancel: cancel, status: res.StatusCode}
	e.t.Cleanup(cancel)
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		return s
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		e.t.Fatalf("Content-Type %q", ct)
	}
	go func() {
		defer res.Body.Close()
		defer close(s.events)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		var data []string
		for sc.Scan() {
			line := sc.Text()
			if line == "" {
				if len(data) > 0 {
					_ = json.Unmarshal([]byte(strings.Join(data, "\n")), &ev.data)
					s.events <- ev
				}
				ev, data = sseEvent{}, nil
				continue
			}
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimPrefix(v, " ")
			switch k {
			case "id":
				ev.id = v
			case "event":
				ev.kind = v
			case "data":
				data = append(data, v)
			}
		}
	}()
	return s
}

// next waits for the next event that satisfies ok.
func (s *sse) next(ok func(sseEvent) bool) sseEvent {
	s.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case ev, open := <-s.events:
			if !open {
				s.t.Fatal("event stream ended")
			}
			if ok == nil || ok(ev) {
				return ev
			}
		case <-deadline:
			s.t.Fatal("no matching event within 15s")
		}
	}
}

// kind matches events of one kind.
func kind(k string) func(sseEvent) bool {
	return func(ev sseEvent) bool { return ev.kind == k }
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
