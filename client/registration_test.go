package client

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/server"
)

func TestRegisterUpdateDeregister(t *testing.T) {
	for _, ver := range []string{"1.0", "1.1", "1.2"} {
		t.Run(ver, func(t *testing.T) {
			s := newServer(t, nil)
			sub := s.Subscribe(64)
			defer sub.Close()
			cfg := testConfig(t, s.Addr().String(), "reg-"+ver, ver)
			cfg.Objects = []*Object{NewTemperature(SensorConfig{}).Object, NewConnectivity(ConnectivityInfo{}), NewLocation(52.52, 13.4, 34)}
			c := startClient(t, cfg)

			e := waitEvent(t, sub, 5*time.Second, "registered", func(e server.Event) bool { return e.Kind == server.EventRegistered })
			reg := e.Registration
			if reg.Endpoint != "reg-"+ver || reg.Version != ver || reg.Lifetime != 60*time.Second || reg.Binding != "U" {
				t.Fatalf("registration = %+v", reg)
			}
			if c.Location() != reg.Location() {
				t.Errorf("client location %q, server %q", c.Location(), reg.Location())
			}
			for _, id := range []uint16{1, 3, 4, 6, 3303} {
				if !reg.HasObject(id) {
					t.Errorf("object %d not announced: %+v", id, reg.Objects)
				}
			}
			if reg.HasObject(0) {
				t.Errorf("Security object announced")
			}
			if want := map[string]string{"1.0": "1.0", "1.1": "1.1", "1.2": "1.2"}[ver]; reg.ObjectVersions[3] != want {
				t.Errorf("Device version %q, want %q", reg.ObjectVersions[3], want)
			}

			if err := c.TriggerUpdate(ctx(t)); err != nil {
				t.Fatal(err)
			}
			waitEvent(t, sub, 5*time.Second, "updated", func(e server.Event) bool { return e.Kind == server.EventUpdated })

			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			waitEvent(t, sub, 5*time.Second, "deregistered", func(e server.Event) bool { return e.Kind == server.EventDeregistered })
			if st := c.State(); st != StateClosed {
				t.Errorf("state %v after Close", st)
			}
		})
	}
}

