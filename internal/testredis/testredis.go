// Package testredis gives tests a Redis: the machine's server (REDIS_URL)
// with a key prefix of their own, and Redis Clusters it starts from the
// machine's redis-server and redis-cli binaries on free loopback ports and
// stops again.
//
// Outside CI a missing backend skips the test with a message that says what
// is missing; with CI=true it fails the test (testenv.Missing).
package testredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/galleta-go/galleta/internal/testenv"
)

// DefaultURL is the Redis the tests use when REDIS_URL is not set.
const DefaultURL = "redis://127.0.0.1:6379/0"

// URL returns $REDIS_URL, or DefaultURL.
func URL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// Client returns a client for REDIS_URL (one server) with
// ContextTimeoutEnabled, closed when the test ends. It skips the test (fails
// with CI=true) when Redis does not answer PING within 2 seconds.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(URL())
	if err != nil {
		t.Fatalf("REDIS_URL %q: %v", URL(), err)
	}
	opt.ContextTimeoutEnabled = true
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		testenv.Missing(t, fmt.Sprintf("no Redis answers at REDIS_URL=%s (%v); start redis-server (7.0 or newer) or point REDIS_URL at one", URL(), err))
	}
	return c
}

// Prefix returns a fresh key prefix ("galleta-test:<random>:sess:") and
// deletes every key under it on every primary of c when the test ends, so
// runs and parallel tests sharing one Redis do not collide.
func Prefix(t testing.TB, c redis.UniversalClient) string {
	t.Helper()
	var b [8]byte
	rand.Read(b[:])
	p := "galleta-test:" + hex.EncodeToString(b[:]) + ":sess:"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := DeletePrefix(ctx, c, p); err != nil {
			t.Logf("testredis: clean up keys under %s: %v", p, err)
		}
	})
	return p
}

// DeletePrefix deletes every key that starts with prefix (which must hold
// no glob characters) on every primary of c, and returns how many.
func DeletePrefix(ctx context.Context, c redis.UniversalClient, prefix string) (int, error) {
	n := 0
	err := walkPrefix(ctx, c, prefix, func(key string) error {
		// One key per DEL: keys of a cluster node may be in different slots.
		d, err := c.Del(ctx, key).Result()
		n += int(d)
		return err
	})
	return n, err
}

// CountPrefix counts the keys that start with prefix on every primary of c.
func CountPrefix(ctx context.Context, c redis.UniversalClient, prefix string) (int, error) {
	n := 0
	err := walkPrefix(ctx, c, prefix, func(string) error { n++; return nil })
	return n, err
}

// walkPrefix calls fn with every key under prefix, primary by primary.
func walkPrefix(ctx context.Context, c redis.UniversalClient, prefix string, fn func(key string) error) error {
	var nodes []redis.Cmdable
	if cc, ok := c.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		if err := cc.ForEachMaster(ctx, func(_ context.Context, node *redis.Client) error {
			mu.Lock() // ForEachMaster runs these concurrently
			nodes = append(nodes, node)
			mu.Unlock()
			return nil
		}); err != nil {
			return err
		}
	} else {
		nodes = append(nodes, c)
	}
	for _, node := range nodes {
		iter := node.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			if err := fn(iter.Val()); err != nil {
				return err
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
	}
	return nil
}
