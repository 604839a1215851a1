package server

import (
	"errors"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/linkformat"
	"github.com/lwm2md/lwm2md/server/internal/testdevice"
)

func TestRegisterUpdateDeregister(t *testing.T) {
	s := newServer(t, nil)
	sub := s.Subscribe(64)
	d := newDevice(t, s, "dev-1", func(c *testdevice.Config) {
		c.Announce = []objects.Format{objects.FormatSenMLJSON}
		c.Query = []string{"sms=+4912345", "imei=35000000"}
	})
	before := time.Now()
	code, err := d.Register(ctx(t))
	if err != nil || code != codes.Created {
		t.Fatalf("register: %v %v", code, err)
	}
	if !regexp.MustCompile(`^/rd/[a-z2-7]{16}$`).MatchString(d.Location()) {
		t.Fatalf("Location-Path %q is not /rd/{16 base32 characters}", d.Location())
	}
	e := waitEvent(t, sub, EventRegistered)
	if e.Endpoint != "dev-1" || e.Previous != nil || e.Registration == nil || e.Registration.Location() != d.Location() {
		t.Fatalf("registered event: %+v", e)
	}
	r, err := s.Registration(ctx(t), "dev-1")
	if err != nil {
		t.Fatal(err)
	}
	want := netip.MustParseAddrPort(d.LocalAddr().String())
	if r.Addr != want || r.Version != "1.1" || r.Lifetime != 60*time.Second || r.Binding != "U" ||
		r.SMSNumber != "+4912345" || r.Params["imei"] != "35000000" || r.QueueMode || r.Root != "/" {
		t.Fatalf("registration: %+v", r)
	}
	if !slices.Equal(r.Formats, []objects.Format{objects.FormatSenMLJSON}) || r.PreferredFormat() != objects.FormatSenMLJSON {
		t.Fatalf("formats %v, preferred %s", r.Formats, r.PreferredFormat())
	}
	var ids []uint16
	for _, o := range r.Objects {
		ids = append(ids, o.ID)
	}
	if !slices.Equal(ids, []uint16{1, 3, 5, 6, 3303}) || !r.HasObject(3303) || r.HasObject(4) {
		t.Fatalf("objects %v", ids)
	}
	if r.ObjectVersions[3] != testModels.Object(3).Version {
		t.Fatalf("object versions %v", r.ObjectVersions)
	}
	if r.RegisteredAt.Before(before) || !r.UpdatedAt.Equal(r.RegisteredAt) {
		t.Fatalf("timestamps %v %v", r.RegisteredAt, r.UpdatedAt)
	}

	time.Sleep(5 * time.Millisecond)
	code, err = d.Update(ctx(t), false, "lt=120")
	if err != nil || code != codes.Changed {
		t.Fatalf("update: %v %v", code, err)
	}
	e = waitEvent(t, sub, EventUpdated)
	if e.Registration.Lifetime != 120*time.Second || e.Previous.Lifetime != 60*time.Second || !e.Registration.UpdatedAt.After(r.UpdatedAt) {
		t.Fatalf("updated event: %+v", e.Registration)
	}
	if e.Registration.ID != r.ID || !e.Registration.RegisteredAt.Equal(r.RegisteredAt) {
		t.Fatal("an Update changed the registration ID or time")
	}
	// An Update with a new object list and binding.
	code, err = d.Update(ctx(t), true, "b=UQ")
	if err != nil || code != codes.Changed {
		t.Fatalf("update with objects: %v %v", code, err)
	}
	e = waitEvent(t, sub, EventUpdated)
	if e.Registration.Binding != "UQ" || !e.Registration.QueueMode || len(e.Registration.Objects) != 5 {
		t.Fatalf("update with objects: %+v", e.Registration)
	}

	code, err = d.Deregister(ctx(t))
	if err != nil || code != codes.Deleted {
		t.Fatalf("deregister: %v %v", code, err)
	}
	e = waitEvent(t, sub, EventDeregistered)
	if e.Endpoint != "dev-1" || e.RegistrationID != r.ID {
		t.Fatalf("deregistered event: %+v", e)
	}
	if _, err := s.Registration(ctx(t), "dev-1"); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("after de-register: %v", err)
	}
	// The registration is gone: Update and De-register answer 4.04.
	if code, _ := d.Update(ctx(t), false); code != codes.NotFound {
		t.Fatalf("update after de-register: %v", code)
	}
	if code, _ := d.Deregister(ctx(t)); code != codes.NotFound {
		t.Fatalf("de-register twice: %v", code)
	}
	if st := s.Stats(); st.Registrations != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestReRegistrationReplaces(t *testing.T) {
	s := newServer(t, nil)
	sub := s.Subscribe(64)
	d := registerDevice(t, s, "dev-re", nil)
	first := d.Location()
	obs, _, err := s.Observe(ctx(t), "dev-re", path("/3/0/9"), WithFormat(objects.FormatText))
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, sub, EventRegistered)

	// The same endpoint registers again (after a reboot, from another
	// socket): the old registration and its observations go.
	d2 := registerDevice(t, s, "dev-re", nil)
	e := waitEvent(t, sub, EventRegistered)
	if e.Previous == nil || e.Previous.Location() != first || e.Registration.Location() == first {
		t.Fatalf("re-registration event: %+v", e)
	}
	if len(s.Observations("dev-re")) != 0 || s.hasObservation(obs) {
		t.Fatal("observations of the replaced registration survived")
	}
	if code, _ := d.Update(ctx(t), false); code != codes.NotFound {
		t.Fatalf("update of the replaced registration: %v", code)
	}
	// Requests go to the new registration's address.
	if _, err := s.Read(ctx(t), "dev-re", path("/3/0/0")); err != nil {
		t.Fatal(err)
	}
	if len(d2.Requests()) != 1 {
		t.Fatalf("new device got %v", d2.Requests())
	}
	// A notification of the dropped observation is answered with RST.
	d.Set(path("/3/0/9"), objects.IntegerValue(50))
	if err := d.Notify(ctx(t), path("/3/0/9")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "RST of the old observation", func() bool { return d.Resets() == 1 })
	if st := s.Stats(); st.Registrations != 1 || st.Resets != 1 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestExpiry(t *testing.T) {
	s := newServer(t, func(c *Config) { c.LifetimeGrace = 50 * time.Millisecond })
	sub := s.Subscribe(64)
	d := registerDevice(t, s, "dev-exp", func(c *testdevice.Config) { c.Lifetime = 1 })
	if _, _, err := s.Observe(ctx(t), "dev-exp", path("/3/0/9"), WithFormat(objects.FormatText)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	e := waitEvent(t, sub, EventExpired)
	if took := time.Since(start); took < 900*time.Millisecond {
		t.Fatalf("expired after %v, before its lifetime", took)
	}
	if e.Endpoint != "dev-exp" || e.Registration == nil {
		t.Fatalf("expired event: %+v", e)
	}
	if _, err := s.Registration(ctx(t), "dev-exp"); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("after expiry: %v", err)
	}
	if st := s.Stats(); st.Observations != 0 || st.Registrations != 0 {
		t.Fatalf("stats after expiry: %+v", st)
	}
	if code, _ := d.Update(ctx(t), false); code != codes.NotFound {
		t.Fatalf("update after expiry: %v", code)
	}
	if _, err := s.Read(ctx(t), "dev-exp", path("/3/0/0")); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("read after expiry: %v", err)
	}
}

