package server

import (
	"bytes"
	"fmt"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/mux"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/content"
)

// serveDP handles /dp through go-coap: the device's Send (LwM2M Core
// 1.1, Information Reporting Interface, "Send Operation"), a POST of
// records in a multi-path format (SenML JSON or CBOR, LwM2M JSON or
// CBOR). Only what takeSend leaves comes here: Sends in blocks (Block1,
// which go-coap reassembles) and those of peers not registered. The
// device is known by its address, the source of its last Register or
// Update, or over DTLS by the endpoint its session authenticated (see
// peerSession).
func (s *Server) serveDP(w mux.ResponseWriter, r *mux.Message) {
	if r.Code() != codes.POST {
		s.answer(w, codes.MethodNotAllowed, "only POST (Send) is allowed on /dp")
		return
	}
	sess := s.peerSession(connOf(w))
	s.mu.RLock()
	var reg *Registration
	if sess != nil {
		reg = sess.reg
	}
	s.mu.RUnlock()
	if reg == nil {
		s.log.Info("send refused: peer not registered", "peer", addrPort(connOf(w).RemoteAddr()).String())
		s.answer(w, codes.NotFound, "not registered")
		return
	}
	cf, cfErr := r.ContentFormat()
	body, err := r.ReadBody()
	if err != nil {
		s.answer(w, codes.BadRequest, "cannot read the payload")
		return
	}
	code, diag := s.send(reg, cf, cfErr == nil, body)
	s.answer(w, code, diag)
}

// send decodes a Send's records and publishes them; it returns the
// answer for the device.
func (s *Server) send(reg *Registration, cf message.MediaType, hasCF bool, body []byte) (codes.Code, string) {
	if !hasCF {
		return codes.BadRequest, "Send needs a Content-Format"
	}
	f := objects.Format(cf)
	rc, ok := content.RecordCodec(f)
	if !ok {
		return codes.UnsupportedMediaType, fmt.Sprintf("Send in content format %s is not supported", f)
	}
	recs, err := rc.DecodeRecords(body, s.Models(reg))
	if err != nil {
		s.log.Info("send refused: bad payload", "ep", reg.Endpoint, "err", err)
		return codes.BadRequest, err.Error()
	}
	s.stats.sends.Add(1)
	if reg.QueueMode {
		s.wake(reg) // a Send is a sign of life (queue mode)
	}
	s.events.publish(Event{Kind: EventSend, Endpoint: reg.Endpoint, RegistrationID: reg.ID, Registration: reg,
		Format: f, Records: recs, Time: time.Now()})
	return codes.Changed, ""
}

// takeSend takes a registered device's Send from the monitor, past
// go-coap, and queues it to the ingest workers like a notification
// (ingest.go), where it is decoded, published and answered. It reports
// whether it did.
//
// Why: go-coap keeps its answer to every request for EXCHANGE_LIFETIME
// (247 s) and walks the peer's whole cache on every datagram (go-coap
// issue 586): a device sending once a second made each of its datagrams
// walk ~250 entries. A duplicate must still get the same answer (RFC
// 7252 §4.5); sendAnswers keeps the few the peer may repeat.
func (s *Server) takeSend(cc *udpClient.Conn, r *pool.Message, reg *Registration) bool {
	if r.Code() != codes.POST || !isSend(r.Options()) || r.HasOption(message.Block1) || r.HasOption(message.Block2) {
		return false
	}
	typ := r.Type()
	if typ != message.Confirmable && typ != message.NonConfirmable {
		return false
	}
	a := associationOf(cc)
	if a == nil {
		return false
	}
	log := a.sendLog()
	if ans, dup := log.seen(r.MessageID(), time.Now()); dup {
		if ans != nil && typ == message.Confirmable {
			s.writeSendAnswer(cc, r.MessageID(), typ, ans)
		}
		return true // a duplicate: answered again, or its answer is coming
	}
	if !s.ingest.enqueue(s, cc, r, reg.Endpoint) {
		log.forget(r.MessageID())
		return false
	}
	return true
}

// isSend reports whether a request's path is /dp.
func isSend(opts message.Options) bool {
	n := 0
	dp := false
	for _, o := range opts {
		if o.ID == message.URIPath {
			n++
			dp = string(o.Value) == "dp"
		}
	}
	return n == 1 && dp
}

