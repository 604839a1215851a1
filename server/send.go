package server

import (
	"fmt"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/content"
)

// serveDP handles /dp: the device's Send (LwM2M Core 1.1, Information
// Reporting Interface, "Send Operation"), a POST of records in a multi-path format (SenML JSON
// or CBOR, LwM2M JSON or CBOR). The device is known by its address, the
// source of its last Register or Update, or over DTLS by the endpoint its
// session authenticated (see peerSession).
func (s *Server) serveDP(w mux.ResponseWriter, r *mux.Message) {
	if r.Code() != codes.POST {
		s.answer(w, codes.MethodNotAllowed, "only POST (Send) is allowed on /dp")
		return
	}
	addr := addrPort(connOf(w).RemoteAddr())
	sess := s.peerSession(connOf(w))
	s.mu.RLock()
	var reg *Registration
	if sess != nil {
		reg = sess.reg
	}
	s.mu.RUnlock()
	if reg == nil {
		s.log.Info("send refused: peer not registered", "peer", addr.String())
		s.answer(w, codes.NotFound, "not registered")
		return
	}
	mt, err := r.ContentFormat()
	if err != nil {
		s.answer(w, codes.BadRequest, "Send needs a Content-Format")
		return
	}
	f := objects.Format(mt)
	rc, ok := content.RecordCodec(f)
	if !ok {
		s.answer(w, codes.UnsupportedMediaType, fmt.Sprintf("Send in content format %s is not supported", f))
		return
	}
	body, err := r.ReadBody()
	if err != nil {
		s.answer(w, codes.BadRequest, "cannot read the payload")
		return
	}
	recs, err := rc.DecodeRecords(body, s.Models(reg))
	if err != nil {
		s.log.Info("send refused: bad payload", "ep", reg.Endpoint, "err", err)
		s.answer(w, codes.BadRequest, err.Error())
		return
	}
	s.answer(w, codes.Changed, "")
	s.stats.sends.Add(1)
	if reg.QueueMode {
		s.wake(reg) // a Send is a sign of life (queue mode)
	}
	s.events.publish(Event{Kind: EventSend, Endpoint: reg.Endpoint, RegistrationID: reg.ID, Registration: reg,
		Format: f, Records: recs, Time: time.Now()})
}
