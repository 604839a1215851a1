package registrytest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/linkformat"
	"github.com/lwm2md/lwm2md/registry"
)

var ctx = context.Background()

// base is a fixed time, already at the stores' precision.
var base = time.Date(2025, 6, 1, 12, 0, 0, 123456000, time.UTC)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t testing.TB, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// fullRegistration has every field set.
func fullRegistration(ep, id string) *registry.Registration {
	return &registry.Registration{
		ID: id, Endpoint: ep,
		Addr:     netip.MustParseAddrPort("[2001:db8::1]:56830"),
		Lifetime: 300 * time.Second, Binding: "UQ", QueueMode: true, SMSNumber: "+4917012345",
		Version: "1.1", Root: "/lwm2m",
		Formats: []objects.Format{objects.FormatSenMLCBOR, objects.FormatTLV},
		Objects: []linkformat.Object{
			{ID: 1, Version: "1.1", HasVersion: true, Instances: []uint16{0}},
			{ID: 3, Version: "1.0", Instances: []uint16{0}},
			{ID: 3303, Version: "1.1", HasVersion: true, Instances: []uint16{0, 1, 7}},
			{ID: 5, Version: "1.0"},
		},
		ObjectVersions: map[uint16]string{1: "1.1", 3: "1.1", 3303: "1.1", 5: "1.0"},
		Params:         map[string]string{"apn": "iot.example", "empty": ""},
		RegisteredAt:   base,
		UpdatedAt:      base.Add(time.Minute),
	}
}

func sameRegistration(t testing.TB, got, want *registry.Registration) {
	t.Helper()
	w := *want
	w.RegisteredAt, w.UpdatedAt = registry.Time(w.RegisteredAt), registry.Time(w.UpdatedAt)
	if !reflect.DeepEqual(got, &w) {
		t.Fatalf("registration of %q:\n got %+v\nwant %+v", want.Endpoint, got, &w)
	}
}

func testRegistrations(t *testing.T, s registry.Store) {
	regs := s.Registrations()
	if _, err := regs.Get(ctx, "dev-a"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Get of an unknown endpoint: %v", err)
	}
	if _, err := regs.GetByID(ctx, "nope"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("GetByID of an unknown ID: %v", err)
	}
	a1 := fullRegistration("dev-a", "id1")
	b := &registry.Registration{ID: "id2", Endpoint: "dev-b", RegisteredAt: base, UpdatedAt: base}
	must(t, regs.Put(ctx, a1))
	must(t, regs.Put(ctx, b))
	got, err := regs.Get(ctx, "dev-a")
	must(t, err)
	sameRegistration(t, got, a1)
	got, err = regs.GetByID(ctx, "id2")
	must(t, err)
	sameRegistration(t, got, b)

	// Times are kept to the microsecond, in UTC.
	odd := &registry.Registration{ID: "id9", Endpoint: "dev-t", Lifetime: time.Hour,
		RegisteredAt: base.Add(789).In(time.FixedZone("X", 3600)), UpdatedAt: time.Now()}
	must(t, regs.Put(ctx, odd))
	got, err = regs.Get(ctx, "dev-t")
	must(t, err)
	if !got.RegisteredAt.Equal(base) || got.RegisteredAt.Location() != time.UTC || got.UpdatedAt != registry.Time(odd.UpdatedAt) {
		t.Fatalf("times: %v %v", got.RegisteredAt, got.UpdatedAt)
	}

	// A new registration of an endpoint replaces the old one and its ID.
	a2 := fullRegistration("dev-a", "id3")
	a2.Version, a2.Objects = "1.2", nil
	must(t, regs.Put(ctx, a2))
	wantErr(t, errOf(regs.GetByID(ctx, "id1")), registry.ErrNotFound, "old ID after re-registration")
	got, err = regs.GetByID(ctx, "id3")
	must(t, err)
	sameRegistration(t, got, a2)

	// An Update stores a new value under the same ID.
	a3 := *a2
	a3.UpdatedAt = base.Add(time.Hour)
	a3.Addr = netip.MustParseAddrPort("192.0.2.7:5683")
	must(t, regs.Put(ctx, &a3))
	got, err = regs.Get(ctx, "dev-a")
	must(t, err)
	sameRegistration(t, got, &a3)

	// An ID of another endpoint is refused and changes nothing.
	err = regs.Put(ctx, &registry.Registration{ID: "id2", Endpoint: "dev-a"})
	wantErr(t, err, registry.ErrConflict, "Put with another endpoint's ID")
	got, err = regs.Get(ctx, "dev-a")
	must(t, err)
	sameRegistration(t, got, &a3)
	got, err = regs.GetByID(ctx, "id2")
	must(t, err)
	sameRegistration(t, got, b)

	// Deleting a stale or unknown ID changes nothing.
	must(t, regs.Delete(ctx, "id1"))
	must(t, regs.Delete(ctx, "never"))
	if _, err := regs.Get(ctx, "dev-a"); err != nil {
		t.Fatal(err)
	}
	must(t, regs.Delete(ctx, "id3"))
	wantErr(t, errOf(regs.Get(ctx, "dev-a")), registry.ErrNotFound, "Get after Delete")
	wantErr(t, errOf(regs.GetByID(ctx, "id3")), registry.ErrNotFound, "GetByID after Delete")
	// The endpoint can register again, even with its old ID.
	must(t, regs.Put(ctx, a1))
}

