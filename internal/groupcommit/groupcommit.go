// Package groupcommit coalesces overlapping changes of one key (a session
// id) in one process: the first caller to find the key idle leads, and
// applies every change that queued behind it in one batch, so a busy
// session costs one write (one fsync, one compare-and-set) for many
// requests instead of one each, and the changes never race each other.
//
// The file store and the Redis store use it; what a batch does is theirs.
package groupcommit

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
)

// Op is one change waiting for its key's leader. P is what the store needs
// to apply it. The batch function sets Err; Do returns it.
type Op[P any] struct {
	Payload P
	Err     error

	state atomic.Int32  // queued, leading, taken, abandoned
	done  chan struct{} // closed once a batch applied the op (or failed it)
	wake  chan struct{} // receives once when the op's goroutine must lead
}

const (
	queued    int32 = iota
	leading         // chosen to lead: can no longer be abandoned
	taken           // in a batch being applied
	abandoned       // its caller's context ended while it waited
)

// Group holds the queues of the keys that have changes in flight. The zero
// Group is ready to use. C is what one batch of a key may leave for the
// next while the key stays busy (the Redis store keeps the value it wrote,
// so the next batch need not read it); it starts as C's zero value each
// time a key's queue is created, and is dropped when the queue empties.
type Group[P, C any] struct {
	mu     sync.Mutex
	queues map[string]*queue[P, C]
}

type queue[P, C any] struct {
	ops     []*Op[P]
	running bool // a leader exists
	carry   C    // only the leader touches it
}

// Do queues op behind key's other ops and returns op.Err once a batch that
// included it ran. The goroutine that finds the key idle leads: it calls
// run with each batch (the ops queued since the last one, in order, minus
// those abandoned) and the key's carry, one batch at a time, until its own op has run, then
// hands the queue to the next waiter, so no caller leads for longer than
// its own change needs. run must set the Err of the ops that failed.
//
// run may return a finishing step (nil: none), for work that makes the
// batch's outcome final but that the next batch of the key need not wait
// for (the file store's directory fsync, after the rename that ordered
// the batches): the key is handed to the next leader first, then the step
// runs on this goroutine, and may set Errs, before the batch's ops are
// answered. So one batch's flush overlaps the next one's write, and
// nobody is answered before their batch is final.
//
// An op whose ctx ends while it waits to be taken into a batch is dropped
// and Do returns ctx.Err(); once taken, it runs to the end whatever ctx
// says (the batch's own calls carry their own deadlines).
func (g *Group[P, C]) Do(ctx context.Context, key string, op *Op[P], run func(key string, batch []*Op[P], carry *C) (finish func())) error {
	op.done = make(chan struct{})
	op.wake = make(chan struct{}, 1)
	g.mu.Lock()
	if g.queues == nil {
		g.queues = map[string]*queue[P, C]{}
	}
	q := g.queues[key]
	if q == nil {
		q = &queue[P, C]{}
		g.queues[key] = q
	}
	q.ops = append(q.ops, op)
	leader := !q.running
	q.running = true
	g.mu.Unlock()

	if !leader {
		select {
		case <-op.done:
			return op.Err
		case <-op.wake:
		case <-ctx.Done():
			if op.state.CompareAndSwap(queued, abandoned) {
				return ctx.Err()
			}
			// Already taken into a batch, or chosen to lead.
			select {
			case <-op.done:
				return op.Err
			case <-op.wake:
			}
		}
	}
	return g.lead(key, q, op, run)
}

func (g *Group[P, C]) lead(key string, q *queue[P, C], op *Op[P], run func(string, []*Op[P], *C) func()) error {
	for {
		g.mu.Lock()
		batch := q.ops
		q.ops = nil
		if len(batch) == 0 {
			q.running = false
			delete(g.queues, key)
			g.mu.Unlock()
			return op.Err
		}
		g.mu.Unlock()
		live := batch[:0:0]
		for _, o := range batch {
			if o.state.CompareAndSwap(queued, taken) || o.state.CompareAndSwap(leading, taken) {
				live = append(live, o)
			}
		}
		var finish func()
		if len(live) > 0 {
			finish = run(key, live, &q.carry)
		}
		// With a finishing step, the key goes to the next leader while
		// this batch finishes (once this leader's own op is in it).
		handed := finish != nil && slices.Contains(live, op)
		if handed {
			g.handOff(key, q)
		}
		if finish != nil {
			finish()
		}
		for _, o := range live {
			close(o.done)
		}
		if handed {
			return op.Err
		}
		select {
		case <-op.done:
		default:
			continue
		}
		g.handOff(key, q)
		return op.Err
	}
}

// Plain adapts a batch function that has nothing to finish, for Do.
func Plain[P, C any](run func(key string, batch []*Op[P], carry *C)) func(string, []*Op[P], *C) func() {
	return func(key string, batch []*Op[P], carry *C) func() {
		run(key, batch, carry)
		return nil
	}
}

// handOff wakes the next waiter of key to lead, or, when none waits, ends
// the key's queue.
func (g *Group[P, C]) handOff(key string, q *queue[P, C]) {
	g.mu.Lock()
	for len(q.ops) > 0 {
		next := q.ops[0]
		if next.state.CompareAndSwap(queued, leading) {
			g.mu.Unlock()
			next.wake <- struct{}{}
			return
		}
		q.ops = q.ops[1:] // abandoned
	}
	q.running = false
	delete(g.queues, key)
	g.mu.Unlock()
}

// Waiting returns how many ops wait for key's leader (not counting a batch
// being applied).
func (g *Group[P, C]) Waiting(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if q := g.queues[key]; q != nil {
		return len(q.ops)
	}
	return 0
}
