package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/internal/enc"
)

// Jobs live in bJobs under their ID; results in bJobResults under (job ID,
// endpoint), and the open ones (Pending, Running) also in bJobOpen.
type jobs struct{ s *Store }

func getJob(tx *bolt.Tx, id string) (*registry.Job, error) {
	data := tx.Bucket(bJobs).Get([]byte(id))
	if data == nil {
		return nil, fmt.Errorf("job %q: %w", id, registry.ErrNotFound)
	}
	return decodeJob(data)
}

func decodeJob(data []byte) (*registry.Job, error) {
	var s enc.Job
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("stored job: %v: %w", err, registry.ErrCorrupt)
	}
	return s.Job()
}

func putJob(tx *bolt.Tx, j *registry.Job) error {
	data, err := json.Marshal(enc.FromJob(j))
	if err != nil {
		return err
	}
	return tx.Bucket(bJobs).Put([]byte(j.ID), data)
}

func decodeResult(data []byte) (*registry.JobResult, error) {
	var s enc.JobResult
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("stored job result: %v: %w", err, registry.ErrCorrupt)
	}
	return s.JobResult()
}

func putResult(tx *bolt.Tx, r *registry.JobResult) error {
	data, err := json.Marshal(enc.FromJobResult(r))
	if err != nil {
		return err
	}
	k := key(r.JobID, []byte(r.Endpoint))
	if err := tx.Bucket(bJobResults).Put(k, data); err != nil {
		return err
	}
	if r.Status == registry.TargetPending || r.Status == registry.TargetRunning {
		return tx.Bucket(bJobOpen).Put(k, nil)
	}
	return tx.Bucket(bJobOpen).Delete(k)
}

func (j jobs) Create(ctx context.Context, job *registry.Job, endpoints []string) error {
	if err := enc.CheckJob(job, endpoints); err != nil {
		return err
	}
	id := job.ID
	if id == "" {
		id = registry.NewJobID()
	}
	var created *registry.Job
	err := j.s.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bJobs).Get([]byte(id)) != nil {
			return fmt.Errorf("job %q exists: %w", id, registry.ErrConflict)
		}
		now := j.s.now()
		c := *job
		c.ID, c.CreatedAt, c.UpdatedAt = id, now, now
		if err := putJob(tx, &c); err != nil {
			return err
		}
		for _, ep := range endpoints {
			r := &registry.JobResult{JobID: id, Endpoint: ep, Status: registry.TargetPending, UpdatedAt: now}
			if err := putResult(tx, r); err != nil {
				return err
			}
		}
		created = &c
		return nil
	})
	if err != nil {
		return j.s.wrap(fmt.Sprintf("create job %q", id), err)
	}
	*job = *created
	return nil
}

func (j jobs) SetStatus(ctx context.Context, id string, st registry.JobStatus) error {
	err := j.s.update(ctx, func(tx *bolt.Tx) error {
		job, err := getJob(tx, id)
		if err != nil {
			return err
		}
		job.Status, job.UpdatedAt = st, j.s.now()
		return putJob(tx, job)
	})
	return j.s.wrap(fmt.Sprintf("job %q", id), err)
}

func (j jobs) Delete(ctx context.Context, id string) error {
	err := j.s.update(ctx, func(tx *bolt.Tx) error {
		if err := tx.Bucket(bJobs).Delete([]byte(id)); err != nil {
			return err
		}
		if err := deletePrefix(tx.Bucket(bJobResults), key(id)); err != nil {
			return err
		}
		return deletePrefix(tx.Bucket(bJobOpen), key(id))
	})
	return j.s.wrap(fmt.Sprintf("delete job %q", id), err)
}

func (j jobs) Get(ctx context.Context, id string) (*registry.Job, error) {
	var job *registry.Job
	err := j.s.view(func(tx *bolt.Tx) error {
		var err error
		job, err = getJob(tx, id)
		return err
	})
	return job, j.s.wrap("jobs", err)
}

