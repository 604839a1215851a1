package client

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/content"
	"github.com/lwm2md/lwm2md/objects/linkformat"
)

// observation is one observation the server holds on the client (Core
// 1.1 §5.5.1, RFC 7641): the client notifies on the request's token, in
// the format of the request, as the notification attributes in force for
// the path say.
//
// Lock order: o.mu before c.mu and before the objects' locks; c.mu is
// never held while an observation's lock is taken.
type observation struct {
	token     string
	paths     []objects.Path // one; several for Observe-Composite
	composite bool
	format    objects.Format

	mu       sync.Mutex
	last     time.Time        // when the last notification (or the Observe answer) went out
	lastNode objects.Node     // what it carried (single path)
	lastRecs []objects.Record // what it carried (composite)
	lastNum  float64          // the numeric value it carried, for st
	hasNum   bool
	prevNum  float64 // the numeric value last evaluated, for crossing gt and lt
	prevBool bool    // the Boolean value last evaluated, for edge
	hasPrev  bool
	lastEval time.Time
	pending  bool // a change qualified: notify once pmin allows
	evalDue  bool // a change came during epmin: evaluate when it ends
	inflight bool // a confirmable notification waits for its ACK
	ended    bool
	timer    *time.Timer
}

// observe starts (or, for a known token, restarts) an observation whose
// first value, node or recs, goes out in the Observe answer, and returns
// the answer's sequence number.
func (c *Client) observe(token []byte, paths []objects.Path, f objects.Format, node objects.Node, recs []objects.Record) uint32 {
	o := &observation{token: string(token), paths: paths, composite: recs != nil || len(paths) > 1, format: f}
	now := time.Now()
	o.last, o.lastEval, o.lastNode, o.lastRecs = now, now, node, recs
	if v, ok := numberOf(node); ok {
		o.lastNum, o.hasNum, o.prevNum, o.hasPrev = v, true, v, true
	}
	if b, ok := boolOf(node); ok {
		o.prevBool, o.hasPrev = b, true
	}
	c.mu.Lock()
	old := c.obs[o.token]
	c.obs[o.token] = o
	c.mu.Unlock()
	if old != nil {
		old.stop()
	}
	o.mu.Lock()
	c.scheduleLocked(o, c.effective(o))
	o.mu.Unlock()
	return c.nextSeq()
}

func (c *Client) nextSeq() uint32 { return c.seq.Add(1) & 0xffffff }

// stop ends the observation's timer.
func (o *observation) stop() {
	o.mu.Lock()
	o.ended = true
	o.stopTimerLocked()
	o.mu.Unlock()
}

func (o *observation) stopTimerLocked() {
	if o.timer != nil {
		o.timer.Stop()
	}
}

// cancelObservation ends the observation of token (GET with Observe 1,
// an RST, an error).
func (c *Client) cancelObservation(token string) {
	c.mu.Lock()
	o := c.obs[token]
	delete(c.obs, token)
	c.mu.Unlock()
	if o != nil {
		o.stop()
		c.emit(Event{Kind: EventObservationEnded, Path: o.paths[0]})
	}
}

// dropObservations ends every observation (a new registration, a
// reboot): the server forgets them too.
func (c *Client) dropObservations() {
	c.mu.Lock()
	obs := make([]*observation, 0, len(c.obs))
	for _, o := range c.obs {
		obs = append(obs, o)
	}
	clear(c.obs)
	c.mu.Unlock()
	for _, o := range obs {
		o.stop()
	}
}

// onReset takes an RST: when it answers one of the last notifications,
// the server is not interested any more (RFC 7641 §3.6).
func (c *Client) onReset(mid int32) {
	c.mu.Lock()
	token, ok := c.mids.token(mid)
	c.mu.Unlock()
	if ok {
		c.cancelObservation(token)
	}
}

// observations lists the observations that watch p or something under or
// above it.
func (c *Client) observations(p objects.Path) []*observation {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*observation
	for _, o := range c.obs {
		for _, q := range o.paths {
			if q.HasPrefix(p) || p.HasPrefix(q) || q.IsRoot() {
				out = append(out, o)
				break
			}
		}
	}
	return out
}

