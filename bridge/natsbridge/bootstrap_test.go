package natsbridge

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lwm2md/lwm2md/bootstrap"
	"github.com/lwm2md/lwm2md/bridge"
	"github.com/lwm2md/lwm2md/client"
)

// TestBootstrapEventsInStream bootstraps the client engine and finds its
// bootstrap events on lwm2m.{ep}.bootstrap.* and in the JetStream stream.
func TestBootstrapEventsInStream(t *testing.T) {
	r := newRig(t, Config{}, bridge.SenMLOff)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bs, err := bootstrap.New(bootstrap.Config{UDPAddr: "127.0.0.1:0", RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bs.Close() })
	br, err := bridge.New(bridge.Config{Source: r.srv, Bootstrap: bs}, r.nats.Outbox())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(br.Close)
	all := collect(t, r.nc, "lwm2m.*.bootstrap.*")

	const ep = "bs-dev-1"
	acct := bootstrap.ServerAccount{URI: "coap://" + r.srv.Addr().String(), ShortServerID: 101, Lifetime: 120, Binding: "U"}
	if err := bs.Configs().Put(ctx, ep, &bootstrap.Configuration{Servers: []bootstrap.ServerAccount{acct}}); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{
		Endpoint: ep, Version: "1.1", BootstrapURI: "coap://" + bs.Addr().String(),
		AckTimeout: 200 * time.Millisecond, MaxRetransmit: 2, Tick: 20 * time.Millisecond,
		BootstrapTimeout: 5 * time.Second, Retry: client.RetryPolicy{Count: 1, SequenceCount: 1},
		Objects: []*client.Object{client.NewTemperature(client.SensorConfig{Interval: time.Hour, Seed: 1}).Object},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	all.wait(t, "lwm2m."+ep+".bootstrap.started")
	all.wait(t, "lwm2m."+ep+".bootstrap.step")
	done := all.wait(t, "lwm2m."+ep+".bootstrap.finished")
	var ev bridge.BootstrapEvent
	if err := json.Unmarshal(done.Data, &ev); err != nil || ev.Endpoint != ep || ev.Event != "finished" || ev.Initiator != "client" {
		t.Fatalf("finished %s: %v", done.Data, err)
	}

	if err := r.nats.Outbox().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(r.nc)
	s, err := js.Stream(ctx, DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"started", "step", "finished"} {
		m, err := s.GetLastMsgForSubject(ctx, "lwm2m."+ep+".bootstrap."+kind)
		if err != nil {
			t.Fatalf("%s not in the stream: %v", kind, err)
		}
		if err := json.Unmarshal(m.Data, &ev); err != nil || ev.Event != kind {
			t.Fatalf("stream's %s: %s %v", kind, m.Data, err)
		}
	}
}
