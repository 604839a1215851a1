package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lwm2md/lwm2md/bridge/subject"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/builtin"
	"github.com/lwm2md/lwm2md/objects/linkformat"
	"github.com/lwm2md/lwm2md/objects/senmljson"
	"github.com/lwm2md/lwm2md/server"
)

// flaky accepts at most half of each batch and fails every other call.
type flaky struct {
	mu    sync.Mutex
	calls int
	got   []string
}

func (f *flaky) Publish(_ context.Context, msgs []Message) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls%2 == 1 {
		return 0, errors.New("broker away")
	}
	n := (len(msgs) + 1) / 2
	for _, m := range msgs[:n] {
		f.got = append(f.got, m.ID)
	}
	return n, errors.New("only half acknowledged")
}

func TestOutboxOrderAndRetry(t *testing.T) {
	f := &flaky{}
	o := NewOutbox(OutboxConfig{Name: "test", Publisher: f, Batch: 8})
	defer o.Close()
	const n = 100
	for i := 0; i < n; i++ {
		o.Add(Message{ID: fmt.Sprint(i)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := o.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) != n {
		t.Fatalf("%d messages delivered, want %d", len(f.got), n)
	}
	for i, id := range f.got {
		if id != fmt.Sprint(i) {
			t.Fatalf("message %d is %s: order lost", i, id)
		}
	}
	pub, dropped, failures := o.Stats()
	if pub != n || dropped != 0 || failures == 0 {
		t.Fatalf("stats published %d dropped %d failures %d", pub, dropped, failures)
	}
}

// down never accepts anything.
type down struct{}

func (down) Publish(context.Context, []Message) (int, error) { return 0, errors.New("unreachable") }

func TestOutboxDropsWhenFull(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	o := NewOutbox(OutboxConfig{Name: "test", Publisher: down{}, Capacity: 10, Metrics: m,
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))})
	defer o.Close()
	done := make(chan struct{})
	go func() {
		for i := 0; i < 15; i++ {
			o.Add(Message{ID: fmt.Sprint(i)})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Add blocked")
	}
	if o.Len() != 10 {
		t.Fatalf("Len %d, want 10", o.Len())
	}
	if got := testutil.ToFloat64(m.Dropped.WithLabelValues("test")); got != 5 {
		t.Fatalf("dropped metric %v, want 5", got)
	}
	if got := testutil.ToFloat64(m.Buffered.WithLabelValues("test")); got != 10 {
		t.Fatalf("buffered metric %v, want 10", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "outbox full") {
		t.Fatalf("no log line about dropping: %q", logs.String())
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func testRegistration() *server.Registration {
	return &server.Registration{
		ID: "r1", Endpoint: "dev.1", Addr: netip.MustParseAddrPort("127.0.0.1:5000"), Lifetime: time.Minute,
		Binding: "UQ", QueueMode: true, Version: "1.1",
		Objects: []linkformat.Object{{ID: 3, Instances: []uint16{0}}, {ID: 3303}},
	}
}

func TestTranslate(t *testing.T) {
	now := time.Date(2026, 11, 22, 1, 2, 3, 0, time.UTC)
	reg := testRegistration()
	v := objects.MustParsePath("/3303/0/5700")
	tr := translator{models: func(*server.Registration) objects.Models { return builtin.Registry() }, senml: SenMLJSON, ids: newIDSource()}
	tests := []struct {
		name     string
		e        server.Event
		subjects []string
		check    func(t *testing.T, msgs []Message)
	}{
		{name: "registered", e: server.Event{Kind: server.EventRegistered, Time: now, Endpoint: "dev.1", RegistrationID: "r1", Registration: reg},
			subjects: []string{"p.dev%2E1.registered"}, check: func(t *testing.T, msgs []Message) {
				var ev LifecycleEvent
				if err := json.Unmarshal(msgs[0].Data, &ev); err != nil {
					t.Fatal(err)
				}
				want := LifecycleEvent{Endpoint: "dev.1", Event: "registered", Time: now, RegistrationID: "r1", Address: "127.0.0.1:5000",
					Lifetime: 60, Binding: "UQ", QueueMode: true, Version: "1.1", Objects: []string{"/3/0", "/3303"}}
				if fmt.Sprint(ev) != fmt.Sprint(want) {
					t.Fatalf("event %+v\nwant  %+v", ev, want)
				}
			}},
		{name: "expired", e: server.Event{Kind: server.EventExpired, Time: now, Endpoint: "dev.1", Registration: reg}, subjects: []string{"p.dev%2E1.expired"}},
		{name: "notification", e: server.Event{Kind: server.EventNotification, Time: now, Endpoint: "cmd", Registration: reg, Path: v, Token: "ab", Observe: 7,
			Records: []objects.Record{{Path: v, Value: objects.FloatValue(21.5), Time: 1700000000.5}, {Path: objects.MustParsePath("/3303/0/5701")}}},
			subjects: []string{"p.%63md.data.3303.0.5700", "p.%63md.senml"}, check: func(t *testing.T, msgs []Message) {
				var dp DataPoint
				if err := json.Unmarshal(msgs[0].Data, &dp); err != nil {
					t.Fatal(err)
				}
				if dp.Path != "/3303/0/5700" || dp.Type != "float" || string(dp.Value) != "21.5" || dp.Source != "notify" || dp.Token != "ab" || dp.Sequence != 7 ||
					dp.DeviceTime == nil || dp.DeviceTime.UnixMilli() != 1700000000500 || !dp.ServerTime.Equal(now) {
					t.Fatalf("data point %+v", dp)
				}
				recs, err := senmljson.Codec{}.DecodeRecords(msgs[1].Data, builtin.Registry())
				if err != nil || len(recs) != 1 || !recs[0].Value.Equal(objects.FloatValue(21.5)) {
					t.Fatalf("senml %s: %v %v", msgs[1].Data, recs, err)
				}
				if msgs[0].ID == msgs[1].ID {
					t.Fatal("two messages share an ID")
				}
			}},
		{name: "node only", e: server.Event{Kind: server.EventNotification, Time: now, Endpoint: "d", Path: v,
			Node: &objects.Resource{ID: 5700, Value: objects.FloatValue(1)}},
			subjects: []string{"p.d.data.3303.0.5700", "p.d.senml"}},
		{name: "send", e: server.Event{Kind: server.EventSend, Time: now, Endpoint: "d", Registration: reg,
			Records: []objects.Record{{Path: objects.MustParsePath("/3/0/7/1"), Value: objects.IntegerValue(3800)}}},
			subjects: []string{"p.d.data.3.0.7.1", "p.d.senml"}},
		{name: "failed notification", e: server.Event{Kind: server.EventNotification, Endpoint: "d", Err: errors.New("4.04")}},
		{name: "request", e: server.Event{Kind: server.EventRequest, Endpoint: "d", Op: "read"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := tr.messages(tt.e)
			if err != nil {
				t.Fatal(err)
			}
			var subjects []string
			for _, m := range msgs {
				subjects = append(subjects, m.Subject(natsLayout))
				if m.ID == "" || m.ContentType == "" {
					t.Fatalf("message without ID or content type: %+v", m)
				}
			}
			if fmt.Sprint(subjects) != fmt.Sprint(tt.subjects) {
				t.Fatalf("subjects %v, want %v", subjects, tt.subjects)
			}
			if tt.check != nil {
				tt.check(t, msgs)
			}
		})
	}
}

// fakeDM answers every call from memory.
type fakeDM struct{ queue, awake bool }

func (f fakeDM) Registration(_ context.Context, ep string) (*server.Registration, error) {
	if ep == "nobody" {
		return nil, server.ErrNotRegistered
	}
	r := testRegistration()
	r.Endpoint, r.QueueMode = ep, f.queue
	return r, nil
}
func (f fakeDM) Awake(string) bool                        { return f.awake }
func (fakeDM) Models(*server.Registration) objects.Models { return builtin.Registry() }
func (fakeDM) Read(_ context.Context, _ string, p objects.Path, _ ...server.Option) (objects.Node, error) {
	if !p.IsResource() {
		return nil, &server.CoAPError{Code: 132}
	}
	return &objects.Resource{ID: p.Resource(), Value: objects.StringValue("x")}, nil
}
func (fakeDM) Write(context.Context, string, objects.Path, objects.Node, bool, ...server.Option) error {
	return nil
}
func (fakeDM) Execute(context.Context, string, objects.Path, string) error { return nil }
func (fakeDM) Create(_ context.Context, _ string, p objects.Path, in *objects.Instance, _ ...server.Option) (objects.Path, error) {
	return p.Child(in.ID), nil
}
func (fakeDM) Delete(context.Context, string, objects.Path) error { return server.ErrTimeout }
func (fakeDM) Discover(_ context.Context, _ string, p objects.Path) ([]linkformat.DiscoverLink, error) {
	return []linkformat.DiscoverLink{{Path: p}}, nil
}
func (fakeDM) Observe(_ context.Context, _ string, p objects.Path, _ ...server.Option) (*server.Observation, objects.Node, error) {
	return nil, nil, server.ErrNotObserved
}
func (fakeDM) Observations(string) []*server.Observation                    { return nil }
func (fakeDM) CancelObservation(context.Context, *server.Observation) error { return nil }
func (fakeDM) WriteAttributes(context.Context, string, objects.Path, linkformat.Attributes) error {
	return nil
}

func TestCommandsErrors(t *testing.T) {
	c, err := NewCommands(CommandsConfig{Server: fakeDM{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tests := []struct{ ep, op, body, status, code string }{
		{"d", "read", `{"path":"/3/0/0"}`, "ok", ""},
		{"d", "read", `{"path":"/3/0"}`, "error", "4.04"},
		{"nobody", "read", `{"path":"/3/0/0"}`, "error", "not-registered"},
		{"d", "reboot", `{"path":"/3/0/4"}`, "error", "unknown-operation"},
		{"d", "delete", `{"path":"/3303/0"}`, "error", "timeout"},
		{"d", "observe", `{"path":"/3303/0/5700"}`, "error", "not-observed"},
		{"d", "create", `{"path":"/3303","node":{"resources":[]}}`, "error", "bad-request"},
		{"d", "create", `{"path":"/3303","node":{"path":"/3303/4","resources":[{"path":"/3303/4/5700","value":2}]}}`, "ok", ""},
		{"d", "write", `{"path":"/3/0/14"}`, "error", "bad-request"},
		{"d", "read", ``, "error", "bad-request"},
	}
	for _, tt := range tests {
		t.Run(tt.op+" "+tt.body, func(t *testing.T) {
			r := c.Handle(context.Background(), tt.ep, tt.op, []byte(tt.body), nil)
			if r.Status != tt.status || r.Request == "" || (tt.code != "" && (r.Error == nil || r.Error.Code != tt.code)) {
				t.Fatalf("reply %+v %+v, want %s %s", r, r.Error, tt.status, tt.code)
			}
		})
	}
}

func FuzzCommand(f *testing.F) {
	files, _ := filepath.Glob("testdata/commands/*.json")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		op := strings.TrimSuffix(filepath.Base(name), ".json")
		f.Add(op, b)
	}
	f.Add("read", []byte(`{"path":"/3/0/0","timeout":"-1s"}`))
	c, err := NewCommands(CommandsConfig{Server: fakeDM{queue: true}})
	if err != nil {
		f.Fatal(err)
	}
	defer c.Close()
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		results := make(chan Message, 1)
		r := c.Handle(context.Background(), "d", op, body, func(m Message) { results <- m })
		switch r.Status {
		case "ok":
		case "error":
			if r.Error == nil || r.Error.Code == "" || r.Error.Message == "" {
				t.Fatalf("error reply without an error: %+v", r)
			}
		case "queued":
			select {
			case m := <-results:
				var res Reply
				if err := json.Unmarshal(m.Data, &res); err != nil || res.Request != r.Request {
					t.Fatalf("result %s for %s: %v", m.Data, r.Request, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no result for a queued command")
			}
		default:
			t.Fatalf("status %q", r.Status)
		}
		if r.Request == "" {
			t.Fatal("reply without a request ID")
		}
	})
}

var natsLayout = subject.NATS("p")