// ingestSend runs a Send taken by takeSend on an ingest worker.
func (s *Server) ingestSend(cc *udpClient.Conn, r *pool.Message) {
	a := associationOf(cc)
	var ans *sendAnswer
	sess := s.peerSession(cc)
	s.mu.RLock()
	var reg *Registration
	if sess != nil {
		reg = sess.reg
	}
	s.mu.RUnlock()
	if reg == nil {
		// De-registered since the monitor took it.
		ans = &sendAnswer{code: codes.NotFound, diag: "not registered"}
	} else {
		cf, cfErr := r.ContentFormat()
		body, err := r.ReadBody()
		if err != nil {
			ans = &sendAnswer{code: codes.BadRequest, diag: "cannot read the payload"}
		} else {
			code, diag := s.send(reg, cf, cfErr == nil, body)
			ans = &sendAnswer{code: code, diag: diag}
		}
	}
	ans.token = append([]byte(nil), r.Token()...)
	if a != nil {
		a.sendLog().answered(r.MessageID(), ans)
	}
	s.writeSendAnswer(cc, r.MessageID(), r.Type(), ans)
}

// writeSendAnswer sends the answer to a Send: piggybacked in the ACK of
// a confirmable one, a non-confirmable message for a non-confirmable one
// (RFC 7252 §5.2.3).
func (s *Server) writeSendAnswer(cc *udpClient.Conn, mid int32, typ message.Type, ans *sendAnswer) {
	m := cc.AcquireMessage(cc.Context())
	defer cc.ReleaseMessage(m)
	m.SetCode(ans.code)
	m.SetToken(ans.token)
	if typ == message.Confirmable {
		m.SetType(message.Acknowledgement)
		m.SetMessageID(mid)
	} else {
		m.SetType(message.NonConfirmable)
		m.SetMessageID(cc.GetMessageID())
	}
	if ans.diag != "" {
		m.SetBody(bytes.NewReader([]byte(ans.diag))) // diagnostic payload, RFC 7252 §5.5.2
	}
	if err := cc.Session().WriteMessage(m); err != nil {
		s.transportError(fmt.Errorf("send answer to %s: %w", cc.RemoteAddr(), err))
	}
}

// sendAnswer is the answer given to a Send.
type sendAnswer struct {
	code  codes.Code
	token []byte
	diag  string
}

// sendAnswers are the message IDs of a peer's last Sends and their
// answers, for duplicates (RFC 7252 §4.5): a ring of sendRecent, each
// kept EXCHANGE_LIFETIME. With NSTART 1 (§4.7) a device has one Send in
// flight, and repeats only that one, so a few suffice; a device that
// reuses a message ID within EXCHANGE_LIFETIME after sendRecent other
// Sends gets a fresh answer, which for a Send (a POST of values, taken
// again) is harmless.
type sendAnswers struct {
	mu   sync.Mutex
	ring [sendRecent]sendEntry
	next int
}

const (
	sendRecent       = 8
	exchangeLifetime = 247 * time.Second // RFC 7252 §4.8.2
)

type sendEntry struct {
	mid int32       // +1, so that the zero value matches no message ID
	at  int64       // unix nanoseconds
	ans *sendAnswer // nil while the Send is being processed
}

// sendLog is the association's sendAnswers, made at its first Send: most
// devices never send one.
func (a *association) sendLog() *sendAnswers {
	if l := a.sends.Load(); l != nil {
		return l
	}
	a.sends.CompareAndSwap(nil, &sendAnswers{})
	return a.sends.Load()
}

// seen records a Send's message ID, or reports a duplicate with the
// answer it got (nil when it is still being processed).
func (a *sendAnswers) seen(mid int32, now time.Time) (*sendAnswer, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range a.ring {
		e := &a.ring[i]
		if e.mid == mid+1 && now.UnixNano()-e.at < int64(exchangeLifetime) {
			return e.ans, true
		}
	}
	a.ring[a.next] = sendEntry{mid: mid + 1, at: now.UnixNano()}
	a.next = (a.next + 1) % sendRecent
	return nil, false
}

// answered records the answer to a Send.
func (a *sendAnswers) answered(mid int32, ans *sendAnswer) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range a.ring {
		if a.ring[i].mid == mid+1 {
			a.ring[i].ans = ans
		}
	}
}

// forget drops a Send's record: it went to go-coap after all.
func (a *sendAnswers) forget(mid int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range a.ring {
		if a.ring[i].mid == mid+1 {
			a.ring[i] = sendEntry{}
		}
	}
}
