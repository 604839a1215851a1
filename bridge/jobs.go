package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/lwm2md/lwm2md/bridge/subject"
	"github.com/lwm2md/lwm2md/registry"
)

// JobSpec is a job: one command for a set of devices.
type JobSpec struct {
	Op      string  `json:"op"`      // one of Ops
	Command Command `json:"command"` // as for one device; Request and Timeout are ignored
	Targets Targets `json:"targets"`
	// Concurrency bounds the devices worked on at once. Default 8.
	Concurrency int `json:"concurrency,omitempty"`
	// Deadline bounds each device's part ("10m"), the wait of a sleeping
	// device for its next wake-up included. Default 24 h.
	Deadline string `json:"deadline,omitempty"`
}

// Targets select a job's devices: the union of the endpoints listed, the
// endpoints with a tag ("key=value", or "key" for any value) and the
// registered endpoints whose name starts with Prefix ("*" for all).
type Targets struct {
	Endpoints []string `json:"endpoints,omitempty"`
	Tag       string   `json:"tag,omitempty"`
	Prefix    string   `json:"prefix,omitempty"`
}

// JobEvent is the payload of {prefix}.jobs.{job}.created, .progress and
// .done.
type JobEvent struct {
	Job       string    `json:"job"`
	Event     string    `json:"event"` // created, progress, done
	Time      time.Time `json:"time"`
	Op        string    `json:"op,omitempty"`
	Total     int       `json:"total"`
	Succeeded int       `json:"succeeded"`
	Failed    int       `json:"failed"`
	// Endpoint and Reply are the device a progress event reports on and
	// what it answered.
	Endpoint string `json:"endpoint,omitempty"`
	Reply    *Reply `json:"reply,omitempty"`
}

