package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// ErrRedisTooOld is returned (wrapped) by New, and by every call, when
// Redis lacks PEXPIRETIME: the store needs Redis 7.0 or newer.
var ErrRedisTooOld = errors.New("redisstore: Redis 7.0 or newer is needed (the store reads expiries with PEXPIRETIME)")

// clockOffset is Redis's clock minus the store's, in milliseconds, measured
// once (successfully) and then fixed.
type clockOffset struct {
	ready atomic.Bool
	ms    atomic.Int64
	sem   chan struct{} // one slot, held while measuring (waits honour ctx)
}

// offset returns the clock offset, measuring it first if no measurement
// succeeded yet. The first successful measurement also checks
// maxmemory-policy.
func (s *Store) offset(ctx context.Context) (int64, error) {
	if s.clock.ready.Load() {
		return s.clock.ms.Load(), nil
	}
	select {
	case s.clock.sem <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-s.clock.sem }()
	if s.clock.ready.Load() {
		return s.clock.ms.Load(), nil
	}
	nodes, err := s.nodes(ctx)
	if err != nil {
		return 0, err
	}
	var (
		mu       sync.Mutex
		off      int64
		first    = true
		policies []string
	)
	err = eachNode(ctx, nodes, func(ctx context.Context, c redis.Cmdable) error {
		before := s.now().UnixMilli()
		t, err := c.Time(ctx).Result()
		if err != nil {
			return err
		}
		o := quantize((t.UnixMicro()+999)/1000 - before)
		// PEXPIRETIME (Redis 7.0) on a key that cannot exist (an invalid
		// id) proves the server can run the store's scripts.
		// (A cluster node may answer MOVED for it: that is fine.)
		if err := c.PExpireTime(ctx, s.prefix+".probe").Err(); err != nil && strings.Contains(strings.ToLower(err.Error()), "unknown command") {
			return fmt.Errorf("%w (PEXPIRETIME: %v)", ErrRedisTooOld, err)
		}
		// CONFIG is often forbidden on managed Redis: ignore its errors.
		pol, _ := c.ConfigGet(ctx, "maxmemory-policy").Result()
		mu.Lock()
		defer mu.Unlock()
		if first || o > off {
			off, first = o, false
		}
		if p := pol["maxmemory-policy"]; strings.HasPrefix(p, "allkeys-") {
			policies = append(policies, p)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if len(policies) > 0 {
		s.log.Warn("redisstore: Redis's maxmemory-policy is "+policies[0]+": when memory fills up Redis evicts any key, including live sessions, which signs users out without a trace; use volatile-lru, volatile-ttl or noeviction (sessions always have an expiry), or a Redis of their own",
			"maxmemory-policy", policies[0])
	}
	s.clock.ms.Store(off)
	s.clock.ready.Store(true)
	return off, nil
}

// quantize turns a measured difference of the clocks (Redis's minus the
// store's, in ms) into the offset: rounded to the nearest whole second,
// plus one second. TIME ran after before, so d is an upper bound of the
// true difference, and the offset is at least d + 500 ms: Redis never
// deletes a key before the store's clock says it expires. Rounding makes
// every store whose clock is within half a second of Redis's (every app
// host with NTP, and test clocks started at the real time) use the same
// offset, so what one writes, another reads back to the millisecond.
func quantize(d int64) int64 {
	q := d + 500
	if q < 0 {
		q -= 999 // floor division for negative differences
	}
	return q/1000*1000 + 1000
}

// nodes returns the clients of the primaries: every master of a cluster,
// every shard of a ring, else the client itself.
func (s *Store) nodes(ctx context.Context) ([]redis.Cmdable, error) {
	var (
		mu  sync.Mutex
		out []redis.Cmdable
	)
	add := func(_ context.Context, c *redis.Client) error {
		mu.Lock()
		out = append(out, c)
		mu.Unlock()
		return nil
	}
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		if err := c.ForEachMaster(ctx, add); err != nil {
			return nil, err
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("redisstore: the cluster has no primaries")
		}
	case *redis.Ring:
		if err := c.ForEachShard(ctx, add); err != nil {
			return nil, err
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("redisstore: the ring has no live shards")
		}
	default:
		out = append(out, s.client)
	}
	return out, nil
}

// eachNode calls fn on every node concurrently and returns the first error.
func eachNode(ctx context.Context, nodes []redis.Cmdable, fn func(context.Context, redis.Cmdable) error) error {
	if len(nodes) == 1 {
		return fn(ctx, nodes[0])
	}
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { errs[i] = fn(ctx, n) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
