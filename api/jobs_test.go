package api

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/bridge"
	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/server"
)

// withJobs gives the API a job runner on the env's server and registry.
func withJobs(t *testing.T, more ...func(*Config)) func(*Config) {
	return func(c *Config) {
		cmds, err := bridge.NewCommands(bridge.CommandsConfig{Server: c.Server})
		if err != nil {
			t.Fatal(err)
		}
		jobs, err := bridge.NewJobs(bridge.JobsConfig{Commands: cmds, Jobs: c.Store.Jobs(), Tags: c.Store.Tags(), Registrations: c.Store.Registrations()})
		if err != nil {
			t.Fatal(err)
		}
		// Registered before the API's own cleanup: the API closes first.
		t.Cleanup(cmds.Close)
		t.Cleanup(jobs.Close)
		c.Jobs = jobs
		for _, m := range more {
			m(c)
		}
	}
}

const awakeWindow = 300 * time.Millisecond

func queueServer(c *server.Config) { c.AwakeWindow = awakeWindow }

func (e *env) tag(t *testing.T, ep, k, v string) {
	t.Helper()
	if err := e.store.Tags().Set(context.Background(), ep, map[string]string{k: v}); err != nil {
		t.Fatal(err)
	}
}

func (e *env) sleeper(t *testing.T, ep string) *client.Client {
	t.Helper()
	c := e.device(ep, "1.1", func(c *client.Config) { c.Queue, c.AwakeWindow = true, awakeWindow })
	waitFor(t, ep+" asleep", func() bool { return !e.srv.Awake(ep) })
	return c
}

