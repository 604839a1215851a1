package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/net/monitor/inactivity"
	"github.com/plgd-dev/go-coap/v3/net/responsewriter"
	"github.com/plgd-dev/go-coap/v3/pkg/runner/periodic"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// session is the client's CoAP association as go-coap sees it: a
// connected UDP socket to the server, which Rebind swaps for a new one
// (a new source port, as after a NAT rebinding) while go-coap's state
// (message IDs, tokens, the response cache) stays. Every datagram passes
// the field conditions: a share is dropped, answers are delayed.
//
// It replaces go-coap's udp/server.Session for two reasons besides
// those: go-coap's session ends the association on the first datagram
// it cannot parse, where a device ignores it (RFC 7252 §4.2), and it
// stops on ECONNREFUSED, which a connected socket reports when an ICMP
// port unreachable comes back while the server is down.
type session struct {
	raddr   *net.UDPAddr
	laddr   *net.UDPAddr // requested local address (port 0 for any); nil for the system's choice
	maxSize uint32
	errs    func(error)

	ctx    atomic.Pointer[context.Context]
	cancel context.CancelFunc
	done   chan struct{} // closed when Run has ended and the close hooks ran

	mu      sync.Mutex
	conn    net.Conn // a connected *net.UDPConn, or a *dtls.Conn (see dtls.go)
	onClose []func()
	// rebinder moves a DTLS session to a new local port under its
	// unchanged DTLS connection; nil over UDP.
	rebinder func() (net.Addr, error)
	// dtls renews the DTLS connection (see dtls.go); nil over UDP.
	dtls *dtlsState

	faults *faults
}

// faults are the field conditions applied to datagrams.
type faults struct {
	loss  atomic.Uint64 // float64 bits: share of datagrams dropped, each way
	delay atomic.Int64  // nanoseconds added before each answer to the server
	mu    sync.Mutex
	rng   *rand.Rand

	droppedIn, droppedOut atomic.Uint64
}