// changed is how objects report a change at p: observations of p, of
// what holds it and of what it holds are evaluated; a change of the
// Server object may change the registration (Update) or the default
// periods.
func (c *Client) changed(p objects.Path) {
	if p.Object() == 1 && p.Len() >= 2 {
		c.serverChanged()
	}
	for _, o := range c.observations(p) {
		c.noteChange(o)
	}
}

// serverChanged sends an Update when the Server object's lifetime or
// binding no longer match what the server was told (Core 1.1 §6.2.2), and
// reschedules the observations, whose default periods may have changed.
func (c *Client) serverChanged() {
	lt, b := c.lifetime(), c.binding()
	c.mu.Lock()
	due := c.state == StateRegistered && (lt != c.sent.lifetime || b != c.sent.binding)
	c.mu.Unlock()
	if due {
		c.kickUpdate()
	}
	c.attributesChanged(objects.RootPath)
}

// attributesChanged reschedules the observations the attributes of p
// apply to.
func (c *Client) attributesChanged(p objects.Path) {
	for _, o := range c.observations(p) {
		o.mu.Lock()
		if !o.ended {
			c.scheduleLocked(o, c.effective(o))
		}
		o.mu.Unlock()
	}
}

// effective returns the notification attributes in force for o: the
// Server object's default periods (resources 2 and 3) overridden by the
// attributes of the object, the instance, the resource and the resource
// instance in turn (Core 1.1 §5.1.2: a lower level overrides). An
// Observe-Composite takes the defaults.
func (c *Client) effective(o *observation) linkformat.Attributes {
	var a linkformat.Attributes
	if v, ok := c.serverValue(2); ok && v.Int() >= 0 {
		a.Set |= linkformat.AttrPMin
		a.PMin = uint64(v.Int())
	}
	if v, ok := c.serverValue(3); ok && v.Int() > 0 {
		a.Set |= linkformat.AttrPMax
		a.PMax = uint64(v.Int())
	}
	if o.composite {
		return a
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return a.Merge(c.effectiveLocked(o.paths[0]))
}

// effectiveLocked merges the attributes written at each level of p; c.mu
// is held.
func (c *Client) effectiveLocked(p objects.Path) linkformat.Attributes {
	var a linkformat.Attributes
	for l := 1; l <= p.Len(); l++ {
		if x, ok := c.attrs[p.Truncate(l)]; ok {
			a = a.Merge(x)
		}
	}
	return a
}

func seconds(n uint64) time.Duration {
	if n > uint64(math.MaxInt64/int64(time.Second)) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(n) * time.Second
}

// noteChange evaluates o after a change under its path, and notifies at
// once when the change qualifies and pmin has passed.
func (c *Client) noteChange(o *observation) {
	o.mu.Lock()
	if o.ended {
		o.mu.Unlock()
		return
	}
	a := c.effective(o)
	now := time.Now()
	if a.Has(linkformat.AttrEPMin) && now.Before(o.lastEval.Add(seconds(a.EPMin))) {
		// epmin: the value is not evaluated more often than this (Core 1.1
		// §5.1.2); the change is looked at when the period ends.
		o.evalDue = true
		c.scheduleLocked(o, a)
		o.mu.Unlock()
		return
	}
	n := c.evaluateLocked(o, a, now)
	c.scheduleLocked(o, a)
	o.mu.Unlock()
	if n != nil {
		c.sendNotification(o, n)
	}
}

// fire runs when o's timer expires: the end of epmin or pmin after a
// change, pmax, or epmax.
func (c *Client) fire(o *observation) {
	o.mu.Lock()
	if o.ended {
		o.mu.Unlock()
		return
	}
	a := c.effective(o)
	now := time.Now()
	var n *note
	if o.evalDue && !now.Before(o.lastEval.Add(seconds(a.EPMin))) {
		o.evalDue = false
		n = c.evaluateLocked(o, a, now)
	}
	if n == nil && a.Has(linkformat.AttrEPMax) && a.EPMax > 0 && !now.Before(o.lastEval.Add(seconds(a.EPMax))) {
		n = c.evaluateLocked(o, a, now)
	}
	if n == nil && !o.inflight {
		pmaxDue := hasPMax(a) && !now.Before(o.last.Add(seconds(a.PMax)))
		if (o.pending && !now.Before(o.last.Add(pmin(a)))) || pmaxDue {
			n = c.buildLocked(o, now)
		}
	}
	c.scheduleLocked(o, a)
	o.mu.Unlock()
	if n != nil {
		c.sendNotification(o, n)
	}
}

func pmin(a linkformat.Attributes) time.Duration {
	if a.Has(linkformat.AttrPMin) {
		return seconds(a.PMin)
	}
	return 0
}

// hasPMax reports whether a sets a maximum period: pmax > 0 and not
// below pmin (Core 1.1 §5.1.2: a pmax smaller than pmin is ignored).
func hasPMax(a linkformat.Attributes) bool {
	return a.Has(linkformat.AttrPMax) && a.PMax > 0 && (!a.Has(linkformat.AttrPMin) || a.PMax >= a.PMin)
}

// scheduleLocked arms o's timer for its next deadline; o.mu is held.
func (c *Client) scheduleLocked(o *observation, a linkformat.Attributes) {
	if o.inflight {
		// A confirmable notification waits for its ACK; its end
		// reschedules (RFC 7641 §4.5.2: one at a time).
		o.stopTimerLocked()
		return
	}
	var next time.Time
	consider := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if o.pending {
		consider(o.last.Add(pmin(a)))
	}
	if hasPMax(a) {
		consider(o.last.Add(seconds(a.PMax)))
	}
	if o.evalDue {
		consider(o.lastEval.Add(seconds(a.EPMin)))
	}
	if a.Has(linkformat.AttrEPMax) && a.EPMax > 0 {
		consider(o.lastEval.Add(seconds(a.EPMax)))
	}
	if next.IsZero() {
		o.stopTimerLocked()
		return
	}
	d := max(time.Until(next), 0)
	if o.timer == nil {
		o.timer = time.AfterFunc(d, func() { c.fire(o) })
		return
	}
	o.timer.Reset(d)
}

// evaluateLocked reads o's value and decides whether it qualifies for a
// notification (Core 1.1 §5.1.2, "<NOTIFICATION> Class Attributes"):
// with gt or lt, when the value crossed the threshold either way since
// the last evaluation; with st, when it moved by st or more from the value
// last notified; with edge, on the rising (1) or falling (0) edge of a
// Boolean; with none of them, when anything changed. A qualifying change
// is notified now if pmin allows, which evaluateLocked returns; a value
// that can no longer be read is notified at once, as the error that ends
// the observation.
func (c *Client) evaluateLocked(o *observation, a linkformat.Attributes, now time.Time) *note {
	o.lastEval = now
	if o.composite {
		recs, err := c.readComposite(o.paths)
		if err != nil || !equalRecords(recs, o.lastRecs) {
			o.pending = true
		}
	} else {
		node, err := c.readNode(o.paths[0])
		if err != nil {
			return c.buildLocked(o, now)
		}
		if c.qualifiesLocked(o, a, node) {
			o.pending = true
		}
	}
	if o.pending && !o.inflight && !now.Before(o.last.Add(pmin(a))) {
		return c.buildLocked(o, now)
	}
	return nil
}

// qualifiesLocked applies the change conditions to node.
func (c *Client) qualifiesLocked(o *observation, a linkformat.Attributes, node objects.Node) bool {
	conditional := false
	hit := false
	if v, ok := numberOf(node); ok {
		for _, t := range []struct {
			x   linkformat.Attr
			thr float64
		}{{linkformat.AttrGT, a.GT}, {linkformat.AttrLT, a.LT}} {
			if a.Has(t.x) {
				conditional = true
				if o.hasPrev && (o.prevNum > t.thr) != (v > t.thr) {
					hit = true
				}
			}
		}
		if a.Has(linkformat.AttrST) {
			conditional = true
			if !o.hasNum || math.Abs(v-o.lastNum) >= a.ST {
				hit = true
			}
		}
		o.prevNum, o.hasPrev = v, true
	}
	if b, ok := boolOf(node); ok {
		if a.Has(linkformat.AttrEdge) {
			conditional = true
			if o.hasPrev && o.prevBool != b && b == a.Edge {
				hit = true
			}
		}
		o.prevBool, o.hasPrev = b, true
	}
	if conditional {
		return hit
	}
	return o.lastNode == nil || !objects.EqualNodes(node, o.lastNode)
}

// numberOf returns the value of a numeric single resource or resource
// instance.
func numberOf(n objects.Node) (float64, bool) {
	var v objects.Value
	switch n := n.(type) {
	case *objects.Resource:
		if n.Multiple {
			return 0, false
		}
		v = n.Value
	case *objects.ResourceInstance:
		v = n.Value
	default:
		return 0, false
	}
	switch v.Type() {
	case objects.TypeInteger:
		return float64(v.Int()), true
	case objects.TypeUnsigned:
		return float64(v.Uint()), true
	case objects.TypeFloat:
		return v.Float(), true
	}
	return 0, false
}

func boolOf(n objects.Node) (bool, bool) {
	switch n := n.(type) {
	case *objects.Resource:
		if !n.Multiple && n.Value.Type() == objects.TypeBoolean {
			return n.Value.Bool(), true
		}
	case *objects.ResourceInstance:
		if n.Value.Type() == objects.TypeBoolean {
			return n.Value.Bool(), true
		}
	}
	return false, false
}

func equalRecords(a, b []objects.Record) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Path != b[i].Path || !a[i].Value.Equal(b[i].Value) {
			return false
		}
	}
	return true
}