func TestUpdatePostponesExpiry(t *testing.T) {
	s := newServer(t, func(c *Config) { c.LifetimeGrace = 50 * time.Millisecond })
	sub := s.Subscribe(64)
	d := registerDevice(t, s, "dev-upd", func(c *testdevice.Config) { c.Lifetime = 1 })
	// Updates every 400 ms keep a 1 s registration alive for 2 s.
	for i := 0; i < 5; i++ {
		time.Sleep(400 * time.Millisecond)
		if code, err := d.Update(ctx(t), false); code != codes.Changed {
			t.Fatalf("update %d: %v %v", i, code, err)
		}
	}
	noEvent(t, sub, EventExpired, 100*time.Millisecond)
	if _, err := s.Registration(ctx(t), "dev-upd"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, sub, EventExpired)
}

func TestVersionRefused(t *testing.T) {
	s := newServer(t, func(c *Config) { c.Versions = []string{"1.1", "1.2"} })
	for _, v := range []string{"1.0", "1.3", "2.0"} {
		d := newDevice(t, s, "dev-v"+v, func(c *testdevice.Config) { c.Version = v })
		code, err := d.Register(ctx(t))
		if err != nil || code != codes.PreconditionFailed {
			t.Fatalf("lwm2m=%s: %v %v, want 4.12", v, code, err)
		}
	}
	// No lwm2m parameter means 1.0 (LwM2M 1.0 §5.3.1).
	d := newDevice(t, s, "dev-noversion", func(c *testdevice.Config) { c.Version = "" })
	if code, _ := d.Register(ctx(t)); code != codes.PreconditionFailed {
		t.Fatalf("no lwm2m parameter with 1.0 refused: %v", code)
	}
	if !strings.Contains(s.logs.String(), "unsupported LwM2M version") {
		t.Fatalf("no log line for the refused version:\n%s", s.logs.String())
	}
	// The diagnostic payload names the supported versions.
	p := newRawPeer(t, s)
	r := p.request(codes.POST, "/rd", []string{"ep=raw", "lwm2m=1.3"}, 40, []byte("</3/0>"))
	if r.Code != codes.PreconditionFailed || !strings.Contains(string(r.Payload), "1.1, 1.2") {
		t.Fatalf("answer %v %q", r.Code, r.Payload)
	}
	if st := s.Stats(); st.Registrations != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestRegisterBadRequests(t *testing.T) {
	s := newServer(t, nil)
	p := newRawPeer(t, s)
	tests := []struct {
		name    string
		query   []string
		cf      int
		payload string
		code    codes.Code
		diag    string
	}{
		{"no endpoint", []string{"lt=60"}, 40, "</3/0>", codes.BadRequest, "missing endpoint"},
		{"empty endpoint", []string{"ep="}, 40, "</3/0>", codes.BadRequest, "empty endpoint"},
		{"lifetime not a number", []string{"ep=x", "lt=abc"}, 40, "</3/0>", codes.BadRequest, "lifetime"},
		{"negative lifetime", []string{"ep=x", "lt=-5"}, 40, "</3/0>", codes.BadRequest, "lifetime"},
		{"lifetime 0 before 1.2", []string{"ep=x", "lt=0", "lwm2m=1.1"}, 40, "</3/0>", codes.BadRequest, "1.2"},
		{"bad binding", []string{"ep=x", "b=X"}, 40, "</3/0>", codes.BadRequest, "binding"},
		{"binding twice", []string{"ep=x", "b=UU"}, 40, "</3/0>", codes.BadRequest, "twice"},
		{"parameter twice", []string{"ep=x", "ep=y"}, 40, "</3/0>", codes.BadRequest, "twice"},
		{"bad version", []string{"ep=x", "lwm2m=one"}, 40, "</3/0>", codes.BadRequest, "version"},
		{"Q with a value", []string{"ep=x", "Q=1"}, 40, "</3/0>", codes.BadRequest, "Q"},
		{"broken link-format", []string{"ep=x"}, 40, "</3/0", codes.BadRequest, ""},
		{"not a path", []string{"ep=x"}, 40, "</a/b>", codes.BadRequest, ""},
		{"two versions of one object", []string{"ep=x"}, 40, "</3>;ver=1.0,</3>;ver=1.1", codes.BadRequest, ""},
		{"not link-format", []string{"ep=x"}, 42, "</3/0>", codes.BadRequest, "link-format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := p.request(codes.POST, "/rd", tt.query, tt.cf, []byte(tt.payload))
			if r.Code != tt.code {
				t.Fatalf("code %v, want %v (%q)", r.Code, tt.code, r.Payload)
			}
			if len(r.Payload) == 0 || !strings.Contains(string(r.Payload), tt.diag) {
				t.Fatalf("diagnostic %q does not mention %q", r.Payload, tt.diag)
			}
			if _, err := r.Options.ContentFormat(); err == nil {
				t.Fatal("a diagnostic payload has no Content-Format (RFC 7252 §5.5.2)")
			}
		})
	}
	if st := s.Stats(); st.Registrations != 0 {
		t.Fatalf("a bad Register was stored: %+v", st)
	}
	// Update errors: a parameter an Update cannot carry.
	d := registerDevice(t, s, "dev-bad-upd", nil)
	for _, q := range [][]string{{"ep=other"}, {"lwm2m=1.2"}, {"lt=x"}, {"b=Z"}} {
		if code, _ := d.Update(ctx(t), false, q...); code != codes.BadRequest {
			t.Fatalf("update %v: %v, want 4.00", q, code)
		}
	}
}

