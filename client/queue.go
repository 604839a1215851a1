package client

import (
	"context"
	"sync/atomic"
	"time"
)

// Queue mode (LwM2M 1.0 §5.3.1 binding "UQ", 1.1+ the Q parameter of
// Register; Transport 1.1 "Queue Mode Operation"): after AwakeWindow
// without traffic the client sleeps, and while asleep it answers nothing
// (every datagram it receives is dropped before go-coap sees it, as a
// radio that is off would). It wakes after SleepPeriod, for its periodic
// Update, when it has a notification or a Send to make, or on Wake; it
// then sends an Update (or the notification or Send itself, which the
// server also takes as a sign of life), stays awake for AwakeWindow after
// its last message and sleeps again.

// DefaultAwakeWindow is how long a queue-mode client stays awake after
// its last message: CoAP's MAX_TRANSMIT_WAIT (RFC 7252 §4.8.2), the time
// a server may need to take a request to its end; the specification asks
// for at least ACK_TIMEOUT.
const DefaultAwakeWindow = 93 * time.Second

// queueState is the client's sleep state.
type queueState struct {
	asleep atomic.Bool
	last   atomic.Int64  // unix nanoseconds of the last message sent or received
	busy   atomic.Int32  // exchanges of the client's own in progress
	wake   chan struct{} // the client woke up (for the sleeper)
}

// Asleep reports whether a queue-mode client is sleeping.
func (c *Client) Asleep() bool { return c.q.asleep.Load() }

// active records traffic; a sleeping client wakes first (EventAwake), so
// that it can hear the answer to what it is about to send.
func (c *Client) active() {
	if !c.cfg.Queue {
		return
	}
	c.q.last.Store(time.Now().UnixNano())
	if c.q.asleep.CompareAndSwap(true, false) {
		c.log.Debug("awake")
		c.emit(Event{Kind: EventAwake})
		select {
		case c.q.wake <- struct{}{}:
		default:
		}
	}
}

// exchanging wakes the client for an exchange of its own (Register,
// Update, Send, a confirmable notification) and keeps it awake until the
// returned function is called, when the exchange ended: a client never
// falls asleep waiting for an answer.
func (c *Client) exchanging() func() {
	if !c.cfg.Queue {
		return func() {}
	}
	c.q.busy.Add(1)
	c.active()
	return func() {
		c.q.last.Store(time.Now().UnixNano())
		c.q.busy.Add(-1)
	}
}

// heard is the monitor's part: a datagram arrived. While asleep it is
// dropped (true).
func (c *Client) heard() bool {
	if !c.cfg.Queue {
		return false
	}
	if c.q.asleep.Load() {
		return true
	}
	c.q.last.Store(time.Now().UnixNano())
	return false
}

// Wake wakes a queue-mode client now and sends an Update, so that the
// server delivers what it queued; it returns the Update's result. On a
// client that is not in queue mode it only sends the Update.
func (c *Client) Wake(ctx context.Context) error {
	c.active()
	return c.TriggerUpdate(ctx)
}

// sleeper runs the sleep cycle of a queue-mode client until Close.
func (c *Client) sleeper() {
	for {
		if !c.awakePhase() {
			return
		}
		c.q.asleep.Store(true)
		c.log.Debug("sleeping")
		c.emit(Event{Kind: EventSleeping})
		if !c.sleepPhase() {
			return
		}
	}
}

// awakePhase waits until the client has been registered and silent for
// AwakeWindow; false when the client closes.
func (c *Client) awakePhase() bool {
	for {
		wait := c.cfg.AwakeWindow - time.Since(time.Unix(0, c.q.last.Load()))
		if wait <= 0 && c.State() == StateRegistered && c.q.busy.Load() == 0 {
			return true
		}
		if wait <= 0 {
			wait = c.cfg.AwakeWindow // registering or exchanging: not the time to sleep
		}
		t := time.NewTimer(wait)
		select {
		case <-c.stop:
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// sleepPhase sleeps until SleepPeriod ends (then it wakes and sends an
// Update) or something else woke the client; false when the client
// closes.
func (c *Client) sleepPhase() bool {
	var tc <-chan time.Time
	if c.cfg.SleepPeriod > 0 {
		t := time.NewTimer(c.cfg.SleepPeriod)
		defer t.Stop()
		tc = t.C
	}
	select {
	case <-c.stop:
		return false
	case <-c.q.wake:
		return true
	case <-tc:
	}
	c.active()
	ctx, cancel := context.WithTimeout(context.Background(), c.exchangeTimeout())
	defer cancel()
	if err := c.TriggerUpdate(ctx); err != nil {
		c.log.Info("wake-up update failed", "err", err)
	}
	select { // the wake signal of active() above
	case <-c.q.wake:
	default:
	}
	return true
}
