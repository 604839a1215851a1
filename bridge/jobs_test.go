package bridge

import (
	"context"
	"encoding/json"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/bolt"
	"github.com/lwm2md/lwm2md/server"
)

// blockingDM is fakeDM whose Read waits until released or its context
// ends.
type blockingDM struct {
	fakeDM
	release chan struct{}
}

func (b blockingDM) Read(ctx context.Context, ep string, p objects.Path, opts ...server.Option) (objects.Node, error) {
	select {
	case <-b.release:
		return b.fakeDM.Read(ctx, ep, p, opts...)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func openStore(t *testing.T) *bolt.Store {
	t.Helper()
	st, err := bolt.Open(t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

type sink struct {
	mu   sync.Mutex
	msgs []Message
}

func (s *sink) add(m Message) {
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	s.mu.Unlock()
}

func (s *sink) events(job, event string) []JobEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []JobEvent
	for _, m := range s.msgs {
		if len(m.Tokens) == 3 && m.Tokens[0] == "jobs" && m.Tokens[1] == event && m.Tokens[2] == job {
			var ev JobEvent
			if json.Unmarshal(m.Data, &ev) == nil {
				out = append(out, ev)
			}
		}
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestJobTargetsAndResults(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	for i, ep := range []string{"pump-1", "pump-2", "valve-1"} {
		r := &registry.Registration{ID: "r" + string(rune('a'+i)), Endpoint: ep, Addr: netip.MustParseAddrPort("127.0.0.1:5000"), Lifetime: time.Hour, Binding: "U", Version: "1.1", Root: "/", RegisteredAt: time.Now(), UpdatedAt: time.Now()}
		if err := st.Registrations().Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Tags().Set(ctx, "valve-1", map[string]string{"site": "a"}); err != nil {
		t.Fatal(err)
	}
	cmds, _ := NewCommands(CommandsConfig{Server: fakeDM{}})
	defer cmds.Close()
	out := &sink{}
	jobs, err := NewJobs(JobsConfig{Commands: cmds, Jobs: st.Jobs(), Tags: st.Tags(), Registrations: st.Registrations(), Publish: out.add})
	if err != nil {
		t.Fatal(err)
	}
	defer jobs.Close()

	// Reads of /3/0 fail in fakeDM (4.04), "nobody" is not registered.
	job, total, err := jobs.Submit(ctx, JobSpec{Op: "read", Command: Command{Path: "/3/0/0"},
		Targets: Targets{Prefix: "pump-", Tag: "site=a", Endpoints: []string{"nobody", "pump-1"}}, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if total != 4 {
		t.Fatalf("%d targets, want 4 (pump-1, pump-2, valve-1, nobody)", total)
	}
	waitFor(t, "the job's end", func() bool { return len(out.events(job.ID, "done")) == 1 })
	done := out.events(job.ID, "done")[0]
	if done.Total != 4 || done.Succeeded != 3 || done.Failed != 1 {
		t.Fatalf("done %+v", done)
	}
	if n := len(out.events(job.ID, "progress")); n != 4 {
		t.Fatalf("%d progress events", n)
	}
	got, err := st.Jobs().Get(ctx, job.ID)
	if err != nil || got.Status != registry.JobDone || got.Kind != "read" {
		t.Fatalf("stored job %+v: %v", got, err)
	}
	rs, err := st.Jobs().Results(ctx, job.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var eps []string
	for _, r := range rs {
		eps = append(eps, r.Endpoint+":"+r.Status.String())
		if r.Endpoint == "nobody" && (r.Status != registry.TargetFailed || r.Error == "") {
			t.Fatalf("nobody's result %+v", r)
		}
	}
	sort.Strings(eps)
	if want := "[nobody:failed pump-1:succeeded pump-2:succeeded valve-1:succeeded]"; "["+strings.Join(eps, " ")+"]" != want {
		t.Fatalf("results %v, want %s", eps, want)
	}

	for _, bad := range []JobSpec{
		{Op: "reboot", Targets: Targets{Endpoints: []string{"a"}}},
		{Op: "read", Targets: Targets{Tag: "site=none"}},
		{Op: "read", Targets: Targets{Endpoints: []string{"a"}}, Deadline: "-1s"},
		{Op: "read", Targets: Targets{Endpoints: []string{"a"}}, Concurrency: 5000},
	} {
		if _, _, err := jobs.Submit(ctx, bad); err == nil {
			t.Fatalf("spec %+v accepted", bad)
		}
	}
}

// TestJobResume stops the runner while a device has not answered and
// checks that a new runner finishes the job from the registry.
func TestJobResume(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	dm := blockingDM{release: make(chan struct{})}
	cmds, _ := NewCommands(CommandsConfig{Server: dm})
	defer cmds.Close()
	out := &sink{}
	first, err := NewJobs(JobsConfig{Commands: cmds, Jobs: st.Jobs(), Registrations: st.Registrations(), Publish: out.add, Owner: "node-1"})
	if err != nil {
		t.Fatal(err)
	}
	job, _, err := first.Submit(ctx, JobSpec{Op: "read", Command: Command{Path: "/3/0/0"}, Targets: Targets{Endpoints: []string{"a", "b"}}, Deadline: "1s"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both targets claimed", func() bool {
		rs, _ := st.Jobs().Results(ctx, job.ID, "", 0)
		return len(rs) == 2 && rs[0].Status == registry.TargetRunning && rs[1].Status == registry.TargetRunning
	})
	first.Close() // both reads were blocked: nothing is reported
	if rs, _ := st.Jobs().Results(ctx, job.ID, "", 0); rs[0].Status != registry.TargetRunning || rs[1].Status != registry.TargetRunning {
		t.Fatalf("results after the stop: %v %v", rs[0].Status, rs[1].Status)
	}
	if n := len(out.events(job.ID, "done")); n != 0 {
		t.Fatalf("%d done events from the stopped runner", n)
	}
	close(dm.release)
	// The second node runs after node-1's leases (deadline + 1 min) ran out.
	later := func() time.Time { return time.Now().Add(2 * time.Minute) }
	second, err := NewJobs(JobsConfig{Commands: cmds, Jobs: st.Jobs(), Registrations: st.Registrations(), Publish: out.add, Owner: "node-2", Now: later})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if err := second.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the resumed job's end", func() bool { return len(out.events(job.ID, "done")) == 1 })
	if done := out.events(job.ID, "done")[0]; done.Total != 2 || done.Succeeded != 2 {
		t.Fatalf("done %+v", done)
	}
	rs, err := st.Jobs().Results(ctx, job.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Status != registry.TargetSucceeded || r.Owner != "node-2" || r.Attempts != 2 {
			t.Fatalf("result %+v", r)
		}
	}
}