func TestRegisterVariants(t *testing.T) {
	s := newServer(t, nil)
	p := newRawPeer(t, s)
	tests := []struct {
		name    string
		query   []string
		payload string
		check   func(t *testing.T, r *Registration)
	}{
		{"defaults", []string{"ep=v1"}, "</3/0>", func(t *testing.T, r *Registration) {
			if r.Lifetime != DefaultLifetime || r.Binding != "U" || r.Version != "1.0" || r.PreferredFormat() != objects.FormatTLV {
				t.Fatalf("%+v", r)
			}
		}},
		{"1.0 queue mode binding", []string{"ep=v2", "b=UQ", "lwm2m=1.0"}, "</3/0>", func(t *testing.T, r *Registration) {
			if !r.QueueMode || r.Binding != "UQ" {
				t.Fatalf("%+v", r)
			}
		}},
		{"1.1 Q parameter", []string{"ep=v3", "b=U", "Q", "lwm2m=1.1"}, "</3/0>", func(t *testing.T, r *Registration) {
			if !r.QueueMode {
				t.Fatalf("%+v", r)
			}
		}},
		{"1.2 lifetime 0", []string{"ep=v4", "lt=0", "lwm2m=1.2"}, "</3/0>", func(t *testing.T, r *Registration) {
			if r.Lifetime != 0 || !r.ExpiresAt(time.Second).IsZero() {
				t.Fatalf("%+v", r)
			}
		}},
		{"alternate root and formats", []string{"ep=v5", "lwm2m=1.1"}, `</lwm2m>;rt="oma.lwm2m";ct="110 112",</lwm2m/1/0>,</lwm2m/3/0>`, func(t *testing.T, r *Registration) {
			if r.Root != "/lwm2m" || r.PreferredFormat() != objects.FormatSenMLCBOR || len(r.Objects) != 2 {
				t.Fatalf("%+v", r)
			}
		}},
		{"security and oscore left out", []string{"ep=v6", "lwm2m=1.1"}, "</0/0>,</1/0>,</21/0>,</3/0>", func(t *testing.T, r *Registration) {
			if r.HasObject(0) || r.HasObject(21) || !r.HasObject(1) {
				t.Fatalf("%+v", r.Objects)
			}
		}},
		{"empty object list", []string{"ep=v7", "lwm2m=1.2"}, "", func(t *testing.T, r *Registration) {
			if len(r.Objects) != 0 {
				t.Fatalf("%+v", r.Objects)
			}
		}},
		{"quoted version, core object default", []string{"ep=v8", "lwm2m=1.1"}, `</1/1>,</3/0>,</10>;ver="1.1",</10/0>,</3303/0>`, func(t *testing.T, r *Registration) {
			if r.ObjectVersions[10] != "1.1" || r.ObjectVersions[3303] != "1.0" || r.ObjectVersions[1] != "1.1" || r.ObjectVersions[3] != "1.1" {
				t.Fatalf("%v", r.ObjectVersions)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := p.request(codes.POST, "/rd", tt.query, 40, []byte(tt.payload))
			if resp.Code != codes.Created {
				t.Fatalf("code %v %q", resp.Code, resp.Payload)
			}
			ep := strings.TrimPrefix(tt.query[0], "ep=")
			r, err := s.Registration(ctx(t), ep)
			if err != nil {
				t.Fatal(err)
			}
			if locationOf(resp) != r.Location() {
				t.Fatalf("Location-Path %s, registration %s", locationOf(resp), r.Location())
			}
			tt.check(t, r)
		})
	}
}

func TestUpdateFromNewAddress(t *testing.T) {
	s := newServer(t, nil)
	sub := s.Subscribe(64)
	d := registerDevice(t, s, "dev-nat", nil)
	obs, _, err := s.Observe(ctx(t), "dev-nat", path("/3/0/9"), WithFormat(objects.FormatText))
	if err != nil {
		t.Fatal(err)
	}
	// The device's NAT mapping changed: its Update comes from another port.
	p := newRawPeer(t, s)
	r := p.request(codes.POST, d.Location(), nil, -1, nil)
	if r.Code != codes.Changed {
		t.Fatalf("update from a new address: %v", r.Code)
	}
	e := waitEvent(t, sub, EventUpdated)
	if e.Registration.Addr.String() != p.conn.LocalAddr().String() || e.Previous.Addr == e.Registration.Addr {
		t.Fatalf("address not moved: %v -> %v", e.Previous.Addr, e.Registration.Addr)
	}
	// Requests now go to the new address.
	done := make(chan error, 1)
	go func() {
		_, err := s.Read(ctx(t), "dev-nat", path("/3/0/0"), WithFormat(objects.FormatText))
		done <- err
	}()
	req, ok := p.serveOne(3*time.Second, codes.Content, 0, []byte("moved"))
	if !ok || req.Code != codes.GET {
		t.Fatal("the read did not reach the new address")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The observation follows the registration to its new address.
	if !s.hasObservation(obs) || obs.addr.String() != p.conn.LocalAddr().String() {
		t.Fatal("observation not moved")
	}
}

func TestParseRegParams(t *testing.T) {
	p, err := parseRegParams([]string{"ep=a", "lt=30", "lwm2m=1.1", "b=UQS", "sms=123", "Q", "x=y", "flag"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if p.endpoint != "a" || p.lifetime != 30*time.Second || p.version != "1.1" || p.binding != "UQS" || !p.queue ||
		p.sms != "123" || p.other["x"] != "y" || p.other["flag"] != "" {
		t.Fatalf("%+v", p)
	}
	if _, err := parseRegParams([]string{"lt=4294967296", "ep=a"}, true); err == nil {
		t.Fatal("lifetime over 32 bits accepted")
	}
	if _, err := parseRegParams([]string{"=x", "ep=a"}, true); err == nil {
		t.Fatal("empty name accepted")
	}
	if p, err := parseRegParams(nil, false); err != nil || p.hasLT {
		t.Fatalf("empty update: %+v %v", p, err)
	}
}

func TestPreferredFormat(t *testing.T) {
	f := func(v string, cts ...objects.Format) objects.Format {
		return (&Registration{Version: v, Formats: cts}).PreferredFormat()
	}
	tests := []struct {
		got, want objects.Format
	}{
		{f("1.0"), objects.FormatTLV},
		{f("1.0", objects.FormatSenMLCBOR), objects.FormatTLV},
		{f("1.1"), objects.FormatTLV},
		{f("1.1", objects.FormatSenMLJSON), objects.FormatSenMLJSON},
		{f("1.1", objects.FormatSenMLJSON, objects.FormatSenMLCBOR), objects.FormatSenMLCBOR},
		{f("1.2", objects.FormatLwM2MCBOR, objects.FormatTLV), objects.FormatTLV},
		{f("1.2", objects.FormatOldTLV), objects.FormatTLV},
		{f("1.2", objects.FormatLwM2MCBOR), objects.FormatTLV},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%d: %s, want %s", i, tt.got, tt.want)
		}
	}
}

func TestObjectVersions(t *testing.T) {
	objs := []linkformat.Object{{ID: 1}, {ID: 3}, {ID: 3303}, {ID: 3, Version: "1.0", HasVersion: true}}
	for _, tt := range []struct {
		lwm2m string
		id    uint16
		want  string
	}{
		{"1.0", 1, "1.0"}, {"1.1", 1, "1.1"}, {"1.2", 1, "1.2"}, {"1.1", 3303, "1.0"},
	} {
		if got := objectVersions(testModels, tt.lwm2m, objs[:3])[tt.id]; got != tt.want {
			t.Errorf("lwm2m %s object %d: %s, want %s", tt.lwm2m, tt.id, got, tt.want)
		}
	}
	if got := objectVersions(testModels, "1.2", objs[3:])[3]; got != "1.0" {
		t.Errorf("explicit ver: %s", got)
	}
}

func TestRegistrationIDs(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id, err := newRegistrationID()
		if err != nil || len(id) != 16 || seen[id] {
			t.Fatalf("%q %v", id, err)
		}
		seen[id] = true
	}
}

// Location-Path segments are the two options rd and {id}.
func TestLocationPathOptions(t *testing.T) {
	s := newServer(t, nil)
	p := newRawPeer(t, s)
	r := p.request(codes.POST, "/rd", []string{"ep=loc"}, 40, []byte("</3/0>"))
	var segs []string
	for _, o := range r.Options {
		if o.ID == message.LocationPath {
			segs = append(segs, string(o.Value))
		}
	}
	if len(segs) != 2 || segs[0] != "rd" || len(segs[1]) != 16 {
		t.Fatalf("Location-Path options %q", segs)
	}
}
