package main

import (
	"context"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/server"
)

// BenchmarkFleet runs the simulator against an in-process lwm2md: "udp"
// with the server observing every device's temperature (one sample per
// device per second, so notifications), "dtls" over DTLS PSK with one
// Send per device every 10 s. LWM2M_SIM_BENCH_N devices (default 1000)
// for LWM2M_SIM_BENCH_DURATION (default 30s), started at
// LWM2M_SIM_BENCH_RAMP per second (default 500). The figures are
// reported as metrics; run with -benchtime 1x.
func BenchmarkFleet(b *testing.B) {
	n := envInt("LWM2M_SIM_BENCH_N", 1000)
	ramp := envInt("LWM2M_SIM_BENCH_RAMP", 500)
	dur, err := time.ParseDuration(envOr("LWM2M_SIM_BENCH_DURATION", "30s"))
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"udp", "dtls"} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				var s *server.Server
				opts := Options{N: n, Ramp: float64(ramp), Duration: dur, Version: "1.1", Lifetime: time.Hour,
					AckTimeout: 2 * time.Second, RetryTimer: 5 * time.Second, Tick: 500 * time.Millisecond}
				if mode == "udp" {
					s = newServerB(b, server.Config{UDPAddr: "127.0.0.1:0", RegisterRate: -1}, true)
					opts.Server = "coap://" + s.Addr().String()
					opts.NotifyRate = 60
					if n > 15000 {
						opts.Shared = 8
					} else {
						opts.SourceAddrs = addrRange(1 + n/20000)
					}
				} else {
					s = newServerB(b, server.Config{DTLSAddr: "127.0.0.1:0", Credentials: seedCredentials{seed: "bench"}, RegisterRate: -1}, false)
					opts.Server = "coaps://" + s.DTLSAddr().String()
					opts.PSKSeed = "bench"
					opts.SendRate = 6
				}
				sim, err := New(opts)
				if err != nil {
					b.Fatal(err)
				}
				sim.out = os.Stderr
				sim.opts.Progress = 10 * time.Second
				before := s.Stats()
				sum, err := sim.Run(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				after := s.Stats()
				b.ReportMetric(float64(sum.Registered), "registered")
				b.ReportMetric(sum.RegistrationRate, "reg/s")
				b.ReportMetric(sum.RegistrationLatencyMs.P50, "reg-p50-ms")
				b.ReportMetric(sum.RegistrationLatencyMs.P99, "reg-p99-ms")
				b.ReportMetric(float64(after.Notifications-before.Notifications)/sum.RunSeconds, "notif-in/s")
				b.ReportMetric(float64(after.Sends-before.Sends)/sum.RunSeconds, "sends-in/s")
				b.ReportMetric(float64(sum.Memory.RSSBytes)/(1<<20), "MiB-rss-both")
				b.ReportMetric(float64(sum.Memory.HeapBytes+sum.Memory.StackBytes)/float64(sum.Started)/1024, "KiB/device-both")
			}
		})
	}
}

func newServerB(b *testing.B, cfg server.Config, observe bool) *server.Server {
	s, err := server.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	sub := s.Subscribe(1 << 14)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range sub.C {
			if observe && e.Kind == server.EventRegistered {
				go func(ep string) { _, _, _ = s.Observe(ctx, ep, objects.NewPath(3303, 0, 5700)) }(e.Endpoint)
			}
		}
	}()
	b.Cleanup(func() {
		cancel()
		sub.Close()
		<-done
		_ = s.Close()
	})
	return s
}

func addrRange(k int) []netip.Addr {
	out := make([]netip.Addr, k)
	a := netip.MustParseAddr("127.0.0.1")
	for i := range out {
		out[i] = a
		a = a.Next()
	}
	return out
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
