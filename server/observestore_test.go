package server

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/bolt"
	"github.com/lwm2md/lwm2md/server/internal/testdevice"
)

// persistentServer starts a server keeping its registrations and
// observations in the bolt registry of dir, listening on addr.
func persistentServer(t *testing.T, dir, addr string) (*testServer, *bolt.Store) {
	t.Helper()
	store, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	s := newServer(t, func(c *Config) {
		c.Store = RegistryStore(store.Registrations())
		c.Observations = store.Observations()
		c.UDPAddr = addr
	})
	return s, store
}

// restart closes s and its store and starts a new server on the same
// address and file.
func restart(t *testing.T, s *testServer, store *bolt.Store, dir string) (*testServer, *bolt.Store) {
	t.Helper()
	addr := s.Addr().String()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	return persistentServer(t, dir, addr)
}

func storedObservations(t *testing.T, store *bolt.Store, ep string) []*registry.Observation {
	t.Helper()
	obs, err := store.Observations().List(ctx(t), ep)
	if err != nil {
		t.Fatal(err)
	}
	return obs
}

func resourceValue(e Event) (objects.Value, bool) {
	r, ok := e.Node.(*objects.Resource)
	if !ok {
		return objects.Value{}, false
	}
	return r.Value, true
}

// An observation survives a restart of the server: the device's next
// notification on its old token arrives as an event with the stored path,
// and the observation can be cancelled afterwards.
func TestObservationSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s1, store := persistentServer(t, dir, "127.0.0.1:0")
	d := registerDevice(t, s1, "dev-keep", nil)
	o, _, err := s1.Observe(ctx(t), "dev-keep", path("/3/0/9"))
	if err != nil {
		t.Fatal(err)
	}
	stored := storedObservations(t, store, "dev-keep")
	if len(stored) != 1 || !bytes.Equal(stored[0].Token, []byte(o.token)) || stored[0].Composite ||
		!slices.Equal(stored[0].Paths, []objects.Path{path("/3/0/9")}) || stored[0].RegistrationID != o.RegistrationID ||
		stored[0].Format != o.Format {
		t.Fatalf("stored %+v for %+v", stored, o)
	}

	s2, store := restart(t, s1, store, dir)
	restored := s2.Observations("dev-keep")
	if len(restored) != 1 || restored[0].Token != o.Token || restored[0].Path != o.Path || restored[0].Format != o.Format {
		t.Fatalf("restored %+v, was %+v", restored, o)
	}
	if st := s2.Stats(); st.Observations != 1 {
		t.Fatalf("stats %+v", st)
	}
	sub := s2.Subscribe(16)
	d.Set(path("/3/0/9"), objects.IntegerValue(42))
	if err := d.Notify(ctx(t), path("/3/0/9")); err != nil {
		t.Fatal(err)
	}
	e := waitNotification(t, sub, o.Token, func(e Event) bool {
		v, ok := resourceValue(e)
		return ok && v.Int() == 42
	})
	if e.Err != nil || e.Path != path("/3/0/9") || e.Endpoint != "dev-keep" || e.RegistrationID != o.RegistrationID {
		t.Fatalf("notification %+v", e)
	}
	if d.Resets() != 0 {
		t.Fatal("the restarted server answered the notification with RST")
	}

	if err := s2.CancelObservation(ctx(t), restored[0]); err != nil {
		t.Fatal(err)
	}
	if d.Observers() != 0 || len(s2.Observations("dev-keep")) != 0 {
		t.Fatalf("after cancel: device holds %d, server %d", d.Observers(), len(s2.Observations("dev-keep")))
	}
	eventually(t, 3*time.Second, "stored observation removed", func() bool {
		return len(storedObservations(t, store, "dev-keep")) == 0
	})
}

// A device that lost its observation gets it back, on the same token, at
// its first Update after the restart; the answer is a notification, and
// later Updates do not re-issue it.
func TestRestoredObservationReissuedOnUpdate(t *testing.T) {
	dir := t.TempDir()
	s1, store := persistentServer(t, dir, "127.0.0.1:0")
	d := registerDevice(t, s1, "dev-lost", nil)
	o, _, err := s1.Observe(ctx(t), "dev-lost", path("/3/0/9"))
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := restart(t, s1, store, dir)
	d.ForgetObservations()
	sub := s2.Subscribe(16)
	d.Set(path("/3/0/9"), objects.IntegerValue(7))
	if code, err := d.Update(ctx(t), false); err != nil || code != codes.Changed {
		t.Fatalf("update: %v %v", code, err)
	}
	e := waitNotification(t, sub, o.Token, func(e Event) bool {
		v, ok := resourceValue(e)
		return ok && v.Int() == 7
	})
	if e.Err != nil || e.Path != path("/3/0/9") {
		t.Fatalf("re-issued answer %+v", e)
	}
	eventually(t, 3*time.Second, "device observing again", func() bool {
		toks := d.ObserverTokens()
		return len(toks) == 1 && string(toks[0]) == o.token
	})

	d.Set(path("/3/0/9"), objects.IntegerValue(8))
	if err := d.Notify(ctx(t), path("/3/0/9")); err != nil {
		t.Fatal(err)
	}
	waitNotification(t, sub, o.Token, func(e Event) bool {
		v, ok := resourceValue(e)
		return ok && v.Int() == 8
	})
	if code, err := d.Update(ctx(t), false); err != nil || code != codes.Changed {
		t.Fatalf("second update: %v %v", code, err)
	}
	noEvent(t, sub, EventNotification, 200*time.Millisecond)
	observes := 0
	for _, r := range d.Requests() {
		if strings.HasSuffix(r, "observe=0") {
			observes++
		}
	}
	if observes != 2 {
		t.Fatalf("the device got %d Observe requests, want 2 (the first and one re-issue): %q", observes, d.Requests())
	}
}

