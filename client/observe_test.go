package client

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/linkformat"
	"github.com/lwm2md/lwm2md/server"
)

// notes collects the server's notification events of one observation.
type notes struct {
	mu  sync.Mutex
	got []server.Event
}

func collect(t *testing.T, f *fixture, o *server.Observation) *notes {
	n := &notes{}
	sub := f.s.Subscribe(1024)
	done := make(chan struct{})
	t.Cleanup(func() {
		sub.Close()
		<-done
	})
	go func() {
		defer close(done)
		for e := range sub.C {
			if e.Kind == server.EventNotification && e.Token == o.Token {
				n.mu.Lock()
				n.got = append(n.got, e)
				n.mu.Unlock()
			}
		}
	}()
	return n
}

func (n *notes) len() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.got)
}

func (n *notes) at(i int) server.Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.got[i]
}

// values are the Float values carried so far.
func (n *notes) values() []float64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []float64
	for _, e := range n.got {
		if r, ok := e.Node.(*objects.Resource); ok {
			out = append(out, r.Value.Float())
		}
	}
	return out
}

func (n *notes) wait(t *testing.T, count int, d time.Duration) {
	t.Helper()
	eventually(t, d, "notifications", func() bool { return n.len() >= count })
}

// quiet checks that no notification beyond count arrives for d.
func (n *notes) quiet(t *testing.T, count int, d time.Duration) {
	t.Helper()
	time.Sleep(d)
	if got := n.len(); got != count {
		t.Fatalf("%d notifications, want %d: %v", got, count, n.values())
	}
}

func setTemp(t *testing.T, f *fixture, v float64) {
	t.Helper()
	if err := f.c.Object(3303).Set(path("/3303/0/5700"), objects.FloatValue(v)); err != nil {
		t.Fatal(err)
	}
}

func writeAttrs(t *testing.T, f *fixture, p string, a linkformat.Attributes) {
	t.Helper()
	if err := f.s.WriteAttributes(ctx(t), f.ep, path(p), a); err != nil {
		t.Fatal(err)
	}
}

