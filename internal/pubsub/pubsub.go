// Package pubsub fans events out to subscribers without ever blocking the
// publisher: a subscriber whose channel is full loses the event, and the
// loss is counted. The LwM2M server and the bootstrap server publish their
// events through it.
package pubsub

import (
	"sync"
	"sync/atomic"
)

// Subscription receives events on C. Close ends it and closes C.
type Subscription[E any] struct {
	C <-chan E

	c       chan E
	dropped atomic.Uint64
	hub     *Hub[E]
}

// Dropped is the number of events this subscriber lost because its
// channel was full.
func (s *Subscription[E]) Dropped() uint64 { return s.dropped.Load() }

// Close stops the delivery and closes C. It is safe to call twice.
func (s *Subscription[E]) Close() { s.hub.remove(s) }

// Hub holds the subscriptions. The zero value is not usable: use New.
type Hub[E any] struct {
	mu      sync.RWMutex
	subs    map[*Subscription[E]]struct{}
	closed  bool
	dropped atomic.Uint64 // over all subscribers
}

// New returns an empty hub.
func New[E any]() *Hub[E] { return &Hub[E]{subs: make(map[*Subscription[E]]struct{})} }

// Subscribe returns a subscription whose channel holds buffer events. On
// a closed hub the channel is closed at once.
func (h *Hub[E]) Subscribe(buffer int) *Subscription[E] {
	c := make(chan E, max(buffer, 0))
	s := &Subscription[E]{C: c, c: c, hub: h}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(c)
		return s
	}
	h.subs[s] = struct{}{}
	return s
}

func (h *Hub[E]) remove(s *Subscription[E]) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.c)
	}
}

// Publish delivers e to every subscriber that has room. Sends happen under
// the read lock, so no channel is closed while a send is in progress.
func (h *Hub[E]) Publish(e E) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs {
		select {
		case s.c <- e:
		default:
			s.dropped.Add(1)
			h.dropped.Add(1)
		}
	}
}

// Dropped is the number of events lost over all subscribers.
func (h *Hub[E]) Dropped() uint64 { return h.dropped.Load() }

// Close ends every subscription; later ones start closed.
func (h *Hub[E]) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		delete(h.subs, s)
		close(s.c)
	}
}
