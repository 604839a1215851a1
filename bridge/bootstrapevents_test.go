package bridge

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/bootstrap"
	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/server"
)

// memPub keeps what the outbox publishes.
type memPub struct {
	mu   sync.Mutex
	msgs []Message
}

func (p *memPub) Publish(_ context.Context, msgs []Message) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, msgs...)
	return len(msgs), nil
}

// bootstrapEvents returns the bootstrap events of ep, in order.
func (p *memPub) bootstrapEvents(ep string) []BootstrapEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []BootstrapEvent
	for _, m := range p.msgs {
		if len(m.Tokens) == 3 && m.Tokens[0] == ep && m.Tokens[1] == "bootstrap" {
			var ev BootstrapEvent
			if json.Unmarshal(m.Data, &ev) == nil && ev.Event == m.Tokens[2] {
				out = append(out, ev)
			}
		}
	}
	return out
}

func startBS(t *testing.T, ctx context.Context) *bootstrap.Server {
	t.Helper()
	bs, err := bootstrap.New(bootstrap.Config{UDPAddr: "127.0.0.1:0", RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bs.Close() })
	return bs
}

// TestBootstrapEvents bootstraps the client engine from the bootstrap
// server, once to an LwM2M server and once with a configuration the
// device refuses, and checks the messages on
// {ep}.bootstrap.started|step|finished|failed.
func TestBootstrapEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dm, err := server.New(server.Config{UDPAddr: "127.0.0.1:0", RegisterRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := dm.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer dm.Close()
	bs := startBS(t, ctx)
	pub := &memPub{}
	out := NewOutbox(OutboxConfig{Name: "test", Publisher: pub})
	defer out.Close()
	b, err := New(Config{Source: dm, Bootstrap: bs}, out)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	good := &bootstrap.Configuration{Servers: []bootstrap.ServerAccount{{URI: "coap://" + dm.Addr().String(), ShortServerID: 101, Lifetime: 120, Binding: "U"}}}
	bad := &bootstrap.Configuration{Servers: []bootstrap.ServerAccount{{URI: "coap+tcp://127.0.0.1:9", ShortServerID: 3}}}
	if err := bs.Configs().Put(ctx, "urn:dev:ok", good); err != nil {
		t.Fatal(err)
	}
	if err := bs.Configs().Put(ctx, "bad.dev", bad); err != nil {
		t.Fatal(err)
	}
	device := func(ep string) error {
		c, err := client.New(client.Config{
			Endpoint: ep, Version: "1.1", BootstrapURI: "coap://" + bs.Addr().String(),
			AckTimeout: 200 * time.Millisecond, MaxRetransmit: 2, Tick: 20 * time.Millisecond,
			BootstrapTimeout: 5 * time.Second, Retry: client.RetryPolicy{Count: 1, SequenceCount: 1},
			Objects: []*client.Object{client.NewTemperature(client.SensorConfig{Interval: time.Hour, Seed: 1}).Object},
		})
		if err != nil {
			t.Fatal(err)
		}
		// Open until the end: Start may return before the answer to
		// BS-Finish has left.
		t.Cleanup(func() { _ = c.Close() })
		return c.Start(ctx)
	}
	if err := device("urn:dev:ok"); err != nil {
		t.Fatal(err)
	}
	if err := device("bad.dev"); err == nil {
		t.Fatal("the device accepted a coap+tcp server")
	}

	tests := []struct {
		ep, token, kinds, last string
	}{
		// subject.Escape: ":" is kept, "." is escaped so the endpoint stays one token.
		{"urn:dev:ok", "", "started step step step step step step step finished", "finished"},
		{"bad.dev", "", "", "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.ep, func(t *testing.T) {
			var evs []BootstrapEvent
			waitFor(t, "the bootstrap's end", func() bool {
				for _, m := range pubTokens(pub) {
					if strings.Contains(m, "bootstrap."+tt.last) {
						evs = pub.bootstrapEvents(strings.SplitN(m, " ", 2)[0])
						if len(evs) > 0 && evs[0].Endpoint == tt.ep && evs[len(evs)-1].Event == tt.last {
							return true
						}
					}
				}
				return false
			})
			first, last := evs[0], evs[len(evs)-1]
			if first.Event != "started" || first.Initiator != "client" || first.Source != "endpoint" {
				t.Errorf("first event %+v", first)
			}
			var kinds []string
			for _, e := range evs {
				kinds = append(kinds, e.Event)
				if e.Event == "step" && (e.Step == "" || e.Path == "" || e.Code == "" && e.Error == "") {
					t.Errorf("step event %+v", e)
				}
			}
			if tt.kinds != "" && strings.Join(kinds, " ") != tt.kinds {
				t.Errorf("events %v, want %s", kinds, tt.kinds)
			}
			// The device answers 4.06; under heavy load the bootstrap
			// server may instead time out writing BS-Finish (the same
			// flake as bootstrap's TestFailingFinish): no code then.
			if tt.last == "failed" && (last.Step != bootstrap.StepFinish || last.Code != "4.06" && last.Code != "" || last.Error == "") {
				t.Errorf("failed event %+v", last)
			}
		})
	}
}

// pubTokens lists the published messages as "{ep token} {subject tokens}".
func pubTokens(p *memPub) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, m := range p.msgs {
		if len(m.Tokens) > 0 {
			out = append(out, m.Tokens[0]+" "+strings.Join(m.Tokens, "."))
		}
	}
	return out
}

func TestBootstrapMessage(t *testing.T) {
	at := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name  string
		ev    bootstrap.Event
		subj  string
		check func(BootstrapEvent) bool
	}{
		{"started", bootstrap.Event{Kind: bootstrap.EventStarted, Time: at, Endpoint: "urn:dev:os:0023C7-000001", Initiator: "server", Source: "template:meters"},
			"urn:dev:os:0023C7-000001.bootstrap.started",
			func(e BootstrapEvent) bool {
				return e.Initiator == "server" && e.Source == "template:meters" && e.Code == ""
			}},
		{"step", bootstrap.Event{Kind: bootstrap.EventStep, Time: at, Endpoint: "a.b", Step: bootstrap.StepWrite, Code: 0x44, Duration: 1500 * time.Microsecond},
			"a%2Eb.bootstrap.step",
			func(e BootstrapEvent) bool {
				return e.Step == "write" && e.Code == "2.04" && e.DurationMs == 1.5 && e.Path == "/"
			}},
		{"failed", bootstrap.Event{Kind: bootstrap.EventFailed, Time: at, Endpoint: "d", Step: bootstrap.StepFinish, Err: &bootstrap.StepError{Step: "finish", Code: 0x86, Diag: "bad uri"}},
			"d.bootstrap.failed",
			func(e BootstrapEvent) bool {
				return e.Code == "4.06" && strings.Contains(e.Error, "bad uri") && e.Path == ""
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := bootstrapMessage(tt.ev, "id-1")
			if err != nil {
				t.Fatal(err)
			}
			var got BootstrapEvent
			if err := json.Unmarshal(m.Data, &got); err != nil {
				t.Fatal(err)
			}
			if s := strings.Join(m.Tokens, "."); s != tt.subj || m.ID != "id-1" || got.Event != tt.name || !got.Time.Equal(at) || !tt.check(got) {
				t.Fatalf("%s %s", s, m.Data)
			}
		})
	}
}
