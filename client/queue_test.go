package client

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/server"
)

const testWindow = 300 * time.Millisecond

// eventLog collects a client's events for a test.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) count(k EventKind) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if e.Kind == k {
			n++
		}
	}
	return n
}

// queueFixture is a queue-mode client against an lwm2md server whose
// awake window is serverWindow.
func queueFixture(t *testing.T, ver string, serverWindow time.Duration, mut func(*Config)) (*server.Server, *server.Subscription, *Client, *eventLog) {
	t.Helper()
	s := newServer(t, func(c *server.Config) { c.AwakeWindow = serverWindow; c.RequestTimeout = time.Second })
	sub := s.Subscribe(512)
	t.Cleanup(sub.Close)
	ep := "queue-" + t.Name()
	cfg := testConfig(t, s.Addr().String(), ep, ver)
	cfg.Queue = true
	cfg.AwakeWindow = testWindow
	cfg.Lifetime = 600 * time.Second
	log := &eventLog{}
	cfg.OnEvent = log.add
	if mut != nil {
		mut(&cfg)
	}
	c := startClient(t, cfg)
	return s, sub, c, log
}

func isEvent(kind server.EventKind, ep string) func(server.Event) bool {
	return func(e server.Event) bool { return e.Kind == kind && e.Endpoint == ep }
}

// The client registers with queue mode in its version's form, sleeps
// after its awake window, wakes after its sleep period with an Update,
// and sleeps again.
func TestQueueModeSleepCycle(t *testing.T) {
	for _, tc := range []struct{ ver, binding string }{{"1.0", "UQ"}, {"1.1", "U"}, {"1.2", "U"}} {
		t.Run(tc.ver, func(t *testing.T) {
			s, sub, c, log := queueFixture(t, tc.ver, testWindow, func(c *Config) { c.SleepPeriod = 700 * time.Millisecond })
			ep := c.Endpoint()
			reg, err := s.Registration(ctx(t), ep)
			if err != nil || !reg.QueueMode || reg.Binding != tc.binding {
				t.Fatalf("registration %+v %v: want queue mode, binding %s", reg, err, tc.binding)
			}
			waitEvent(t, sub, 5*time.Second, "sleeping", isEvent(server.EventSleeping, ep))
			eventually(t, 5*time.Second, "client asleep", c.Asleep)
			updates := c.Stats().Updates
			// The sleep period ends: the client wakes and sends an Update.
			waitEvent(t, sub, 5*time.Second, "updated", isEvent(server.EventUpdated, ep))
			waitEvent(t, sub, 5*time.Second, "awake", isEvent(server.EventAwake, ep))
			eventually(t, 5*time.Second, "an Update on waking", func() bool { return c.Stats().Updates > updates })
			// And sleeps again.
			waitEvent(t, sub, 5*time.Second, "sleeping again", isEvent(server.EventSleeping, ep))
			eventually(t, 5*time.Second, "client asleep again", c.Asleep)
			eventually(t, 5*time.Second, "two client EventSleeping and an EventAwake", func() bool {
				return log.count(EventSleeping) >= 2 && log.count(EventAwake) >= 1
			})
		})
	}
}

// Asleep, the client answers nothing: a server that takes it as awake
// (its window is longer than the client's) gets no answer.
func TestQueueModeAsleepAnswersNothing(t *testing.T) {
	s, _, c, _ := queueFixture(t, "1.1", time.Minute, nil)
	eventually(t, 5*time.Second, "client asleep", c.Asleep)
	requests := c.Stats().Requests
	rctx, cancel := context.WithTimeout(ctx(t), time.Second)
	defer cancel()
	_, err := s.Read(rctx, c.Endpoint(), path("/3/0/0"))
	if !errors.Is(err, server.ErrTimeout) {
		t.Fatalf("Read of a sleeping client: %v, want ErrTimeout", err)
	}
	if c.Stats().Requests != requests {
		t.Fatal("the sleeping client answered")
	}
	// Awake, it answers.
	if err := c.Wake(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if c.Asleep() {
		t.Fatal("asleep after Wake")
	}
	if _, err := s.Read(ctx(t), c.Endpoint(), path("/3/0/0")); err != nil {
		t.Fatalf("Read after Wake: %v", err)
	}
}

// A notification due wakes the client, which sends it; the server takes
// it as a sign of life.
func TestQueueModeNotificationWakes(t *testing.T) {
	s, sub, c, log := queueFixture(t, "1.1", testWindow, nil)
	ep := c.Endpoint()
	p := path("/3/0/14")
	obs, _, err := s.Observe(ctx(t), ep, p)
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, sub, 5*time.Second, "sleeping", isEvent(server.EventSleeping, ep))
	eventually(t, 5*time.Second, "client asleep", c.Asleep)
	awake := log.count(EventAwake)
	if err := c.Object(3).Set(p, objects.StringValue("+03:00")); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, sub, 5*time.Second, "awake", isEvent(server.EventAwake, ep))
	e := waitEvent(t, sub, 5*time.Second, "notification", func(e server.Event) bool {
		return e.Kind == server.EventNotification && e.Token == obs.Token
	})
	if e.Node.(*objects.Resource).Value.Str() != "+03:00" {
		t.Fatalf("notification %v", e.Node)
	}
	if log.count(EventAwake) <= awake {
		t.Fatal("no client EventAwake for the notification")
	}
}

// A Send wakes the client too, and the server's queue goes out after it.
func TestQueueModeSendWakes(t *testing.T) {
	s, sub, c, _ := queueFixture(t, "1.1", testWindow, nil)
	ep := c.Endpoint()
	waitEvent(t, sub, 5*time.Second, "sleeping", isEvent(server.EventSleeping, ep))
	eventually(t, 5*time.Second, "client asleep", c.Asleep)
	id, err := s.Enqueue(ctx(t), ep, server.Request{Op: server.OpRead, Path: path("/3/0/0")})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(ctx(t), path("/3/0/0")); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, sub, 5*time.Second, "send", isEvent(server.EventSend, ep))
	r := waitEvent(t, sub, 5*time.Second, "request result", isEvent(server.EventRequestResult, ep))
	if r.RequestID != id || r.Err != nil {
		t.Fatalf("result %+v", r)
	}
}

// Bad settings are refused.
func TestQueueModeConfig(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"negative window": func(c *Config) { c.AwakeWindow = -time.Second },
		"negative sleep":  func(c *Config) { c.SleepPeriod = -time.Second },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := Config{Endpoint: "x", ServerURI: "coap://127.0.0.1:1", Queue: true}
			mut(&cfg)
			if _, err := New(cfg); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
}
