package server

// Observations that survive a restart of the server.
//
// RFC 7641 §3.6 and LwM2M Core 1.1 §6.4.2 leave an observation on the
// device until the server cancels it (Cancel Observation, or RST on a
// notification) or the registration ends; a restart of the server ends
// neither, so the device goes on notifying on the token it was given.
// The server keeps every observation the device accepted in
// Config.Observations (a registry.Observations) and, at Start, files the
// observations of the registrations it restores under their tokens again,
// so that those notifications are decoded against the stored paths and
// format and published, not answered with RST (which would cancel them).
//
// A restored observation that has not notified since the restart may be
// unknown to the device (it rebooted without registering again, or lost
// its state). The rule: at the device's next Update, the server re-issues
// the Observe (or Observe-Composite) of each such observation on its
// stored token. RFC 7641 §4.1 makes that harmless for a device that kept
// it (an Observe with the token of an existing entry replaces the entry,
// it does not add one), and it restores the observation on a device that
// lost it. The answer is published as a notification of the observation.
// An Update is the moment because the device is reachable then (a
// queue-mode device only then). An error answer, or one without Observe,
// ends the observation; a timeout leaves it for the next Update.

import (
	"context"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/registry"
)

// storeObservation keeps o, which the device has just accepted, in
// Config.Observations. A store failure is logged and the observation goes
// on in memory: the device is observing already, and refusing it now
// would leave the device notifying a token the server forgot.
func (s *Server) storeObservation(o *Observation) {
	st := s.cfg.Observations
	if st == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := st.Put(ctx, toStoredObservation(o)); err != nil {
		s.log.Error("observe: store observation", "ep", o.Endpoint, "token", o.Token, "err", err)
		return
	}
	s.obsMu.Lock()
	defer s.obsMu.Unlock()
	o.stored = true
	if s.obs[o.token] != o {
		// Cancelled, or its registration ended, while it was being
		// stored: remove it again.
		s.unstoreLocked(o)
	}
}

// unstoreLocked removes o from Config.Observations if it is there, in
// the background (it runs on the CoAP path: an error notification ends an
// observation). Server.obsMu is held.
func (s *Server) unstoreLocked(o *Observation) {
	if !o.stored || s.cfg.Observations == nil {
		return
	}
	o.stored = false
	st, ep, token := s.cfg.Observations, o.Endpoint, []byte(o.token)
	s.unstoring.run(func() {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		if err := st.Delete(ctx, ep, token); err != nil {
			s.log.Error("observation: remove from store", "ep", ep, "token", hex.EncodeToString(token), "err", err)
		}
	})
}

// dropStoredObservations removes every stored observation of an endpoint
// whose registration expired while the server was down.
func (s *Server) dropStoredObservations(ctx context.Context, ep string) error {
	if s.cfg.Observations == nil {
		return nil
	}
	if err := s.cfg.Observations.DeleteAll(ctx, ep); err != nil {
		return fmt.Errorf("server: restore observations: %s: %w", ep, err)
	}
	return nil
}

// restoreObservations files the stored observations of every restored
// registration, at Start, before the listeners serve, in one pass over
// the store (ListAll) rather than a List per registration. Observations
// of an earlier registration of the endpoint (left by a crash between a
// re-registration and their removal) are removed; those of an endpoint
// without a restored registration are left alone (an expired one's went
// with it in restore).
func (s *Server) restoreObservations(ctx context.Context) error {
	if s.cfg.Observations == nil {
		return nil
	}
	restored := 0
	err := s.cfg.Observations.ListAll(ctx, func(ro *registry.Observation) error {
		s.mu.RLock()
		sess := s.byEP[ro.Endpoint]
		s.mu.RUnlock()
		switch {
		case sess == nil:
			return nil
		case ro.RegistrationID != sess.reg.ID || len(ro.Paths) == 0:
			if err := s.cfg.Observations.Delete(ctx, ro.Endpoint, ro.Token); err != nil {
				return fmt.Errorf("%s: %w", ro.Endpoint, err)
			}
			return nil
		}
		s.fileRestored(fromStoredObservation(ro, sess))
		restored++
		return nil
	})
	if err != nil {
		return fmt.Errorf("server: restore observations: %w", err)
	}
	if restored > 0 {
		s.log.Info("observations restored", "count", restored)
	}
	return nil
}

