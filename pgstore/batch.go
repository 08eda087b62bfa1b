package pgstore

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/galleta-go/galleta/internal/batch"
	"github.com/jackc/pgx/v5/pgconn"
)

// Gets that overlap are read together (internal/batch): the Gets that
// arrive while a read runs wait for it and then go in one SELECT ... WHERE
// sid = ANY(...), one row per id however many Gets want it. Every read
// starts after each of its Gets arrived, so none sees less than was
// written before it began.

// readItem is one Get's id and clock, and after its read, the row.
type readItem struct {
	id  string
	now time.Time
	r   row
}

// readMany reads the rows of b's ids and answers every Get (each Get then
// judges the row's expiry by its own clock reading).
func (s *Store) readMany(b []*batch.Req[*readItem]) {
	if len(b) == 1 {
		it := b[0].Item
		it.r, b[0].Err = s.read(b[0].Ctx, it.id, it.now)
		return
	}
	ids := make([]string, 0, len(b))
	seen := make(map[string]bool, len(b))
	now := b[0].Item.now
	for _, r := range b {
		if !seen[r.Item.id] {
			seen[r.Item.id] = true
			ids = append(ids, r.Item.id)
		}
		if r.Item.now.Before(now) {
			now = r.Item.now // the earliest: a superset of every Get's live rows
		}
	}
	ctx, cancel := batch.Context(b)
	defer cancel()
	found := make(map[string]row, len(ids))
	err := s.retry(ctx, true, func() error {
		clear(found)
		rows, err := s.pool.Query(ctx, s.sql.getMany, ids, now)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var r row
			if err := rows.Scan(&id, &r.data, &r.expire); err != nil {
				return err
			}
			r.found = true
			found[id] = r
		}
		return rows.Err()
	})
	handed := make(map[string]bool, len(ids))
	for _, r := range b {
		row := found[r.Item.id]
		if handed[r.Item.id] {
			row.data = bytes.Clone(row.data) // each Get owns its bytes
		}
		handed[r.Item.id] = true
		r.Item.r, r.Err = row, err
	}
}

// Sets of different sessions (new sessions, mostly) that overlap are
// written together (internal/batch): one INSERT of many rows, one round
// trip and one commit (one WAL flush) for all of them. Each session still
// gets its own answer: a statement that fails for its data (a row
// PostgreSQL refuses) is run again row by row, so one bad row fails alone.

// maxSetBatch bounds the rows of one statement.
const maxSetBatch = 256

// setItem is one row to set.
type setItem struct {
	id, sess string
	exp      time.Time
}

func newSetBatcher() batch.Batcher[setItem] {
	return batch.Batcher[setItem]{Max: maxSetBatch, Key: func(i setItem) string { return i.id }}
}

// set writes one row, alone or with the sets that overlap it.
func (s *Store) set(ctx context.Context, id, sess string, exp time.Time) error {
	return s.sets.Do(ctx, setItem{id, sess, exp}, s.writeSets)
}

// writeSets writes the rows of b and sets each one's Err.
func (s *Store) writeSets(b []*batch.Req[setItem]) {
	if h := s.beforeSets; h != nil {
		h(len(b))
	}
	one := func(r *batch.Req[setItem]) {
		r.Err = s.exec(r.Ctx, true, s.sql.set, r.Item.id, r.Item.sess, r.Item.exp)
	}
	if len(b) == 1 {
		one(b[0])
		return
	}
	ids := make([]string, len(b))
	sess := make([]string, len(b))
	exps := make([]time.Time, len(b))
	for i, r := range b {
		ids[i], sess[i], exps[i] = r.Item.id, r.Item.sess, r.Item.exp
	}
	ctx, cancel := batch.Context(b)
	err := s.exec(ctx, true, s.sql.setMany, ids, sess, exps)
	cancel()
	var pe *pgconn.PgError
	if errors.As(err, &pe) && len(pe.Code) == 5 && pe.Code[:2] == "22" {
		// A data exception: some row is refused. Row by row, so that
		// only that set fails.
		for _, r := range b {
			one(r)
		}
		return
	}
	for _, r := range b {
		r.Err = err
	}
}

// Compare-and-set updates of different live sessions that overlap (each
// session's own overlapping updates are already one, internal/groupcommit)
// are written together: one UPDATE ... FROM unnest(...) whose condition is
// each row's own (its text as its request saw it, and live), RETURNING the
// rows it wrote. A row it did not write is a conflict for that session
// alone, which then takes the locked path as before.

// casItem is one session's compare-and-set and, after it, whether it wrote.
type casItem struct {
	id, sess, seen string
	exp, now       time.Time
	n              int64
}

// casUpdate writes sess (expiring at exp) to id if the live row's text is
// seen: 1 when written, 0 on a conflict.
func (s *Store) casUpdate(ctx context.Context, id, sess string, exp time.Time, seen string, now time.Time) (int64, error) {
	it := &casItem{id: id, sess: sess, seen: seen, exp: exp, now: now}
	err := s.cas.Do(ctx, it, s.writeCAS)
	return it.n, err
}

// writeCAS runs the compare-and-sets of b and answers each one.
func (s *Store) writeCAS(b []*batch.Req[*casItem]) {
	// A compare-and-set may have run when its connection breaks: it is
	// retried only when it surely did not (SafeToRetry).
	one := func(r *batch.Req[*casItem]) {
		it := r.Item
		r.Err = s.retry(r.Ctx, false, func() error {
			tag, err := s.pool.Exec(r.Ctx, s.sql.casUpdate, it.id, it.sess, it.exp, it.seen, it.now)
			it.n = tag.RowsAffected()
			return err
		})
	}
	if len(b) == 1 {
		one(b[0])
		return
	}
	ids := make([]string, len(b))
	sess := make([]string, len(b))
	exps := make([]time.Time, len(b))
	seen := make([]string, len(b))
	now := b[0].Item.now
	for i, r := range b {
		ids[i], sess[i], exps[i], seen[i] = r.Item.id, r.Item.sess, r.Item.exp, r.Item.seen
		if r.Item.now.After(now) {
			now = r.Item.now // the latest: no row is judged live that any request saw expired
		}
	}
	ctx, cancel := batch.Context(b)
	defer cancel()
	wrote := make(map[string]bool, len(b))
	err := s.retry(ctx, false, func() error {
		rows, err := s.pool.Query(ctx, s.sql.casMany, ids, sess, exps, seen, now)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			wrote[id] = true
		}
		return rows.Err()
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && len(pe.Code) == 5 && pe.Code[:2] == "22" {
		for _, r := range b { // a row refused for its data fails alone
			one(r)
		}
		return
	}
	for _, r := range b {
		r.Err = err
		if err == nil && wrote[r.Item.id] {
			r.Item.n = 1
		}
	}
}
