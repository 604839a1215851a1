package natsbridge

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lwm2md/lwm2md/bridge"
	"github.com/lwm2md/lwm2md/bridge/internal/bridgetest"
	"github.com/lwm2md/lwm2md/bridge/subject"
	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/senmljson"
	"github.com/lwm2md/lwm2md/server"
)

// rig is an LwM2M server bridged to NATS.
type rig struct {
	srv  *server.Server
	nats *NATS
	br   *bridge.Bridge
	cmds *bridge.Commands
	nc   *nats.Conn // the integrator's connection
}

func newRig(t *testing.T, cfg Config, senml bridge.SenML) *rig {
	return newRigWith(t, cfg, senml, nil)
}

func newRigWith(t *testing.T, cfg Config, senml bridge.SenML, mut func(*server.Config)) *rig {
	t.Helper()
	r := &rig{srv: bridgetest.Server(t, mut)}
	var err error
	r.cmds, err = bridge.NewCommands(bridge.CommandsConfig{Server: r.srv, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.cmds.Close)
	if cfg.URL == "" && cfg.Embedded.DataDir == "" {
		cfg.Embedded = EmbeddedConfig{Addr: "127.0.0.1:-1", DataDir: t.TempDir()}
	}
	cfg.Commands = r.cmds
	if r.nats, err = Start(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.nats.Close)
	if r.br, err = bridge.New(bridge.Config{Source: r.srv, SenML: senml}, r.nats.Outbox()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.br.Close)
	url := cfg.URL
	if url == "" {
		url = r.nats.Embedded().URL()
	}
	if r.nc, err = nats.Connect(url); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.nc.Close)
	return r
}

// collector keeps every message of a subscription.
type collector struct {
	mu   sync.Mutex
	msgs []*nats.Msg
}

