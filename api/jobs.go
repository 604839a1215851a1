package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lwm2md/lwm2md/bridge"
	"github.com/lwm2md/lwm2md/registry"
)

// The job resources (/jobs) run one command over a set of devices through
// the bridge's job runner (Config.Jobs): the spec is the one of the NATS
// subject lwm2m.jobs.submit (docs/bridge.md), and the job's events go to
// the event stream as job-created, job-progress, job-done and
// job-cancelled.

// Jobs is what the API needs of the job runner: *bridge.Jobs implements
// it.
type Jobs interface {
	registry.JobReader
	Submit(ctx context.Context, spec bridge.JobSpec) (*registry.Job, int, error)
	Cancel(ctx context.Context, id string) (bridge.JobEvent, error)
	Subscribe(buffer int) *bridge.JobSubscription
}

// jobJSON is a job as the API shows it.
type jobJSON struct {
	ID        string          `json:"id"`
	Op        string          `json:"op"`
	Status    string          `json:"status"` // pending, running, done, cancelled
	CreatedAt time.Time       `json:"createdAt"`
	UpdatedAt time.Time       `json:"updatedAt"`
	Spec      json.RawMessage `json:"spec,omitempty"`
	// The counts and the targets come with one job, not with the list.
	Total     *int            `json:"total,omitempty"`
	Pending   int             `json:"pending,omitempty"`
	Running   int             `json:"running,omitempty"`
	Succeeded int             `json:"succeeded,omitempty"`
	Failed    int             `json:"failed,omitempty"`
	Cancelled int             `json:"cancelled,omitempty"`
	Targets   []jobTargetJSON `json:"targets,omitempty"`
}

// jobTargetJSON is one device's part of a job, as lwm2m.jobs.get shows it.
type jobTargetJSON struct {
	Endpoint  string          `json:"endpoint"`
	Status    string          `json:"status"` // pending, running, succeeded, failed, cancelled
	Attempts  int             `json:"attempts"`
	Result    json.RawMessage `json:"result,omitempty"` // the command's reply (bridge.Reply)
	Error     string          `json:"error,omitempty"`
	UpdatedAt time.Time       `json:"updatedAt"`
}

func jobOf(j *registry.Job) jobJSON {
	return jobJSON{ID: j.ID, Op: j.Kind, Status: j.Status.String(), CreatedAt: j.CreatedAt.UTC(), UpdatedAt: j.UpdatedAt.UTC()}
}

// needJobs answers 501 when the API runs without a job runner.
func (a *API) needJobs() (Jobs, error) {
	if a.cfg.Jobs == nil {
		return nil, problem(http.StatusNotImplemented, "jobs: this server runs without a job runner")
	}
	return a.cfg.Jobs, nil
}

// jobID reads and checks {id}.
func jobID(r *http.Request) (string, error) {
	id := urlParam(r, "id")
	if err := registry.CheckText("id", id); err != nil || id == "" || len(id) > 128 {
		return "", badField("id", fmt.Sprintf("%q is not a job ID", id))
	}
	return id, nil
}

