package server

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/content"
	"github.com/lwm2md/lwm2md/registry"
)

// compositeValue finds path p in a composite notification's nodes: the
// resource itself, or the resource inside an instance node.
func compositeValue(t *testing.T, nodes map[objects.Path]objects.Node, root, p objects.Path) objects.Value {
	t.Helper()
	n, ok := nodes[root]
	if !ok {
		t.Fatalf("no node for %s in %v", root, nodes)
	}
	for _, r := range objects.Flatten(root, n) {
		if r.Path == p {
			return r.Value
		}
	}
	t.Fatalf("%s not under %s: %+v", p, root, n)
	return objects.Value{}
}

// Observe-Composite in every multi-path format, against our client
// engine: the first values, notifications with changed values carrying
// every path, then the active cancel (FETCH with Observe 1).
func TestObserveComposite(t *testing.T) {
	s := newServer(t, nil)
	c := startEngine(t, s, "obsc-12", "1.2")
	sub := s.Subscribe(64)
	paths := []objects.Path{path("/3/0/9"), path("/3/0/14"), path("/1/0")}
	battery := int64(60)
	for _, f := range []objects.Format{objects.FormatSenMLJSON, objects.FormatSenMLCBOR, objects.FormatLwM2MCBOR} {
		t.Run(f.String(), func(t *testing.T) {
			o, nodes, err := s.ObserveComposite(ctx(t), "obsc-12", paths, WithFormat(f))
			if err != nil {
				t.Fatal(err)
			}
			if !o.Composite || !slices.Equal(o.Paths, paths) || !o.Path.IsRoot() || o.Format != f || len(o.Token) != 16 ||
				!slices.Contains(s.Observations("obsc-12"), o) {
				t.Fatalf("observation %+v", o)
			}
			if v := compositeValue(t, nodes, path("/1/0"), path("/1/0/1")); v.Int() != 60 {
				t.Fatalf("first /1/0/1 = %v, want the lifetime 60", v)
			}
			if _, ok := nodes[path("/3/0/14")]; !ok {
				t.Fatalf("first values %v lack /3/0/14", nodes)
			}
			if got := c.Stats().Observations; got != 1 {
				t.Fatalf("client holds %d observations, want 1", got)
			}
			for i := 0; i < 2; i++ {
				battery++
				if err := c.Object(3).Set(path("/3/0/9"), objects.IntegerValue(battery)); err != nil {
					t.Fatal(err)
				}
				e := waitNotification(t, sub, o.Token, func(e Event) bool {
					n, ok := e.Nodes[path("/3/0/9")]
					return ok && n.(*objects.Resource).Value.Int() == battery
				})
				if e.Err != nil || e.Node != nil || e.Format != f || e.Endpoint != "obsc-12" || !e.Path.IsRoot() {
					t.Fatalf("notification %+v (err %v)", e, e.Err)
				}
				// Every observed path comes in each notification.
				if len(e.Nodes) != len(paths) {
					t.Fatalf("notification nodes %v, want %d paths", e.Nodes, len(paths))
				}
				if v := compositeValue(t, e.Nodes, path("/1/0"), path("/1/0/1")); v.Int() != 60 {
					t.Fatalf("notified /1/0/1 = %v", v)
				}
				found := false
				for _, r := range e.Records {
					found = found || (r.Path == path("/3/0/9") && r.Value.Int() == battery)
				}
				if !found {
					t.Fatalf("records %+v lack /3/0/9 = %d", e.Records, battery)
				}
			}
			if err := s.CancelObservation(ctx(t), o); err != nil {
				t.Fatal(err)
			}
			if len(s.Observations("obsc-12")) != 0 {
				t.Fatal("still listed after cancel")
			}
			eventually(t, 3*time.Second, "client drops the observation", func() bool { return c.Stats().Observations == 0 })
			if err := s.CancelObservation(ctx(t), o); err != nil {
				t.Fatal("second cancel:", err)
			}
		})
	}
}

