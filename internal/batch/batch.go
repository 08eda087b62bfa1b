// Package batch writes overlapping calls together: a call that finds no
// other running runs alone, at once; calls that arrive while one runs wait
// for it and then run together, all of them, in one action (one INSERT of
// many rows, one pipeline of many commands). Under load the batches grow
// with the load; idle, nothing waits. The stores use it for the writes of
// different sessions (internal/groupcommit is for the writes of one).
package batch

import (
	"context"
	"sync"
	"time"
)

// Req is one call waiting for its batch.
type Req[T any] struct {
	Item T
	Ctx  context.Context // the caller's
	Err  error           // the call's result, set by the run function

	done chan struct{} // closed with Err set, or with lead set
	lead bool          // this call's goroutine runs the next batch
}

// Batcher queues calls. The zero value is not usable: set Max and Key.
type Batcher[T any] struct {
	// Max bounds the calls of one batch.
	Max int
	// Key names what a call writes: one batch holds one call per key
	// (a later call of a key already taken waits for the next batch, so
	// calls of one key run in the order they came).
	Key func(T) string

	mu      sync.Mutex
	queue   []*Req[T]
	running bool
}

// Do runs item, alone or in a batch with the calls that overlap it, and
// returns its Err. run writes a batch and sets each Req's Err; it runs on
// the goroutine of one of the batch's callers. A call whose ctx ends while
// it waits leaves the queue and returns ctx.Err() without being run; once
// its batch is taken, it waits for the batch's answer.
func (b *Batcher[T]) Do(ctx context.Context, item T, run func(batch []*Req[T])) error {
	r := &Req[T]{Item: item, Ctx: ctx, done: make(chan struct{})}
	b.mu.Lock()
	if !b.running {
		b.running = true
		b.mu.Unlock()
		b.runBatch([]*Req[T]{r}, run)
		return r.Err
	}
	b.queue = append(b.queue, r)
	b.mu.Unlock()
	select {
	case <-r.done:
	case <-ctx.Done():
		b.mu.Lock()
		if !r.lead { // handed the running role: it must run, below
			for i, q := range b.queue {
				if q == r { // not taken yet: nothing was sent
					b.queue = append(b.queue[:i], b.queue[i+1:]...)
					b.mu.Unlock()
					return ctx.Err()
				}
			}
		}
		b.mu.Unlock()
		<-r.done // taken (its batch is on the way) or leading
	}
	if !r.lead {
		return r.Err
	}
	b.mu.Lock()
	batch := b.take()
	b.mu.Unlock()
	b.runBatch(batch, run)
	return r.Err
}

// Queued is the number of calls waiting for the next batch.
func (b *Batcher[T]) Queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// take removes the next batch from the queue (b.mu held): up to Max calls,
// one per key.
func (b *Batcher[T]) take() []*Req[T] {
	var batch []*Req[T]
	seen := make(map[string]bool, len(b.queue))
	rest := b.queue[:0]
	for _, r := range b.queue {
		k := b.Key(r.Item)
		if len(batch) < max(1, b.Max) && !seen[k] {
			seen[k] = true
			batch = append(batch, r)
		} else {
			rest = append(rest, r)
		}
	}
	clear(b.queue[len(rest):])
	b.queue = rest
	return batch
}

// runBatch runs batch, answers its calls, and hands the running role to
// the first waiting call, if any, whose own call goes first in its batch.
func (b *Batcher[T]) runBatch(batch []*Req[T], run func([]*Req[T])) {
	if len(batch) > 0 {
		run(batch)
	}
	for _, r := range batch {
		if !r.lead {
			close(r.done)
		}
	}
	b.mu.Lock()
	if len(b.queue) == 0 {
		b.running = false
		b.mu.Unlock()
		return
	}
	next := b.queue[0]
	next.lead = true
	b.mu.Unlock()
	close(next.done)
}

// Context is the context of an action done for several callers: not
// cancelled when one of them goes away, and bounded by the latest of their
// deadlines (unbounded when one of them has none).
func Context[T any](batch []*Req[T]) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, r := range batch {
		dl, ok := r.Ctx.Deadline()
		if !ok {
			return context.WithoutCancel(batch[0].Ctx), func() {}
		}
		if dl.After(latest) {
			latest = dl
		}
	}
	return context.WithDeadline(context.WithoutCancel(batch[0].Ctx), latest)
}
