package natsbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/lwm2md/lwm2md/bridge"
	"github.com/lwm2md/lwm2md/bridge/subject"
	"github.com/lwm2md/lwm2md/registry"
)

// ServiceName is the micro service's name, as `nats micro ls` shows it.
const ServiceName = "lwm2md"

// maxInFlight bounds the commands run at once; a command waits for a
// device, so the micro handler hands it to a goroutine.
const maxInFlight = 1024

// service answers {prefix}.cmd.{ep}.{op} requests.
type service struct {
	svc    micro.Service
	cmds   *bridge.Commands
	prefix string
	result func(bridge.Message)
	log    *slog.Logger
	sem    chan struct{}
	ctx    context.Context
}

func startService(ctx context.Context, nc *nats.Conn, prefix, version string, cmds *bridge.Commands, result func(bridge.Message), log *slog.Logger) (*service, error) {
	s := &service{cmds: cmds, prefix: prefix, result: result, log: log, sem: make(chan struct{}, maxInFlight), ctx: ctx}
	svc, err := micro.AddService(nc, micro.Config{
		Name:        ServiceName,
		Version:     version,
		Description: "LwM2M device management commands (docs/bridge.md)",
	})
	if err != nil {
		return nil, fmt.Errorf("natsbridge: micro service: %w", err)
	}
	for _, op := range bridge.Ops {
		subj := prefix + ".cmd.*." + op
		if err := svc.AddEndpoint(op, micro.HandlerFunc(s.handle), micro.WithEndpointSubject(subj)); err != nil {
			_ = svc.Stop()
			return nil, fmt.Errorf("natsbridge: micro endpoint %s: %w", subj, err)
		}
	}
	s.svc = svc
	return s, nil
}

func (s *service) stop() error { return s.svc.Stop() }

// handle parses {prefix}.cmd.{ep}.{op} and runs the command off the
// subscription's goroutine, so that a slow device does not hold up the
// other commands.
func (s *service) handle(req micro.Request) {
	rest := strings.TrimPrefix(req.Subject(), s.prefix+".cmd.")
	tok, op, ok := strings.Cut(rest, ".")
	if !ok {
		_ = req.Error("bad-request", "subject is not "+s.prefix+".cmd.{ep}.{op}", nil)
		return
	}
	ep, err := subject.Unescape(tok)
	if err != nil {
		_ = req.Error("bad-request", err.Error(), nil)
		return
	}
	select {
	case s.sem <- struct{}{}:
	default:
		_ = req.Error("unavailable", "natsbridge: too many commands in flight", nil)
		return
	}
	go func() {
		defer func() { <-s.sem }()
		r := s.cmds.Handle(s.ctx, ep, op, req.Data(), s.result)
		data, err := json.Marshal(r)
		if err != nil {
			_ = req.Error("internal", err.Error(), nil)
			return
		}
		if r.Error != nil {
			// The micro error headers (Nats-Service-Error-Code) let
			// tools see the failure; the body is the same Reply.
			err = req.Error(r.Error.Code, r.Error.Message, data, micro.WithHeaders(micro.Headers{"Content-Type": {"application/json"}}))
		} else {
			err = req.Respond(data, micro.WithHeaders(micro.Headers{"Content-Type": {"application/json"}}))
		}
		if err != nil {
			s.log.Warn("natsbridge: reply not sent", "endpoint", ep, "op", op, "err", err)
		}
	}()
}

// JobRequest is the body of {prefix}.jobs.get and {prefix}.jobs.cancel.
type JobRequest struct {
	Job string `json:"job"`
}

// JobReply answers {prefix}.jobs.submit, {prefix}.jobs.get and
// {prefix}.jobs.cancel.
type JobReply struct {
	Job     string             `json:"job"`
	Status  string             `json:"status"` // the job's: pending, running, done, cancelled
	Op      string             `json:"op,omitempty"`
	Total   int                `json:"total"`
	Targets []JobTarget        `json:"targets,omitempty"` // get, cancel: each device's part
	Error   *bridge.ReplyError `json:"error,omitempty"`
	Spec    json.RawMessage    `json:"spec,omitempty"`
}

// JobTarget is one device's part of a job.
type JobTarget struct {
	Endpoint string          `json:"endpoint"`
	Status   string          `json:"status"` // pending, running, succeeded, failed, cancelled
	Attempts int             `json:"attempts"`
	Result   json.RawMessage `json:"result,omitempty"` // the command's Reply
	Error    string          `json:"error,omitempty"`
}

