package server

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestSlowSubscriberLosesEvents(t *testing.T) {
	s := newServer(t, nil)
	stuck := s.Subscribe(0) // never read
	fine := s.Subscribe(100)
	start := time.Now()
	for i := 0; i < 10; i++ {
		registerDevice(t, s, "dev-slow-"+strconv.Itoa(i), nil)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("registrations took %v with a stuck subscriber", took)
	}
	for i := 0; i < 10; i++ {
		waitEvent(t, fine, EventRegistered)
	}
	if stuck.Dropped() != 10 || fine.Dropped() != 0 {
		t.Fatalf("dropped: stuck %d, fine %d", stuck.Dropped(), fine.Dropped())
	}
	if st := s.Stats(); st.EventsDropped != 10 {
		t.Fatalf("%+v", st)
	}
}

func TestSubscriptionClose(t *testing.T) {
	s := newServer(t, nil)
	a, b := s.Subscribe(4), s.Subscribe(4)
	a.Close()
	a.Close()
	if _, ok := <-a.C; ok {
		t.Fatal("closed subscription delivered")
	}
	registerDevice(t, s, "dev-sub", nil)
	waitEvent(t, b, EventRegistered)
	_ = s.Close()
	for range b.C { // drained, then closed by Server.Close
	}
	c := s.Subscribe(1)
	if _, ok := <-c.C; ok {
		t.Fatal("subscription after Close is open")
	}
}

func TestHubConcurrency(t *testing.T) {
	h := newHub()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				h.publish(Event{Kind: EventSend})
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				sub := h.subscribe(j % 3)
				select {
				case <-sub.C:
				default:
				}
				sub.Close()
			}
		}()
	}
	wg.Wait()
	h.close()
	h.publish(Event{Kind: EventSend}) // after close: nobody to deliver to
	if _, ok := <-h.subscribe(1).C; ok {
		t.Fatal("a subscription after close is open")
	}
}

func TestEventKindNames(t *testing.T) {
	for k := EventRegistered; k <= EventRequest; k++ {
		if k.String() == "unknown" {
			t.Errorf("kind %d has no name", k)
		}
	}
	if EventKind(0).String() != "unknown" || EventKind(99).String() != "unknown" {
		t.Fatal("names for unknown kinds")
	}
}
