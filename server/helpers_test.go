package server

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/builtin"
	"github.com/lwm2md/lwm2md/server/internal/testdevice"
)

var testModels = builtin.Registry()

// logBuffer collects the server's log lines for a test; it stops taking
// lines when the test ends, so late goroutines cannot log into a finished
// test.
type logBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	closed bool
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.buf.Write(p)
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type testServer struct {
	*Server
	logs *logBuffer
}

// newServer starts a server on a free loopback port.
func newServer(t testing.TB, mut func(*Config)) *testServer {
	t.Helper()
	logs := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
		logs.mu.Lock()
		logs.closed = true
		logs.mu.Unlock()
	})
	cfg := Config{
		UDPAddr: "127.0.0.1:0",
		Models:  testModels,
		Logger:  slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		// Tests register many times from one socket; the flood test sets
		// the limit it checks.
		RegisterRate: -1,
	}
	if mut != nil {
		mut(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &testServer{Server: s, logs: logs}
}

// newDevice dials a test device to s (not registered yet).
func newDevice(t testing.TB, s *testServer, ep string, mut func(*testdevice.Config)) *testdevice.Device {
	t.Helper()
	return dialDevice(t, s.Addr().String(), ep, mut)
}

// newDeviceAt dials a test device to a server address.
func newDeviceAt(t testing.TB, addr, ep string) *testdevice.Device {
	t.Helper()
	return dialDevice(t, addr, ep, nil)
}

func dialDevice(t testing.TB, addr, ep string, mut func(*testdevice.Config)) *testdevice.Device {
	t.Helper()
	cfg := testdevice.Config{
		Endpoint: ep,
		Version:  "1.1",
		Lifetime: 60,
		Binding:  "U",
		Registry: testModels,
		Objects:  testdevice.Objects(),
	}
	if mut != nil {
		mut(&cfg)
	}
	d, err := testdevice.Dial(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// registerDevice dials and registers a device, failing the test unless
// the server answers 2.01.
func registerDevice(t testing.TB, s *testServer, ep string, mut func(*testdevice.Config)) *testdevice.Device {
	t.Helper()
	d := newDevice(t, s, ep, mut)
	code, err := d.Register(ctx(t))
	if err != nil || code != codes.Created {
		t.Fatalf("register %s: %v %v", ep, code, err)
	}
	return d
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

// waitEvent returns the next event of the kind, skipping others.
func waitEvent(t testing.TB, sub *Subscription, kind EventKind) Event {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e, ok := <-sub.C:
			if !ok {
				t.Fatalf("subscription closed waiting for %s", kind)
			}
			if e.Kind == kind {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s event", kind)
		}
	}
}

// noEvent checks that no event of the kind arrives within d.
func noEvent(t testing.TB, sub *Subscription, kind EventKind, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case e := <-sub.C:
			if e.Kind == kind {
				t.Fatalf("unexpected %s event: %+v", kind, e)
			}
		case <-timeout:
			return
		}
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func path(s string) objects.Path { return objects.MustParsePath(s) }

// rawPeer is a plain UDP socket speaking CoAP through go-coap's message
// codec only: for what a well-behaved client never sends.
type rawPeer struct {
	t    testing.TB
	conn *net.UDPConn
	mid  uint16
}

func newRawPeer(t testing.TB, s *testServer) *rawPeer {
	t.Helper()
	conn, err := net.DialUDP("udp", nil, s.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &rawPeer{t: t, conn: conn, mid: 100}
}

func (p *rawPeer) nextMID() int32 {
	p.mid++
	return int32(p.mid)
}

func (p *rawPeer) send(m message.Message) {
	p.t.Helper()
	size, err := coder.DefaultCoder.Size(m)
	if err != nil {
		p.t.Fatal(err)
	}
	b := make([]byte, size)
	if _, err := coder.DefaultCoder.Encode(m, b); err != nil {
		p.t.Fatal(err)
	}
	p.sendBytes(b)
}

func (p *rawPeer) sendBytes(b []byte) {
	p.t.Helper()
	if _, err := p.conn.Write(b); err != nil {
		p.t.Fatal(err)
	}
}

// recv reads one message, or returns false after d.
func (p *rawPeer) recv(d time.Duration) (message.Message, bool) {
	p.t.Helper()
	buf := make([]byte, 70000)
	_ = p.conn.SetReadDeadline(time.Now().Add(d))
	n, err := p.conn.Read(buf)
	if err != nil {
		return message.Message{}, false
	}
	m := message.Message{Options: make(message.Options, 0, 32)}
	if _, err := coder.DefaultCoder.Decode(buf[:n], &m); err != nil {
		p.t.Fatalf("undecodable datagram from the server: %v", err)
	}
	return m, true
}

// request sends a confirmable request and returns the piggybacked answer.
func (p *rawPeer) request(code codes.Code, uri string, query []string, cf int, payload []byte) message.Message {
	p.t.Helper()
	m := message.Message{Code: code, Type: message.Confirmable, MessageID: p.nextMID(), Token: message.Token{1, 2, 3, byte(p.mid)}}
	m.Options = pathOptions(uri, query, cf)
	m.Payload = payload
	p.send(m)
	for {
		r, ok := p.recv(3 * time.Second)
		if !ok {
			p.t.Fatalf("no answer to %s %s", code, uri)
		}
		if r.MessageID == m.MessageID && r.Type == message.Acknowledgement {
			return r
		}
	}
}

func pathOptions(uri string, query []string, cf int) message.Options {
	var opts message.Options
	for _, seg := range strings.Split(strings.Trim(uri, "/"), "/") {
		if seg != "" {
			opts = append(opts, message.Option{ID: message.URIPath, Value: []byte(seg)})
		}
	}
	if cf >= 0 {
		opts = append(opts, message.Option{ID: message.ContentFormat, Value: encodeUint(uint32(cf))})
	}
	for _, q := range query {
		opts = append(opts, message.Option{ID: message.URIQuery, Value: []byte(q)})
	}
	return sortOptions(opts)
}

func sortOptions(opts message.Options) message.Options {
	// CoAP options go in ID order; a stable sort keeps repeated options in
	// their order.
	for i := 1; i < len(opts); i++ {
		for j := i; j > 0 && opts[j-1].ID > opts[j].ID; j-- {
			opts[j-1], opts[j] = opts[j], opts[j-1]
		}
	}
	return opts
}

func encodeUint(v uint32) []byte {
	switch {
	case v == 0:
		return nil
	case v < 1<<8:
		return []byte{byte(v)}
	case v < 1<<16:
		return []byte{byte(v >> 8), byte(v)}
	}
	return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

func locationOf(m message.Message) string {
	var segs []string
	for _, o := range m.Options {
		if o.ID == message.LocationPath {
			segs = append(segs, string(o.Value))
		}
	}
	return "/" + strings.Join(segs, "/")
}

// serveOne reads requests until one arrives, answers it with code, format
// and payload (piggybacked), and returns the request.
func (p *rawPeer) serveOne(d time.Duration, code codes.Code, cf int, payload []byte) (message.Message, bool) {
	p.t.Helper()
	for {
		r, ok := p.recv(d)
		if !ok {
			return message.Message{}, false
		}
		if r.Code < codes.GET || r.Code > codes.DELETE {
			continue
		}
		resp := message.Message{Code: code, Type: message.Acknowledgement, MessageID: r.MessageID, Token: r.Token, Payload: payload}
		if cf >= 0 {
			resp.Options = message.Options{{ID: message.ContentFormat, Value: encodeUint(uint32(cf))}}
		}
		p.send(resp)
		return r, true
	}
}
