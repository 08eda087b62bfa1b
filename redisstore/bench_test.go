package redisstore_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/internal/storecheck"
	"github.com/galleta-go/galleta/internal/testredis"
	"github.com/galleta-go/galleta/redisstore"
	"github.com/galleta-go/galleta/store"
)

// Benchmarks of the store's calls against the machine's Redis (REDIS_URL)
// and the package's cluster, for figures, not pass/fail:
//
//	go test -run='^$' -bench=. -benchmem ./redisstore
//
// Each op is one call; "Parallel" ones spread over GOMAXPROCS goroutines
// on distinct sessions. The session is ~200 bytes of express-session JSON.

var benchData = []byte(`{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"__galleta":{"created":1795648796836},"user":"ann","cart":[1,2,3],"visits":42,"flash":{}}`)

func benchStore(b *testing.B, client redis.UniversalClient) *redisstore.Store {
	s, err := redisstore.New(client, redisstore.Options{Prefix: testredis.Prefix(b, client), Logger: storecheck.Quiet})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func benchIDs(b *testing.B, s *redisstore.Store, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench%038d", i)
		if err := s.Set(ctx, ids[i], store.Record{Data: benchData, Expires: time.Now().Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	return ids
}

func benchSuite(b *testing.B, client redis.UniversalClient) {
	s := benchStore(b, client)
	ids := benchIDs(b, s, 1024)
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
			if err := s.Set(ctx, ids[i%len(ids)], store.Record{Data: benchData, Expires: exp}); err != nil {
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
		return store.Record{Data: benchData, Expires: exp}, true, nil
	}
	b.Run("Update", func(b *testing.B) { // read, then compare-and-set: two round trips
		for i := 0; b.Loop(); i++ {
			if err := s.Update(ctx, ids[i%len(ids)], write); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("UpdateFrom", func(b *testing.B) { // the Manager's commit: one round trip
		seen := store.Record{Data: benchData, Expires: exp}
		for i := 0; b.Loop(); i++ {
			if err := s.UpdateFrom(ctx, ids[i%len(ids)], seen, write); err != nil {
				b.Fatal(err)
			}
		}
	})
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
		seen := store.Record{Data: benchData, Expires: exp}
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

func BenchmarkStore(b *testing.B) { benchSuite(b, testredis.Client(b)) }

func BenchmarkStoreCluster(b *testing.B) {
	c := testredis.SharedCluster(b).Client()
	b.Cleanup(func() { c.Close() })
	benchSuite(b, c)
}

// BenchmarkManager is one request through the Manager on this store: load
// (Get) and commit of an Incr (UpdateFrom), the path of a real app.
func BenchmarkManager(b *testing.B) {
	c := testredis.Client(b)
	s := benchStore(b, c)
	m, err := galleta.New(galleta.Options{Secrets: []string{"0123456789abcdef0123456789abcdef"}, Store: s, Logger: storecheck.Quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		galleta.FromRequest(r).Incr("n", 1)
	}))
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
