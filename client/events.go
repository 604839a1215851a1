package client

import (
	"net"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/lwm2md/lwm2md/objects"
)

// EventKind says what an Event reports.
type EventKind uint8

// The event kinds.
const (
	// EventRegistered: a Register was accepted (Location is set).
	EventRegistered EventKind = iota + 1
	// EventRegisterFailed: one Register attempt failed (Err); the
	// procedure retries after Wait unless it gave up (Wait is zero).
	EventRegisterFailed
	// EventUpdated: an Update was accepted.
	EventUpdated
	// EventUpdateFailed: an Update failed (Err); the client registers
	// again.
	EventUpdateFailed
	// EventDeregistered: the client de-registered (Close, Disable).
	EventDeregistered
	// EventRebound: the client moved to a new local port (Addr).
	EventRebound
	// EventRequest: the client answered a server request (Op, Path, Code).
	EventRequest
	// EventNotified: the client sent a notification (Path, Code).
	EventNotified
	// EventObservationEnded: an observation ended (Path, Err says why when
	// the server did not cancel it).
	EventObservationEnded
	// EventSent: a Send was accepted.
	EventSent
	// EventReboot: a simulated reboot or factory reset began.
	EventReboot

	// Queue mode.

	// EventSleeping: a queue-mode client fell asleep after its awake
	// window; it answers nothing until it wakes.
	EventSleeping
	// EventAwake: a queue-mode client woke (sleep period over, an Update,
	// a notification or a Send to make, or Wake).
	EventAwake

	// EventBootstrapped: a client-initiated bootstrap ended with an
	// accepted BS-Finish or Bootstrap-Pack.
	EventBootstrapped
	// EventBootstrapFailed: a bootstrap attempt failed (Err).
	EventBootstrapFailed
)

var eventNames = [...]string{
	EventRegistered: "registered", EventRegisterFailed: "register-failed", EventUpdated: "updated",
	EventUpdateFailed: "update-failed", EventDeregistered: "deregistered", EventRebound: "rebound",
	EventRequest: "request", EventNotified: "notified", EventObservationEnded: "observation-ended",
	EventSent: "sent", EventReboot: "reboot",
	EventSleeping: "sleeping", EventAwake: "awake",
	EventBootstrapped: "bootstrapped", EventBootstrapFailed: "bootstrap-failed",
}

func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return "unknown"
}

// Event is something that happened to the client, for Config.OnEvent.
type Event struct {
	Kind     EventKind
	Time     time.Time
	Location string        // registered
	Addr     net.Addr      // rebound: the new local address
	Op       string        // request: "read", "write", "execute", ...
	Path     objects.Path  // request, notified, observation-ended
	Code     codes.Code    // request, notified: the answer's code
	Wait     time.Duration // register-failed: the delay before the next attempt
	// Confirmable: notified, the notification was confirmable (and
	// acknowledged).
	Confirmable bool
	Err         error
}

func (c *Client) emit(e Event) {
	if c.cfg.OnEvent == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	c.cfg.OnEvent(e)
}
