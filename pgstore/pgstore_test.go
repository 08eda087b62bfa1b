package pgstore_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/galleta-go/galleta/internal/storecheck"
	"github.com/galleta-go/galleta/internal/testpg"
	"github.com/galleta-go/galleta/pgstore"
	"github.com/galleta-go/galleta/store"
	"github.com/galleta-go/galleta/store/storetest"
)

// newStore returns a NewFunc for stores on pool, each on a table in a
// schema of its own: storetest compares counts as deltas and Reap's
// result exactly on an empty store.
func newStore(pool *pgxpool.Pool) storetest.NewFunc {
	return func(t *testing.T, now func() time.Time) store.Store {
		s, err := pgstore.New(pool, pgstore.Options{Schema: testpg.Schema(t), CreateTable: true, Now: now, Logger: storecheck.Quiet})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// storetest.Run on the machine's PostgreSQL (DATABASE_URL).
func TestConformance(t *testing.T) {
	storetest.Run(t, newStore(testpg.Pool(t, nil)))
}

// Two stores on two pools, one table.
func TestShared(t *testing.T) {
	pools := []*pgxpool.Pool{testpg.Pool(t, nil), testpg.Pool(t, nil)}
	n := 0
	var schema string
	storetest.RunShared(t, func(t *testing.T, now func() time.Time) store.Store {
		if n%2 == 0 {
			schema = testpg.Schema(t)
		}
		s, err := pgstore.New(pools[n%2], pgstore.Options{Schema: schema, CreateTable: true, Now: now, Logger: storecheck.Quiet})
		n++
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
