package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/api"
	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/server"
)

// lab is an LwM2M server with the REST API on loopback and one device.
func lab(t *testing.T) (url string, dev *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	s, err := server.New(server.Config{UDPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	a, err := api.New(api.Config{Server: s})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	h := httptest.NewServer(a.Handler())
	t.Cleanup(h.Close)
	dev, err = client.New(client.Config{Endpoint: "ctl-dev/1", ServerURI: "coap://" + s.Addr().String(),
		LocalAddr: "127.0.0.1:0", Version: "1.1", Lifetime: time.Minute,
		Device: client.DeviceInfo{Manufacturer: "lwm2md-ctl-test"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	return h.URL, dev
}

func ctl(t *testing.T, url string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut syncBuf
	code := run(context.Background(), append([]string{"--url", url}, args...), func(string) string { return "" }, &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestCommands(t *testing.T) {
	url, _ := lab(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string // in stdout
		err  string // in stderr
	}{
		{"clients", []string{"clients"}, 0, "ctl-dev/1", "1 devices"},
		{"clients filtered", []string{"clients", "--prefix", "nope"}, 0, "ENDPOINT", "0 devices"},
		{"show", []string{"show", "ctl-dev/1"}, 0, `"registrationId"`, ""},
		{"read resource", []string{"read", "ctl-dev/1", "/3/0/0"}, 0, "/3/0/0  string  lwm2md-ctl-test", ""},
		{"read instance", []string{"read", "ctl-dev/1", "/3/0", "--format", "tlv"}, 0, "/3/0/0", ""},
		{"write", []string{"write", "ctl-dev/1", "/1/0/1", "120"}, 0, "", ""},
		{"read back", []string{"read", "ctl-dev/1", "/1/0/1"}, 0, "/1/0/1  integer  120", ""},
		{"write bad value", []string{"write", "ctl-dev/1", "/1/0/1", "soon"}, 1, "", "400"},
		{"exec on a readable resource", []string{"exec", "ctl-dev/1", "/3/0/0"}, 1, "", "405"},
		{"discover", []string{"discover", "ctl-dev/1", "/3/0"}, 0, "3/0", ""},
		{"unknown device", []string{"read", "nobody", "/3/0/0"}, 1, "", "404"},
		{"unknown command", []string{"frob"}, 2, "", "unknown command"},
		{"missing argument", []string{"read", "ctl-dev/1"}, 2, "", "want 2 arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := ctl(t, url, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errOut, tc.err) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
		})
	}
}

func TestObserve(t *testing.T) {
	url, dev := lab(t)
	done := make(chan struct{})
	var out, errOut syncBuf
	var code int
	go func() {
		defer close(done)
		code = run(context.Background(), []string{"--url", url, "observe", "ctl-dev/1", "/3/0/9", "-n", "1"}, func(string) string { return "" }, &out, &errOut)
	}()
	// Change the battery level until a notification arrives.
	deadline := time.Now().Add(10 * time.Second)
	for level := int64(50); ; level++ {
		select {
		case <-done:
			if code != 0 || !strings.Contains(out.String(), "/3/0/9  integer  5") {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out.String(), errOut.String())
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no notification printed:\n%s\n%s", out.String(), errOut.String())
		}
		if err := dev.Object(3).Set(objects.MustParsePath("/3/0/9"), objects.IntegerValue(level)); err != nil {
			t.Fatal(err)
		}
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
