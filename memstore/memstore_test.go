package memstore_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/galleta-go/galleta/memstore"
	"github.com/galleta-go/galleta/store"
	"github.com/galleta-go/galleta/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		s := memstore.New(memstore.Options{Now: now, SweepInterval: -1})
		t.Cleanup(func() {
			if msg := memstore.CheckInvariants(s); msg != "" {
				t.Errorf("invariant: %s", msg)
			}
		})
		return s
	})
}

func TestConformanceWithLimit(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		return memstore.New(memstore.Options{Now: now, SweepInterval: -1, MaxSessions: 100000})
	})
}

var ctx = context.Background()

// seqID returns a valid id made from n.
func seqID(n int) string { return fmt.Sprintf("id-%08d", n) }

func newStore(t *testing.T, o memstore.Options) *memstore.Store {
	t.Helper()
	if o.SweepInterval == 0 {
		o.SweepInterval = -1
	}
	s := memstore.New(o)
	t.Cleanup(func() { s.Close() })
	return s
}

func count(t *testing.T, s *memstore.Store) int {
	t.Helper()
	n, err := s.Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestLRUExact(t *testing.T) {
	// Below 128 sessions the store has one shard: an exact LRU.
	s := newStore(t, memstore.Options{MaxSessions: 100})
	if n := memstore.Shards(s); n != 1 {
		t.Fatalf("shards = %d, want 1", n)
	}
	exp := time.Now().Add(time.Hour)
	for i := range 100 {
		if err := s.Set(ctx, seqID(i), store.Record{Data: []byte("x"), Expires: exp}); err != nil {
			t.Fatal(err)
		}
	}
	// Use 0..9 by Get, 10..19 by Touch, 20..29 by Update: 30..39 are now the oldest.
	for i := range 10 {
		if _, err := s.Get(ctx, seqID(i)); err != nil {
			t.Fatal(err)
		}
		if err := s.Touch(ctx, seqID(10+i), exp); err != nil {
			t.Fatal(err)
		}
		if err := s.Update(ctx, seqID(20+i), func(cur store.Record, found bool) (store.Record, bool, error) {
			return cur, false, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 100; i < 110; i++ {
		if err := s.Set(ctx, seqID(i), store.Record{Data: []byte("y"), Expires: exp}); err != nil {
			t.Fatal(err)
		}
		if n := count(t, s); n > 100 {
			t.Fatalf("Count = %d, above MaxSessions 100", n)
		}
	}
	for i := range 110 {
		_, err := s.Get(ctx, seqID(i))
		evicted := i >= 30 && i < 40
		if evicted && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: Get = %v, want it evicted", seqID(i), err)
		}
		if !evicted && err != nil {
			t.Errorf("%s: Get = %v, want it kept", seqID(i), err)
		}
	}
	if n := count(t, s); n != 100 {
		t.Errorf("Count = %d, want 100", n)
	}
	if msg := memstore.CheckInvariants(s); msg != "" {
		t.Error(msg)
	}
}

func TestLRUSharded(t *testing.T) {
	const limit = 6400
	s := newStore(t, memstore.Options{MaxSessions: limit})
	if n := memstore.Shards(s); n != 64 {
		t.Fatalf("shards = %d, want 64", n)
	}
	exp := time.Now().Add(time.Hour)
	const total = 20000
	for i := range total {
		if err := s.Set(ctx, seqID(i), store.Record{Data: []byte("x"), Expires: exp}); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 999 {
			if n := count(t, s); n > limit {
				t.Fatalf("after %d sets Count = %d, above MaxSessions %d", i+1, n, limit)
			}
		}
	}
	if n := count(t, s); n > limit || n < limit*9/10 {
		t.Errorf("Count = %d, want at most %d and near it", n, limit)
	}
	// Each shard holds about 100 and saw about 300: the newest 1000 survive,
	// the oldest 1000 are gone.
	for i := range 1000 {
		if _, err := s.Get(ctx, seqID(i)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("oldest %s: Get = %v, want it evicted", seqID(i), err)
		}
		if _, err := s.Get(ctx, seqID(total-1-i)); err != nil {
			t.Fatalf("newest %s: Get = %v, want it kept", seqID(total-1-i), err)
		}
	}
	if msg := memstore.CheckInvariants(s); msg != "" {
		t.Error(msg)
	}
}

// TestRandomOps compares the store with a map under a random mix of
// operations, checking the table and LRU invariants along the way.
func TestRandomOps(t *testing.T) {
	for _, limit := range []int{0, 50, 1000} {
		t.Run(fmt.Sprintf("limit%d", limit), func(t *testing.T) {
			clock := storetest.NewClock(time.Now())
			s := newStore(t, memstore.Options{Now: clock.Now, MaxSessions: limit})
			model := map[string]int64{} // id -> expires (ms); only without a limit
			r := rand.New(rand.NewPCG(1, uint64(limit)))
			for step := range 50000 {
				id := seqID(r.IntN(2000))
				exp := clock.Now().Add(time.Duration(r.IntN(120)-10) * time.Second)
				var err error
				switch r.IntN(6) {
				case 0, 1:
					err = s.Set(ctx, id, store.Record{Data: []byte(id), Expires: exp})
					if exp.After(clock.Now()) {
						model[id] = exp.UnixMilli()
					} else {
						delete(model, id)
					}
				case 2:
					err = s.Delete(ctx, id)
					delete(model, id)
				case 3:
					err = s.Touch(ctx, id, exp)
					if e, ok := model[id]; ok && e > clock.Now().UnixMilli() {
						if exp.After(clock.Now()) {
							model[id] = exp.UnixMilli()
						} else {
							delete(model, id)
						}
					}
				case 4:
					var rec store.Record
					rec, err = s.Get(ctx, id)
					if err == nil && !bytes.Equal(rec.Data, []byte(id)) {
						t.Fatalf("Get(%s).Data = %q", id, rec.Data)
					}
					if limit == 0 {
						e, ok := model[id]
						live := ok && e > clock.Now().UnixMilli()
						if live != (err == nil) {
							t.Fatalf("step %d: Get(%s) = %v, model live=%v", step, id, err, live)
						}
					}
				case 5:
					clock.Advance(time.Duration(r.IntN(3000)) * time.Millisecond)
					if r.IntN(10) == 0 {
						if _, err := s.Reap(ctx); err != nil {
							t.Fatal(err)
						}
					}
				}
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("step %d: %v", step, err)
				}
				if step%997 == 0 {
					if msg := memstore.CheckInvariants(s); msg != "" {
						t.Fatalf("step %d: %s", step, msg)
					}
					if limit > 0 && memstore.RawLen(s) > limit {
						t.Fatalf("step %d: %d entries, above the limit %d", step, memstore.RawLen(s), limit)
					}
				}
			}
			if limit == 0 {
				live := 0
				for _, e := range model {
					if e > clock.Now().UnixMilli() {
						live++
					}
				}
				if n := count(t, s); n != live {
					t.Errorf("Count = %d, model has %d live", n, live)
				}
			}
		})
	}
}

func TestSweepInjectedClock(t *testing.T) {
	clock := storetest.NewClock(time.Now())
	s := newStore(t, memstore.Options{Now: clock.Now})
	for i := range 1000 {
		exp := clock.Now().Add(time.Minute)
		if i%4 == 0 {
			exp = clock.Now().Add(time.Hour)
		}
		if err := s.Set(ctx, seqID(i), store.Record{Data: []byte("x"), Expires: exp}); err != nil {
			t.Fatal(err)
		}
	}
	if n := memstore.Sweep(s); n != 0 {
		t.Errorf("Sweep before expiry deleted %d", n)
	}
	clock.Advance(2 * time.Minute)
	if n := memstore.RawLen(s); n != 1000 {
		t.Fatalf("entries before the sweep = %d, want 1000 (expired ones are still held)", n)
	}
	if n := memstore.Sweep(s); n != 750 {
		t.Errorf("Sweep deleted %d, want 750", n)
	}
	if n := memstore.RawLen(s); n != 250 {
		t.Errorf("entries after the sweep = %d, want 250", n)
	}
	if msg := memstore.CheckInvariants(s); msg != "" {
		t.Error(msg)
	}
}

// The sweeper tests run in a synctest bubble: the sweeper's ticker and the
// store's default clock (time.Now) run on the bubble's fake time, which
// moves only when every goroutine in the bubble is blocked, so the tests
// neither sleep nor poll. A goroutine the store leaves running when the
// test function returns makes synctest.Test fail with "deadlock: main
// bubble goroutine has exited but blocked goroutines remain".

// TestSweeperGoroutine checks that the sweeper deletes expired sessions
// nobody reads, on its interval (the default, 1 minute) and not before,
// until Close stops it.
func TestSweeperGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSweeping(t, memstore.Options{}) // SweepInterval zero: 1 minute
		start := time.Now()
		for i := range 100 {
			exp := start.Add(90 * time.Second)
			if i%4 == 0 {
				exp = start.Add(time.Hour)
			}
			if err := s.Set(t.Context(), seqID(i), store.Record{Data: []byte("x"), Expires: exp}); err != nil {
				t.Fatal(err)
			}
		}

		// The sweep at 1m finds nothing expired; the 75 short sessions
		// expire at 1m30s and are held until the next sweep.
		time.Sleep(2*time.Minute - time.Millisecond)
		synctest.Wait()
		if n := memstore.RawLen(s); n != 100 {
			t.Fatalf("entries at 1m59.999s = %d, want 100 (no sweep between ticks)", n)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait() // the sweep at 2m has run and the sweeper waits again
		if n := memstore.RawLen(s); n != 25 {
			t.Fatalf("entries after the sweep at 2m = %d, want 25", n)
		}
		if msg := memstore.CheckInvariants(s); msg != "" {
			t.Error(msg)
		}

		select {
		case <-memstore.SweeperDone(s):
			t.Fatal("sweeper stopped before Close")
		default:
		}
		closeWithin(t, s)
		select {
		case <-memstore.SweeperDone(s):
		default:
			t.Fatal("Close returned before the sweeper stopped")
		}
	})
}

