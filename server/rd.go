package server

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/linkformat"
)

// storeTimeout bounds the Store calls made while answering a device.
const storeTimeout = 5 * time.Second

// answer sets a response with an optional diagnostic payload (RFC 7252
// §5.5.2: no Content-Format).
func (s *Server) answer(w mux.ResponseWriter, code codes.Code, diag string, opts ...message.Option) {
	if err := w.SetResponse(code, message.TextPlain, nil, opts...); err != nil {
		s.log.Debug("coap: cannot set response", "err", err)
		return
	}
	if diag != "" {
		w.Message().SetBody(bytes.NewReader([]byte(diag)))
	}
}

func connOf(w mux.ResponseWriter) *udpClient.Conn {
	cc, _ := w.Conn().(*udpClient.Conn)
	return cc
}

// serveRD handles /rd: Register (POST).
func (s *Server) serveRD(w mux.ResponseWriter, r *mux.Message) {
	if r.Code() != codes.POST {
		s.answer(w, codes.MethodNotAllowed, "only POST (Register) is allowed on /rd")
		return
	}
	s.register(w, r)
}

// serveRDID handles /rd/{id}: Update (POST) and De-register (DELETE).
func (s *Server) serveRDID(w mux.ResponseWriter, r *mux.Message) {
	id := r.RouteParams.Vars["id"]
	switch r.Code() {
	case codes.POST:
		s.update(w, r, id)
	case codes.DELETE:
		s.deregister(w, r, id)
	default:
		s.answer(w, codes.MethodNotAllowed, "only POST (Update) and DELETE (De-register) are allowed on /rd/{id}")
	}
}

// linkPayload reads a Register or Update payload, which must be
// link-format when it says what it is.
func linkPayload(r *mux.Message) (*linkformat.Registration, bool, error) {
	if cf, err := r.ContentFormat(); err == nil && cf != message.AppLinkFormat {
		return nil, false, fmt.Errorf("the object list must be link-format (40), not content format %d", cf)
	}
	body, err := r.ReadBody()
	if err != nil {
		return nil, false, fmt.Errorf("cannot read the payload: %v", err)
	}
	if len(body) == 0 {
		return nil, false, nil
	}
	lr, err := linkformat.ParseRegistration(body)
	if err != nil {
		return nil, false, err
	}
	return lr, true, nil
}

// supported reports whether the server accepts LwM2M version v.
func (s *Server) supported(v string) bool {
	pv, err := objects.ParseVersion(v)
	if err != nil {
		return false
	}
	for _, sv := range s.versions {
		if sv == pv {
			return true
		}
	}
	return false
}

