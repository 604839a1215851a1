package server

import (
	"bytes"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/lwm2md/lwm2md/objects"
)

func TestUnknownPathsAndMethods(t *testing.T) {
	s := newServer(t, nil)
	p := newRawPeer(t, s)
	reg := p.request(codes.POST, "/rd", []string{"ep=paths"}, 40, []byte("</3/0>"))
	loc := locationOf(reg)
	tests := []struct {
		code codes.Code
		uri  string
		want codes.Code
	}{
		{codes.GET, "/", codes.NotFound},
		{codes.GET, "/foo", codes.NotFound},
		{codes.POST, "/rd/x/y", codes.NotFound},
		{codes.POST, "/bs", codes.NotFound},
		{codes.GET, "/rd", codes.MethodNotAllowed},
		{codes.PUT, "/rd", codes.MethodNotAllowed},
		{codes.DELETE, "/rd", codes.MethodNotAllowed},
		{codes.GET, loc, codes.MethodNotAllowed},
		{codes.PUT, loc, codes.MethodNotAllowed},
		{codes.POST, "/rd/unknown", codes.NotFound},
		{codes.DELETE, "/rd/unknown", codes.NotFound},
		{codes.PUT, "/dp", codes.MethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.code.String()+tt.uri, func(t *testing.T) {
			if r := p.request(tt.code, tt.uri, nil, -1, nil); r.Code != tt.want {
				t.Fatalf("%v, want %v", r.Code, tt.want)
			}
		})
	}
	// The registration survived all of it.
	if r := p.request(codes.POST, loc, nil, -1, nil); r.Code != codes.Changed {
		t.Fatalf("update: %v", r.Code)
	}
}

