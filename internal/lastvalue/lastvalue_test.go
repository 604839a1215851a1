package lastvalue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/builtin"
	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/bolt"
	"github.com/lwm2md/lwm2md/server"
)

var models = builtin.Registry()

func path(s string) objects.Path { return objects.MustParsePath(s) }

func startServer(t *testing.T) *server.Server {
	t.Helper()
	s, err := server.New(server.Config{UDPAddr: "127.0.0.1:0", Models: models, RegisterRate: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func start(t *testing.T, s *server.Server) {
	t.Helper()
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func startClient(t *testing.T, s *server.Server, ep string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{
		Endpoint: ep, ServerURI: "coap://" + s.Addr().String(), LocalAddr: "127.0.0.1:0",
		Version: "1.1", Lifetime: 60 * time.Second, Models: models,
		Device: client.DeviceInfo{Manufacturer: "lwm2md", Battery: 50},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// valueAt returns the stored value of a path.
func valueAt(t *testing.T, vs registry.Values, ep string, p objects.Path) (registry.ResourceValue, bool) {
	t.Helper()
	got, err := vs.Get(ctx(t), ep, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range got {
		if v.Path == p {
			return v, true
		}
	}
	return registry.ResourceValue{}, false
}

// Notifications, Sends and Reads of a real device end up in the bolt
// registry's Values, with the server's time.
func TestRecorderStoresReportedValues(t *testing.T) {
	store, err := bolt.Open(t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	s := startServer(t)
	r := New(s, store.Values(), Config{FlushEvery: 20 * time.Millisecond})
	t.Cleanup(func() { _ = r.Close() })
	start(t, s)
	c := startClient(t, s, "lv-dev")
	before := time.Now().Add(-time.Second)

	// Read: the value read.
	if _, err := s.Read(ctx(t), "lv-dev", path("/3/0/0")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "read value stored", func() bool {
		v, ok := valueAt(t, store.Values(), "lv-dev", path("/3/0/0"))
		return ok && v.Value.Str() == "lwm2md" && v.ServerTime.After(before) && v.DeviceTime.IsZero()
	})

	// Observe: the first answer, then a notification.
	if _, _, err := s.Observe(ctx(t), "lv-dev", path("/3/0/9")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "observed value stored", func() bool {
		v, ok := valueAt(t, store.Values(), "lv-dev", path("/3/0/9"))
		return ok && v.Value.Int() == 50
	})
	if err := c.Object(3).Set(path("/3/0/9"), objects.IntegerValue(41)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "notified value stored", func() bool {
		v, ok := valueAt(t, store.Values(), "lv-dev", path("/3/0/9"))
		return ok && v.Value.Int() == 41
	})

	// Send: the records, with the device's time.
	sent := time.Now().Add(-time.Minute).Truncate(time.Second)
	if err := c.SendRecords(ctx(t), []objects.Record{
		{Path: path("/3/0/20"), Value: objects.IntegerValue(1), Time: float64(sent.Unix())},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "sent value stored", func() bool {
		v, ok := valueAt(t, store.Values(), "lv-dev", path("/3/0/20"))
		return ok && v.Value.Int() == 1 && v.DeviceTime.Equal(sent)
	})
	if st := r.Stats(); st.Events < 4 || st.Values < 3 || st.Dropped != 0 || st.WriteErrors != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// Values picks the values of the events that carry some.
func TestValues(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	res := &objects.Resource{ID: 0, Value: objects.StringValue("x")}
	tests := []struct {
		name string
		e    server.Event
		want []registry.ResourceValue
	}{
		{"notification records, absolute time", server.Event{Kind: server.EventNotification, Time: now, Records: []objects.Record{
			{Path: path("/3303/0/5700"), Value: objects.FloatValue(21.5), Time: 1700000000},
		}}, []registry.ResourceValue{{Path: path("/3303/0/5700"), Value: objects.FloatValue(21.5), DeviceTime: time.Unix(1700000000, 0).UTC(), ServerTime: now}}},
		{"send, relative time (RFC 8428 §4.5.3)", server.Event{Kind: server.EventSend, Time: now, Records: []objects.Record{
			{Path: path("/3/0/9"), Value: objects.IntegerValue(3), Time: -10},
		}}, []registry.ResourceValue{{Path: path("/3/0/9"), Value: objects.IntegerValue(3), DeviceTime: now.Add(-10 * time.Second), ServerTime: now}}},
		{"read node", server.Event{Kind: server.EventRequest, Op: server.OpRead, Time: now, Path: path("/3/0/0"), Node: res},
			[]registry.ResourceValue{{Path: path("/3/0/0"), Value: objects.StringValue("x"), ServerTime: now}}},
		{"read-composite nodes", server.Event{Kind: server.EventRequest, Op: server.OpReadComposite, Time: now,
			Nodes: map[objects.Path]objects.Node{path("/3/0/0"): res}},
			[]registry.ResourceValue{{Path: path("/3/0/0"), Value: objects.StringValue("x"), ServerTime: now}}},
		{"failed read", server.Event{Kind: server.EventRequest, Op: server.OpRead, Time: now, Path: path("/3/0/0"), Node: res, Err: errors.New("x")}, nil},
		{"write", server.Event{Kind: server.EventRequest, Op: server.OpWrite, Time: now, Path: path("/3/0/0"), Node: res}, nil},
		{"undecodable notification", server.Event{Kind: server.EventNotification, Time: now, Err: errors.New("bad")}, nil},
		{"registered", server.Event{Kind: server.EventRegistered, Time: now}, nil},
		{"absurd time", server.Event{Kind: server.EventSend, Time: now, Records: []objects.Record{
			{Path: path("/3/0/9"), Value: objects.IntegerValue(3), Time: 1e300},
		}}, []registry.ResourceValue{{Path: path("/3/0/9"), Value: objects.IntegerValue(3), ServerTime: now}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Values(tt.e)
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if g.Path != w.Path || !g.Value.Equal(w.Value) || !g.DeviceTime.Equal(w.DeviceTime) || !g.ServerTime.Equal(w.ServerTime) {
					t.Fatalf("value %d: got %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

// blockingWriter holds every Put until released, recording what it got.
type blockingWriter struct {
	release chan struct{}
	mu      sync.Mutex
	got     map[objects.Path]registry.ResourceValue
	err     error
}

func (w *blockingWriter) Put(ctx context.Context, ep string, vs []registry.ResourceValue) error {
	select {
	case <-w.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, v := range vs {
		w.got[v.Path] = v
	}
	return w.err
}

// A recorder that cannot keep up loses events, counted, and never holds
// up the server: every Send is answered while the writer is stuck.
func TestRecorderDropsWhenFull(t *testing.T) {
	s := startServer(t)
	w := &blockingWriter{release: make(chan struct{}), got: make(map[objects.Path]registry.ResourceValue)}
	r := New(s, w, Config{Buffer: 2, MaxBatch: 1})
	reg := prometheus.NewRegistry()
	if err := r.Register(reg); err != nil {
		t.Fatal(err)
	}
	start(t, s)
	c := startClient(t, s, "lv-full")
	for i := range 20 {
		if err := c.SendRecords(ctx(t), []objects.Record{{Path: path("/3/0/9"), Value: objects.IntegerValue(int64(i))}}); err != nil {
			t.Fatalf("send %d while the writer is stuck: %v", i, err)
		}
	}
	eventually(t, "drops counted", func() bool { return r.Stats().Dropped > 0 })
	if got := metricValue(t, reg, "lwm2md_lastvalue_events_dropped_total"); got == 0 {
		t.Fatal("drop metric is 0")
	}
	close(w.release)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.Values == 0 || st.Values+st.Dropped < 2 {
		t.Fatalf("stats %+v", st)
	}
}

// metricValue reads a counter from reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// Coalescing keeps the newest value of a path, by device time when both
// have one, and a failed write is counted.
func TestCoalesceAndWriteError(t *testing.T) {
	s := startServer(t)
	w := &blockingWriter{release: make(chan struct{}), got: make(map[objects.Path]registry.ResourceValue), err: errors.New("disk full")}
	close(w.release)
	r := New(s, w, Config{FlushEvery: time.Hour})
	t0 := time.Unix(1700000000, 0).UTC()
	p := path("/3303/0/5700")
	r.add(server.Event{Kind: server.EventSend, Endpoint: "ep", Time: t0, Records: []objects.Record{
		{Path: p, Value: objects.FloatValue(2), Time: 1700000002},
		{Path: p, Value: objects.FloatValue(1), Time: 1700000001}, // older, arriving later
		{Path: path("/3303/0"), Value: objects.FloatValue(9)},     // not a resource path
	}})
	_ = r.Close() // flushes
	if v := w.got[p]; v.Value.Float() != 2 {
		t.Fatalf("kept %+v", v)
	}
	if st := r.Stats(); st.WriteErrors != 1 || st.Invalid != 1 || st.Values != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// BenchmarkFlushBolt measures one flush of 1,000 endpoints with 4 values
// each into a bolt registry, with 16, 64 and 256 Puts at once (joined by
// the store's group commit).
func BenchmarkFlushBolt(b *testing.B) {
	for _, w := range []int{16, 64, 256} {
		b.Run(fmt.Sprintf("writers=%d", w), func(b *testing.B) { benchFlushBolt(b, w) })
	}
}

func benchFlushBolt(b *testing.B, writers int) {
	store, err := bolt.Open(b.TempDir(), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	s, err := server.New(server.Config{UDPAddr: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	r := New(s, store.Values(), Config{FlushEvery: time.Hour, MaxBatch: 1 << 20, Writers: writers})
	defer r.Close()
	recs := []objects.Record{
		{Path: path("/3303/0/5700"), Value: objects.FloatValue(21.5)},
		{Path: path("/3303/0/5701"), Value: objects.StringValue("Cel")},
		{Path: path("/3/0/9"), Value: objects.IntegerValue(80)},
		{Path: path("/3/0/20"), Value: objects.IntegerValue(0)},
	}
	eps := make([]string, 1000)
	for i := range eps {
		eps[i] = fmt.Sprintf("bench-%04d", i)
	}
	b.ResetTimer()
	for b.Loop() {
		now := time.Now()
		for _, ep := range eps {
			r.add(server.Event{Kind: server.EventSend, Endpoint: ep, Time: now, Records: recs})
		}
		r.flush()
	}
	b.ReportMetric(float64(len(eps)*len(recs)*b.N)/b.Elapsed().Seconds(), "values/s")
}
