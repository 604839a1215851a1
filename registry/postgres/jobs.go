package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/internal/enc"
)

type jobs struct{ s *Store }

const jobColumns = "id, kind, spec, status, created_at, updated_at"

func scanJob(row pgx.Row) (*registry.Job, error) {
	var s enc.Job
	var spec []byte
	if err := row.Scan(&s.ID, &s.Kind, &spec, &s.Status, &s.CreatedAt, &s.UpdatedAt); err != nil {
		return nil, err
	}
	if spec != nil {
		s.Spec = json.RawMessage(spec)
	}
	return s.Job()
}

const resultColumns = "job_id, endpoint, status, owner, lease_until, attempts, result, error, updated_at"

func scanResult(row pgx.Row) (*registry.JobResult, error) {
	var s enc.JobResult
	var lease *time.Time
	var result []byte
	if err := row.Scan(&s.JobID, &s.Endpoint, &s.Status, &s.Owner, &lease, &s.Attempts, &result, &s.Error, &s.UpdatedAt); err != nil {
		return nil, err
	}
	s.LeaseUntil = fromNull(lease)
	if result != nil {
		s.Result = json.RawMessage(result)
	}
	return s.JobResult()
}

func collectResults(rows pgx.Rows, err error) ([]*registry.JobResult, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*registry.JobResult
	for rows.Next() {
		r, err := scanResult(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// jsonArg passes a JSON document, or NULL when there is none.
func jsonArg(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

func (j jobs) Create(ctx context.Context, job *registry.Job, endpoints []string) error {
	if err := enc.CheckJob(job, endpoints); err != nil {
		return err
	}
	c := *job
	if c.ID == "" {
		c.ID = registry.NewJobID()
	}
	now := j.s.now()
	c.CreatedAt, c.UpdatedAt = now, now
	err := j.s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "INSERT INTO jobs ("+jobColumns+") VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (id) DO NOTHING",
			c.ID, c.Kind, jsonArg(c.Spec), c.Status.String(), now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("job %q exists: %w", c.ID, registry.ErrConflict)
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO job_results (job_id, endpoint, status, owner, attempts, error, updated_at)
			SELECT $1, unnest($2::text[]), 'pending', '', 0, '', $3`, c.ID, endpoints, now)
		return err
	})
	if err != nil {
		return wrapErr(fmt.Sprintf("create job %q", c.ID), err)
	}
	*job = c
	return nil
}

func (j jobs) SetStatus(ctx context.Context, id string, st registry.JobStatus) error {
	p, err := j.s.q()
	if err != nil {
		return err
	}
	tag, err := p.Exec(ctx, "UPDATE jobs SET status = $2, updated_at = $3 WHERE id = $1", id, st.String(), j.s.now())
	if err == nil && tag.RowsAffected() == 0 {
		err = registry.ErrNotFound
	}
	return wrapErr(fmt.Sprintf("job %q", id), err)
}

func (j jobs) Delete(ctx context.Context, id string) error {
	p, err := j.s.q()
	if err != nil {
		return err
	}
	_, err = p.Exec(ctx, "DELETE FROM jobs WHERE id = $1", id) // results cascade
	return wrapErr(fmt.Sprintf("delete job %q", id), err)
}

func (j jobs) Get(ctx context.Context, id string) (*registry.Job, error) {
	p, err := j.s.q()
	if err != nil {
		return nil, err
	}
	job, err := scanJob(p.QueryRow(ctx, "SELECT "+jobColumns+" FROM jobs WHERE id = $1", id))
	return job, wrapErr(fmt.Sprintf("job %q", id), err)
}

func (j jobs) List(ctx context.Context, after string, n int) ([]*registry.Job, error) {
	p, err := j.s.q()
	if err != nil {
		return nil, err
	}
	rows, err := p.Query(ctx, "SELECT "+jobColumns+" FROM jobs WHERE id > $1 ORDER BY id LIMIT $2", after, limit(n))
	if err != nil {
		return nil, wrapErr("list jobs", err)
	}
	defer rows.Close()
	var out []*registry.Job
	for rows.Next() {
		job, err := scanJob(rows)
		if err != nil {
			return nil, wrapErr("list jobs", err)
		}
		out = append(out, job)
	}
	return out, wrapErr("list jobs", rows.Err())
}

func (j jobs) Results(ctx context.Context, id, after string, n int) ([]*registry.JobResult, error) {
	what := fmt.Sprintf("results of job %q", id)
	var out []*registry.JobResult
	err := j.s.tx(ctx, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1 FROM jobs WHERE id = $1", id).Scan(&one); err != nil {
			return err
		}
		var err error
		out, err = collectResults(tx.Query(ctx, "SELECT "+resultColumns+` FROM job_results
			WHERE job_id = $1 AND endpoint > $2 ORDER BY endpoint LIMIT $3`, id, after, limit(n)))
		return err
	})
	return out, wrapErr(what, err)
}

// claimTargets takes up to $6 claimable targets of job $1 that no other
// transaction is claiming (SKIP LOCKED), in endpoint order.
const claimTargets = `
UPDATE job_results r SET status = 'running', owner = $2, lease_until = $4, attempts = r.attempts + 1, updated_at = $5
FROM (
	SELECT job_id, endpoint FROM job_results
	WHERE job_id = $1 AND (status = 'pending' OR (status = 'running' AND lease_until <= $3))
	ORDER BY endpoint LIMIT $6
	FOR UPDATE SKIP LOCKED
) c
WHERE r.job_id = c.job_id AND r.endpoint = c.endpoint
RETURNING r.job_id, r.endpoint, r.status, r.owner, r.lease_until, r.attempts, r.result, r.error, r.updated_at`

func (j jobs) Claim(ctx context.Context, id, owner string, n int, now, leaseUntil time.Time) ([]*registry.JobResult, error) {
	if err := registry.CheckText("owner", owner); err != nil {
		return nil, err
	}
	var claimed []*registry.JobResult
	err := j.s.tx(ctx, func(tx pgx.Tx) error {
		var status string
		if err := tx.QueryRow(ctx, "SELECT status FROM jobs WHERE id = $1", id).Scan(&status); err != nil {
			return err
		}
		if status == registry.JobDone.String() || status == registry.JobCancelled.String() || n <= 0 {
			return nil
		}
		updated := j.s.now()
		var err error
		claimed, err = collectResults(tx.Query(ctx, claimTargets, id, owner, registry.Time(now), nullTime(leaseUntil), updated, n))
		if err != nil || len(claimed) == 0 {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE jobs SET status = 'running', updated_at = $2 WHERE id = $1 AND status = 'pending'", id, updated)
		return err
	})
	if err != nil {
		return nil, wrapErr(fmt.Sprintf("claim from job %q", id), err)
	}
	// RETURNING does not keep the subquery's order.
	slicesSortResults(claimed)
	return claimed, nil
}

func (j jobs) Report(ctx context.Context, r *registry.JobResult) error {
	if err := enc.CheckReport(r); err != nil {
		return err
	}
	err := j.s.tx(ctx, func(tx pgx.Tx) error {
		var status, owner string
		err := tx.QueryRow(ctx, "SELECT status, owner FROM job_results WHERE job_id = $1 AND endpoint = $2 FOR UPDATE",
			r.JobID, r.Endpoint).Scan(&status, &owner)
		if err != nil {
			return err
		}
		if status != registry.TargetRunning.String() || owner != r.Owner {
			return fmt.Errorf("target is %s, held by %q: %w", status, owner, registry.ErrConflict)
		}
		if r.Status == registry.TargetPending {
			_, err = tx.Exec(ctx, `UPDATE job_results SET status = 'pending', owner = '', lease_until = NULL, result = $3, error = $4, updated_at = $5
				WHERE job_id = $1 AND endpoint = $2`, r.JobID, r.Endpoint, jsonArg(r.Result), r.Error, j.s.now())
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE job_results SET status = $3, result = $4, error = $5, updated_at = $6
			WHERE job_id = $1 AND endpoint = $2`, r.JobID, r.Endpoint, r.Status.String(), jsonArg(r.Result), r.Error, j.s.now())
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		err = registry.ErrNotFound
	}
	return wrapErr(fmt.Sprintf("report job %q, endpoint %q", r.JobID, r.Endpoint), err)
}

func slicesSortResults(rs []*registry.JobResult) {
	slices.SortFunc(rs, func(a, b *registry.JobResult) int { return strings.Compare(a.Endpoint, b.Endpoint) })
}
