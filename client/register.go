package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/linkformat"
)

// command is a request to the registration loop.
type command struct {
	kind cmdKind
	done chan error // answered once the command is carried out
}

type cmdKind uint8

const (
	cmdUpdate       cmdKind = iota + 1 // send an Update now (Registration Update Trigger)
	cmdRebind                          // new local port, then Update
	cmdReboot                          // simulated reboot: forget observations, register again
	cmdFactoryReset                    // reboot with the objects' initial values
	cmdDisable                         // de-register for the Disable Timeout (Server object)
	cmdBootstrapped                    // a server-initiated bootstrap ended: register again
)

// errStopped ends the loop: Close was called.
var errStopped = errors.New("client: stopped")

// loopAction is what the loop does after a registration ends.
type loopAction uint8

const (
	actStop loopAction = iota
	actRegister
)

// run is the registration loop: register, keep the registration up to
// date, and register again when the server lost it.
func (c *Client) run() {
	defer close(c.done)
	first := true
	for {
		err := c.registerProcedure()
		if err != nil && !errors.Is(err, errStopped) {
			c.setState(StateFailed)
		}
		if first {
			c.first <- err
			first = false
		}
		if errors.Is(err, errStopped) {
			return
		}
		if err != nil {
			if !c.waitCommand() {
				return
			}
			continue
		}
		if c.maintain() == actStop {
			return
		}
	}
}

// waitCommand waits, after the registration procedure gave up, for Close
// (false) or a command that registers again (reboot, rebind, update).
func (c *Client) waitCommand() bool {
	for {
		select {
		case <-c.stop:
			return false
		case cmd := <-c.cmds:
			switch cmd.kind {
			case cmdReboot, cmdFactoryReset:
				c.reboot(cmd.kind == cmdFactoryReset)
				cmd.done <- nil
				return true
			case cmdRebind:
				_, err := c.sess.rebind()
				cmd.done <- err
				return true
			case cmdBootstrapped:
				cmd.done <- nil
				return true
			default:
				cmd.done <- ErrNotRegistered
			}
		}
	}
}

func (c *Client) setState(s State) {
	c.mu.Lock()
	c.state = s
	var ws []chan struct{}
	if s == StateRegistered {
		ws, c.waiters = c.waiters, nil
	}
	c.mu.Unlock()
	for _, w := range ws {
		close(w)
	}
}

// retryPolicy is Config.Retry completed by the Server object's resources
// 17-20 and the defaults of LwM2M Core 1.1 Appendix E.2.
func (c *Client) retryPolicy() RetryPolicy {
	p := c.cfg.Retry
	fromServer := func(res uint16) (int64, bool) {
		v, ok := c.serverValue(res)
		if !ok {
			return 0, false
		}
		if v.Type() == objects.TypeUnsigned {
			return int64(min(v.Uint(), 1<<31)), true
		}
		return v.Int(), v.Int() > 0
	}
	if p.Count == 0 {
		p.Count = DefaultRetryCount
		if n, ok := fromServer(17); ok && n > 0 {
			p.Count = int(n)
		}
	}
	if p.Timer == 0 {
		p.Timer = DefaultRetryTimer
		if n, ok := fromServer(18); ok && n > 0 {
			p.Timer = time.Duration(n) * time.Second
		}
	}
	if p.SequenceDelay == 0 {
		p.SequenceDelay = DefaultRetrySequenceDelay
		if n, ok := fromServer(19); ok && n > 0 {
			p.SequenceDelay = time.Duration(n) * time.Second
		}
	}
	if p.SequenceCount == 0 {
		p.SequenceCount = DefaultRetrySequenceCount
		if n, ok := fromServer(20); ok && n > 0 {
			p.SequenceCount = int(n)
		}
	}
	return p
}

