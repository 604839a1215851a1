package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/internal/enc"
)

type queue struct{ s *Store }

const requestColumns = `id, endpoint, operation, path, format, payload, deadline, job_id, status, owner,
	lease_until, attempts, result_status, result_code, result_format, result_payload, result_error,
	created_at, updated_at`

// open is the SQL condition of an open request that is live at $2.
const liveAt2 = `status IN ('pending', 'sent') AND (deadline IS NULL OR deadline > $2)`

func scanRequest(row pgx.Row) (*registry.Request, error) {
	var r registry.Request
	var path, status string
	var format int32
	var deadline, lease *time.Time
	var resStatus, resError *string
	var resCode *int16
	var resFormat *int32
	var resPayload []byte
	err := row.Scan(&r.ID, &r.Endpoint, &r.Operation, &path, &format, &r.Payload, &deadline, &r.JobID, &status, &r.Owner,
		&lease, &r.Attempts, &resStatus, &resCode, &resFormat, &resPayload, &resError, &r.CreatedAt, &r.UpdatedAt)
	if err != nil {
		return nil, err
	}
	if r.Path, err = objects.ParsePath(path); err != nil {
		return nil, fmt.Errorf("stored request %d: %v: %w", r.ID, err, registry.ErrCorrupt)
	}
	if r.Status, err = registry.ParseRequestStatus(status); err != nil {
		return nil, fmt.Errorf("stored request %d: %w", r.ID, err)
	}
	r.Format, r.Deadline, r.LeaseUntil = objects.Format(format), fromNull(deadline), fromNull(lease)
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	if resStatus != nil {
		if r.Result.Status, err = registry.ParseRequestStatus(*resStatus); err != nil {
			return nil, fmt.Errorf("stored request %d: %w", r.ID, err)
		}
		if resCode != nil {
			r.Result.Code = uint8(*resCode)
		}
		if resFormat != nil {
			r.Result.Format = objects.Format(*resFormat)
		}
		if resError != nil {
			r.Result.Error = *resError
		}
		r.Result.Payload = resPayload
	}
	return &r, nil
}

func collectRequests(rows pgx.Rows, err error) ([]*registry.Request, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*registry.Request
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (q queue) Enqueue(ctx context.Context, r *registry.Request) (uint64, error) {
	if err := enc.CheckRequest(r); err != nil {
		return 0, err
	}
	p, err := q.s.q()
	if err != nil {
		return 0, err
	}
	now := q.s.now()
	var id uint64
	err = p.QueryRow(ctx, `
		INSERT INTO queue (endpoint, operation, path, format, payload, deadline, job_id, status, owner, attempts, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', '', 0, $8, $8) RETURNING id`,
		r.Endpoint, r.Operation, r.Path.String(), int32(r.Format), r.Payload, nullTime(r.Deadline), r.JobID, now).Scan(&id)
	if err != nil {
		return 0, wrapErr(fmt.Sprintf("enqueue for %q", r.Endpoint), err)
	}
	return id, nil
}

func (q queue) Peek(ctx context.Context, endpoint string, now time.Time) (*registry.Request, error) {
	p, err := q.s.q()
	if err != nil {
		return nil, err
	}
	r, err := scanRequest(p.QueryRow(ctx, "SELECT "+requestColumns+" FROM queue WHERE endpoint = $1 AND "+liveAt2+" ORDER BY id LIMIT 1",
		endpoint, registry.Time(now)))
	return r, wrapErr(fmt.Sprintf("queue of %q", endpoint), err)
}

// claimHead locks the head of the queue unless another claimer holds
// the lock: SKIP LOCKED then returns no row, and the head is busy.
const claimHead = "SELECT " + requestColumns + ` FROM queue WHERE id = (
	SELECT id FROM queue WHERE endpoint = $1 AND ` + liveAt2 + ` ORDER BY id LIMIT 1)
	FOR UPDATE SKIP LOCKED`

func (q queue) Claim(ctx context.Context, endpoint, owner string, now, leaseUntil time.Time) (*registry.Request, error) {
	if err := registry.CheckText("owner", owner); err != nil {
		return nil, err
	}
	now = registry.Time(now)
	var claimed *registry.Request
	err := q.s.tx(ctx, func(tx pgx.Tx) error {
		// The head seen by the subquery may finish before the lock is
		// taken; then the next one is the head: look again.
		for range 3 {
			h, err := scanRequest(tx.QueryRow(ctx, claimHead, endpoint, now))
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("no request to claim: %w", registry.ErrNotFound)
			}
			if err != nil {
				return err
			}
			if !h.Status.Open() || (!h.Deadline.IsZero() && !now.Before(h.Deadline)) {
				continue
			}
			if h.Status == registry.StatusSent && now.Before(h.LeaseUntil) {
				return fmt.Errorf("request %d is held by %q: %w", h.ID, h.Owner, registry.ErrNotFound)
			}
			claimed, err = scanRequest(tx.QueryRow(ctx, `
				UPDATE queue SET status = 'sent', owner = $2, lease_until = $3, attempts = attempts + 1, updated_at = $4
				WHERE id = $1 RETURNING `+requestColumns, h.ID, owner, nullTime(leaseUntil), q.s.now()))
			return err
		}
		return fmt.Errorf("the head keeps moving: %w", registry.ErrNotFound)
	})
	if err != nil {
		return nil, wrapErr(fmt.Sprintf("claim from the queue of %q", endpoint), err)
	}
	return claimed, nil
}

