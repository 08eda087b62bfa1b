package redisstore

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/galleta-go/galleta/internal/testredis"
	"github.com/galleta-go/galleta/store"
)

// On a Ring, a key's calls go to the lane of the shard that holds it (so
// a shard that is down holds up only its own keys), and the store works
// through it; a single server has one lane.
func TestLanesFollowTheRingsShards(t *testing.T) {
	ctx := context.Background()
	a, b := testredis.StartServer(t), testredis.StartServer(t)
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": a.Addr, "b": b.Addr}})
	t.Cleanup(func() { ring.Close() })
	s, err := New(ring, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	lanes := map[string]int{}
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	for i := range 32 {
		id := fmt.Sprintf("%043d", i)
		key := s.prefix + id
		shard, err := ring.GetShardClientForKey(key)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.nodeOf(ctx, key); got != shard.Options().Addr {
			t.Fatalf("key %s: lane %q, want its shard %q", key, got, shard.Options().Addr)
		}
		lanes[s.nodeOf(ctx, key)]++
		data := []byte(fmt.Sprintf(`{"i":%d}`, i))
		if err := s.Set(ctx, id, store.Record{Data: data, Expires: exp}); err != nil {
			t.Fatal(err)
		}
		if rec, err := s.Get(ctx, id); err != nil || string(rec.Data) != string(data) {
			t.Fatalf("session %d through the Ring: %s, %v", i, rec.Data, err)
		}
	}
	if len(lanes) != 2 {
		t.Fatalf("32 keys went to lanes %v, want both shards", lanes)
	}
	single, err := New(testredis.Client(t), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if got := single.nodeOf(ctx, "sess:x"); got != "" {
		t.Fatalf("a single server's lane is %q, want the one lane \"\"", got)
	}
}
