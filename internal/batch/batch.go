// Package batch runs overlapping calls together: a call that finds no
// other running runs alone, at once; calls that arrive while one runs wait
// for it and then run together, all of them, in one action (one INSERT of
// many rows, one pipeline of many commands). Under load the batches grow
// with the load; idle, nothing waits. The stores use it for the writes of
// different sessions (internal/groupcommit is for the writes of one).
package batch

import (
	"context"
	"slices"
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
	// calls of one key run in the order they came). Nil: no such rule
	// (reads, which the run function may share between calls of a key).
	Key func(T) string

	mu      sync.Mutex
	queue   []*Req[T]
	running bool

	beforePass func(next *Req[T]) // tests: runs between handOff and waking next
}

// Do runs item, alone or in a batch with the calls that overlap it, and
// returns its Err. run writes a batch and sets each Req's Err; it runs on
// the goroutine of one of the batch's callers, under Context. A call whose
// ctx ends returns ctx.Err() at once: unrun if it was still waiting, or
// with its batch still on the way (whose outcome it then does not report,
// as with any call cut off while its request is out); the caller running
// the batch returns when the batch does, by its deadline (see Context).
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
		if r.lead {
			// Handed the running role (its done closed, or about to be:
			// handOff marks lead under b.mu and closes done after) with
			// no caller left to use it: leave the queue and hand the role
			// on. Judged by lead, not by done, so a role handed just as
			// the deadline came is never dropped with nobody holding it.
			b.remove(r)
			next := b.handOff()
			b.mu.Unlock()
			b.pass(next)
			return ctx.Err()
		}
		select {
		case <-r.done: // answered meanwhile
			b.mu.Unlock()
			return r.Err
		default:
			b.remove(r) // not taken yet: nothing was sent; else its batch is on the way
			b.mu.Unlock()
		}
		return ctx.Err()
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

// remove takes r out of the queue, if it is there (b.mu held).
func (b *Batcher[T]) remove(r *Req[T]) {
	if i := slices.Index(b.queue, r); i >= 0 {
		b.queue = slices.Delete(b.queue, i, i+1)
	}
}

// handOff gives the running role to the first waiting call, whose done
// the caller closes (pass) after unlocking, or ends it when none waits
// (b.mu held).
func (b *Batcher[T]) handOff() *Req[T] {
	if len(b.queue) == 0 {
		b.running = false
		return nil
	}
	next := b.queue[0]
	next.lead = true
	return next
}

// Queued is the number of calls waiting for the next batch.
func (b *Batcher[T]) Queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// take removes the next batch from the queue (b.mu held): up to Max calls,
// one per key; a call whose caller is gone is dropped unrun.
func (b *Batcher[T]) take() []*Req[T] {
	var batch []*Req[T]
	seen := make(map[string]bool, len(b.queue))
	rest := b.queue[:0]
	for _, r := range b.queue {
		switch {
		case r.Ctx.Err() != nil:
			r.Err = r.Ctx.Err()
			if !r.lead { // the leader's done is closed already
				close(r.done)
			}
		case len(batch) >= max(1, b.Max):
			rest = append(rest, r)
		case b.Key == nil:
			batch = append(batch, r)
		case !seen[b.Key(r.Item)]:
			seen[b.Key(r.Item)] = true
			batch = append(batch, r)
		default:
			rest = append(rest, r)
		}
	}
	clear(b.queue[len(rest):])
	b.queue = rest
	return batch
}

// runBatch runs batch, answers its calls, and hands the running role on.
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
	next := b.handOff()
	b.mu.Unlock()
	b.pass(next)
}

// pass wakes next, handed the running role by handOff, if any.
func (b *Batcher[T]) pass(next *Req[T]) {
	if next == nil {
		return
	}
	if b.beforePass != nil {
		b.beforePass(next)
	}
	close(next.done)
}

// Context is the context of an action done for several callers: not
// cancelled when one of them goes away, and bounded by the earliest of
// their deadlines, so that the caller running the batch (whose goroutine
// it runs on) returns by its own deadline, as every other caller does
// (unbounded when none of them has a deadline).
func Context[T any](batch []*Req[T]) (context.Context, context.CancelFunc) {
	var earliest time.Time
	for _, r := range batch {
		if dl, ok := r.Ctx.Deadline(); ok && (earliest.IsZero() || dl.Before(earliest)) {
			earliest = dl
		}
	}
	ctx := context.WithoutCancel(batch[0].Ctx)
	if earliest.IsZero() {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, earliest)
}
