package server

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// HandshakeFailures counts the DTLS handshakes that did not end in a
// session, by reason.
type HandshakeFailures struct {
	// Credentials: the PSK identity or the certificate is bound to no
	// device, or the certificate mode came without a client certificate.
	Credentials uint64
	// Timeout: the handshake did not finish within HandshakeTimeout (a
	// wrong PSK key ends here too: pion drops the records it cannot
	// authenticate and the client's Finished never verifies).
	Timeout uint64
	// Cap: refused because MaxAssociations was reached.
	Cap uint64
	// Refused: the handshake finished but its credentials could not be
	// read back for the session (removed meanwhile, store error).
	Refused uint64
	// Other: any other failure (alerts, malformed records, cipher suites
	// in common with none).
	Other uint64
}

// handshakeCounters are the DTLS handshake counters of Stats.
type handshakeCounters struct {
	ok, credentials, timeout, capped, refused, other atomic.Uint64
}

func (h *handshakeCounters) failures() HandshakeFailures {
	return HandshakeFailures{
		Credentials: h.credentials.Load(),
		Timeout:     h.timeout.Load(),
		Cap:         h.capped.Load(),
		Refused:     h.refused.Load(),
		Other:       h.other.Load(),
	}
}

// handshakeFailed counts a failed handshake by its reason.
func (h *handshakeCounters) failed(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, ErrUnknownCredentials):
		h.credentials.Add(1)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		h.timeout.Add(1)
	default:
		h.other.Add(1)
	}
}

// dtlsError is go-coap's error callback of the DTLS server: the
// transport errors of the UDP one, plus the handshake failures, which
// go-coap v3.5.4 reports only here (dtls/server.serveConnection formats
// them "<addr>: handshake failed: <pion's error>").
func (s *Server) dtlsError(err error) {
	if strings.Contains(err.Error(), ": handshake failed: ") {
		s.stats.hs.failed(err)
	}
	s.transportError(err)
}

// countReceived counts a datagram the CoAP layer decoded, and a
// confirmable message that repeats the peer's previous one: with NSTART
// = 1 (RFC 7252 §4.7) a peer has one confirmable message outstanding, so
// a repeated message ID is its retransmission (§4.2), which go-coap then
// answers from its response cache. One atomic add per datagram; a swap
// more for a confirmable one.
func (s *Server) countReceived(cc *udpClient.Conn, r *pool.Message) {
	s.stats.received.Add(1)
	if r.Type() != message.Confirmable {
		return
	}
	if a := associationOf(cc); a != nil {
		// +1 so that the zero value matches no message ID.
		mid := uint32(uint16(r.MessageID())) + 1
		if a.lastCON.Swap(mid) == mid {
			s.stats.retransmitted.Add(1)
		}
	}
}
