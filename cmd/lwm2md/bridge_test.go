package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"github.com/nats-io/nats.go"
)

// TestBinaryEmbeddedNATS runs the real binary with its embedded NATS on a
// free port and checks that an integrator subscribed to lwm2m.> sees a
// device register, and that the micro service answers.
func TestBinaryEmbeddedNATS(t *testing.T) {
	p := startBinary(t, nil, "--data-dir", t.TempDir(), "--coap-addr", "127.0.0.1:0", "--log-format", "json", "--nats-addr", "127.0.0.1:0")
	coap := listenAddr(t, p.expect("lwm2m server listening"))
	natsAddr := listenAddr(t, p.expect("embedded NATS listening"))
	p.expect("http listening")
	nc, err := nats.Connect("nats://" + natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("lwm2m.>")
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	registerOnce(t, coap)
	msg, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != "lwm2m.cmd-test.registered" || !strings.Contains(string(msg.Data), `"cmd-test"`) {
		t.Fatalf("first message: %s %s", msg.Subject, msg.Data)
	}
	// The micro service is up ($SRV.PING answers with its name).
	resp, err := nc.Request("$SRV.PING.lwm2md", nil, 5*time.Second)
	if err != nil || !strings.Contains(string(resp.Data), `"lwm2md"`) {
		t.Fatalf("$SRV.PING: %v %v", err, resp)
	}
	p.stop()
}

// TestBinaryMQTT runs the binary against the Mosquitto broker of
// LWM2MD_TEST_MQTT, under a topic prefix of its own, and checks that an
// integrator subscribed to it sees a device register.
func TestBinaryMQTT(t *testing.T) {
	broker := os.Getenv("LWM2MD_TEST_MQTT")
	if broker == "" {
		t.Skip("LWM2MD_TEST_MQTT is not set (e.g. tcp://127.0.0.1:1883)")
	}
	prefix := fmt.Sprintf("lwm2mdtest%d", time.Now().UnixNano())
	u, err := url.Parse(broker)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan *paho.Publish, 16)
	cm, err := autopaho.NewConnection(ctx, autopaho.ClientConfig{
		ServerUrls: []*url.URL{u},
		KeepAlive:  20,
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
			cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: prefix + "/#", QoS: 1}}})
		},
		ClientConfig: paho.ClientConfig{
			ClientID: prefix + "-integrator",
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
				got <- pr.Packet
				return true, nil
			}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Disconnect(context.Background())
	if err := cm.AwaitConnection(ctx); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, nil, "--data-dir", t.TempDir(), "--coap-addr", "127.0.0.1:0", "--log-format", "json",
		"--mqtt-url", broker, "--bridge-prefix", prefix)
	coap := listenAddr(t, p.expect("lwm2m server listening"))
	p.expect("http listening")
	// The bridge's MQTT session may come up just after the listeners:
	// register again (a re-registration is a new event) until the
	// message arrives.
	registerOnce(t, coap)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case m := <-got:
			if m.Topic == prefix+"/cmd-test/registered" {
				if !strings.Contains(string(m.Payload), `"cmd-test"`) {
					t.Fatalf("payload: %s", m.Payload)
				}
				p.stop()
				return
			}
		case <-tick.C:
			registerOnce(t, coap)
		case <-ctx.Done():
			t.Fatal("no registered message on MQTT")
		}
	}
}
