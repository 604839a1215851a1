package server

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/protocol"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/dtls/v3/pkg/protocol/recordlayer"
)

// The UDP side of the DTLS listener. pion's own (internal to it) routes
// datagrams to sessions by Connection ID as well, but a session's remote
// address only moves after pion has handed the authenticated record to
// go-coap (pion/dtls v3.1.2 to v3.1.15, conn.go handleIncomingPacket: the
// record goes to Read, then rAddr is set), so the answer to the first
// record from a new address could go to the old one. With our own
// packet listener under pion (dtls.NewListenerWithOptions) we know when
// pion has finished with a datagram: when it asks for the next one. A
// record whose datagram came from another address than the session's is
// handed to go-coap only once pion is done with it (followConn.Read), so
// every answer, whichever goroutine writes it, goes where RFC 9146 §6
// says: to the source of the newest authenticated record.

// settleWait bounds the wait of followConn.Read for pion to finish a
// datagram (microseconds normally): past it, the record goes on as
// without this listener.
const settleWait = 50 * time.Millisecond

// udpBacklog bounds the handshakes not yet accepted, and sessionQueue the
// datagrams of a session pion has not read yet; beyond them datagrams are
// dropped, as the kernel does when its buffer is full.
const (
	udpBacklog   = 128
	sessionQueue = 128
)

// cidListener is pion's PacketListener over one UDP socket: a datagram
// goes to the session its Connection ID names (RFC 9146 §6) or else to
// the one of its source address; one from an unknown address starting a
// handshake makes a new session.
type cidListener struct {
	sock   *net.UDPConn
	cidLen int // 0 without Connection IDs

	mu       sync.Mutex
	byAddr   map[netip.AddrPort]*cidConn
	byCID    map[string]*cidConn
	accepted *cidConn // handed to pion by the last Accept (see dtlsListener)

	accept    chan *cidConn
	closed    chan struct{}
	closeOnce sync.Once
}

func listenCID(addr *net.UDPAddr, buffer, cidLen int) (*cidListener, error) {
	sock, err := net.ListenUDP("udp", addr)
	if err != nil {
		return nil, err
	}
	if buffer > 0 {
		// Best effort, as for the UDP transport (listenUDP).
		_ = sock.SetReadBuffer(buffer)
		_ = sock.SetWriteBuffer(buffer)
	}
	l := &cidListener{sock: sock, cidLen: cidLen,
		byAddr: make(map[netip.AddrPort]*cidConn), byCID: make(map[string]*cidConn),
		accept: make(chan *cidConn, udpBacklog), closed: make(chan struct{})}
	go l.readLoop()
	return l, nil
}

// Accept implements pion's PacketListener.
func (l *cidListener) Accept() (net.PacketConn, net.Addr, error) {
	select {
	case c := <-l.accept:
		l.mu.Lock()
		l.accepted = c
		l.mu.Unlock()
		return c, net.UDPAddrFromAddrPort(c.first), nil
	case <-l.closed:
		return nil, nil, net.ErrClosed
	}
}

// takeAccepted returns the session the last Accept handed out, once.
func (l *cidListener) takeAccepted() *cidConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.accepted
	l.accepted = nil
	return c
}

// Close stops the listener and closes the socket: the sessions end too.
func (l *cidListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.closed)
		err = l.sock.Close()
	})
	return err
}

// Addr is the socket's address.
func (l *cidListener) Addr() net.Addr { return l.sock.LocalAddr() }

