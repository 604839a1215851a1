package server

import (
	"context"
	"errors"
	"os/exec"
	"regexp"
	"testing"
	"time"
)

// coapClient finds libcoap's command-line client (Debian: libcoap3-bin).
func coapClient(t *testing.T) string {
	for _, name := range []string{"coap-client-notls", "coap-client-openssl", "coap-client-gnutls", "coap-client"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("libcoap's coap-client is not installed: apt-get install libcoap3-bin")
	return ""
}

// libcoap runs coap-client with verbose logging and returns its output,
// which shows the answer's code and options.
func libcoap(t *testing.T, bin string, args ...string) string {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(c, bin, append([]string{"-v", "7", "-B", "5"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("coap-client %q: %v\n%s", args, err, out)
	}
	return string(out)
}

var libcoapLocation = regexp.MustCompile(`c:2\.01 .*Location-Path:rd, Location-Path:([a-z2-7]{16})`)

// TestLibcoapRegistration drives Register, Update and De-register with
// libcoap's coap-client, an independent CoAP implementation.
func TestLibcoapRegistration(t *testing.T) {
	bin := coapClient(t)
	s := newServer(t, nil)
	sub := s.Subscribe(16)
	base := "coap://" + s.Addr().String()

	out := libcoap(t, bin, "-m", "post", "-t", "40", "-e", `</>;ct=110,</1/0>,</3/0>,</3303/0>`,
		base+"/rd?ep=libcoap-dev&lt=45&lwm2m=1.1&b=U")
	m := libcoapLocation.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no 2.01 with Location-Path in:\n%s", out)
	}
	id := m[1]
	e := waitEvent(t, sub, EventRegistered)
	r := e.Registration
	if r.ID != id || r.Endpoint != "libcoap-dev" || r.Lifetime != 45*time.Second || len(r.Objects) != 3 || r.PreferredFormat() != 110 {
		t.Fatalf("%+v", r)
	}

	out = libcoap(t, bin, "-m", "post", base+"/rd/"+id+"?lt=90")
	if !regexp.MustCompile(`c:2\.04`).MatchString(out) {
		t.Fatalf("update:\n%s", out)
	}
	if e := waitEvent(t, sub, EventUpdated); e.Registration.Lifetime != 90*time.Second {
		t.Fatalf("%+v", e.Registration)
	}

	out = libcoap(t, bin, "-m", "delete", base+"/rd/"+id)
	if !regexp.MustCompile(`c:2\.02`).MatchString(out) {
		t.Fatalf("de-register:\n%s", out)
	}
	waitEvent(t, sub, EventDeregistered)
	if _, err := s.Registration(ctx(t), "libcoap-dev"); !errors.Is(err, ErrNotRegistered) {
		t.Fatal(err)
	}

	// The errors, as libcoap sees them.
	for _, tt := range []struct {
		args []string
		code string
	}{
		{[]string{"-m", "delete", base + "/rd/" + id}, "4.04"},
		{[]string{"-m", "post", "-t", "40", "-e", "</3/0>", base + "/rd?ep=old&lwm2m=0.9"}, "4.12"},
		{[]string{"-m", "post", "-t", "40", "-e", "</3/0", base + "/rd?ep=broken"}, "4.00"},
		{[]string{"-m", "get", base + "/rd"}, "4.05"},
	} {
		if out := libcoap(t, bin, tt.args...); !regexp.MustCompile(`c:` + regexp.QuoteMeta(tt.code)).MatchString(out) {
			t.Errorf("%q: want %s in:\n%s", tt.args, tt.code, out)
		}
	}
}
