package metrics

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/bolt"
	"github.com/lwm2md/lwm2md/registry/registrytest"
)

func openBolt(t *testing.T) registry.Store {
	t.Helper()
	c, err := registry.NewCipher(bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		t.Fatal(err)
	}
	s, err := bolt.Open(t.TempDir(), bolt.Options{Cipher: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestInstrumentedStoreConformance: the timed store is still a store,
// answer for answer (the suite's checks that need the concrete store are
// skipped).
func TestInstrumentedStoreConformance(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) registry.Store {
		s, err := InstrumentStore(openBolt(t), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestInstrumentedStoreCounts: each call lands in its series; "not
// found" is no error, a failure is.
func TestInstrumentedStoreCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := InstrumentStore(openBolt(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := &registry.Registration{Endpoint: "ep-1", ID: "id-1", Version: "1.1", Lifetime: time.Minute, UpdatedAt: time.Now()}
	if err := s.Registrations().Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Registrations().Get(ctx, "nobody"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("get of nobody: %v", err)
	}
	// Another endpoint with the same ID is a conflict: an error.
	if err := s.Registrations().Put(ctx, &registry.Registration{Endpoint: "ep-2", ID: "id-1", Version: "1.1", UpdatedAt: time.Now()}); !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("conflicting put: %v", err)
	}
	if _, err := s.Credentials().ByPSKIdentity(ctx, "nobody"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("psk lookup: %v", err)
	}
	for _, tc := range []struct {
		kind, op    string
		calls, errs uint64
	}{
		{"registrations", "put", 2, 1},
		{"registrations", "get", 1, 0},
		{"credentials", "by_psk_identity", 1, 0},
		{"queue", "claim", 0, 0}, // made up front, at 0
	} {
		calls, errs, ok := storeSeries(t, reg, tc.kind, tc.op)
		if !ok {
			t.Errorf("no series for %s %s", tc.kind, tc.op)
			continue
		}
		if calls != tc.calls || errs != tc.errs {
			t.Errorf("%s %s: %d calls, %d errors; want %d, %d", tc.kind, tc.op, calls, errs, tc.calls, tc.errs)
		}
	}
}

// storeSeries reads the call count of lwm2md_store_duration_seconds and
// the value of lwm2md_store_errors_total for kind and op.
func storeSeries(t *testing.T, reg *prometheus.Registry, kind, op string) (calls, errs uint64, ok bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["kind"] != kind || l["op"] != op {
				continue
			}
			switch mf.GetName() {
			case "lwm2md_store_duration_seconds":
				calls = m.GetHistogram().GetSampleCount()
				found++
			case "lwm2md_store_errors_total":
				errs = uint64(m.GetCounter().GetValue())
				found++
			}
		}
	}
	return calls, errs, found == 2
}

// BenchmarkStoreGet compares a registration Get on bbolt with and without
// the timing: the wrapper's cost is two clock reads and a histogram bucket.
func BenchmarkStoreGet(b *testing.B) {
	c, err := registry.NewCipher(bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		b.Fatal(err)
	}
	raw, err := bolt.Open(b.TempDir(), bolt.Options{Cipher: c})
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	ctx := context.Background()
	if err := raw.Registrations().Put(ctx, &registry.Registration{Endpoint: "ep-1", ID: "id-1", Version: "1.1", Lifetime: time.Minute, UpdatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	timed, err := InstrumentStore(raw, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	for name, s := range map[string]registry.Store{"bare": raw, "timed": timed} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Registrations().Get(ctx, "ep-1"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
