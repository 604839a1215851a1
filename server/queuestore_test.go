package server

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/registry"
)

func memRequest(ep string, deadline time.Time) *registry.Request {
	return &registry.Request{Endpoint: ep, Operation: OpRead, Path: objects.MustParsePath("/3/0/0"), Deadline: deadline}
}

// MemoryQueue keeps the queue rules of the persistent stores: order by
// ID, one claim at a time per endpoint, leases, expiry and purge.
func TestMemoryQueue(t *testing.T) {
	c := context.Background()
	now := time.Now()
	t.Run("order and claim", func(t *testing.T) {
		m := NewMemoryQueue()
		a, _ := m.Enqueue(c, memRequest("ep", time.Time{}))
		b, _ := m.Enqueue(c, memRequest("ep", time.Time{}))
		if _, err := m.Enqueue(c, memRequest("other", time.Time{})); err != nil {
			t.Fatal(err)
		}
		if a >= b {
			t.Fatalf("IDs %d, %d do not grow", a, b)
		}
		h, err := m.Claim(c, "ep", "me", now, now.Add(time.Minute))
		if err != nil || h.ID != a || h.Status != registry.StatusSent || h.Attempts != 1 {
			t.Fatalf("claim: %+v %v", h, err)
		}
		if _, err := m.Claim(c, "ep", "you", now, now.Add(time.Minute)); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("second claim while leased: %v", err)
		}
		if err := m.Complete(c, a, "you", registry.Result{Status: registry.StatusDone}); !errors.Is(err, registry.ErrConflict) {
			t.Fatalf("complete by another owner: %v", err)
		}
		if err := m.Complete(c, a, "me", registry.Result{Status: registry.StatusDone}); err != nil {
			t.Fatal(err)
		}
		if err := m.Complete(c, a, "", registry.Result{Status: registry.StatusCancelled}); !errors.Is(err, registry.ErrConflict) {
			t.Fatalf("complete twice: %v", err)
		}
		h, err = m.Peek(c, "ep", now)
		if err != nil || h.ID != b {
			t.Fatalf("peek: %+v %v", h, err)
		}
		open, _ := m.List(c, "ep", registry.StatusPending, registry.StatusSent)
		all, _ := m.List(c, "ep")
		if len(open) != 1 || len(all) != 2 {
			t.Fatalf("list: %d open, %d in all", len(open), len(all))
		}
	})
	t.Run("lease runs out", func(t *testing.T) {
		m := NewMemoryQueue()
		a, _ := m.Enqueue(c, memRequest("ep", time.Time{}))
		if _, err := m.Claim(c, "ep", "me", now, now.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		h, err := m.Claim(c, "ep", "you", now.Add(2*time.Second), now.Add(time.Minute))
		if err != nil || h.ID != a || h.Owner != "you" || h.Attempts != 2 {
			t.Fatalf("claim after the lease: %+v %v", h, err)
		}
	})
	t.Run("expire and purge", func(t *testing.T) {
		m := NewMemoryQueue()
		a, _ := m.Enqueue(c, memRequest("ep", now.Add(time.Second)))
		b, _ := m.Enqueue(c, memRequest("ep", now.Add(time.Hour)))
		if h, err := m.Peek(c, "ep", now.Add(2*time.Second)); err != nil || h.ID != b {
			t.Fatalf("peek skips the expired head: %+v %v", h, err)
		}
		exp, err := m.Expire(c, now.Add(2*time.Second))
		if err != nil || len(exp) != 1 || exp[0].ID != a || exp[0].Status != registry.StatusExpired {
			t.Fatalf("expire: %+v %v", exp, err)
		}
		if n, _ := m.Purge(c, time.Now().Add(time.Minute)); n != 1 {
			t.Fatalf("purged %d, want the expired one", n)
		}
		if _, err := m.Get(c, a); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("get after purge: %v", err)
		}
		if r, err := m.Get(c, b); err != nil || r.Status != registry.StatusPending {
			t.Fatalf("open request purged: %+v %v", r, err)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		m := NewMemoryQueue()
		for name, r := range map[string]*registry.Request{
			"nil":          nil,
			"no endpoint":  {Operation: OpRead},
			"no operation": {Endpoint: "ep"},
		} {
			if _, err := m.Enqueue(c, r); !errors.Is(err, registry.ErrInvalid) {
				t.Errorf("%s: %v", name, err)
			}
		}
		if err := m.Complete(c, 1, "", registry.Result{Status: registry.StatusPending}); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("complete as pending: %v", err)
		}
		if _, err := m.Claim(c, "ep", "", now, now); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("claim without owner: %v", err)
		}
	})
}

// queuedSeed is a testdata/queue file: a stored request as the registry
// keeps it.
type queuedSeed struct {
	Op      string          `json:"op"`
	Path    string          `json:"path"`
	Payload json.RawMessage `json:"payload"`
}

func queuedSeeds(t testing.TB) []queuedSeed {
	files, err := filepath.Glob(filepath.Join("testdata", "queue", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/queue seeds: %v", err)
	}
	var seeds []queuedSeed
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var s queuedSeed
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		seeds = append(seeds, s)
	}
	return seeds
}

// decodeServer is a server that is never started, for decodeRequest.
func decodeServer(t testing.TB) (*Server, *Registration) {
	s, err := New(Config{UDPAddr: "127.0.0.1:0", Models: testModels})
	if err != nil {
		t.Fatal(err)
	}
	reg := &Registration{ID: "x", Endpoint: "ep", Version: "1.1",
		ObjectVersions: map[uint16]string{3: "1.1", 3303: "1.0"}}
	return s, reg
}

// The stored requests of testdata/queue decode, and encode back to a
// request that decodes the same.
func TestQueuedRequestRoundTrip(t *testing.T) {
	s, reg := decodeServer(t)
	for _, seed := range queuedSeeds(t) {
		t.Run(seed.Op, func(t *testing.T) {
			q := &registry.Request{ID: 1, Endpoint: "ep", Operation: seed.Op, Path: objects.MustParsePath(seed.Path), Payload: seed.Payload}
			r, err := s.decodeRequest(reg, q)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkRequest(r, reg); err != nil {
				t.Fatalf("decoded request refused: %v", err)
			}
			again, err := s.encodeRequest(reg, r, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			r2, err := s.decodeRequest(reg, again)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r, r2) {
				t.Fatalf("round trip:\n%+v\n%+v", r, r2)
			}
		})
	}
}

// FuzzDecodeQueuedRequest: whatever a store hands back, decodeRequest
// returns a request or an error, never a panic.
func FuzzDecodeQueuedRequest(f *testing.F) {
	for _, seed := range queuedSeeds(f) {
		f.Add(seed.Op, seed.Path, []byte(seed.Payload))
	}
	s, reg := decodeServer(f)
	f.Fuzz(func(t *testing.T, op, p string, payload []byte) {
		path, err := objects.ParsePath(p)
		if err != nil {
			return
		}
		q := &registry.Request{ID: 1, Endpoint: "ep", Operation: op, Path: path, Payload: payload}
		if r, err := s.decodeRequest(reg, q); err == nil {
			_ = checkRequest(r, reg)
		}
	})
}