// registerProcedure registers, retrying as LwM2M Core 1.1 §6.2.1.1
// ("Registration Procedure") says: Count attempts per communication
// sequence with an exponential back-off from Timer, SequenceCount
// sequences separated by SequenceDelay·2^(m-1).
func (c *Client) registerProcedure() error {
	c.setState(StateRegistering)
	pol := c.retryPolicy()
	for seq := 1; ; seq++ {
		var err error
		for attempt := 1; attempt <= pol.Count; attempt++ {
			if err = c.register(); err == nil {
				return nil
			}
			if c.closed.Load() {
				return errStopped
			}
			c.stats.registerFails.Add(1)
			if attempt == pol.Count {
				break
			}
			wait := backoff(pol.Timer, attempt-1)
			c.log.Info("register failed", "err", err, "attempt", attempt, "sequence", seq, "retry_in", wait)
			c.emit(Event{Kind: EventRegisterFailed, Err: err, Wait: wait})
			if !c.sleep(wait) {
				return errStopped
			}
		}
		if seq >= pol.SequenceCount {
			c.log.Warn("registration failed", "err", err, "attempts", pol.Count, "sequences", pol.SequenceCount)
			c.emit(Event{Kind: EventRegisterFailed, Err: err})
			return fmt.Errorf("%w after %d sequences of %d attempts: %w", ErrRegistrationFailed, pol.SequenceCount, pol.Count, err)
		}
		wait := backoff(pol.SequenceDelay, seq-1)
		c.log.Info("register failed", "err", err, "sequence", seq, "retry_in", wait)
		c.emit(Event{Kind: EventRegisterFailed, Err: err, Wait: wait})
		if !c.sleep(wait) {
			return errStopped
		}
	}
}

// backoff is d·2^n, saturating.
func backoff(d time.Duration, n int) time.Duration {
	for ; n > 0 && d < time.Duration(1)<<61; n-- {
		d *= 2
	}
	return d
}

// sleep waits d unless Close comes first (false).
func (c *Client) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.stop:
		return false
	}
}

// register sends one Register (LwM2M Core 1.1 §6.2.1, Transport §6.2)
// and records the registration of a 2.01 answer. A new registration drops
// every observation: the server forgets them too (Core 1.1 §6.2.1).
func (c *Client) register() error {
	if err := c.renewDTLS(); err != nil {
		return err
	}
	lt, b := c.lifetime(), c.binding()
	c.dropObservations()
	c.mu.Lock()
	c.listDirty = false
	c.mu.Unlock()
	q := []string{
		"ep=" + c.cfg.Endpoint,
		"lt=" + strconv.FormatInt(int64(lt/time.Second), 10),
		"lwm2m=" + c.cfg.Version,
	}
	switch {
	case c.cfg.Queue && c.cfg.Version == "1.0":
		q = append(q, "b="+b+"Q")
	case c.cfg.Queue:
		q = append(q, "b="+b, "Q")
	default:
		q = append(q, "b="+b)
	}
	resp, err := c.post("register", "/rd", q, c.registrationPayload())
	if err != nil {
		return err
	}
	defer c.cc.ReleaseMessage(resp)
	if resp.Code() != codes.Created {
		return answerError("register", resp)
	}
	loc, err := resp.Options().LocationPath()
	if err != nil || loc == "" || loc == "/" {
		return fmt.Errorf("client: register: 2.01 without Location-Path")
	}
	c.mu.Lock()
	c.location = loc
	c.sent = regParams{lifetime: lt, binding: b}
	c.updatedAt = time.Now()
	c.mu.Unlock()
	c.setState(StateRegistered)
	c.stats.registers.Add(1)
	c.log.Info("registered", "location", loc, "lt", int64(lt/time.Second), "lwm2m", c.cfg.Version)
	c.emit(Event{Kind: EventRegistered, Location: loc})
	return nil
}

// registrationPayload is the object list of Register and Update: each
// object with its version when not 1.0 and its instances, Security and
// OSCORE left out (Core 1.1 §6.2.1: they MUST NOT be announced), and
// from 1.1 on the content formats with ct on the root link.
func (c *Client) registrationPayload() []byte {
	r := &linkformat.Registration{Root: "/"}
	if c.cfg.Version != "1.0" {
		r.Formats = c.cfg.Formats
	}
	for _, id := range c.ids {
		if id == 0 || id == 21 {
			continue
		}
		o := c.objs[id]
		lo := linkformat.Object{ID: id, Version: o.def.Version, HasVersion: o.def.Version != "1.0"}
		lo.Instances = o.Instances()
		r.Objects = append(r.Objects, lo)
	}
	return linkformat.EncodeRegistration(r)
}

// maintain keeps the registration alive: an Update before the lifetime
// ends, and whenever the object list or the registration parameters
// change. It returns when the client must register again or stop.
func (c *Client) maintain() loopAction {
	for {
		t := time.NewTimer(c.updateDelay())
		select {
		case <-c.stop:
			t.Stop()
			c.deregister()
			return actStop
		case <-t.C:
			if c.update() != nil {
				return actRegister
			}
		case <-c.kick:
			t.Stop()
			if c.update() != nil {
				return actRegister
			}
		case cmd := <-c.cmds:
			t.Stop()
			if act, again := c.command(cmd); !again {
				return act
			}
		}
	}
}

