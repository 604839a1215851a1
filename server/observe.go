package server

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/net/observation"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/content"
)

// Observation is an observation a device accepted (LwM2M Core 1.0 §5.5.1).
// Its notifications arrive as EventNotification events with its Token. It
// ends with CancelObservation (active), ForgetObservation (passive), an
// error notification, or the end of its registration.
type Observation struct {
	Endpoint       string
	RegistrationID string
	Path           objects.Path // the root path for an Observe-Composite
	Token          string       // hex
	// Composite marks an Observe-Composite (LwM2M Core 1.1 §5.5.1);
	// Paths are the paths it observes, and its notifications carry a
	// node per path in Event.Nodes.
	Composite bool
	Paths     []objects.Path
	// Format is the Accept of the Observe request or, when the device was
	// left to choose (see Read), the format assumed for a notification
	// without a Content-Format.
	Format  objects.Format
	Started time.Time

	token string   // raw bytes
	sess  *session // the registration it belongs to
	addr  netip.AddrPort

	mu         sync.Mutex
	seq        uint32    // last Observe sequence number
	last       time.Time // when it arrived; zero before the first
	cancelling bool
	accept     bool // the Observe request carried Accept: its cancel does too

	// Persistence (observestore.go).
	stored      bool // guarded by Server.obsMu: it is in Config.Observations
	restored    bool // guarded by mu: restored at Start, no notification since
	reobserving bool // guarded by mu: its Observe is being re-issued
}

// Observe starts observing path (LwM2M Core 1.0 §5.5.1: GET with Observe
// 0) and returns the observation and the current value from the device's
// answer. Notifications are decoded with the device's models in the format
// they arrive in, and published as EventNotification.
func (s *Server) Observe(ctx context.Context, ep string, path objects.Path, opts ...Option) (*Observation, objects.Node, error) {
	if path.IsRoot() {
		return nil, nil, s.fail("observe", ep, path, "cannot observe the root path")
	}
	if res, held, err := s.holdIfSleeping(ctx, ep, Request{Op: OpObserve, Path: path}, opts); held {
		if res == nil {
			return nil, nil, err
		}
		return res.Observation, res.Node, err
	}
	c, ctx, cancel, err := s.begin(ctx, "observe", ep, path, opts)
	if err != nil {
		return nil, nil, err
	}
	defer cancel()
	token, err := message.GetToken()
	if err != nil {
		return nil, nil, c.end(err)
	}
	f, accept := c.acceptFormat()
	o := &Observation{
		Endpoint: ep, RegistrationID: c.reg.ID, Path: path, Token: hex.EncodeToString(token),
		Format: f, Started: time.Now(),
		token: string(token), sess: c.sess, addr: c.reg.Addr, accept: accept,
	}
	if !s.addObservation(o) {
		return nil, nil, c.end(fmt.Errorf("server: observe %s %s: %w", ep, path, ErrNotRegistered))
	}
	req, err := c.request(ctx, codes.GET, token)
	if err != nil {
		s.removeObservation(o)
		return nil, nil, c.end(err)
	}
	req.SetObserve(0)
	if accept {
		req.SetAccept(message.MediaType(f))
	}
	resp, err := c.exchange(ctx, req)
	if err != nil {
		s.removeObservation(o)
		return nil, nil, c.end(err)
	}
	defer c.cc.ReleaseMessage(resp)
	if err := c.check(resp); err != nil {
		s.removeObservation(o)
		return nil, nil, c.end(err)
	}
	seq, seqErr := resp.Observe()
	node, _, err := c.decode(resp, f)
	if seqErr != nil || err != nil {
		// Not observing, or a value that cannot be read: forget it, so
		// that a notification, if any comes, is answered with RST.
		s.removeObservation(o)
		if err == nil {
			err = fmt.Errorf("server: observe %s %s: %w", ep, path, ErrNotObserved)
		}
		return nil, node, c.end(err)
	}
	s.established(o, seq)
	return o, node, c.endRead(node, nil, nil)
}

// established records the device's acceptance of o: the sequence number
// of its first answer (unless a notification overtook it) and, in the
// store, the observation itself.
func (s *Server) established(o *Observation, seq uint32) {
	o.mu.Lock()
	if o.last.IsZero() {
		o.seq, o.last = seq, time.Now()
	}
	o.mu.Unlock()
	s.storeObservation(o)
}

// CancelObservation cancels o actively: a GET with Observe 1 on its token
// (LwM2M Core 1.0 §5.5.3, RFC 7641 §3.6). The observation is forgotten
// whatever the device answers.
func (s *Server) CancelObservation(ctx context.Context, o *Observation) error {
	o.mu.Lock()
	already := o.cancelling
	o.cancelling = true
	o.mu.Unlock()
	if already || !s.hasObservation(o) {
		return nil
	}
	if o.Composite {
		return s.cancelComposite(ctx, o)
	}
	c, ctx, cancel, err := s.begin(ctx, "cancel-observation", o.Endpoint, o.Path, []Option{WithFormat(o.Format)})
	if err != nil {
		s.removeObservation(o)
		return err
	}
	defer cancel()
	defer s.removeObservation(o)
	req, err := c.request(ctx, codes.GET, message.Token(o.token))
	if err != nil {
		return c.end(err)
	}
	req.SetObserve(1)
	if o.accept {
		req.SetAccept(message.MediaType(o.Format))
	}
	return c.end(c.roundTrip(ctx, req))
}

// ForgetObservation cancels o passively: the server forgets it, and
// answers the device's next notification with RST (RFC 7641 §3.6).
func (s *Server) ForgetObservation(o *Observation) { s.removeObservation(o) }

