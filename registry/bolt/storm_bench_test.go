package bolt_test

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lwm2md/lwm2md/objects/linkformat"
	"github.com/lwm2md/lwm2md/registry"
	"github.com/lwm2md/lwm2md/registry/bolt"
)

// BenchmarkRegistrationStorm is a registration storm on the store: one op
// is a new device's Put, as the LwM2M server makes it (random
// registration ID, a simulator-like object list), from many devices at
// once (LWM2MD_BENCH_STORM_CONCURRENCY, default 1000), in a directory on
// disk (LWM2MD_BENCH_STORM_DIR, default the test's temporary directory),
// so that every group commit pays its fsync.
func BenchmarkRegistrationStorm(b *testing.B) {
	conc := 1000
	if v, err := strconv.Atoi(os.Getenv("LWM2MD_BENCH_STORM_CONCURRENCY")); err == nil && v > 0 {
		conc = v
	}
	dir := b.TempDir()
	if d := os.Getenv("LWM2MD_BENCH_STORM_DIR"); d != "" {
		var err error
		if dir, err = os.MkdirTemp(d, "storm"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = os.RemoveAll(dir) })
	}
	s := open(b, dir, bolt.Options{Cipher: testCipher(b)})
	regs := s.Registrations()
	var next atomic.Int64
	var worst atomic.Int64
	total := int64(b.N)
	b.ReportAllocs()
	b.ResetTimer()
	written := diskWrites()
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > total {
					return
				}
				r := stormRegistration(n)
				t0 := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := regs.Put(ctx, r)
				cancel()
				if err != nil {
					b.Error(err)
					return
				}
				if d := int64(time.Since(t0)); d > worst.Load() {
					worst.Store(d)
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(total)/time.Since(start).Seconds(), "puts/s")
	b.ReportMetric(float64(worst.Load())/1e6, "worst-ms")
	if w := diskWrites(); w >= 0 && written >= 0 {
		b.ReportMetric(float64(w-written)/float64(total), "disk-B/put")
	}
}

// diskWrites is what this process has written to disk so far (Linux's
// /proc/self/io write_bytes), -1 where unknown.
func diskWrites() int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

func stormRegistration(n int64) *registry.Registration {
	var id [10]byte
	_, _ = rand.Read(id[:])
	now := registry.Time(time.Now())
	return &registry.Registration{
		ID:       strings.ToLower(base32.StdEncoding.EncodeToString(id[:])),
		Endpoint: fmt.Sprintf("sim-%06d", n),
		Addr:     netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, byte(n >> 8), byte(n)}), 40000),
		Lifetime: time.Hour, Binding: "U", Version: "1.1", Root: "/",
		Objects: []linkformat.Object{
			{ID: 1, Instances: []uint16{0}}, {ID: 3, Instances: []uint16{0}},
			{ID: 4, Instances: []uint16{0}}, {ID: 3303, Version: "1.1", HasVersion: true, Instances: []uint16{0}},
		},
		ObjectVersions: map[uint16]string{1: "1.1", 3: "1.1", 4: "1.1", 3303: "1.1"},
		RegisteredAt:   now, UpdatedAt: now,
	}
}
