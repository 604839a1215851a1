package bolt

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/internal/enc"
)

// The queue keeps each request in bQueue under its ID, and three indexes:
// bQueueEP (endpoint, ID) for every request, bQueueOpen (endpoint, ID) for
// the open ones (Pending, Sent), and bQueueDL (deadline, ID) for the open
// ones with a deadline.
type queue struct{ s *Store }

func getRequest(tx *bolt.Tx, id uint64) (*registry.Request, error) {
	data := tx.Bucket(bQueue).Get(u64(id))
	if data == nil {
		return nil, fmt.Errorf("request %d: %w", id, registry.ErrNotFound)
	}
	return decodeRequest(data)
}

func decodeRequest(data []byte) (*registry.Request, error) {
	var s enc.Request
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("stored request: %v: %w", err, registry.ErrCorrupt)
	}
	return s.Request()
}

func putRequest(tx *bolt.Tx, r *registry.Request) error {
	data, err := json.Marshal(enc.FromRequest(r))
	if err != nil {
		return err
	}
	return tx.Bucket(bQueue).Put(u64(r.ID), data)
}

// closeRequest drops a request that became final from the open indexes.
func closeRequest(tx *bolt.Tx, r *registry.Request) error {
	if err := tx.Bucket(bQueueOpen).Delete(key(r.Endpoint, u64(r.ID))); err != nil {
		return err
	}
	if !r.Deadline.IsZero() {
		return tx.Bucket(bQueueDL).Delete(append(timeKey(r.Deadline), u64(r.ID)...))
	}
	return nil
}

func (q queue) Enqueue(ctx context.Context, r *registry.Request) (uint64, error) {
	if err := enc.CheckRequest(r); err != nil {
		return 0, err
	}
	var id uint64
	err := q.s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bQueue)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		now := q.s.now()
		c := *r
		c.ID, c.Status, c.Owner, c.LeaseUntil, c.Attempts, c.Result = seq, registry.StatusPending, "", time.Time{}, 0, registry.Result{}
		c.Deadline, c.CreatedAt, c.UpdatedAt = registry.Time(c.Deadline), now, now
		if err := putRequest(tx, &c); err != nil {
			return err
		}
		k := key(c.Endpoint, u64(seq))
		if err := tx.Bucket(bQueueEP).Put(k, nil); err != nil {
			return err
		}
		if err := tx.Bucket(bQueueOpen).Put(k, nil); err != nil {
			return err
		}
		if !c.Deadline.IsZero() {
			if err := tx.Bucket(bQueueDL).Put(append(timeKey(c.Deadline), u64(seq)...), nil); err != nil {
				return err
			}
		}
		id = seq
		return nil
	})
	if err != nil {
		return 0, q.s.wrap(fmt.Sprintf("enqueue for %q", r.Endpoint), err)
	}
	return id, nil
}

// head returns the head of an endpoint's queue at now, or ErrNotFound.
func head(tx *bolt.Tx, endpoint string, now time.Time) (*registry.Request, error) {
	var h *registry.Request
	p := key(endpoint)
	err := prefix(tx.Bucket(bQueueOpen), p, nil, func(k, _ []byte) (bool, error) {
		if len(k) != len(p)+8 {
			return false, fmt.Errorf("queue index key of %d bytes: %w", len(k), registry.ErrCorrupt)
		}
		r, err := getRequest(tx, binary.BigEndian.Uint64(k[len(p):]))
		if err != nil {
			return false, err
		}
		if !r.Deadline.IsZero() && !now.Before(r.Deadline) {
			return true, nil // expired, not yet marked
		}
		h = r
		return false, nil
	})
	if err == nil && h == nil {
		err = registry.ErrNotFound
	}
	return h, err
}

func (q queue) Peek(ctx context.Context, endpoint string, now time.Time) (*registry.Request, error) {
	var h *registry.Request
	err := q.s.view(func(tx *bolt.Tx) error {
		var err error
		h, err = head(tx, endpoint, now)
		return err
	})
	return h, q.s.wrap(fmt.Sprintf("queue of %q", endpoint), err)
}

func (q queue) Claim(ctx context.Context, endpoint, owner string, now, leaseUntil time.Time) (*registry.Request, error) {
	if err := registry.CheckText("owner", owner); err != nil {
		return nil, err
	}
	var claimed *registry.Request
	err := q.s.update(ctx, func(tx *bolt.Tx) error {
		h, err := head(tx, endpoint, now)
		if err != nil {
			return err
		}
		if h.Status == registry.StatusSent && now.Before(h.LeaseUntil) {
			return fmt.Errorf("request %d is held by %q: %w", h.ID, h.Owner, registry.ErrNotFound)
		}
		h.Status, h.Owner, h.LeaseUntil = registry.StatusSent, owner, registry.Time(leaseUntil)
		h.Attempts++
		h.UpdatedAt = q.s.now()
		claimed = h
		return putRequest(tx, h)
	})
	if err != nil {
		return nil, q.s.wrap(fmt.Sprintf("claim from the queue of %q", endpoint), err)
	}
	return claimed, nil
}

