package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lwm2md/lwm2md/bridge/subject"
	"github.com/lwm2md/lwm2md/internal/pubsub"
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

// JobEvents are the kinds of JobEvent, the third token of their subjects.
var JobEvents = []string{"created", "progress", "done", "cancelled"}

// JobEvent is the payload of {prefix}.jobs.{event}.{job}: created,
// progress (one per device), done and cancelled. The event comes before
// the job so that the JetStream stream can capture these subjects beside
// {prefix}.*.data.> (natsbridge.StreamSubjects).
type JobEvent struct {
	Job       string    `json:"job"`
	Event     string    `json:"event"` // created, progress, done, cancelled
	Time      time.Time `json:"time"`
	Op        string    `json:"op,omitempty"`
	Total     int       `json:"total"`
	Succeeded int       `json:"succeeded"`
	Failed    int       `json:"failed"`
	// Cancelled counts the devices whose part the job's cancellation
	// ended (cancelled only).
	Cancelled int `json:"cancelled,omitempty"`
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
	// Owner names this node in the registry's leases. A node that keeps
	// its name across restarts takes back at Resume the targets it held
	// when it stopped, crashed or not (their leases outlast the device's
	// deadline); nodes sharing a registry need distinct names. Default: a
	// random ID, whose targets wait for their leases after a restart.
	Owner string
	// Publish hands out the progress messages (to the outboxes).
	Publish func(Message)
	// Now is the clock of the registry's leases. Default time.Now.
	Now func() time.Time
	// StatusPoll is how often a running job's status is read back from
	// the registry, so that a cancellation made on another node stops
	// this node's work on it too. Default 2 s.
	StatusPoll time.Duration
	Logger     *slog.Logger
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
	active map[string]*runningJob
	events *pubsub.Hub[JobEvent]
	// cancelMu makes cancellations on this node one at a time.
	cancelMu sync.Mutex
}

// runningJob is this node's work on one job.
type runningJob struct {
	ctx       context.Context // ends when the job is cancelled or Jobs closes
	cancel    context.CancelFunc
	cancelled atomic.Bool   // by Cancel or seen in the registry
	done      chan struct{} // closed when this node's workers ended
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
	if cfg.StatusPoll <= 0 {
		cfg.StatusPoll = 2 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Jobs{cfg: cfg, log: log, ids: ids, ctx: ctx, cancel: cancel, active: map[string]*runningJob{}, events: pubsub.New[JobEvent]()}, nil
}

// Close stops the work in progress, waits for it and ends the
// subscriptions.
func (j *Jobs) Close() {
	j.cancel()
	j.wg.Wait()
	j.events.Close()
}

// check validates a spec and fills in its defaults.
func (spec *JobSpec) check() (time.Duration, error) {
	if !knownOp(spec.Op) {
		return 0, specError("op", fmt.Sprintf("%q is not one of %s", spec.Op, strings.Join(Ops, ", ")))
	}
	if spec.Concurrency < 0 || spec.Concurrency > 1024 {
		return 0, specError("concurrency", fmt.Sprintf("%d is not from 1 to 1024", spec.Concurrency))
	}
	if spec.Concurrency == 0 {
		spec.Concurrency = 8
	}
	d := 24 * time.Hour
	if spec.Deadline != "" {
		var err error
		if d, err = time.ParseDuration(spec.Deadline); err != nil || d <= 0 {
			return 0, specError("deadline", fmt.Sprintf("%q is not a positive duration (e.g. 10m)", spec.Deadline))
		}
	}
	if err := spec.Command.check(spec.Op); err != nil {
		return 0, err
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
		return nil, 0, specError("targets", "they select no device (give endpoints, a tag or a prefix)")
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
		if err := j.takeBack(ctx, job.ID, rs); err != nil {
			return err
		}
		j.start(job.ID, spec, len(rs))
	}
	return nil
}

// takeBack gives back the targets of a job that this node's name holds
// but no worker of this process works on: the previous run of the node
// held them when it stopped or was killed. Their leases outlast the
// device's deadline (24 h by default), so that without this the devices
// would wait that long; given back, they are claimed again at once.
func (j *Jobs) takeBack(ctx context.Context, id string, rs []*registry.JobResult) error {
	j.mu.Lock()
	active := j.active[id] != nil
	j.mu.Unlock()
	if active {
		return nil
	}
	for _, r := range rs {
		if r.Status != registry.TargetRunning || r.Owner != j.cfg.Owner {
			continue
		}
		back := &registry.JobResult{JobID: id, Endpoint: r.Endpoint, Owner: r.Owner, Status: registry.TargetPending}
		if err := j.cfg.Jobs.Report(ctx, back); err != nil && !errors.Is(err, registry.ErrConflict) {
			return fmt.Errorf("bridge: job %s: give back %s: %w", id, r.Endpoint, err)
		}
		j.log.Info("bridge: job target held before the restart taken back", "job", id, "endpoint", r.Endpoint)
	}
	return nil
}

func (j *Jobs) targets(ctx context.Context, t Targets) ([]string, error) {
	set := map[string]bool{}
	for _, ep := range t.Endpoints {
		if err := registry.CheckEndpoint(ep); err != nil {
			return nil, specError("targets.endpoints", strings.TrimPrefix(err.Error(), "registry: "))
		}
		set[ep] = true
	}
	if t.Tag != "" {
		if j.cfg.Tags == nil {
			return nil, specError("targets.tag", "this server keeps no device tags")
		}
		k, v, hasValue := strings.Cut(t.Tag, "=")
		if err := registry.CheckTag(k, v); err != nil || k == "" {
			return nil, specError("targets.tag", fmt.Sprintf("%q is not key or key=value", t.Tag))
		}
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
	if j.active[id] != nil {
		j.mu.Unlock()
		return
	}
	rj := &runningJob{done: make(chan struct{})}
	rj.ctx, rj.cancel = context.WithCancel(j.ctx)
	j.active[id] = rj
	j.mu.Unlock()
	p := &jobProgress{id: id, op: spec.Op, total: total}
	var workers sync.WaitGroup
	for range spec.Concurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			j.work(rj, p, spec, deadline)
		}()
	}
	j.wg.Add(2)
	go func() {
		defer j.wg.Done()
		j.watch(rj, id)
	}()
	go func() {
		defer j.wg.Done()
		workers.Wait()
		j.mu.Lock()
		delete(j.active, id)
		j.mu.Unlock()
		if !rj.cancelled.Load() {
			j.finish(p)
		}
		rj.cancel()
		close(rj.done)
	}()
}