// waitNotification waits for a notification of token that satisfies ok
// (the client may notify an intermediate state first).
func waitNotification(t *testing.T, sub *Subscription, token string, ok func(Event) bool) Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		e := waitEvent(t, sub, EventNotification)
		if e.Token == token && (e.Err != nil || ok(e)) {
			return e
		}
	}
	t.Fatalf("no matching notification of %s", token)
	return Event{}
}

// The default format is the registration's composite format; a device
// that does not have a path leaves it out.
func TestObserveCompositeDefaultFormat(t *testing.T) {
	s := newServer(t, nil)
	startEngine(t, s, "obsc-11", "1.1")
	o, nodes, err := s.ObserveComposite(ctx(t), "obsc-11", []objects.Path{path("/3/0/0"), path("/9999/0")})
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := s.Registration(ctx(t), "obsc-11")
	if o.Format != reg.compositeFormat() {
		t.Fatalf("format %s, want the registration's composite format %s", o.Format, reg.compositeFormat())
	}
	if _, ok := nodes[path("/9999/0")]; ok || len(nodes) != 1 {
		t.Fatalf("nodes %v", nodes)
	}
	if err := s.CancelObservation(ctx(t), o); err != nil {
		t.Fatal(err)
	}
}

// Passive cancel: the server forgets the observation and answers the
// next notification with RST (RFC 7641 §3.6), which ends it on the
// device too.
func TestObserveCompositePassiveCancel(t *testing.T) {
	s := newServer(t, nil)
	c := startEngine(t, s, "obsc-rst", "1.1")
	sub := s.Subscribe(64)
	o, _, err := s.ObserveComposite(ctx(t), "obsc-rst", []objects.Path{path("/3/0/9"), path("/3/0/0")}, WithFormat(objects.FormatSenMLCBOR))
	if err != nil {
		t.Fatal(err)
	}
	s.ForgetObservation(o)
	if len(s.Observations("obsc-rst")) != 0 {
		t.Fatal("still listed")
	}
	if err := c.Object(3).Set(path("/3/0/9"), objects.IntegerValue(5)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "client drops the observation after RST", func() bool { return c.Stats().Observations == 0 })
	noEvent(t, sub, EventNotification, 100*time.Millisecond)
}

func TestObserveCompositeRefused(t *testing.T) {
	s := newServer(t, nil)
	startEngine(t, s, "obsc-10", "1.0")
	startEngine(t, s, "obsc-r11", "1.1")
	tests := []struct {
		name  string
		ep    string
		paths []objects.Path
		opts  []Option
	}{
		{"1.0 device", "obsc-10", []objects.Path{path("/3/0/0")}, nil},
		{"single-path format", "obsc-r11", []objects.Path{path("/3/0/0")}, []Option{WithFormat(objects.FormatTLV)}},
		{"no path", "obsc-r11", nil, nil},
		{"root path", "obsc-r11", []objects.Path{objects.RootPath}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, _, err := s.ObserveComposite(ctx(t), tt.ep, tt.paths, tt.opts...)
			if !errors.Is(err, ErrInvalidRequest) || o != nil {
				t.Fatalf("err = %v, observation %v, want ErrInvalidRequest", err, o)
			}
		})
	}
	// A device that has none of the paths answers 4.04: nothing is kept.
	_, _, err := s.ObserveComposite(ctx(t), "obsc-r11", []objects.Path{path("/9999/0")})
	if !errors.Is(err, ErrNotFound) || len(s.Observations("obsc-r11")) != 0 {
		t.Fatalf("err = %v, observations %d, want ErrNotFound and none", err, len(s.Observations("obsc-r11")))
	}
}

