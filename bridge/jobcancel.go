package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lwm2md/lwm2md/internal/pubsub"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/linkformat"
	"github.com/lwm2md/lwm2md/registry"
)

// ErrJobFinished is the error of cancelling a job that already ended
// (done or cancelled).
var ErrJobFinished = errors.New("bridge: the job already ended")

// SpecError says which field of a job spec is wrong: "op", "concurrency",
// "deadline", "targets", "targets.endpoints", "targets.tag",
// "command.path", "command.node", "command.format", "command.attributes".
type SpecError struct {
	Field  string
	Reason string
}

func (e *SpecError) Error() string { return "bridge: job: " + e.Field + ": " + e.Reason }

func specError(field, reason string) error { return &SpecError{Field: field, Reason: reason} }

// check refuses a command that no device could carry out, before the job
// is stored; what needs the device's object models (the node's types) is
// checked per device, when the command runs.
func (c Command) check(op string) error {
	p, err := objects.ParsePath(c.Path)
	if err != nil {
		return specError("command.path", fmt.Sprintf("%q is not an LwM2M path (/3/0/1): %v", c.Path, err))
	}
	if c.Format != "" {
		if _, err := objects.ParseFormat(c.Format); err != nil {
			return specError("command.format", fmt.Sprintf("%q is not a content format", c.Format))
		}
	}
	switch op {
	case "write":
		if len(c.Node) == 0 {
			return specError("command.node", "required for write")
		}
	case "create":
		if !p.IsObject() {
			return specError("command.path", "create needs an object path (/3303)")
		}
		if len(c.Node) == 0 {
			return specError("command.node", "required for create (the instance)")
		}
	case "write-attributes":
		var q []string
		if c.Attributes != "" {
			q = strings.Split(c.Attributes, "&")
		}
		if _, err := linkformat.ParseQuery(q); err != nil {
			return specError("command.attributes", err.Error())
		}
	}
	return nil
}

// JobSubscription receives the job events (created, progress, done,
// cancelled) on C, never blocking the jobs: when C is full an event is
// dropped for this subscriber and counted. Close ends it; Jobs.Close ends
// them all.
type JobSubscription = pubsub.Subscription[JobEvent]

// Subscribe returns a subscription to the job events with a channel of
// buffer events.
func (j *Jobs) Subscribe(buffer int) *JobSubscription { return j.events.Subscribe(buffer) }

// Get returns a stored job (registry.ErrNotFound when there is none).
func (j *Jobs) Get(ctx context.Context, id string) (*registry.Job, error) {
	return j.cfg.Jobs.Get(ctx, id)
}

// List returns the stored jobs sorted by ID, after after, at most limit
// (0: all).
func (j *Jobs) List(ctx context.Context, after string, limit int) ([]*registry.Job, error) {
	return j.cfg.Jobs.List(ctx, after, limit)
}

// Results returns a job's per-device results sorted by endpoint.
func (j *Jobs) Results(ctx context.Context, id, after string, limit int) ([]*registry.JobResult, error) {
	return j.cfg.Jobs.Results(ctx, id, after, limit)
}

// Cancel stops a job: this node's workers stop (a device's call in
// progress ends, and a request waiting in a sleeping device's queue is
// withdrawn), every target not yet done ends as cancelled, the job is
// stored as cancelled, and the summary is published as the "cancelled"
// event and returned. Other nodes working on the job see the status
// within JobsConfig.StatusPoll and stop theirs. A job that already
// ended is ErrJobFinished; an unknown one wraps registry.ErrNotFound.
func (j *Jobs) Cancel(ctx context.Context, id string) (JobEvent, error) {
	j.cancelMu.Lock()
	defer j.cancelMu.Unlock()
	job, err := j.cfg.Jobs.Get(ctx, id)
	if err != nil {
		return JobEvent{}, fmt.Errorf("bridge: job %s: %w", id, err)
	}
	if job.Status == registry.JobDone || job.Status == registry.JobCancelled {
		return JobEvent{}, fmt.Errorf("bridge: job %s is %s: %w", id, job.Status, ErrJobFinished)
	}
	j.mu.Lock()
	rj := j.active[id]
	j.mu.Unlock()
	if rj != nil {
		rj.cancelled.Store(true)
		rj.cancel()
	}
	// Take every target nobody works on (pending, or held by a lease that
	// ran out) while the job still lets them be claimed; the workers of
	// other nodes keep theirs and end them when they see the status.
	var claimed []*registry.JobResult
	for {
		now := j.cfg.Now()
		rs, err := j.cfg.Jobs.Claim(ctx, id, j.cfg.Owner, 512, now, now.Add(time.Minute))
		if err != nil {
			return JobEvent{}, fmt.Errorf("bridge: job %s: cancel: %w", id, err)
		}
		if len(rs) == 0 {
			break
		}
		claimed = append(claimed, rs...)
	}
	if err := j.cfg.Jobs.SetStatus(ctx, id, registry.JobCancelled); err != nil {
		return JobEvent{}, fmt.Errorf("bridge: job %s: cancel: %w", id, err)
	}
	for _, r := range claimed {
		r.Status, r.Error, r.Result = registry.TargetCancelled, "job cancelled", nil
		if err := j.cfg.Jobs.Report(ctx, r); err != nil {
			return JobEvent{}, fmt.Errorf("bridge: job %s: cancel %s: %w", id, r.Endpoint, err)
		}
	}
	if rj != nil {
		select {
		case <-rj.done: // the running targets are reported
		case <-ctx.Done():
			return JobEvent{}, fmt.Errorf("bridge: job %s: cancel: %w", id, ctx.Err())
		}
	}
	ev, _, err := j.summary(ctx, id)
	if err != nil {
		return JobEvent{}, fmt.Errorf("bridge: job %s: %w", id, err)
	}
	ev.Event, ev.Op, ev.Time = "cancelled", job.Kind, time.Now().UTC()
	j.publish(ev)
	return ev, nil
}