func (j jobs) List(ctx context.Context, after string, limit int) ([]*registry.Job, error) {
	var out []*registry.Job
	var start []byte
	if after != "" {
		start = append([]byte(after), 0)
	}
	err := j.s.view(func(tx *bolt.Tx) error {
		return prefix(tx.Bucket(bJobs), nil, start, func(k, v []byte) (bool, error) {
			job, err := decodeJob(v)
			if err != nil {
				return false, err
			}
			out = append(out, job)
			return limit <= 0 || len(out) < limit, nil
		})
	})
	return out, j.s.wrap("list jobs", err)
}

func (j jobs) Results(ctx context.Context, id, after string, limit int) ([]*registry.JobResult, error) {
	var out []*registry.JobResult
	var start []byte
	if after != "" {
		start = key(id, []byte(after), []byte{0})
	}
	err := j.s.view(func(tx *bolt.Tx) error {
		if _, err := getJob(tx, id); err != nil {
			return err
		}
		return prefix(tx.Bucket(bJobResults), key(id), start, func(k, v []byte) (bool, error) {
			r, err := decodeResult(v)
			if err != nil {
				return false, err
			}
			out = append(out, r)
			return limit <= 0 || len(out) < limit, nil
		})
	})
	return out, j.s.wrap(fmt.Sprintf("results of job %q", id), err)
}

func (j jobs) Claim(ctx context.Context, id, owner string, n int, now, leaseUntil time.Time) ([]*registry.JobResult, error) {
	if err := registry.CheckText("owner", owner); err != nil {
		return nil, err
	}
	var claimed []*registry.JobResult
	err := j.s.update(ctx, func(tx *bolt.Tx) error {
		claimed = nil
		job, err := getJob(tx, id)
		if err != nil {
			return err
		}
		if job.Status == registry.JobDone || job.Status == registry.JobCancelled || n <= 0 {
			return nil
		}
		err = prefix(tx.Bucket(bJobOpen), key(id), nil, func(k, _ []byte) (bool, error) {
			data := tx.Bucket(bJobResults).Get(k)
			if data == nil {
				return false, fmt.Errorf("open index names a missing result: %w", registry.ErrCorrupt)
			}
			r, err := decodeResult(data)
			if err != nil {
				return false, err
			}
			if r.Status == registry.TargetPending || (r.Status == registry.TargetRunning && !now.Before(r.LeaseUntil)) {
				claimed = append(claimed, r)
			}
			return len(claimed) < n, nil
		})
		if err != nil {
			return err
		}
		updated := j.s.now()
		for _, r := range claimed {
			r.Status, r.Owner, r.LeaseUntil, r.UpdatedAt = registry.TargetRunning, owner, registry.Time(leaseUntil), updated
			r.Attempts++
			if err := putResult(tx, r); err != nil {
				return err
			}
		}
		if job.Status == registry.JobPending && len(claimed) > 0 {
			job.Status, job.UpdatedAt = registry.JobRunning, updated
			return putJob(tx, job)
		}
		return nil
	})
	if err != nil {
		return nil, j.s.wrap(fmt.Sprintf("claim from job %q", id), err)
	}
	return claimed, nil
}

func (j jobs) Report(ctx context.Context, r *registry.JobResult) error {
	if err := enc.CheckReport(r); err != nil {
		return err
	}
	err := j.s.update(ctx, func(tx *bolt.Tx) error {
		data := tx.Bucket(bJobResults).Get(key(r.JobID, []byte(r.Endpoint)))
		if data == nil {
			return registry.ErrNotFound
		}
		cur, err := decodeResult(data)
		if err != nil {
			return err
		}
		if cur.Status != registry.TargetRunning || cur.Owner != r.Owner {
			return fmt.Errorf("target is %v, held by %q: %w", cur.Status, cur.Owner, registry.ErrConflict)
		}
		cur.Status, cur.Result, cur.Error, cur.UpdatedAt = r.Status, r.Result, r.Error, j.s.now()
		if r.Status == registry.TargetPending {
			cur.Owner, cur.LeaseUntil = "", time.Time{}
		}
		return putResult(tx, cur)
	})
	return j.s.wrap(fmt.Sprintf("report job %q, endpoint %q", r.JobID, r.Endpoint), err)
}
