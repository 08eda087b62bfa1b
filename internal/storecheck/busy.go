package storecheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/galleta-go/galleta/store"
)

// Optimistic is a store with the Manager's one-round-trip commit.
type Optimistic interface {
	store.Store
	store.OptimisticUpdater
}

// BusySession checks that overlapping updates of one session in one
// process are batched: 32 goroutines each increment session id's counter
// 20 times through UpdateFrom from one stale seen record; every fn must
// see the one before, nothing may be lost, and far fewer than one unit of
// sent (commands, round trips: what sent counts) per update may reach
// the backend.
func BusySession(t *testing.T, s Optimistic, id string, sent func() int64, unit string) {
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	if err := s.Set(ctx, id, store.Record{Data: []byte(`{"n":0}`), Expires: exp}); err != nil {
		t.Fatal(err)
	}
	seen, err := s.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 32, 20
	before := sent()
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				err := s.UpdateFrom(ctx, id, seen, func(cur store.Record, found bool) (store.Record, bool, error) {
					if !found {
						return store.Record{}, false, errors.New("session gone")
					}
					var v struct{ N int }
					if err := json.Unmarshal(cur.Data, &v); err != nil {
						return store.Record{}, false, err
					}
					return store.Record{Data: fmt.Appendf(nil, `{"n":%d}`, v.N+1), Expires: exp}, true, nil
				})
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	n := sent() - before
	rec, err := s.Get(ctx, id)
	if err != nil || string(rec.Data) != fmt.Sprintf(`{"n":%d}`, goroutines*each) {
		t.Fatalf("after %d updates: %q, %v", goroutines*each, rec.Data, err)
	}
	if n > goroutines*each/2 {
		t.Fatalf("%d updates of one session cost %d %s; batching should need far fewer than one each", goroutines*each, n, unit)
	}
	t.Logf("%d updates, %d %s", goroutines*each, n, unit)
}