// command carries out cmd while registered; again is false when the
// registration ended.
func (c *Client) command(cmd command) (loopAction, bool) {
	switch cmd.kind {
	case cmdUpdate:
		err := c.update()
		cmd.done <- err
		return actRegister, err == nil
	case cmdRebind:
		addr, err := c.sess.rebind()
		if err != nil {
			cmd.done <- err
			return actRegister, true
		}
		c.log.Info("rebound", "addr", addr.String())
		c.emit(Event{Kind: EventRebound, Addr: addr})
		err = c.update()
		cmd.done <- err
		return actRegister, err == nil
	case cmdReboot, cmdFactoryReset:
		cmd.done <- nil
		c.reboot(cmd.kind == cmdFactoryReset)
		return actRegister, false
	case cmdBootstrapped:
		cmd.done <- nil
		c.deregister()
		return actRegister, false
	case cmdDisable:
		cmd.done <- nil
		c.deregister()
		c.setState(StateDisabled)
		d := 86400 * time.Second
		if v, ok := c.serverValue(5); ok && v.Int() >= 0 {
			d = time.Duration(v.Int()) * time.Second
		}
		c.log.Info("disabled", "for", d)
		if !c.sleep(d) {
			return actStop, false
		}
		return actRegister, false
	}
	cmd.done <- fmt.Errorf("client: unknown command")
	return actRegister, true
}

// reboot simulates a restart: observations, attributes and (for a factory
// reset) every object value are lost, the device is away for RebootDelay
// and then registers anew.
func (c *Client) reboot(factory bool) {
	c.setState(StateRebooting)
	c.emit(Event{Kind: EventReboot})
	c.dropObservations()
	c.mu.Lock()
	clear(c.attrs)
	c.mu.Unlock()
	if factory {
		for _, id := range c.ids {
			c.objs[id].reset()
		}
	}
	c.sleep(c.cfg.RebootDelay)
}

// updateDelay is the time left until the next periodic Update: the
// lifetime minus a margin for the exchange itself, counted from the last
// Register or Update.
func (c *Client) updateDelay() time.Duration {
	lt := c.lifetime()
	margin := max(lt/10, min(c.exchangeTimeout()+time.Second, lt/2))
	c.mu.Lock()
	last := c.updatedAt
	c.mu.Unlock()
	return max(time.Until(last.Add(lt-margin)), 0)
}

// update sends an Update (LwM2M Core 1.1 §6.2.2) with the parameters that
// changed and, when the object list changed, the list. A failure means
// the registration is gone: 4.04 is the server's way of saying so, and a
// timeout leaves the client unsure, so it registers again either way.
func (c *Client) update() error {
	lt, b := c.lifetime(), c.binding()
	c.mu.Lock()
	loc, sent, dirty := c.location, c.sent, c.listDirty
	c.listDirty = false
	c.mu.Unlock()
	var q []string
	if lt != sent.lifetime {
		q = append(q, "lt="+strconv.FormatInt(int64(lt/time.Second), 10))
	}
	if b != sent.binding {
		if c.cfg.Queue && c.cfg.Version == "1.0" {
			q = append(q, "b="+b+"Q")
		} else {
			q = append(q, "b="+b)
		}
	}
	var payload []byte
	if dirty {
		payload = c.registrationPayload()
	}
	resp, err := c.post("update", loc, q, payload)
	if err == nil {
		defer c.cc.ReleaseMessage(resp)
		if resp.Code() != codes.Changed {
			err = answerError("update", resp)
		}
	}
	if err != nil {
		c.stats.updateFails.Add(1)
		c.log.Info("update failed", "err", err)
		c.emit(Event{Kind: EventUpdateFailed, Err: err})
		c.mu.Lock()
		c.listDirty = c.listDirty || dirty
		c.mu.Unlock()
		c.setState(StateRegistering)
		return err
	}
	c.mu.Lock()
	c.sent = regParams{lifetime: lt, binding: b}
	c.updatedAt = time.Now()
	c.mu.Unlock()
	c.stats.updates.Add(1)
	c.log.Debug("updated", "params", q, "objects", dirty)
	c.emit(Event{Kind: EventUpdated})
	return nil
}

