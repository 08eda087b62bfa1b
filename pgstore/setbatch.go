package pgstore

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Sets of different sessions (new sessions, mostly) that overlap are
// written together: one INSERT of many rows, one round trip and one
// commit (one WAL flush) for all of them. A Set that finds no other set
// running writes its row alone, at once; sets that arrive while one runs
// wait for it and then go in the next statement, all of them. Under load
// the statements grow with the load; idle, nothing waits.
//
// Each session still gets its own answer: a statement that fails for its
// data (a row PostgreSQL refuses) is run again row by row, so one bad row
// fails alone.

// maxSetBatch bounds the rows of one statement.
const maxSetBatch = 256

// setReq is one Set waiting for its statement.
type setReq struct {
	id   string
	sess string
	exp  time.Time
	ctx  context.Context

	err  error
	done chan struct{} // closed with err set, or with lead set
	lead bool          // this Set's goroutine runs the next statement
}

// setBatcher queues the sets.
type setBatcher struct {
	mu      sync.Mutex
	queue   []*setReq
	running bool
}

// set writes one row, alone or with the sets that overlap it.
func (s *Store) set(ctx context.Context, id, sess string, exp time.Time) error {
	r := &setReq{id: id, sess: sess, exp: exp, ctx: ctx, done: make(chan struct{})}
	b := &s.sets
	b.mu.Lock()
	if !b.running {
		b.running = true
		b.mu.Unlock()
		s.runSets([]*setReq{r})
		return r.err
	}
	b.queue = append(b.queue, r)
	b.mu.Unlock()
	select {
	case <-r.done:
	case <-ctx.Done():
		b.mu.Lock()
		if !r.lead { // handed the running role: it must run, see below
			for i, q := range b.queue {
				if q == r { // not taken yet: nothing was sent
					b.queue = append(b.queue[:i], b.queue[i+1:]...)
					b.mu.Unlock()
					return ctx.Err()
				}
			}
		}
		b.mu.Unlock()
		<-r.done // taken (its statement is on the way) or leading
	}
	if !r.lead {
		return r.err
	}
	b.mu.Lock()
	batch := b.take()
	b.mu.Unlock()
	s.runSets(batch)
	return r.err
}

// take removes the next statement's sets from the queue (b.mu held): up
// to maxSetBatch, one per session id (a statement cannot write one row
// twice); a later set of an id already taken waits for the next one.
func (b *setBatcher) take() []*setReq {
	var batch []*setReq
	seen := make(map[string]bool, len(b.queue))
	rest := b.queue[:0]
	for _, r := range b.queue {
		if len(batch) < maxSetBatch && !seen[r.id] {
			seen[r.id] = true
			batch = append(batch, r)
		} else {
			rest = append(rest, r)
		}
	}
	clear(b.queue[len(rest):])
	b.queue = rest
	return batch
}

// runSets runs one statement for batch, answers its sets, and hands the
// running role to the first waiting set, if any.
func (s *Store) runSets(batch []*setReq) {
	s.writeSets(batch)
	for _, r := range batch {
		if !r.lead {
			close(r.done)
		}
	}
	b := &s.sets
	b.mu.Lock()
	if len(b.queue) == 0 {
		b.running = false
		b.mu.Unlock()
		return
	}
	next := b.queue[0]
	next.lead = true
	b.queue = b.queue[1:]
	// The next leader's own set goes first in its statement.
	b.queue = append([]*setReq{next}, b.queue...)
	b.mu.Unlock()
	close(next.done)
}

// writeSets writes the rows of batch and sets each one's err.
func (s *Store) writeSets(batch []*setReq) {
	if h := s.beforeSets; h != nil && len(batch) > 0 {
		h(len(batch))
	}
	switch len(batch) {
	case 0:
		return
	case 1:
		r := batch[0]
		r.err = s.exec(r.ctx, true, s.sql.set, r.id, r.sess, r.exp)
		return
	}
	ids := make([]string, len(batch))
	sess := make([]string, len(batch))
	exps := make([]time.Time, len(batch))
	for i, r := range batch {
		ids[i], sess[i], exps[i] = r.id, r.sess, r.exp
	}
	ctx, cancel := batchContext(batch)
	err := s.exec(ctx, true, s.sql.setMany, ids, sess, exps)
	cancel()
	var pe *pgconn.PgError
	if errors.As(err, &pe) && len(pe.Code) == 5 && pe.Code[:2] == "22" {
		// A data exception: some row is refused. Row by row, so that
		// only that set fails.
		for _, r := range batch {
			r.err = s.exec(r.ctx, true, s.sql.set, r.id, r.sess, r.exp)
		}
		return
	}
	for _, r := range batch {
		r.err = err
	}
}

// batchContext is the context of a statement written for several callers:
// not cancelled when one of them goes away, and bounded by the latest of
// their deadlines (unbounded when one of them has none).
func batchContext(batch []*setReq) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, r := range batch {
		dl, ok := r.ctx.Deadline()
		if !ok {
			return context.WithoutCancel(batch[0].ctx), func() {}
		}
		if dl.After(latest) {
			latest = dl
		}
	}
	return context.WithDeadline(context.WithoutCancel(batch[0].ctx), latest)
}
