package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// latencies collects round-trip times from many goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d...)
	l.mu.Unlock()
}

// percentile returns the p-th percentile (0 < p <= 100) in milliseconds,
// nearest rank; 0 when nothing was measured.
func (l *latencies) percentile(p float64) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	slices.Sort(l.d)
	i := int(float64(len(l.d))*p/100+0.5) - 1
	i = max(0, min(i, len(l.d)-1))
	return float64(l.d[i]) / float64(time.Millisecond)
}

func (l *latencies) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.d)
}

// loop runs fn from c goroutines until d has passed, and returns the
// successful calls per second and their latencies. fn's error counts the
// call as failed (not timed).
func loop(log io.Writer, c int, d time.Duration, setup func(worker int) (func() error, func(), error)) (rate float64, lat *latencies, failed int, err error) {
	var firstErr error
	lat = &latencies{}
	fns := make([]func() error, c)
	var closers []func()
	defer func() {
		for _, cl := range closers {
			cl()
		}
	}()
	for w := range c {
		fn, cl, err := setup(w)
		if err != nil {
			return 0, nil, 0, err
		}
		fns[w], closers = fn, append(closers, cl)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	start := time.Now()
	deadline := start.Add(d)
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var own []time.Duration
			bad := 0
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := fns[w](); err != nil {
					if bad == 0 {
						mu.Lock()
						firstErr = cmp.Or(firstErr, err)
						mu.Unlock()
					}
					bad++
					continue
				}
				own = append(own, time.Since(t0))
			}
			lat.add(own)
			mu.Lock()
			failed += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		// Failures are counted, not fatal; the first says why.
		fmt.Fprintf(log, "bench:   %d calls failed, the first: %v\n", failed, firstErr)
	}
	return float64(lat.count()) / time.Since(start).Seconds(), lat, failed, nil
}