// TestNoSweeper checks that a negative SweepInterval starts no goroutine:
// expired sessions stay until something reads or reaps them.
func TestNoSweeper(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSweeping(t, memstore.Options{SweepInterval: -1})
		select {
		case <-memstore.SweeperDone(s):
		default:
			t.Fatal("SweepInterval -1: a sweeper is running")
		}
		if err := s.Set(t.Context(), seqID(1), store.Record{Data: []byte("x"), Expires: time.Now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		if n := memstore.RawLen(s); n != 1 {
			t.Errorf("entries after a day = %d, want 1 (nothing sweeps)", n)
		}
		closeWithin(t, s)
	})
}

// newSweeping returns a store made inside t's synctest bubble, so its
// sweeper runs on the bubble's fake time, and closes it (within a fake day)
// when the test ends: a test that fails before its own Close then reports
// its failure instead of the sweeper it left behind.
func newSweeping(t *testing.T, o memstore.Options) *memstore.Store {
	s := memstore.New(o)
	t.Cleanup(func() { closeWithin(t, s) })
	return s
}

// closeWithin calls s.Close and fails the test if it does not return within
// a day of the bubble's fake time, so a Close that waits for a sweeper that
// never stops fails instead of ticking fake time forever.
func closeWithin(t *testing.T, s *memstore.Store) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(24 * time.Hour):
		t.Fatal("Close did not return within a day of fake time: the sweeper did not stop")
	}
}

