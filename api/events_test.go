package api

import (
	"strconv"
	"testing"
)

func TestEventsFilterAndResume(t *testing.T) {
	e := newEnv(t, nil, nil)
	all := e.stream("/api/v1/events")
	regs := e.stream("/api/v1/events?kind=registered,deregistered&endpoint=ev-a")
	a := e.device("ev-a", "1.1", nil)
	e.device("ev-b", "1.1", nil)

	first := regs.next(nil)
	if first.kind != "registered" || first.data["endpoint"] != "ev-a" || first.data["kind"] != "registered" {
		t.Fatalf("first filtered event %+v", first)
	}
	reg, _ := first.data["registration"].(map[string]any)
	if reg["status"] != "online" || reg["registrationId"] == "" {
		t.Fatalf("registration in event: %v", first.data)
	}
	seen := map[string]bool{}
	for len(seen) < 2 {
		ev := all.next(kind("registered"))
		seen[ev.data["endpoint"].(string)] = true
	}
	if err := a.Close(); err != nil { // de-registers
		t.Fatal(err)
	}
	second := regs.next(nil)
	if second.kind != "deregistered" || second.data["endpoint"] != "ev-a" {
		t.Fatalf("second filtered event %+v", second)
	}
	id1, _ := strconv.ParseUint(first.id, 10, 64)
	id2, _ := strconv.ParseUint(second.id, 10, 64)
	if id2 <= id1 {
		t.Fatalf("IDs %d then %d", id1, id2)
	}

	// Resume after the first event: the second comes again, from the ring.
	resumed := e.stream("/api/v1/events?endpoint=ev-a&kind=registered,deregistered", "Last-Event-ID", first.id)
	if ev := resumed.next(nil); ev.id != second.id || ev.kind != "deregistered" {
		t.Fatalf("resumed with %+v, want %s", ev, second.id)
	}
	if s := e.stream("/api/v1/events?kind=nothing"); s.status != 400 {
		t.Fatalf("bad kind: %d", s.status)
	}
	if s := e.stream("/api/v1/events", "Last-Event-ID", "x"); s.status != 400 {
		t.Fatalf("bad Last-Event-ID: %d", s.status)
	}
}

func TestRingGap(t *testing.T) {
	r := newRing(3)
	for i := 0; i < 5; i++ {
		r.add(stored{kind: "send", endpoint: "x"})
	}
	evs, gap, _, _ := r.since(1)
	if !gap || len(evs) != 3 || evs[0].id != 3 || evs[2].id != 5 {
		t.Fatalf("since(1) = %+v, gap %v", evs, gap)
	}
	evs, gap, _, _ = r.since(4)
	if gap || len(evs) != 1 || evs[0].id != 5 {
		t.Fatalf("since(4) = %+v, gap %v", evs, gap)
	}
	_, _, wake, _ := r.since(5)
	r.add(stored{})
	select {
	case <-wake:
	default:
		t.Fatal("add did not wake the waiters")
	}
	r.close()
	if _, _, _, closed := r.since(6); !closed {
		t.Fatal("not closed")
	}
}