func errOf[T any](_ T, err error) error { return err }

func endpoints(rs []*registry.Registration) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.Endpoint)
	}
	return out
}

func testRegistrationList(t *testing.T, s registry.Store) {
	regs := s.Registrations()
	list, err := regs.List(ctx, registry.RegistrationFilter{})
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("empty store lists %v", endpoints(list))
	}
	// 12 devices, put out of order: meter-00..09 (1.1, 60 s lifetime,
	// updated i minutes after base) and gw-a, gw-b (1.2, no expiry).
	for _, i := range []int{7, 3, 9, 0, 5, 1, 8, 2, 6, 4} {
		r := &registry.Registration{
			ID: fmt.Sprintf("m%02d", i), Endpoint: fmt.Sprintf("meter-%02d", i), Version: "1.1",
			Lifetime: 60 * time.Second, RegisteredAt: base, UpdatedAt: base.Add(time.Duration(i) * time.Minute),
		}
		must(t, regs.Put(ctx, r))
	}
	for _, ep := range []string{"gw-b", "gw-a"} {
		must(t, regs.Put(ctx, &registry.Registration{ID: ep, Endpoint: ep, Version: "1.2", RegisteredAt: base, UpdatedAt: base}))
	}
	check := func(f registry.RegistrationFilter, want ...string) {
		t.Helper()
		list, err := regs.List(ctx, f)
		must(t, err)
		if got := endpoints(list); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("List(%+v) = %v, want %v", f, got, want)
		}
	}
	meters := []string{"meter-00", "meter-01", "meter-02", "meter-03", "meter-04", "meter-05", "meter-06", "meter-07", "meter-08", "meter-09"}
	check(registry.RegistrationFilter{}, append([]string{"gw-a", "gw-b"}, meters...)...)
	check(registry.RegistrationFilter{Prefix: "meter-"}, meters...)
	check(registry.RegistrationFilter{Prefix: "gw"}, "gw-a", "gw-b")
	check(registry.RegistrationFilter{Prefix: "x"})
	check(registry.RegistrationFilter{Version: "1.2"}, "gw-a", "gw-b")
	check(registry.RegistrationFilter{Limit: 3}, "gw-a", "gw-b", "meter-00")
	check(registry.RegistrationFilter{After: "gw-b", Limit: 2}, "meter-00", "meter-01")
	check(registry.RegistrationFilter{After: "meter-08"}, "meter-09")
	check(registry.RegistrationFilter{After: "meter-0", Prefix: "meter-", Limit: 1}, "meter-00")
	check(registry.RegistrationFilter{Prefix: "meter-", After: "meter-04", Limit: 2}, "meter-05", "meter-06")
	// meter-i expires at base + i min + 60 s.
	check(registry.RegistrationFilter{ExpiredBy: base.Add(3 * time.Minute)}, "meter-00", "meter-01", "meter-02")
	check(registry.RegistrationFilter{ExpiredBy: base.Add(time.Minute - time.Microsecond)})
	check(registry.RegistrationFilter{ExpiredBy: base.Add(time.Hour), Version: "1.2"})

	// Paging through everything two at a time finds each once.
	var all []string
	after := ""
	for {
		page, err := regs.List(ctx, registry.RegistrationFilter{After: after, Limit: 2})
		must(t, err)
		if len(page) == 0 {
			break
		}
		all = append(all, endpoints(page)...)
		after = page[len(page)-1].Endpoint
	}
	if len(all) != 12 {
		t.Fatalf("paging found %v", all)
	}
}
