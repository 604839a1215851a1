package mqttbridge

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/lwm2md/lwm2md/bridge"
	"github.com/lwm2md/lwm2md/bridge/internal/bridgetest"
)

func brokerURL(t *testing.T) string {
	u := os.Getenv("LWM2MD_TEST_MQTT")
	if u == "" {
		t.Skip("LWM2MD_TEST_MQTT is not set (e.g. tcp://127.0.0.1:1883, a Mosquitto broker)")
	}
	return u
}

// integrator is an MQTT client that keeps what it receives.
type integrator struct {
	cm   *autopaho.ConnectionManager
	mu   sync.Mutex
	msgs []*paho.Publish
}

func newIntegrator(t *testing.T, broker, filter string) *integrator {
	t.Helper()
	u, err := url.Parse(broker)
	if err != nil {
		t.Fatal(err)
	}
	in := &integrator{}
	ready := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	in.cm, err = autopaho.NewConnection(ctx, autopaho.ClientConfig{
		ServerUrls: []*url.URL{u}, KeepAlive: 30, CleanStartOnInitialConnection: true,
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
			go func() {
				_, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
				ready <- err
			}()
		},
		ClientConfig: paho.ClientConfig{
			ClientID: fmt.Sprintf("lwm2md-test-%d", time.Now().UnixNano()),
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
				in.mu.Lock()
				in.msgs = append(in.msgs, pr.Packet)
				in.mu.Unlock()
				return true, nil
			}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("integrator did not connect to the broker")
	}
	t.Cleanup(func() { _ = in.cm.Disconnect(context.Background()) })
	return in
}

func (in *integrator) wait(t *testing.T, topic string, match func(*paho.Publish) bool) *paho.Publish {
	t.Helper()
	var found *paho.Publish
	bridgetest.Eventually(t, 10*time.Second, "a message on "+topic, func() bool {
		in.mu.Lock()
		defer in.mu.Unlock()
		for _, m := range in.msgs {
			if m.Topic == topic && (match == nil || match(m)) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

func TestMQTT(t *testing.T) {
	broker := brokerURL(t)
	prefix := fmt.Sprintf("lwm2mtest/t%d", time.Now().UnixNano())
	srv := bridgetest.Server(t, nil)
	cmds, err := bridge.NewCommands(bridge.CommandsConfig{Server: srv, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cmds.Close)
	m, err := Start(Config{URL: broker, Prefix: prefix, QoS: 1, Commands: cmds})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.AwaitConnection(ctx); err != nil {
		t.Fatal(err)
	}
	br, err := bridge.New(bridge.Config{Source: srv, SenML: bridge.SenMLCBOR}, m.Outbox())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(br.Close)
	in := newIntegrator(t, broker, prefix+"/#")

	c, temp := bridgetest.Device(t, srv, "mqtt-dev", nil)

	t.Run("registered", func(t *testing.T) {
		p := in.wait(t, prefix+"/mqtt-dev/registered", nil)
		var ev bridge.LifecycleEvent
		if err := json.Unmarshal(p.Payload, &ev); err != nil || ev.Endpoint != "mqtt-dev" || ev.Event != "registered" {
			t.Fatalf("event %s: %v", p.Payload, err)
		}
		if p.Properties == nil || p.Properties.ContentType != "application/json" || p.Properties.User.Get("msg-id") == "" {
			t.Fatalf("properties %+v", p.Properties)
		}
	})
	t.Run("telemetry", func(t *testing.T) {
		if _, _, err := srv.Observe(ctx, "mqtt-dev", bridgetest.SensorValue); err != nil {
			t.Fatal(err)
		}
		temp.Sample()
		p := in.wait(t, prefix+"/mqtt-dev/data/3303/0/5700", func(p *paho.Publish) bool {
			return strings.Contains(string(p.Payload), `"source":"notify"`)
		})
		var dp bridge.DataPoint
		if err := json.Unmarshal(p.Payload, &dp); err != nil || dp.Type != "float" || dp.Path != "/3303/0/5700" {
			t.Fatalf("data point %s: %v", p.Payload, err)
		}
		s := in.wait(t, prefix+"/mqtt-dev/senml", nil)
		if s.Properties == nil || s.Properties.ContentType != "application/senml+cbor" || len(s.Payload) == 0 {
			t.Fatalf("senml message %+v", s)
		}
	})
	t.Run("read command", func(t *testing.T) {
		_, err := in.cm.Publish(ctx, &paho.Publish{Topic: prefix + "/mqtt-dev/cmd/read", QoS: 1, Payload: []byte(`{"path":"/3/0/0","request":"r1"}`)})
		if err != nil {
			t.Fatal(err)
		}
		p := in.wait(t, prefix+"/mqtt-dev/result/r1", nil)
		var rep bridge.Reply
		if err := json.Unmarshal(p.Payload, &rep); err != nil || rep.Status != "ok" || len(rep.Node) == 0 || rep.Op != "read" {
			t.Fatalf("reply %s: %v", p.Payload, err)
		}
	})
	t.Run("response topic", func(t *testing.T) {
		_, err := in.cm.Publish(ctx, &paho.Publish{Topic: prefix + "/mqtt-dev/cmd/read", QoS: 1, Payload: []byte(`{"path":"/3/0/99","request":"r2"}`),
			Properties: &paho.PublishProperties{ResponseTopic: prefix + "/replies/me", CorrelationData: []byte("c2")}})
		if err != nil {
			t.Fatal(err)
		}
		p := in.wait(t, prefix+"/replies/me", nil)
		var rep bridge.Reply
		if err := json.Unmarshal(p.Payload, &rep); err != nil || rep.Status != "error" || rep.Error == nil || rep.Error.Code != "4.04" {
			t.Fatalf("reply %s: %v", p.Payload, err)
		}
		if p.Properties == nil || string(p.Properties.CorrelationData) != "c2" {
			t.Fatalf("correlation data %+v", p.Properties)
		}
	})
	t.Run("deregistered", func(t *testing.T) {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		in.wait(t, prefix+"/mqtt-dev/deregistered", nil)
	})
	if _, dropped, _ := m.Outbox().Stats(); dropped != 0 {
		t.Fatalf("%d messages dropped", dropped)
	}
}
