// Package batch is the group commit both stores use: concurrent writes
// queue up while a transaction commits, and the next transaction commits
// all of them, so that N devices registering at once cost about one disk
// flush per batch rather than N. A lone writer is committed at once: the
// batch waits for more only as long as Delay says (0 by default). Several
// committers can run at once where the database allows concurrent
// transactions (PostgreSQL); bbolt has one writer, so one committer.
package batch

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrClosed is returned for writes after Close.
var ErrClosed = errors.New("closed")

// Commit runs ops in one transaction (or, when that fails, one by one) and
// returns one error per op.
type Commit[O any] func(ops []O) []error

// Batcher coalesces ops into batches for a Commit.
type Batcher[O any] struct {
	commit Commit[O]
	max    int
	delay  time.Duration

	mu      sync.Mutex
	closed  bool
	queue   chan item[O]
	running sync.WaitGroup
}

type item[O any] struct {
	ctx context.Context
	op  O
	res chan error
}

// New starts a Batcher with the given number of committers (at least 1),
// each committing up to size ops at a time (at least 1) and waiting up to
// delay for a batch to fill.
func New[O any](commit Commit[O], committers, size int, delay time.Duration) *Batcher[O] {
	size, committers = max(size, 1), max(committers, 1)
	b := &Batcher[O]{commit: commit, max: size, delay: delay, queue: make(chan item[O], size)}
	for range committers {
		b.running.Add(1)
		go b.run()
	}
	return b
}

// Do commits op with others and returns its error. An op whose ctx has
// ended when its batch starts is dropped, not committed: under overload
// (a slow fsync, a registration storm) the store then does not spend its
// commits on writes nobody waits for any more, whose callers have already
// failed. Once its batch has started, op is committed even if ctx ends
// first; Do then returns ctx's error, and the caller cannot tell whether
// op was stored.
func (b *Batcher[O]) Do(ctx context.Context, op O) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	it := item[O]{ctx: ctx, op: op, res: make(chan error, 1)}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	// Sending under the lock keeps Close from closing the channel under
	// us; the writer goroutine drains it, so this blocks at most until
	// the running batch commits.
	select {
	case b.queue <- it:
	case <-ctx.Done():
		b.mu.Unlock()
		return ctx.Err()
	}
	b.mu.Unlock()
	select {
	case err := <-it.res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *Batcher[O]) run() {
	defer b.running.Done()
	items := make([]item[O], 0, b.max)
	ops := make([]O, 0, b.max)
	for {
		it, ok := <-b.queue
		if !ok {
			return
		}
		items = append(items[:0], it)
		items = b.live(b.fill(items))
		if len(items) == 0 {
			continue
		}
		ops = ops[:0]
		for _, it := range items {
			ops = append(ops, it.op)
		}
		errs := b.commit(ops)
		for i, it := range items {
			it.res <- errs[i]
		}
		clear(ops) // let the ops be collected
	}
}

// live answers the items whose context has ended with its error and
// returns the others.
func (b *Batcher[O]) live(items []item[O]) []item[O] {
	kept := items[:0]
	for _, it := range items {
		if err := it.ctx.Err(); err != nil {
			it.res <- err
			continue
		}
		kept = append(kept, it)
	}
	clear(items[len(kept):]) // let the dropped ops be collected
	return kept
}

// fill adds what is already queued, and with a delay what arrives within
// it, up to max.
func (b *Batcher[O]) fill(items []item[O]) []item[O] {
	var timer <-chan time.Time
	if b.delay > 0 {
		timer = time.After(b.delay)
	}
	for len(items) < b.max {
		select {
		case it, ok := <-b.queue:
			if !ok {
				return items
			}
			items = append(items, it)
			continue
		default:
		}
		if timer == nil {
			return items
		}
		select {
		case it, ok := <-b.queue:
			if !ok {
				return items
			}
			items = append(items, it)
		case <-timer:
			return items
		}
	}
	return items
}

// Close commits what is queued and stops. Later Do calls fail with
// ErrClosed.
func (b *Batcher[O]) Close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.queue)
	}
	b.mu.Unlock()
	b.running.Wait()
}