// deregister sends a De-register (LwM2M Core 1.1 §6.2.3).
func (c *Client) deregister() {
	c.dropObservations()
	c.mu.Lock()
	loc, registered := c.location, c.state == StateRegistered
	c.state = StateRegistering
	c.mu.Unlock()
	if !registered {
		return
	}
	defer c.exchanging()()
	ctx, cancel := context.WithTimeout(context.Background(), c.exchangeTimeout())
	defer cancel()
	resp, err := c.cc.Delete(ctx, loc)
	if err != nil {
		c.log.Info("deregister failed", "err", err)
		return
	}
	defer c.cc.ReleaseMessage(resp)
	if resp.Code() != codes.Deleted {
		c.log.Info("deregister refused", "err", answerError("deregister", resp))
		return
	}
	c.log.Info("deregistered", "location", loc)
	c.emit(Event{Kind: EventDeregistered, Location: loc})
}

// post sends a confirmable POST with a link-format payload (none when
// payload is nil) and waits one exchange for the answer.
func (c *Client) post(op, path string, query []string, payload []byte) (*pool.Message, error) {
	defer c.exchanging()() // queue mode: Register and Update wake the client
	ctx, cancel := context.WithTimeout(context.Background(), c.exchangeTimeout())
	defer cancel()
	var body *bytes.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	var req *pool.Message
	var err error
	if body != nil {
		req, err = c.cc.NewPostRequest(ctx, path, message.AppLinkFormat, body)
	} else {
		req, err = c.cc.NewPostRequest(ctx, path, message.AppLinkFormat, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", op, err)
	}
	defer c.cc.ReleaseMessage(req)
	for _, q := range query {
		req.AddQuery(q)
	}
	resp, err := c.cc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", op, err)
	}
	return resp, nil
}

// answerError turns a server's error answer into a *CoAPError.
func answerError(op string, resp *pool.Message) error {
	body, _ := resp.ReadBody()
	e := &CoAPError{Op: op, Code: uint8(resp.Code())}
	if len(body) <= 200 && printable(body) {
		e.Diag = string(body)
	}
	return e
}

func printable(b []byte) bool {
	for _, ch := range b {
		if ch < 0x20 || ch > 0x7e {
			return false
		}
	}
	return true
}

// do hands cmd to the registration loop and waits for its result.
func (c *Client) do(ctx context.Context, kind cmdKind) error {
	if !c.started.Load() {
		return ErrNotRegistered
	}
	cmd := command{kind: kind, done: make(chan error, 1)}
	select {
	case c.cmds <- cmd:
	case <-c.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-cmd.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TriggerUpdate sends an Update now and returns its result.
func (c *Client) TriggerUpdate(ctx context.Context) error { return c.do(ctx, cmdUpdate) }

// Rebind moves the client to a new local UDP port, as a NAT rebinding
// does, keeping its registration and observations, and sends an Update
// from the new address so that the server follows (LwM2M Core 1.1
// §6.2.2). It returns the Update's result.
func (c *Client) Rebind(ctx context.Context) error { return c.do(ctx, cmdRebind) }

// Reboot simulates a device restart: the client forgets its observations
// and attributes, stays away for Config.RebootDelay and registers again.
func (c *Client) Reboot(ctx context.Context) error { return c.do(ctx, cmdReboot) }

// FactoryReset is Reboot with every object back to the values it was
// built with.
func (c *Client) FactoryReset(ctx context.Context) error { return c.do(ctx, cmdFactoryReset) }

// SetPacketLoss drops the given share (0 to 1) of datagrams in each
// direction, before go-coap sees them (incoming) or after it sent them
// (outgoing): go-coap's retransmissions recover what it can.
func (c *Client) SetPacketLoss(share float64) {
	share = max(0, min(share, 1))
	c.faults.loss.Store(math.Float64bits(share))
}

// SetAnswerDelay delays every answer to the server's requests by d.
func (c *Client) SetAnswerDelay(d time.Duration) {
	c.faults.delay.Store(int64(max(d, 0)))
}

// objectListChanged records that an instance was created or deleted and
// asks for an Update carrying the new list.
func (c *Client) objectListChanged() {
	c.mu.Lock()
	c.listDirty = true
	c.mu.Unlock()
	c.kickUpdate()
}

// kickUpdate asks the loop for an Update, without waiting.
func (c *Client) kickUpdate() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}
