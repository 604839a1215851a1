package server

import (
	"context"
	"os/exec"
	"regexp"
	"testing"
	"time"
)

// coapClientDTLS finds a libcoap command-line client with DTLS (Debian:
// libcoap3-bin).
func coapClientDTLS(t *testing.T) string {
	for _, name := range []string{"coap-client-openssl", "coap-client-gnutls"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("libcoap's coap-client with DTLS is not installed: apt-get install libcoap3-bin")
	return ""
}

// libcoapTry runs coap-client and returns its output whatever its exit
// status: a failed handshake is an expected outcome here.
func libcoapTry(t *testing.T, bin string, args ...string) string {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(c, bin, append([]string{"-v", "7", "-B", "3"}, args...)...).CombinedOutput()
	return string(out)
}

// TestLibcoapDTLS drives a raw Register over DTLS PSK with libcoap (an
// independent DTLS stack): the right key registers (2.01), a wrong key
// does not get through the handshake, and an identity bound to another
// endpoint is refused 4.03.
func TestLibcoapDTLS(t *testing.T) {
	bin := coapClientDTLS(t)
	creds := newMemCredentials()
	creds.addPSK("libcoap-id", "libcoap-dtls", []byte("libcoap-secret-1"))
	s := newDTLSServer(t, creds, nil)
	sub := s.Subscribe(16)
	base := "coaps://" + s.DTLSAddr().String()
	register := func(ep, key string) string {
		return libcoapTry(t, bin, "-u", "libcoap-id", "-k", key, "-m", "post", "-t", "40", "-e", `</1/0>,</3/0>`,
			base+"/rd?ep="+ep+"&lt=60&lwm2m=1.1")
	}

	t.Run("right key", func(t *testing.T) {
		out := register("libcoap-dtls", "libcoap-secret-1")
		if !libcoapLocation.MatchString(out) {
			t.Fatalf("no 2.01 with Location-Path in:\n%s", out)
		}
		if e := waitEvent(t, sub, EventRegistered); e.Endpoint != "libcoap-dtls" {
			t.Fatalf("%+v", e)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		out := register("libcoap-wrong", "not-the-secret-1")
		if regexp.MustCompile(`c:2\.01`).MatchString(out) {
			t.Fatalf("registered with a wrong key:\n%s", out)
		}
		if _, err := s.Registration(ctx(t), "libcoap-wrong"); err == nil {
			t.Fatal("a registration exists")
		}
	})
	t.Run("spoofed endpoint", func(t *testing.T) {
		out := register("someone-else", "libcoap-secret-1")
		if !regexp.MustCompile(`c:4\.03`).MatchString(out) {
			t.Fatalf("want 4.03 in:\n%s", out)
		}
		if _, err := s.Registration(ctx(t), "someone-else"); err == nil {
			t.Fatal("a registration exists")
		}
	})
}
