// Package bridgetest holds what the transports' tests share: an LwM2M
// server on 127.0.0.1:0, client engine devices registered with it, and
// waiting with a deadline.
package bridgetest

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/client"
	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/server"
)

// Server starts an LwM2M server on loopback; mut adjusts its config.
func Server(t testing.TB, mut func(*server.Config)) *server.Server {
	t.Helper()
	cfg := server.Config{UDPAddr: "127.0.0.1:0", RegisterRate: -1}
	if os.Getenv("LWM2MD_TEST_VERBOSE") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if mut != nil {
		mut(&cfg)
	}
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Device starts a client engine device with a Temperature sensor (3303,
// one instance, sampled by the test) and waits until it is registered.
func Device(t testing.TB, s *server.Server, ep string, mut func(*client.Config)) (*client.Client, *client.Sensor) {
	t.Helper()
	temp := client.NewTemperature(client.SensorConfig{Seed: 1})
	cfg := client.Config{
		Endpoint:      ep,
		ServerURI:     "coap://" + s.Addr().String(),
		LocalAddr:     "127.0.0.1:0",
		Version:       "1.1",
		Lifetime:      600 * time.Second,
		Objects:       []*client.Object{temp.Object},
		AckTimeout:    200 * time.Millisecond,
		MaxRetransmit: 2,
		Tick:          50 * time.Millisecond,
	}
	if mut != nil {
		mut(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start %s: %v", ep, err)
	}
	if err := c.WaitRegistered(ctx); err != nil {
		t.Fatalf("register %s: %v", ep, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, temp
}

// Eventually polls cond every 10 ms until it holds, failing the test
// after d.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SensorValue is the path of the Temperature's Sensor Value.
var SensorValue = objects.MustParsePath("/3303/0/5700")
