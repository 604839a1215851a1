package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestBatcher(t *testing.T) {
	var commits, biggest atomic.Int64
	release := make(chan struct{})
	b := New(func(ops []int) []error {
		<-release // hold the first commit so that others queue up
		commits.Add(1)
		if n := int64(len(ops)); n > biggest.Load() {
			biggest.Store(n)
		}
		errs := make([]error, len(ops))
		for i, op := range ops {
			if op%10 == 7 {
				errs[i] = fmt.Errorf("op %d refused", op)
			}
		}
		return errs
	}, 1, 64, 0)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := b.Do(context.Background(), i)
			if (err != nil) != (i%10 == 7) {
				t.Errorf("op %d: %v", i, err)
			}
			if err != nil {
				failed.Add(1)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond) // let the ops queue up behind the held commit
	close(release)
	wg.Wait()
	b.Close()
	if failed.Load() != 20 {
		t.Fatalf("%d failed", failed.Load())
	}
	if commits.Load() >= 200 || biggest.Load() > 64 {
		t.Fatalf("%d commits, biggest %d: no batching or over the bound", commits.Load(), biggest.Load())
	}
	t.Logf("200 ops in %d commits, biggest %d", commits.Load(), biggest.Load())
	if err := b.Do(context.Background(), 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestBatcherDelayAndContext(t *testing.T) {
	var sizes []int
	var mu sync.Mutex
	b := New(func(ops []string) []error {
		mu.Lock()
		sizes = append(sizes, len(ops))
		mu.Unlock()
		return make([]error, len(ops))
	}, 1, 10, 50*time.Millisecond)
	defer b.Close()
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); b.Do(context.Background(), "x") }()
	}
	wg.Wait()
	mu.Lock()
	if len(sizes) > 2 {
		t.Fatalf("the delay did not gather: %v", sizes)
	}
	mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Do(ctx, "late"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
}

// TestCloseDrains: what was queued before Close is committed.
func TestCloseDrains(t *testing.T) {
	var done atomic.Int64
	b := New(func(ops []int) []error {
		time.Sleep(time.Millisecond)
		done.Add(int64(len(ops)))
		return make([]error, len(ops))
	}, 3, 4, 0)
	var wg sync.WaitGroup
	var ok atomic.Int64
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b.Do(context.Background(), i) == nil {
				ok.Add(1)
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	b.Close()
	wg.Wait()
	if ok.Load() != done.Load() {
		t.Fatalf("%d calls returned nil, %d ops committed", ok.Load(), done.Load())
	}
}

// TestExpiredNotCommitted: an op whose context ends while it waits behind
// a slow commit is dropped, not committed, and its Do returns the
// context's error; the ops still waited for are committed.
func TestExpiredNotCommitted(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var committed []string
	b := New(func(ops []string) []error {
		if ops[0] == "slow" {
			close(started)
			<-release
		}
		mu.Lock()
		committed = append(committed, ops...)
		mu.Unlock()
		return make([]error, len(ops))
	}, 1, 10, 0)
	defer b.Close()
	slow := make(chan error, 1)
	go func() { slow <- b.Do(context.Background(), "slow") }()
	<-started // the committer is held
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	expired := make(chan error, 1)
	go func() { expired <- b.Do(ctx, "expired") }()
	if err := <-expired; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expired op: %v", err)
	}
	kept := make(chan error, 1)
	go func() { kept <- b.Do(context.Background(), "kept") }()
	close(release)
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	if err := <-kept; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(committed) != 2 || committed[0] != "slow" || committed[1] != "kept" {
		t.Fatalf("committed %v, want [slow kept]: an op whose context had ended was committed", committed)
	}
}