func observe(t *testing.T, f *fixture, p string, opts ...server.Option) (*server.Observation, *notes, objects.Node) {
	t.Helper()
	o, n, err := f.s.Observe(ctx(t), f.ep, path(p), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return o, collect(t, f, o), n
}

func TestObserveEveryFormat(t *testing.T) {
	for _, ver := range []string{"1.0", "1.1", "1.2"} {
		t.Run(ver, func(t *testing.T) {
			f := newFixture(t, ver, nil)
			v := 30.0
			for _, format := range formats[ver] {
				for _, p := range []string{"/3303/0/5700", "/3303/0", "/3303"} {
					first := f.local(t, path(p))
					if !canCarry(format, first) {
						continue
					}
					t.Run(format.String()+p, func(t *testing.T) {
						o, got, node := observe(t, f, p, server.WithFormat(format))
						if !objects.EqualNodes(node, first) {
							t.Fatalf("observe answer %v, want %v", objects.Flatten(path(p), node), objects.Flatten(path(p), first))
						}
						v++
						setTemp(t, f, v)
						got.wait(t, 1, 5*time.Second)
						e := got.at(0)
						if e.Err != nil {
							t.Fatal(e.Err)
						}
						if want := f.local(t, path(p)); !objects.EqualNodes(e.Node, want) {
							t.Fatalf("notification %v, want %v", objects.Flatten(path(p), e.Node), objects.Flatten(path(p), want))
						}
						if err := f.s.CancelObservation(ctx(t), o); err != nil {
							t.Fatal(err)
						}
						eventually(t, 5*time.Second, "observation cancelled on the client", func() bool { return f.c.Stats().Observations == 0 })
					})
				}
			}
		})
	}
}

func TestObservePmin(t *testing.T) {
	f := newFixture(t, "1.1", nil)
	writeAttrs(t, f, "/3303/0/5700", linkformat.Attributes{Set: linkformat.AttrPMin, PMin: 1})
	_, got, _ := observe(t, f, "/3303/0/5700")
	start := time.Now()
	setTemp(t, f, 30)
	setTemp(t, f, 31)
	got.wait(t, 1, 5*time.Second)
	if el := got.at(0).Time.Sub(start); el < 900*time.Millisecond {
		t.Fatalf("first notification after %v, before pmin=1s", el)
	}
	if v := got.values(); v[0] != 31 {
		t.Errorf("notification carried %v, want the value at pmin's end (31)", v)
	}
	got.quiet(t, 1, 300*time.Millisecond)
}

func TestObservePmax(t *testing.T) {
	f := newFixture(t, "1.1", nil)
	writeAttrs(t, f, "/3303", linkformat.Attributes{Set: linkformat.AttrPMax, PMax: 1})
	_, got, _ := observe(t, f, "/3303/0/5700")
	start := time.Now()
	got.wait(t, 2, 5*time.Second)
	if el := got.at(1).Time.Sub(start); el < 1800*time.Millisecond {
		t.Fatalf("two pmax notifications within %v", el)
	}
	// The server's default (Server object, resource 3) applies without
	// attributes.
	if err := f.s.Write(ctx(t), f.ep, path("/1/0/3"), ptr(objects.NewSingle(3, objects.IntegerValue(1))), true); err != nil {
		t.Fatal(err)
	}
	_, got2, _ := observe(t, f, "/3/0/9")
	got2.wait(t, 1, 5*time.Second)
}

func TestObserveThresholds(t *testing.T) {
	f := newFixture(t, "1.1", nil)
	setTemp(t, f, 20)
	writeAttrs(t, f, "/3303/0/5700", linkformat.Attributes{Set: linkformat.AttrGT | linkformat.AttrLT, GT: 25, LT: 15})
	_, got, _ := observe(t, f, "/3303/0/5700")
	steps := []struct {
		v      float64
		notify bool
	}{
		{21, false}, {26, true}, {27, false}, {24, true}, {14, true}, {12, false}, {16, true},
	}
	count := 0
	for _, s := range steps {
		setTemp(t, f, s.v)
		if s.notify {
			count++
			got.wait(t, count, 5*time.Second)
		}
	}
	got.quiet(t, count, 200*time.Millisecond)
	want := []float64{26, 24, 14, 16}
	if v := got.values(); !equalFloats(v, want) {
		t.Errorf("notified %v, want %v", v, want)
	}
}

func TestObserveStep(t *testing.T) {
	f := newFixture(t, "1.1", nil)
	setTemp(t, f, 20)
	writeAttrs(t, f, "/3303/0/5700", linkformat.Attributes{Set: linkformat.AttrST, ST: 2})
	_, got, _ := observe(t, f, "/3303/0/5700")
	count := 0
	for _, s := range []struct {
		v      float64
		notify bool
	}{{21, false}, {21.9, false}, {22, true}, {23.5, false}, {19.9, true}, {18, false}, {17.9, true}} {
		setTemp(t, f, s.v)
		if s.notify {
			count++
			got.wait(t, count, 5*time.Second)
		}
	}
	got.quiet(t, count, 200*time.Millisecond)
	if v, want := got.values(), []float64{22, 19.9, 17.9}; !equalFloats(v, want) {
		t.Errorf("notified %v, want %v", v, want)
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestObserveEvaluationPeriods(t *testing.T) {
	f := newFixture(t, "1.1", nil)
	// epmin: changes are looked at no more often than every epmin.
	writeAttrs(t, f, "/3303/0/5700", linkformat.Attributes{Set: linkformat.AttrEPMin | linkformat.AttrEPMax, EPMin: 1, EPMax: 60})
	_, got, _ := observe(t, f, "/3303/0/5700")
	start := time.Now()
	setTemp(t, f, 33)
	got.wait(t, 1, 5*time.Second)
	if el := got.at(0).Time.Sub(start); el < 900*time.Millisecond {
		t.Errorf("change evaluated after %v, before epmin=1s", el)
	}

	// epmax: a value that changes without telling anyone (computed on
	// read) is looked at every epmax.
	var mu sync.Mutex
	reading := 10.0
	f.c.Object(3303).OnRead(5700, func(uint16) objects.Value {
		mu.Lock()
		defer mu.Unlock()
		return objects.FloatValue(reading)
	})
	writeAttrs(t, f, "/3303/1/5700", linkformat.Attributes{Set: linkformat.AttrEPMax, EPMax: 1})
	_, got2, _ := observe(t, f, "/3303/1/5700")
	got2.quiet(t, 0, 1300*time.Millisecond) // evaluated, unchanged: nothing
	mu.Lock()
	reading = 11
	mu.Unlock()
	got2.wait(t, 1, 3*time.Second)
	if v := got2.values(); v[0] != 11 {
		t.Errorf("notified %v", v)
	}
}

func TestObserveEdgeAndCon(t *testing.T) {
	input := NewObject(3200, "", objects.Instance{ID: 0, Resources: []objects.Resource{
		objects.NewSingle(5500, objects.BooleanValue(false)),
	}})
	var notified []Event
	var mu sync.Mutex
	f := newFixture(t, "1.2", func(c *Config) {
		c.Objects = append(c.Objects, input)
		c.OnEvent = func(e Event) {
			if e.Kind == EventNotified {
				mu.Lock()
				notified = append(notified, e)
				mu.Unlock()
			}
		}
	})
	writeAttrs(t, f, "/3200/0/5500", linkformat.Attributes{Set: linkformat.AttrEdge | linkformat.AttrCon, Edge: true, Con: true})
	_, got, _ := observe(t, f, "/3200/0/5500")
	set := func(b bool) {
		if err := input.Set(path("/3200/0/5500"), objects.BooleanValue(b)); err != nil {
			t.Fatal(err)
		}
	}
	set(true) // rising: notify
	got.wait(t, 1, 5*time.Second)
	set(false) // falling: not with edge=1
	set(true)
	got.wait(t, 2, 5*time.Second)
	got.quiet(t, 2, 200*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(notified) != 2 || !notified[0].Confirmable || !notified[1].Confirmable {
		t.Errorf("notifications not confirmable: %+v", notified)
	}
}

func TestObserveEnds(t *testing.T) {
	f := newFixture(t, "1.1", nil)

	// Passive cancel: the server forgets, answers the next notification
	// with RST, and the client stops.
	o, _, _ := observe(t, f, "/3303/0/5700")
	f.s.ForgetObservation(o)
	setTemp(t, f, 40)
	eventually(t, 5*time.Second, "RST ends the observation", func() bool { return f.c.Stats().Observations == 0 })

	// The observed instance is deleted: a 4.04 notification ends it.
	o, got, _ := observe(t, f, "/3303/1")
	if err := f.s.Delete(ctx(t), f.ep, path("/3303/1")); err != nil {
		t.Fatal(err)
	}
	got.wait(t, 1, 5*time.Second)
	if e := got.at(0); !errors.Is(e.Err, server.ErrNotFound) {
		t.Errorf("notification after delete: %+v", e)
	}
	eventually(t, 5*time.Second, "observation ends", func() bool { return f.c.Stats().Observations == 0 })
	_ = o

	// Observing what cannot be read is refused as a read is.
	if _, _, err := f.s.Observe(ctx(t), f.ep, path("/3/0/4")); !errors.Is(err, server.ErrMethodNotAllowed) {
		t.Errorf("observe of an executable: %v", err)
	}
	// A new registration drops observations.
	observe(t, f, "/3303/0")
	if err := f.c.Reboot(ctx(t)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "reboot drops observations", func() bool { return f.c.Stats().Observations == 0 })
	if err := f.c.WaitRegistered(ctx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestObserveSensorSampling(t *testing.T) {
	temp := NewTemperature(SensorConfig{Interval: 50 * time.Millisecond, Seed: 42})
	f := newFixture(t, "1.1", func(c *Config) { c.Objects[0] = temp.Object })
	_, got, _ := observe(t, f, "/3303/0/5700")
	got.wait(t, 3, 5*time.Second)
	// The series is the generator's.
	g := Generator{Base: 21, Amplitude: 3, Noise: 0.2, Min: -40, Max: 85, Seed: 42}
	vals := got.values()
	seen := map[float64]bool{}
	for k := uint64(1); k <= temp.Samples(); k++ {
		seen[g.At(k)] = true
	}
	for _, v := range vals {
		if !seen[v] {
			t.Errorf("notified %v, not a sample of the generator", v)
		}
	}
}

func TestObserveConfirmable(t *testing.T) {
	f := newFixture(t, "1.1", func(c *Config) { c.ConfirmableNotify = true })
	writeAttrs(t, f, "/3303/0/5700", linkformat.Attributes{Set: linkformat.AttrPMax, PMax: 1})
	o, got, _ := observe(t, f, "/3303/0/5700")
	time.Sleep(2500 * time.Millisecond)
	if n := got.len(); n < 2 || n > 3 {
		t.Errorf("%d pmax notifications in 2.5 s", n)
	}
	if st := f.c.Stats(); st.Notifications < 2 || st.Notifications > 3 || st.NotifyFailures != 0 {
		t.Errorf("stats %+v", st)
	}
	// A confirmable notification the server does not know is answered
	// with RST: the observation ends.
	f.s.ForgetObservation(o)
	setTemp(t, f, 44)
	eventually(t, 5*time.Second, "RST ends the observation", func() bool { return f.c.Stats().Observations == 0 })
}
