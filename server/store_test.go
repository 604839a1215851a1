package server

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/server/internal/testdevice"
)

func TestMemoryStore(t *testing.T) {
	c := context.Background()
	var m MemoryStore // the zero value works
	if _, err := m.Get(c, "a"); !errors.Is(err, ErrNotRegistered) {
		t.Fatal(err)
	}
	a1 := &Registration{ID: "id1", Endpoint: "a"}
	b := &Registration{ID: "id2", Endpoint: "b"}
	for _, r := range []*Registration{a1, b} {
		if err := m.Put(c, r); err != nil {
			t.Fatal(err)
		}
	}
	if r, _ := m.GetByID(c, "id1"); r != a1 {
		t.Fatal("GetByID")
	}
	// A new registration of endpoint a replaces the old one and its ID.
	a2 := &Registration{ID: "id3", Endpoint: "a"}
	if err := m.Put(c, a2); err != nil {
		t.Fatal(err)
	}
	if _, err := m.GetByID(c, "id1"); !errors.Is(err, ErrNotRegistered) {
		t.Fatal("old ID kept")
	}
	if r, _ := m.Get(c, "a"); r != a2 {
		t.Fatal("Get")
	}
	// An ID of another endpoint is refused, and changes nothing.
	if err := m.Put(c, &Registration{ID: "id2", Endpoint: "a"}); err == nil {
		t.Fatal("ID collision accepted")
	}
	if r, _ := m.Get(c, "a"); r != a2 {
		t.Fatal("a failed Put changed the store")
	}
	if err := m.Put(c, &Registration{Endpoint: "x"}); err == nil {
		t.Fatal("registration without ID accepted")
	}
	list, _ := m.List(c)
	if len(list) != 2 || list[0] != a2 || list[1] != b || m.Len() != 2 {
		t.Fatalf("List %v", list)
	}
	// Deleting a stale ID leaves the endpoint's current registration.
	if err := m.Delete(c, "id1"); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(c, "id3"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(c, "a"); !errors.Is(err, ErrNotRegistered) || m.Len() != 1 {
		t.Fatal("Delete")
	}
}

func TestRestoreFromStore(t *testing.T) {
	store := NewMemoryStore()
	now := time.Now()
	live := &Registration{ID: "live0000", Endpoint: "live", Addr: netip.MustParseAddrPort("127.0.0.1:9"), Lifetime: time.Second,
		Version: "1.1", Root: "/", RegisteredAt: now, UpdatedAt: now}
	dead := &Registration{ID: "dead0000", Endpoint: "dead", Addr: netip.MustParseAddrPort("127.0.0.1:10"), Lifetime: time.Second,
		Version: "1.1", Root: "/", RegisteredAt: now.Add(-time.Hour), UpdatedAt: now.Add(-time.Hour)}
	forever := &Registration{ID: "ever0000", Endpoint: "forever", Addr: netip.MustParseAddrPort("127.0.0.1:11"),
		Version: "1.2", Root: "/", RegisteredAt: now.Add(-time.Hour), UpdatedAt: now.Add(-time.Hour)}
	for _, r := range []*Registration{live, dead, forever} {
		_ = store.Put(context.Background(), r)
	}
	s := newServer(t, func(c *Config) { c.Store, c.LifetimeGrace = store, 50*time.Millisecond })
	sub := s.Subscribe(8)
	if _, err := s.Registration(ctx(t), "dead"); !errors.Is(err, ErrNotRegistered) {
		t.Fatal("expired registration restored")
	}
	if st := s.Stats(); st.Registrations != 2 {
		t.Fatalf("%+v", st)
	}
	// The restored registration expires on its own schedule.
	if e := waitEvent(t, sub, EventExpired); e.Endpoint != "live" {
		t.Fatalf("%+v", e)
	}
	if _, err := s.Registration(ctx(t), "forever"); err != nil {
		t.Fatal(err)
	}
}

// A restarted server on the same address reaches the devices its Store
// remembers.
func TestRestartKeepsRegistrations(t *testing.T) {
	store := NewMemoryStore()
	s1 := newServer(t, func(c *Config) { c.Store = store })
	addr := s1.Addr().String()
	d := registerDevice(t, s1, "dev-restart", func(c *testdevice.Config) { c.Announce = []objects.Format{objects.FormatSenMLCBOR} })
	_ = s1.Close()

	s2 := newServer(t, func(c *Config) { c.Store, c.UDPAddr = store, addr })
	n, err := s2.Read(ctx(t), "dev-restart", path("/3/0/0"))
	if err != nil || n.(*objects.Resource).Value.Str() != "lwm2md" {
		t.Fatalf("read after restart: %v %v", n, err)
	}
	if code, _ := d.Update(ctx(t), false); code != codes.Changed {
		t.Fatalf("update after restart: %v", code)
	}
}
