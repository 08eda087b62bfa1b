package pgstore_test

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/galleta-go/galleta/internal/storecheck"
	"github.com/galleta-go/galleta/internal/testpg"
	"github.com/galleta-go/galleta/pgstore"
	"github.com/galleta-go/galleta/store"
	"github.com/galleta-go/galleta/store/storetest"
)

// deleteTracer records the rows each prune DELETE statement removed.
type deleteTracer struct {
	mu      sync.Mutex
	batches []int64
}

type sqlKey struct{}

func (d *deleteTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, sqlKey{}, data.SQL)
}

func (d *deleteTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	if sql, _ := ctx.Value(sqlKey{}).(string); strings.HasPrefix(sql, "DELETE") && strings.Contains(sql, "ctid") && data.Err == nil {
		d.mu.Lock()
		d.batches = append(d.batches, data.CommandTag.RowsAffected())
		d.mu.Unlock()
	}
}

func (d *deleteTracer) take() []int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	b := d.batches
	d.batches = nil
	return b
}

// fill inserts n rows expiring at exp in one statement.
func fill(t testing.TB, s *pgstore.Store, prefix string, n int, exp time.Time) {
	t.Helper()
	testpg.Exec(t, "INSERT INTO "+s.Table()+` (sid, sess, expire) SELECT $1 || i, '{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"n":1}', $2::timestamptz FROM generate_series(1, $3::int) i`,
		prefix, exp, n)
}

func rowCount(t testing.TB, s *pgstore.Store) int {
	t.Helper()
	var n int
	testpg.QueryRow(t, "SELECT count(*) FROM "+s.Table(), nil, &n)
	return n
}

// The pruner waits a jittered interval on its timer, then deletes the
// rows expired by the store's clock in statements of at most PruneBatch
// rows, reports, and waits again; Close stops it and leaves no goroutine.
func TestPruner(t *testing.T) {
	base := runtime.NumGoroutine()
	clock := storetest.NewClock(time.Now())
	tr := &deleteTracer{}
	cfg := testpg.Config(t)
	cfg.ConnConfig.Tracer = tr
	tick := make(chan time.Time)
	waits := make(chan time.Duration, 10)
	pruned := make(chan [2]any, 10)
	o := pgstore.Options{PruneInterval: time.Hour, PruneBatch: 10, Now: clock.Now}
	pgstore.SetPruneHooks(&o,
		func(d time.Duration) <-chan time.Time { waits <- d; return tick },
		func(n int, err error) { pruned <- [2]any{n, err} })
	s, _ := open(t, cfg, o)
	fill(t, s, "short", 35, clock.Now().Add(time.Minute))
	fill(t, s, "live", 5, clock.Now().Add(2*time.Hour))

	for round := range 2 {
		select {
		case d := <-waits:
			if d < 30*time.Minute || d > 90*time.Minute {
				t.Errorf("round %d: the pruner waits %v, want 50%% to 150%% of the 1h interval", round, d)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: the pruner never started waiting", round)
		}
		if round == 0 {
			clock.Advance(2 * time.Minute)
		}
		tick <- time.Now()
		var got [2]any
		select {
		case got = <-pruned:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: no prune reported", round)
		}
		want := []int{35, 0}[round]
		if got[0] != want || got[1] != nil {
			t.Errorf("round %d: pruned %v, %v; want %d, nil", round, got[0], got[1], want)
		}
		batches := tr.take()
		wantBatches := [][]int64{{10, 10, 10, 5}, {0}}[round]
		if len(batches) != len(wantBatches) {
			t.Errorf("round %d: DELETE statements removed %v rows, want %v (batches of at most 10)", round, batches, wantBatches)
		} else {
			for i := range batches {
				if batches[i] != wantBatches[i] {
					t.Errorf("round %d: DELETE statements removed %v rows, want %v", round, batches, wantBatches)
					break
				}
			}
		}
		if n := rowCount(t, s); n != 5 && round == 0 {
			t.Errorf("%d rows after the prune, want the 5 live ones", n)
		}
	}
	// The pruner is waiting again; Close must stop it.
	<-waits
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return: the pruner ignores it")
	}
	// The pool's own goroutines go with its cleanup; the store's pruner is
	// gone already: Close waited for it.
	if g := storecheck.Settle(settleWithin, base+10, runtime.NumGoroutine); g > base+10 {
		t.Errorf("goroutines: %d before, %d after Close", base, g)
	}
}

// A negative PruneInterval starts no pruner.
func TestPrunerOff(t *testing.T) {
	o := pgstore.Options{PruneInterval: -1}
	started := make(chan struct{}, 1)
	pgstore.SetPruneHooks(&o, func(time.Duration) <-chan time.Time { started <- struct{}{}; return nil }, nil)
	s, _ := open(t, nil, o)
	s.Close()
	select {
	case <-started:
		t.Error("a pruner started with PruneInterval < 0")
	default:
	}
}

func TestJitter(t *testing.T) {
	const interval = time.Minute
	lo, hi := interval, time.Duration(0)
	for range 10000 {
		d := pgstore.Jitter(interval)
		if d < interval/2 || d > interval*3/2 {
			t.Fatalf("Jitter(%v) = %v, outside 50%%..150%%", interval, d)
		}
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo > interval*6/10 || hi < interval*14/10 {
		t.Errorf("10000 draws of Jitter(%v) span only %v..%v: instances would prune in step", interval, lo, hi)
	}
}

// Reap deletes in statements of at most PruneBatch rows and keeps live
// rows; two stores reaping one table at once (SKIP LOCKED) delete every
// expired row exactly once between them.
func TestReapBatches(t *testing.T) {
	clock := storetest.NewClock(time.Now())
	tr := &deleteTracer{}
	cfg := testpg.Config(t)
	cfg.ConnConfig.Tracer = tr
	schema := testpg.Schema(t)
	s, _ := open(t, cfg, pgstore.Options{Schema: schema, PruneBatch: 100, PruneInterval: -1, Now: clock.Now})
	fill(t, s, "old", 1050, clock.Now().Add(-time.Second))
	fill(t, s, "new", 20, clock.Now().Add(time.Hour))
	if err := s.Set(ctx, testID, store.Record{Data: data, Expires: clock.Now().Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	n, err := s.Reap(ctx)
	if err != nil || n != 1050 {
		t.Fatalf("Reap = %d, %v; want 1050", n, err)
	}
	b := tr.take()
	if len(b) != 11 || b[10] != 50 {
		t.Errorf("DELETE statements removed %v rows, want ten of 100 and one of 50", b)
	}
	for _, r := range b {
		if r > 100 {
			t.Errorf("a DELETE statement removed %d rows, over PruneBatch 100", r)
		}
	}
	if n := rowCount(t, s); n != 21 {
		t.Errorf("%d rows after Reap, want 21 live", n)
	}

	other, _ := open(t, nil, pgstore.Options{Schema: schema, PruneBatch: 100, PruneInterval: -1, Now: clock.Now})
	fill(t, s, "again", 5000, clock.Now().Add(-time.Second))
	var wg sync.WaitGroup
	var got [2]int
	for i, st := range []*pgstore.Store{s, other} {
		wg.Go(func() {
			n, err := st.Reap(ctx)
			if err != nil {
				t.Errorf("concurrent Reap: %v", err)
			}
			got[i] = n
		})
	}
	wg.Wait()
	if got[0]+got[1] != 5000 {
		t.Errorf("two concurrent Reaps deleted %d + %d rows, want 5000 in all", got[0], got[1])
	}
	if n := rowCount(t, s); n != 21 {
		t.Errorf("%d rows after the concurrent Reaps, want 21", n)
	}
}
