package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/galleta-go/galleta/internal/groupcommit"
	"github.com/galleta-go/galleta/store"
)

// Update reads id, calls fn with the live session (found false when there
// is none), and writes fn's result with a compare-and-set on the text fn
// saw (one UPDATE, or DELETE, or an INSERT that only replaces a missing or
// expired row). If another writer got there first, fn runs again inside a
// transaction that holds the row with SELECT ... FOR UPDATE, on the
// session stored then. A session deleted or expired meanwhile is shown to
// fn as not found and is never written back unless fn returns a record. A
// written record whose Expires is not after now deletes the session. An
// error from fn is returned unchanged and nothing is written.
//
// Overlapping updates of one session in this process are applied as one
// batch (see runUpdates): each fn sees the result of the one before, and
// one statement writes them all.
func (s *Store) Update(ctx context.Context, id string, fn store.UpdateFunc) error {
	if err := s.begin(ctx, id); err != nil {
		return err
	}
	return s.group.Do(ctx, id, &groupcommit.Op[pending]{Payload: pending{ctx: ctx, fn: fn}}, groupcommit.Plain(s.runUpdates))
}

// UpdateFrom is Update starting from seen, the record the caller last read
// or wrote: fn runs on seen first, and one UPDATE writes its result if the
// stored text still equals seen.Data, byte for byte, and the row is live.
// When nobody else wrote since, a commit costs that one round trip. When
// the text differs or the session is gone, fn runs again on the stored
// state, as Update does under contention. A seen record without Expires,
// or one that is expired or not a JSON object, gives no shortcut:
// UpdateFrom then reads first, as Update does.
func (s *Store) UpdateFrom(ctx context.Context, id string, seen store.Record, fn store.UpdateFunc) error {
	if err := s.begin(ctx, id); err != nil {
		return err
	}
	p := pending{ctx: ctx, fn: fn}
	if !seen.Expires.IsZero() && isObject(seen.Data) {
		p.seen, p.hasSeen = row{found: true, data: seen.Data, expire: seen.Expires}, true
	}
	return s.group.Do(ctx, id, &groupcommit.Op[pending]{Payload: p}, groupcommit.Plain(s.runUpdates))
}

// pending is an Update or UpdateFrom waiting in its session's queue.
type pending struct {
	ctx     context.Context
	fn      store.UpdateFunc
	seen    row // UpdateFrom's seen record, when hasSeen
	hasSeen bool
}

// carry is what a batch leaves for the next batch of the same session
// while overlapping updates keep coming: the row it left in the table, so
// the next batch starts from it instead of a stale seen record or a read.
type carry struct {
	known row
	ok    bool
}

// runUpdates applies a batch of overlapping updates of one session (see
// internal/groupcommit) as one update whose function runs every caller's
// fn in order, each on the previous one's result: one compare-and-set (or
// one locked transaction under contention from other processes) writes
// them all. An fn's error, or a record over MaxSize, fails only that
// caller, whose change is left out. The batch's statements use the first
// caller's context (each caller's bound is the same StoreTimeout).
func (s *Store) runUpdates(id string, batch []*groupcommit.Op[pending], c *carry) {
	ctx := batch[0].Payload.ctx
	var left row
	composite := func(cur store.Record, found bool) (store.Record, bool, error) {
		now := s.nowMS()
		rec, live, wrote := cur, found, false
		for _, o := range batch {
			o.Err = nil
			next, write, err := o.Payload.fn(rec, live)
			switch {
			case err != nil:
				o.Err = err
			case !write:
			case !ms(next.Expires).After(now):
				rec, live, wrote = store.Record{}, false, true
			default:
				if err := s.tooLarge(len(next.Data)); err != nil {
					o.Err = err
					continue
				}
				rec, live, wrote = next, true, true
			}
		}
		left = row{found: live, data: rec.Data, expire: ms(rec.Expires)}
		return rec, wrote, nil
	}
	var cur row
	fresh := false
	switch first := batch[0].Payload; {
	case c.ok:
		cur = c.known
	case first.hasSeen && ms(first.seen.expire).After(s.nowMS()):
		cur = first.seen
	default:
		var err error
		if cur, err = s.read(ctx, id, s.nowMS()); err != nil {
			c.ok = false
			failAll(batch, s.fail("update session", err))
			return
		}
		fresh = true
	}
	if err := s.update(ctx, id, cur, fresh, composite); err != nil {
		c.ok = false
		failAll(batch, err)
		return
	}
	c.known, c.ok = left, left.found
}

// failAll gives err to every op of a batch that has no error of its own.
func failAll(batch []*groupcommit.Op[pending], err error) {
	for _, o := range batch {
		if o.Err == nil {
			o.Err = err
		}
	}
}