func newFaults(seed uint64) *faults {
	return &faults{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (f *faults) drop() bool {
	loss := math.Float64frombits(f.loss.Load())
	if loss <= 0 {
		return false
	}
	f.mu.Lock()
	x := f.rng.Float64()
	f.mu.Unlock()
	return x < loss
}

func newSession(raddr, laddr *net.UDPAddr, maxSize uint32, f *faults, errs func(error)) (*session, error) {
	conn, err := net.DialUDP("udp", laddr, raddr)
	if err != nil {
		return nil, fmt.Errorf("client: dial %s: %w", raddr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{raddr: raddr, laddr: laddr, maxSize: maxSize, errs: errs, cancel: cancel,
		done: make(chan struct{}), conn: conn, faults: f}
	s.ctx.Store(&ctx)
	return s, nil
}

func (s *session) Context() context.Context { return *s.ctx.Load() }

func (s *session) SetContextValue(key, val any) {
	ctx := context.WithValue(s.Context(), key, val)
	s.ctx.Store(&ctx)
}

func (s *session) Done() <-chan struct{} { return s.done }

func (s *session) MaxMessageSize() uint32 { return s.maxSize }

func (s *session) RemoteAddr() net.Addr { return s.raddr }

func (s *session) LocalAddr() net.Addr { return s.current().LocalAddr() }

func (s *session) NetConn() net.Conn { return s.current() }

func (s *session) current() net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn
}

func (s *session) AddOnClose(f udpClient.EventFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onClose = append(s.onClose, f)
}

// Close ends the association: Run returns and the close hooks run.
func (s *session) Close() error {
	s.cancel()
	err := s.current().Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// WriteMessage sends one CoAP message, unless the loss drops it; an
// answer to the server (an ACK) waits for the configured delay first, in
// the background, so that nothing else waits with it.
func (s *session) WriteMessage(req *pool.Message) error {
	data, err := req.MarshalWithEncoder(coder.DefaultCoder)
	if err != nil {
		return fmt.Errorf("cannot marshal: %w", err)
	}
	if s.faults.drop() {
		s.faults.droppedOut.Add(1)
		return nil
	}
	if d := time.Duration(s.faults.delay.Load()); d > 0 && req.Type() == message.Acknowledgement {
		data := bytes.Clone(data) // the message's buffer is reused after we return
		time.AfterFunc(d, func() {
			if s.Context().Err() == nil {
				if err := s.write(data); err != nil {
					s.errs(err)
				}
			}
		})
		return nil
	}
	return s.write(data)
}

func (s *session) write(data []byte) error {
	conn := s.current()
	_, err := conn.Write(data)
	if err != nil && s.current() != conn {
		_, err = s.current().Write(data) // swapped by Rebind meanwhile
	}
	if err != nil && isRefused(err) {
		return nil // the server's port is closed: like a datagram lost
	}
	return err
}

func (s *session) WriteMulticastMessage(*pool.Message, *net.UDPAddr, ...coapNet.MulticastOption) error {
	return errors.New("client: multicast is not supported")
}

// Run reads datagrams until Close, handing each to go-coap.
func (s *session) Run(cc *udpClient.Conn) error {
	defer func() {
		s.mu.Lock()
		hooks := s.onClose
		s.onClose = nil
		s.mu.Unlock()
		for _, f := range hooks {
			f()
		}
		close(s.done)
	}()
	buf := make([]byte, 1500)
	for {
		conn := s.current()
		n, err := conn.Read(buf)
		if s.Context().Err() != nil {
			return nil
		}
		if err != nil {
			if s.current() != conn || isRefused(err) {
				continue // rebound, or an ICMP port unreachable from a server not up yet
			}
			if s.dtls != nil && s.awaitRenew(conn) {
				continue // the server ended the DTLS session; the next Register opens one
			}
			s.cancel()
			return err
		}
		if s.faults.drop() {
			s.faults.droppedIn.Add(1)
			continue
		}
		if err := cc.Process(nil, buf[:n]); err != nil {
			s.errs(fmt.Errorf("client: datagram from %s ignored: %w", s.raddr, err))
		}
	}
}

// rebind replaces the socket with a new one on another local port.
func (s *session) rebind() (net.Addr, error) {
	s.mu.Lock()
	rebinder := s.rebinder
	s.mu.Unlock()
	if rebinder != nil {
		return rebinder()
	}
	var laddr *net.UDPAddr
	if s.laddr != nil {
		laddr = &net.UDPAddr{IP: s.laddr.IP, Zone: s.laddr.Zone}
	}
	s.mu.Lock()
	old := s.conn
	s.mu.Unlock()
	conn, err := net.DialUDP("udp", laddr, s.raddr)
	if err != nil {
		return nil, fmt.Errorf("client: rebind: %w", err)
	}
	s.mu.Lock()
	s.conn = conn
	s.mu.Unlock()
	_ = old.Close() // wakes Run, which moves to the new socket
	return conn.LocalAddr(), nil
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// runners are the periodic runners shared by the clients of a process, by
// tick: each checks its clients' retransmissions and expirations.
var runners sync.Map // time.Duration -> periodic.Func

func runner(tick time.Duration) periodic.Func {
	if r, ok := runners.Load(tick); ok {
		return r.(periodic.Func)
	}
	r, _ := runners.LoadOrStore(tick, periodic.New(make(chan struct{}), tick))
	return r.(periodic.Func)
}

// dialCoAP builds go-coap's association over s.
func dialCoAP(s *session, cfg Config, handler udpClient.HandlerFunc, monitor udpClient.RequestMonitorFunc, errs func(error)) *udpClient.Conn {
	cc := udpClient.DefaultConfig
	cc.Handler = handler
	cc.Errors = func(err error) {
		if !coapNet.IsCancelOrCloseError(err) {
			errs(err)
		}
	}
	cc.MaxMessageSize = cfg.MaxMessageSize
	cc.TransmissionAcknowledgeTimeout = cfg.AckTimeout
	cc.TransmissionMaxRetransmit = cfg.MaxRetransmit
	cc.PeriodicRunner = runner(cfg.Tick)
	cc.BlockwiseEnable = true
	cc.BlockwiseSZX = blockwise.SZX1024
	errors := cc.Errors
	conn := udpClient.NewConnWithOpts(s, &cc,
		udpClient.WithBlockWise(func(c *udpClient.Conn) *blockwise.BlockWise[*udpClient.Conn] {
			return blockwise.New(c, cc.BlockwiseTransferTimeout, errors, func(token message.Token) (*pool.Message, bool) {
				return c.GetObservationRequest(token)
			})
		}),
		udpClient.WithInactivityMonitor(inactivity.NewNilMonitor[*udpClient.Conn]()),
		udpClient.WithRequestMonitor(monitor),
	)
	cc.PeriodicRunner(func(now time.Time) bool {
		conn.CheckExpirations(now)
		return conn.Context().Err() == nil
	})
	go func() {
		if err := conn.Run(); err != nil {
			cc.Errors(err)
		}
	}()
	return conn
}

// handlerFunc is go-coap's request handler type for the client's
// association.
type handlerFunc = func(w *responsewriter.ResponseWriter[*udpClient.Conn], r *pool.Message)