// TestCloseStopsGoroutines checks that each store's Close stops its own
// sweeper and waits for it. That no sweeper outlives its Close is checked
// by synctest.Test itself when the function returns.
func TestCloseStopsGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var stores []*memstore.Store
		for range 20 {
			stores = append(stores, newSweeping(t, memstore.Options{SweepInterval: time.Hour}))
		}
		time.Sleep(3 * time.Hour) // a few ticks each
		synctest.Wait()
		for i, s := range stores {
			select {
			case <-memstore.SweeperDone(s):
				t.Fatalf("store %d: sweeper not running before Close", i)
			default:
			}
		}
		for i, s := range stores {
			closeWithin(t, s)
			select {
			case <-memstore.SweeperDone(s):
			default:
				t.Fatalf("store %d: Close returned before the sweeper stopped", i)
			}
			for _, later := range stores[i+1:] {
				select {
				case <-memstore.SweeperDone(later):
					t.Fatalf("closing store %d stopped another store's sweeper", i)
				default:
				}
			}
		}
	})
}

// TestClose checks that Close may be called many times, from several
// goroutines at once, that every call returns nil once the sweeper has
// stopped, and that every method then returns ErrClosed.
func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		s := newSweeping(t, memstore.Options{}) // with its sweeper
		id := seqID(1)
		exp := time.Now().Add(time.Hour)
		if err := s.Set(ctx, id, store.Record{Data: []byte("x"), Expires: exp}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				select {
				case <-memstore.SweeperDone(s):
				default:
					t.Error("Close returned before the sweeper stopped")
				}
			})
		}
		wg.Wait()
		closeWithin(t, s) // and once more after the others
		check := func(method string, err error) {
			t.Helper()
			if !errors.Is(err, memstore.ErrClosed) || !strings.Contains(err.Error(), "closed") {
				t.Errorf("%s after Close = %v, want ErrClosed", method, err)
			}
		}
		_, err := s.Get(ctx, id)
		check("Get", err)
		check("Set", s.Set(ctx, id, store.Record{Data: []byte("x"), Expires: exp}))
		check("Delete", s.Delete(ctx, id))
		check("Touch", s.Touch(ctx, id, exp))
		check("Update", s.Update(ctx, id, func(cur store.Record, found bool) (store.Record, bool, error) {
			t.Error("fn called after Close")
			return cur, false, nil
		}))
		check("List", s.List(ctx, func(string, store.Record) bool { return true }))
		_, err = s.Count(ctx)
		check("Count", err)
		_, err = s.Reap(ctx)
		check("Reap", err)
	})
}

