package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/lwm2md/lwm2md/registry"
)

// RegistryStore returns a Store that keeps registrations in the persistent
// registry (registry/bolt, registry/postgres), so that the devices
// registered before a restart or a crash keep being served.
//
// The registry's ErrNotFound becomes ErrNotRegistered, as Store requires;
// other errors (ErrConflict for an ID of another endpoint, ErrClosed,
// ErrCorrupt, ...) are returned as the registry gave them. The registry
// keeps times in UTC to the microsecond, so a registration read back has
// its RegisteredAt and UpdatedAt rounded so.
//
// The conversion shares the slices and maps of a registration instead of
// copying them: both sides treat a registration as immutable.
func RegistryStore(r registry.Registrations) Store { return registryStore{r} }

type registryStore struct{ r registry.Registrations }

func (s registryStore) Put(ctx context.Context, r *Registration) error {
	if r == nil {
		return fmt.Errorf("server: store: nil registration")
	}
	return s.r.Put(ctx, toRegistry(r))
}

func (s registryStore) Get(ctx context.Context, endpoint string) (*Registration, error) {
	r, err := s.r.Get(ctx, endpoint)
	if errors.Is(err, registry.ErrNotFound) {
		return nil, fmt.Errorf("server: endpoint %q: %w", endpoint, ErrNotRegistered)
	}
	if err != nil {
		return nil, err
	}
	return fromRegistry(r), nil
}

func (s registryStore) GetByID(ctx context.Context, id string) (*Registration, error) {
	r, err := s.r.GetByID(ctx, id)
	if errors.Is(err, registry.ErrNotFound) {
		return nil, fmt.Errorf("server: registration %q: %w", id, ErrNotRegistered)
	}
	if err != nil {
		return nil, err
	}
	return fromRegistry(r), nil
}

func (s registryStore) Delete(ctx context.Context, id string) error {
	return s.r.Delete(ctx, id)
}

// List reads every registration at once: the server calls it at Start
// only. The registry sorts by endpoint, as Store requires.
func (s registryStore) List(ctx context.Context) ([]*Registration, error) {
	regs, err := s.r.List(ctx, registry.RegistrationFilter{})
	if err != nil {
		return nil, err
	}
	out := make([]*Registration, len(regs))
	for i, r := range regs {
		out[i] = fromRegistry(r)
	}
	return out, nil
}

// toRegistry converts field by field; a field added to one type must be
// added to the other and here (TestRegistryConversion fills every field
// by reflection and fails on a forgotten one).
func toRegistry(r *Registration) *registry.Registration {
	return &registry.Registration{
		ID:             r.ID,
		Endpoint:       r.Endpoint,
		Addr:           r.Addr,
		Lifetime:       r.Lifetime,
		Binding:        r.Binding,
		QueueMode:      r.QueueMode,
		SMSNumber:      r.SMSNumber,
		Version:        r.Version,
		Root:           r.Root,
		Formats:        r.Formats,
		Objects:        r.Objects,
		ObjectVersions: r.ObjectVersions,
		Params:         r.Params,
		RegisteredAt:   r.RegisteredAt,
		UpdatedAt:      r.UpdatedAt,
	}
}

func fromRegistry(r *registry.Registration) *Registration {
	return &Registration{
		ID:             r.ID,
		Endpoint:       r.Endpoint,
		Addr:           r.Addr,
		Lifetime:       r.Lifetime,
		Binding:        r.Binding,
		QueueMode:      r.QueueMode,
		SMSNumber:      r.SMSNumber,
		Version:        r.Version,
		Root:           r.Root,
		Formats:        r.Formats,
		Objects:        r.Objects,
		ObjectVersions: r.ObjectVersions,
		Params:         r.Params,
		RegisteredAt:   r.RegisteredAt,
		UpdatedAt:      r.UpdatedAt,
	}
}