// Observations lists the observations of an endpoint.
func (s *Server) Observations(ep string) []*Observation {
	s.mu.RLock()
	sess := s.byEP[ep]
	s.mu.RUnlock()
	if sess == nil {
		return nil
	}
	s.obsMu.RLock()
	defer s.obsMu.RUnlock()
	out := make([]*Observation, 0, len(sess.obs))
	for _, o := range sess.obs {
		out = append(out, o)
	}
	return out
}

// addObservation files o under its token, if its registration is still
// current. Lock order: obsMu, then mu.
func (s *Server) addObservation(o *Observation) bool {
	s.obsMu.Lock()
	defer s.obsMu.Unlock()
	s.mu.RLock()
	current := s.byID[o.RegistrationID] == o.sess
	s.mu.RUnlock()
	if !current {
		return false
	}
	if o.sess.obs == nil {
		o.sess.obs = make(map[string]*Observation)
	}
	s.obs[o.token] = o
	o.sess.obs[o.token] = o
	return true
}

func (s *Server) hasObservation(o *Observation) bool {
	s.obsMu.RLock()
	defer s.obsMu.RUnlock()
	return s.obs[o.token] == o
}

func (s *Server) removeObservation(o *Observation) {
	s.obsMu.Lock()
	defer s.obsMu.Unlock()
	if s.obs[o.token] == o {
		delete(s.obs, o.token)
	}
	delete(o.sess.obs, o.token)
	s.unstoreLocked(o)
}

// dropObservations forgets every observation of a session that ended.
func (s *Server) dropObservations(sess *session) {
	s.obsMu.Lock()
	defer s.obsMu.Unlock()
	for tok, o := range sess.obs {
		if s.obs[tok] == o {
			delete(s.obs, tok)
		}
		s.unstoreLocked(o)
	}
	clear(sess.obs)
}

// handleResponse takes a response that matched no request in progress:
// a notification of an observation (the monitor already answered those of
// unknown observations with RST), or a late answer, which is dropped
// (go-coap acknowledges it when it is confirmable).
func (s *Server) handleResponse(cc *udpClient.Conn, r *pool.Message) {
	if r.Code() == codes.Empty {
		return
	}
	s.obsMu.RLock()
	o := s.obs[string(r.Token())]
	var addr netip.AddrPort
	if o != nil {
		addr = o.addr
	}
	s.obsMu.RUnlock()
	if o == nil || !s.fromDevice(o, addr, cc) {
		return
	}
	seq, seqErr := r.Observe()
	now := time.Now()
	o.mu.Lock()
	if o.cancelling {
		o.mu.Unlock()
		return
	}
	if seqErr == nil {
		// RFC 7641 §3.4: drop a notification older than the newest one.
		if !o.last.IsZero() && !observation.ValidSequenceNumber(o.seq, seq, o.last, now) {
			o.mu.Unlock()
			return
		}
		o.seq, o.last = seq, now
	}
	o.restored = false // the device kept it: no need to re-issue it
	o.mu.Unlock()

	e := Event{Kind: EventNotification, Endpoint: o.Endpoint, RegistrationID: o.RegistrationID,
		Path: o.Path, Token: o.Token, Observe: seq, Time: now}
	code := Code(r.Code())
	if code.Class() != 2 {
		// RFC 7641 §3.2: an error answer ends the observation.
		s.removeObservation(o)
		body, _ := r.ReadBody()
		e.Err = &CoAPError{Op: "notify", Endpoint: o.Endpoint, Path: o.Path, Code: code, Diagnostic: diagnostic(body)}
		s.events.publish(e)
		return
	}
	if seqErr != nil {
		// A 2.xx without Observe is the last one: the device stopped
		// observing (RFC 7641 §3.2).
		s.removeObservation(o)
	}
	s.mu.RLock()
	reg := o.sess.reg
	s.mu.RUnlock()
	if reg.QueueMode {
		s.wake(reg) // a notification is a sign of life (queue mode)
	}
	e.Format = o.Format
	if mt, err := r.ContentFormat(); err == nil {
		e.Format = objects.Format(mt)
	}
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
	s.stats.notifications.Add(1)
	s.events.publish(e)
}

// decodeNotification decodes a notification's node and its records. A
// multi-path format may carry several timestamped values of one path (a
// notification with history, LwM2M 1.2 hqmax): the records keep them all,
// and the node holds the newest of each.
func decodeNotification(path objects.Path, f objects.Format, body []byte, m objects.Models) (objects.Node, []objects.Record, error) {
	var recs []objects.Record
	var err error
	rc, _ := content.RecordCodec(f)
	switch rc := rc.(type) {
	case interface {
		DecodeRecordsAt(objects.Path, []byte, objects.Models) ([]objects.Record, error)
	}:
		recs, err = rc.DecodeRecordsAt(path, body, m)
	case objects.RecordCodec:
		recs, err = rc.DecodeRecords(body, m)
	}
	if err == nil && len(recs) > 0 {
		if n, err := newest(path, recs, m); err == nil {
			return n, recs, nil
		}
	}
	n, err := decodeNode(path, f, body, m)
	if err != nil {
		return nil, nil, err
	}
	return n, objects.Flatten(path, n), nil
}

// newest builds the node at path from the newest record of each path.
func newest(path objects.Path, recs []objects.Record, m objects.Models) (objects.Node, error) {
	latest := make(map[objects.Path]int, len(recs))
	order := make([]objects.Path, 0, len(recs))
	for i, r := range recs {
		j, ok := latest[r.Path]
		if !ok {
			order = append(order, r.Path)
		}
		if !ok || r.Time >= recs[j].Time {
			latest[r.Path] = i
		}
	}
	b := objects.NewBuilder(path, m)
	for _, p := range order {
		if err := b.Add(p, recs[latest[p]].Value); err != nil {
			return nil, err
		}
	}
	return b.Node()
}