func collect(t *testing.T, nc *nats.Conn, subj string) *collector {
	t.Helper()
	c := &collector{}
	sub, err := nc.Subscribe(subj, func(m *nats.Msg) {
		c.mu.Lock()
		c.msgs = append(c.msgs, m)
		c.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return c
}

// wait returns the first message on subj, failing after 10 s.
func (c *collector) wait(t *testing.T, subj string) *nats.Msg {
	t.Helper()
	var found *nats.Msg
	bridgetest.Eventually(t, 10*time.Second, "a message on "+subj, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, m := range c.msgs {
			if m.Subject == subj {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

func TestEventsAndTelemetry(t *testing.T) {
	r := newRig(t, Config{}, bridge.SenMLJSON)
	all := collect(t, r.nc, "lwm2m.>")
	for _, ep := range []string{"urn:dev:os:0023C7-000001", "dev.1", "data"} {
		t.Run(ep, func(t *testing.T) {
			tok := subject.Escape(ep)
			c, temp := bridgetest.Device(t, r.srv, ep, nil)

			m := all.wait(t, "lwm2m."+tok+".registered")
			var ev bridge.LifecycleEvent
			if err := json.Unmarshal(m.Data, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Endpoint != ep || ev.Event != "registered" || ev.RegistrationID == "" || ev.Lifetime != 600 || ev.Version != "1.1" {
				t.Fatalf("registered event %+v", ev)
			}
			if !contains(ev.Objects, "/3303/0") {
				t.Fatalf("objects %v lack /3303/0", ev.Objects)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			obs, _, err := r.srv.Observe(ctx, ep, bridgetest.SensorValue)
			if err != nil {
				t.Fatal(err)
			}
			temp.Sample()
			dataSubj := "lwm2m." + tok + ".data.3303.0.5700"
			var dp bridge.DataPoint
			bridgetest.Eventually(t, 10*time.Second, "a notification on "+dataSubj, func() bool {
				all.mu.Lock()
				defer all.mu.Unlock()
				for _, m := range all.msgs {
					if dp = (bridge.DataPoint{}); m.Subject == dataSubj && json.Unmarshal(m.Data, &dp) == nil && dp.Source == "notify" {
						return true
					}
				}
				return false
			})
			if dp.Endpoint != ep || dp.Path != "/3303/0/5700" || dp.Type != "float" || dp.Token != obs.Token || dp.Sequence == 0 || dp.ID == "" {
				t.Fatalf("notification data point %+v (observation %s)", dp, obs.Token)
			}
			var f float64
			if err := json.Unmarshal(dp.Value, &f); err != nil {
				t.Fatalf("value %s: %v", dp.Value, err)
			}

			// A Send with a device timestamp.
			at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			rec := objects.Record{Path: bridgetest.SensorValue, Value: objects.FloatValue(-12.5), Time: float64(at.Unix())}
			if err := c.SendRecords(ctx, []objects.Record{rec}); err != nil {
				t.Fatal(err)
			}
			bridgetest.Eventually(t, 10*time.Second, "a send on "+dataSubj, func() bool {
				all.mu.Lock()
				defer all.mu.Unlock()
				for _, m := range all.msgs {
					if dp = (bridge.DataPoint{}); m.Subject == dataSubj && json.Unmarshal(m.Data, &dp) == nil && dp.Source == "send" {
						return true
					}
				}
				return false
			})
			if string(dp.Value) != "-12.5" || dp.DeviceTime == nil || !dp.DeviceTime.Equal(at) || dp.Token != "" {
				t.Fatalf("send data point %+v", dp)
			}
			sm := all.wait(t, "lwm2m."+tok+".senml")
			if ct := sm.Header.Get("Content-Type"); ct != "application/senml+json" {
				t.Fatalf("senml content type %q", ct)
			}
			recs, err := senmljson.Codec{}.DecodeRecords(sm.Data, nil)
			if err != nil || len(recs) == 0 || recs[0].Path != bridgetest.SensorValue {
				t.Fatalf("senml %s: %v %v", sm.Data, recs, err)
			}

			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			all.wait(t, "lwm2m."+tok+".deregistered")
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// request sends a command and decodes the reply.
func request(t *testing.T, nc *nats.Conn, ep, op, body string) (bridge.Reply, *nats.Msg) {
	t.Helper()
	m, err := nc.Request("lwm2m.cmd."+subject.Escape(ep)+"."+op, []byte(body), 10*time.Second)
	if err != nil {
		t.Fatalf("%s %s: %v", op, body, err)
	}
	var r bridge.Reply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		t.Fatalf("%s reply %q: %v", op, m.Data, err)
	}
	return r, m
}

func TestCommands(t *testing.T) {
	r := newRig(t, Config{}, bridge.SenMLOff)
	ep := "urn:imei:490154203237518"
	_, temp := bridgetest.Device(t, r.srv, ep, func(c *client.Config) { c.Device.Manufacturer = "lwm2md tests" })
	data := collect(t, r.nc, "lwm2m.*.data.>")

	tests := []struct {
		name, op, body string
		status, code   string
		check          func(t *testing.T, rep bridge.Reply)
	}{
		{name: "read resource", op: "read", body: `{"path":"/3/0/0"}`, status: "ok", check: func(t *testing.T, rep bridge.Reply) {
			if !strings.Contains(string(rep.Node), `"value":"lwm2md tests"`) {
				t.Fatalf("node %s", rep.Node)
			}
		}},
		{name: "read instance as TLV", op: "read", body: `{"path":"/3303/0","format":"tlv"}`, status: "ok", check: func(t *testing.T, rep bridge.Reply) {
			if !strings.Contains(string(rep.Node), `"path":"/3303/0/5700"`) {
				t.Fatalf("node %s", rep.Node)
			}
		}},
		{name: "write", op: "write", body: `{"path":"/3/0/14","node":{"value":"+02:00"}}`, status: "ok"},
		{name: "write read-only", op: "write", body: `{"path":"/3303/0/5701","node":{"value":"Cel"}}`, status: "error", code: "4.05"},
		{name: "read back", op: "read", body: `{"path":"/3/0/14"}`, status: "ok", check: func(t *testing.T, rep bridge.Reply) {
			if !strings.Contains(string(rep.Node), `"value":"+02:00"`) {
				t.Fatalf("node %s", rep.Node)
			}
		}},
		{name: "execute", op: "execute", body: `{"path":"/3303/0/5605"}`, status: "ok"},
		{name: "discover", op: "discover", body: `{"path":"/3303/0"}`, status: "ok", check: func(t *testing.T, rep bridge.Reply) {
			if !contains(rep.Links, "</3303/0/5700>") {
				t.Fatalf("links %v", rep.Links)
			}
		}},
		{name: "write-attributes", op: "write-attributes", body: `{"path":"/3303/0/5700","attributes":"pmin=0&pmax=60"}`, status: "ok"},
		{name: "observe", op: "observe", body: `{"path":"/3303/0/5700"}`, status: "ok", check: func(t *testing.T, rep bridge.Reply) {
			if rep.Observation == "" || len(rep.Node) == 0 {
				t.Fatalf("observe reply %+v", rep)
			}
			temp.Sample()
			m := data.wait(t, "lwm2m."+subject.Escape(ep)+".data.3303.0.5700")
			var dp bridge.DataPoint
			if err := json.Unmarshal(m.Data, &dp); err != nil || dp.Token != rep.Observation {
				t.Fatalf("data point %s after observe %s: %v", m.Data, rep.Observation, err)
			}
		}},
		{name: "cancel", op: "cancel", body: `{"path":"/3303/0/5700"}`, status: "ok"},
		{name: "cancel again", op: "cancel", body: `{"path":"/3303/0/5700"}`, status: "error", code: "not-observed"},
		{name: "create", op: "create", body: `{"path":"/3303","node":{"path":"/3303/7","resources":[{"path":"/3303/7/5700","value":1.5}]}}`, status: "ok", check: func(t *testing.T, rep bridge.Reply) {
			if rep.Location != "/3303/7" {
				t.Fatalf("location %q", rep.Location)
			}
		}},
		{name: "delete", op: "delete", body: `{"path":"/3303/7"}`, status: "ok"},
		{name: "read missing", op: "read", body: `{"path":"/3303/9"}`, status: "error", code: "4.04"},
		{name: "bad path", op: "read", body: `{"path":"/x"}`, status: "error", code: "bad-request"},
		{name: "bad json", op: "read", body: `{"path":`, status: "error", code: "bad-request"},
		{name: "bad node", op: "write", body: `{"path":"/3/0/14","node":{"value":5}}`, status: "error", code: "bad-request"},
		{name: "bad attributes", op: "write-attributes", body: `{"path":"/3303/0/5700","attributes":"pmin=x"}`, status: "error", code: "bad-request"},
		{name: "bad timeout", op: "read", body: `{"path":"/3/0","timeout":"soon"}`, status: "error", code: "bad-request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, m := request(t, r.nc, ep, tt.op, tt.body)
			if rep.Status != tt.status || rep.Endpoint != ep || rep.Op != tt.op || rep.Request == "" {
				t.Fatalf("reply %+v %+v", rep, rep.Error)
			}
			if tt.code != "" {
				if rep.Error == nil || rep.Error.Code != tt.code || rep.Error.Message == "" {
					t.Fatalf("error %+v, want code %s", rep.Error, tt.code)
				}
				if got := m.Header.Get("Nats-Service-Error-Code"); got != tt.code {
					t.Fatalf("Nats-Service-Error-Code %q", got)
				}
			}
			if tt.check != nil {
				tt.check(t, rep)
			}
		})
	}
	t.Run("unknown endpoint", func(t *testing.T) {
		rep, _ := request(t, r.nc, "nobody", "read", `{"path":"/3/0"}`)
		if rep.Error == nil || rep.Error.Code != "not-registered" {
			t.Fatalf("reply %+v", rep)
		}
	})
	t.Run("bad endpoint token", func(t *testing.T) {
		m, err := r.nc.Request("lwm2m.cmd.a%2eb.read", []byte(`{"path":"/3/0"}`), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Get("Nats-Service-Error-Code") != "bad-request" {
			t.Fatalf("headers %v body %s", m.Header, m.Data)
		}
	})
}

// TestOutage cuts the embedded NATS server off in the middle of a stream
// of Sends, restarts it on the same port and store, and checks that the
// stream holds every value exactly once.
func TestOutage(t *testing.T) {
	dir := t.TempDir()
	emb, err := StartEmbedded(EmbeddedConfig{Addr: "127.0.0.1:-1", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	addr := emb.Addr().(*net.TCPAddr).String()
	url := emb.URL()
	// Registered first, so it runs last: the bridge flushes the
	// device's de-registration at its own cleanup.
	t.Cleanup(func() { emb.Shutdown() })

	r := newRig(t, Config{URL: url}, bridge.SenMLOff)
	c, _ := bridgetest.Device(t, r.srv, "outage-1", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const total = 300
	for i := 0; i < total; i++ {
		if i == total/3 {
			emb.Shutdown()
		}
		if i == 2*total/3 {
			bridgetest.Eventually(t, 10*time.Second, "publishes failing", func() bool {
				_, _, failures := r.nats.Outbox().Stats()
				return failures > 0
			})
			if emb, err = StartEmbedded(EmbeddedConfig{Addr: addr, DataDir: dir}); err != nil {
				t.Fatal(err)
			}
		}
		rec := objects.Record{Path: bridgetest.SensorValue, Value: objects.FloatValue(float64(i))}
		if err := c.SendRecords(ctx, []objects.Record{rec}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if err := r.nats.Outbox().Flush(ctx); err != nil {
		t.Fatalf("outbox not flushed: %v (%d left)", err, r.nats.Outbox().Len())
	}
	if d := r.br.Dropped(); d != 0 {
		t.Fatalf("%d events dropped", d)
	}
	if _, dropped, failures := r.nats.Outbox().Stats(); failures == 0 || dropped != 0 {
		t.Fatalf("outbox saw %d failures (want some: the server was down) and dropped %d", failures, dropped)
	}

	nc, err := nats.Connect(emb.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	cons, err := js.OrderedConsumer(ctx, DefaultStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"lwm2m.outage-1.data.>"}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	ids := map[string]bool{}
	for len(ids) < total {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("after %d messages: %v", len(ids), err)
		}
		id := m.Headers().Get("Nats-Msg-Id")
		if ids[id] {
			t.Fatalf("message %s stored twice", id)
		}
		ids[id] = true
		var dp bridge.DataPoint
		if err := json.Unmarshal(m.Data(), &dp); err != nil {
			t.Fatal(err)
		}
		seen[string(dp.Value)]++
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumPending != 0 {
		t.Fatalf("%d more messages than values sent", info.NumPending)
	}
	for i := 0; i < total; i++ {
		if n := seen[fmt.Sprint(i)]; n != 1 {
			t.Fatalf("value %d stored %d times", i, n)
		}
	}
}

// TestExternal runs against the NATS server of LWM2MD_TEST_NATS with a
// prefix and stream of its own.
func TestExternal(t *testing.T) {
	url := os.Getenv("LWM2MD_TEST_NATS")
	if url == "" {
		t.Skip("LWM2MD_TEST_NATS is not set (e.g. nats://127.0.0.1:4222)")
	}
	id := fmt.Sprintf("t%d", time.Now().UnixNano())
	prefix := "lwm2mtest." + id
	stream := "LWM2MTEST_" + id
	r := newRig(t, Config{URL: url, Prefix: prefix, Stream: StreamConfig{Name: stream, MaxAge: time.Hour, Memory: true}}, bridge.SenMLOff)
	t.Cleanup(func() {
		js, _ := jetstream.New(r.nc)
		_ = js.DeleteStream(context.Background(), stream)
	})
	all := collect(t, r.nc, prefix+".>")
	bridgetest.Device(t, r.srv, "ext-1", nil)
	all.wait(t, prefix+".ext-1.registered")
	m, err := r.nc.Request(prefix+".cmd.ext-1.read", []byte(`{"path":"/3/0/0"}`), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var rep bridge.Reply
	if err := json.Unmarshal(m.Data, &rep); err != nil || rep.Status != "ok" {
		t.Fatalf("reply %s: %v", m.Data, err)
	}
	js, _ := jetstream.New(r.nc)
	bridgetest.Eventually(t, 10*time.Second, "the event in the stream", func() bool {
		s, err := js.Stream(context.Background(), stream)
		if err != nil {
			return false
		}
		info, err := s.Info(context.Background())
		return err == nil && info.State.Msgs >= 1
	})
}

// TestQueuedCommand sends a read to a sleeping queue-mode device: the
// answer says it is queued, and the result follows on the result subject
// once the device wakes.
func TestQueuedCommand(t *testing.T) {
	const window = 300 * time.Millisecond
	r := newRigWith(t, Config{}, bridge.SenMLOff, func(c *server.Config) { c.AwakeWindow = window })
	all := collect(t, r.nc, "lwm2m.>")
	ep := "sleepy.1"
	tok := subject.Escape(ep)
	c, _ := bridgetest.Device(t, r.srv, ep, func(c *client.Config) {
		c.Queue, c.AwakeWindow = true, window
		c.Device.Manufacturer = "sleeper"
	})
	all.wait(t, "lwm2m."+tok+".sleeping")
	bridgetest.Eventually(t, 5*time.Second, "the server to take the device as asleep", func() bool { return !r.srv.Awake(ep) })

	rep, _ := request(t, r.nc, ep, "read", `{"path":"/3/0/0","request":"q-1"}`)
	if rep.Status != "queued" || rep.Request != "q-1" || rep.Error != nil {
		t.Fatalf("reply %+v", rep)
	}
	bad, _ := request(t, r.nc, ep, "read", `{"path":"/3/0/0/0/0"}`)
	if bad.Status != "error" || bad.Error.Code != "bad-request" {
		t.Fatalf("a bad command for a sleeping device: %+v", bad)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Wake(ctx); err != nil {
		t.Fatal(err)
	}
	all.wait(t, "lwm2m."+tok+".awake")
	m := all.wait(t, "lwm2m."+tok+".result.q-1")
	var res bridge.Reply
	if err := json.Unmarshal(m.Data, &res); err != nil {
		t.Fatal(err)
	}
	if res.Status != "ok" || res.Request != "q-1" || res.Endpoint != ep || !strings.Contains(string(res.Node), `"value":"sleeper"`) {
		t.Fatalf("result %s", m.Data)
	}
}

// TestStartBeforeNATS starts the bridge against a NATS server that is not
// there yet: events wait in the outbox, the stream is created and the
// service answers once the server comes up.
func TestStartBeforeNATS(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	dir := t.TempDir()
	var emb *Embedded
	t.Cleanup(func() {
		if emb != nil {
			emb.Shutdown()
		}
	})
	srv := bridgetest.Server(t, nil)
	cmds, err := bridge.NewCommands(bridge.CommandsConfig{Server: srv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cmds.Close)
	n, err := Start(Config{URL: "nats://" + addr, Commands: cmds})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	br, err := bridge.New(bridge.Config{Source: srv}, n.Outbox())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(br.Close)
	bridgetest.Device(t, srv, "early-1", nil)
	bridgetest.Eventually(t, 5*time.Second, "the registration waiting in the outbox", func() bool { return n.Outbox().Len() > 0 })

	if emb, err = StartEmbedded(EmbeddedConfig{Addr: addr, DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Outbox().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(emb.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(ctx, DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.GetLastMsgForSubject(ctx, "lwm2m.early-1.registered")
	if err != nil {
		t.Fatal(err)
	}
	var ev bridge.LifecycleEvent
	if err := json.Unmarshal(msg.Data, &ev); err != nil || ev.Endpoint != "early-1" {
		t.Fatalf("event %s: %v", msg.Data, err)
	}
	bridgetest.Eventually(t, 10*time.Second, "the service answering", func() bool {
		m, err := nc.Request("lwm2m.cmd.early-1.read", []byte(`{"path":"/3/0/0"}`), time.Second)
		return err == nil && strings.Contains(string(m.Data), `"status":"ok"`)
	})
}