// Queue mode: an Observe-Composite for a sleeping device waits in its
// queue, goes out when it wakes, and its result carries the observation,
// whose notifications then arrive.
func TestObserveCompositeQueued(t *testing.T) {
	s := queueServer(t, nil)
	sub := s.Subscribe(512)
	c := queueClient(t, s.Addr().String(), "q-obsc", "1.1", true)
	asleep(t, s, sub, c)
	if _, err := s.Enqueue(ctx(t), "q-obsc", Request{Op: OpObserveComposite}); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("enqueue without paths: %v, want ErrInvalidRequest", err)
	}
	paths := []objects.Path{path("/3/0/14"), path("/3303/0/5700")}
	id, err := s.Enqueue(ctx(t), "q-obsc", Request{Op: OpObserveComposite, Paths: paths})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Wake(ctx(t)); err != nil {
		t.Fatal(err)
	}
	e := waitEventFor(t, sub, EventRequestResult, "q-obsc")
	if e.RequestID != id || e.Op != OpObserveComposite || e.Err != nil || e.Result.Status != registry.StatusDone {
		t.Fatalf("result %+v (err %v)", e, e.Err)
	}
	o := e.Result.Observation
	if o == nil || !o.Composite || len(e.Result.Nodes) != 2 {
		t.Fatalf("result observation %+v nodes %v", o, e.Result.Nodes)
	}
	if err := c.Object(3).Set(path("/3/0/14"), objects.StringValue("+03:00")); err != nil {
		t.Fatal(err)
	}
	n := waitNotification(t, sub, o.Token, func(e Event) bool {
		return e.Nodes[path("/3/0/14")] != nil && e.Nodes[path("/3/0/14")].(*objects.Resource).Value.Str() == "+03:00"
	})
	if n.Err != nil || len(n.Nodes) != 2 {
		t.Fatalf("notification %+v (err %v)", n, n.Err)
	}
}

func TestNewestRecords(t *testing.T) {
	recs := []objects.Record{
		{Path: path("/3/0/9"), Time: 10, Value: objects.IntegerValue(1)},
		{Path: path("/3/0/0"), Value: objects.StringValue("x")},
		{Path: path("/3/0/9"), Time: 20, Value: objects.IntegerValue(2)},
		{Path: path("/3/0/9"), Time: 15, Value: objects.IntegerValue(3)},
	}
	got := newestRecords(recs)
	if len(got) != 2 || got[0].Path != path("/3/0/9") || got[0].Value.Int() != 2 || got[1].Value.Str() != "x" {
		t.Fatalf("%+v", got)
	}
}

// FuzzDecodeCompositeNotification: whatever a device notifies for an
// Observe-Composite, in any multi-path format, the decoder returns nodes
// or an error, never a panic. Seeded from testdata/composite-notify, in
// SenML JSON and re-encoded in SenML CBOR and LwM2M CBOR.
func FuzzDecodeCompositeNotification(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "composite-notify", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no testdata/composite-notify seeds: %v", err)
	}
	formats := []objects.Format{objects.FormatSenMLJSON, objects.FormatSenMLCBOR, objects.FormatLwM2MCBOR}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint16(objects.FormatSenMLJSON), b)
		sj, _ := content.RecordCodec(objects.FormatSenMLJSON)
		recs, err := sj.DecodeRecords(b, testModels)
		if err != nil {
			f.Fatalf("%s: %v", file, err)
		}
		for _, fm := range formats[1:] {
			rc, _ := content.RecordCodec(fm)
			if enc, err := rc.EncodeRecords(newestRecords(recs), testModels); err == nil {
				f.Add(uint16(fm), enc)
			}
		}
	}
	paths := []objects.Path{path("/3/0"), path("/1/0/1"), path("/3303")}
	f.Fuzz(func(t *testing.T, format uint16, body []byte) {
		nodes, recs, err := decodeCompositeNotification(paths, objects.Format(format), body, testModels)
		if err != nil {
			return
		}
		for p := range nodes {
			if !slices.Contains(paths, p) {
				t.Fatalf("node for %s, which was not observed", p)
			}
		}
		if len(nodes) > 0 && len(recs) == 0 {
			t.Fatal("nodes without records")
		}
	})
}