func TestRegisterRetryBackoff(t *testing.T) {
	f := newFakeServer(t)
	f.registerCodes = []codes.Code{codes.Forbidden, codes.ServiceUnavailable, codes.BadRequest}
	cfg := testConfig(t, f.addr, "retry", "1.1")
	cfg.Retry = RetryPolicy{Count: 5, Timer: 100 * time.Millisecond, SequenceCount: 1}
	var mu sync.Mutex
	var failures []Event
	cfg.OnEvent = func(e Event) {
		if e.Kind == EventRegisterFailed {
			mu.Lock()
			failures = append(failures, e)
			mu.Unlock()
		}
	}
	c := startClient(t, cfg)
	if c.State() != StateRegistered || c.Location() != "/rd/4" {
		t.Fatalf("state %v, location %q", c.State(), c.Location())
	}
	f.mu.Lock()
	regs := append([]time.Time(nil), f.registers...)
	f.mu.Unlock()
	if len(regs) != 4 {
		t.Fatalf("%d Registers, want 4", len(regs))
	}
	// Core 1.1 §6.2.1.1: the n-th retry waits Timer·2^(n-1).
	for i, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		if gap := regs[i+1].Sub(regs[i]); gap < want-10*time.Millisecond || gap > want+300*time.Millisecond {
			t.Errorf("retry %d after %v, want %v", i+1, gap, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failures) != 3 {
		t.Fatalf("failure events: %+v", failures)
	}
	var ce *CoAPError
	if !errors.As(failures[0].Err, &ce) || ce.Code != uint8(codes.Forbidden) || failures[0].Wait != 100*time.Millisecond {
		t.Errorf("first failure: %+v", failures[0])
	}
}

func TestRegisterGivesUp(t *testing.T) {
	f := newFakeServer(t)
	for i := 0; i < 10; i++ {
		f.registerCodes = append(f.registerCodes, codes.Forbidden)
	}
	cfg := testConfig(t, f.addr, "giveup", "1.1")
	cfg.Retry = RetryPolicy{Count: 2, Timer: 20 * time.Millisecond, SequenceDelay: 100 * time.Millisecond, SequenceCount: 2}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	err = c.Start(ctx(t))
	var ce *CoAPError
	if !errors.Is(err, ErrRegistrationFailed) || !errors.As(err, &ce) || ce.Code != uint8(codes.Forbidden) {
		t.Fatalf("start: %v", err)
	}
	// 2 sequences of 2 attempts, 20 ms between attempts, 100 ms between
	// sequences.
	if n := f.registerCount(); n != 4 {
		t.Errorf("%d Registers, want 4", n)
	}
	if el := time.Since(start); el < 140*time.Millisecond {
		t.Errorf("gave up after %v", el)
	}
	if c.State() != StateFailed {
		t.Errorf("state %v", c.State())
	}
	// A reboot starts over.
	f.mu.Lock()
	f.registerCodes = nil
	f.mu.Unlock()
	if err := c.Reboot(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitRegistered(ctx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestRegisterUnsupportedVersion(t *testing.T) {
	s := newServer(t, func(c *server.Config) { c.Versions = []string{"1.0"} })
	cfg := testConfig(t, s.Addr().String(), "v12", "1.2")
	cfg.Retry = RetryPolicy{Count: 2, Timer: 10 * time.Millisecond, SequenceCount: 1}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Start(ctx(t))
	var ce *CoAPError
	if !errors.As(err, &ce) || ce.Code != uint8(codes.PreconditionFailed) || ce.Diag == "" {
		t.Fatalf("start: %v", err)
	}
}

func TestUpdateNotFoundRegistersAgain(t *testing.T) {
	// The server restarts without its registrations: the next Update gets
	// 4.04 and the client registers again (Core 1.1 §6.2.2).
	s := newServer(t, nil)
	addr := s.Addr().String()
	cfg := testConfig(t, addr, "restart", "1.1")
	c := startClient(t, cfg)
	first := c.Location()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := newServer(t, func(c *server.Config) { c.UDPAddr = addr })
	sub := s2.Subscribe(16)
	defer sub.Close()
	err := c.TriggerUpdate(ctx(t))
	var ce *CoAPError
	if !errors.As(err, &ce) || ce.Code != uint8(codes.NotFound) {
		t.Fatalf("update: %v", err)
	}
	waitEvent(t, sub, 5*time.Second, "registered again", func(e server.Event) bool {
		return e.Kind == server.EventRegistered && e.Endpoint == "restart"
	})
	if err := c.WaitRegistered(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if c.Location() == first {
		t.Errorf("same location %q after registering again", first)
	}
}

func TestPeriodicUpdate(t *testing.T) {
	// lt=2s with a grace of 1 ms: the registration expires unless the
	// client updates before its lifetime ends.
	s := newServer(t, func(c *server.Config) { c.LifetimeGrace = time.Millisecond })
	sub := s.Subscribe(64)
	defer sub.Close()
	cfg := testConfig(t, s.Addr().String(), "periodic", "1.1")
	cfg.Lifetime = 2 * time.Second
	c := startClient(t, cfg)
	deadline := time.After(4500 * time.Millisecond)
	updates := 0
	for done := false; !done; {
		select {
		case e := <-sub.C:
			switch e.Kind {
			case server.EventUpdated:
				updates++
			case server.EventExpired:
				t.Fatalf("registration expired after %d updates", updates)
			}
		case <-deadline:
			done = true
		}
	}
	if updates < 3 {
		t.Errorf("%d updates in 4.5 s with lt=2s", updates)
	}
	if c.Stats().Updates < 3 {
		t.Errorf("stats: %+v", c.Stats())
	}
}

func TestRegisterParameters(t *testing.T) {
	for _, tc := range []struct {
		ver   string
		queue bool
		want  []string
	}{
		{"1.0", false, []string{"ep=params", "lt=60", "lwm2m=1.0", "b=U"}},
		{"1.0", true, []string{"ep=params", "lt=60", "lwm2m=1.0", "b=UQ"}},
		{"1.1", true, []string{"ep=params", "lt=60", "lwm2m=1.1", "b=U", "Q"}},
	} {
		f := newFakeServer(t)
		cfg := testConfig(t, f.addr, "params", tc.ver)
		cfg.Queue = tc.queue
		c := startClient(t, cfg)
		f.mu.Lock()
		got := f.queries[0]
		f.mu.Unlock()
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s queue=%v: query %v, want %v", tc.ver, tc.queue, got, tc.want)
		}
		_ = c.Close()
		f.mu.Lock()
		if f.deregisters != 1 {
			t.Errorf("%d de-registers", f.deregisters)
		}
		f.mu.Unlock()
	}
}

func TestConfigErrors(t *testing.T) {
	base := Config{Endpoint: "x", ServerURI: "coap://127.0.0.1:5999"}
	for _, tc := range []struct {
		name string
		mut  func(*Config)
	}{
		{"no endpoint", func(c *Config) { c.Endpoint = "" }},
		{"endpoint with &", func(c *Config) { c.Endpoint = "a&b" }},
		{"version", func(c *Config) { c.Version = "2.0" }},
		{"binding", func(c *Config) { c.Binding = "T" }},
		{"lifetime", func(c *Config) { c.Lifetime = time.Millisecond }},
		{"coaps", func(c *Config) { c.ServerURI = "coaps://127.0.0.1" }},
		{"scheme", func(c *Config) { c.ServerURI = "http://127.0.0.1" }},
		{"no server", func(c *Config) { c.ServerURI = "" }},
		{"default format", func(c *Config) { c.DefaultFormat = objects.FormatOpaque }},
		{"senml in 1.0", func(c *Config) { c.Version = "1.0"; c.DefaultFormat = objects.FormatSenMLCBOR }},
		{"object twice", func(c *Config) { c.Objects = []*Object{NewLocation(1, 2, 3), NewLocation(1, 2, 3)} }},
		{"unknown object", func(c *Config) { c.Objects = []*Object{NewObject(64999, "")} }},
		{"bad value", func(c *Config) {
			c.Objects = []*Object{NewObject(6, "", objects.Instance{Resources: []objects.Resource{objects.NewSingle(0, objects.StringValue("north"))}})}
		}},
		{"unknown resource", func(c *Config) {
			c.Objects = []*Object{NewObject(6, "", objects.Instance{Resources: []objects.Resource{objects.NewSingle(77, objects.FloatValue(1))}})}
		}},
	} {
		cfg := base
		tc.mut(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", tc.name, cfg)
		}
	}
	if _, err := New(base); err != nil {
		t.Errorf("New(%+v): %v", base, err)
	}
}
