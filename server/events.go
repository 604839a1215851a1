package server

import (
	"time"

	"github.com/lwm2md/lwm2md/internal/pubsub"
	"github.com/lwm2md/lwm2md/objects"
)

// EventKind says what an Event reports.
type EventKind uint8

// The event kinds.
const (
	// EventRegistered: a Register was accepted. Previous is set when it
	// replaced a registration of the same endpoint (whose observations
	// were dropped).
	EventRegistered EventKind = iota + 1
	// EventUpdated: an Update was accepted.
	EventUpdated
	// EventDeregistered: the device de-registered.
	EventDeregistered
	// EventExpired: the registration's lifetime (plus the grace period)
	// passed without an Update; its observations were dropped.
	EventExpired
	// EventNotification: a notification of an observation, decoded in
	// Node (and Records, with timestamps when the format carries them).
	// Err is set when the notification could not be decoded, or when the
	// device ended the observation with an error code.
	EventNotification
	// EventSend: a Send (POST /dp) from the device, decoded in Records.
	EventSend
	// EventRequest: the result of a device management call (Op, Path,
	// Err, Duration). A successful Read, Read-Composite, Observe or
	// Observe-Composite carries the values read in Node or Nodes.
	EventRequest

	// Queue mode (see docs/server.md, "Queue mode").

	// EventAwake: a queue-mode device sent something (Register, Update,
	// Notify, Send) after it was sleeping; its queue is being delivered.
	EventAwake
	// EventSleeping: a queue-mode device sent nothing for
	// Config.AwakeWindow (or did not answer a queued request); requests
	// for it now wait in its queue.
	EventSleeping
	// EventQueued: a request was put in a device's queue (RequestID, Op,
	// Path).
	EventQueued
	// EventRequestResult: a queued request ended: answered, failed,
	// expired or cancelled (RequestID, Op, Path, Node, Err, and Result
	// with everything the device answered).
	EventRequestResult
)

var kindNames = [...]string{
	EventRegistered:   "registered",
	EventUpdated:      "updated",
	EventDeregistered: "deregistered",
	EventExpired:      "expired",
	EventNotification: "notification",
	EventSend:         "send",
	EventRequest:      "request",

	EventAwake:         "awake",
	EventSleeping:      "sleeping",
	EventQueued:        "queued",
	EventRequestResult: "request-result",
}

func (k EventKind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "unknown"
}

// Event is one thing that happened to a registration. Which fields are
// set depends on Kind; Registration and Node values are shared and must
// not be modified.
type Event struct {
	Kind           EventKind
	Time           time.Time
	Endpoint       string
	RegistrationID string
	// Registration is the registration after the change (registered,
	// updated) or as it was when it ended (deregistered, expired).
	Registration *Registration
	// Previous is the registration a re-registration replaced.
	Previous *Registration

	Path    objects.Path     // notification, request
	Token   string           // notification: the observation's token, hex
	Observe uint32           // notification: the Observe sequence number
	Format  objects.Format   // notification, send: the payload's content format
	Node    objects.Node     // notification, request (read, observe): the value at Path
	Records []objects.Record // notification, send: flat values, with times when the payload has them

	// Nodes, for a notification of an Observe-Composite, hold the value
	// at each observed path the device reported (Node is nil, Path the
	// root).
	Nodes map[objects.Path]objects.Node

	Op       string        // request: "read", "write", ...
	Duration time.Duration // request: how long the call took
	Err      error

	// Queue mode.
	RequestID string         // queued, request-result: the ID Enqueue returned
	Result    *RequestResult // request-result
}

// Subscription receives events on C. Events are delivered without ever
// blocking the server: when C is full, the event is dropped for this
// subscriber and Dropped counts it. Close ends the subscription and closes
// C; Server.Close closes every subscription.
type Subscription = pubsub.Subscription[Event]

// hub stamps each event with its time and fans it out.
type hub struct{ *pubsub.Hub[Event] }

func newHub() *hub { return &hub{pubsub.New[Event]()} }

func (h *hub) subscribe(buffer int) *Subscription { return h.Subscribe(buffer) }

func (h *hub) publish(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	h.Publish(e)
}

func (h *hub) close() { h.Close() }
