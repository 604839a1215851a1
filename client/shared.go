package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
)

// SharedUDP carries the datagrams of many clients over a few UDP sockets,
// for a simulator that runs more devices than the process may open file
// descriptors (one socket per client) and than one address has ports.
// Each client sends from its own loopback address (Config.LocalAddr, a
// 127.0.0.0/8 address, port ignored) and the port of one of the shared
// sockets: the socket is bound to the wildcard address on the loopback
// interface only, picks the source address of every datagram with
// IP_PKTINFO and hands each datagram it receives to the client whose
// address it was sent to. The server sees one peer per client, as with
// sockets of their own. Rebind moves a client to the next socket (a new
// source port). Loopback servers only; Linux only.
type SharedUDP struct {
	ports []*sharedPort
	next  atomic.Uint32
}

// sharedPort is one shared socket and the clients on it, by address.
type sharedPort struct {
	pc   *ipv4.PacketConn
	conn *net.UDPConn
	port int

	mu    sync.RWMutex
	conns map[netip.Addr]*sharedConn

	dropped atomic.Uint64 // datagrams for no client, or a client whose queue was full
	done    chan struct{}
}

// NewSharedUDP opens n shared sockets (at least 1).
func NewSharedUDP(n int) (*SharedUDP, error) {
	if n < 1 {
		n = 1
	}
	s := &SharedUDP{}
	for range n {
		p, err := openSharedPort()
		if err != nil {
			_ = s.Close()
			return nil, err
		}
		s.ports = append(s.ports, p)
	}
	return s, nil
}

func openSharedPort() (*sharedPort, error) {
	lc := net.ListenConfig{Control: loopbackOnly}
	c, err := lc.ListenPacket(context.Background(), "udp4", "0.0.0.0:0")
	if err != nil {
		return nil, fmt.Errorf("client: shared socket: %w", err)
	}
	conn := c.(*net.UDPConn)
	_ = conn.SetReadBuffer(8 << 20) // a burst of answers to many clients at once
	_ = conn.SetWriteBuffer(8 << 20)
	pc := ipv4.NewPacketConn(conn)
	if err := pc.SetControlMessage(ipv4.FlagDst, true); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("client: shared socket: IP_PKTINFO: %w", err)
	}
	p := &sharedPort{pc: pc, conn: conn, port: conn.LocalAddr().(*net.UDPAddr).Port,
		conns: make(map[netip.Addr]*sharedConn), done: make(chan struct{})}
	go p.read()
	return p, nil
}

// Close closes the shared sockets; the clients on them hear nothing more.
func (s *SharedUDP) Close() error {
	var errs []error
	for _, p := range s.ports {
		if err := p.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
		<-p.done
	}
	return errors.Join(errs...)
}

// Dropped counts the datagrams received for no client or for a client
// whose receive queue was full.
func (s *SharedUDP) Dropped() uint64 {
	var n uint64
	for _, p := range s.ports {
		n += p.dropped.Load()
	}
	return n
}

// read hands each datagram to the client it was sent to.
func (p *sharedPort) read() {
	defer close(p.done)
	buf := make([]byte, 65536)
	for {
		n, cm, src, err := p.pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if cm == nil {
			p.dropped.Add(1)
			continue
		}
		dst, ok := netip.AddrFromSlice(cm.Dst.To4())
		if !ok {
			p.dropped.Add(1)
			continue
		}
		p.mu.RLock()
		c := p.conns[dst]
		p.mu.RUnlock()
		if c == nil || !sameUDPAddr(src, c.raddr) {
			p.dropped.Add(1) // late datagram for a closed client, or not from its server
			continue
		}
		if !c.deliver(buf[:n]) {
			p.dropped.Add(1)
		}
	}
}

func sameUDPAddr(a net.Addr, b *net.UDPAddr) bool {
	u, ok := a.(*net.UDPAddr)
	return ok && u.Port == b.Port && u.IP.Equal(b.IP)
}

// attach registers a client address on the port.
func (p *sharedPort) attach(c *sharedConn) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns[c.ip] != nil {
		return fmt.Errorf("client: shared socket: address %s is in use by another client", c.ip)
	}
	p.conns[c.ip] = c
	return nil
}

func (p *sharedPort) detach(c *sharedConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns[c.ip] == c {
		delete(p.conns, c.ip)
	}
}