// note is one notification ready to go.
type note struct {
	token  string
	seq    uint32
	code   codes.Code
	format objects.Format
	body   []byte
	con    bool
	final  bool // an error: the observation ends with it
	path   objects.Path
}

// buildLocked reads o's value now and makes the notification that carries
// it, recording it as the last one sent.
func (c *Client) buildLocked(o *observation, now time.Time) *note {
	n := &note{token: o.token, code: codes.Content, format: o.format, con: c.confirmable(o), path: o.paths[0]}
	var err error
	if o.composite {
		var recs []objects.Record
		if recs, err = c.readComposite(o.paths); err == nil {
			rc, _ := content.RecordCodec(o.format)
			if n.body, err = rc.EncodeRecords(recs, c.models); err != nil {
				err = Status(codes.InternalServerError, "%v", err)
			}
			o.lastRecs = recs
		}
	} else {
		var node objects.Node
		if node, err = c.readNode(o.paths[0]); err == nil {
			n.body, err = c.encode(o.format, o.paths[0], node)
			o.lastNode = node
			if v, ok := numberOf(node); ok {
				o.lastNum, o.hasNum = v, true
			}
		}
	}
	if err != nil {
		var se *StatusError
		n.code, n.body, n.final = codes.InternalServerError, nil, true
		if errors.As(err, &se) {
			n.code = se.Code
		}
	}
	n.seq = c.nextSeq()
	o.last, o.pending = now, false
	return n
}