func TestMalformedDatagrams(t *testing.T) {
	s := newServer(t, nil)
	p := newRawPeer(t, s)
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := [][]byte{
		{},
		{0x40},                   // truncated header
		{0x40, 0x01, 0x00},       // truncated header
		{0x48, 0x01, 0x00, 0x01}, // token length 8, no token
		{0x4f, 0x01, 0x00, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, // token length 15 (reserved)
		{0x80, 0x01, 0x00, 0x01},                             // version 2
		{0x40, 0x01, 0x00, 0x01, 0xff},                       // payload marker, no payload
		{0x40, 0x01, 0x00, 0x01, 0xf0},                       // option delta 15 (reserved)
		{0x40, 0x01, 0x00, 0x01, 0xbd, 0xff, 'r', 'd'},       // option length beyond the datagram
		{0x40, 0x02, 0x00, 0x01, 0xb2, 'r', 'd', 0x4d, 0xff}, // query length beyond the datagram
	}
	for i := 0; i < 200; i++ {
		b := make([]byte, 1+rng.IntN(64))
		for j := range b {
			b[j] = byte(rng.UintN(256))
		}
		garbage = append(garbage, b)
	}
	for _, g := range garbage {
		p.sendBytes(g)
	}
	// The server still answers, on the same peer address and a new one.
	if r := p.request(codes.POST, "/rd", []string{"ep=after-garbage"}, 40, []byte("</3/0>")); r.Code != codes.Created {
		t.Fatalf("register after garbage: %v", r.Code)
	}
	d := registerDevice(t, s, "dev-after-garbage", nil)
	if st := s.Stats(); st.TransportErrors == 0 {
		t.Fatalf("no transport error counted: %+v", st)
	}
	// Garbage from a registered device's own socket makes go-coap drop
	// its association; the next request opens a new one.
	if _, err := d.NetConn().Write([]byte{0x40, 0x01}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := s.Read(ctx(t), "dev-after-garbage", path("/3/0/0")); err != nil {
		t.Fatalf("read after garbage from the device: %v", err)
	}
}

func TestOversizedDatagram(t *testing.T) {
	s := newServer(t, func(c *Config) { c.MaxMessageSize = 2048 })
	p := newRawPeer(t, s)
	big := bytes.Repeat([]byte("</3303/0>,"), 500)
	p.send(message.Message{Code: codes.POST, Type: message.Confirmable, MessageID: p.nextMID(), Token: message.Token{1},
		Options: pathOptions("/rd", []string{"ep=big"}, 40), Payload: big[:len(big)-1]})
	r, ok := p.recv(time.Second)
	if !ok || r.Code != codes.RequestEntityTooLarge {
		t.Fatalf("oversized Register answered %v %v", ok, r.Code)
	}
	if size, err := r.Options.GetUint32(message.Size1); err != nil || size != 2048 {
		t.Fatalf("Size1 %d %v", size, err)
	}
	if st := s.Stats(); st.Registrations != 0 || st.Oversized != 1 {
		t.Fatalf("%+v", st)
	}
	// Exactly at the limit is accepted: 2048 bytes on the wire.
	m := message.Message{Code: codes.POST, Type: message.Confirmable, MessageID: p.nextMID(), Token: message.Token{2},
		Options: pathOptions("/rd", []string{"ep=edge"}, 40)}
	head, _ := coderSize(m)
	m.Payload = append(bytes.Repeat([]byte(" "), 2048-head-1-len("</3/0>")), "</3/0>"...)
	if size, _ := coderSize(m); size != 2048 {
		t.Fatalf("test message of %d bytes", size)
	}
	p.send(m)
	if r := p.answerTo(m); r.Code != codes.Created {
		t.Fatalf("Register of exactly MaxMessageSize: %v %q", r.Code, r.Payload)
	}
	m.MessageID = p.nextMID()
	m.Payload = append(m.Payload, ' ')
	p.send(m)
	if r := p.answerTo(m); r.Code != codes.RequestEntityTooLarge {
		t.Fatalf("one byte over: %v", r.Code)
	}
	if r := p.request(codes.POST, "/rd", []string{"ep=small"}, 40, []byte("</3/0>")); r.Code != codes.Created {
		t.Fatalf("register after the oversized one: %v", r.Code)
	}
}

func TestRegisterFlood(t *testing.T) {
	s := newServer(t, func(c *Config) { c.RegisterRate, c.RegisterBurst = 2, 5 })
	flood := newRawPeer(t, s)
	const n = 500
	start := time.Now()
	for i := 0; i < n; i++ {
		flood.send(message.Message{Code: codes.POST, Type: message.Confirmable, MessageID: flood.nextMID(), Token: message.Token{byte(i), byte(i >> 8)},
			Options: pathOptions("/rd", []string{"ep=flood-" + strconv.Itoa(i)}, 40), Payload: []byte("</3/0>")})
	}
	// Another device registers and is managed while the flood goes on.
	registerDevice(t, s, "dev-calm", nil)
	if _, err := s.Read(ctx(t), "dev-calm", path("/3/0/0")); err != nil {
		t.Fatal(err)
	}
	answered := 0
	for {
		if _, ok := flood.recv(300 * time.Millisecond); !ok {
			break
		}
		answered++
	}
	elapsed := time.Since(start).Seconds()
	if max := 5 + int(2*elapsed) + 1; answered > max {
		t.Fatalf("%d Registers of the flood answered in %.1fs, limit allows %d", answered, elapsed, max)
	}
	// The kernel drops part of the burst before the server reads it.
	st := s.Stats()
	if st.RequestsDropped == 0 || st.RequestsDropped > uint64(n-answered) || answered < 5 {
		t.Fatalf("answered %d, %+v", answered, st)
	}
	t.Logf("flood of %d Registers: %d answered, %d dropped", n, answered, st.RequestsDropped)
}

func TestAssociationCap(t *testing.T) {
	s := newServer(t, func(c *Config) {
		c.MaxAssociations = 3
		c.IdleTimeout = 300 * time.Millisecond
	})
	var peers []*rawPeer
	for i := 0; i < 3; i++ {
		p := newRawPeer(t, s)
		if r := p.request(codes.GET, "/x", nil, -1, nil); r.Code != codes.NotFound {
			t.Fatal(r.Code)
		}
		peers = append(peers, p)
	}
	extra := newRawPeer(t, s)
	extra.send(message.Message{Code: codes.GET, Type: message.Confirmable, MessageID: extra.nextMID(), Token: message.Token{1}, Options: pathOptions("/x", nil, -1)})
	if r, ok := extra.recv(300 * time.Millisecond); ok {
		t.Fatalf("fourth peer answered over the cap: %v", r.Code)
	}
	if st := s.Stats(); st.AssociationsRefused == 0 || st.Associations > 3 {
		t.Fatalf("%+v", st)
	}
	if !strings.Contains(s.logs.String(), "association cap reached") {
		t.Fatal("no log line for the cap")
	}
	// Idle associations close, and the extra peer gets in.
	eventually(t, 5*time.Second, "idle associations to close", func() bool { return s.Stats().Associations == 0 })
	if r := extra.request(codes.GET, "/x", nil, -1, nil); r.Code != codes.NotFound {
		t.Fatal(r.Code)
	}
	_ = peers
}

// A registered device's association lives as long as its registration,
// not go-coap's 16 s default nor IdleTimeout; an unregistered peer's
// closes after IdleTimeout.
func TestAssociationFollowsLifetime(t *testing.T) {
	s := newServer(t, func(c *Config) { c.IdleTimeout = 200 * time.Millisecond })
	d := registerDevice(t, s, "dev-idle", nil)
	p := newRawPeer(t, s)
	p.request(codes.GET, "/x", nil, -1, nil)
	if st := s.Stats(); st.Associations != 2 {
		t.Fatalf("%+v", st)
	}
	eventually(t, 5*time.Second, "the unregistered peer's association to close", func() bool { return s.Stats().Associations == 1 })
	time.Sleep(1200 * time.Millisecond) // several idle checks later
	if st := s.Stats(); st.Associations != 1 {
		t.Fatalf("the registered device's association closed: %+v", st)
	}
	if _, err := s.Read(ctx(t), "dev-idle", path("/3/0/0"), WithFormat(objects.FormatText)); err != nil {
		t.Fatal(err)
	}
	// After De-register, IdleTimeout applies again.
	if code, _ := d.Deregister(ctx(t)); code != codes.Deleted {
		t.Fatal(code)
	}
	eventually(t, 5*time.Second, "the de-registered device's association to close", func() bool { return s.Stats().Associations == 0 })
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{},
		{UDPAddr: "nohostport"},
		{UDPAddr: "127.0.0.1:0", Versions: []string{"x"}},
		{UDPAddr: "127.0.0.1:0", LifetimeGrace: -1},
		{UDPAddr: "127.0.0.1:0", MaxMessageSize: 100},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	s, err := New(Config{UDPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.MaxAssociations != DefaultMaxAssociations || s.cfg.RequestTimeout != DefaultRequestTimeout || s.cfg.Store == nil {
		t.Fatalf("%+v", s.cfg)
	}
	if err := s.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx(t)); err == nil {
		t.Fatal("second Start accepted")
	}
	_ = s.Close()
	// A taken address fails Start.
	s1 := newServer(t, nil)
	s2, _ := New(Config{UDPAddr: s1.Addr().String()})
	if err := s2.Start(ctx(t)); err == nil {
		_ = s2.Close()
		t.Fatal("bound a taken port")
	}
}

func coderSize(m message.Message) (int, error) { return coder.DefaultCoder.Size(m) }

// Requests of any kind from an unregistered address share the Register
// bucket; a registered device's requests are not limited.
func TestRateLimitUnregisteredPeers(t *testing.T) {
	s := newServer(t, func(c *Config) { c.RegisterRate, c.RegisterBurst = 1, 3 })
	burst := func(p *rawPeer, n int) int {
		for i := 0; i < n; i++ {
			p.send(message.Message{Code: codes.GET, Type: message.Confirmable, MessageID: p.nextMID(), Token: message.Token{byte(i)},
				Options: pathOptions("/x", nil, -1)})
		}
		answered := 0
		for {
			if _, ok := p.recv(200 * time.Millisecond); !ok {
				return answered
			}
			answered++
		}
	}
	stranger := newRawPeer(t, s)
	if n := burst(stranger, 20); n < 3 || n > 4 {
		t.Fatalf("unregistered peer: %d of 20 answered", n)
	}
	known := newRawPeer(t, s)
	if r := known.request(codes.POST, "/rd", []string{"ep=known"}, 40, []byte("</3/0>")); r.Code != codes.Created {
		t.Fatal(r.Code)
	}
	if n := burst(known, 20); n != 20 {
		t.Fatalf("registered peer: %d of 20 answered", n)
	}
}

// On a wildcard address go-coap keys associations by the concrete local
// address of each datagram; requests, notifications and a restart's new
// association must still meet the device.
func TestWildcardListener(t *testing.T) {
	store := NewMemoryStore()
	s := newServer(t, func(c *Config) { c.UDPAddr, c.Store = ":0", store })
	port := s.Addr().(*net.UDPAddr).Port
	d := newDeviceAt(t, "127.0.0.1:"+strconv.Itoa(port), "dev-wild")
	if code, err := d.Register(ctx(t)); code != codes.Created {
		t.Fatal(code, err)
	}
	sub := s.Subscribe(8)
	if _, _, err := s.Observe(ctx(t), "dev-wild", path("/3/0/9"), WithFormat(objects.FormatText)); err != nil {
		t.Fatal(err)
	}
	if err := d.Notify(ctx(t), path("/3/0/9")); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, sub, EventNotification)
	_ = s.Close()
	s2 := newServer(t, func(c *Config) { c.UDPAddr, c.Store = ":"+strconv.Itoa(port), store })
	if _, err := s2.Read(ctx(t), "dev-wild", path("/3/0/0")); err != nil {
		t.Fatalf("read through a new association on a wildcard listener: %v", err)
	}
}
