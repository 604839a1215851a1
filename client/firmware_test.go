package client

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/server"
)

// fwFixture is an lwm2md server with one client hosting a Firmware
// object.
type fwFixture struct {
	*fixture
	fw *Firmware
}

func newFWFixture(t *testing.T, ver string, cfg FirmwareConfig) *fwFixture {
	t.Helper()
	fw := NewFirmware(cfg)
	f := newFixture(t, ver, func(c *Config) { c.Objects = append(c.Objects, fw.Object) })
	return &fwFixture{fixture: f, fw: fw}
}

// firmwarePackage is n bytes that are not all alike, so that a block out
// of place shows.
func firmwarePackage(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// readInt reads a single Integer resource through the server.
func (f *fwFixture) readInt(t *testing.T, p string) int64 {
	t.Helper()
	n, err := f.s.Read(ctx(t), f.ep, path(p))
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	r, ok := n.(*objects.Resource)
	if !ok {
		t.Fatalf("read %s: got %T", p, n)
	}
	return r.Value.Int()
}

// waitFW polls State and Update Result through the server.
func (f *fwFixture) waitFW(t *testing.T, st FirmwareState, res FirmwareResult) {
	t.Helper()
	var gotSt, gotRes int64
	deadline := time.Now().Add(10 * time.Second)
	for {
		gotSt, gotRes = f.readInt(t, "/5/0/3"), f.readInt(t, "/5/0/5")
		if gotSt == int64(st) && gotRes == int64(res) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("firmware state %d result %d, want state %d result %d", gotSt, gotRes, st, res)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// observed collects the values a server observation of one Integer
// resource reports.
type observed struct {
	mu   sync.Mutex
	vals []int64
}

func observeInt(t *testing.T, f *fwFixture, p string) *observed {
	t.Helper()
	obs, n, err := f.s.Observe(ctx(t), f.ep, path(p))
	if err != nil {
		t.Fatalf("observe %s: %v", p, err)
	}
	o := &observed{vals: []int64{n.(*objects.Resource).Value.Int()}}
	sub := f.s.Subscribe(1024)
	done := make(chan struct{})
	t.Cleanup(func() {
		sub.Close()
		<-done
	})
	go func() {
		defer close(done)
		for e := range sub.C {
			if e.Kind != server.EventNotification || e.Token != obs.Token {
				continue
			}
			if r, ok := e.Node.(*objects.Resource); ok {
				o.mu.Lock()
				o.vals = append(o.vals, r.Value.Int())
				o.mu.Unlock()
			}
		}
	}()
	return o
}

// waitSeq waits until the observed values hold want in order (other
// values may come between).
func (o *observed) waitSeq(t *testing.T, what string, want ...int64) {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("%s to go through %v", what, want), func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		i := 0
		for _, v := range o.vals {
			if i < len(want) && v == want[i] {
				i++
			}
		}
		return i == len(want)
	})
}

// TestFirmwarePush writes a package larger than one block (Block1) to
// Package, executes Update and follows State and Update Result by
// Observe, as a server drives a push update (Core 1.1 E.6).
func TestFirmwarePush(t *testing.T) {
	for _, ver := range []string{"1.0", "1.1", "1.2"} {
		t.Run(ver, func(t *testing.T) {
			var mu sync.Mutex
			var applied []byte
			f := newFWFixture(t, ver, FirmwareConfig{
				UpdateTime: 100 * time.Millisecond,
				Identify:   func(pkg []byte) (string, string) { return "app", fmt.Sprintf("2.0.%d", len(pkg)) },
				Apply: func(c *Client, pkg []byte) error {
					mu.Lock()
					defer mu.Unlock()
					applied = bytes.Clone(pkg)
					return nil
				},
			})
			state := observeInt(t, f, "/5/0/3")
			result := observeInt(t, f, "/5/0/5")
			pkg := firmwarePackage(5000) // five blocks of 1024
			if err := f.s.Write(ctx(t), f.ep, path("/5/0/0"), &objects.Resource{ID: 0, Value: objects.OpaqueValue(pkg)}, true, server.WithFormat(objects.FormatOpaque)); err != nil {
				t.Fatalf("write package: %v", err)
			}
			state.waitSeq(t, "state", 0, 2)
			if got := f.fw.Package(); !bytes.Equal(got, pkg) {
				t.Fatalf("package: %d bytes, want the %d written", len(got), len(pkg))
			}
			if err := f.s.Execute(ctx(t), f.ep, path("/5/0/2"), ""); err != nil {
				t.Fatalf("execute update: %v", err)
			}
			state.waitSeq(t, "state", 0, 2, 3, 0)
			result.waitSeq(t, "result", 0, 1)
			mu.Lock()
			ok := bytes.Equal(applied, pkg)
			mu.Unlock()
			if !ok {
				t.Fatal("Apply did not get the package written")
			}
			n, err := f.s.Read(ctx(t), f.ep, path("/3/0/3"))
			if err != nil {
				t.Fatal(err)
			}
			if got := n.(*objects.Resource).Value.Str(); got != "2.0.5000" {
				t.Fatalf("Device Firmware Version %q, want 2.0.5000", got)
			}
			if got := f.readStr(t, "/5/0/6"); got != "app" {
				t.Fatalf("PkgName %q", got)
			}
			// The package is write-only: a read is refused.
			if _, err := f.s.Read(ctx(t), f.ep, path("/5/0/0")); !isCode(err, codes.MethodNotAllowed) {
				t.Fatalf("read of Package: %v, want 4.05", err)
			}
		})
	}
}

func (f *fwFixture) readStr(t *testing.T, p string) string {
	t.Helper()
	n, err := f.s.Read(ctx(t), f.ep, path(p))
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return n.(*objects.Resource).Value.Str()
}

func isCode(err error, c codes.Code) bool {
	var ce *server.CoAPError
	return errors.As(err, &ce) && codes.Code(ce.Code) == c
}

// writeURI writes Package URI.
func (f *fwFixture) writeURI(t *testing.T, uri string) error {
	t.Helper()
	return f.s.Write(ctx(t), f.ep, path("/5/0/1"), &objects.Resource{ID: 1, Value: objects.StringValue(uri)}, true)
}

// TestFirmwarePullHTTP downloads the package from an HTTP server.
func TestFirmwarePullHTTP(t *testing.T) {
	pkg := firmwarePackage(200_000)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/fw.bin" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(pkg)
	}))
	t.Cleanup(hs.Close)
	f := newFWFixture(t, "1.1", FirmwareConfig{})
	state := observeInt(t, f, "/5/0/3")
	if err := f.writeURI(t, hs.URL+"/fw.bin"); err != nil {
		t.Fatal(err)
	}
	state.waitSeq(t, "state", 0, 1, 2)
	f.waitFW(t, FirmwareDownloaded, ResultInitial)
	if !bytes.Equal(f.fw.Package(), pkg) {
		t.Fatal("downloaded package differs")
	}
	if got := f.readStr(t, "/5/0/1"); got != hs.URL+"/fw.bin" {
		t.Fatalf("Package URI reads %q", got)
	}
	if err := f.s.Execute(ctx(t), f.ep, path("/5/0/2"), ""); err != nil {
		t.Fatal(err)
	}
	f.waitFW(t, FirmwareIdle, ResultSuccess)
}