// TestNoLogs guards the library's silence: New, the store's methods, a sweep
// and Close write nothing to the default logger (nor through it to the log
// package). Whether sessions living in memory deserves a log line is the
// program's call.
func TestNoLogs(t *testing.T) {
	var buf bytes.Buffer
	oldSlog, oldOut, oldFlags := slog.Default(), log.Writer(), log.Flags()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() {
		slog.SetDefault(oldSlog)
		log.SetOutput(oldOut)
		log.SetFlags(oldFlags)
	})

	clock := storetest.NewClock(time.Now())
	s := memstore.New(memstore.Options{Now: clock.Now, MaxSessions: 5})
	for i := range 10 { // half of them evicted
		s.Set(ctx, seqID(i), store.Record{Data: []byte("x"), Expires: clock.Now().Add(time.Minute)})
		s.Get(ctx, seqID(i))
	}
	clock.Advance(time.Hour)
	memstore.Sweep(s)
	s.Close()
	s.Close()
	s.Get(ctx, seqID(1))
	if buf.Len() != 0 {
		t.Errorf("memstore logged:\n%s", buf.String())
	}
}

func TestUpdatePanicReleasesLock(t *testing.T) {
	s := newStore(t, memstore.Options{})
	func() {
		defer func() { recover() }()
		s.Update(ctx, "p", func(store.Record, bool) (store.Record, bool, error) { panic("boom") })
	}()
	done := make(chan error, 1)
	go func() { _, err := s.Get(ctx, "p"); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get = %v, want ErrNotFound", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Get blocked: Update kept the lock after fn panicked")
	}
}

