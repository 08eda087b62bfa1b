package storetest

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/galleta-go/galleta/store"
)

// RunShared checks what two stores on one backend (two processes, two
// clients, two connection pools) must guarantee each other: each call of
// newStore must return a new store on the SAME backend (same server, same
// key prefix or directory), which the suite closes when it implements
// io.Closer. Both stores get the same Clock.
//
//	func TestShared(t *testing.T) {
//		storetest.RunShared(t, func(t *testing.T, now func() time.Time) store.Store {
//			return mystore.New(sharedBackend, mystore.Options{Now: now})
//		})
//	}
//
// The subtests: what one store writes, the other reads with the same
// Expires; a counter incremented through Update by many goroutines, half on
// each store, ends exactly right; a session deleted through one store is
// never brought back through the other (Touch, Update, and UpdateFrom from
// a record read before the delete); an UpdateFrom whose seen record the
// other store has replaced sees the replacement.
func RunShared(t *testing.T, newStore NewFunc) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, [2]store.Store, *Clock)
	}{
		{"CrossRead", testCrossRead},
		{"CounterTwoStores", testCounterTwoStores},
		{"NoResurrectionAcross", testNoResurrectionAcross},
		{"OptimisticAcross", testOptimisticAcross},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := NewClock(time.Now())
			var pair [2]store.Store
			for i := range pair {
				s := newStore(t, clock.Now)
				if s == nil {
					t.Fatal("NewFunc returned a nil store")
				}
				if c, ok := s.(io.Closer); ok {
					t.Cleanup(func() {
						if err := c.Close(); err != nil {
							t.Errorf("Close: %v", err)
						}
					})
				}
				pair[i] = s
			}
			tc.fn(t, pair, clock)
		})
	}
}

func testCrossRead(t *testing.T, s [2]store.Store, c *Clock) {
	id := newID(t)
	exp := c.Now().Add(2*time.Hour + 17*time.Millisecond)
	mustSet(t, s[0], id, store.Record{Data: sessionData("a"), Expires: exp})
	wantRecord(t, s[1], id, sessionData("a"), exp)
	exp2 := exp.Add(time.Hour)
	if err := s[1].Touch(t.Context(), id, exp2); err != nil {
		t.Fatalf("Touch through the second store: %v", err)
	}
	wantRecord(t, s[0], id, sessionData("a"), exp2)
	c.Advance(3*time.Hour + time.Second)
	wantNotFound(t, s[0], id)
	wantNotFound(t, s[1], id)
}

func testCounterTwoStores(t *testing.T, s [2]store.Store, c *Clock) {
	u := [2]store.Updater{updater(t, s[0]), updater(t, s[1])}
	id := newID(t)
	exp := c.Now().Add(time.Hour)
	mustSet(t, s[0], id, store.Record{Data: counterData(0), Expires: exp})
	const iters = 20
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for range iters {
				err := u[g%2].Update(t.Context(), id, func(cur store.Record, found bool) (store.Record, bool, error) {
					if !found {
						return store.Record{}, false, errors.New("the counter record is gone")
					}
					n, err := counterValue(cur.Data)
					if err != nil {
						return store.Record{}, false, err
					}
					return store.Record{Data: counterData(n + 1), Expires: exp}, true, nil
				})
				if err != nil {
					t.Errorf("goroutine %d (store %d): Update: %v", g, g%2, err)
					return
				}
			}
		})
	}
	wg.Wait()
	wantRecord(t, s[0], id, counterData(goroutines*iters), exp)
	wantRecord(t, s[1], id, counterData(goroutines*iters), exp)
}

func testNoResurrectionAcross(t *testing.T, s [2]store.Store, c *Clock) {
	id := newID(t)
	exp := c.Now().Add(time.Hour)
	mustSet(t, s[0], id, store.Record{Data: sessionData("gone"), Expires: exp})
	seen, err := s[0].Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	seen.Data = bytes.Clone(seen.Data)
	if err := s[1].Delete(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if err := s[0].Touch(t.Context(), id, exp.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Touch after the other store's Delete = %v, want ErrNotFound", err)
	}
	noWrite := func(what string) store.UpdateFunc {
		return func(cur store.Record, found bool) (store.Record, bool, error) {
			if found {
				t.Errorf("%s after the other store's Delete: fn saw found=true, Data %q", what, clip(cur.Data))
			}
			return store.Record{}, false, nil
		}
	}
	if u, ok := s[0].(store.Updater); ok {
		if err := u.Update(t.Context(), id, noWrite("Update")); err != nil {
			t.Errorf("Update after the other store's Delete: %v", err)
		}
	}
	if o, ok := s[0].(store.OptimisticUpdater); ok {
		// The Manager's update function: it writes on top of what it is
		// shown, and nothing when the session is gone. Shown seen first, it
		// writes; the store must not let that write land on a deleted key.
		calls := 0
		err := o.UpdateFrom(t.Context(), id, seen, func(cur store.Record, found bool) (store.Record, bool, error) {
			calls++
			if !found {
				return store.Record{}, false, nil
			}
			return store.Record{Data: sessionData("resurrected"), Expires: exp.Add(time.Hour)}, true, nil
		})
		if err != nil {
			t.Errorf("UpdateFrom after the other store's Delete: %v", err)
		}
		if calls < 2 {
			t.Errorf("UpdateFrom after the other store's Delete called fn %d times; want a second call that shows the session gone", calls)
		}
	}
	wantNotFound(t, s[0], id)
	wantNotFound(t, s[1], id)
}

func testOptimisticAcross(t *testing.T, s [2]store.Store, c *Clock) {
	o0, ok0 := s[0].(store.OptimisticUpdater)
	if !ok0 {
		t.Skipf("%T does not implement store.OptimisticUpdater", s[0])
	}
	id := newID(t)
	exp := c.Now().Add(time.Hour)
	mustSet(t, s[0], id, store.Record{Data: counterData(1), Expires: exp})
	seen, err := s[0].Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	seen.Data = bytes.Clone(seen.Data)
	// The other store replaces the record after seen was read.
	mustSet(t, s[1], id, store.Record{Data: counterData(10), Expires: exp})
	var shown []int
	err = o0.UpdateFrom(t.Context(), id, seen, func(cur store.Record, found bool) (store.Record, bool, error) {
		if !found {
			return store.Record{}, false, errors.New("the record is gone")
		}
		n, err := counterValue(cur.Data)
		if err != nil {
			return store.Record{}, false, err
		}
		shown = append(shown, n)
		return store.Record{Data: counterData(n + 1), Expires: exp}, true, nil
	})
	if err != nil {
		t.Fatalf("UpdateFrom: %v", err)
	}
	if len(shown) == 0 || shown[len(shown)-1] != 10 {
		t.Errorf("UpdateFrom showed fn counters %v; want the last to be 10, the other store's write", shown)
	}
	wantRecord(t, s[1], id, counterData(11), exp)
}
