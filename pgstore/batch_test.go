package pgstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/galleta-go/galleta/internal/storecheck"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/galleta-go/galleta/internal/testpg"
	"github.com/galleta-go/galleta/pgstore"
	"github.com/galleta-go/galleta/store"
)

// heldSets opens a store whose first statement of sets waits for release,
// and records the row count of every statement.
type heldSets struct {
	s       *pgstore.Store
	first   chan struct{} // closed when the first statement is about to run
	release chan struct{}
	mu      sync.Mutex
	rows    []int
}

func openHeld(t *testing.T) *heldSets {
	t.Helper()
	h := &heldSets{first: make(chan struct{}), release: make(chan struct{})}
	var once sync.Once
	var o pgstore.Options
	pgstore.SetSetsHook(&o, func(n int) {
		h.mu.Lock()
		h.rows = append(h.rows, n)
		h.mu.Unlock()
		once.Do(func() { close(h.first); <-h.release })
	})
	h.s, _ = open(t, nil, o)
	return h
}

// waitQueued waits until n sets wait for the next statement.
func (h *heldSets) waitQueued(t *testing.T, n int) {
	t.Helper()
	storecheck.WaitQueued(t, func() int { return pgstore.QueuedSets(h.s) }, n)
}

func sessOf(user string) []byte {
	return []byte(`{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"user":"` + user + `"}`)
}

func idOf(i int) string { return fmt.Sprintf("%s%03d", testID[:40], i) }

// Sets of different sessions that overlap go in one statement: with one
// set running, 31 more wait and are then written by one INSERT, each row
// with its own data and expiry.
func TestOverlappingSetsShareAStatement(t *testing.T) {
	h := openHeld(t)
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	var wg sync.WaitGroup
	errs := make([]error, 32)
	set := func(i int) {
		defer wg.Done()
		errs[i] = h.s.Set(ctx, idOf(i), store.Record{Data: sessOf(fmt.Sprint("u", i)), Expires: exp.Add(time.Duration(i) * time.Second)})
	}
	wg.Add(1)
	go set(0)
	<-h.first
	for i := 1; i < 32; i++ {
		wg.Add(1)
		go set(i)
	}
	h.waitQueued(t, 31)
	close(h.release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("set %d: %v", i, err)
		}
	}
	if fmt.Sprint(h.rows) != "[1 31]" {
		t.Fatalf("statements wrote %v rows, want [1 31]", h.rows)
	}
	for i := range 32 {
		rec, err := h.s.Get(ctx, idOf(i))
		if err != nil || !strings.Contains(string(rec.Data), fmt.Sprintf(`"user":"u%d"`, i)) || !rec.Expires.Equal(exp.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("row %d: %s, %v, %v", i, rec.Data, rec.Expires, err)
		}
	}
}

// A row PostgreSQL refuses fails its own set only: the statement is run
// again row by row.
func TestBadRowFailsAlone(t *testing.T) {
	h := openHeld(t)
	exp := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	data := func(i int) []byte {
		if i == 2 {
			return []byte(`{"user":`) // not JSON: the json column refuses it
		}
		return sessOf(fmt.Sprint("u", i))
	}
	set := func(i int) {
		defer wg.Done()
		errs[i] = h.s.Set(ctx, idOf(i), store.Record{Data: data(i), Expires: exp})
	}
	wg.Add(1)
	go set(0)
	<-h.first
	for i := 1; i < 4; i++ {
		wg.Add(1)
		go set(i)
		h.waitQueued(t, i)
	}
	close(h.release)
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i == 2) {
			t.Fatalf("set %d: %v (only set 2 should fail)", i, err)
		}
		_, gerr := h.s.Get(ctx, idOf(i))
		if (gerr == nil) != (i != 2) {
			t.Fatalf("row %d after the sets: %v", i, gerr)
		}
	}
}

// Two queued sets of one session go in two statements, in the order they
// came: the later one is what stays.
func TestQueuedSetsOfOneSessionKeepTheirOrder(t *testing.T) {
	h := openHeld(t)
	exp := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	set := func(id, user string) {
		defer wg.Done()
		if err := h.s.Set(ctx, id, store.Record{Data: sessOf(user), Expires: exp}); err != nil {
			t.Error(err)
		}
	}
	wg.Add(1)
	go set(idOf(100), "first")
	<-h.first
	wg.Add(1)
	go set(idOf(1), "a")
	h.waitQueued(t, 1)
	wg.Add(1)
	go set(idOf(1), "b")
	h.waitQueued(t, 2)
	close(h.release)
	wg.Wait()
	rec, err := h.s.Get(ctx, idOf(1))
	if err != nil || !strings.Contains(string(rec.Data), `"user":"b"`) {
		t.Fatalf("row: %s, %v; want the later set's", rec.Data, err)
	}
	if fmt.Sprint(h.rows) != "[1 1 1]" {
		t.Fatalf("statements wrote %v rows, want [1 1 1]", h.rows)
	}
}

