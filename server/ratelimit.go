package server

import (
	"net/netip"
	"sync"
	"time"
)

// rateLimiter is a token bucket per peer address. The key is the full
// address (IP and port), not the IP alone: NB-IoT fleets often reach the
// server through carrier-grade NAT, where thousands of devices share one
// public IP, and a mass re-registration after an outage must not be
// throttled as one peer. A flood from many ports of one host is bounded
// by the association cap instead.
type rateLimiter struct {
	rate  float64 // tokens per second; <= 0 means no limit
	burst float64

	mu      sync.Mutex
	buckets map[netip.AddrPort]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds the limiter's memory: past it, the idle buckets are
// dropped, and if that is not enough, all of them (a reset only makes the
// limiter briefly lenient).
const maxBuckets = 1 << 16

func newRateLimiter(rate float64, burst int) *rateLimiter {
	return &rateLimiter{rate: rate, burst: float64(burst), buckets: make(map[netip.AddrPort]*bucket)}
}

// allow takes one token for addr, reporting false when its bucket is
// empty.
func (l *rateLimiter) allow(addr netip.AddrPort, now time.Time) bool {
	if l.rate <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[addr]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.sweepLocked(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[addr] = b
	}
	b.tokens += now.Sub(b.last).Seconds() * l.rate
	if b.tokens > l.burst {
		b.tokens = l.burst
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweep drops the buckets that have refilled: they hold no state worth
// keeping.
func (l *rateLimiter) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(now)
}

func (l *rateLimiter) sweepLocked(now time.Time) {
	for a, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, a)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
}

func (l *rateLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