// register handles a Register (LwM2M Core 1.1 §6.2.1; Transport 1.1,
// "Registration Interface"): 2.01 Created with Location-Path rd/{id}.
func (s *Server) register(w mux.ResponseWriter, r *mux.Message) {
	cc := connOf(w)
	addr := addrPort(cc.RemoteAddr())
	query, _ := r.Queries()
	p, err := parseRegParams(query, true)
	if err != nil {
		s.log.Info("register refused: bad query", "peer", addr.String(), "err", err)
		s.answer(w, codes.BadRequest, err.Error())
		return
	}
	if err := s.authorize(cc, p.endpoint, false); err != nil {
		s.forbid(w, "register", p.endpoint, addr, err)
		return
	}
	if !p.hasVersion {
		p.version = "1.0" // LwM2M 1.0 §5.3.1: the lwm2m parameter defaults to 1.0
	}
	if !s.supported(p.version) {
		// LwM2M Core 1.1 §6.2.1: a server that does not support the
		// client's LwM2M version answers 4.12 Precondition Failed, and the
		// client may retry with another version.
		s.log.Info("register refused: unsupported LwM2M version", "ep", p.endpoint, "peer", addr.String(),
			"lwm2m", p.version, "supported", s.cfg.Versions)
		s.answer(w, codes.PreconditionFailed, fmt.Sprintf("LwM2M version %s is not supported; this server supports %s",
			p.version, strings.Join(s.cfg.Versions, ", ")))
		return
	}
	if p.hasLT && p.lifetime == 0 && objects.CompareVersions(p.version, "1.2") < 0 {
		s.answer(w, codes.BadRequest, "lifetime 0 (no expiry) needs LwM2M 1.2")
		return
	}
	lr, _, err := linkPayload(r)
	if err != nil {
		s.log.Info("register refused: bad object list", "ep", p.endpoint, "peer", addr.String(), "err", err)
		s.answer(w, codes.BadRequest, err.Error())
		return
	}
	if lr == nil {
		lr = &linkformat.Registration{Root: "/"}
	}
	id, err := newRegistrationID()
	if err != nil {
		s.log.Error("register: no registration ID", "err", err)
		s.answer(w, codes.InternalServerError, "")
		return
	}
	now := time.Now()
	reg := &Registration{
		ID:           id,
		Endpoint:     p.endpoint,
		Addr:         addr,
		Lifetime:     DefaultLifetime,
		Binding:      "U",
		QueueMode:    p.queue,
		SMSNumber:    p.sms,
		Version:      p.version,
		Root:         lr.Root,
		Formats:      lr.Formats,
		Params:       p.other,
		RegisteredAt: now,
		UpdatedAt:    now,
	}
	if p.hasLT {
		reg.Lifetime = p.lifetime
	}
	if p.hasBinding {
		reg.Binding = p.binding
	}
	reg.Objects = announced(lr.Objects)
	reg.ObjectVersions = objectVersions(s.cfg.Models, reg.Version, reg.Objects)

	prev, err := s.putRegistration(reg, cc)
	if err != nil {
		s.log.Error("register: store", "ep", reg.Endpoint, "err", err)
		s.answer(w, codes.InternalServerError, "")
		return
	}
	s.answer(w, codes.Created, "",
		message.Option{ID: message.LocationPath, Value: []byte("rd")},
		message.Option{ID: message.LocationPath, Value: []byte(id)})
	s.log.Info("registered", "ep", reg.Endpoint, "id", id, "peer", addr.String(), "lwm2m", reg.Version,
		"lt", int64(reg.Lifetime/time.Second), "b", reg.Binding, "objects", len(reg.Objects), "replaced", prev != nil)
	e := Event{Kind: EventRegistered, Endpoint: reg.Endpoint, RegistrationID: id, Registration: reg, Time: now}
	if prev != nil {
		e.Previous = prev
	}
	s.events.publish(e)
	s.queueRegistered(reg)
}

// putRegistration stores a new registration, replacing the endpoint's
// previous one (whose observations are dropped), and returns the previous
// one.
func (s *Server) putRegistration(reg *Registration, cc *udpClient.Conn) (*Registration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	l := s.regLock(reg.Endpoint)
	l.Lock()
	defer l.Unlock()
	if err := s.store.Put(ctx, reg); err != nil {
		return nil, err
	}
	sess := &session{reg: reg, cc: cc, secure: s.peerOf(cc) != nil}
	s.mu.Lock()
	old := s.byEP[reg.Endpoint]
	if old != nil {
		s.unlinkLocked(old)
	}
	s.byEP[reg.Endpoint], s.byID[reg.ID], s.byAddr[reg.Addr] = sess, sess, sess
	s.mu.Unlock()
	var prev *Registration
	if old != nil {
		prev = old.reg
		s.stopLocked(old)
	}
	s.armLocked(sess, reg)
	s.bind(cc, reg)
	return prev, nil
}

// unlinkLocked removes sess from the maps; s.mu is held.
func (s *Server) unlinkLocked(sess *session) {
	if s.byEP[sess.reg.Endpoint] == sess {
		delete(s.byEP, sess.reg.Endpoint)
	}
	if s.byID[sess.reg.ID] == sess {
		delete(s.byID, sess.reg.ID)
	}
	if s.byAddr[sess.reg.Addr] == sess {
		delete(s.byAddr, sess.reg.Addr)
	}
}