// fileRestored files a restored observation under its token.
func (s *Server) fileRestored(o *Observation) {
	s.obsMu.Lock()
	defer s.obsMu.Unlock()
	if o.sess.obs == nil {
		o.sess.obs = make(map[string]*Observation)
	}
	s.obs[o.token], o.sess.obs[o.token] = o, o
}

// toStoredObservation is o as the registry keeps it.
func toStoredObservation(o *Observation) *registry.Observation {
	paths := o.Paths
	if !o.Composite {
		paths = []objects.Path{o.Path}
	}
	return &registry.Observation{
		Endpoint:       o.Endpoint,
		RegistrationID: o.RegistrationID,
		Token:          []byte(o.token),
		Paths:          append([]objects.Path(nil), paths...),
		Composite:      o.Composite,
		Format:         o.Format,
		Started:        o.Started,
	}
}

// fromStoredObservation rebuilds a stored observation of sess. Whether
// its Observe carried Accept is not stored: it did not exactly when the
// server left an LwM2M 1.0 device to choose the format of a single value
// (see acceptFormat), which was then assumed to be text/plain.
func fromStoredObservation(ro *registry.Observation, sess *session) *Observation {
	reg := sess.reg
	o := &Observation{
		Endpoint: ro.Endpoint, RegistrationID: ro.RegistrationID, Token: hex.EncodeToString(ro.Token),
		Composite: ro.Composite, Format: ro.Format, Started: ro.Started,
		token: string(ro.Token), sess: sess, addr: reg.Addr, accept: true,
		stored: true, restored: true,
	}
	if ro.Composite {
		o.Path, o.Paths = objects.RootPath, append([]objects.Path(nil), ro.Paths...)
	} else {
		o.Path = ro.Paths[0]
		o.accept = !(reg.is10() && o.Path.Len() >= 3 && o.Format == objects.FormatText)
	}
	return o
}

// reestablish re-issues, in the background, the Observe of every restored
// observation of sess that has not notified since the restart (see the
// rule at the top of this file). It is called after an Update was
// answered.
func (s *Server) reestablish(sess *session) {
	if s.cfg.Observations == nil {
		return
	}
	var todo []*Observation
	s.obsMu.RLock()
	for _, o := range sess.obs {
		o.mu.Lock()
		if o.restored && !o.reobserving && !o.cancelling {
			o.reobserving = true
			todo = append(todo, o)
		}
		o.mu.Unlock()
	}
	s.obsMu.RUnlock()
	if len(todo) == 0 {
		return
	}
	go func() {
		for _, o := range todo {
			err := s.reobserve(o)
			o.mu.Lock()
			o.reobserving = false
			o.mu.Unlock()
			if err != nil {
				s.log.Info("restored observation not re-established", "ep", o.Endpoint, "token", o.Token, "err", err)
			}
		}
	}()
}

// reobserve sends o's Observe again on its own token and publishes the
// answer as a notification of o.
func (s *Server) reobserve(o *Observation) error {
	if !s.hasObservation(o) {
		return nil // cancelled meanwhile
	}
	c, ctx, cancel, req, err := s.reobserveRequest(o)
	if err != nil {
		return err
	}
	defer cancel()
	resp, err := c.exchange(ctx, req)
	if err != nil {
		return c.end(err) // the device did not answer: next Update
	}
	defer c.cc.ReleaseMessage(resp)
	if err := c.check(resp); err != nil {
		s.removeObservation(o) // RFC 7641 §3.2: an error answer, no observation
		return c.end(err)
	}
	seq, seqErr := resp.Observe()
	if seqErr != nil {
		s.removeObservation(o)
		return c.end(fmt.Errorf("server: %s %s %s: %w", c.op, o.Endpoint, o.Path, ErrNotObserved))
	}
	now := time.Now()
	o.mu.Lock()
	o.seq, o.last, o.restored = seq, now, false
	o.mu.Unlock()
	e := s.notificationEvent(o, resp, seq, now)
	s.stats.notifications.Add(1)
	s.events.publish(e)
	return c.end(nil)
}

