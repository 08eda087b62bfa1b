package redisstore_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/galleta-go/galleta/internal/storecheck"
	"github.com/galleta-go/galleta/internal/testredis"
	"github.com/galleta-go/galleta/redisstore"
)

// Benchmarks of the store's calls against the machine's Redis (REDIS_URL)
// and the package's cluster, for figures, not pass/fail:
//
//	go test -run='^$' -bench=. -benchmem ./redisstore
//
// Each op is one call; "Parallel" ones spread over GOMAXPROCS goroutines
// on distinct sessions. The session is ~200 bytes of express-session JSON.

func benchStore(b *testing.B, client redis.UniversalClient) *redisstore.Store {
	s, err := redisstore.New(client, redisstore.Options{Prefix: testredis.Prefix(b, client), Logger: storecheck.Quiet})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkStore(b *testing.B) { storecheck.BenchStore(b, benchStore(b, testredis.Client(b)), nil) }

func BenchmarkStoreCluster(b *testing.B) {
	c := testredis.SharedCluster(b).Client()
	b.Cleanup(func() { c.Close() })
	storecheck.BenchStore(b, benchStore(b, c), nil)
}

// BenchmarkManager is one request through the Manager on this store: load
// (Get) and commit of an Incr (UpdateFrom), the path of a real app.
func BenchmarkManager(b *testing.B) { storecheck.BenchManager(b, benchStore(b, testredis.Client(b))) }