// A device that still has its observation is not re-observed after it
// notified since the restart.
func TestRestoredObservationConfirmedByNotification(t *testing.T) {
	dir := t.TempDir()
	s1, store := persistentServer(t, dir, "127.0.0.1:0")
	d := registerDevice(t, s1, "dev-kept", nil)
	o, _, err := s1.Observe(ctx(t), "dev-kept", path("/3/0/9"))
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := restart(t, s1, store, dir)
	sub := s2.Subscribe(16)
	if err := d.Notify(ctx(t), path("/3/0/9")); err != nil {
		t.Fatal(err)
	}
	waitNotification(t, sub, o.Token, func(Event) bool { return true })
	if code, err := d.Update(ctx(t), false); err != nil || code != codes.Changed {
		t.Fatalf("update: %v %v", code, err)
	}
	noEvent(t, sub, EventNotification, 200*time.Millisecond)
	if n := strings.Count(strings.Join(d.Requests(), "\n"), "observe=0"); n != 1 {
		t.Fatalf("%d Observe requests, want 1: %q", n, d.Requests())
	}
}

// Every way an observation ends removes it from the store.
func TestStoredObservationEnds(t *testing.T) {
	s, store := persistentServer(t, t.TempDir(), "127.0.0.1:0")
	tests := []struct {
		name string
		end  func(t *testing.T, d *testdevice.Device, o *Observation)
	}{
		{"active cancel", func(t *testing.T, d *testdevice.Device, o *Observation) {
			if err := s.CancelObservation(ctx(t), o); err != nil {
				t.Fatal(err)
			}
		}},
		{"passive cancel", func(t *testing.T, d *testdevice.Device, o *Observation) { s.ForgetObservation(o) }},
		{"deregister", func(t *testing.T, d *testdevice.Device, o *Observation) {
			if code, err := d.Deregister(ctx(t)); err != nil || code != codes.Deleted {
				t.Fatalf("deregister: %v %v", code, err)
			}
		}},
		{"re-register", func(t *testing.T, d *testdevice.Device, o *Observation) {
			if code, err := d.Register(ctx(t)); err != nil || code != codes.Created {
				t.Fatalf("register: %v %v", code, err)
			}
		}},
		{"error notification", func(t *testing.T, d *testdevice.Device, o *Observation) {
			if _, err := d.NotifyRaw(ctx(t), message.Token(o.token), codes.NotFound, objects.FormatText, nil); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := fmt.Sprintf("dev-end-%d", i)
			d := registerDevice(t, s, ep, nil)
			o, _, err := s.Observe(ctx(t), ep, path("/3/0/9"))
			if err != nil {
				t.Fatal(err)
			}
			if n := len(storedObservations(t, store, ep)); n != 1 {
				t.Fatalf("%d stored observations, want 1", n)
			}
			tt.end(t, d, o)
			eventually(t, 3*time.Second, "stored observation removed", func() bool {
				return len(storedObservations(t, store, ep)) == 0 && len(s.Observations(ep)) == 0
			})
		})
	}
}