// JobsConfig configures the job runner.
type JobsConfig struct {
	Commands      *Commands
	Jobs          registry.Jobs
	Tags          registry.TagReader
	Registrations registry.RegistrationReader
	// Owner names this node in the registry's leases. Default: a random ID.
	Owner string
	// Publish hands out the progress messages (to the outboxes).
	Publish func(Message)
	// Now is the clock of the registry's leases. Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Jobs runs jobs: it stores a job and its targets in the registry, works
// on them with the job's concurrency (several nodes may share a job
// through the registry's Claim), reports each device's outcome to the
// registry and publishes progress.
type Jobs struct {
	cfg    JobsConfig
	log    *slog.Logger
	ids    *idSource
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	active map[string]bool
}

// NewJobs returns the job runner; Close stops it (the jobs stay in the
// registry, Resume picks them up).
func NewJobs(cfg JobsConfig) (*Jobs, error) {
	if cfg.Commands == nil || cfg.Jobs == nil || cfg.Registrations == nil {
		return nil, errors.New("bridge: JobsConfig needs Commands, Jobs and Registrations")
	}
	ids := newIDSource()
	if cfg.Owner == "" {
		cfg.Owner = "lwm2md-" + ids.prefix
	}
	if cfg.Publish == nil {
		cfg.Publish = func(Message) {}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Jobs{cfg: cfg, log: log, ids: ids, ctx: ctx, cancel: cancel, active: map[string]bool{}}, nil
}

// Close stops the work in progress and waits for it.
func (j *Jobs) Close() {
	j.cancel()
	j.wg.Wait()
}

// check validates a spec and fills in its defaults.
func (spec *JobSpec) check() (time.Duration, error) {
	if !knownOp(spec.Op) {
		return 0, fmt.Errorf("bridge: job: op %q is not one of %s", spec.Op, strings.Join(Ops, ", "))
	}
	if spec.Concurrency <= 0 {
		spec.Concurrency = 8
	}
	if spec.Concurrency > 1024 {
		return 0, fmt.Errorf("bridge: job: concurrency %d is over 1024", spec.Concurrency)
	}
	d := 24 * time.Hour
	if spec.Deadline != "" {
		var err error
		if d, err = time.ParseDuration(spec.Deadline); err != nil || d <= 0 {
			return 0, fmt.Errorf("bridge: job: deadline %q is not a positive duration", spec.Deadline)
		}
	}
	spec.Command.Request, spec.Command.Timeout = "", ""
	return d, nil
}

// Submit stores the job with its targets and starts it. It returns the
// job and the number of targets; a spec that selects no device is an
// error.
func (j *Jobs) Submit(ctx context.Context, spec JobSpec) (*registry.Job, int, error) {
	if _, err := spec.check(); err != nil {
		return nil, 0, err
	}
	eps, err := j.targets(ctx, spec.Targets)
	if err != nil {
		return nil, 0, err
	}
	if len(eps) == 0 {
		return nil, 0, errors.New("bridge: job: the targets select no device")
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, 0, fmt.Errorf("bridge: job: %w", err)
	}
	job := &registry.Job{Kind: spec.Op, Spec: raw, Status: registry.JobRunning}
	if err := j.cfg.Jobs.Create(ctx, job, eps); err != nil {
		return nil, 0, fmt.Errorf("bridge: job: %w", err)
	}
	j.publish(JobEvent{Job: job.ID, Event: "created", Time: time.Now().UTC(), Op: spec.Op, Total: len(eps)})
	j.start(job.ID, spec, len(eps))
	return job, len(eps), nil
}

// Resume starts the work on the jobs the registry holds as pending or
// running (after a restart).
func (j *Jobs) Resume(ctx context.Context) error {
	jobs, err := j.cfg.Jobs.List(ctx, "", 0)
	if err != nil {
		return fmt.Errorf("bridge: jobs: %w", err)
	}
	for _, job := range jobs {
		if job.Status != registry.JobPending && job.Status != registry.JobRunning {
			continue
		}
		var spec JobSpec
		if err := json.Unmarshal(job.Spec, &spec); err != nil {
			j.log.Warn("bridge: job with an unreadable spec left alone", "job", job.ID, "err", err)
			continue
		}
		rs, err := j.cfg.Jobs.Results(ctx, job.ID, "", 0)
		if err != nil {
			return fmt.Errorf("bridge: job %s: %w", job.ID, err)
		}
		j.start(job.ID, spec, len(rs))
	}
	return nil
}

func (j *Jobs) targets(ctx context.Context, t Targets) ([]string, error) {
	set := map[string]bool{}
	for _, ep := range t.Endpoints {
		if err := registry.CheckEndpoint(ep); err != nil {
			return nil, fmt.Errorf("bridge: job: targets.endpoints: %w", err)
		}
		set[ep] = true
	}
	if t.Tag != "" {
		if j.cfg.Tags == nil {
			return nil, errors.New("bridge: job: targets.tag: no tag store")
		}
		k, v, hasValue := strings.Cut(t.Tag, "=")
		eps, err := j.cfg.Tags.Find(ctx, registry.TagQuery{Key: k, Value: v, AnyValue: !hasValue})
		if err != nil {
			return nil, fmt.Errorf("bridge: job: targets.tag: %w", err)
		}
		for _, ep := range eps {
			set[ep] = true
		}
	}
	if t.Prefix != "" {
		f := registry.RegistrationFilter{Prefix: t.Prefix}
		if t.Prefix == "*" {
			f.Prefix = ""
		}
		regs, err := j.cfg.Registrations.List(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("bridge: job: targets.prefix: %w", err)
		}
		for _, r := range regs {
			set[r.Endpoint] = true
		}
	}
	out := make([]string, 0, len(set))
	for ep := range set {
		out = append(out, ep)
	}
	return out, nil
}

// start runs spec.Concurrency workers on the job, unless this node
// already works on it.
func (j *Jobs) start(id string, spec JobSpec, total int) {
	deadline, err := spec.check()
	if err != nil {
		j.log.Warn("bridge: job not started", "job", id, "err", err)
		return
	}
	j.mu.Lock()
	if j.active[id] {
		j.mu.Unlock()
		return
	}
	j.active[id] = true
	j.mu.Unlock()
	p := &jobProgress{id: id, op: spec.Op, total: total}
	var workers sync.WaitGroup
	for range spec.Concurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			j.work(p, spec, deadline)
		}()
	}
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		workers.Wait()
		j.mu.Lock()
		delete(j.active, id)
		j.mu.Unlock()
		j.finish(p)
	}()
}