// confirmable decides the message type of o's notifications: the con
// attribute (LwM2M 1.2), else the Server object's Default Notification
// Mode (resource 26, 1.2), else Config.ConfirmableNotify.
func (c *Client) confirmable(o *observation) bool {
	if !o.composite {
		c.mu.Lock()
		a := c.effectiveLocked(o.paths[0])
		c.mu.Unlock()
		if a.Has(linkformat.AttrCon) {
			return a.Con
		}
	}
	if v, ok := c.serverValue(26); ok {
		return v.Int() == 1
	}
	return c.cfg.ConfirmableNotify
}

// sendNotification writes n, as its own message: past go-coap's
// block-wise layer, which would give it a new message ID and so lose the
// RST of a passive cancel. A confirmable one is retransmitted by the
// client itself (RFC 7252 §4.2: ACK_TIMEOUT times a random factor,
// doubling) in the background; when no ACK comes the server is gone or
// not interested and the observation ends (RFC 7641 §4.5), as it does on
// an RST.
func (c *Client) sendNotification(o *observation, n *note) {
	if c.cc == nil || c.sess == nil {
		return
	}
	c.active() // queue mode: a notification due wakes the client
	msg := c.cc.AcquireMessage(context.Background())
	msg.SetToken(message.Token(n.token))
	msg.SetCode(n.code)
	if !n.final {
		msg.SetObserve(n.seq)
	}
	if n.body != nil {
		msg.SetContentFormat(message.MediaType(n.format))
		msg.SetBody(bytes.NewReader(n.body))
	}
	mid := c.cc.GetMessageID()
	msg.SetMessageID(mid)
	c.mu.Lock()
	c.mids.add(mid, n.token)
	c.mu.Unlock()
	done := func(err error) {
		c.cc.ReleaseMessage(msg)
		if err != nil {
			c.stats.notifyFails.Add(1)
			c.log.Debug("notification not delivered", "path", n.path.String(), "err", err)
		} else {
			c.stats.notifications.Add(1)
			c.emit(Event{Kind: EventNotified, Path: n.path, Code: n.code, Confirmable: n.con})
		}
		if n.final || (err != nil && n.con) {
			c.endObservation(o, err)
		}
	}
	if !n.con {
		msg.SetType(message.NonConfirmable)
		done(c.sess.WriteMessage(msg))
		return
	}
	msg.SetType(message.Confirmable)
	o.mu.Lock()
	o.inflight = true
	o.mu.Unlock()
	end := c.exchanging() // queue mode: awake until the ACK
	go func() {
		err := c.confirm(msg)
		end()
		o.mu.Lock()
		o.inflight = false
		if !o.ended {
			c.scheduleLocked(o, c.effective(o))
		}
		o.mu.Unlock()
		done(err)
	}()
}