// At Start, stored observations of an earlier registration of the
// endpoint are removed, and those of a registration that expired while
// the server was down too.
func TestRestoreDropsStaleObservations(t *testing.T) {
	dir := t.TempDir()
	s1, store := persistentServer(t, dir, "127.0.0.1:0")
	registerDevice(t, s1, "dev-stale", nil)
	o, _, err := s1.Observe(ctx(t), "dev-stale", path("/3/0/9"))
	if err != nil {
		t.Fatal(err)
	}
	stale := &registry.Observation{Endpoint: "dev-stale", RegistrationID: "earlier", Token: []byte{1, 2, 3},
		Paths: []objects.Path{path("/3/0/0")}, Format: objects.FormatTLV, Started: time.Now()}
	gone := &registry.Observation{Endpoint: "dev-gone", RegistrationID: "expired", Token: []byte{4},
		Paths: []objects.Path{path("/3/0/0")}, Format: objects.FormatTLV, Started: time.Now()}
	expired := &registry.Registration{ID: "expired", Endpoint: "dev-gone", Lifetime: time.Second, Binding: "U", Version: "1.1",
		Root: "/", RegisteredAt: time.Now().Add(-time.Hour), UpdatedAt: time.Now().Add(-time.Hour)}
	for _, err := range []error{
		store.Observations().Put(ctx(t), stale),
		store.Observations().Put(ctx(t), gone),
		store.Registrations().Put(ctx(t), expired),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	s2, store := restart(t, s1, store, dir)
	if obs := s2.Observations("dev-stale"); len(obs) != 1 || obs[0].Token != o.Token {
		t.Fatalf("restored %+v", obs)
	}
	if got := storedObservations(t, store, "dev-stale"); len(got) != 1 || !bytes.Equal(got[0].Token, []byte(o.token)) {
		t.Fatalf("stored after restart %+v", got)
	}
	if got := storedObservations(t, store, "dev-gone"); len(got) != 0 {
		t.Fatalf("observations of an expired registration kept: %+v", got)
	}
}

// Observe-Composite survives a restart too: its notifications carry a
// node per stored path.
func TestCompositeObservationSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s1, store := persistentServer(t, dir, "127.0.0.1:0")
	c := startEngine(t, s1, "obsc-keep", "1.1")
	paths := []objects.Path{path("/3/0/9"), path("/1/0/1")}
	o, _, err := s1.ObserveComposite(ctx(t), "obsc-keep", paths, WithFormat(objects.FormatSenMLJSON))
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := restart(t, s1, store, dir)
	restored := s2.Observations("obsc-keep")
	if len(restored) != 1 || !restored[0].Composite || !slices.Equal(restored[0].Paths, paths) || !restored[0].Path.IsRoot() {
		t.Fatalf("restored %+v", restored)
	}
	sub := s2.Subscribe(64)
	if err := c.Object(3).Set(path("/3/0/9"), objects.IntegerValue(12)); err != nil {
		t.Fatal(err)
	}
	e := waitNotification(t, sub, o.Token, func(e Event) bool {
		n, ok := e.Nodes[path("/3/0/9")]
		return ok && n.(*objects.Resource).Value.Int() == 12
	})
	if e.Err != nil || len(e.Nodes) != len(paths) || e.Format != objects.FormatSenMLJSON {
		t.Fatalf("notification %+v", e)
	}
	if err := s2.CancelObservation(ctx(t), restored[0]); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "client observation cancelled", func() bool { return c.Stats().Observations == 0 })
	// De-register while s2 serves (the cleanups would close s2 first).
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// A successful Read carries its value in the EventRequest.
func TestReadEventCarriesValue(t *testing.T) {
	s := newServer(t, nil)
	registerDevice(t, s, "dev-readev", nil)
	sub := s.Subscribe(16)
	if _, err := s.Read(ctx(t), "dev-readev", path("/3/0/0")); err != nil {
		t.Fatal(err)
	}
	e := waitEvent(t, sub, EventRequest)
	v, ok := resourceValue(e)
	if e.Op != OpRead || !ok || v.Str() != "lwm2md" {
		t.Fatalf("%+v", e)
	}
}

// BenchmarkRestoreObservations measures Start on a bolt registry holding
// 10,000 registrations (LWM2MD_BENCH_RESTORE sets another count) with one
// stored observation each: the registrations' restore, then the one
// ListAll pass of restoreObservations.
func BenchmarkRestoreObservations(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("LWM2MD_BENCH_RESTORE")); err == nil && v > 0 {
		n = v
	}
	dir := b.TempDir()
	store, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	c := context.Background()
	now := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ep := fmt.Sprintf("bench-%05d", i)
			id := fmt.Sprintf("id-%05d", i)
			errs <- store.Registrations().Put(c, &registry.Registration{ID: id, Endpoint: ep, Lifetime: time.Hour,
				Binding: "U", Version: "1.1", Root: "/", RegisteredAt: now, UpdatedAt: now})
			errs <- store.Observations().Put(c, &registry.Observation{Endpoint: ep, RegistrationID: id, Token: []byte{byte(i), byte(i >> 8), byte(i >> 16), 1},
				Paths: []objects.Path{path("/3303/0/5700")}, Format: objects.FormatSenMLCBOR, Started: now})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		s, err := New(Config{UDPAddr: "127.0.0.1:0", Models: testModels, Store: RegistryStore(store.Registrations()), Observations: store.Observations()})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Start(c); err != nil {
			b.Fatal(err)
		}
		if got := s.Stats().Observations; got != n {
			b.Fatalf("%d observations restored, want %d", got, n)
		}
		_ = s.Close()
	}
	// CPU time is steadier than the wall clock on a shared machine.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "CPU-ms/op")
}
