package natsbridge

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lwm2md/lwm2md/bridge"
	"github.com/lwm2md/lwm2md/bridge/internal/bridgetest"
	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/registry/bolt"
	"github.com/lwm2md/lwm2md/server"
)

// jobRig is a rig with a registry and the job runner on the micro
// service, under prefix and with stream as the JetStream stream.
type jobRig struct {
	*rig
	st             *bolt.Store
	jobs           *bridge.Jobs
	prefix, stream string
	url            string
}

// sleepWindow is the awake window of the queue-mode devices of the job
// tests.
const sleepWindow = 300 * time.Millisecond

func newJobRig(t *testing.T, cfg Config) *jobRig {
	t.Helper()
	st, err := bolt.Open(t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	r := newRigWith(t, cfg, bridge.SenMLOff, func(c *server.Config) {
		c.AwakeWindow = sleepWindow
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
	jr := &jobRig{rig: r, st: st, jobs: jobs, prefix: cfg.Prefix, stream: cfg.Stream.Name, url: cfg.URL}
	if jr.prefix == "" {
		jr.prefix = DefaultPrefix
	}
	if jr.stream == "" {
		jr.stream = DefaultStream
	}
	if jr.url == "" {
		jr.url = r.nats.Embedded().URL()
	}
	return jr
}

// eachNATS runs test against the embedded server and, when
// LWM2MD_TEST_NATS is set, against that server with a prefix and a stream
// of its own.
func eachNATS(t *testing.T, test func(t *testing.T, cfg Config)) {
	t.Run("embedded", func(t *testing.T) { test(t, Config{}) })
	t.Run("external", func(t *testing.T) {
		url := os.Getenv("LWM2MD_TEST_NATS")
		if url == "" {
			t.Skip("LWM2MD_TEST_NATS is not set (e.g. nats://127.0.0.1:4222)")
		}
		id := fmt.Sprintf("t%d", time.Now().UnixNano())
		stream := "LWM2MTEST_" + id
		t.Cleanup(func() {
			nc, err := nats.Connect(url)
			if err != nil {
				return
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			_ = js.DeleteStream(context.Background(), stream)
		})
		test(t, Config{URL: url, Prefix: "lwm2mtest." + id, Stream: StreamConfig{Name: stream, MaxAge: time.Hour, Memory: true}})
	})
}

// request sends body to {prefix}.{subj} and returns the reply and its
// micro error code ("" for none).
func (r *jobRig) request(t *testing.T, subj, body string) ([]byte, string) {
	t.Helper()
	m, err := r.nc.Request(r.prefix+"."+subj, []byte(body), 10*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", subj, err)
	}
	return m.Data, m.Header.Get("Nats-Service-Error-Code")
}

func (r *jobRig) submit(t *testing.T, spec string) JobReply {
	t.Helper()
	data, code := r.request(t, "jobs.submit", spec)
	var rep JobReply
	if err := json.Unmarshal(data, &rep); err != nil || code != "" || rep.Job == "" || rep.Status != "running" {
		t.Fatalf("submit reply %s (%s): %v", data, code, err)
	}
	return rep
}

// sleeper registers a queue-mode device and waits until the server takes
// it as asleep.
func (r *jobRig) sleeper(t *testing.T, ep string) *client.Client {
	t.Helper()
	c, _ := bridgetest.Device(t, r.srv, ep, func(c *client.Config) { c.Queue, c.AwakeWindow = true, sleepWindow })
	bridgetest.Eventually(t, 5*time.Second, ep+" asleep", func() bool { return !r.srv.Awake(ep) })
	return c
}

// count is the number of messages on subj.
func (c *collector) count(subj string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.msgs {
		if m.Subject == subj {
			n++
		}
	}
	return n
}

// replay reads the job's events from the stream on a connection of its
// own, as an integrator that was away while the job ran: every message
// on {prefix}.jobs.{event}.{job}, kind by kind.
func (r *jobRig) replay(t *testing.T, job string) []bridge.JobEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.nats.Outbox().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(r.url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(ctx, r.stream)
	if err != nil {
		t.Fatal(err)
	}
	// One consumer a kind, in the order of bridge.JobEvents: a filter must
	// fall under one of the stream's subjects ({prefix}.jobs.*.{job}
	// falls under none alone), and servers before 2.10 take one filter a
	// consumer.
	var out []bridge.JobEvent
	for _, k := range bridge.JobEvents {
		subj := r.prefix + ".jobs." + k + "." + job
		cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
		if err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for n := uint64(0); n < info.NumPending; n++ {
			m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
			if err != nil {
				t.Fatalf("%s: after %d of %d events: %v", subj, n, info.NumPending, err)
			}
			var ev bridge.JobEvent
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				t.Fatal(err)
			}
			if m.Subject() != subj || ev.Job != job || ev.Event != k {
				t.Fatalf("event %s on %s, want %s", m.Data(), m.Subject(), subj)
			}
			out = append(out, ev)
		}
	}
	return out
}

// progress returns the endpoints of the progress events, sorted, and
// fails on a progress event without a reply.
func progress(t *testing.T, evs []bridge.JobEvent) []string {
	t.Helper()
	var eps []string
	for _, ev := range evs {
		if ev.Event != "progress" {
			continue
		}
		if ev.Reply == nil || ev.Reply.Endpoint != ev.Endpoint {
			t.Fatalf("progress without the device's reply: %+v", ev)
		}
		eps = append(eps, ev.Endpoint)
	}
	sort.Strings(eps)
	return eps
}

func kinds(evs []bridge.JobEvent) string {
	var ks []string
	for _, ev := range evs {
		ks = append(ks, ev.Event)
	}
	return strings.Join(ks, ",")
}

// TestJob runs a read over a tag of devices, one of them asleep: the job
// completes when the sleeper wakes, with progress on
// {prefix}.jobs.{event}.{job}, each device's result kept in the registry,
// and every event in the JetStream stream for an integrator that connects
// after the job ended.
func TestJob(t *testing.T) { eachNATS(t, testJob) }

func testJob(t *testing.T, cfg Config) {
	r := newJobRig(t, cfg)
	all := collect(t, r.nc, r.prefix+".jobs.>")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	for _, ep := range []string{"site-a-1", "site-a-2", "site-b-1"} {
		bridgetest.Device(t, r.srv, ep, nil)
	}
	sleeper := r.sleeper(t, "site-a-sleeper")
	for _, ep := range []string{"site-a-1", "site-a-2", "site-a-sleeper"} {
		if err := r.st.Tags().Set(ctx, ep, map[string]string{"site": "a"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.st.Tags().Set(ctx, "site-b-1", map[string]string{"site": "b"}); err != nil {
		t.Fatal(err)
	}

	sub := r.submit(t, `{"op":"read","command":{"path":"/3/0/0"},"targets":{"tag":"site=a"},"concurrency":2,"deadline":"1m"}`)
	if sub.Total != 3 {
		t.Fatalf("submit reply %+v", sub)
	}
	all.wait(t, r.prefix+".jobs.created."+sub.Job)

	// The two awake devices answer; the sleeper's read waits in its queue.
	bridgetest.Eventually(t, 10*time.Second, "progress of the awake devices", func() bool { return all.count(r.prefix+".jobs.progress."+sub.Job) == 2 })
	if err := sleeper.Wake(ctx); err != nil {
		t.Fatal(err)
	}
	done := all.wait(t, r.prefix+".jobs.done."+sub.Job)
	var ev bridge.JobEvent
	if err := json.Unmarshal(done.Data, &ev); err != nil || ev.Total != 3 || ev.Succeeded != 3 || ev.Failed != 0 {
		t.Fatalf("done event %s: %v", done.Data, err)
	}
	if n := all.count(r.prefix + ".jobs.progress." + sub.Job); n != 3 {
		t.Fatalf("%d progress events, want 3", n)
	}

	data, code := r.request(t, "jobs.get", `{"job":"`+sub.Job+`"}`)
	var got JobReply
	if err := json.Unmarshal(data, &got); err != nil || code != "" || got.Status != "done" || len(got.Targets) != 3 {
		t.Fatalf("get reply %s: %v", data, err)
	}
	for _, tg := range got.Targets {
		var rep bridge.Reply
		if err := json.Unmarshal(tg.Result, &rep); err != nil || tg.Status != "succeeded" || rep.Status != "ok" || len(rep.Node) == 0 {
			t.Fatalf("target %+v: %v", tg, err)
		}
	}

	t.Run("in the stream", func(t *testing.T) {
		evs := r.replay(t, sub.Job)
		if k := kinds(evs); k != "created,progress,progress,progress,done" {
			t.Fatalf("stream holds %s", k)
		}
		if eps := strings.Join(progress(t, evs), ","); eps != "site-a-1,site-a-2,site-a-sleeper" {
			t.Fatalf("results in the stream for %s", eps)
		}
	})

	t.Run("bad specs", func(t *testing.T) {
		for _, body := range []string{`{"op":"reboot","targets":{"tag":"site=a"}}`, `{"op":"read","targets":{"tag":"site=z"}}`, `{"op":"read"`, `{"op":"read","targets":{"endpoints":["a"]},"deadline":"x"}`} {
			if data, code := r.request(t, "jobs.submit", body); code != "bad-request" {
				t.Fatalf("%s: reply %s (%s)", body, data, code)
			}
		}
		if _, code := r.request(t, "jobs.get", `{"job":"nope"}`); code != "not-found" {
			t.Fatalf("get of an unknown job: %q", code)
		}
	})
}

// TestJobCancelNATS cancels a job over {prefix}.jobs.cancel, as DELETE
// /api/v1/jobs/{id} does: the device that answered keeps its result, the
// two asleep end as cancelled (their queued reads withdrawn), the reply
// and the cancelled event say so, and the stream keeps every device's
// outcome.
func TestJobCancelNATS(t *testing.T) { eachNATS(t, testJobCancel) }

func testJobCancel(t *testing.T, cfg Config) {
	r := newJobRig(t, cfg)
	all := collect(t, r.nc, r.prefix+".jobs.>")
	bridgetest.Device(t, r.srv, "c-awake", nil)
	r.sleeper(t, "c-sleep-1")
	r.sleeper(t, "c-sleep-2")

	sub := r.submit(t, `{"op":"read","command":{"path":"/3/0/0"},"targets":{"endpoints":["c-awake","c-sleep-1","c-sleep-2"]},"concurrency":3,"deadline":"1m"}`)
	all.wait(t, r.prefix+".jobs.progress."+sub.Job)
	bridgetest.Eventually(t, 10*time.Second, "the sleepers' reads queued", func() bool {
		rs, err := r.st.Jobs().Results(context.Background(), sub.Job, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		running := 0
		for _, res := range rs {
			if res.Status.String() == "running" {
				running++
			}
		}
		return running == 2
	})

	data, code := r.request(t, "jobs.cancel", `{"job":"`+sub.Job+`"}`)
	var rep JobReply
	if err := json.Unmarshal(data, &rep); err != nil || code != "" || rep.Status != "cancelled" || rep.Total != 3 || len(rep.Targets) != 3 {
		t.Fatalf("cancel reply %s (%s): %v", data, code, err)
	}
	want := map[string]string{"c-awake": "succeeded", "c-sleep-1": "cancelled", "c-sleep-2": "cancelled"}
	for _, tg := range rep.Targets {
		if tg.Status != want[tg.Endpoint] {
			t.Errorf("%s is %s, want %s", tg.Endpoint, tg.Status, want[tg.Endpoint])
		}
	}
	m := all.wait(t, r.prefix+".jobs.cancelled."+sub.Job)
	var ev bridge.JobEvent
	if err := json.Unmarshal(m.Data, &ev); err != nil || ev.Total != 3 || ev.Succeeded != 1 || ev.Cancelled != 2 || ev.Failed != 0 {
		t.Fatalf("cancelled event %s: %v", m.Data, err)
	}
	for _, ep := range []string{"c-sleep-1", "c-sleep-2"} {
		if q, err := r.srv.Queue(context.Background(), ep); err != nil || len(q) != 0 {
			t.Errorf("%s's queue after the cancellation: %+v %v", ep, q, err)
		}
	}

	for _, tc := range []struct{ body, code string }{
		{`{"job":"` + sub.Job + `"}`, "conflict"},
		{`{"job":"nope"}`, "not-found"},
		{`{}`, "bad-request"},
	} {
		if data, code := r.request(t, "jobs.cancel", tc.body); code != tc.code {
			t.Errorf("cancel %s: %s (%q), want %s", tc.body, data, code, tc.code)
		}
	}

	evs := r.replay(t, sub.Job)
	if k := kinds(evs); k != "created,progress,progress,progress,cancelled" {
		t.Fatalf("stream holds %s", k)
	}
	if eps := strings.Join(progress(t, evs), ","); eps != "c-awake,c-sleep-1,c-sleep-2" {
		t.Fatalf("results in the stream for %s", eps)
	}
}
