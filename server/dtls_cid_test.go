package server

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	coapdtls "github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/net/responsewriter"
	"github.com/plgd-dev/go-coap/v3/options"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/lwm2md/lwm2md/objects"
)

// natConn is a device's socket behind a NAT that can change the mapping:
// move replaces the socket with one on a new port, without telling the
// DTLS layer above it.
type natConn struct {
	mu   sync.Mutex
	conn *net.UDPConn
	dl   time.Time
}

func (c *natConn) cur() *net.UDPConn { c.mu.Lock(); defer c.mu.Unlock(); return c.conn }

func (c *natConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		conn := c.cur()
		n, a, err := conn.ReadFrom(b)
		if err != nil && c.cur() != conn {
			continue
		}
		return n, a, err
	}
}
func (c *natConn) WriteTo(b []byte, a net.Addr) (int, error) { return c.cur().WriteTo(b, a) }
func (c *natConn) Close() error                              { return c.cur().Close() }
func (c *natConn) LocalAddr() net.Addr                       { return c.cur().LocalAddr() }
func (c *natConn) SetDeadline(t time.Time) error             { return c.SetReadDeadline(t) }
func (c *natConn) SetWriteDeadline(time.Time) error          { return nil }
func (c *natConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dl = t
	return c.conn.SetReadDeadline(t)
}

func (c *natConn) move(t testing.TB) {
	t.Helper()
	n, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	old := c.conn
	c.conn = n
	_ = n.SetReadDeadline(c.dl)
	c.mu.Unlock()
	_ = old.Close()
}