func (q queue) Complete(ctx context.Context, id uint64, owner string, res registry.Result) error {
	if err := enc.CheckResult(id, res); err != nil {
		return err
	}
	err := q.s.update(ctx, func(tx *bolt.Tx) error {
		r, err := getRequest(tx, id)
		if err != nil {
			return err
		}
		if !r.Status.Open() {
			return fmt.Errorf("request %d is already %v: %w", id, r.Status, registry.ErrConflict)
		}
		if owner != "" && (r.Status != registry.StatusSent || r.Owner != owner) {
			return fmt.Errorf("request %d is not held by %q: %w", id, owner, registry.ErrConflict)
		}
		r.Status, r.Result, r.UpdatedAt = res.Status, res, q.s.now()
		if err := putRequest(tx, r); err != nil {
			return err
		}
		return closeRequest(tx, r)
	})
	return q.s.wrap(fmt.Sprintf("complete request %d", id), err)
}

func (q queue) Get(ctx context.Context, id uint64) (*registry.Request, error) {
	var r *registry.Request
	err := q.s.view(func(tx *bolt.Tx) error {
		var err error
		r, err = getRequest(tx, id)
		return err
	})
	return r, q.s.wrap("queue", err)
}

func (q queue) List(ctx context.Context, endpoint string, status ...registry.RequestStatus) ([]*registry.Request, error) {
	var out []*registry.Request
	p := key(endpoint)
	err := q.s.view(func(tx *bolt.Tx) error {
		return prefix(tx.Bucket(bQueueEP), p, nil, func(k, _ []byte) (bool, error) {
			if len(k) != len(p)+8 {
				return false, fmt.Errorf("queue index key of %d bytes: %w", len(k), registry.ErrCorrupt)
			}
			r, err := getRequest(tx, binary.BigEndian.Uint64(k[len(p):]))
			if err != nil {
				return false, err
			}
			if len(status) == 0 || slices.Contains(status, r.Status) {
				out = append(out, r)
			}
			return true, nil
		})
	})
	return out, q.s.wrap(fmt.Sprintf("queue of %q", endpoint), err)
}

func (q queue) Expire(ctx context.Context, now time.Time) ([]*registry.Request, error) {
	var expired []*registry.Request
	err := q.s.update(ctx, func(tx *bolt.Tx) error {
		expired = expired[:0]
		var due []*registry.Request
		end := timeKey(now)
		c := tx.Bucket(bQueueDL).Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k[:8], end) <= 0; k, _ = c.Next() {
			if len(k) != 16 {
				return fmt.Errorf("deadline index key of %d bytes: %w", len(k), registry.ErrCorrupt)
			}
			r, err := getRequest(tx, binary.BigEndian.Uint64(k[8:]))
			if err != nil {
				return err
			}
			if r.Status == registry.StatusPending || (r.Status == registry.StatusSent && !now.Before(r.LeaseUntil)) {
				due = append(due, r)
			}
		}
		updated := q.s.now()
		for _, r := range due {
			r.Status, r.Result, r.UpdatedAt = registry.StatusExpired, registry.Result{Status: registry.StatusExpired}, updated
			if err := putRequest(tx, r); err != nil {
				return err
			}
			if err := closeRequest(tx, r); err != nil {
				return err
			}
		}
		slices.SortFunc(due, func(a, b *registry.Request) int { return cmp.Compare(a.ID, b.ID) })
		expired = due
		return nil
	})
	if err != nil {
		return nil, q.s.wrap("expire queued requests", err)
	}
	return expired, nil
}

func (q queue) Purge(ctx context.Context, before time.Time) (int, error) {
	var n int
	err := q.s.update(ctx, func(tx *bolt.Tx) error {
		var done []*registry.Request
		err := tx.Bucket(bQueue).ForEach(func(k, v []byte) error {
			r, err := decodeRequest(v)
			if err != nil {
				return err
			}
			if !r.Status.Open() && r.UpdatedAt.Before(before) {
				done = append(done, r)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, r := range done {
			if err := tx.Bucket(bQueue).Delete(u64(r.ID)); err != nil {
				return err
			}
			if err := tx.Bucket(bQueueEP).Delete(key(r.Endpoint, u64(r.ID))); err != nil {
				return err
			}
		}
		n = len(done)
		return nil
	})
	return n, q.s.wrap("purge queued requests", err)
}