// watch reads the job's status back from the registry until this node's
// work on it ends, and stops that work when another node cancelled it.
func (j *Jobs) watch(rj *runningJob, id string) {
	t := time.NewTicker(j.cfg.StatusPoll)
	defer t.Stop()
	for {
		select {
		case <-rj.ctx.Done():
			return
		case <-t.C:
		}
		job, err := j.cfg.Jobs.Get(rj.ctx, id)
		if err == nil && job.Status == registry.JobCancelled {
			rj.cancelled.Store(true)
			rj.cancel()
			return
		}
	}
}

type jobProgress struct {
	id, op            string
	mu                sync.Mutex
	total             int
	succeeded, failed int
	cancelled         int
}

// work claims one target at a time until none is left.
func (j *Jobs) work(rj *runningJob, p *jobProgress, spec JobSpec, deadline time.Duration) {
	for rj.ctx.Err() == nil {
		now := j.cfg.Now()
		// The lease outlasts the device's deadline, so that no other node
		// takes the target while this one still waits for it. The claim
		// runs under the node's context, not the job's: a cancellation
		// must not interrupt a claim that the store may already have
		// committed, or the target would stay running; runTarget ends it
		// as cancelled instead.
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
		j.runTarget(rj, p, spec, deadline, rs[0])
	}
}

func (j *Jobs) runTarget(rj *runningJob, p *jobProgress, spec JobSpec, deadline time.Duration, r *registry.JobResult) {
	// The job's context: a cancellation ends the call, and for a sleeping
	// device the server withdraws the request from its queue
	// (Server.holdIfSleeping does what CancelQueued does).
	ctx, cancel := context.WithTimeout(rj.ctx, deadline)
	rep := j.cfg.Commands.Run(ctx, r.Endpoint, spec.Op, spec.Command)
	cancel()
	if j.ctx.Err() != nil {
		// Stopping: leave the target to the lease, to be taken again.
		return
	}
	r.Status, r.Error = registry.TargetSucceeded, ""
	switch {
	case rep.Status == "ok":
	case rj.cancelled.Load():
		// The device did not answer before the job was cancelled.
		r.Status, r.Error = registry.TargetCancelled, "job cancelled"
		rep.Error = &ReplyError{Code: "cancelled", Message: "bridge: the job was cancelled before the device answered"}
	default:
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
	switch r.Status {
	case registry.TargetSucceeded:
		p.succeeded++
	case registry.TargetCancelled:
		p.cancelled++
	default:
		p.failed++
	}
	ev := JobEvent{Job: p.id, Event: "progress", Time: time.Now().UTC(), Op: p.op, Total: p.total,
		Succeeded: p.succeeded, Failed: p.failed, Cancelled: p.cancelled, Endpoint: r.Endpoint, Reply: &rep}
	p.mu.Unlock()
	j.publish(ev)
}

// finish marks the job done when every target has its outcome (another
// node may still hold some), and publishes the summary from the registry.
func (j *Jobs) finish(p *jobProgress) {
	if j.ctx.Err() != nil {
		return
	}
	ev, open, err := j.summary(j.ctx, p.id)
	if err != nil {
		j.log.Warn("bridge: job results not read", "job", p.id, "err", err)
		return
	}
	if open > 0 {
		return // still in the hands of another node
	}
	// A cancellation from another node that this one has not seen yet
	// wins over the end of the work.
	if job, err := j.cfg.Jobs.Get(j.ctx, p.id); err != nil || job.Status == registry.JobCancelled {
		return
	}
	if err := j.cfg.Jobs.SetStatus(j.ctx, p.id, registry.JobDone); err != nil {
		j.log.Warn("bridge: job status not stored", "job", p.id, "err", err)
		return
	}
	ev.Event, ev.Op, ev.Time = "done", p.op, time.Now().UTC()
	j.publish(ev)
}

// summary counts the job's targets by outcome; open is the number still
// pending or running.
func (j *Jobs) summary(ctx context.Context, id string) (ev JobEvent, open int, err error) {
	rs, err := j.cfg.Jobs.Results(ctx, id, "", 0)
	if err != nil {
		return ev, 0, err
	}
	ev = JobEvent{Job: id, Total: len(rs)}
	for _, r := range rs {
		switch r.Status {
		case registry.TargetSucceeded:
			ev.Succeeded++
		case registry.TargetFailed:
			ev.Failed++
		case registry.TargetCancelled:
			ev.Cancelled++
		default:
			open++
		}
	}
	return ev, open, nil
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
	// The ID is the same whichever node publishes and however often the
	// outbox offers it again, so that JetStream keeps one copy of each
	// (Nats-Msg-Id de-duplication).
	j.cfg.Publish(Message{Tokens: []string{"jobs", ev.Event, subject.Escape(ev.Job)}, ID: id, ContentType: "application/json", Data: data})
	j.events.Publish(ev)
}
