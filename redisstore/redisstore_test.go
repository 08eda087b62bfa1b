package redisstore_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/galleta-go/galleta/internal/storecheck"
	"github.com/galleta-go/galleta/internal/testredis"
	"github.com/galleta-go/galleta/redisstore"
	"github.com/galleta-go/galleta/store"
	"github.com/galleta-go/galleta/store/storetest"
)

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; the fault tests cause thousands.
	redis.SetLogger(discardLogger{})
	code := m.Run()
	testredis.StopShared()
	os.Exit(code)
}

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}

// newStore returns a NewFunc for stores on client, each under a fresh
// prefix: storetest compares counts as deltas, which holds only if another
// subtest's sessions do not expire when this subtest advances its clock.
func newStore(client redis.UniversalClient) storetest.NewFunc {
	return func(t *testing.T, now func() time.Time) store.Store {
		s, err := redisstore.New(client, redisstore.Options{Prefix: testredis.Prefix(t, client), Now: now, Logger: storecheck.Quiet})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func clusterClient(t *testing.T) *redis.ClusterClient {
	c := testredis.SharedCluster(t).Client()
	t.Cleanup(func() { c.Close() })
	return c
}

// storetest.Run on the machine's Redis (REDIS_URL).
func TestConformance(t *testing.T) {
	storetest.Run(t, newStore(testredis.Client(t)))
}

// storetest.Run on a three-primary Redis Cluster started for the package.
func TestConformanceCluster(t *testing.T) {
	storetest.Run(t, newStore(clusterClient(t)))
}

// Two stores on two clients of one Redis.
func TestShared(t *testing.T) { runShared(t, testredis.Client(t), testredis.Client(t)) }

// Two stores on two cluster clients of one cluster.
func TestSharedCluster(t *testing.T) { runShared(t, clusterClient(t), clusterClient(t)) }

// runShared runs storetest.RunShared on stores alternating between c1 and
// c2, under one prefix.
func runShared(t *testing.T, c1, c2 redis.UniversalClient) {
	prefix := testredis.Prefix(t, c1)
	clients := []redis.UniversalClient{c1, c2}
	n := 0
	storetest.RunShared(t, func(t *testing.T, now func() time.Time) store.Store {
		s, err := redisstore.New(clients[n%2], redisstore.Options{Prefix: prefix, Now: now, Logger: storecheck.Quiet})
		n++
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
