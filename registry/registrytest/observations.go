package registrytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lwm2md/lwm2md/registry"
)

// listAll collects what Observations.ListAll hands out.
func listAll(t *testing.T, obs registry.Observations) []*registry.Observation {
	t.Helper()
	var out []*registry.Observation
	must(t, obs.ListAll(ctx, func(o *registry.Observation) error {
		out = append(out, o)
		return nil
	}))
	return out
}

// byKey sorts observations as ListAll must: by endpoint, then token.
func byKey(a, b *registry.Observation) int {
	if c := strings.Compare(a.Endpoint, b.Endpoint); c != 0 {
		return c
	}
	return bytes.Compare(a.Token, b.Token)
}

// checkAll fails unless ListAll hands out want (in any order given) once
// each, sorted by endpoint and token.
func checkAll(t *testing.T, obs registry.Observations, want []*registry.Observation) {
	t.Helper()
	want = slices.Clone(want)
	slices.SortFunc(want, byKey)
	got := listAll(t, obs)
	if len(got) != len(want) {
		t.Fatalf("ListAll: %d observations, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("ListAll: observation %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// putAll stores os from a few goroutines: a store commits concurrent
// writes together, so thousands take a few flushes.
func putAll(t *testing.T, obs registry.Observations, os []*registry.Observation) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(os))
	next := make(chan *registry.Observation)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range next {
				errs <- obs.Put(ctx, o)
			}
		}()
	}
	for _, o := range os {
		next <- o
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
}

// testObservationListAll: ListAll hands out every observation of every
// endpoint once, sorted by endpoint and token, across as many pages as
// the store reads (a count that is a multiple of a round page size, and
// one more); fn may delete observations while it runs; an error from fn
// stops it.
func testObservationListAll(t *testing.T, s registry.Store) {
	obs := s.Observations()
	checkAll(t, obs, nil)
	// Endpoints that are prefixes of others ("dev-7", "dev-70") and
	// tokens that are prefixes of others ({1}, {1, 0}) sort by bytes.
	var all []*registry.Observation
	for i := range 1000 {
		ep := fmt.Sprintf("dev-%d", i)
		a := observation(ep, 1, "/3303/0/5700")
		a.Token = []byte{1}
		b := observation(ep, 1, "/3/0/9", "/3303/0")
		b.Token, b.Composite = []byte{1, 0}, true
		all = append(all, a, b)
	}
	putAll(t, obs, all)
	checkAll(t, obs, all)
	one := observation("dev-7", 2, "/4")
	must(t, obs.Put(ctx, one))
	all = append(all, one)
	checkAll(t, obs, all)

	stop := errors.New("stop")
	calls := 0
	err := obs.ListAll(ctx, func(*registry.Observation) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Fatalf("ListAll after fn failed: %v after %d calls, want %v after 3", err, calls, stop)
	}

	// fn deletes every observation of the odd endpoints as it sees them:
	// the store holds no transaction that the deletes would wait for.
	var kept []*registry.Observation
	must(t, obs.ListAll(ctx, func(o *registry.Observation) error {
		var n int
		if _, err := fmt.Sscanf(o.Endpoint, "dev-%d", &n); err != nil {
			return err
		}
		if n%2 == 1 {
			return obs.Delete(ctx, o.Endpoint, o.Token)
		}
		kept = append(kept, o)
		return nil
	}))
	if len(kept) != 1000 { // dev-0, dev-2, ... dev-998: two each
		t.Fatalf("ListAll while deleting kept %d observations, want 1000", len(kept))
	}
	checkAll(t, obs, kept)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := obs.ListAll(cancelled, func(*registry.Observation) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("ListAll with a cancelled context: %v", err)
	}
}
