package server

import (
	"context"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/linkformat"
	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/bolt"
	"github.com/lwm2md/lwm2md/registry/postgres"
)

// queueWindow is the awake window of the queue mode tests, on both sides.
const queueWindow = 300 * time.Millisecond

// queueServer is a server with a short awake window.
func queueServer(t *testing.T, mut func(*Config)) *testServer {
	return newServer(t, func(c *Config) {
		c.AwakeWindow = queueWindow
		if mut != nil {
			mut(c)
		}
	})
}

// queueClient starts our client engine in queue mode against addr; it
// never wakes by itself (no SleepPeriod, a long lifetime): the tests wake
// it with Wake.
func queueClient(t *testing.T, addr, ep, version string, queue bool) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{
		Endpoint:      ep,
		ServerURI:     "coap://" + addr,
		LocalAddr:     "127.0.0.1:0",
		Version:       version,
		Lifetime:      600 * time.Second,
		Models:        testModels,
		Objects:       []*client.Object{client.NewTemperature(client.SensorConfig{Seed: 1}).Object},
		Queue:         queue,
		AwakeWindow:   queueWindow,
		AckTimeout:    200 * time.Millisecond,
		MaxRetransmit: 2,
		Tick:          50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start %s: %v", ep, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitEventFor is waitEvent for one endpoint.
func waitEventFor(t *testing.T, sub *Subscription, kind EventKind, ep string) Event {
	t.Helper()
	for {
		e := waitEvent(t, sub, kind)
		if e.Endpoint == ep {
			return e
		}
	}
}

// asleep waits until both sides agree that the device sleeps.
func asleep(t *testing.T, s *testServer, sub *Subscription, c *client.Client) {
	t.Helper()
	waitEventFor(t, sub, EventSleeping, c.Endpoint())
	eventually(t, 5*time.Second, "client asleep", c.Asleep)
	if s.Awake(c.Endpoint()) {
		t.Fatal("server still takes the device as awake after EventSleeping")
	}
}

// A sleeping device's requests wait in its queue, in order, and go out
// when it wakes; each result comes as an EventRequestResult with the ID
// Enqueue returned.
func TestQueueDeliversOnWake(t *testing.T) {
	for _, version := range []string{"1.0", "1.1"} {
		t.Run(version, func(t *testing.T) {
			s := queueServer(t, nil)
			sub := s.Subscribe(256)
			ep := "q-wake-" + version
			c := queueClient(t, s.Addr().String(), ep, version, true)
			reg, err := s.Registration(ctx(t), ep)
			if err != nil || !reg.QueueMode {
				t.Fatalf("registration %+v %v: want queue mode", reg, err)
			}
			if version == "1.0" && reg.Binding != "UQ" {
				t.Fatalf("1.0 binding %q, want UQ", reg.Binding)
			}
			waitEventFor(t, sub, EventAwake, ep)
			asleep(t, s, sub, c)

			reqs := []Request{
				{Op: OpWrite, Path: path("/3/0/14"), Node: &objects.Resource{ID: 14, Value: objects.StringValue("+02:00")}, Replace: true},
				{Op: OpRead, Path: path("/3/0/14")},
				{Op: OpExecute, Path: path("/3/0/12")},
				{Op: OpRead, Path: path("/3/0/0")},
			}
			var ids []string
			for _, r := range reqs {
				id, err := s.Enqueue(ctx(t), ep, r)
				if err != nil {
					t.Fatalf("enqueue %s: %v", r.Op, err)
				}
				if q := waitEventFor(t, sub, EventQueued, ep); q.RequestID != id || q.Op != r.Op {
					t.Fatalf("queued event %+v, want ID %s", q, id)
				}
				ids = append(ids, id)
			}
			queued, err := s.Queue(ctx(t), ep)
			if err != nil || len(queued) != len(reqs) {
				t.Fatalf("queue %+v %v, want %d requests", queued, err, len(reqs))
			}
			for i, q := range queued {
				if q.ID != ids[i] || q.Status != registry.StatusPending || q.Deadline.IsZero() {
					t.Fatalf("queued[%d] = %+v, want ID %s pending with a deadline", i, q, ids[i])
				}
			}
			noEvent(t, sub, EventRequestResult, 2*queueWindow) // nothing goes out while it sleeps

			if err := c.Wake(ctx(t)); err != nil {
				t.Fatal(err)
			}
			waitEventFor(t, sub, EventAwake, ep)
			for i, id := range ids {
				e := waitEventFor(t, sub, EventRequestResult, ep)
				if e.RequestID != id || e.Op != reqs[i].Op || e.Err != nil || e.Result == nil || e.Result.Status != registry.StatusDone {
					t.Fatalf("result %d: %+v (err %v), want ID %s done", i, e, e.Err, id)
				}
				switch i {
				case 1: // the Read after the Write sees the written value: they went in order
					if v := e.Node.(*objects.Resource).Value.Str(); v != "+02:00" {
						t.Fatalf("read after write: %q", v)
					}
				case 3:
					if v := e.Result.Node.(*objects.Resource).Value.Str(); v != "lwm2md" {
						t.Fatalf("manufacturer %q", v)
					}
				}
			}
			if q, _ := s.Queue(ctx(t), ep); len(q) != 0 {
				t.Fatalf("queue after delivery: %+v", q)
			}
			// Quiet again: it sleeps again.
			asleep(t, s, sub, c)
		})
	}
}

// A blocking call for a sleeping device waits in the queue until the
// device wakes, and returns the answer.
func TestQueueBlockingCallWaits(t *testing.T) {
	s := queueServer(t, nil)
	sub := s.Subscribe(256)
	c := queueClient(t, s.Addr().String(), "q-block", "1.1", true)
	asleep(t, s, sub, c)

	type result struct {
		n   objects.Node
		err error
	}
	done := make(chan result, 1)
	go func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n, err := s.Read(cctx, "q-block", path("/3/0/0"))
		done <- result{n, err}
	}()
	waitEventFor(t, sub, EventQueued, "q-block")
	select {
	case r := <-done:
		t.Fatalf("Read returned while the device slept: %v %v", r.n, r.err)
	case <-time.After(2 * queueWindow):
	}
	if err := c.Wake(ctx(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil || r.n.(*objects.Resource).Value.Str() != "lwm2md" {
			t.Fatalf("Read after wake: %v %v", r.n, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read did not return after the device woke")
	}
}

// A blocking call whose context ends while the device sleeps withdraws
// its request and says why; NoQueue refuses at once.
func TestQueueBlockingCallTimesOut(t *testing.T) {
	s := queueServer(t, nil)
	sub := s.Subscribe(256)
	c := queueClient(t, s.Addr().String(), "q-timeout", "1.1", true)
	asleep(t, s, sub, c)

	cctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := s.Read(cctx, "q-timeout", path("/3/0/0"))
	if !errors.Is(err, ErrSleeping) || !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read of a sleeping device: %v, want ErrSleeping and ErrTimeout", err)
	}
	e := waitEventFor(t, sub, EventRequestResult, "q-timeout")
	if !errors.Is(e.Err, ErrCancelled) || e.Result.Status != registry.StatusCancelled {
		t.Fatalf("result of the withdrawn request: %+v", e)
	}
	if q, _ := s.Queue(ctx(t), "q-timeout"); len(q) != 0 {
		t.Fatalf("queue after the timeout: %+v", q)
	}

	start := time.Now()
	_, err = s.Read(ctx(t), "q-timeout", path("/3/0/0"), NoQueue())
	if !errors.Is(err, ErrSleeping) || time.Since(start) > time.Second {
		t.Fatalf("Read with NoQueue: %v after %v, want ErrSleeping at once", err, time.Since(start))
	}
	// Awake, the call goes straight out.
	if err := c.Wake(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(ctx(t), "q-timeout", path("/3/0/0"), NoQueue()); err != nil {
		t.Fatalf("Read of an awake device: %v", err)
	}
}

// A queued request whose deadline passes before the device wakes ends with
// ErrExpired (and ErrTimeout), and leaves the queue; CancelQueued
// withdraws one.
func TestQueueExpiryAndCancel(t *testing.T) {
	s := queueServer(t, nil)
	sub := s.Subscribe(256)
	c := queueClient(t, s.Addr().String(), "q-expire", "1.1", true)
	asleep(t, s, sub, c)

	short, err := s.Enqueue(ctx(t), "q-expire", Request{Op: OpRead, Path: path("/3/0/0"), Deadline: time.Now().Add(300 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	long, err := s.Enqueue(ctx(t), "q-expire", Request{Op: OpExecute, Path: path("/3/0/12")})
	if err != nil {
		t.Fatal(err)
	}
	e := waitEventFor(t, sub, EventRequestResult, "q-expire")
	if e.RequestID != short || !errors.Is(e.Err, ErrExpired) || !errors.Is(e.Err, ErrTimeout) || e.Result.Status != registry.StatusExpired {
		t.Fatalf("expiry result %+v (err %v)", e, e.Err)
	}
	q, err := s.Queue(ctx(t), "q-expire")
	if err != nil || len(q) != 1 || q[0].ID != long {
		t.Fatalf("queue after expiry: %+v %v", q, err)
	}

	if err := s.CancelQueued(ctx(t), "q-expire", long); err != nil {
		t.Fatal(err)
	}
	e = waitEventFor(t, sub, EventRequestResult, "q-expire")
	if e.RequestID != long || !errors.Is(e.Err, ErrCancelled) {
		t.Fatalf("cancel result %+v", e)
	}
	for _, tc := range []struct{ name, ep, id string }{
		{"finished", "q-expire", long},
		{"other endpoint", "someone-else", short},
		{"not a number", "q-expire", "x"},
		{"unknown", "q-expire", "999999"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.CancelQueued(ctx(t), tc.ep, tc.id); !errors.Is(err, ErrNoRequest) {
				t.Fatalf("CancelQueued: %v, want ErrNoRequest", err)
			}
		})
	}
	// Nothing left: a wake delivers nothing.
	if err := c.Wake(ctx(t)); err != nil {
		t.Fatal(err)
	}
	noEvent(t, sub, EventRequestResult, 2*queueWindow)
}

// Requests that are wrong in themselves, or for an unknown endpoint, are
// refused by Enqueue and nothing is queued.
func TestEnqueueRefuses(t *testing.T) {
	s := queueServer(t, nil)
	sub := s.Subscribe(256)
	c := queueClient(t, s.Addr().String(), "q-refuse", "1.0", true)
	asleep(t, s, sub, c)
	for _, tc := range []struct {
		name string
		ep   string
		r    Request
		want error
	}{
		{"unknown endpoint", "nobody", Request{Op: OpRead, Path: path("/3/0/0")}, ErrNotRegistered},
		{"unknown op", "q-refuse", Request{Op: "frobnicate", Path: path("/3/0/0")}, ErrInvalidRequest},
		{"read root", "q-refuse", Request{Op: OpRead}, ErrInvalidRequest},
		{"execute instance", "q-refuse", Request{Op: OpExecute, Path: path("/3/0")}, ErrInvalidRequest},
		{"bad args", "q-refuse", Request{Op: OpExecute, Path: path("/3/0/4"), Args: "x"}, ErrInvalidRequest},
		{"write mismatch", "q-refuse", Request{Op: OpWrite, Path: path("/3/0/14"), Node: &objects.Resource{ID: 15, Value: objects.StringValue("x")}}, ErrInvalidRequest},
		{"create without instance", "q-refuse", Request{Op: OpCreate, Path: path("/3303")}, ErrInvalidRequest},
		{"composite on 1.0", "q-refuse", Request{Op: OpReadComposite, Paths: []objects.Path{path("/3/0/0")}}, ErrInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Enqueue(ctx(t), tc.ep, tc.r); !errors.Is(err, tc.want) {
				t.Fatalf("Enqueue: %v, want %v", err, tc.want)
			}
		})
	}
	if q, _ := s.Queue(ctx(t), "q-refuse"); len(q) != 0 {
		t.Fatalf("queue: %+v", q)
	}
}

// A device without queue mode is never taken as sleeping: calls go out
// at once, Enqueue delivers at once, and no awake or sleeping event comes.
func TestQueueNonQueueDevice(t *testing.T) {
	s := queueServer(t, nil)
	sub := s.Subscribe(256)
	c := queueClient(t, s.Addr().String(), "q-plain", "1.1", false)
	waitEventFor(t, sub, EventRegistered, "q-plain")
	time.Sleep(3 * queueWindow) // well past the awake window
	if !s.Awake("q-plain") || c.Asleep() {
		t.Fatal("a device without queue mode is taken as sleeping")
	}
	n, err := s.Read(ctx(t), "q-plain", path("/3/0/0"), NoQueue())
	if err != nil || n.(*objects.Resource).Value.Str() != "lwm2md" {
		t.Fatalf("Read: %v %v", n, err)
	}
	id, err := s.Enqueue(ctx(t), "q-plain", Request{Op: OpRead, Path: path("/3/0/0")})
	if err != nil {
		t.Fatal(err)
	}
	e := waitEventFor(t, sub, EventRequestResult, "q-plain")
	if e.RequestID != id || e.Err != nil {
		t.Fatalf("result %+v", e)
	}
	for {
		select {
		case e := <-sub.C:
			if e.Kind == EventAwake || e.Kind == EventSleeping {
				t.Fatalf("queue mode event for a U device: %+v", e)
			}
			continue
		default:
		}
		break
	}
}

// Every operation goes through the queue: Discover, Write-Attributes,
// Create, Delete, Observe, Read-Composite and Write-Composite.
func TestQueueEveryOperation(t *testing.T) {
	s := queueServer(t, nil)
	sub := s.Subscribe(512)
	c := queueClient(t, s.Addr().String(), "q-ops", "1.1", true)
	asleep(t, s, sub, c)
	attrs, err := linkformat.ParseQuery([]string{"pmin=5"})
	if err != nil {
		t.Fatal(err)
	}
	inst := &objects.Instance{ID: 7, Resources: []objects.Resource{{ID: 5700, Value: objects.FloatValue(21.5)}, {ID: 5701, Value: objects.StringValue("Cel")}}}
	reqs := []Request{
		{Op: OpDiscover, Path: path("/3/0")},
		{Op: OpWriteAttributes, Path: path("/3/0/9"), Attrs: attrs},
		{Op: OpCreate, Path: path("/3303"), Instance: inst},
		{Op: OpReadComposite, Paths: []objects.Path{path("/3/0/0"), path("/3303/7/5701")}},
		{Op: OpWriteComposite, Records: []objects.Record{{Path: path("/3/0/14"), Value: objects.StringValue("+05:00")}}},
		{Op: OpObserve, Path: path("/3/0/14")},
		{Op: OpDelete, Path: path("/3303/7")},
	}
	for _, r := range reqs {
		if _, err := s.Enqueue(ctx(t), "q-ops", r); err != nil {
			t.Fatalf("enqueue %s: %v", r.Op, err)
		}
	}
	if err := c.Wake(ctx(t)); err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		e := waitEventFor(t, sub, EventRequestResult, "q-ops")
		if e.Op != r.Op || e.Err != nil {
			t.Fatalf("%s: %+v (err %v)", r.Op, e, e.Err)
		}
		res := e.Result
		switch r.Op {
		case OpDiscover:
			if len(res.Links) == 0 {
				t.Fatal("discover: no links")
			}
		case OpCreate:
			if res.Created != path("/3303/7") {
				t.Fatalf("created %v", res.Created)
			}
		case OpReadComposite:
			if v := res.Nodes[path("/3303/7/5701")].(*objects.Resource).Value.Str(); v != "Cel" {
				t.Fatalf("read-composite: %v", res.Nodes)
			}
		case OpObserve:
			if res.Observation == nil || res.Node.(*objects.Resource).Value.Str() != "+05:00" {
				t.Fatalf("observe: %+v", res)
			}
		}
	}
}

// The queue is kept in the registry: a server restarted on the same
// registry (bolt file or PostgreSQL schema) delivers the requests queued
// before the restart when the device wakes.
func TestQueueSurvivesRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) func() registry.Store // returns an opener of the same registry
	}{
		{"bolt", func(t *testing.T) func() registry.Store {
			dir := t.TempDir()
			return func() registry.Store {
				st, err := bolt.Open(dir, bolt.Options{})
				if err != nil {
					t.Fatal(err)
				}
				return st
			}
		}},
		{"postgres", func(t *testing.T) func() registry.Store {
			url := os.Getenv("LWM2MD_TEST_POSTGRES")
			if url == "" {
				t.Skip("LWM2MD_TEST_POSTGRES is not set (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
			}
			schema := "lwm2md_test_queue_" + strconv.FormatInt(time.Now().UnixNano(), 36)
			t.Cleanup(func() { dropSchema(t, url, schema) })
			return func() registry.Store {
				st, err := postgres.Open(context.Background(), url, postgres.Options{Schema: schema, MaxConns: 4})
				if err != nil {
					t.Fatal(err)
				}
				return st
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { queueRestart(t, tc.open(t)) })
	}
}

func dropSchema(t *testing.T, url, schema string) {
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Errorf("drop schema %s: %v", schema, err)
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		t.Errorf("drop schema %s: %v", schema, err)
	}
}

func queueRestart(t *testing.T, open func() registry.Store) {
	store := open()
	withStore := func(st registry.Store) func(*Config) {
		return func(c *Config) { c.Store, c.Queue = RegistryStore(st.Registrations()), st.Queue() }
	}
	ep := "q-restart-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	s1 := queueServer(t, withStore(store))
	addr := s1.Addr().String()
	sub1 := s1.Subscribe(256)
	c := queueClient(t, addr, ep, "1.1", true)
	asleep(t, s1, sub1, c)
	id, err := s1.Enqueue(ctx(t), ep, Request{Op: OpRead, Path: path("/3/0/0")})
	if err != nil {
		t.Fatal(err)
	}
	_ = s1.Close()
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	store = open()
	t.Cleanup(func() { store.Close() })
	s2 := queueServer(t, func(cfg *Config) { withStore(store)(cfg); cfg.UDPAddr = addr })
	sub2 := s2.Subscribe(256)
	q, err := s2.Queue(ctx(t), ep)
	if err != nil || len(q) != 1 || q[0].ID != id {
		t.Fatalf("queue after restart: %+v %v", q, err)
	}
	if s2.Awake(ep) {
		t.Fatal("a restored queue-mode device is taken as awake before it sent anything")
	}
	if err := c.Wake(ctx(t)); err != nil {
		t.Fatal(err)
	}
	e := waitEventFor(t, sub2, EventRequestResult, ep)
	if e.RequestID != id || e.Err != nil || e.Node.(*objects.Resource).Value.Str() != "lwm2md" {
		t.Fatalf("result after restart: %+v", e)
	}
	n, _ := strconv.ParseUint(id, 10, 64)
	stored, err := store.Queue().Get(ctx(t), n)
	if err != nil || stored.Status != registry.StatusDone || stored.Result.Code != 0x45 || len(stored.Result.Payload) == 0 {
		t.Fatalf("stored request %+v %v, want done with 2.05 and the value", stored, err)
	}
}

// A device that does not answer a queued request keeps it: the request
// stays in the queue and the server takes the device as sleeping.
func TestQueueUnansweredRequestStays(t *testing.T) {
	// The server's window is long, the client's short: the server sends
	// to a device that already sleeps and hears nothing back.
	s := newServer(t, func(c *Config) { c.AwakeWindow = time.Minute; c.RequestTimeout = 500 * time.Millisecond })
	sub := s.Subscribe(256)
	c := queueClient(t, s.Addr().String(), "q-deaf", "1.1", true)
	waitEventFor(t, sub, EventAwake, "q-deaf")
	eventually(t, 5*time.Second, "client asleep", c.Asleep)
	id, err := s.Enqueue(ctx(t), "q-deaf", Request{Op: OpRead, Path: path("/3/0/0")})
	if err != nil {
		t.Fatal(err)
	}
	waitEventFor(t, sub, EventSleeping, "q-deaf")
	q, err := s.Queue(ctx(t), "q-deaf")
	if err != nil || len(q) != 1 || q[0].ID != id || q[0].Attempts != 1 {
		t.Fatalf("queue after an unanswered request: %+v %v", q, err)
	}
	// After its lease (RequestTimeout + leaseSlack from the claim) it goes
	// out again on the next wake, and is answered.
	time.Sleep(leaseSlack + time.Second)
	if err := c.Wake(ctx(t)); err != nil {
		t.Fatal(err)
	}
	e := waitEventFor(t, sub, EventRequestResult, "q-deaf")
	if e.RequestID != id || e.Err != nil {
		t.Fatalf("result %+v", e)
	}
}

// BenchmarkEnqueueDeliver is the cost of one request through the queue
// to an awake device (our client engine), from Enqueue to its
// EventRequestResult: with the in-memory queue, and with the bolt
// registry, where each request is three fsynced writes (Enqueue, Claim,
// Complete).
func BenchmarkEnqueueDeliver(b *testing.B) {
	for _, store := range []string{"memory", "bolt"} {
		b.Run(store, func(b *testing.B) {
			var mut func(*Config)
			if store == "bolt" {
				st, err := bolt.Open(b.TempDir(), bolt.Options{})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { st.Close() })
				mut = func(c *Config) { c.Queue = st.Queue() }
			}
			s := newServer(b, mut)
			sub := s.Subscribe(1024)
			c, err := client.New(client.Config{Endpoint: "bench-q", ServerURI: "coap://" + s.Addr().String(),
				LocalAddr: "127.0.0.1:0", Version: "1.1", Models: testModels})
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = c.Close() })
			r := Request{Op: OpRead, Path: path("/3/0/0")}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Enqueue(context.Background(), "bench-q", r); err != nil {
					b.Fatal(err)
				}
				for e := range sub.C {
					if e.Kind == EventRequestResult {
						if e.Err != nil {
							b.Fatal(e.Err)
						}
						break
					}
				}
			}
		})
	}
}

// Requests of a device without queue mode that were still queued when
// the server stopped (here: put in the registry while it was down) go out
// after a restart without waiting for the device's next Update.
func TestQueueResumeAfterRestart(t *testing.T) {
	store, err := bolt.Open(t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg := func(c *Config) { c.Store, c.Queue = RegistryStore(store.Registrations()), store.Queue() }
	s1 := queueServer(t, cfg)
	addr := s1.Addr().String()
	queueClient(t, addr, "q-resume", "1.1", false)
	reg, err := s1.Registration(ctx(t), "q-resume")
	if err != nil {
		t.Fatal(err)
	}
	_ = s1.Close()
	stored, err := s1.encodeRequest(reg, Request{Op: OpRead, Path: path("/3/0/0")}, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	id, err := store.Queue().Enqueue(ctx(t), stored)
	if err != nil {
		t.Fatal(err)
	}
	queueServer(t, func(c *Config) { cfg(c); c.UDPAddr = addr })
	eventually(t, 5*time.Second, "the request delivered after the restart", func() bool {
		r, err := store.Queue().Get(ctx(t), id)
		return err == nil && r.Status == registry.StatusDone
	})
}
