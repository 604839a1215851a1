package registrytest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/registry"
)

// parallel runs fn(i) for i in [0, n) on n goroutines and fails on the
// first error.
func parallel(t *testing.T, n int, fn func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(i); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func testConcurrentRegistrations(t *testing.T, s registry.Store) {
	const writers, each = 8, 40
	regs := s.Registrations()
	parallel(t, writers, func(w int) error {
		for i := 0; i < each; i++ {
			ep := fmt.Sprintf("w%d-dev%03d", w, i)
			r := fullRegistration(ep, "id-"+ep)
			if err := regs.Put(ctx, r); err != nil {
				return err
			}
			// Update it at once, and read it back from another writer.
			r.UpdatedAt = r.UpdatedAt.Add(time.Second)
			if err := regs.Put(ctx, r); err != nil {
				return err
			}
			if _, err := regs.Get(ctx, fmt.Sprintf("w%d-dev%03d", (w+1)%writers, i/2)); err != nil && !errors.Is(err, registry.ErrNotFound) {
				return err
			}
		}
		return nil
	})
	list, err := regs.List(ctx, registry.RegistrationFilter{})
	must(t, err)
	if len(list) != writers*each {
		t.Fatalf("%d registrations, want %d", len(list), writers*each)
	}
	for _, r := range list {
		want := fullRegistration(r.Endpoint, "id-"+r.Endpoint)
		want.UpdatedAt = want.UpdatedAt.Add(time.Second)
		sameRegistration(t, r, want)
	}
	// Concurrent writes of one endpoint with different IDs leave one
	// consistent registration: the ID index agrees with it.
	parallel(t, writers, func(w int) error {
		return regs.Put(ctx, &registry.Registration{ID: fmt.Sprintf("race-%d", w), Endpoint: "race"})
	})
	r, err := regs.Get(ctx, "race")
	must(t, err)
	found := 0
	for w := 0; w < writers; w++ {
		if _, err := regs.GetByID(ctx, fmt.Sprintf("race-%d", w)); err == nil {
			found++
		}
	}
	if got, err := regs.GetByID(ctx, r.ID); err != nil || got.Endpoint != "race" || found != 1 {
		t.Fatalf("ID index after a race: %d IDs found, %v", found, err)
	}
}

func testConcurrentQueue(t *testing.T, s registry.Store) {
	const writers, each = 6, 30
	q := s.Queue()
	got := make([][]uint64, writers)
	parallel(t, writers, func(w int) error {
		for i := 0; i < each; i++ {
			// Every writer fills its own queue and the shared one.
			for _, ep := range []string{fmt.Sprintf("dev-%d", w), "shared"} {
				r := request(ep, "write", fmt.Sprintf("/1/0/%d", i))
				r.Payload = []byte{byte(w), byte(i)}
				id, err := q.Enqueue(ctx, r)
				if err != nil {
					return err
				}
				if ep == "shared" {
					got[w] = append(got[w], id)
				}
			}
		}
		return nil
	})
	for w := 0; w < writers; w++ {
		list, err := q.List(ctx, fmt.Sprintf("dev-%d", w))
		must(t, err)
		if len(list) != each {
			t.Fatalf("dev-%d: %d requests", w, len(list))
		}
		for i, r := range list {
			if r.Payload[0] != byte(w) || r.Payload[1] != byte(i) {
				t.Fatalf("dev-%d: request %d is %v: out of order", w, i, r.Payload)
			}
		}
	}
	// The shared queue holds every writer's requests, each writer's in
	// its order, and the IDs are the queue order.
	shared, err := q.List(ctx, "shared")
	must(t, err)
	if len(shared) != writers*each {
		t.Fatalf("shared queue: %d", len(shared))
	}
	next := make([]int, writers)
	for i, r := range shared {
		if i > 0 && r.ID <= shared[i-1].ID {
			t.Fatal("shared queue not in ID order")
		}
		w := r.Payload[0]
		if int(r.Payload[1]) != next[w] || got[w][next[w]] != r.ID {
			t.Fatalf("writer %d's request %d out of order", w, r.Payload[1])
		}
		next[w]++
	}
	// Nodes draining the shared queue concurrently get each request once,
	// in order.
	var mu sync.Mutex
	var order []uint64
	parallel(t, 4, func(n int) error {
		owner := fmt.Sprintf("node-%d", n)
		for {
			r, err := q.Claim(ctx, "shared", owner, time.Now(), time.Now().Add(time.Minute))
			if errors.Is(err, registry.ErrNotFound) {
				if _, err := q.Peek(ctx, "shared", time.Now()); errors.Is(err, registry.ErrNotFound) {
					return nil // drained
				}
				continue // held by another node
			}
			if err != nil {
				return err
			}
			mu.Lock()
			order = append(order, r.ID)
			mu.Unlock()
			if err := q.Complete(ctx, r.ID, owner, registry.Result{Status: registry.StatusDone}); err != nil {
				return err
			}
		}
	})
	if len(order) != len(shared) {
		t.Fatalf("drained %d of %d", len(order), len(shared))
	}
	for i := range order {
		if order[i] != shared[i].ID {
			t.Fatalf("claim %d got %d, want %d", i, order[i], shared[i].ID)
		}
	}
}

func testConcurrentIdentity(t *testing.T, s registry.Store) {
	const n = 10
	var mu sync.Mutex
	won := 0
	parallel(t, n, func(i int) error {
		err := s.Credentials().Put(ctx, pskCredential(fmt.Sprintf("dev-%d", i), "contested", []byte("0123456789abcdef")))
		switch {
		case err == nil:
			mu.Lock()
			won++
			mu.Unlock()
			return nil
		case errors.Is(err, registry.ErrDuplicateIdentity):
			return nil
		}
		return err
	})
	if won != 1 {
		t.Fatalf("%d endpoints got the same PSK identity", won)
	}
	list, err := s.Credentials().List(ctx, "", 0)
	must(t, err)
	if len(list) != 1 {
		t.Fatalf("%d credentials stored", len(list))
	}
}

func testConcurrentJobClaims(t *testing.T, s registry.Store) {
	const targets = 120
	var eps []string
	for i := 0; i < targets; i++ {
		eps = append(eps, fmt.Sprintf("dev-%03d", i))
	}
	must(t, s.Jobs().Create(ctx, &registry.Job{ID: "big"}, eps))
	var mu sync.Mutex
	seen := map[string]string{}
	parallel(t, 6, func(w int) error {
		owner := fmt.Sprintf("node-%d", w)
		for {
			rs, err := s.Jobs().Claim(ctx, "big", owner, 7, time.Now(), time.Now().Add(time.Minute))
			if err != nil {
				return err
			}
			if len(rs) == 0 {
				return nil
			}
			for _, r := range rs {
				mu.Lock()
				prev, dup := seen[r.Endpoint]
				seen[r.Endpoint] = owner
				mu.Unlock()
				if dup {
					return fmt.Errorf("%s claimed by %s and %s", r.Endpoint, prev, owner)
				}
				r.Status = registry.TargetSucceeded
				if err := s.Jobs().Report(ctx, r); err != nil {
					return err
				}
			}
		}
	})
	if len(seen) != targets {
		t.Fatalf("%d of %d targets claimed", len(seen), targets)
	}
}

// fill stores one of everything, for Reopen.
func fill(t *testing.T, s registry.Store) func(t *testing.T, s registry.Store) {
	reg := fullRegistration("dev-a", "id-a")
	cred := pskCredential("dev-a", "dev-a-id", []byte("0123456789abcdef"))
	boot := json.RawMessage(`{"x":1}`)
	obs := observation("dev-a", 5, "/3303/0/5700")
	must(t, s.Registrations().Put(ctx, reg))
	must(t, s.Credentials().Put(ctx, cred))
	must(t, s.Bootstrap().Put(ctx, &registry.BootstrapConfig{Endpoint: "dev-a", Config: boot}))
	must(t, s.Observations().Put(ctx, obs))
	id, err := s.Queue().Enqueue(ctx, request("dev-a", "write", "/1/0/1"))
	must(t, err)
	req, err := s.Queue().Get(ctx, id)
	must(t, err)
	job := &registry.Job{ID: "job", Kind: "k", Spec: json.RawMessage(`{"a":1}`)}
	must(t, s.Jobs().Create(ctx, job, []string{"dev-a", "dev-b"}))
	must(t, s.Tags().Set(ctx, "dev-a", map[string]string{"site": "x"}))
	vals := allValues(base)
	must(t, s.Values().Put(ctx, "dev-a", vals))

	return func(t *testing.T, s registry.Store) {
		r, err := s.Registrations().GetByID(ctx, "id-a")
		must(t, err)
		sameRegistration(t, r, reg)
		c, err := s.Credentials().ByPSKIdentity(ctx, "dev-a-id")
		must(t, err)
		sameCredential(t, c, cred)
		b, err := s.Bootstrap().Get(ctx, "dev-a")
		must(t, err)
		if string(b.Config) != string(boot) {
			t.Fatalf("bootstrap %s", b.Config)
		}
		os, err := s.Observations().List(ctx, "dev-a")
		must(t, err)
		if len(os) != 1 || !reflect.DeepEqual(os[0], obs) {
			t.Fatalf("observations %+v", os)
		}
		h, err := s.Queue().Peek(ctx, "dev-a", base)
		must(t, err)
		if !reflect.DeepEqual(h, req) {
			t.Fatalf("queue head %+v, want %+v", h, req)
		}
		// IDs keep growing after a reopen.
		id2, err := s.Queue().Enqueue(ctx, request("dev-a", "read", "/1/0"))
		must(t, err)
		if id2 <= id {
			t.Fatalf("ID %d after %d", id2, id)
		}
		j, err := s.Jobs().Get(ctx, "job")
		must(t, err)
		if !reflect.DeepEqual(j, job) {
			t.Fatalf("job %+v", j)
		}
		res, err := s.Jobs().Results(ctx, "job", "", 0)
		must(t, err)
		if len(res) != 2 {
			t.Fatalf("results %v", res)
		}
		tg, err := s.Tags().Get(ctx, "dev-a")
		must(t, err)
		if tg["site"] != "x" {
			t.Fatalf("tags %v", tg)
		}
		v, err := s.Values().Get(ctx, "dev-a", objects.RootPath)
		must(t, err)
		sameValues(t, v, vals)
	}
}

func testReopen(t *testing.T, s registry.Store) {
	ro, ok := s.(Reopener)
	if !ok {
		t.Skip("the store does not implement registrytest.Reopener")
	}
	check := fill(t, s)
	s2, err := ro.Reopen(ctx)
	must(t, err)
	t.Cleanup(func() { s2.Close() })
	check(t, s2)
	// Once more, after writes through the reopened store.
	s3, err := s2.(Reopener).Reopen(ctx)
	must(t, err)
	t.Cleanup(func() { s3.Close() })
	check(t, s3)
}

func testFutureSchema(t *testing.T, s registry.Store) {
	sf, ok1 := s.(SchemaForcer)
	ro, ok2 := s.(Reopener)
	if !ok1 || !ok2 {
		t.Skip("the store does not implement registrytest.SchemaForcer and Reopener")
	}
	fill(t, s)
	v, err := sf.SchemaVersion(ctx)
	must(t, err)
	if v < 1 {
		t.Fatalf("schema version %d", v)
	}
	must(t, sf.ForceSchemaVersion(ctx, v+1))
	s2, err := ro.Reopen(ctx)
	if err == nil {
		s2.Close()
		t.Fatal("a store from the future opened")
	}
	wantErr(t, err, registry.ErrSchemaTooNew, "reopen with a newer schema")
	t.Logf("future schema: %v", err)
}

func testClosed(t *testing.T, s registry.Store) {
	must(t, s.Close())
	must(t, s.Close()) // twice is fine
	wantErr(t, errOf(s.Registrations().Get(ctx, "x")), registry.ErrClosed, "Get after Close")
	wantErr(t, s.Registrations().Put(ctx, fullRegistration("x", "y")), registry.ErrClosed, "Put after Close")
	wantErr(t, errOf(s.Queue().Enqueue(ctx, request("x", "read", "/3"))), registry.ErrClosed, "Enqueue after Close")
	wantErr(t, s.Observations().ListAll(ctx, func(*registry.Observation) error { return nil }), registry.ErrClosed, "ListAll after Close")
}
