package storecheck

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/store"
)

// BenchData is the session the benchmarks write: ~200 bytes of
// express-session JSON.
var BenchData = []byte(`{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"__galleta":{"created":1795648796836},"user":"ann","cart":[1,2,3],"visits":42,"flash":{}}`)

// Benched is a store with every call BenchStore measures.
type Benched interface {
	store.Store
	store.Updater
	store.OptimisticUpdater
}

// BenchIDs stores n sessions holding BenchData for an hour and returns
// their ids ("bench" and 38 digits).
func BenchIDs(b *testing.B, s store.Store, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench%038d", i)
		if err := s.Set(context.Background(), ids[i], store.Record{Data: BenchData, Expires: time.Now().Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	return ids
}

// BenchStore benchmarks s's calls on 1,024 sessions, one call an op:
// Get, Set, Touch, Update, UpdateFrom, then more (a store's own
// sub-benchmarks, given the ids and the expiry every write sets; nil for
// none), then GetParallel and UpdateFromParallel, spread over GOMAXPROCS
// goroutines on distinct sessions.
func BenchStore(b *testing.B, s Benched, more func(b *testing.B, ids []string, exp time.Time)) {
	ctx := context.Background()
	ids := BenchIDs(b, s, 1024)
	exp := time.Now().Add(time.Hour)
	b.Run("Get", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := s.Get(ctx, ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Set", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := s.Set(ctx, ids[i%len(ids)], store.Record{Data: BenchData, Expires: exp}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Touch", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := s.Touch(ctx, ids[i%len(ids)], exp.Add(time.Duration(i)*time.Millisecond)); err != nil {
				b.Fatal(err)
			}
		}
	})
	write := func(cur store.Record, found bool) (store.Record, bool, error) {
		return store.Record{Data: BenchData, Expires: exp}, true, nil
	}
	b.Run("Update", func(b *testing.B) { // read, then compare-and-set: two round trips
		for i := 0; b.Loop(); i++ {
			if err := s.Update(ctx, ids[i%len(ids)], write); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("UpdateFrom", func(b *testing.B) { // the Manager's commit: one round trip
		seen := store.Record{Data: BenchData, Expires: exp}
		for i := 0; b.Loop(); i++ {
			if err := s.UpdateFrom(ctx, ids[i%len(ids)], seen, write); err != nil {
				b.Fatal(err)
			}
		}
	})
	if more != nil {
		more(b, ids, exp)
	}
	b.Run("GetParallel", func(b *testing.B) {
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Get(ctx, ids[int(next.Add(1))%len(ids)]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("UpdateFromParallel", func(b *testing.B) {
		var next atomic.Int64
		seen := store.Record{Data: BenchData, Expires: exp}
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.UpdateFrom(ctx, ids[int(next.Add(1))%len(ids)], seen, write); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// IncrHandler is a Manager on s (secret Secret, the default cookie) whose
// handler increments "n"; the Manager is closed when the benchmark ends.
func IncrHandler(b *testing.B, s store.Store) http.Handler {
	m, err := galleta.New(galleta.Options{Secrets: []string{Secret}, Store: s, Logger: Quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := galleta.FromRequest(r).Incr("n", 1); err != nil {
			http.Error(w, err.Error(), 500)
		}
	}))
}

// BenchManager benchmarks one request through the Manager on s: load
// (Get) and commit of an Incr (UpdateFrom), the path of a real app.
func BenchManager(b *testing.B, s store.Store) {
	h := IncrHandler(b, s)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/", nil))
	cookie, _, _ := strings.Cut(w.Header().Get("Set-Cookie"), ";")
	b.Run("Incr", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := httptest.NewRequest("POST", "/", nil)
			r.Header.Set("Cookie", cookie)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != 200 {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
		}
	})
}
