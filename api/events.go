package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/nodejson"
	"github.com/lwm2md/lwm2md/server"
)

// EventKinds are the kind names of the event stream, as the server names
// them (server.EventKind.String).
var EventKinds = []string{
	"registered", "updated", "deregistered", "expired", "notification", "send",
	"request", "awake", "sleeping", "queued", "request-result",
	// The bootstrap server's events (Config.Bootstrap), "bootstrap-" and
	// bootstrap.EventKind.String.
	"bootstrap-started", "bootstrap-step", "bootstrap-finished", "bootstrap-failed", "bootstrap-retry",
	// The job runner's events (Config.Jobs), "job-" and bridge.JobEvent's
	// Event.
	"job-created", "job-progress", "job-done", "job-cancelled",
}

// keepAlive is how often an idle stream gets a comment line, so that
// proxies and NATs keep the connection.
const keepAlive = 15 * time.Second

// stored is one event in the ring, already in its JSON form.
type stored struct {
	id       uint64
	kind     string
	endpoint string
	data     []byte
}

// ring is the bounded, in-memory history of recent events, for
// Last-Event-ID resume (HTML Living Standard, "Server-sent events":
// the client sends the last ID it saw when it reconnects). IDs increase by
// one per event from 1, within this process.
type ring struct {
	mu     sync.Mutex
	buf    []stored
	head   int    // index of the oldest event
	n      int    // events held
	last   uint64 // ID of the newest event
	wake   chan struct{}
	closed bool
}

func newRing(size int) *ring {
	return &ring{buf: make([]stored, size), wake: make(chan struct{})}
}

func (r *ring) add(e stored) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.last++
	e.id = r.last
	if r.n < len(r.buf) {
		r.buf[(r.head+r.n)%len(r.buf)] = e
		r.n++
	} else {
		r.buf[r.head] = e
		r.head = (r.head + 1) % len(r.buf)
	}
	close(r.wake)
	r.wake = make(chan struct{})
}

func (r *ring) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		close(r.wake)
	}
}

// newest is the ID of the newest event (0 when none yet).
func (r *ring) newest() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// since returns the events after ID after, whether some were already
// dropped from the ring (a gap), and a channel closed at the next event.
func (r *ring) since(after uint64) (evs []stored, gap bool, wake <-chan struct{}, closed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	oldest := r.last - uint64(r.n) + 1
	if after+1 < oldest {
		gap = true
		after = oldest - 1
	}
	for i := 0; i < r.n; i++ {
		e := r.buf[(r.head+i)%len(r.buf)]
		if e.id > after {
			evs = append(evs, e)
		}
	}
	return evs, gap, r.wake, r.closed
}

// eventJSON is the stream's form of a server event.
func (a *API) eventJSON(e server.Event) stored {
	m := map[string]any{"kind": e.Kind.String(), "time": e.Time.UTC(), "endpoint": e.Endpoint}
	if e.RegistrationID != "" {
		m["registrationId"] = e.RegistrationID
	}
	if e.Registration != nil {
		m["registration"] = a.clientJSON(e.Registration, e.Kind)
	}
	switch e.Kind {
	case server.EventNotification, server.EventRequest, server.EventQueued, server.EventRequestResult:
		m["path"] = e.Path.String()
	}
	if e.Kind == server.EventNotification {
		m["token"], m["observe"] = e.Token, e.Observe
	}
	if e.Format != 0 || e.Kind == server.EventNotification || e.Kind == server.EventSend {
		m["format"] = e.Format.String()
	}
	if e.Node != nil {
		if b, err := nodejson.Marshal(e.Path, e.Node); err == nil {
			m["node"] = json.RawMessage(b)
		}
	}
	if e.Nodes != nil {
		if b, err := nodesOfEvent(e.Nodes); err == nil {
			m["nodes"] = b
		}
	}
	if len(e.Records) > 0 && (e.Kind == server.EventSend || timed(e.Records)) {
		if b, err := nodejson.MarshalRecords(e.Records); err == nil {
			m["records"] = json.RawMessage(b)
		}
	}
	if e.Op != "" {
		m["op"] = e.Op
	}
	if e.Kind == server.EventRequest {
		m["durationMs"] = float64(e.Duration.Microseconds()) / 1000
	}
	if e.RequestID != "" {
		m["requestId"] = e.RequestID
	}
	if e.Result != nil {
		if r, err := a.resultJSON(e.Result); err == nil {
			m["result"] = r
		}
	}
	if e.Err != nil {
		m["error"] = e.Err.Error()
	}
	data, err := json.Marshal(m)
	if err != nil {
		data, _ = json.Marshal(map[string]any{"kind": e.Kind.String(), "endpoint": e.Endpoint, "error": err.Error()})
	}
	return stored{kind: e.Kind.String(), endpoint: e.Endpoint, data: data}
}

// timed reports whether records carry times (a historical notification).
func timed(recs []objects.Record) bool {
	for _, r := range recs {
		if r.Time != 0 {
			return true
		}
	}
	return false
}

// eventFilter is the ?endpoint= and ?kind= of a stream; each may list
// several values separated by commas.
type eventFilter struct {
	endpoints []string
	kinds     []string
}

func parseFilter(r *http.Request) (eventFilter, error) {
	var f eventFilter
	q := r.URL.Query()
	for _, v := range q["endpoint"] {
		f.endpoints = append(f.endpoints, strings.Split(v, ",")...)
	}
	for _, v := range q["kind"] {
		for _, k := range strings.Split(v, ",") {
			k = strings.TrimSpace(k)
			if !slices.Contains(EventKinds, k) {
				return f, badField("kind", fmt.Sprintf("%q is not an event kind (%s)", k, strings.Join(EventKinds, ", ")))
			}
			f.kinds = append(f.kinds, k)
		}
	}
	return f, nil
}

func (f eventFilter) match(e stored) bool {
	return (len(f.endpoints) == 0 || slices.Contains(f.endpoints, e.endpoint)) &&
		(len(f.kinds) == 0 || slices.Contains(f.kinds, e.kind))
}

// streamEvents serves text/event-stream. Without Last-Event-ID the stream
// starts with the next event; with it, every event after that ID that the
// ring still holds comes first, and an event "gap" says when some were
// already dropped.
func (a *API) streamEvents(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilter(r)
	if err != nil {
		return err
	}
	last := a.events.newest()
	if s := r.Header.Get("Last-Event-ID"); s != "" {
		id, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return badField("Last-Event-ID", fmt.Sprintf("%q is not an event ID of this stream", s))
		}
		// An ID from before a restart (beyond the newest) replays what
		// the ring holds, with a gap event.
		if id > last {
			id = 0
		}
		last = id
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's WriteTimeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 2000\n: lwm2md events\n\n"); err != nil {
		return nil
	}
	_ = rc.Flush()
	a.metrics.streams.Inc()
	defer a.metrics.streams.Dec()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		evs, gap, wake, closed := a.events.since(last)
		if gap {
			fmt.Fprintf(w, "event: gap\ndata: {\"kind\":\"gap\",\"detail\":\"events after ID %d were dropped from the server's buffer\"}\n\n", last)
		}
		for _, e := range evs {
			last = e.id
			if f.match(e) {
				fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.id, e.kind, e.data)
			}
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
		if closed {
			return nil
		}
		select {
		case <-wake:
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
		case <-r.Context().Done():
			return nil
		}
	}
}