// AddJobs serves {prefix}.jobs.submit (body: a bridge.JobSpec),
// {prefix}.jobs.get and {prefix}.jobs.cancel (body: {"job":id}) on the
// micro service.
func (n *NATS) AddJobs(jobs *bridge.Jobs, reader registry.JobReader) error {
	if n.svc == nil {
		return fmt.Errorf("natsbridge: jobs need the micro service (Config.Commands)")
	}
	s := n.svc
	submit := func(ctx context.Context, req micro.Request) (any, *bridge.ReplyError) {
		var spec bridge.JobSpec
		if err := json.Unmarshal(req.Data(), &spec); err != nil {
			return nil, &bridge.ReplyError{Code: "bad-request", Message: "natsbridge: job spec: " + err.Error()}
		}
		job, total, err := jobs.Submit(ctx, spec)
		if err != nil {
			return nil, &bridge.ReplyError{Code: "bad-request", Message: err.Error()}
		}
		return JobReply{Job: job.ID, Status: job.Status.String(), Op: spec.Op, Total: total}, nil
	}
	get := func(ctx context.Context, req micro.Request) (any, *bridge.ReplyError) {
		id, rerr := jobOf(req)
		if rerr != nil {
			return nil, rerr
		}
		return jobDetail(ctx, reader, id)
	}
	// cancel is DELETE /api/v1/jobs/{id}: the devices not yet done end
	// as cancelled, and the answer is the job as get reads it then.
	cancel := func(ctx context.Context, req micro.Request) (any, *bridge.ReplyError) {
		id, rerr := jobOf(req)
		if rerr != nil {
			return nil, rerr
		}
		_, err := jobs.Cancel(ctx, id)
		switch {
		case errors.Is(err, registry.ErrNotFound):
			return nil, &bridge.ReplyError{Code: "not-found", Message: "natsbridge: no job " + id}
		case errors.Is(err, bridge.ErrJobFinished):
			return nil, &bridge.ReplyError{Code: "conflict", Message: "natsbridge: " + strings.TrimPrefix(err.Error(), "bridge: ")}
		case err != nil:
			return nil, &bridge.ReplyError{Code: "internal", Message: err.Error()}
		}
		return jobDetail(ctx, reader, id)
	}
	for _, e := range []struct {
		name string
		f    requestFunc
	}{{"submit", submit}, {"get", get}, {"cancel", cancel}} {
		h := func(req micro.Request) { s.async(req, e.f) }
		if err := s.svc.AddEndpoint("jobs-"+e.name, micro.HandlerFunc(h), micro.WithEndpointSubject(s.prefix+".jobs."+e.name)); err != nil {
			return fmt.Errorf("natsbridge: micro endpoint jobs.%s: %w", e.name, err)
		}
	}
	n.flushSubs()
	return nil
}

// jobOf reads the job ID of a {"job":id} body.
func jobOf(req micro.Request) (string, *bridge.ReplyError) {
	var jr JobRequest
	if err := json.Unmarshal(req.Data(), &jr); err != nil || jr.Job == "" {
		return "", &bridge.ReplyError{Code: "bad-request", Message: `natsbridge: body must be {"job":"<id>"}`}
	}
	return jr.Job, nil
}

// jobDetail is a job with every device's part.
func jobDetail(ctx context.Context, reader registry.JobReader, id string) (any, *bridge.ReplyError) {
	job, err := reader.Get(ctx, id)
	if errors.Is(err, registry.ErrNotFound) {
		return nil, &bridge.ReplyError{Code: "not-found", Message: "natsbridge: no job " + id}
	}
	if err != nil {
		return nil, &bridge.ReplyError{Code: "internal", Message: err.Error()}
	}
	rs, err := reader.Results(ctx, id, "", 0)
	if err != nil {
		return nil, &bridge.ReplyError{Code: "internal", Message: err.Error()}
	}
	out := JobReply{Job: job.ID, Status: job.Status.String(), Op: job.Kind, Total: len(rs), Spec: job.Spec}
	for _, r := range rs {
		out.Targets = append(out.Targets, JobTarget{Endpoint: r.Endpoint, Status: r.Status.String(), Attempts: r.Attempts, Result: r.Result, Error: r.Error})
	}
	return out, nil
}

// requestFunc answers a request with a value for JSON, or an error.
type requestFunc func(context.Context, micro.Request) (any, *bridge.ReplyError)

// async runs f off the subscription's goroutine and answers with its
// value as JSON, or with the micro error.
func (s *service) async(req micro.Request, f requestFunc) {
	select {
	case s.sem <- struct{}{}:
	default:
		_ = req.Error("unavailable", "natsbridge: too many requests in flight", nil)
		return
	}
	go func() {
		defer func() { <-s.sem }()
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		defer cancel()
		v, rerr := f(ctx, req)
		if rerr != nil {
			body, _ := json.Marshal(map[string]any{"status": "error", "error": rerr})
			_ = req.Error(rerr.Code, rerr.Message, body)
			return
		}
		data, err := json.Marshal(v)
		if err != nil {
			_ = req.Error("internal", err.Error(), nil)
			return
		}
		if err := req.Respond(data, micro.WithHeaders(micro.Headers{"Content-Type": {"application/json"}})); err != nil {
			s.log.Warn("natsbridge: reply not sent", "subject", req.Subject(), "err", err)
		}
	}()
}
