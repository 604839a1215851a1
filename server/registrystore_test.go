package server

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/linkformat"
	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/bolt"
	"github.com/lwm2md/lwm2md/server/internal/testdevice"
)

// fullRegistration has every field of Registration set.
func fullRegistration() *Registration {
	at := time.Date(2026, 11, 22, 1, 2, 3, 456789000, time.UTC)
	return &Registration{
		ID:        "k3n5ffq2m4xv7a1b",
		Endpoint:  "urn:imei:490154203237518",
		Addr:      netip.MustParseAddrPort("[2001:db8::7]:56830"),
		Lifetime:  300 * time.Second,
		Binding:   "UQ",
		QueueMode: true,
		SMSNumber: "+4915112345678",
		Version:   "1.1",
		Root:      "/lwm2m",
		Formats:   []objects.Format{objects.FormatSenMLCBOR, objects.FormatTLV},
		Objects: []linkformat.Object{
			{ID: 1, Version: "1.1", HasVersion: true, Instances: []uint16{0}},
			{ID: 3, Version: "1.0", Instances: []uint16{0}},
			{ID: 3303, Version: "1.1", HasVersion: true, Instances: []uint16{0, 1, 7}},
		},
		ObjectVersions: map[uint16]string{1: "1.1", 3: "1.1", 3303: "1.1"},
		Params:         map[string]string{"apn": "iot", "fw": "2.0.1"},
		RegisteredAt:   at,
		UpdatedAt:      at.Add(90 * time.Second),
	}
}

// checkAllSet fails when a field of v (a struct) has its zero value, so a
// field added to Registration or registry.Registration without a place in
// the conversion fails the test.
func checkAllSet(t *testing.T, v any) {
	t.Helper()
	rv := reflect.ValueOf(v).Elem()
	for i := 0; i < rv.NumField(); i++ {
		if rv.Field(i).IsZero() {
			t.Errorf("%s.%s is not set by the conversion", rv.Type(), rv.Type().Field(i).Name)
		}
	}
}

func TestRegistryConversion(t *testing.T) {
	tests := []struct {
		name string
		reg  *Registration
	}{
		{"full", fullRegistration()},
		{"minimal", &Registration{ID: "id0", Endpoint: "ep"}},
		{"no expiry", &Registration{ID: "id1", Endpoint: "ep12", Version: "1.2", Binding: "U", Root: "/",
			Addr: netip.MustParseAddrPort("192.0.2.7:5683"), RegisteredAt: time.Unix(1700000000, 0).UTC(), UpdatedAt: time.Unix(1700000000, 0).UTC()}},
	}
	store, err := bolt.Open(t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rs := RegistryStore(store.Registrations())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := toRegistry(tt.reg)
			if tt.name == "full" {
				checkAllSet(t, tt.reg)
				checkAllSet(t, reg)
			}
			if reflect.TypeOf(*reg).NumField() != reflect.TypeOf(*tt.reg).NumField() {
				t.Errorf("registry.Registration has %d fields, server.Registration %d", reflect.TypeOf(*reg).NumField(), reflect.TypeOf(*tt.reg).NumField())
			}
			back := fromRegistry(reg)
			if !reflect.DeepEqual(back, tt.reg) {
				t.Fatalf("server → registry → server:\n got %+v\nwant %+v", back, tt.reg)
			}
			// And through a real store: the same, times in UTC to the µs.
			c := context.Background()
			if err := rs.Put(c, tt.reg); err != nil {
				t.Fatal(err)
			}
			for _, get := range []func() (*Registration, error){
				func() (*Registration, error) { return rs.Get(c, tt.reg.Endpoint) },
				func() (*Registration, error) { return rs.GetByID(c, tt.reg.ID) },
			} {
				got, err := get()
				if err != nil {
					t.Fatal(err)
				}
				want := *tt.reg
				want.RegisteredAt, want.UpdatedAt = registry.Time(want.RegisteredAt), registry.Time(want.UpdatedAt)
				if !reflect.DeepEqual(got, &want) {
					t.Fatalf("through bolt:\n got %+v\nwant %+v", got, &want)
				}
			}
		})
	}
}

