package bridge

import (
	"context"
	"testing"

	"github.com/lwm2md/lwm2md/registry"
)

// TestJobResumeTakesBackOwnTargets: a node stopped (or killed) while its
// devices had not answered holds their targets for the device's deadline
// plus a minute. Another node leaves them alone; the node itself, started
// again under the same name, takes them back at once and ends the job.
func TestJobResumeTakesBackOwnTargets(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	dm := blockingDM{release: make(chan struct{})}
	cmds, _ := NewCommands(CommandsConfig{Server: dm})
	defer cmds.Close()
	out := &sink{}
	runner := func(owner string) *Jobs {
		j, err := NewJobs(JobsConfig{Commands: cmds, Jobs: st.Jobs(), Registrations: st.Registrations(), Publish: out.add, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	first := runner("node-1")
	job, _, err := first.Submit(ctx, JobSpec{Op: "read", Command: Command{Path: "/3/0/0"}, Targets: Targets{Endpoints: []string{"a", "b"}}, Deadline: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	running := func() bool {
		rs, _ := st.Jobs().Results(ctx, job.ID, "", 0)
		return len(rs) == 2 && rs[0].Status == registry.TargetRunning && rs[1].Status == registry.TargetRunning
	}
	waitFor(t, "both targets claimed", running)
	first.Close() // both reads were blocked: nothing is reported
	close(dm.release)

	other := runner("node-2")
	if err := other.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node-2's workers to find nothing", func() bool {
		other.mu.Lock()
		defer other.mu.Unlock()
		return len(other.active) == 0
	})
	other.Close()
	if !running() {
		t.Fatal("another node took targets whose leases run")
	}

	again := runner("node-1")
	defer again.Close()
	if err := again.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the resumed job's end", func() bool { return len(out.events(job.ID, "done")) == 1 })
	rs, err := st.Jobs().Results(ctx, job.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Status != registry.TargetSucceeded || r.Owner != "node-1" || r.Attempts != 2 {
			t.Fatalf("result %+v", r)
		}
	}
}
