package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/registry"
)

func targetStatuses(t *testing.T, st registry.Jobs, id string) map[string]registry.TargetStatus {
	t.Helper()
	rs, err := st.Results(context.Background(), id, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]registry.TargetStatus{}
	for _, r := range rs {
		out[r.Endpoint] = r.Status
	}
	return out
}

// TestJobCancel cancels a job with one device in progress and two not
// yet started: all three end as cancelled, the job is stored cancelled,
// and the events say so.
func TestJobCancel(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	dm := blockingDM{release: make(chan struct{})}
	cmds, _ := NewCommands(CommandsConfig{Server: dm})
	defer cmds.Close()
	out := &sink{}
	var buf bytes.Buffer
	var mu sync.Mutex
	logs := &lockedWriter{w: &buf, mu: &mu}
	jobs, err := NewJobs(JobsConfig{Commands: cmds, Jobs: st.Jobs(), Registrations: st.Registrations(), Publish: out.add,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer jobs.Close()
	defer func() {
		if t.Failed() {
			mu.Lock()
			t.Logf("log:\n%s", buf.String())
			mu.Unlock()
		}
	}()
	sub := jobs.Subscribe(16)
	defer sub.Close()
	job, _, err := jobs.Submit(ctx, JobSpec{Op: "read", Command: Command{Path: "/3/0/0"}, Targets: Targets{Endpoints: []string{"a", "b", "c"}}, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "one target running", func() bool { return targetStatuses(t, st.Jobs(), job.ID)["a"] == registry.TargetRunning })

	ev, err := jobs.Cancel(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Event != "cancelled" || ev.Total != 3 || ev.Cancelled != 3 || ev.Succeeded != 0 || ev.Failed != 0 || ev.Op != "read" {
		t.Fatalf("cancel summary %+v; targets %v", ev, targetStatuses(t, st.Jobs(), job.ID))
	}
	for ep, s := range targetStatuses(t, st.Jobs(), job.ID) {
		if s != registry.TargetCancelled {
			t.Errorf("%s is %v, want cancelled", ep, s)
		}
	}
	rs, _ := st.Jobs().Results(ctx, job.ID, "", 0)
	var rep Reply
	if err := json.Unmarshal(rs[0].Result, &rep); err != nil || rep.Error == nil || rep.Error.Code != "cancelled" {
		t.Errorf("the running target's result %s: %v", rs[0].Result, err)
	}
	if got, _ := st.Jobs().Get(ctx, job.ID); got.Status != registry.JobCancelled {
		t.Fatalf("stored status %v", got.Status)
	}
	if n := len(out.events(job.ID, "cancelled")); n != 1 {
		t.Fatalf("%d cancelled events", n)
	}
	if n := len(out.events(job.ID, "done")); n != 0 {
		t.Fatalf("%d done events after the cancellation", n)
	}
	var kinds []string
	for len(kinds) < 3 {
		select {
		case e := <-sub.C:
			kinds = append(kinds, e.Event)
		case <-time.After(5 * time.Second):
			t.Fatalf("subscription got %v", kinds)
		}
	}
	if kinds[0] != "created" || kinds[1] != "progress" || kinds[2] != "cancelled" {
		t.Fatalf("subscription got %v, want created, progress (the running device), cancelled", kinds)
	}

	if _, err := jobs.Cancel(ctx, job.ID); !errors.Is(err, ErrJobFinished) {
		t.Fatalf("second cancel: %v", err)
	}
	if _, err := jobs.Cancel(ctx, "nope"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("cancel of an unknown job: %v", err)
	}
}

// TestJobCancelOtherNode: a job cancelled on one node stops the work of
// the node that runs it, which ends its devices as cancelled.
func TestJobCancelOtherNode(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	dm := blockingDM{release: make(chan struct{})}
	cmds, _ := NewCommands(CommandsConfig{Server: dm})
	defer cmds.Close()
	out := &sink{}
	worker, err := NewJobs(JobsConfig{Commands: cmds, Jobs: st.Jobs(), Registrations: st.Registrations(), Publish: out.add, Owner: "node-1", StatusPoll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Close()
	other, err := NewJobs(JobsConfig{Commands: cmds, Jobs: st.Jobs(), Registrations: st.Registrations(), Publish: out.add, Owner: "node-2"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	job, _, err := worker.Submit(ctx, JobSpec{Op: "read", Command: Command{Path: "/3/0/0"}, Targets: Targets{Endpoints: []string{"a", "b"}}, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both targets running", func() bool {
		s := targetStatuses(t, st.Jobs(), job.ID)
		return s["a"] == registry.TargetRunning && s["b"] == registry.TargetRunning
	})
	ev, err := other.Cancel(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Total != 2 || ev.Cancelled != 0 {
		t.Fatalf("summary %+v: node-1's targets are its own to end", ev)
	}
	waitFor(t, "node-1 ending its targets", func() bool {
		s := targetStatuses(t, st.Jobs(), job.ID)
		return s["a"] == registry.TargetCancelled && s["b"] == registry.TargetCancelled
	})
	if got, _ := st.Jobs().Get(ctx, job.ID); got.Status != registry.JobCancelled {
		t.Fatalf("stored status %v", got.Status)
	}
}

func TestJobSpecErrors(t *testing.T) {
	st := openStore(t)
	cmds, _ := NewCommands(CommandsConfig{Server: fakeDM{}})
	defer cmds.Close()
	jobs, err := NewJobs(JobsConfig{Commands: cmds, Jobs: st.Jobs(), Registrations: st.Registrations()})
	if err != nil {
		t.Fatal(err)
	}
	defer jobs.Close()
	eps := Targets{Endpoints: []string{"a"}}
	for _, tt := range []struct {
		spec  JobSpec
		field string
	}{
		{JobSpec{Op: "reboot", Targets: eps}, "op"},
		{JobSpec{Op: "read", Command: Command{Path: "/3/0"}, Targets: eps, Concurrency: -1}, "concurrency"},
		{JobSpec{Op: "read", Command: Command{Path: "/3/0"}, Targets: eps, Deadline: "soon"}, "deadline"},
		{JobSpec{Op: "read", Command: Command{Path: "3/x"}, Targets: eps}, "command.path"},
		{JobSpec{Op: "read", Command: Command{Path: "/3/0", Format: "yaml"}, Targets: eps}, "command.format"},
		{JobSpec{Op: "write", Command: Command{Path: "/1/0/1"}, Targets: eps}, "command.node"},
		{JobSpec{Op: "create", Command: Command{Path: "/3303/0", Node: json.RawMessage(`{}`)}, Targets: eps}, "command.path"},
		{JobSpec{Op: "write-attributes", Command: Command{Path: "/3/0/9", Attributes: "pmin=x"}, Targets: eps}, "command.attributes"},
		{JobSpec{Op: "read", Command: Command{Path: "/3/0"}}, "targets"},
		{JobSpec{Op: "read", Command: Command{Path: "/3/0"}, Targets: Targets{Endpoints: []string{""}}}, "targets.endpoints"},
		{JobSpec{Op: "read", Command: Command{Path: "/3/0"}, Targets: Targets{Tag: "site"}}, "targets.tag"}, // no tag store
	} {
		t.Run(tt.field, func(t *testing.T) {
			_, _, err := jobs.Submit(context.Background(), tt.spec)
			var se *SpecError
			if !errors.As(err, &se) || se.Field != tt.field || se.Reason == "" {
				t.Fatalf("%+v: %v, want a SpecError of %s", tt.spec, err, tt.field)
			}
		})
	}
}
