package pubsub

import (
	"sync"
	"testing"
)

func TestFanOutDropsInsteadOfBlocking(t *testing.T) {
	h := New[int]()
	fast, slow := h.Subscribe(10), h.Subscribe(1)
	for i := 0; i < 5; i++ {
		h.Publish(i) // never blocks, even with slow full
	}
	if len(fast.C) != 5 || len(slow.C) != 1 {
		t.Fatalf("fast %d, slow %d", len(fast.C), len(slow.C))
	}
	if slow.Dropped() != 4 || fast.Dropped() != 0 || h.Dropped() != 4 {
		t.Fatalf("dropped: slow %d fast %d hub %d", slow.Dropped(), fast.Dropped(), h.Dropped())
	}
	slow.Close()
	slow.Close() // twice is fine
	h.Publish(5)
	if _, ok := <-slow.C; !ok {
		t.Fatal("the event buffered before Close was lost")
	}
	if _, ok := <-slow.C; ok {
		t.Fatal("C still open after Close")
	}
	h.Close()
	n := 0
	for range fast.C {
		n++
	}
	if n != 6 {
		t.Fatalf("fast got %d events, want 6", n)
	}
	late := h.Subscribe(1)
	if _, ok := <-late.C; ok {
		t.Fatal("a subscription to a closed hub is open")
	}
}

func TestConcurrentPublishAndClose(t *testing.T) {
	h := New[int]()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		s := h.Subscribe(8)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range s.C {
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				h.Publish(j)
			}
			s.Close()
		}()
	}
	wg.Wait()
	h.Close()
}