// sharedConn is one client's connected view of a shared socket, the
// net.Conn a session reads and writes.
type sharedConn struct {
	port  *sharedPort
	ip    netip.Addr
	raddr *net.UDPAddr
	cm    *ipv4.ControlMessage // source address of every datagram sent

	in     chan []byte
	closed chan struct{}
	once   sync.Once
}

// sharedQueue is how many datagrams wait for a client's reader.
const sharedQueue = 8

func newSharedConn(p *sharedPort, ip netip.Addr, raddr *net.UDPAddr) (*sharedConn, error) {
	c := &sharedConn{port: p, ip: ip, raddr: raddr, cm: &ipv4.ControlMessage{Src: ip.AsSlice()},
		in: make(chan []byte, sharedQueue), closed: make(chan struct{})}
	if err := p.attach(c); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *sharedConn) deliver(b []byte) bool {
	select {
	case c.in <- append([]byte(nil), b...):
		return true
	default:
		return false
	}
}

func (c *sharedConn) Read(b []byte) (int, error) {
	select {
	case d := <-c.in:
		return copy(b, d), nil
	case <-c.closed:
		return 0, net.ErrClosed
	}
}

func (c *sharedConn) Write(b []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	return c.port.pc.WriteTo(b, c.cm, c.raddr)
}

func (c *sharedConn) Close() error {
	c.once.Do(func() {
		c.port.detach(c)
		close(c.closed)
	})
	return nil
}

func (c *sharedConn) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: c.ip.AsSlice(), Port: c.port.port}
}
func (c *sharedConn) RemoteAddr() net.Addr             { return c.raddr }
func (c *sharedConn) SetDeadline(time.Time) error      { return nil }
func (c *sharedConn) SetReadDeadline(time.Time) error  { return nil }
func (c *sharedConn) SetWriteDeadline(time.Time) error { return nil }

// session opens a client's session over the shared sockets, from the
// loopback address laddr.
func (s *SharedUDP) session(raddr, laddr *net.UDPAddr, maxSize uint32, f *faults, errs func(error)) (*session, error) {
	if laddr == nil {
		return nil, fmt.Errorf("client: Config.Shared needs Config.LocalAddr, the client's own loopback address")
	}
	ip, ok := netip.AddrFromSlice(laddr.IP.To4())
	if !ok || !ip.IsLoopback() {
		return nil, fmt.Errorf("client: Config.Shared: Config.LocalAddr %s is not an IPv4 loopback address", laddr.IP)
	}
	if raddr.IP.To4() == nil || !raddr.IP.IsLoopback() {
		return nil, fmt.Errorf("client: Config.Shared: server %s is not on an IPv4 loopback address", raddr)
	}
	i := int(s.next.Add(1)-1) % len(s.ports)
	conn, err := newSharedConn(s.ports[i], ip, raddr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	sess := &session{raddr: raddr, laddr: laddr, maxSize: maxSize, errs: errs, cancel: cancel,
		done: make(chan struct{}), conn: conn, faults: f}
	sess.ctx.Store(&ctx)
	sess.rebinder = func() (net.Addr, error) { return s.rebind(sess, ip, raddr) }
	return sess, nil
}

// rebind moves a session to the next shared socket: same address, a new
// port.
func (s *SharedUDP) rebind(sess *session, ip netip.Addr, raddr *net.UDPAddr) (net.Addr, error) {
	sess.mu.Lock()
	old, _ := sess.conn.(*sharedConn)
	sess.mu.Unlock()
	if old == nil {
		return nil, fmt.Errorf("client: rebind: not a shared session")
	}
	if len(s.ports) < 2 {
		return nil, fmt.Errorf("client: rebind: one shared socket only: open more to change ports")
	}
	idx := 0
	for i, p := range s.ports {
		if p == old.port {
			idx = (i + 1) % len(s.ports)
		}
	}
	conn, err := newSharedConn(s.ports[idx], ip, raddr)
	if err != nil {
		return nil, fmt.Errorf("client: rebind: %w", err)
	}
	sess.mu.Lock()
	sess.conn = conn
	sess.mu.Unlock()
	_ = old.Close() // wakes Run, which moves to the new conn
	return conn.LocalAddr(), nil
}
