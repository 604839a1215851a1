package registry_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/registry"
)

func TestStatusNames(t *testing.T) {
	for s := registry.StatusPending; s <= registry.StatusCancelled; s++ {
		back, err := registry.ParseRequestStatus(s.String())
		if err != nil || back != s {
			t.Fatalf("%v: %v", s, err)
		}
	}
	for s := registry.JobPending; s <= registry.JobCancelled; s++ {
		if back, err := registry.ParseJobStatus(s.String()); err != nil || back != s {
			t.Fatalf("%v: %v", s, err)
		}
	}
	for s := registry.TargetPending; s <= registry.TargetCancelled; s++ {
		if back, err := registry.ParseTargetStatus(s.String()); err != nil || back != s {
			t.Fatalf("%v: %v", s, err)
		}
	}
	if _, err := registry.ParseRequestStatus("lost"); !errors.Is(err, registry.ErrInvalid) {
		t.Fatal(err)
	}
	if !registry.StatusSent.Open() || registry.StatusDone.Open() {
		t.Fatal("Open")
	}
}

func TestValidate(t *testing.T) {
	ok := &registry.Registration{ID: "x", Endpoint: "urn:imei:490154203237518"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]*registry.Registration{
		"nil":               nil,
		"negative lifetime": {ID: "x", Endpoint: "e", Lifetime: -time.Second},
		"NUL in binding":    {ID: "x", Endpoint: "e", Binding: "U\x00"},
		"bad object ver":    {ID: "x", Endpoint: "e", ObjectVersions: map[uint16]string{3: "\xff"}},
	}
	for name, r := range bad {
		if err := r.Validate(); !errors.Is(err, registry.ErrInvalid) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	fp := strings.Repeat("AB:", 31) + "AB"
	c := &registry.Credential{Endpoint: "e", Certificates: []registry.CertBinding{{Fingerprint: fp}}}
	if err := c.Validate(); err != nil || c.Certificates[0].Fingerprint != strings.Repeat("ab", 32) {
		t.Fatalf("fingerprint not normalized: %v %q", err, c.Certificates[0].Fingerprint)
	}
	c.Certificates = append(c.Certificates, registry.CertBinding{Fingerprint: strings.Repeat("ab", 32)})
	if err := c.Validate(); !errors.Is(err, registry.ErrInvalid) {
		t.Fatalf("same certificate twice: %v", err)
	}
	long := &registry.Credential{Endpoint: "e", PSKIdentity: "i", PSKKey: make([]byte, 65)}
	if err := long.Validate(); !errors.Is(err, registry.ErrInvalid) || strings.Contains(err.Error(), "[0 0") {
		t.Fatalf("long key: %v", err)
	}
	if err := registry.CheckTag("k", strings.Repeat("v", registry.MaxTagValueLen+1)); !errors.Is(err, registry.ErrInvalid) {
		t.Fatal(err)
	}
}

func TestTime(t *testing.T) {
	in := time.Date(2025, 1, 2, 3, 4, 5, 678901234, time.FixedZone("CET", 3600))
	got := registry.Time(in)
	if got.Location() != time.UTC || got.Nanosecond() != 678901000 || !got.Equal(in.Truncate(time.Microsecond)) {
		t.Fatalf("Time: %v", got)
	}
	if !registry.Time(time.Time{}).IsZero() {
		t.Fatal("zero time")
	}
}

func TestSecretFormats(t *testing.T) {
	s := registry.Secret("hunter2hunter2")
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%x %X %q %s %v %#v %d", s, s, s, s, s, s, s)} {
		if strings.Contains(out, "hunter") || strings.Contains(out, "68756e746572") {
			t.Fatalf("secret printed: %s", out)
		}
	}
}
