package server

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// ingestNotification takes a notification of the established observation
// o straight from the monitor, instead of letting go-coap queue it to the
// peer's association, and hands it to the ingest workers, which publish
// it (handleResponse) and acknowledge a confirmable one with an empty ACK
// (RFC 7641 §4.5). It reports whether it did; the others (the first
// answer of an Observe still in progress, which go-coap routes to the
// waiting request, and those of a cancel in progress) go the usual way.
// A block-wise one is completed by blockNotification (observeblock.go).
//
// Why: go-coap caches every answer it sends to a CON or NON message for
// EXCHANGE_LIFETIME (247 s) and its UDP server walks the peer's whole
// cache on every datagram it receives (go-coap issue 586), so a device
// notifying once a second made every datagram of its own cost a walk over
// ~250 entries, which took most of the server's CPU. The empty ACK of a
// notification carries nothing worth caching: a duplicate (same message
// ID, RFC 7252 §4.5) carries the same Observe sequence number, which
// handleResponse drops as not newer (RFC 7641 §3.4), and gets the same
// empty ACK again.
func (s *Server) ingestNotification(cc *udpClient.Conn, r *pool.Message, o *Observation) bool {
	// Before its first answer (a new Observe, or one restored and being
	// re-issued) and while it is being cancelled, a request with the
	// observation's token is in progress, whose answer may come as a
	// separate CON or NON (RFC 7252 §5.2.2): go-coap hands it to that
	// request.
	o.mu.Lock()
	mine := !o.last.IsZero() && !o.cancelling
	o.mu.Unlock()
	if !mine {
		return false
	}
	if r.HasOption(message.Block2) {
		return s.blockNotification(cc, r, o) // observeblock.go
	}
	return s.ingest.enqueue(s, cc, r, o.Endpoint)
}

// ingestPool runs the notifications taken by ingestNotification on a few
// workers, so that go-coap's UDP read loop, which runs the monitor, only
// reads and parses datagrams while decoding, publishing and acknowledging
// use every core. A device's notifications go to one worker (by endpoint),
// so they keep their order. The workers start with the first
// notification and end at Close.
type ingestPool struct {
	once   sync.Once
	mu     sync.RWMutex // guards closed against the sends on the queues
	closed bool
	queues []chan ingestItem
	done   sync.WaitGroup
}

type ingestItem struct {
	cc *udpClient.Conn
	m  *pool.Message // a copy: go-coap reuses the datagram's message
}

// ingestQueue is the length of each worker's queue; a full queue makes the
// read loop wait, as go-coap's own per-association queue does.
const ingestQueue = 1024

func (p *ingestPool) start(s *Server) {
	n := max(runtime.GOMAXPROCS(0), 1)
	p.queues = make([]chan ingestItem, n)
	for i := range p.queues {
		q := make(chan ingestItem, ingestQueue)
		p.queues[i] = q
		p.done.Add(1)
		go func() {
			defer p.done.Done()
			for it := range q {
				s.ingestOne(it)
			}
		}()
	}
}

// enqueue copies r and queues it to its endpoint's worker; false once the
// pool is closed.
func (p *ingestPool) enqueue(s *Server, cc *udpClient.Conn, r *pool.Message, endpoint string) bool {
	p.once.Do(func() { p.start(s) })
	body, err := copyBody(r)
	if err != nil {
		return false
	}
	m := copyMessage(cc, r, body)
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		cc.ReleaseMessage(m)
		return false
	}
	s.inflight.Add(1)
	p.queues[fnv32(endpoint)%uint32(len(p.queues))] <- ingestItem{cc: cc, m: m}
	return true
}

// copyMessage copies r, with body as its payload, into a message of cc's
// pool: go-coap reuses the datagram's message once the monitor returns.
func copyMessage(cc *udpClient.Conn, r *pool.Message, body []byte) *pool.Message {
	m := cc.AcquireMessage(cc.Context())
	m.SetCode(r.Code())
	m.SetType(r.Type())
	m.SetMessageID(r.MessageID())
	m.SetToken(r.Token())
	m.ResetOptionsTo(r.Options())
	if len(body) > 0 {
		m.SetBody(bytes.NewReader(body))
	}
	return m
}

// copyBody copies r's payload into a slice of its size (pool.Message's
// ReadBody allocates at least 1 KiB), leaving the body readable from the
// start for go-coap when the notification goes the usual way after all.
func copyBody(r *pool.Message) ([]byte, error) {
	body := r.Body()
	if body == nil {
		return nil, nil
	}
	size, err := r.BodySize()
	if err != nil || size == 0 {
		return nil, err
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(body, b); err != nil {
		return nil, err
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return b, nil
}

// close ends the workers once they have run what is queued.
func (p *ingestPool) close() {
	p.once.Do(func() {}) // a pool never started stays so
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		for _, q := range p.queues {
			close(q)
		}
	}
	p.mu.Unlock()
	p.done.Wait()
}

func (s *Server) ingestOne(it ingestItem) {
	defer s.inflight.Add(-1)
	defer it.cc.ReleaseMessage(it.m)
	if it.m.Code() == codes.POST {
		s.ingestSend(it.cc, it.m) // a Send taken by takeSend (send.go)
		return
	}
	s.handleResponse(it.cc, it.m)
	if it.m.Type() == message.Confirmable {
		s.emptyACK(it.cc, it.m)
	}
}

// emptyACK acknowledges the confirmable message r with an empty ACK.
func (s *Server) emptyACK(cc *udpClient.Conn, r *pool.Message) {
	ack := cc.AcquireMessage(cc.Context())
	defer cc.ReleaseMessage(ack)
	ack.SetType(message.Acknowledgement)
	ack.SetCode(codes.Empty)
	ack.SetMessageID(r.MessageID())
	if err := cc.Session().WriteMessage(ack); err != nil {
		s.transportError(fmt.Errorf("ack to %s: %w", cc.RemoteAddr(), err))
	}
}

// fnv32 is FNV-1a of s, without allocating.
func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

// listenUDP binds addr with socket buffers of the given size (the kernel's
// default when negative).
func listenUDP(addr string, buffer int) (*coapNet.UDPConn, error) {
	laddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	c, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, err
	}
	if buffer > 0 {
		// Best effort: the kernel caps the size at its maximum, and an
		// error here leaves the default, which still works.
		_ = c.SetReadBuffer(buffer)
		_ = c.SetWriteBuffer(buffer)
	}
	return coapNet.NewUDPConn("udp", c), nil
}