// decodeSpec reads a job spec strictly: an unknown member is an error
// naming it, a member of the wrong type names its path.
func decodeSpec(body []byte) (bridge.JobSpec, error) {
	var spec bridge.JobSpec
	if len(bytes.TrimSpace(body)) == 0 {
		return spec, badField("body", "a job spec is required: {\"op\":...,\"command\":{...},\"targets\":{...}}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(&spec)
	if err == nil && dec.Decode(new(json.RawMessage)) != io.EOF {
		err = errors.New("more than one JSON value")
	}
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return spec, nil
	case errors.As(err, &te) && te.Field != "":
		return spec, badField(te.Field, fmt.Sprintf("a JSON %s is not a %s", te.Value, te.Type))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return spec, badField(f, "not a member of a job spec (op, command, targets, concurrency, deadline)")
	}
	return spec, badField("body", "not a JSON job spec: "+err.Error())
}

func (a *API) submitJob(w http.ResponseWriter, r *http.Request, jobs Jobs) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	spec, err := decodeSpec(body)
	if err != nil {
		return err
	}
	job, total, err := jobs.Submit(r.Context(), spec)
	var se *bridge.SpecError
	if errors.As(err, &se) {
		return badField(se.Field, se.Reason)
	}
	if err != nil {
		return err
	}
	out := jobOf(job)
	out.Spec, out.Total, out.Pending = job.Spec, &total, total
	loc := Prefix + "/jobs/" + job.ID
	w.Header().Set("Location", loc)
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (a *API) listJobs(w http.ResponseWriter, r *http.Request, jobs Jobs) error {
	q := r.URL.Query()
	var want *registry.JobStatus
	if s := q.Get("status"); s != "" {
		st, err := registry.ParseJobStatus(s)
		if err != nil {
			return badField("status", fmt.Sprintf("%q is not a job status (pending, running, done, cancelled)", s))
		}
		want = &st
	}
	limit := defaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return badField("limit", fmt.Sprintf("%q is not a number from 1 to %d", s, maxLimit))
		}
		limit = n
	}
	// The cursor is the last job ID of the previous page (the registry
	// lists jobs by ID).
	after := q.Get("cursor")
	list := []jobJSON{}
	for len(list) < limit {
		page, err := jobs.List(r.Context(), after, limit)
		if err != nil {
			return err
		}
		for _, j := range page {
			after = j.ID
			if want == nil || j.Status == *want {
				list = append(list, jobOf(j))
				if len(list) == limit {
					break
				}
			}
		}
		if len(page) < limit {
			after = ""
			break
		}
	}
	out := map[string]any{"jobs": list}
	if after != "" {
		out["next"] = after
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getJob(w http.ResponseWriter, r *http.Request, jobs Jobs) error {
	id, err := jobID(r)
	if err != nil {
		return err
	}
	out, err := jobDetail(r.Context(), jobs, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// jobDetail is a job with its spec, its counts and every device's part.
func jobDetail(ctx context.Context, jobs Jobs, id string) (jobJSON, error) {
	job, err := jobs.Get(ctx, id)
	if errors.Is(err, registry.ErrNotFound) {
		return jobJSON{}, problem(http.StatusNotFound, fmt.Sprintf("no job %q", id))
	}
	if err != nil {
		return jobJSON{}, err
	}
	rs, err := jobs.Results(ctx, id, "", 0)
	if err != nil {
		return jobJSON{}, err
	}
	out := jobOf(job)
	total := len(rs)
	out.Spec, out.Total, out.Targets = job.Spec, &total, make([]jobTargetJSON, 0, len(rs))
	for _, t := range rs {
		switch t.Status {
		case registry.TargetPending:
			out.Pending++
		case registry.TargetRunning:
			out.Running++
		case registry.TargetSucceeded:
			out.Succeeded++
		case registry.TargetFailed:
			out.Failed++
		case registry.TargetCancelled:
			out.Cancelled++
		}
		out.Targets = append(out.Targets, jobTargetJSON{Endpoint: t.Endpoint, Status: t.Status.String(),
			Attempts: t.Attempts, Result: t.Result, Error: t.Error, UpdatedAt: t.UpdatedAt.UTC()})
	}
	return out, nil
}

func (a *API) cancelJob(w http.ResponseWriter, r *http.Request, jobs Jobs) error {
	id, err := jobID(r)
	if err != nil {
		return err
	}
	// The cancellation waits for this node's calls in progress to end,
	// which a cancelled context makes quick; the client's going away must
	// not leave the job half cancelled.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
	defer cancel()
	_, err = jobs.Cancel(ctx, id)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return problem(http.StatusNotFound, fmt.Sprintf("no job %q", id))
	case errors.Is(err, bridge.ErrJobFinished):
		p := problem(http.StatusConflict, strings.TrimPrefix(err.Error(), "bridge: "))
		p.State = "ended"
		return p
	case err != nil:
		return err
	}
	out, err := jobDetail(ctx, jobs, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// pumpJobs copies the job events into the stream.
func (a *API) pumpJobs() {
	defer close(a.jobsDone)
	for ev := range a.jobsSub.C {
		a.events.add(jobEventJSON(ev))
	}
}

// jobEventJSON is the stream's form of a job event, of kind
// "job-created", "job-progress", "job-done" or "job-cancelled": the
// bridge's JobEvent with the kind; the endpoint is the device a progress
// event reports on.
func jobEventJSON(ev bridge.JobEvent) stored {
	k := "job-" + ev.Event
	b, err := json.Marshal(ev)
	var m map[string]any
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		m = map[string]any{"job": ev.Job, "error": err.Error()}
	}
	m["kind"] = k
	data, err := json.Marshal(m)
	if err != nil {
		data, _ = json.Marshal(map[string]any{"kind": k, "job": ev.Job, "error": err.Error()})
	}
	return stored{kind: k, endpoint: ev.Endpoint, data: data}
}
