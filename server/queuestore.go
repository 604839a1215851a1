package server

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/lwm2md/lwm2md/registry"
)

// MemoryQueue is an in-memory registry.Queue, the default of
// Config.Queue: queued requests live as long as the process. It keeps the
// rules of the persistent stores (registry/bolt, registry/postgres): IDs
// grow with every Enqueue and are the queue order, the head of a queue is
// its oldest open request whose deadline has not passed, a claimed head
// is held until its lease runs out. Its zero value is ready to use.
type MemoryQueue struct {
	mu   sync.Mutex
	next uint64
	reqs map[uint64]*registry.Request
	byEP map[string][]uint64 // every request of an endpoint, in ID order
	open map[uint64]struct{} // the Pending and Sent ones, for Expire
}

// NewMemoryQueue returns an empty MemoryQueue.
func NewMemoryQueue() *MemoryQueue { return &MemoryQueue{} }

var _ registry.Queue = (*MemoryQueue)(nil)

func (m *MemoryQueue) init() {
	if m.reqs == nil {
		m.reqs = make(map[uint64]*registry.Request)
		m.byEP = make(map[string][]uint64)
		m.open = make(map[uint64]struct{})
	}
}

// copyRequest hands out a copy, so that callers never share the stored
// value.
func copyRequest(r *registry.Request) *registry.Request {
	c := *r
	return &c
}

// Enqueue implements registry.QueueWriter.
func (m *MemoryQueue) Enqueue(_ context.Context, r *registry.Request) (uint64, error) {
	if r == nil {
		return 0, fmt.Errorf("server: queue: nil request: %w", registry.ErrInvalid)
	}
	if err := registry.CheckEndpoint(r.Endpoint); err != nil {
		return 0, err
	}
	if r.Operation == "" {
		return 0, fmt.Errorf("server: queue: request to %q: no operation: %w", r.Endpoint, registry.ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	m.next++
	now := registry.Time(time.Now())
	c := copyRequest(r)
	c.ID, c.Status, c.Owner, c.LeaseUntil, c.Attempts, c.Result = m.next, registry.StatusPending, "", time.Time{}, 0, registry.Result{}
	c.Deadline, c.CreatedAt, c.UpdatedAt = registry.Time(c.Deadline), now, now
	m.reqs[c.ID] = c
	m.open[c.ID] = struct{}{}
	m.byEP[c.Endpoint] = append(m.byEP[c.Endpoint], c.ID)
	return c.ID, nil
}

// Complete implements registry.QueueWriter.
func (m *MemoryQueue) Complete(_ context.Context, id uint64, owner string, res registry.Result) error {
	switch res.Status {
	case registry.StatusDone, registry.StatusFailed, registry.StatusCancelled:
	default:
		return fmt.Errorf("server: queue: request %d: cannot complete as %v: %w", id, res.Status, registry.ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.reqs[id]
	if r == nil {
		return fmt.Errorf("server: queue: request %d: %w", id, registry.ErrNotFound)
	}
	if !r.Status.Open() {
		return fmt.Errorf("server: queue: request %d is already %v: %w", id, r.Status, registry.ErrConflict)
	}
	if owner != "" && (r.Status != registry.StatusSent || r.Owner != owner) {
		return fmt.Errorf("server: queue: request %d is not held by %q: %w", id, owner, registry.ErrConflict)
	}
	r.Status, r.Result, r.UpdatedAt = res.Status, res, registry.Time(time.Now())
	delete(m.open, id)
	return nil
}

// headLocked is the head of an endpoint's queue at now, or nil.
func (m *MemoryQueue) headLocked(endpoint string, now time.Time) *registry.Request {
	for _, id := range m.byEP[endpoint] {
		r := m.reqs[id]
		if r == nil || !r.Status.Open() {
			continue
		}
		if !r.Deadline.IsZero() && !now.Before(r.Deadline) {
			continue // expired, not yet marked
		}
		return r
	}
	return nil
}

// Peek implements registry.QueueReader.
func (m *MemoryQueue) Peek(_ context.Context, endpoint string, now time.Time) (*registry.Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h := m.headLocked(endpoint, now); h != nil {
		return copyRequest(h), nil
	}
	return nil, fmt.Errorf("server: queue of %q is empty: %w", endpoint, registry.ErrNotFound)
}

// Get implements registry.QueueReader.
func (m *MemoryQueue) Get(_ context.Context, id uint64) (*registry.Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.reqs[id]; r != nil {
		return copyRequest(r), nil
	}
	return nil, fmt.Errorf("server: queue: request %d: %w", id, registry.ErrNotFound)
}

// List implements registry.QueueReader.
func (m *MemoryQueue) List(_ context.Context, endpoint string, status ...registry.RequestStatus) ([]*registry.Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*registry.Request
	for _, id := range m.byEP[endpoint] {
		r := m.reqs[id]
		if r != nil && (len(status) == 0 || slices.Contains(status, r.Status)) {
			out = append(out, copyRequest(r))
		}
	}
	return out, nil
}

// Claim implements registry.QueueClaimer.
func (m *MemoryQueue) Claim(_ context.Context, endpoint, owner string, now, leaseUntil time.Time) (*registry.Request, error) {
	if owner == "" {
		return nil, fmt.Errorf("server: queue: claim without owner: %w", registry.ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.headLocked(endpoint, now)
	if h == nil {
		return nil, fmt.Errorf("server: queue of %q is empty: %w", endpoint, registry.ErrNotFound)
	}
	if h.Status == registry.StatusSent && now.Before(h.LeaseUntil) {
		return nil, fmt.Errorf("server: queue: request %d is held by %q: %w", h.ID, h.Owner, registry.ErrNotFound)
	}
	h.Status, h.Owner, h.LeaseUntil = registry.StatusSent, owner, registry.Time(leaseUntil)
	h.Attempts++
	h.UpdatedAt = registry.Time(time.Now())
	return copyRequest(h), nil
}

// Expire implements registry.QueueExpirer.
func (m *MemoryQueue) Expire(_ context.Context, now time.Time) ([]*registry.Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*registry.Request
	updated := registry.Time(time.Now())
	for id := range m.open {
		r := m.reqs[id]
		if r.Deadline.IsZero() || now.Before(r.Deadline) {
			continue
		}
		if r.Status == registry.StatusPending || (r.Status == registry.StatusSent && !now.Before(r.LeaseUntil)) {
			r.Status, r.Result, r.UpdatedAt = registry.StatusExpired, registry.Result{Status: registry.StatusExpired}, updated
			delete(m.open, id)
			out = append(out, copyRequest(r))
		}
	}
	slices.SortFunc(out, func(a, b *registry.Request) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out, nil
}

// Purge implements registry.QueueExpirer.
func (m *MemoryQueue) Purge(_ context.Context, before time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	touched := make(map[string]bool)
	for id, r := range m.reqs {
		if r.Status.Open() || !r.UpdatedAt.Before(before) {
			continue
		}
		delete(m.reqs, id)
		touched[r.Endpoint] = true
		n++
	}
	for ep := range touched { // one pass over each endpoint's list
		ids := slices.DeleteFunc(m.byEP[ep], func(id uint64) bool { return m.reqs[id] == nil })
		if len(ids) == 0 {
			delete(m.byEP, ep)
		} else {
			m.byEP[ep] = ids
		}
	}
	return n, nil
}