// TestFirmwarePullHTTPS downloads over HTTPS with the test server's
// certificate trusted through FirmwareConfig.HTTPClient.
func TestFirmwarePullHTTPS(t *testing.T) {
	pkg := firmwarePackage(3000)
	hs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(pkg) }))
	t.Cleanup(hs.Close)
	f := newFWFixture(t, "1.2", FirmwareConfig{HTTPClient: hs.Client()})
	if err := f.writeURI(t, hs.URL+"/fw"); err != nil {
		t.Fatal(err)
	}
	f.waitFW(t, FirmwareDownloaded, ResultInitial)
	if !bytes.Equal(f.fw.Package(), pkg) {
		t.Fatal("downloaded package differs")
	}
}

// coapFileServer serves one body at /fw over CoAP on loopback; go-coap
// answers with Block2 when it is larger than a block.
func coapFileServer(t *testing.T, body []byte) string {
	t.Helper()
	l, err := coapNet.NewListenUDP("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := mux.NewRouter()
	_ = r.Handle("/fw", mux.HandlerFunc(func(w mux.ResponseWriter, _ *mux.Message) {
		_ = w.SetResponse(codes.Content, message.AppOctets, bytes.NewReader(body))
	}))
	srv := udp.NewServer(options.WithMux(r), options.WithMaxMessageSize(1<<20), options.WithErrors(func(error) {}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return l.LocalAddr().String()
}

// TestFirmwarePullCoAP downloads the package with Block2 from a CoAP URI.
func TestFirmwarePullCoAP(t *testing.T) {
	pkg := firmwarePackage(10_000)
	addr := coapFileServer(t, pkg)
	f := newFWFixture(t, "1.1", FirmwareConfig{})
	if err := f.writeURI(t, "coap://"+addr+"/fw"); err != nil {
		t.Fatal(err)
	}
	f.waitFW(t, FirmwareDownloaded, ResultInitial)
	if !bytes.Equal(f.fw.Package(), pkg) {
		t.Fatalf("downloaded %d bytes, want %d", len(f.fw.Package()), len(pkg))
	}
	// A 4.04 from the CoAP server is an invalid URI.
	if err := f.writeURI(t, ""); err != nil {
		t.Fatal(err)
	}
	f.waitFW(t, FirmwareIdle, ResultInitial)
	if err := f.writeURI(t, "coap://"+addr+"/nothing"); err != nil {
		t.Fatal(err)
	}
	f.waitFW(t, FirmwareIdle, ResultInvalidURI)
}

// TestFirmwareFailures drives the failure paths: each ends in the state
// and Update Result of Core 1.1 E.6.
func TestFirmwareFailures(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(firmwarePackage(4096))
	}))
	t.Cleanup(hs.Close)
	// A port nobody listens on: the connection is refused.
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	badSig := errors.New("signature does not match")
	tests := []struct {
		name   string
		cfg    FirmwareConfig
		uri    string // pull; empty: push 4096 bytes
		update bool   // execute Update after the download
		state  FirmwareState
		result FirmwareResult
	}{
		{name: "malformed URI", uri: "::not a uri", state: FirmwareIdle, result: ResultInvalidURI},
		{name: "relative URI", uri: "/fw.bin", state: FirmwareIdle, result: ResultInvalidURI},
		{name: "HTTP 404", uri: hs.URL + "/missing", state: FirmwareIdle, result: ResultInvalidURI},
		{name: "unsupported scheme", uri: "ftp://127.0.0.1/fw.bin", state: FirmwareIdle, result: ResultUnsupportedProto},
		{name: "CoAPS not supported", uri: "coaps://127.0.0.1:1/fw", state: FirmwareIdle, result: ResultUnsupportedProto},
		{name: "HTTP not announced", cfg: FirmwareConfig{Protocols: []int64{ProtocolCoAP}}, uri: hs.URL + "/fw", state: FirmwareIdle, result: ResultUnsupportedProto},
		{name: "connection refused", uri: closedURL + "/fw", state: FirmwareIdle, result: ResultConnectionLost},
		{name: "too big pull", cfg: FirmwareConfig{MaxSize: 1000}, uri: hs.URL + "/fw", state: FirmwareIdle, result: ResultNoFlash},
		{name: "too big push", cfg: FirmwareConfig{MaxSize: 1000}, state: FirmwareIdle, result: ResultNoFlash},
		{name: "verify fails pull", cfg: FirmwareConfig{Verify: func([]byte) error { return badSig }}, uri: hs.URL + "/fw", state: FirmwareIdle, result: ResultIntegrity},
		{name: "verify fails push", cfg: FirmwareConfig{Verify: func([]byte) error { return badSig }}, state: FirmwareIdle, result: ResultIntegrity},
		{name: "verify chooses unsupported package", cfg: FirmwareConfig{Verify: func([]byte) error {
			return &FirmwareError{Result: ResultUnsupportedPackage, Msg: "not an image"}
		}}, state: FirmwareIdle, result: ResultUnsupportedPackage},
		{name: "FailWith integrity", cfg: FirmwareConfig{FailWith: ResultIntegrity}, state: FirmwareIdle, result: ResultIntegrity},
		{name: "FailWith update failed", cfg: FirmwareConfig{FailWith: ResultUpdateFailed}, update: true, state: FirmwareDownloaded, result: ResultUpdateFailed},
		{name: "Apply fails", cfg: FirmwareConfig{Apply: func(*Client, []byte) error { return errors.New("flash write failed") }}, update: true, state: FirmwareDownloaded, result: ResultUpdateFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFWFixture(t, "1.1", tc.cfg)
			var err error
			if tc.uri != "" {
				err = f.writeURI(t, tc.uri)
			} else {
				err = f.s.Write(ctx(t), f.ep, path("/5/0/0"), &objects.Resource{ID: 0, Value: objects.OpaqueValue(firmwarePackage(4096))}, true, server.WithFormat(objects.FormatOpaque))
			}
			if err != nil {
				t.Fatalf("write: %v (errors are reported by Update Result, not by the Write)", err)
			}
			if tc.update {
				f.waitFW(t, FirmwareDownloaded, ResultInitial)
				if err := f.s.Execute(ctx(t), f.ep, path("/5/0/2"), ""); err != nil {
					t.Fatal(err)
				}
			}
			f.waitFW(t, tc.state, tc.result)
		})
	}
}