// A set whose context ends while it waits is taken out of the queue: it
// returns the context's error and writes nothing.
func TestQueuedSetCancelled(t *testing.T) {
	h := openHeld(t)
	exp := time.Now().Add(time.Hour)
	done := make(chan error, 1)
	go func() { done <- h.s.Set(ctx, idOf(100), store.Record{Data: sessOf("first"), Expires: exp}) }()
	<-h.first
	cctx, cancel := context.WithCancel(ctx)
	waiting := make(chan error, 1)
	go func() { waiting <- h.s.Set(cctx, idOf(1), store.Record{Data: sessOf("a"), Expires: exp}) }()
	h.waitQueued(t, 1)
	cancel()
	if err := <-waiting; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled set = %v, want context.Canceled", err)
	}
	close(h.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.Get(ctx, idOf(1)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the cancelled set's row: %v, want ErrNotFound", err)
	}
	// The store still takes sets.
	if err := h.s.Set(ctx, idOf(2), store.Record{Data: sessOf("b"), Expires: exp}); err != nil {
		t.Fatal(err)
	}
}

// holdTracer holds the pool's first query whose SQL starts with hold until
// release, and counts the queries whose SQL contains many.
type holdTracer struct {
	hold, many     string
	first, release chan struct{}
	held           atomic.Bool
	mu             sync.Mutex
	manyQueries    int
}

func (h *holdTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.HasPrefix(d.SQL, h.hold) && h.held.CompareAndSwap(false, true) {
		close(h.first) // only the first: the others pass (a sync.Once would hold them too)
		<-h.release
	}
	if strings.Contains(d.SQL, h.many) {
		h.mu.Lock()
		h.manyQueries++
		h.mu.Unlock()
	}
	return ctx
}

