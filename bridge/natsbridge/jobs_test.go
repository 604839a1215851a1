package natsbridge

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/bridge"
	"github.com/lwm2md/lwm2md/bridge/internal/bridgetest"
	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/registry/bolt"
	"github.com/lwm2md/lwm2md/server"
)

// TestJob runs a read over a tag of devices, one of them asleep: the job
// completes when the sleeper wakes, with progress on lwm2m.jobs.{job}.*
// and each device's result kept in the registry.
func TestJob(t *testing.T) {
	st, err := bolt.Open(t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	const window = 300 * time.Millisecond
	r := newRigWith(t, Config{}, bridge.SenMLOff, func(c *server.Config) {
		c.AwakeWindow = window
		c.Store = server.RegistryStore(st.Registrations())
	})
	jobs, err := bridge.NewJobs(bridge.JobsConfig{Commands: r.cmds, Jobs: st.Jobs(), Tags: st.Tags(), Registrations: st.Registrations(), Publish: r.br.Publish})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(jobs.Close)
	if err := r.nats.AddJobs(jobs, st.Jobs()); err != nil {
		t.Fatal(err)
	}
	all := collect(t, r.nc, "lwm2m.jobs.>")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	for _, ep := range []string{"site-a-1", "site-a-2", "site-b-1"} {
		bridgetest.Device(t, r.srv, ep, nil)
	}
	sleeper, _ := bridgetest.Device(t, r.srv, "site-a-sleeper", func(c *client.Config) { c.Queue, c.AwakeWindow = true, window })
	for _, ep := range []string{"site-a-1", "site-a-2", "site-a-sleeper"} {
		if err := st.Tags().Set(ctx, ep, map[string]string{"site": "a"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Tags().Set(ctx, "site-b-1", map[string]string{"site": "b"}); err != nil {
		t.Fatal(err)
	}
	bridgetest.Eventually(t, 5*time.Second, "the sleeper asleep", func() bool { return !r.srv.Awake("site-a-sleeper") })

	m, err := r.nc.Request("lwm2m.jobs.submit", []byte(`{"op":"read","command":{"path":"/3/0/0"},"targets":{"tag":"site=a"},"concurrency":2,"deadline":"1m"}`), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var sub JobReply
	if err := json.Unmarshal(m.Data, &sub); err != nil || sub.Job == "" || sub.Total != 3 || sub.Status != "running" {
		t.Fatalf("submit reply %s: %v", m.Data, err)
	}
	all.wait(t, "lwm2m.jobs."+sub.Job+".created")

	// The two awake devices answer; the sleeper's read waits in its queue.
	progress := func() int {
		all.mu.Lock()
		defer all.mu.Unlock()
		n := 0
		for _, m := range all.msgs {
			if m.Subject == "lwm2m.jobs."+sub.Job+".progress" {
				n++
			}
		}
		return n
	}
	bridgetest.Eventually(t, 10*time.Second, "progress of the awake devices", func() bool { return progress() == 2 })
	if err := sleeper.Wake(ctx); err != nil {
		t.Fatal(err)
	}
	done := all.wait(t, "lwm2m.jobs."+sub.Job+".done")
	var ev bridge.JobEvent
	if err := json.Unmarshal(done.Data, &ev); err != nil || ev.Total != 3 || ev.Succeeded != 3 || ev.Failed != 0 {
		t.Fatalf("done event %s: %v", done.Data, err)
	}
	if progress() != 3 {
		all.mu.Lock()
		for _, m := range all.msgs {
			t.Logf("%s %s", m.Subject, m.Data)
		}
		all.mu.Unlock()
		t.Fatalf("%d progress events, want 3", progress())
	}

	m, err = r.nc.Request("lwm2m.jobs.get", []byte(`{"job":"`+sub.Job+`"}`), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var got JobReply
	if err := json.Unmarshal(m.Data, &got); err != nil || got.Status != "done" || len(got.Targets) != 3 {
		t.Fatalf("get reply %s: %v", m.Data, err)
	}
	for _, tg := range got.Targets {
		var rep bridge.Reply
		if err := json.Unmarshal(tg.Result, &rep); err != nil || tg.Status != "succeeded" || rep.Status != "ok" || len(rep.Node) == 0 {
			t.Fatalf("target %+v: %v", tg, err)
		}
	}

	t.Run("bad specs", func(t *testing.T) {
		for _, body := range []string{`{"op":"reboot","targets":{"tag":"site=a"}}`, `{"op":"read","targets":{"tag":"site=z"}}`, `{"op":"read"`, `{"op":"read","targets":{"endpoints":["a"]},"deadline":"x"}`} {
			m, err := r.nc.Request("lwm2m.jobs.submit", []byte(body), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if m.Header.Get("Nats-Service-Error-Code") != "bad-request" {
				t.Fatalf("%s: reply %s %v", body, m.Data, m.Header)
			}
		}
		m, err := r.nc.Request("lwm2m.jobs.get", []byte(`{"job":"nope"}`), 10*time.Second)
		if err != nil || m.Header.Get("Nats-Service-Error-Code") != "not-found" {
			t.Fatalf("get of an unknown job: %v %v", m, err)
		}
	})
}