// update runs fn on cur and tries to write its result with one
// compare-and-set statement; on a conflict it takes the locked path. fresh
// says cur was just read from the table (so a decision not to write needs
// no check), as opposed to the caller's seen record.
func (s *Store) update(ctx context.Context, id string, cur row, fresh bool, fn store.UpdateFunc) error {
	now := s.nowMS()
	rec, found := s.view(cur, now)
	next, write, err := fn(rec, found)
	if err != nil {
		return err
	}
	live := cur.found && cur.expire.After(now)
	if !write {
		if fresh {
			return nil
		}
		// fn decided on seen: it stands if seen is what is stored.
		r, err := s.read(ctx, id, now)
		if err != nil {
			return s.fail("update session", err)
		}
		if r.found == live && (!live || bytes.Equal(r.data, cur.data)) {
			return nil
		}
		return s.update(ctx, id, r, true, fn)
	}
	exp := ms(next.Expires)
	del := !exp.After(now)
	if !del {
		if err := s.tooLarge(len(next.Data)); err != nil {
			return err
		}
	}
	// Expect exactly the state fn saw: a live row with this text (even
	// one fn was shown as no session because it is corrupt), or no live
	// row. The statement may have run when its connection breaks, so it
	// is retried only when it surely did not (SafeToRetry).
	var n int64
	if live && !del {
		// The common case, a change of a live session: overlapping ones
		// of different sessions share one statement (batch.go).
		n, err = s.casUpdate(ctx, id, string(next.Data), exp, string(cur.data), now)
	} else {
		err = s.retry(ctx, false, func() error {
			var sql string
			var args []any
			switch {
			case del && !live:
				// Nothing live to delete: done, as if fn ran before
				// whatever creates the row next.
				n = 1
				return nil
			case del:
				sql, args = s.sql.casDelete, []any{id, string(cur.data), now}
			default:
				sql, args = s.sql.insertNew, []any{id, string(next.Data), exp, now}
			}
			tag, err := s.pool.Exec(ctx, sql, args...)
			n = tag.RowsAffected()
			return err
		})
	}
	if err != nil {
		return s.fail("update session", err)
	}
	if n == 1 {
		return nil
	}
	return s.locked(ctx, id, fn)
}

// locked runs fn in a transaction that holds the session's row (SELECT ...
// FOR UPDATE), so writers contending for one session queue on its lock.
// A transaction that fails before its COMMIT is sent changed nothing, so
// it is run again when its connection was lost; a COMMIT whose outcome is
// unknown is not. When the row is missing there is nothing to lock, and
// the insert can lose to another writer's: then the transaction runs
// again, at most MaxUpdateAttempts times in all.
func (s *Store) locked(ctx context.Context, id string, fn store.UpdateFunc) error {
	lost := 0
	for attempt := 1; ; attempt++ {
		done, committing, err := s.lockedOnce(ctx, id, fn)
		switch {
		case err == nil && done:
			return nil
		case err != nil && !committing && connLost(err) && lost < s.retryLimit() && ctx.Err() == nil:
			lost++
			continue
		case err != nil:
			return err
		}
		if attempt >= s.maxAttempts {
			return fmt.Errorf("pgstore: update session: gave up after %d attempts because another writer kept creating the session first (heavy contention on one new session); nothing was written, try again: %w",
				attempt, store.ErrUnavailable)
		}
	}
}

// lockedOnce is one transaction of locked. done is false when the insert
// of a new row lost to another writer; committing says the error came
// from COMMIT (the outcome is unknown). Errors from fn are returned
// unchanged; the others are wrapped by fail.
func (s *Store) lockedOnce(ctx context.Context, id string, fn store.UpdateFunc) (done, committing bool, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, false, s.fail("update session", err)
	}
	defer tx.Rollback(ctx) // after Commit: a no-op; on a broken connection pgx drops it
	now := s.nowMS()
	var r row
	err = tx.QueryRow(ctx, s.sql.lockRead, id, now).Scan(&r.data, &r.expire)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return false, false, s.fail("update session", err)
	default:
		r.found = true
	}
	rec, found := s.view(r, now)
	next, write, err := fn(rec, found)
	if err != nil {
		return false, false, err
	}
	if !write {
		return true, false, nil // the deferred Rollback releases the lock
	}
	exp := ms(next.Expires)
	var sql string
	var args []any
	switch {
	case !exp.After(now) && !r.found:
		return true, false, nil
	case !exp.After(now):
		sql, args = s.sql.del, []any{id}
	case r.found:
		sql, args = s.sql.update, []any{id, string(next.Data), exp}
	default:
		sql, args = s.sql.insertNew, []any{id, string(next.Data), exp, now}
	}
	if sql != s.sql.del {
		if err := s.tooLarge(len(next.Data)); err != nil {
			return false, false, err
		}
	}
	tag, err := tx.Exec(ctx, sql, args...)
	if err != nil {
		return false, false, s.fail("update session", err)
	}
	if tag.RowsAffected() == 0 {
		return false, false, nil // a live row appeared: run again
	}
	if err := tx.Commit(ctx); err != nil {
		return false, true, s.fail("update session", err)
	}
	return true, false, nil
}