// stopLocked ends a session that was unlinked: its timer, its
// observations, and its association's registration-long idle time. The
// endpoint's registration lock is held.
func (s *Server) stopLocked(sess *session) {
	if sess.timer != nil {
		sess.timer.Stop()
	}
	s.dropObservations(sess)
	s.mu.RLock()
	cc := sess.cc
	current := s.byAddr[sess.reg.Addr]
	s.mu.RUnlock()
	if current == nil {
		s.bind(cc, nil)
	}
}

// armLocked starts or restarts the expiry timer of sess; the endpoint's
// registration lock is held.
func (s *Server) armLocked(sess *session, reg *Registration) {
	exp := reg.ExpiresAt(s.cfg.LifetimeGrace)
	if exp.IsZero() {
		if sess.timer != nil {
			sess.timer.Stop()
			sess.timer = nil
		}
		return
	}
	d := time.Until(exp)
	if sess.timer == nil {
		sess.timer = time.AfterFunc(d, func() { s.expire(sess) })
		return
	}
	sess.timer.Reset(d)
}

// expire ends a registration whose lifetime passed (LwM2M Core 1.1
// §6.2.2: the server removes a registration not updated within its
// lifetime).
func (s *Server) expire(sess *session) {
	if s.closed.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	s.mu.RLock()
	l := s.regLock(sess.reg.Endpoint)
	s.mu.RUnlock()
	l.Lock()
	s.mu.RLock()
	reg := sess.reg
	current := s.byID[reg.ID] == sess
	s.mu.RUnlock()
	if !current {
		l.Unlock()
		return
	}
	if exp := reg.ExpiresAt(s.cfg.LifetimeGrace); exp.IsZero() || time.Now().Before(exp) {
		s.armLocked(sess, reg) // updated while the timer fired
		l.Unlock()
		return
	}
	if err := s.store.Delete(ctx, reg.ID); err != nil {
		s.log.Error("expire: store", "ep", reg.Endpoint, "err", err)
		sess.timer.Reset(time.Second) // try again
		l.Unlock()
		return
	}
	s.mu.Lock()
	s.unlinkLocked(sess)
	s.mu.Unlock()
	s.stopLocked(sess)
	l.Unlock()
	s.log.Info("registration expired", "ep", reg.Endpoint, "id", reg.ID, "lt", int64(reg.Lifetime/time.Second))
	s.events.publish(Event{Kind: EventExpired, Endpoint: reg.Endpoint, RegistrationID: reg.ID, Registration: reg})
	s.queueForget(reg.Endpoint)
}

