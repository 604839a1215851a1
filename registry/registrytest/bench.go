package registrytest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/registry"
)

// BenchPut measures registration Puts: one at a time when parallelism is
// 0, else from parallelism × GOMAXPROCS goroutines (b.RunParallel), as in a
// registration storm. Each Put is a new device. It reports puts/s.
func BenchPut(b *testing.B, s registry.Store, parallelism int) {
	var seq atomic.Int64
	put := func() {
		n := seq.Add(1)
		ep := fmt.Sprintf("urn:imei:35%013d", n)
		r := fullRegistration(ep, fmt.Sprintf("r%015d", n))
		if err := s.Registrations().Put(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if parallelism == 0 {
		for b.Loop() {
			put()
		}
	} else {
		b.SetParallelism(parallelism)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				put()
			}
		})
	}
	b.ReportMetric(float64(seq.Load())/time.Since(start).Seconds(), "puts/s")
}
