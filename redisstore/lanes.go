package redisstore

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/galleta-go/galleta/internal/batch"
)

// lanes holds one batcher per Redis node. Batches run one at a time per
// batcher, and a pipeline answers when its slowest node does, so on a
// Redis Cluster or a Ring, one batcher for all keys would hold every
// session's reads and writes for the store timeout while one node is down.
// A call goes to the lane of the node that serves its key (as the client
// sees the cluster at that moment); a single server has one lane.
type lanes[T any] struct {
	max int
	key func(T) string

	one *batch.Batcher[T] // a single server's (node ""), without a lock

	mu sync.Mutex
	m  map[string]*batch.Batcher[T] // a Cluster's or Ring's node address → its batcher
}

func newLanes[T any](max int, key func(T) string) lanes[T] {
	return lanes[T]{max: max, key: key, one: &batch.Batcher[T]{Max: max, Key: key}}
}

// get returns node's batcher, made on first use. The map holds one entry
// per node address the client has named, a handful.
func (l *lanes[T]) get(node string) *batch.Batcher[T] {
	if node == "" {
		return l.one
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[node]
	if b == nil {
		if l.m == nil {
			l.m = map[string]*batch.Batcher[T]{}
		}
		b = &batch.Batcher[T]{Max: l.max, Key: l.key}
		l.m[node] = b
	}
	return b
}

// queued counts the calls waiting in every lane (tests).
func (l *lanes[T]) queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.one.Queued()
	for _, b := range l.m {
		n += b.Queued()
	}
	return n
}

// nodeOf names the node that serves key: its primary's address on a
// Cluster, its shard's on a Ring, "" for a single server (or when the
// client cannot tell yet: those calls share one lane, as before).
func (s *Store) nodeOf(ctx context.Context, key string) string {
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		if n, err := c.MasterForKey(ctx, key); err == nil {
			return n.Options().Addr
		}
	case *redis.Ring:
		if n, err := c.GetShardClientForKey(key); err == nil {
			return n.Options().Addr
		}
	}
	return ""
}