func (l *cidListener) readLoop() {
	buf := make([]byte, 64*1024)
	for {
		n, from, err := l.sock.ReadFromUDPAddrPort(buf)
		if err != nil {
			select {
			case <-l.closed:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if c := l.route(buf[:n], from); c != nil {
			c.push(buf[:n], from)
		}
	}
}

// route finds the session of a datagram, or makes one for a handshake.
func (l *cidListener) route(b []byte, from netip.AddrPort) *cidConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cidLen > 0 {
		if cid, ok := recordCID(b, l.cidLen); ok {
			if c := l.byCID[string(cid)]; c != nil {
				return c
			}
		}
	}
	if c := l.byAddr[from]; c != nil {
		return c
	}
	if len(b) == 0 || protocol.ContentType(b[0]) != protocol.ContentTypeHandshake {
		return nil
	}
	c := &cidConn{l: l, first: from, ready: make(chan struct{}, 1), done: make(chan struct{}), wake: make(chan struct{})}
	select {
	case l.accept <- c:
		l.byAddr[from] = c
		return c
	default:
		return nil // backlog full: the client retransmits its ClientHello
	}
}

// recordCID is the Connection ID of the first tls12_cid record of a
// datagram (RFC 9146 §4: type 25, version, epoch, sequence number, CID,
// length).
func recordCID(b []byte, cidLen int) ([]byte, bool) {
	const fixed = 11 // type, version, epoch, sequence number
	for len(b) >= fixed+2 {
		if protocol.ContentType(b[0]) == protocol.ContentTypeConnectionID {
			if len(b) < fixed+cidLen+2 {
				return nil, false
			}
			return b[fixed : fixed+cidLen], true
		}
		next := fixed + 2 + int(binary.BigEndian.Uint16(b[fixed:]))
		if next > len(b) {
			return nil, false
		}
		b = b[next:]
	}
	return nil, false
}

type datagram struct {
	b    []byte
	from netip.AddrPort
}

// cidConn is one session's side of the socket: pion reads its datagrams
// and writes through it.
type cidConn struct {
	l     *cidListener
	first netip.AddrPort // the address of its handshake
	ready chan struct{}  // a datagram was queued
	done  chan struct{}
	once  sync.Once

	// Guarded by l.mu.
	cid     string // the CID the server asked the client for
	cidDone bool   // learnCID has seen the ServerHello, or the handshake is over

	mu       sync.Mutex
	queue    []datagram // not read by pion yet, from head on
	head     int
	deadline time.Time
	wake     chan struct{} // closed when the deadline changes or a datagram is finished
	taken    uint64        // datagrams pion has read
	finished uint64        // of those, the ones pion was done with when it asked for more
	last     netip.AddrPort
	settling int // settle calls waiting
}

func (c *cidConn) push(b []byte, from netip.AddrPort) {
	c.mu.Lock()
	if len(c.queue)-c.head >= sessionQueue {
		c.mu.Unlock()
		return // pion is behind: drop, as a full socket buffer would
	}
	c.queue = append(c.queue, datagram{b: append([]byte(nil), b...), from: from})
	c.mu.Unlock()
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// pop takes the next datagram, if any.
func (c *cidConn) pop() (datagram, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.head == len(c.queue) {
		return datagram{}, false
	}
	d := c.queue[c.head]
	c.queue[c.head] = datagram{}
	c.head++
	if c.head == len(c.queue) {
		c.queue, c.head = c.queue[:0], 0 // the array is kept for the next
	}
	c.taken++
	c.last = d.from
	return d, true
}

// ReadFrom gives pion the session's next datagram. Being asked means
// pion is done with the previous one, including the move of the
// session's address.
func (c *cidConn) ReadFrom(p []byte) (int, net.Addr, error) {
	c.mu.Lock()
	if c.finished != c.taken {
		c.finished = c.taken
		if c.settling > 0 {
			c.wakeLocked()
		}
	}
	c.mu.Unlock()
	for {
		if d, ok := c.pop(); ok {
			return copy(p, d.b), net.UDPAddrFromAddrPort(d.from), nil
		}
		c.mu.Lock()
		deadline, wake := c.deadline, c.wake
		c.mu.Unlock()
		var t *time.Timer
		var timeout <-chan time.Time
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return 0, nil, os.ErrDeadlineExceeded
			}
			t = time.NewTimer(d)
			timeout = t.C
		}
		err := c.wait(wake, timeout)
		if t != nil {
			t.Stop()
		}
		if err != nil {
			return 0, nil, err
		}
	}
}

// wait waits for a datagram or a change of the deadline (nil), the end
// of the session or the deadline.
func (c *cidConn) wait(wake <-chan struct{}, timeout <-chan time.Time) error {
	select {
	case <-c.ready:
		return nil
	case <-wake:
		return nil
	case <-c.done:
		return net.ErrClosed
	case <-timeout:
		return os.ErrDeadlineExceeded
	}
}

func (c *cidConn) wakeLocked() {
	close(c.wake)
	c.wake = make(chan struct{})
}