// TestFirmwareRules checks the requests the state machine refuses, and
// the resets.
func TestFirmwareRules(t *testing.T) {
	pkg := firmwarePackage(2000)
	push := func(f *fwFixture, p []byte) error {
		return f.s.Write(ctx(t), f.ep, path("/5/0/0"), &objects.Resource{ID: 0, Value: objects.OpaqueValue(p)}, true, server.WithFormat(objects.FormatOpaque))
	}
	t.Run("update in idle", func(t *testing.T) {
		f := newFWFixture(t, "1.1", FirmwareConfig{})
		if err := f.s.Execute(ctx(t), f.ep, path("/5/0/2"), ""); !isCode(err, codes.MethodNotAllowed) {
			t.Fatalf("Update in Idle: %v, want 4.05", err)
		}
	})
	t.Run("push refused by pull-only", func(t *testing.T) {
		f := newFWFixture(t, "1.1", FirmwareConfig{Delivery: DeliveryPull})
		if got := f.readInt(t, "/5/0/9"); got != 0 {
			t.Fatalf("Delivery Method %d, want 0", got)
		}
		if err := push(f, pkg); !isCode(err, codes.MethodNotAllowed) {
			t.Fatalf("push: %v, want 4.05", err)
		}
	})
	t.Run("pull refused by push-only", func(t *testing.T) {
		f := newFWFixture(t, "1.1", FirmwareConfig{Delivery: DeliveryPush})
		if err := f.writeURI(t, "http://127.0.0.1:1/fw"); !isCode(err, codes.MethodNotAllowed) {
			t.Fatalf("pull: %v, want 4.05", err)
		}
	})
	t.Run("second delivery refused, empty write resets", func(t *testing.T) {
		f := newFWFixture(t, "1.0", FirmwareConfig{})
		if err := push(f, pkg); err != nil {
			t.Fatal(err)
		}
		f.waitFW(t, FirmwareDownloaded, ResultInitial)
		if err := push(f, pkg); !isCode(err, codes.BadRequest) {
			t.Fatalf("second push: %v, want 4.00", err)
		}
		if err := push(f, []byte{0}); err != nil { // LwM2M 1.0: a NULL byte resets
			t.Fatal(err)
		}
		f.waitFW(t, FirmwareIdle, ResultInitial)
		if f.fw.Package() != nil || f.readStr(t, "/5/0/7") != "" {
			t.Fatal("reset left the package or its version")
		}
	})
	t.Run("cancel", func(t *testing.T) {
		f := newFWFixture(t, "1.1", FirmwareConfig{})
		if err := f.s.Execute(ctx(t), f.ep, path("/5/0/10"), ""); !isCode(err, codes.MethodNotAllowed) {
			t.Fatalf("Cancel in Idle: %v, want 4.05", err)
		}
		if err := push(f, pkg); err != nil {
			t.Fatal(err)
		}
		f.waitFW(t, FirmwareDownloaded, ResultInitial)
		if err := f.s.Execute(ctx(t), f.ep, path("/5/0/10"), ""); err != nil {
			t.Fatal(err)
		}
		f.waitFW(t, FirmwareIdle, ResultCancelled)
	})
	t.Run("automatic upgrade at download", func(t *testing.T) {
		f := newFWFixture(t, "1.2", FirmwareConfig{})
		if err := f.s.Write(ctx(t), f.ep, path("/5/0/14"), &objects.Resource{ID: 14, Value: objects.BooleanValue(true)}, true); err != nil {
			t.Fatal(err)
		}
		if err := push(f, pkg); err != nil {
			t.Fatal(err)
		}
		f.waitFW(t, FirmwareIdle, ResultSuccess)
	})
	t.Run("protocol support", func(t *testing.T) {
		f := newFWFixture(t, "1.1", FirmwareConfig{})
		n, err := f.s.Read(ctx(t), f.ep, path("/5/0/8"))
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, ri := range n.(*objects.Resource).Instances {
			got = append(got, ri.Value.Int())
		}
		if !slices.Equal(got, []int64{0, 2, 3}) {
			t.Fatalf("Protocol Support %v, want [0 2 3]", got)
		}
	})
	t.Run("1.0 model has no cancel", func(t *testing.T) {
		f := newFWFixture(t, "1.0", FirmwareConfig{})
		links, err := f.s.Discover(ctx(t), f.ep, path("/5/0"))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links {
			if strings.HasPrefix(l.Path.String(), "/5/0/10") {
				t.Fatalf("LwM2M 1.0 client announces %s", l.Path)
			}
		}
	})
}
