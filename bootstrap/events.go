package bootstrap

import (
	"time"

	"github.com/lwm2md/lwm2md/internal/pubsub"
	"github.com/lwm2md/lwm2md/objects"
)

// EventKind says what an Event reports.
type EventKind uint8

// The event kinds.
const (
	// EventStarted: a bootstrap sequence began (Initiator, Source).
	EventStarted EventKind = iota + 1
	// EventStep: one step ended (Step, Path, Code; Err when it failed).
	EventStep
	// EventFinished: the device accepted BS-Finish, or was sent its
	// Bootstrap-Pack.
	EventFinished
	// EventFailed: the sequence stopped at Step, for Err.
	EventFailed
	// EventRetry: the sequence failed at Step, for Err, and starts again
	// (Configuration.Retries).
	EventRetry
)

var kindNames = [...]string{EventStarted: "started", EventStep: "step", EventFinished: "finished", EventFailed: "failed", EventRetry: "retry"}

func (k EventKind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "unknown"
}

// The steps of a bootstrap sequence, as Event.Step and Status.Step name
// them.
const (
	StepRequest   = "request"   // the device's Bootstrap-Request
	StepDiscover  = "discover"  // BS-Discover of /
	StepRead      = "read"      // BS-Read of /1 (LwM2M 1.1+)
	StepDelete    = "delete"    // BS-Delete
	StepWrite     = "write"     // BS-Write
	StepProvision = "provision" // storing the device's credentials
	StepFinish    = "finish"    // BS-Finish
	StepPack      = "pack"      // Bootstrap-Pack (LwM2M 1.2)
)

// Event is one thing that happened in a bootstrap sequence.
type Event struct {
	Kind      EventKind
	Time      time.Time
	Endpoint  string
	Initiator string // "client" (Bootstrap-Request, Bootstrap-Pack-Request) or "server"
	Source    string // started: the configuration's origin ("endpoint", "template:meters")
	Step      string
	Path      objects.Path
	Code      uint8 // the device's answer (class*32+detail), 0 when none came
	Duration  time.Duration
	Err       error
}

// Subscription receives events on C without ever blocking the server:
// when C is full the event is dropped for this subscriber and counted.
// Close ends it; Server.Close ends them all.
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