// TestRegistryStoreContract checks the Store contract the server relies
// on, as TestMemoryStore does for MemoryStore.
func TestRegistryStoreContract(t *testing.T) {
	store, err := bolt.Open(t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	c := context.Background()
	m := RegistryStore(store.Registrations())
	if _, err := m.Get(c, "a"); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("Get of unknown endpoint: %v", err)
	}
	if _, err := m.GetByID(c, "nope"); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("GetByID of unknown ID: %v", err)
	}
	for _, r := range []*Registration{{ID: "id2", Endpoint: "b"}, {ID: "id1", Endpoint: "a"}} {
		if err := m.Put(c, r); err != nil {
			t.Fatal(err)
		}
	}
	// A new registration of endpoint a replaces the old one and its ID.
	if err := m.Put(c, &Registration{ID: "id3", Endpoint: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.GetByID(c, "id1"); !errors.Is(err, ErrNotRegistered) {
		t.Fatal("old ID kept")
	}
	// An ID of another endpoint is refused, and changes nothing.
	if err := m.Put(c, &Registration{ID: "id2", Endpoint: "a"}); !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("ID collision: %v", err)
	}
	if r, err := m.Get(c, "a"); err != nil || r.ID != "id3" {
		t.Fatalf("a failed Put changed the store: %+v %v", r, err)
	}
	for _, bad := range []*Registration{nil, {Endpoint: "x"}, {ID: "x"}} {
		if err := m.Put(c, bad); err == nil {
			t.Fatalf("Put(%+v) accepted", bad)
		}
	}
	list, err := m.List(c)
	if err != nil || len(list) != 2 || list[0].ID != "id3" || list[1].ID != "id2" {
		t.Fatalf("List %+v %v", list, err)
	}
	// Deleting a stale or unknown ID is not an error.
	for _, id := range []string{"id1", "unknown", "id3"} {
		if err := m.Delete(c, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Get(c, "a"); !errors.Is(err, ErrNotRegistered) {
		t.Fatal("Delete")
	}
	// A closed registry fails, and does not claim the device is unknown.
	store.Close()
	if _, err := m.Get(c, "b"); err == nil || errors.Is(err, ErrNotRegistered) {
		t.Fatalf("Get on a closed store: %v", err)
	}
}

// The "devices registered before the crash keep being served": a
// server on a bolt registry is closed, the file closed and opened again,
// and a new server on the same address reads the device and takes its
// Update without a new Register.
func TestRegistryStoreRestart(t *testing.T) {
	dir := t.TempDir()
	store, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s1 := newServer(t, func(c *Config) { c.Store = RegistryStore(store.Registrations()) })
	addr := s1.Addr().String()
	d := registerDevice(t, s1, "dev-bolt", func(c *testdevice.Config) {
		c.Announce = []objects.Format{objects.FormatSenMLCBOR}
		c.Query = []string{"apn=iot"}
	})
	before, err := s1.Registration(ctx(t), "dev-bolt")
	if err != nil {
		t.Fatal(err)
	}
	_ = s1.Close()
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	store, err = bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	s2 := newServer(t, func(c *Config) { c.Store, c.UDPAddr = RegistryStore(store.Registrations()), addr })
	after, err := s2.Registration(ctx(t), "dev-bolt")
	if err != nil {
		t.Fatal(err)
	}
	if after.ID != before.ID || after.Addr != before.Addr || !reflect.DeepEqual(after.Objects, before.Objects) ||
		after.Params["apn"] != "iot" || after.PreferredFormat() != objects.FormatSenMLCBOR {
		t.Fatalf("restored registration %+v, was %+v", after, before)
	}
	n, err := s2.Read(ctx(t), "dev-bolt", path("/3/0/0"))
	if err != nil || n.(*objects.Resource).Value.Str() != "lwm2md" {
		t.Fatalf("read after restart: %v %v", n, err)
	}
	if code, _ := d.Update(ctx(t), false); code != codes.Changed {
		t.Fatalf("update after restart: %v", code)
	}
	// The Update went to the registry too.
	r, err := store.Registrations().Get(ctx(t), "dev-bolt")
	if err != nil || !r.UpdatedAt.After(registry.Time(before.UpdatedAt)) {
		t.Fatalf("Update not stored: %+v %v", r, err)
	}
}

// BenchmarkRegisterDeregisterBolt is BenchmarkRegisterDeregister with the
// registrations in a bolt registry: two fsynced writes per round, one at
// a time (the server writes with its registration lock held).
func BenchmarkRegisterDeregisterBolt(b *testing.B) {
	store, err := bolt.Open(b.TempDir(), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	s := newServer(b, func(c *Config) { c.Store = RegistryStore(store.Registrations()) })
	c := context.Background()
	b.ReportAllocs()
	i := 0
	var d *testdevice.Device
	for b.Loop() {
		if i%50 == 0 {
			if d != nil {
				_ = d.Close()
			}
			d = newDevice(b, s, "bench-reg", nil)
		}
		i++
		if code, err := d.Register(c); err != nil || code != codes.Created {
			b.Fatal(code, err)
		}
		if code, err := d.Deregister(c); err != nil || code != codes.Deleted {
			b.Fatal(code, err)
		}
	}
}

// BenchmarkRegisterParallelBolt registers and de-registers from many
// devices at once with a bbolt store: the endpoints' changes run in
// parallel, so the store groups their writes into shared commits.
func BenchmarkRegisterParallelBolt(b *testing.B) {
	store, err := bolt.Open(b.TempDir(), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	s := newServer(b, func(c *Config) { c.Store = RegistryStore(store.Registrations()) })
	c := context.Background()
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16) // 16 × GOMAXPROCS devices
	b.RunParallel(func(pb *testing.PB) {
		d := newDevice(b, s, fmt.Sprintf("bench-par-%d", n.Add(1)), nil)
		for i := 0; pb.Next(); i++ {
			if code, err := d.Register(c); err != nil || code != codes.Created {
				b.Error(code, err)
				return
			}
			if code, err := d.Deregister(c); err != nil || code != codes.Deleted {
				b.Error(code, err)
				return
			}
		}
	})
}
