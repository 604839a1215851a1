package natsbridge

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/lwm2md/lwm2md/bridge"
	"github.com/lwm2md/lwm2md/bridge/internal/bridgetest"
	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/server"
)

// BenchmarkNotifyToNATS measures notifications from client engine devices
// through the LwM2M server, the bridge and JetStream (publish acknowledged,
// de-duplicated) to a NATS subscriber: throughput (ns/op per notification,
// notif/s) and latency from the device's change to the subscriber's
// receipt (p50, p99). Each device has one notification in flight at a
// time (a device that changes again before it notified sends only the
// latest value, as LwM2M wants), so devices is the window.
func BenchmarkNotifyToNATS(b *testing.B) {
	for _, devices := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("devices=%d", devices), func(b *testing.B) { benchNotify(b, devices) })
	}
}

func benchNotify(b *testing.B, devices int) {
	srv := bridgetest.Server(b, nil)
	n, err := Start(Config{Embedded: EmbeddedConfig{Addr: "127.0.0.1:-1", DataDir: b.TempDir()}})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	br, err := bridge.New(bridge.Config{Source: srv, EventBuffer: 1 << 16}, n.Outbox())
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	nc, err := nats.Connect(n.Embedded().URL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()

	var mu sync.Mutex
	sent := map[float64]time.Time{}
	var lat []time.Duration
	slots := make([]chan struct{}, devices)
	for i := range slots {
		slots[i] = make(chan struct{}, 1)
	}
	sub, err := nc.Subscribe("lwm2m.*.data.3303.0.5700", func(m *nats.Msg) {
		now := time.Now()
		var dp bridge.DataPoint
		if json.Unmarshal(m.Data, &dp) != nil || dp.Source != "notify" {
			return
		}
		v, err := strconv.ParseFloat(string(dp.Value), 64)
		if err != nil {
			return
		}
		mu.Lock()
		t0, ok := sent[v]
		delete(sent, v)
		if ok {
			lat = append(lat, now.Sub(t0))
		}
		mu.Unlock()
		if ok {
			<-slots[(int(v)-1)%devices]
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	_ = sub.SetPendingLimits(-1, -1)
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}

	temps := make([]*client.Sensor, devices)
	ctx := context.Background()
	for i := range temps {
		ep := fmt.Sprintf("bench-%d", i)
		_, temps[i] = bridgetest.Device(b, srv, ep, nil)
		if _, _, err := srv.Observe(ctx, ep, bridgetest.SensorValue, server.WithFormat(objects.FormatText)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	lost := 0
	for i := 0; i < b.N; i++ {
		v := float64(i + 1)
		select {
		case slots[i%devices] <- struct{}{}:
		case <-time.After(5 * time.Second):
			// The device's last notification (UDP, non-confirmable)
			// did not arrive; forget it and go on.
			lost++
			mu.Lock()
			for k := range sent {
				if (int(k)-1)%devices == i%devices {
					delete(sent, k)
				}
			}
			mu.Unlock()
			// The slot stays taken: it is this notification's now.
		}
		mu.Lock()
		sent[v] = time.Now()
		mu.Unlock()
		if err := temps[i%devices].Set(bridgetest.SensorValue, objects.FloatValue(v)); err != nil {
			b.Fatal(err)
		}
	}
	// Wait for the last ones; what has not come after 10 s is lost.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		mu.Lock()
		left := len(sent)
		mu.Unlock()
		if left == 0 {
			break
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "notif/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
	b.ReportMetric(float64(len(sent)+lost), "lost")
}