// reobserveRequest starts the call that re-issues o: a GET with Observe
// 0, or for an Observe-Composite a FETCH with Observe 0 and its paths.
func (s *Server) reobserveRequest(o *Observation) (*call, context.Context, context.CancelFunc, *pool.Message, error) {
	token := message.Token(o.token)
	if o.Composite {
		c, ctx, cancel, rc, err := s.beginComposite(context.Background(), "observe-composite", o.Endpoint, []Option{WithFormat(o.Format)})
		if err != nil {
			return nil, nil, nil, nil, err
		}
		req, err := c.observeCompositeRequest(ctx, rc, token, o.Paths, 0)
		if err != nil {
			cancel()
			return nil, nil, nil, nil, c.end(err)
		}
		return c, ctx, cancel, req, nil
	}
	var opts []Option
	if o.accept {
		opts = []Option{WithFormat(o.Format)}
	}
	c, ctx, cancel, err := s.begin(context.Background(), "observe", o.Endpoint, o.Path, opts)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	req, err := c.request(ctx, codes.GET, token)
	if err != nil {
		cancel()
		return nil, nil, nil, nil, c.end(err)
	}
	req.SetObserve(0)
	if o.accept {
		req.SetAccept(message.MediaType(o.Format))
	}
	return c, ctx, cancel, req, nil
}

// notificationEvent decodes a notification-like answer of o.
func (s *Server) notificationEvent(o *Observation, r *pool.Message, seq uint32, now time.Time) Event {
	e := Event{Kind: EventNotification, Endpoint: o.Endpoint, RegistrationID: o.RegistrationID,
		Path: o.Path, Token: o.Token, Observe: seq, Time: now, Format: o.Format}
	if mt, err := r.ContentFormat(); err == nil {
		e.Format = objects.Format(mt)
	}
	s.mu.RLock()
	reg := o.sess.reg
	s.mu.RUnlock()
	body, err := r.ReadBody()
	switch {
	case err == nil && o.Composite:
		e.Nodes, e.Records, err = decodeCompositeNotification(o.Paths, e.Format, body, s.Models(reg))
	case err == nil:
		e.Node, e.Records, err = decodeNotification(o.Path, e.Format, body, s.Models(reg))
	}
	if err != nil {
		e.Err = fmt.Errorf("server: notification %s %s: %w", o.Endpoint, o.Path, err)
	}
	return e
}

// endRead is end for a call that read values (Read, Read-Composite, the
// first answer of an Observe): its EventRequest carries them in Node or
// Nodes, so that subscribers (the last-value recorder) see them.
func (c *call) endRead(n objects.Node, nodes map[objects.Path]objects.Node, err error) error {
	c.answered(err)
	e := Event{Kind: EventRequest, Endpoint: c.ep, RegistrationID: c.regID(), Path: c.path,
		Op: c.op, Duration: time.Since(c.start), Err: err}
	if err == nil {
		e.Node, e.Nodes = n, nodes
	}
	c.s.events.publish(e)
	return err
}

// unstoreGroup runs the background removals from Config.Observations and
// lets Close wait for them; after close, a removal runs at once in the
// caller.
type unstoreGroup struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (g *unstoreGroup) run(f func()) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		f()
		return
	}
	g.wg.Add(1)
	g.mu.Unlock()
	go func() {
		defer g.wg.Done()
		f()
	}()
}

func (g *unstoreGroup) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}