// endObservation forgets o after its last notification.
func (c *Client) endObservation(o *observation, err error) {
	c.mu.Lock()
	current := c.obs[o.token] == o
	if current {
		delete(c.obs, o.token)
	}
	c.mu.Unlock()
	o.stop()
	if current {
		c.emit(Event{Kind: EventObservationEnded, Path: o.paths[0], Err: err})
	}
}

// Errors of confirmable notifications.
var (
	errNoAck = errors.New("client: no acknowledgement")
	errReset = errors.New("client: reset by the server")
)

// confirm sends the confirmable msg until its ACK (or RST) comes back,
// which the monitor reports.
func (c *Client) confirm(msg *pool.Message) error {
	mid := msg.MessageID()
	ch := make(chan bool, 1)
	c.mu.Lock()
	if c.acks == nil {
		c.acks = make(map[int32]chan bool)
	}
	c.acks[mid] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.acks, mid)
		c.mu.Unlock()
	}()
	timeout := time.Duration(float64(c.cfg.AckTimeout) * (1 + rand.Float64()/2)) // ACK_RANDOM_FACTOR 1.5
	t := time.NewTimer(timeout)
	defer t.Stop()
	for attempt := uint32(0); ; attempt++ {
		if err := c.sess.WriteMessage(msg); err != nil {
			return err
		}
		select {
		case ack := <-ch:
			if !ack {
				return errReset
			}
			return nil
		case <-t.C:
			if attempt >= c.cfg.MaxRetransmit {
				return errNoAck
			}
			timeout *= 2
			t.Reset(timeout)
		case <-c.stop:
			return ErrClosed
		}
	}
}

// monitor sees every datagram before go-coap does: it takes the empty
// ACKs and RSTs that answer the client's notifications, which go-coap
// knows nothing of.
func (c *Client) monitor(_ *udpClient.Conn, r *pool.Message) (bool, error) {
	if c.heard() {
		return true, nil // queue mode: asleep, the client hears nothing
	}
	typ := r.Type()
	if (typ != message.Acknowledgement && typ != message.Reset) || r.Code() != codes.Empty {
		return false, nil
	}
	mid := r.MessageID()
	c.mu.Lock()
	ch := c.acks[mid]
	token, isNote := c.mids.token(mid)
	c.mu.Unlock()
	if ch != nil {
		select {
		case ch <- typ == message.Acknowledgement:
		default:
		}
	}
	if typ == message.Reset && isNote {
		go c.cancelObservation(token) // RFC 7641 §3.6: the server is not interested
	}
	return ch != nil || (typ == message.Reset && isNote), nil
}