// settle waits, up to max, until pion is done with every datagram it has
// read, when the newest came from another address than remote, the
// session's: pion moves the address after handing the record over.
func (c *cidConn) settle(remote net.Addr, max time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished == c.taken || addrPort(remote) == c.last {
		return
	}
	target := c.taken
	t := time.NewTimer(max)
	defer t.Stop()
	c.settling++
	defer func() { c.settling-- }()
	for c.finished < target {
		wake := c.wake
		c.mu.Unlock()
		select {
		case <-wake:
		case <-t.C:
			c.mu.Lock()
			return
		case <-c.done:
			c.mu.Lock()
			return
		}
		c.mu.Lock()
	}
}

// WriteTo sends a record to addr, pion's remote address of the session.
func (c *cidConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if c.l.cidLen > 0 {
		c.learnCID(p, addr)
	}
	return c.l.sock.WriteTo(p, addr)
}

// learnCID takes the Connection ID from the server's ServerHello (RFC
// 9146 §3), after which the session's records are routed by it. Once
// the session writes to another address than its first, the first is
// freed for a new session, as pion's listener does.
func (c *cidConn) learnCID(p []byte, addr net.Addr) {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if c.cidDone {
		if c.cid != "" && c.l.byAddr[c.first] == c && addrPort(addr) != c.first {
			delete(c.l.byAddr, c.first)
		}
		return
	}
	if len(p) == 0 || protocol.ContentType(p[0]) != protocol.ContentTypeHandshake {
		c.cidDone = true // the handshake is over
		return
	}
	cid, ok := serverHelloCID(p)
	if !ok {
		return // a HelloVerifyRequest, or a later flight
	}
	c.cidDone = true
	if len(cid) > 0 {
		c.cid = string(cid)
		c.l.byCID[c.cid] = c
	}
}

// serverHelloCID finds the ServerHello in a datagram of the server and
// its connection_id extension; ok is false when there is no ServerHello.
func serverHelloCID(p []byte) ([]byte, bool) {
	pkts, err := recordlayer.UnpackDatagram(p)
	if err != nil {
		return nil, false
	}
	for _, pkt := range pkts {
		if len(pkt) < recordlayer.FixedHeaderSize+handshake.HeaderLength ||
			protocol.ContentType(pkt[0]) != protocol.ContentTypeHandshake {
			continue
		}
		var h handshake.Header
		if h.Unmarshal(pkt[recordlayer.FixedHeaderSize:]) != nil || h.Type != handshake.TypeServerHello {
			continue
		}
		var sh handshake.MessageServerHello
		if sh.Unmarshal(pkt[recordlayer.FixedHeaderSize+handshake.HeaderLength:]) != nil {
			continue
		}
		for _, e := range sh.Extensions {
			if cid, ok := e.(*extension.ConnectionID); ok {
				return cid.CID, true
			}
		}
		return nil, true
	}
	return nil, false
}

// Close ends the session's side: pion's reads return.
func (c *cidConn) Close() error {
	c.once.Do(func() {
		close(c.done)
		c.l.mu.Lock()
		if c.l.byAddr[c.first] == c {
			delete(c.l.byAddr, c.first)
		}
		if c.cid != "" && c.l.byCID[c.cid] == c {
			delete(c.l.byCID, c.cid)
		}
		c.l.mu.Unlock()
	})
	return nil
}

// LocalAddr is the socket's address.
func (c *cidConn) LocalAddr() net.Addr { return c.l.sock.LocalAddr() }

// SetDeadline sets the read deadline; writes do not block.
func (c *cidConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline bounds ReadFrom; pion sets one in the past to stop a
// read.
func (c *cidConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.wakeLocked()
	c.mu.Unlock()
	return nil
}

// SetWriteDeadline does nothing: a UDP write does not block.
func (c *cidConn) SetWriteDeadline(time.Time) error { return nil }

// followConn is a DTLS session as go-coap sees it: a record whose
// datagram came from a new address is handed over only once pion has
// moved the session there (see settle).
type followConn struct {
	*dtls.Conn
	pc *cidConn
}

func (f *followConn) Read(b []byte) (int, error) {
	n, err := f.Conn.Read(b)
	if n > 0 {
		f.pc.settle(f.Conn.RemoteAddr(), settleWait)
	}
	return n, err
}
