package pgstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/galleta-go/galleta/store"
)

// List calls fn with each live session in sid order, until fn returns
// false. It reads pages of at most 100 rows (and about 4 MiB), each one
// statement with keyset pagination on sid, and calls fn after the page's
// rows are read, so no connection is held while fn runs. It stops with
// ctx's error as soon as ctx ends (checked before each page and each call
// of fn). Expiry is judged by the store's clock; corrupt rows and ids
// galleta cannot use are skipped. fn must not call the store.
func (s *Store) List(ctx context.Context, fn func(id string, rec store.Record) bool) error {
	if err := s.start(ctx); err != nil {
		return err
	}
	type item struct {
		id  string
		row row
	}
	page := make([]item, 0, listRows)
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return s.fail("list sessions", err)
		}
		now := s.nowMS()
		err := s.retry(ctx, true, func() error {
			page = page[:0]
			rows, err := s.pool.Query(ctx, s.sql.list, after, now, listRows, listBytes)
			if err != nil {
				return err
			}
			var it item
			_, err = pgx.ForEachRow(rows, []any{&it.id, &it.row.data, &it.row.expire}, func() error {
				it.row.found = true
				page = append(page, it)
				it = item{}
				return nil
			})
			return err
		})
		if err != nil {
			return s.fail("list sessions", err)
		}
		for _, it := range page {
			if err := ctx.Err(); err != nil {
				return s.fail("list sessions", err)
			}
			if !store.ValidID(it.id) {
				continue // not a session id galleta could use
			}
			if rec, ok := s.view(it.row, now); ok && !fn(it.id, rec) {
				return nil
			}
		}
		// A short page may have been cut by the byte bound: only an empty
		// one ends the walk.
		if len(page) == 0 {
			return nil
		}
		after = page[len(page)-1].id
	}
}

// Count returns the number of live sessions by the store's clock. It
// walks the table in sid order, 10000 rows per statement (keyset
// pagination), reading sid and expire only, so a corrupt row counts until
// it expires.
func (s *Store) Count(ctx context.Context) (int, error) {
	if err := s.start(ctx); err != nil {
		return 0, err
	}
	total := 0
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return 0, s.fail("count sessions", err)
		}
		var live, seen int
		var last string
		now := s.nowMS()
		err := s.retry(ctx, true, func() error {
			return s.pool.QueryRow(ctx, s.sql.count, after, now, countRows).Scan(&live, &seen, &last)
		})
		if err != nil {
			return 0, s.fail("count sessions", err)
		}
		total += live
		if seen < countRows {
			return total, nil
		}
		after = last
	}
}

// Reap deletes the rows whose expiry is not after the store's now (the
// rows Get no longer returns), in statements of at most PruneBatch rows,
// until a statement deletes fewer, and returns how many it deleted.
// Between two statements it waits as long as the last one took, so a large
// prune uses at most half of one connection's time and requests keep
// their latency. Rows another pruner holds are skipped, and a row touched
// or saved during a statement is kept (its expiry is checked again on the
// row it locks).
func (s *Store) Reap(ctx context.Context) (int, error) {
	if err := s.start(ctx); err != nil {
		return 0, err
	}
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, s.fail("reap sessions", err)
		}
		var n int64
		now := s.nowMS()
		start := time.Now()
		err := s.retry(ctx, true, func() error {
			tag, err := s.pool.Exec(ctx, s.sql.reap, now, s.batch)
			n = tag.RowsAffected()
			return err
		})
		total += int(n)
		if err != nil {
			return total, s.fail("reap sessions", err)
		}
		if n < int64(s.batch) {
			return total, nil
		}
		if err := pause(ctx, min(time.Since(start), maxReapPause)); err != nil {
			return total, s.fail("reap sessions", err)
		}
	}
}

// maxReapPause caps Reap's wait between two statements.
const maxReapPause = time.Second

// pause waits d or until ctx is done.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// pruneTimeout bounds one background prune.
const pruneTimeout = 10 * time.Minute

// startPruner starts the pruning goroutine unless interval is negative.
func (s *Store) startPruner(interval time.Duration) {
	if interval < 0 {
		return
	}
	if interval == 0 {
		interval = defaultPruneInterval
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopPrune = cancel
	s.pruneDone = make(chan struct{})
	go s.prune(ctx, interval)
}

// jitter returns a wait drawn uniformly between 50% and 150% of interval,
// as connect-pg-simple's pruneSessionRandomizedInterval does.
func jitter(interval time.Duration) time.Duration {
	return interval/2 + rand.N(interval+1)
}

// prune is the pruning goroutine, owned by the store: it ends when Close
// cancels ctx.
func (s *Store) prune(ctx context.Context, interval time.Duration) {
	defer close(s.pruneDone)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.pruneAfter(jitter(interval)):
		}
		rctx, cancel := context.WithTimeout(ctx, pruneTimeout)
		n, err := s.Reap(rctx)
		cancel()
		if ctx.Err() != nil {
			return // closing: an interrupted prune is no failure
		}
		if err != nil {
			s.log.Warn("pgstore: pruning expired sessions failed; trying again at the next interval", "table", s.qtable, "deleted", n, "err", err)
		}
		if s.pruned != nil {
			s.pruned(n, err)
		}
	}
}

// Ping checks, in one statement, that the pool can hand out a connection,
// the table exists, the database user holds the privileges the store
// needs (SELECT, INSERT, UPDATE, DELETE) and the server accepts writes (a
// DELETE that matches no row, which a read-only server or a standby
// refuses). It writes nothing, so it does not prove that the disk has
// room. It returns an error wrapping store.ErrUnavailable when PostgreSQL
// cannot be reached or refuses writes.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.start(ctx); err != nil {
		return err
	}
	var ok bool
	var n int
	err := s.retry(ctx, true, func() error {
		return s.pool.QueryRow(ctx, s.sql.ping, s.qtable).Scan(&ok, &n)
	})
	if err != nil {
		return s.fail("ping", err)
	}
	if !ok {
		return fmt.Errorf("pgstore: ping: the database user lacks a privilege on %s; the store needs SELECT, INSERT, UPDATE and DELETE", s.qtable)
	}
	return nil
}
