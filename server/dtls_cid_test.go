package server

import (
	"bytes"
	"net"
	"sync"
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