type jobProgress struct {
	id, op            string
	mu                sync.Mutex
	total             int
	succeeded, failed int
}

// work claims one target at a time until none is left.
func (j *Jobs) work(p *jobProgress, spec JobSpec, deadline time.Duration) {
	for j.ctx.Err() == nil {
		now := j.cfg.Now()
		// The lease outlasts the device's deadline, so that no other node
		// takes the target while this one still waits for it.
		rs, err := j.cfg.Jobs.Claim(j.ctx, p.id, j.cfg.Owner, 1, now, now.Add(deadline+time.Minute))
		if err != nil {
			if j.ctx.Err() == nil {
				j.log.Warn("bridge: job claim failed", "job", p.id, "err", err)
			}
			return
		}
		if len(rs) == 0 {
			return
		}
		j.runTarget(p, spec, deadline, rs[0])
	}
}

func (j *Jobs) runTarget(p *jobProgress, spec JobSpec, deadline time.Duration, r *registry.JobResult) {
	ctx, cancel := context.WithTimeout(j.ctx, deadline)
	rep := j.cfg.Commands.Run(ctx, r.Endpoint, spec.Op, spec.Command)
	cancel()
	if j.ctx.Err() != nil {
		// Stopping: leave the target to the lease, to be taken again.
		return
	}
	r.Status, r.Error = registry.TargetSucceeded, ""
	if rep.Status != "ok" {
		r.Status = registry.TargetFailed
		if rep.Error != nil {
			r.Error = rep.Error.Code + ": " + rep.Error.Message
		}
	}
	r.Result, _ = json.Marshal(rep)
	if err := j.cfg.Jobs.Report(j.ctx, r); err != nil {
		j.log.Warn("bridge: job report failed", "job", p.id, "endpoint", r.Endpoint, "err", err)
		return
	}
	p.mu.Lock()
	if r.Status == registry.TargetSucceeded {
		p.succeeded++
	} else {
		p.failed++
	}
	ev := JobEvent{Job: p.id, Event: "progress", Time: time.Now().UTC(), Op: p.op, Total: p.total,
		Succeeded: p.succeeded, Failed: p.failed, Endpoint: r.Endpoint, Reply: &rep}
	p.mu.Unlock()
	j.publish(ev)
}

// finish marks the job done when every target has its outcome (another
// node may still hold some), and publishes the summary from the registry.
func (j *Jobs) finish(p *jobProgress) {
	if j.ctx.Err() != nil {
		return
	}
	rs, err := j.cfg.Jobs.Results(j.ctx, p.id, "", 0)
	if err != nil {
		j.log.Warn("bridge: job results not read", "job", p.id, "err", err)
		return
	}
	ev := JobEvent{Job: p.id, Event: "done", Op: p.op, Total: len(rs)}
	for _, r := range rs {
		switch r.Status {
		case registry.TargetSucceeded:
			ev.Succeeded++
		case registry.TargetFailed:
			ev.Failed++
		default:
			return // still in the hands of another node
		}
	}
	if err := j.cfg.Jobs.SetStatus(j.ctx, p.id, registry.JobDone); err != nil {
		j.log.Warn("bridge: job status not stored", "job", p.id, "err", err)
		return
	}
	ev.Time = time.Now().UTC()
	j.publish(ev)
}

func (j *Jobs) publish(ev JobEvent) {
	data, err := json.Marshal(ev)
	if err != nil {
		j.log.Error("bridge: job event not encoded", "job", ev.Job, "err", err)
		return
	}
	id := ev.Job + "-" + ev.Event
	if ev.Event == "progress" {
		id += "-" + ev.Endpoint
	}
	j.cfg.Publish(Message{Tokens: []string{"jobs", subject.Escape(ev.Job), ev.Event}, ID: id, ContentType: "application/json", Data: data})
}