// smallSession is the realistic small session of the memory budget, about
// 160 bytes of JSON.
func smallSession(i int) []byte {
	return fmt.Appendf(nil, `{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"__galleta":{"created":%d,"deadline":%d},"user":"%05x","n":%d}`,
		1795648796836+int64(i), 1795692000000+int64(i), i, i%10)
}

// measurePerSession returns the heap bytes per session for n small sessions,
// counting the ids and the Data.
func measurePerSession(n int) float64 {
	exp := time.Now().Add(time.Hour)
	var id [32]byte
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s := memstore.New(memstore.Options{SweepInterval: -1})
	r := rand.New(rand.NewPCG(7, 7))
	for i := range n {
		for j := 0; j < len(id); j += 8 {
			v := r.Uint64()
			for k := range 8 {
				id[j+k] = byte(v >> (8 * k))
			}
		}
		s.Set(ctx, base64.RawURLEncoding.EncodeToString(id[:]), store.Record{Data: smallSession(i), Expires: exp})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	per := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
	s.Close()
	return per
}

func TestMemoryPerSession(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 100,000 sessions")
	}
	if len(smallSession(0)) < 140 || len(smallSession(0)) > 160 {
		t.Fatalf("small session is %d bytes, want about 150", len(smallSession(0)))
	}
	per := measurePerSession(100_000)
	t.Logf("%.1f bytes of heap per session (43-byte id, %d-byte Data included)", per, len(smallSession(0)))
	if per > 300 {
		t.Errorf("%.1f bytes per session, want at most 300", per)
	}
}

func BenchmarkMemoryPerSession(b *testing.B) {
	var per float64
	for b.Loop() {
		per = measurePerSession(100_000)
	}
	b.ReportMetric(per, "bytes/session")
}

func benchStore(b *testing.B, n int) (*memstore.Store, []string) {
	s := memstore.New(memstore.Options{SweepInterval: -1})
	b.Cleanup(func() { s.Close() })
	ids := make([]string, n)
	exp := time.Now().Add(time.Hour)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench-%043d", i)
		s.Set(ctx, ids[i], store.Record{Data: smallSession(i), Expires: exp})
	}
	return s, ids
}

func BenchmarkGet(b *testing.B) {
	s, ids := benchStore(b, 10000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Get(ctx, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkGetParallel(b *testing.B) {
	s, ids := benchStore(b, 10000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(ids))
		for pb.Next() {
			if _, err := s.Get(ctx, ids[i%len(ids)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkSet(b *testing.B) {
	s, ids := benchStore(b, 10000)
	data := smallSession(1)
	exp := time.Now().Add(time.Hour)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Set(ctx, ids[i%len(ids)], store.Record{Data: data, Expires: exp}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkSetNew(b *testing.B) {
	ids := make([]string, 1<<20)
	for i := range ids {
		ids[i] = fmt.Sprintf("new-%043d", i)
	}
	data := smallSession(1)
	exp := time.Now().Add(time.Hour)
	s := memstore.New(memstore.Options{SweepInterval: -1})
	defer s.Close()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id := ids[i%len(ids)]
		if i%len(ids) == len(ids)-1 {
			s.Delete(ctx, id)
		}
		if err := s.Set(ctx, id, store.Record{Data: data, Expires: exp}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkUpdate(b *testing.B) {
	s, ids := benchStore(b, 10000)
	data := smallSession(2)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		err := s.Update(ctx, ids[i%len(ids)], func(cur store.Record, found bool) (store.Record, bool, error) {
			return store.Record{Data: data, Expires: cur.Expires}, found, nil
		})
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkTouch(b *testing.B) {
	s, ids := benchStore(b, 10000)
	exp := time.Now().Add(2 * time.Hour)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Touch(ctx, ids[i%len(ids)], exp); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