func (q queue) Complete(ctx context.Context, id uint64, owner string, res registry.Result) error {
	if err := enc.CheckResult(id, res); err != nil {
		return err
	}
	err := q.s.tx(ctx, func(tx pgx.Tx) error {
		var status, holder string
		if err := tx.QueryRow(ctx, "SELECT status, owner FROM queue WHERE id = $1 FOR UPDATE", id).Scan(&status, &holder); err != nil {
			return err
		}
		st, err := registry.ParseRequestStatus(status)
		if err != nil {
			return err
		}
		if !st.Open() {
			return fmt.Errorf("request %d is already %v: %w", id, st, registry.ErrConflict)
		}
		if owner != "" && (st != registry.StatusSent || holder != owner) {
			return fmt.Errorf("request %d is not held by %q: %w", id, owner, registry.ErrConflict)
		}
		_, err = tx.Exec(ctx, `
			UPDATE queue SET status = $2, result_status = $2, result_code = $3, result_format = $4,
				result_payload = $5, result_error = $6, updated_at = $7
			WHERE id = $1`,
			id, res.Status.String(), int16(res.Code), int32(res.Format), res.Payload, res.Error, q.s.now())
		return err
	})
	return wrapErr(fmt.Sprintf("complete request %d", id), err)
}

func (q queue) Get(ctx context.Context, id uint64) (*registry.Request, error) {
	p, err := q.s.q()
	if err != nil {
		return nil, err
	}
	r, err := scanRequest(p.QueryRow(ctx, "SELECT "+requestColumns+" FROM queue WHERE id = $1", id))
	return r, wrapErr(fmt.Sprintf("request %d", id), err)
}

func (q queue) List(ctx context.Context, endpoint string, status ...registry.RequestStatus) ([]*registry.Request, error) {
	p, err := q.s.q()
	if err != nil {
		return nil, err
	}
	names := []string{} // not nil: NULL would match nothing
	for _, st := range status {
		names = append(names, st.String())
	}
	rs, err := collectRequests(p.Query(ctx, "SELECT "+requestColumns+` FROM queue
		WHERE endpoint = $1 AND (cardinality($2::text[]) = 0 OR status = ANY($2)) ORDER BY id`, endpoint, names))
	return rs, wrapErr(fmt.Sprintf("queue of %q", endpoint), err)
}

func (q queue) Expire(ctx context.Context, now time.Time) ([]*registry.Request, error) {
	p, err := q.s.q()
	if err != nil {
		return nil, err
	}
	rs, err := collectRequests(p.Query(ctx, `
		UPDATE queue SET status = 'expired', result_status = 'expired', updated_at = $2
		WHERE deadline <= $1 AND (status = 'pending' OR (status = 'sent' AND lease_until <= $1))
		RETURNING `+requestColumns, registry.Time(now), q.s.now()))
	if err != nil {
		return nil, wrapErr("expire queued requests", err)
	}
	slices.SortFunc(rs, func(a, b *registry.Request) int { return cmp.Compare(a.ID, b.ID) })
	return rs, nil
}

func (q queue) Purge(ctx context.Context, before time.Time) (int, error) {
	p, err := q.s.q()
	if err != nil {
		return 0, err
	}
	tag, err := p.Exec(ctx, "DELETE FROM queue WHERE status NOT IN ('pending', 'sent') AND updated_at < $1", before)
	if err != nil {
		return 0, wrapErr("purge queued requests", err)
	}
	return int(tag.RowsAffected()), nil
}