func (h *holdTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// Gets that overlap share one SELECT, one row per id: with one read held,
// 30 Gets of three sessions (and one unknown id) wait and are answered by
// one statement, each with its own session.
func TestOverlappingGetsShareASelect(t *testing.T) {
	tr := &holdTracer{hold: "SELECT sess", many: "ANY($1", first: make(chan struct{}), release: make(chan struct{})}
	cfg := testpg.Config(t)
	cfg.ConnConfig.Tracer = tr
	s, _ := open(t, cfg, pgstore.Options{})
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	for i := range 3 {
		if err := s.Set(ctx, idOf(i), store.Record{Data: sessOf(fmt.Sprint("u", i)), Expires: exp}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	recs := make([]store.Record, 31)
	errs := make([]error, 31)
	get := func(i int) {
		defer wg.Done()
		recs[i], errs[i] = s.Get(ctx, idOf(i%4))
	}
	wg.Add(1)
	go get(0)
	<-tr.first
	for i := 1; i < 31; i++ {
		wg.Add(1)
		go get(i)
	}
	deadline := time.Now().Add(10 * time.Second)
	for pgstore.QueuedReads(s) != 30 {
		if time.Now().After(deadline) {
			t.Fatalf("%d gets queued after 10 s, want 30", pgstore.QueuedReads(s))
		}
		time.Sleep(time.Millisecond) // polling a condition, not an assertion
	}
	close(tr.release)
	wg.Wait()
	for i := range 31 {
		if i%4 == 3 {
			if !errors.Is(errs[i], store.ErrNotFound) {
				t.Fatalf("get %d of an unknown id: %v, want ErrNotFound", i, errs[i])
			}
			continue
		}
		if errs[i] != nil || !strings.Contains(string(recs[i].Data), fmt.Sprintf(`"user":"u%d"`, i%4)) || !recs[i].Expires.Equal(exp) {
			t.Fatalf("get %d: %s, %v, %v", i, recs[i].Data, recs[i].Expires, errs[i])
		}
	}
	if tr.manyQueries != 1 {
		t.Fatalf("%d statements read many rows, want 1 for the 30 queued gets", tr.manyQueries)
	}
}

// queuedUpdates is n increments of n sessions (each stored as {"n":10})
// whose first UPDATE is held, with the other n-1 queued behind it for one
// batched compare-and-set (see startQueuedUpdates).
type queuedUpdates struct {
	s       *pgstore.Store
	pool    *pgxpool.Pool
	table   string // the session table, quoted
	tr      *holdTracer
	release func() // lets the held UPDATE go on (idempotent)
	done    []chan struct{}
	errs    []error // errs[i] is update i's result once done[i] is closed
}

// startQueuedUpdates starts the updates and returns once n-1 of them are
// queued. The pool has room for the held statement, the batch, a locked
// path and one more transaction of the test's.
func startQueuedUpdates(t *testing.T, n int) *queuedUpdates {
	t.Helper()
	tr := &holdTracer{hold: "UPDATE", many: "FROM unnest", first: make(chan struct{}), release: make(chan struct{})}
	cfg := testpg.Config(t)
	cfg.ConnConfig.Tracer = tr
	cfg.MaxConns = 8
	schema := testpg.Schema(t)
	s, pool := open(t, cfg, pgstore.Options{Schema: schema})
	var releaseOnce sync.Once
	q := &queuedUpdates{
		s: s, pool: pool, table: pgx.Identifier{schema, "session"}.Sanitize(), tr: tr,
		release: func() { releaseOnce.Do(func() { close(tr.release) }) },
		done:    make([]chan struct{}, n),
		errs:    make([]error, n),
	}
	t.Cleanup(q.release) // a failing check must not leave the held statement waiting
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	for i := range n {
		if err := s.Set(ctx, idOf(i), store.Record{Data: []byte(`{"n":10}`), Expires: exp}); err != nil {
			t.Fatal(err)
		}
		q.done[i] = make(chan struct{})
	}
	incr := func(cur store.Record, found bool) (store.Record, bool, error) {
		var v struct{ N int }
		if err := json.Unmarshal(cur.Data, &v); err != nil || !found {
			return store.Record{}, false, fmt.Errorf("bad current record %q (found %v)", cur.Data, found)
		}
		return store.Record{Data: []byte(fmt.Sprintf(`{"n":%d}`, v.N+1)), Expires: cur.Expires}, true, nil
	}
	update := func(i int) {
		defer close(q.done[i])
		q.errs[i] = s.UpdateFrom(ctx, idOf(i), store.Record{Data: []byte(`{"n":10}`), Expires: exp}, incr)
	}
	go update(0)
	<-tr.first
	for i := 1; i < n; i++ {
		go update(i)
	}
	deadline := time.Now().Add(10 * time.Second)
	for pgstore.QueuedCAS(s) != n-1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d compare-and-sets queued after 10 s, want %d", pgstore.QueuedCAS(s), n-1)
		}
		time.Sleep(time.Millisecond) // polling a condition, not an assertion
	}
	return q
}

// wait waits for every update to return.
func (q *queuedUpdates) wait() {
	for _, d := range q.done {
		<-d
	}
}

// Compare-and-sets of different sessions that overlap share one UPDATE;
// a session changed underneath meanwhile misses alone and takes the locked
// path, where its update runs again on the stored text.
func TestOverlappingUpdatesShareAStatement(t *testing.T) {
	const n = 8
	q := startQueuedUpdates(t, n)
	// Another writer changes session 5 under its queued update.
	if _, err := q.pool.Exec(ctx, `UPDATE `+q.table+` SET sess = '{"n":100}' WHERE sid = $1`, idOf(5)); err != nil {
		q.release()
		q.wait()
		t.Fatal(err)
	}
	q.release()
	q.wait()
	for i := range n {
		if q.errs[i] != nil {
			t.Fatalf("update %d: %v", i, q.errs[i])
		}
		want := `{"n":11}`
		if i == 5 {
			want = `{"n":101}`
		}
		rec, err := q.s.Get(ctx, idOf(i))
		if err != nil || string(rec.Data) != want {
			t.Fatalf("session %d: %s, %v; want %s", i, rec.Data, err, want)
		}
	}
	if q.tr.manyQueries != 1 {
		t.Fatalf("%d statements updated many rows, want 1 for the %d queued", q.tr.manyQueries, n-1)
	}
}

// A row that another transaction holds locked does not hold up the other
// sessions of its batch: with session 5's row locked elsewhere, the batched
// compare-and-set writes the other six at once, and session 5's update
// waits for the lock on its own (the locked path) and then lands.
func TestLockedRowHoldsUpOnlyItsSession(t *testing.T) {
	const n = 8
	q := startQueuedUpdates(t, n)
	// Another transaction holds session 5's row.
	tx, err := q.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM `+q.table+` WHERE sid = $1 FOR UPDATE`, idOf(5)); err != nil {
		t.Fatal(err)
	}
	q.release()
	for i := range n {
		if i == 5 {
			continue
		}
		select {
		case <-q.done[i]:
		case <-time.After(10 * time.Second):
			t.Fatalf("update %d still waits 10 s after the batch began: session 5's locked row holds up its batch", i)
		}
		if q.errs[i] != nil {
			t.Fatalf("update %d: %v", i, q.errs[i])
		}
	}
	select {
	case <-q.done[5]:
		t.Fatalf("update 5 returned (%v) while its row is locked elsewhere", q.errs[5])
	default:
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	<-q.done[5]
	if q.errs[5] != nil {
		t.Fatalf("update 5 after the lock ended: %v", q.errs[5])
	}
	for i := range n {
		rec, err := q.s.Get(ctx, idOf(i))
		if err != nil || string(rec.Data) != `{"n":11}` {
			t.Fatalf("session %d: %s, %v; want {\"n\":11}", i, rec.Data, err)
		}
	}
	if q.tr.manyQueries != 1 {
		t.Fatalf("%d statements updated many rows, want 1 for the %d queued", q.tr.manyQueries, n-1)
	}
}