// update handles an Update (LwM2M Core 1.1 §6.2.2): 2.04 Changed, 4.04
// for an unknown registration ID.
func (s *Server) update(w mux.ResponseWriter, r *mux.Message, id string) {
	cc := connOf(w)
	addr := addrPort(cc.RemoteAddr())
	query, _ := r.Queries()
	p, err := parseRegParams(query, false)
	if err != nil {
		s.answer(w, codes.BadRequest, err.Error())
		return
	}
	lr, hasObjects, err := linkPayload(r)
	if err != nil {
		s.answer(w, codes.BadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()

	sess, l := s.lockByID(id)
	if sess == nil {
		s.answer(w, codes.NotFound, "unknown registration")
		return
	}
	s.mu.RLock()
	old := sess.reg
	s.mu.RUnlock()
	if err := s.authorize(cc, old.Endpoint, sess.secure); err != nil {
		l.Unlock()
		s.forbid(w, "update", old.Endpoint, addr, err)
		return
	}
	if p.hasLT && p.lifetime == 0 && objects.CompareVersions(old.Version, "1.2") < 0 {
		l.Unlock()
		s.answer(w, codes.BadRequest, "lifetime 0 (no expiry) needs LwM2M 1.2")
		return
	}
	reg := old.clone()
	reg.Addr = addr
	reg.UpdatedAt = time.Now()
	if p.hasLT {
		reg.Lifetime = p.lifetime
	}
	if p.hasBinding {
		reg.Binding = p.binding
	}
	switch {
	case p.queue:
		reg.QueueMode = true
	case p.hasBinding && objects.CompareVersions(reg.Version, "1.1") < 0:
		// In 1.0 the queue mode is part of the binding ("UQ"), so a
		// binding without Q turns it off; from 1.1 on it is the separate
		// Q parameter of Register.
		reg.QueueMode = false
	}
	if p.hasSMS {
		reg.SMSNumber = p.sms
	}
	if p.other != nil {
		reg.Params = p.other
	}
	if hasObjects {
		reg.Root, reg.Formats = lr.Root, lr.Formats
		reg.Objects = announced(lr.Objects)
		reg.ObjectVersions = objectVersions(s.cfg.Models, reg.Version, reg.Objects)
	}
	if err := s.store.Put(ctx, reg); err != nil {
		l.Unlock()
		s.log.Error("update: store", "ep", reg.Endpoint, "err", err)
		s.answer(w, codes.InternalServerError, "")
		return
	}
	s.mu.Lock()
	oldCC := sess.cc
	if old.Addr != addr {
		if s.byAddr[old.Addr] == sess {
			delete(s.byAddr, old.Addr)
		}
		s.byAddr[addr] = sess
	}
	sess.reg, sess.cc = reg, cc
	s.mu.Unlock()
	if old.Addr != addr {
		s.obsMu.Lock()
		for _, o := range sess.obs {
			o.addr = addr
		}
		s.obsMu.Unlock()
		if oldCC != cc {
			s.bind(oldCC, nil)
		}
	}
	s.armLocked(sess, reg)
	s.bind(cc, reg)
	l.Unlock()

	s.answer(w, codes.Changed, "")
	s.log.Debug("updated", "ep", reg.Endpoint, "id", id, "peer", addr.String(), "moved", old.Addr != addr)
	s.events.publish(Event{Kind: EventUpdated, Endpoint: reg.Endpoint, RegistrationID: id, Registration: reg, Previous: old})
	s.queueRegistered(reg)
	s.reestablish(sess)
}

// deregister handles a De-register (LwM2M Core 1.1 §6.2.3): 2.02 Deleted,
// 4.04 for an unknown registration ID.
func (s *Server) deregister(w mux.ResponseWriter, r *mux.Message, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	sess, l := s.lockByID(id)
	if sess == nil {
		s.answer(w, codes.NotFound, "unknown registration")
		return
	}
	reg := sess.reg
	if err := s.authorize(connOf(w), reg.Endpoint, sess.secure); err != nil {
		l.Unlock()
		s.forbid(w, "deregister", reg.Endpoint, addrPort(connOf(w).RemoteAddr()), err)
		return
	}
	if err := s.store.Delete(ctx, id); err != nil {
		l.Unlock()
		s.log.Error("deregister: store", "ep", reg.Endpoint, "err", err)
		s.answer(w, codes.InternalServerError, "")
		return
	}
	s.mu.Lock()
	s.unlinkLocked(sess)
	s.mu.Unlock()
	s.stopLocked(sess)
	l.Unlock()
	s.answer(w, codes.Deleted, "")
	s.log.Info("deregistered", "ep", reg.Endpoint, "id", id)
	s.events.publish(Event{Kind: EventDeregistered, Endpoint: reg.Endpoint, RegistrationID: id, Registration: reg})
	s.queueForget(reg.Endpoint)
}

// lockByID finds the session of a registration ID and takes its
// endpoint's registration lock, checking that the session is still the
// current one once the lock is held. It returns a nil session (and holds
// nothing) for an unknown ID.
func (s *Server) lockByID(id string) (*session, *sync.Mutex) {
	s.mu.RLock()
	sess := s.byID[id]
	s.mu.RUnlock()
	if sess == nil {
		return nil, nil
	}
	l := s.regLock(sess.reg.Endpoint)
	l.Lock()
	s.mu.RLock()
	current := s.byID[id] == sess
	s.mu.RUnlock()
	if !current {
		l.Unlock()
		return nil, nil
	}
	return sess, l
}
