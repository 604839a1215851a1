package server

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Store keeps registrations. The server writes every change through it
// (Register, Update, De-register, expiry) before it answers the device, and
// reads it back at Start, so that a persistent Store keeps registrations
// over a restart. Registrations are immutable: Put stores a new value, it
// never changes one in place.
//
// The server makes its Store calls one at a time, with its registration
// lock held; a Store must be safe for concurrent readers all the same
// (Server.Registration reads it from any goroutine).
type Store interface {
	// Put stores r, replacing the registration with the same endpoint,
	// whatever its ID.
	Put(ctx context.Context, r *Registration) error
	// Get returns the registration of an endpoint, or an error wrapping
	// ErrNotRegistered.
	Get(ctx context.Context, endpoint string) (*Registration, error)
	// GetByID returns the registration with that registration ID, or an
	// error wrapping ErrNotRegistered.
	GetByID(ctx context.Context, id string) (*Registration, error)
	// Delete removes the registration with that registration ID; removing
	// an unknown ID is not an error.
	Delete(ctx context.Context, id string) error
	// List returns every registration, sorted by endpoint.
	List(ctx context.Context) ([]*Registration, error)
}

// MemoryStore is the in-memory Store, the default. Its zero value is ready
// to use.
type MemoryStore struct {
	mu   sync.RWMutex
	byEP map[string]*Registration
	byID map[string]*Registration
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

// Put implements Store.
func (m *MemoryStore) Put(_ context.Context, r *Registration) error {
	if r == nil || r.Endpoint == "" || r.ID == "" {
		return fmt.Errorf("server: store: registration without endpoint or ID")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byEP == nil {
		m.byEP = make(map[string]*Registration)
		m.byID = make(map[string]*Registration)
	}
	if old := m.byID[r.ID]; old != nil && old.Endpoint != r.Endpoint {
		return fmt.Errorf("server: store: registration ID %s already used by endpoint %q", r.ID, old.Endpoint)
	}
	if old := m.byEP[r.Endpoint]; old != nil {
		delete(m.byID, old.ID)
	}
	m.byEP[r.Endpoint] = r
	m.byID[r.ID] = r
	return nil
}

// Get implements Store.
func (m *MemoryStore) Get(_ context.Context, endpoint string) (*Registration, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if r := m.byEP[endpoint]; r != nil {
		return r, nil
	}
	return nil, fmt.Errorf("server: endpoint %q: %w", endpoint, ErrNotRegistered)
}

// GetByID implements Store.
func (m *MemoryStore) GetByID(_ context.Context, id string) (*Registration, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if r := m.byID[id]; r != nil {
		return r, nil
	}
	return nil, fmt.Errorf("server: registration %q: %w", id, ErrNotRegistered)
}

// Delete implements Store.
func (m *MemoryStore) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.byID[id]
	if r == nil {
		return nil
	}
	delete(m.byID, id)
	if m.byEP[r.Endpoint] == r {
		delete(m.byEP, r.Endpoint)
	}
	return nil
}

// List implements Store.
func (m *MemoryStore) List(_ context.Context) ([]*Registration, error) {
	m.mu.RLock()
	out := make([]*Registration, 0, len(m.byEP))
	for _, r := range m.byEP {
		out = append(out, r)
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Endpoint < out[j].Endpoint })
	return out, nil
}

// Len is the number of registrations.
func (m *MemoryStore) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.byEP)
}