// TestJobOverTag submits a read over a tag of three devices, one of them
// asleep, follows it on the event stream to its end when the sleeper
// wakes, and reads the per-device results.
func TestJobOverTag(t *testing.T) {
	e := newEnv(t, withJobs(t), queueServer)
	s := e.stream("/api/v1/events?kind=job-created,job-progress,job-done")
	for _, ep := range []string{"site-a-1", "site-a-2", "site-b-1"} {
		e.device(ep, "1.1", nil)
	}
	sleeper := e.sleeper(t, "site-a-sleeper")
	for _, ep := range []string{"site-a-1", "site-a-2", "site-a-sleeper"} {
		e.tag(t, ep, "site", "a")
	}
	e.tag(t, "site-b-1", "site", "b")

	r := e.expect(201, "POST", "/api/v1/jobs", `{"op":"read","command":{"path":"/3/0/0"},"targets":{"tag":"site=a"},"concurrency":2,"deadline":"1m"}`, "application/json")
	job := r.json(t)
	id, _ := job["id"].(string)
	if id == "" || r.header.Get("Location") != "/api/v1/jobs/"+id || job["status"] != "running" || job["total"] != float64(3) || job["op"] != "read" {
		t.Fatalf("201: Location %q, %s", r.header.Get("Location"), r.body)
	}
	ev := s.next(kind("job-created"))
	if ev.data["job"] != id || ev.data["total"] != float64(3) || ev.data["kind"] != "job-created" {
		t.Fatalf("job-created %v", ev.data)
	}
	awake := map[string]bool{}
	for len(awake) < 2 {
		ev := s.next(kind("job-progress"))
		rep, _ := ev.data["reply"].(map[string]any)
		if ev.data["job"] != id || rep["status"] != "ok" {
			t.Fatalf("job-progress %v", ev.data)
		}
		awake[ev.data["endpoint"].(string)] = true
	}
	if !awake["site-a-1"] || !awake["site-a-2"] {
		t.Fatalf("progress of %v, want the two awake devices", awake)
	}
	// A worker takes the sleeper once one is free; its read waits in the
	// device's queue.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var mid map[string]any
	waitFor(t, "the sleeper's read queued", func() bool {
		mid = e.expect(200, "GET", "/api/v1/jobs/"+id, nil, "").json(t)
		q, err := e.srv.Queue(ctx, "site-a-sleeper")
		return err == nil && len(q) == 1 && mid["running"] == float64(1)
	})
	if mid["status"] != "running" || mid["succeeded"] != float64(2) {
		t.Fatalf("job while the sleeper sleeps: %v", mid)
	}

	if err := sleeper.Wake(ctx); err != nil {
		t.Fatal(err)
	}
	ev = s.next(kind("job-progress"))
	if ev.data["endpoint"] != "site-a-sleeper" {
		t.Fatalf("third progress %v", ev.data)
	}
	done := s.next(kind("job-done"))
	if done.data["job"] != id || done.data["succeeded"] != float64(3) || done.data["failed"] != float64(0) {
		t.Fatalf("job-done %v", done.data)
	}

	var got struct {
		Status  string `json:"status"`
		Spec    bridge.JobSpec
		Targets []struct {
			Endpoint, Status string
			Result           bridge.Reply
		}
	}
	if err := json.Unmarshal(e.expect(200, "GET", "/api/v1/jobs/"+id, nil, "").body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Status != "done" || got.Spec.Targets.Tag != "site=a" || len(got.Targets) != 3 {
		t.Fatalf("job %+v", got)
	}
	for _, tg := range got.Targets {
		var node struct{ Value string }
		_ = json.Unmarshal(tg.Result.Node, &node)
		if tg.Status != "succeeded" || tg.Result.Status != "ok" || node.Value != "lwm2md" || !strings.HasPrefix(tg.Endpoint, "site-a-") {
			t.Fatalf("target %+v", tg)
		}
	}

	listed := func(q string) []string {
		var l struct{ Jobs []struct{ ID string } }
		if err := json.Unmarshal(e.expect(200, "GET", "/api/v1/jobs"+q, nil, "").body, &l); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, j := range l.Jobs {
			ids = append(ids, j.ID)
		}
		return ids
	}
	if ids := listed(""); len(ids) != 1 || ids[0] != id {
		t.Fatalf("list %v", ids)
	}
	if ids := listed("?status=done"); len(ids) != 1 {
		t.Fatalf("done jobs %v", ids)
	}
	if ids := listed("?status=running"); len(ids) != 0 {
		t.Fatalf("running jobs %v", ids)
	}
}

// TestJobCancelREST cancels a job over two sleeping devices: one with its
// read waiting in the device's queue, one not started. Both end as
// cancelled and the queued read is withdrawn.
func TestJobCancelREST(t *testing.T) {
	e := newEnv(t, withJobs(t), queueServer)
	s := e.stream("/api/v1/events?kind=job-cancelled")
	for _, ep := range []string{"z-1", "z-2"} {
		e.sleeper(t, ep)
		e.tag(t, ep, "grp", "z")
	}
	id := e.expect(201, "POST", "/api/v1/jobs", `{"op":"read","command":{"path":"/3/0/0"},"targets":{"tag":"grp"},"concurrency":1}`, "application/json").json(t)["id"].(string)
	ctx := context.Background()
	queued := func() int {
		n := 0
		for _, ep := range []string{"z-1", "z-2"} {
			q, err := e.srv.Queue(ctx, ep)
			if err != nil {
				t.Fatal(err)
			}
			n += len(q)
		}
		return n
	}
	waitFor(t, "a read in a sleeper's queue", func() bool { return queued() == 1 })

	r := e.expect(200, "DELETE", "/api/v1/jobs/"+id, nil, "").json(t)
	if r["status"] != "cancelled" || r["cancelled"] != float64(2) || r["total"] != float64(2) {
		t.Fatalf("cancelled job %v", r)
	}
	for _, tg := range r["targets"].([]any) {
		if st := tg.(map[string]any)["status"]; st != "cancelled" {
			t.Fatalf("target %v", tg)
		}
	}
	if n := queued(); n != 0 {
		t.Fatalf("%d requests left in the queues", n)
	}
	ev := s.next(kind("job-cancelled"))
	if ev.data["job"] != id || ev.data["cancelled"] != float64(2) {
		t.Fatalf("job-cancelled %v", ev.data)
	}
	p := e.do("DELETE", "/api/v1/jobs/"+id, nil, "").problem(t, 409)
	if p["state"] != "ended" {
		t.Fatalf("second cancel %v", p)
	}
	e.do("DELETE", "/api/v1/jobs/nope", nil, "").problem(t, 404)
	e.do("GET", "/api/v1/jobs/nope", nil, "").problem(t, 404)
}

func TestJobValidation(t *testing.T) {
	e := newEnv(t, withJobs(t), nil)
	e.device("dev-1", "1.1", nil)
	e.tag(t, "dev-1", "site", "a")
	for _, tt := range []struct{ body, field string }{
		{``, "body"},
		{`{"op":"read"`, "body"},
		{`{"op":"read"} {}`, "body"},
		{`{"op":"reboot","command":{"path":"/3/0"},"targets":{"tag":"site=a"}}`, "op"},
		{`{"op":"read","command":{"path":"/3/x"},"targets":{"tag":"site=a"}}`, "command.path"},
		{`{"op":"write","command":{"path":"/1/0/1"},"targets":{"tag":"site=a"}}`, "command.node"},
		{`{"op":"read","command":{"path":"/3/0"},"targets":{"tag":"site=a"},"deadline":"soon"}`, "deadline"},
		{`{"op":"read","command":{"path":"/3/0"},"targets":{"tag":"site=a"},"concurrency":5000}`, "concurrency"},
		{`{"op":"read","command":{"path":"/3/0"},"targets":{"tag":"site=a"},"concurrency":"many"}`, "concurrency"},
		{`{"op":"read","command":{"path":"/3/0"},"targets":{"tag":"site=none"}}`, "targets"},
		{`{"op":"read","command":{"path":"/3/0"}}`, "targets"},
		{`{"op":"read","command":{"path":"/3/0"},"targets":{"tag":"=x"}}`, "targets.tag"},
		{`{"op":"read","command":{"path":"/3/0"},"targets":{"endpoints":"dev-1"}}`, "targets.endpoints"},
		{`{"op":"read","command":{"path":"/3/0"},"targets":{"tag":"site=a"},"priority":1}`, "priority"},
	} {
		t.Run(tt.field, func(t *testing.T) {
			p := e.do("POST", "/api/v1/jobs", tt.body, "application/json").problem(t, 400)
			if p["field"] != tt.field || !strings.Contains(p["detail"].(string), tt.field) {
				t.Fatalf("%s: %v, want field %s", tt.body, p, tt.field)
			}
		})
	}
	e.do("GET", "/api/v1/jobs?status=finished", nil, "").problem(t, 400)
	e.do("GET", "/api/v1/jobs?limit=0", nil, "").problem(t, 400)
}

func TestJobRoles(t *testing.T) {
	e := newEnv(t, withJobs(t, withTokens), nil)
	e.device("dev-1", "1.1", nil)
	const spec = `{"op":"read","command":{"path":"/3/0/0"},"targets":{"endpoints":["dev-1"]}}`
	e.token = viewerToken
	e.do("POST", "/api/v1/jobs", spec, "application/json").problem(t, 403)
	e.token = operatorToken
	id := e.expect(201, "POST", "/api/v1/jobs", spec, "application/json").json(t)["id"].(string)
	e.token = viewerToken
	e.expect(200, "GET", "/api/v1/jobs", nil, "")
	e.expect(200, "GET", "/api/v1/jobs/"+id, nil, "")
	e.do("DELETE", "/api/v1/jobs/"+id, nil, "").problem(t, 403)
	e.token = operatorToken
	// The one-device job may have ended already: cancel or 409.
	if r := e.do("DELETE", "/api/v1/jobs/"+id, nil, ""); r.status != 200 && r.status != 409 {
		t.Fatalf("operator's cancel: %d %s", r.status, r.body)
	}
	e.token = ""
	e.do("GET", "/api/v1/jobs", nil, "").problem(t, 401)
}

func TestJobsOff(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.do("POST", "/api/v1/jobs", `{"op":"read"}`, "application/json").problem(t, 501)
	e.do("GET", "/api/v1/jobs", nil, "").problem(t, 501)
	e.do("GET", "/api/v1/jobs/x", nil, "").problem(t, 501)
	e.do("DELETE", "/api/v1/jobs/x", nil, "").problem(t, 501)
}
