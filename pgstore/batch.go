package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/galleta-go/galleta/internal/batch"
	"github.com/jackc/pgx/v5/pgconn"
)

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
