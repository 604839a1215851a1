package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/internal/enc"
)

type registrations struct{ s *Store }

func (r registrations) Put(ctx context.Context, reg *registry.Registration) error {
	if err := reg.Validate(); err != nil {
		return err
	}
	data, err := enc.MarshalRegistration(reg)
	if err != nil {
		return r.s.wrap("put registration", err)
	}
	ep, id := []byte(reg.Endpoint), []byte(reg.ID)
	err = r.s.update(ctx, func(tx *bolt.Tx) error {
		regs, ids := tx.Bucket(bRegs), tx.Bucket(bRegIDs)
		if owner := ids.Get(id); owner != nil && string(owner) != reg.Endpoint {
			return fmt.Errorf("registration ID %s already used by endpoint %q: %w", reg.ID, owner, registry.ErrConflict)
		}
		if old := regs.Get(ep); old != nil {
			var o struct{ ID string }
			if err := json.Unmarshal(old, &o); err != nil {
				return fmt.Errorf("stored registration of %q: %v: %w", reg.Endpoint, err, registry.ErrCorrupt)
			}
			if o.ID != reg.ID {
				if err := ids.Delete([]byte(o.ID)); err != nil {
					return err
				}
			}
		}
		if err := regs.Put(ep, data); err != nil {
			return err
		}
		return ids.Put(id, ep)
	})
	return r.s.wrap(fmt.Sprintf("put registration of %q", reg.Endpoint), err)
}

func (r registrations) Get(ctx context.Context, endpoint string) (*registry.Registration, error) {
	var reg *registry.Registration
	err := r.s.view(func(tx *bolt.Tx) error {
		data := tx.Bucket(bRegs).Get([]byte(endpoint))
		if data == nil {
			return registry.ErrNotFound
		}
		var err error
		reg, err = enc.UnmarshalRegistration(data)
		return err
	})
	return reg, r.s.wrap(fmt.Sprintf("registration of %q", endpoint), err)
}

func (r registrations) GetByID(ctx context.Context, id string) (*registry.Registration, error) {
	var reg *registry.Registration
	err := r.s.view(func(tx *bolt.Tx) error {
		ep := tx.Bucket(bRegIDs).Get([]byte(id))
		if ep == nil {
			return registry.ErrNotFound
		}
		data := tx.Bucket(bRegs).Get(ep)
		if data == nil {
			return fmt.Errorf("ID index names endpoint %q, which has no registration: %w", ep, registry.ErrCorrupt)
		}
		var err error
		reg, err = enc.UnmarshalRegistration(data)
		return err
	})
	return reg, r.s.wrap(fmt.Sprintf("registration %q", id), err)
}

func (r registrations) Delete(ctx context.Context, id string) error {
	err := r.s.update(ctx, func(tx *bolt.Tx) error {
		ids := tx.Bucket(bRegIDs)
		ep := bytes.Clone(ids.Get([]byte(id)))
		if ep == nil {
			return nil
		}
		if err := tx.Bucket(bRegs).Delete(ep); err != nil {
			return err
		}
		return ids.Delete([]byte(id))
	})
	return r.s.wrap(fmt.Sprintf("delete registration %q", id), err)
}

func (r registrations) List(ctx context.Context, f registry.RegistrationFilter) ([]*registry.Registration, error) {
	var out []*registry.Registration
	var start []byte
	if f.After != "" {
		start = append([]byte(f.After), 0) // the smallest key after f.After
	}
	err := r.s.view(func(tx *bolt.Tx) error {
		return prefix(tx.Bucket(bRegs), []byte(f.Prefix), start, func(k, v []byte) (bool, error) {
			reg, err := enc.UnmarshalRegistration(v)
			if err != nil {
				return false, err
			}
			if match(reg, f) {
				out = append(out, reg)
			}
			return f.Limit <= 0 || len(out) < f.Limit, nil
		})
	})
	return out, r.s.wrap("list registrations", err)
}

// match applies the filters that are not on the key.
func match(r *registry.Registration, f registry.RegistrationFilter) bool {
	if f.Version != "" && r.Version != f.Version {
		return false
	}
	if !f.ExpiredBy.IsZero() {
		exp := r.ExpiresAt()
		if exp.IsZero() || exp.After(f.ExpiredBy) {
			return false
		}
	}
	return strings.HasPrefix(r.Endpoint, f.Prefix)
}