// TestDTLSFollowsAddressWithoutUpdate: after a NAT rebinding the device
// sends a Send, not an Update; the server takes it (the Connection ID
// names the session) and its next request reaches the device at the new
// address (RFC 9146 §6: the peer address follows the newest authenticated
// record).
func TestDTLSFollowsAddressWithoutUpdate(t *testing.T) {
	creds := newMemCredentials()
	creds.addPSK("id-nat", "nat-dev", []byte("nat-key-16bytes!"))
	s := newDTLSServer(t, creds, nil)
	sub := s.Subscribe(16)

	sock, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	nat := &natConn{conn: sock}
	dc, err := dtls.Client(nat, s.DTLSAddr(), &dtls.Config{
		PSK:                   func([]byte) ([]byte, error) { return []byte("nat-key-16bytes!"), nil },
		PSKIdentityHint:       []byte("id-nat"),
		CipherSuites:          []dtls.CipherSuiteID{dtls.TLS_PSK_WITH_AES_128_CCM_8},
		ConnectionIDGenerator: dtls.OnlySendCIDGenerator(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := dc.HandshakeContext(ctx(t)); err != nil {
		t.Fatal(err)
	}
	var reads sync.Map // local address -> true, of the socket each Read came to
	cc := coapdtls.Client(dc, options.WithErrors(func(error) {}),
		options.WithHandlerFunc(func(w *responsewriter.ResponseWriter[*udpClient.Conn], r *pool.Message) {
			reads.Store(nat.LocalAddr().String(), true)
			_ = w.SetResponse(codes.Content, message.TextPlain, bytes.NewReader([]byte("nat-maker")))
		}))
	t.Cleanup(func() { _ = cc.Close() })
	if code, _ := rawRegister(t, cc, "nat-dev"); code != codes.Created {
		t.Fatal(code)
	}
	waitEvent(t, sub, EventRegistered)
	if _, err := s.Read(ctx(t), "nat-dev", path("/3/0/0")); err != nil {
		t.Fatal(err)
	}

	nat.move(t)
	moved := nat.LocalAddr().String()
	resp, err := cc.Post(ctx(t), "/dp", message.MediaType(objects.FormatSenMLJSON), bytes.NewReader([]byte(`[{"bn":"/3/0/","n":"9","v":5}]`)))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code() != codes.Changed {
		t.Fatalf("send after the move: %v", resp.Code())
	}
	if e := waitEvent(t, sub, EventSend); e.Endpoint != "nat-dev" {
		t.Fatalf("%+v", e)
	}
	n, err := s.Read(ctx(t), "nat-dev", path("/3/0/0"))
	if err != nil {
		t.Fatalf("read after the move: %v", err)
	}
	if r, ok := n.(*objects.Resource); !ok || r.Value.Str() != "nat-maker" {
		t.Fatalf("%#v", n)
	}
	if _, ok := reads.Load(moved); !ok {
		t.Fatalf("the read did not come to the new socket %s", moved)
	}
	if st := s.Stats(); st.Associations != 1 {
		t.Fatalf("%d associations", st.Associations)
	}
}

// rebindConn is a device's socket behind a NAT that rebinds: move puts a
// new socket (a new source port) under the DTLS session and keeps the
// old one open, counting what the server still sends there.
type rebindConn struct {
	natConn
	strays atomic.Int64 // datagrams that arrived at a socket after its move
}

func (c *rebindConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		conn := c.cur()
		n, a, err := conn.ReadFrom(b)
		if err != nil && c.cur() != conn {
			go c.countStrays(conn) // the reader has left the old socket
			continue
		}
		return n, a, err
	}
}

func (c *rebindConn) countStrays(old *net.UDPConn) {
	_ = old.SetReadDeadline(time.Time{})
	buf := make([]byte, 2048)
	for {
		if _, _, err := old.ReadFrom(buf); err != nil {
			return
		}
		c.strays.Add(1)
	}
}

// move rebinds: the reader, blocked on the old socket, is woken and goes
// to the new one; the old one stays open.
func (c *rebindConn) move(t testing.TB) {
	t.Helper()
	n, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	c.mu.Lock()
	old := c.conn
	c.conn = n
	_ = n.SetReadDeadline(c.dl)
	c.mu.Unlock()
	_ = old.SetReadDeadline(time.Now())
}

// cidDevice speaks CoAP straight over a DTLS session, without
// retransmissions: an answer that goes to the old address is lost.
type cidDevice struct {
	t    testing.TB
	nat  *rebindConn
	dc   *dtls.Conn
	in   chan message.Message
	mid  int32
	obs  message.Token // the token of the server's Observe
	sepr bool          // answer the next GET separately: empty ACK, then CON 2.05
	reqs chan message.Message
}

func dialCIDDevice(t testing.TB, s *testServer, identity string, key []byte) *cidDevice {
	t.Helper()
	sock, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	nat := &rebindConn{natConn: natConn{conn: sock}}
	t.Cleanup(func() { _ = sock.Close() })
	dc, err := dtls.Client(nat, s.DTLSAddr(), &dtls.Config{
		PSK:                   func([]byte) ([]byte, error) { return key, nil },
		PSKIdentityHint:       []byte(identity),
		CipherSuites:          []dtls.CipherSuiteID{dtls.TLS_PSK_WITH_AES_128_CCM_8},
		ConnectionIDGenerator: dtls.OnlySendCIDGenerator(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := dc.HandshakeContext(ctx(t)); err != nil {
		t.Fatal(err)
	}
	d := &cidDevice{t: t, nat: nat, dc: dc, in: make(chan message.Message, 16), reqs: make(chan message.Message, 16), mid: 100}
	t.Cleanup(func() { _ = dc.Close() })
	go d.read()
	return d
}

func (d *cidDevice) write(m message.Message) {
	b := make([]byte, 2048)
	n, err := coder.DefaultCoder.Encode(m, b)
	if err != nil {
		d.t.Error(err)
		return
	}
	if _, err := d.dc.Write(b[:n]); err != nil {
		d.t.Error(err)
	}
}

// read hands the server's answers to in and its requests to reqs.
func (d *cidDevice) read() {
	for {
		buf := make([]byte, 2048) // the decoded message points into it
		n, err := d.dc.Read(buf)
		if err != nil {
			return
		}
		m := message.Message{Options: make(message.Options, 0, 8)}
		if _, err := coder.DefaultCoder.Decode(buf[:n], &m); err != nil {
			continue
		}
		if m.Code >= codes.GET && m.Code <= codes.DELETE {
			d.reqs <- m
			continue
		}
		d.in <- m
	}
}

// exchange sends m and waits for the message answering its ID, for less
// than the ACK timeout (2 s, RFC 7252 §4.8): a device would only then
// retransmit.
func (d *cidDevice) exchange(m message.Message) message.Message {
	d.t.Helper()
	r, ok := d.tryExchange(m)
	if !ok {
		d.t.Fatalf("no answer to %v %v within 1 s (%d datagrams went to old addresses)", m.Code, m.Options, d.nat.strays.Load())
	}
	return r
}

func (d *cidDevice) tryExchange(m message.Message) (message.Message, bool) {
	d.mid++
	m.MessageID = d.mid
	m.Type = message.Confirmable
	d.write(m)
	timeout := time.After(time.Second)
	for {
		select {
		case r := <-d.in:
			if r.MessageID == m.MessageID && r.Type == message.Acknowledgement {
				return r, true
			}
		case <-timeout:
			return message.Message{}, false
		}
	}
}

// serve answers the server's next GET: piggybacked (Observe 1 on an
// Observe), or separately after a move when sepr is set.
func (d *cidDevice) serve(value string, moveFirst bool) message.Message {
	d.t.Helper()
	var r message.Message
	select {
	case r = <-d.reqs:
	case <-time.After(5 * time.Second):
		d.t.Fatal("no request from the server")
	}
	opts := message.Options{{ID: message.ContentFormat, Value: nil}}
	if _, err := r.Options.GetUint32(message.Observe); err == nil {
		d.obs = append(message.Token(nil), r.Token...)
		opts = append(message.Options{{ID: message.Observe, Value: encodeUint(1)}}, opts...)
	}
	if !moveFirst {
		d.write(message.Message{Code: codes.Content, Type: message.Acknowledgement, MessageID: r.MessageID, Token: r.Token,
			Options: opts, Payload: []byte(value)})
		return r
	}
	// A separate answer (RFC 7252 §5.2.2): the empty ACK from here, the
	// answer from the new address; the server's ACK of it must come there.
	d.write(message.Message{Code: codes.Empty, Type: message.Acknowledgement, MessageID: r.MessageID})
	d.nat.move(d.t)
	ack := d.exchange(message.Message{Code: codes.Content, Token: r.Token, Options: opts, Payload: []byte(value)})
	if ack.Code != codes.Empty {
		d.t.Fatalf("separate answer acknowledged with %v", ack.Code)
	}
	return r
}

// TestDTLSFirstAnswerAfterRebinding: after each NAT rebinding, the
// server's answer to the device's first record from the new address goes
// to that address at once (RFC 9146 §6), not to the old one, which only
// the device's retransmission would repair: for an Update, a Notify's
// ACK, a Send and the ACK of a separate answer to a server request.
func TestDTLSFirstAnswerAfterRebinding(t *testing.T) {
	creds := newMemCredentials()
	creds.addPSK("id-rebind", "rebind-dev", []byte("rebind-key-16by!"))
	s := newDTLSServer(t, creds, nil)
	sub := s.Subscribe(64)
	d := dialCIDDevice(t, s, "id-rebind", []byte("rebind-key-16by!"))

	reg := d.exchange(message.Message{Code: codes.POST, Token: message.Token{1},
		Options: pathOptions("/rd", []string{"ep=rebind-dev", "lt=300", "lwm2m=1.1"}, 40), Payload: []byte("</3/0>")})
	if reg.Code != codes.Created {
		t.Fatalf("register: %v", reg.Code)
	}
	loc, _ := reg.Options.LocationPath()
	waitEvent(t, sub, EventRegistered)
	type observed struct {
		o   *Observation
		err error
	}
	got := make(chan observed, 1)
	go func() {
		o, _, err := s.Observe(context.Background(), "rebind-dev", path("/3/0/0"))
		got <- observed{o, err}
	}()
	d.serve("maker-1", false)
	ob := <-got
	if ob.err != nil {
		t.Fatal(ob.err)
	}

	for round := 0; round < 5; round++ {
		d.nat.move(t)
		if r := d.exchange(message.Message{Code: codes.POST, Token: message.Token{2, byte(round)},
			Options: pathOptions(loc, nil, -1)}); r.Code != codes.Changed {
			t.Fatalf("update after the move: %v", r.Code)
		}
		waitEvent(t, sub, EventUpdated)

		d.nat.move(t)
		if r := d.exchange(message.Message{Code: codes.Content, Token: d.obs,
			Options: message.Options{{ID: message.Observe, Value: encodeUint(uint32(2 + round))}, {ID: message.ContentFormat, Value: nil}},
			Payload: []byte("maker-" + strconv.Itoa(round))}); r.Code != codes.Empty {
			t.Fatalf("notification after the move acknowledged with %v", r.Code)
		}
		if e := waitEvent(t, sub, EventNotification); e.Err != nil || e.Node.(*objects.Resource).Value.Text() != "maker-"+strconv.Itoa(round) {
			t.Fatalf("%+v", e)
		}

		d.nat.move(t)
		if r := d.exchange(message.Message{Code: codes.POST, Token: message.Token{3, byte(round)},
			Options: pathOptions("/dp", nil, int(objects.FormatSenMLJSON)), Payload: []byte(`[{"bn":"/3/0/","n":"9","v":5}]`)}); r.Code != codes.Changed {
			t.Fatalf("send after the move: %v", r.Code)
		}
		waitEvent(t, sub, EventSend)

		read := make(chan error, 1)
		go func() {
			n, err := s.Read(context.Background(), "rebind-dev", path("/3/0/0"))
			if err == nil && n.(*objects.Resource).Value.Text() != "separate" {
				err = fmt.Errorf("read %#v", n)
			}
			read <- err
		}()
		d.serve("separate", true)
		if err := <-read; err != nil {
			t.Fatal(err)
		}
	}
	if n := d.nat.strays.Load(); n != 0 {
		t.Fatalf("%d datagrams went to the device's old addresses", n)
	}
}

// TestDTLSWithoutConnectionID: with DisableConnectionID the server's
// packet listener routes by address only: the session works, and a
// record from a new address reaches no session (the device must
// handshake again, as without RFC 9146).
func TestDTLSWithoutConnectionID(t *testing.T) {
	creds := newMemCredentials()
	creds.addPSK("id-nocid", "nocid-dev", []byte("nocid-key-16byt!"))
	s := newDTLSServer(t, creds, func(c *Config) { c.DisableConnectionID = true })
	sub := s.Subscribe(16)
	d := dialCIDDevice(t, s, "id-nocid", []byte("nocid-key-16byt!"))
	reg := d.exchange(message.Message{Code: codes.POST, Token: message.Token{1},
		Options: pathOptions("/rd", []string{"ep=nocid-dev", "lt=300", "lwm2m=1.1"}, 40), Payload: []byte("</3/0>")})
	if reg.Code != codes.Created {
		t.Fatalf("register: %v", reg.Code)
	}
	waitEvent(t, sub, EventRegistered)
	read := make(chan error, 1)
	go func() {
		_, err := s.Read(context.Background(), "nocid-dev", path("/3/0/0"))
		read <- err
	}()
	d.serve("maker", false)
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	d.nat.move(t)
	if r, ok := d.tryExchange(message.Message{Code: codes.POST, Token: message.Token{3},
		Options: pathOptions("/dp", nil, int(objects.FormatSenMLJSON)), Payload: []byte(`[{"bn":"/3/0/","n":"9","v":5}]`)}); ok {
		t.Fatalf("a record without CID from a new address was taken: %v", r.Code)
	}
	noEvent(t, sub, EventSend, 100*time.Millisecond)
}
