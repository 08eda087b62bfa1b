package redisstore_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/galleta-go/galleta/internal/storecheck"
	"github.com/galleta-go/galleta/internal/testredis"
	"github.com/galleta-go/galleta/redisstore"
	"github.com/galleta-go/galleta/store"
)

// holdHook holds the first command named cmd until release, and records
// how many commands named cmd every pipeline carried.
type holdHook struct {
	cmd            string
	first, release chan struct{}
	taken          atomic.Bool // the first command named cmd was held
	mu             sync.Mutex
	pipelines      []int
}

func (h *holdHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (h *holdHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if strings.EqualFold(cmd.Name(), h.cmd) {
			if h.taken.CompareAndSwap(false, true) { // only the first waits (a sync.Once would hold every caller)
				close(h.first)
				<-h.release
			}
		}
		return next(ctx, cmd)
	}
}

func (h *holdHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		sets := 0
		for _, c := range cmds {
			if strings.EqualFold(c.Name(), h.cmd) {
				sets++
			}
		}
		if sets > 0 {
			h.mu.Lock()
			h.pipelines = append(h.pipelines, sets)
			h.mu.Unlock()
		}
		return next(ctx, cmds)
	}
}

// Sets of different sessions that overlap share one pipeline: with one
// SET held, the others wait and then go in one round trip, each stored
// with its own value and expiry. On a cluster, sets wait only for a batch
// of their own node (a node that hangs holds up nobody else's sessions):
// the other nodes' sets finish while the first is held, and the held
// node's go in one pipeline after it.
func TestOverlappingSetsSharePipeline(t *testing.T) {
	for _, c := range []struct {
		name   string
		client func(t *testing.T) redis.UniversalClient
	}{
		{"server", func(t *testing.T) redis.UniversalClient { return testredis.Client(t) }},
		{"cluster", func(t *testing.T) redis.UniversalClient { return clusterClient(t) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			client := c.client(t)
			hook := &holdHook{cmd: "set", first: make(chan struct{}), release: make(chan struct{})}
			client.AddHook(hook)
			prefix := testredis.Prefix(t, client)
			s, err := redisstore.New(client, redisstore.Options{Prefix: prefix, Logger: storecheck.Quiet})
			if err != nil {
				t.Fatal(err)
			}
			id := func(i int) string { return fmt.Sprintf("%s%03d", testID[:40], i) }
			// held[i]: set i goes to the node of set 0, the one held.
			node := func(i int) string { return "" } // a single server: one node
			if cc, ok := client.(*redis.ClusterClient); ok {
				node = func(i int) string {
					n, err := cc.MasterForKey(ctx, prefix+id(i))
					if err != nil {
						t.Fatal(err)
					}
					return n.Options().Addr
				}
			}
			var held [32]bool
			waiting := 0
			for i := range 32 {
				held[i] = node(i) == node(0)
				if held[i] && i > 0 {
					waiting++
				}
			}
			if waiting < 2 || (c.name == "cluster" && waiting == 31) {
				t.Fatalf("%d of the 31 sets share the held set's node: the ids do not test the batching", waiting)
			}
			exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
			errs := make([]error, 32)
			done := make([]chan struct{}, 32)
			set := func(i int) {
				defer close(done[i])
				errs[i] = s.Set(ctx, id(i), store.Record{Data: []byte(fmt.Sprintf(`{"user":"u%d"}`, i)), Expires: exp.Add(time.Duration(i) * time.Second)})
			}
			for i := range done {
				done[i] = make(chan struct{})
			}
			go set(0)
			<-hook.first
			for i := 1; i < 32; i++ {
				go set(i)
			}
			storecheck.WaitQueued(t, func() int { return redisstore.QueuedSets(s) }, waiting)
			// The other nodes' sets are done while the first is held.
			for i := 1; i < 32; i++ {
				if held[i] {
					continue
				}
				select {
				case <-done[i]:
				case <-time.After(10 * time.Second):
					t.Fatalf("set %d (another node) still waits 10 s after the held set of node 0 began", i)
				}
			}
			hook.mu.Lock()
			hook.pipelines = nil // from here on, the held node's batch alone
			hook.mu.Unlock()
			close(hook.release)
			for i := range done {
				<-done[i]
				if errs[i] != nil {
					t.Fatalf("set %d: %v", i, errs[i])
				}
			}
			if len(hook.pipelines) != 1 || hook.pipelines[0] != waiting {
				t.Fatalf("pipelines after the release carried %v SETs, want one of the %d queued ones", hook.pipelines, waiting)
			}
			for i := range 32 {
				rec, err := s.Get(ctx, id(i))
				if err != nil || string(rec.Data) != fmt.Sprintf(`{"user":"u%d"}`, i) || !rec.Expires.Equal(exp.Add(time.Duration(i)*time.Second)) {
					t.Fatalf("session %d: %s, %v, %v", i, rec.Data, rec.Expires, err)
				}
			}
		})
	}
}

// Gets that overlap share a pipeline, and Gets of one key share its read:
// with one read held, 31 Gets of one busy session wait and are answered by
// one EVALSHA, each with the record.
func TestOverlappingGetsShareARead(t *testing.T) {
	client := testredis.Client(t)
	hook := &holdHook{cmd: "evalsha", first: make(chan struct{}), release: make(chan struct{})}
	client.AddHook(hook)
	prefix := testredis.Prefix(t, client)
	s, err := redisstore.New(client, redisstore.Options{Prefix: prefix, Logger: storecheck.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	if err := s.Set(ctx, testID, store.Record{Data: data, Expires: exp}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	recs := make([]store.Record, 32)
	errs := make([]error, 32)
	get := func(i int) {
		defer wg.Done()
		recs[i], errs[i] = s.Get(ctx, testID)
	}
	wg.Add(1)
	go get(0)
	<-hook.first
	for i := 1; i < 32; i++ {
		wg.Add(1)
		go get(i)
	}
	deadline := time.Now().Add(10 * time.Second)
	for redisstore.QueuedReads(s) != 31 {
		if time.Now().After(deadline) {
			t.Fatalf("%d gets queued after 10 s, want 31", redisstore.QueuedReads(s))
		}
		time.Sleep(time.Millisecond) // polling a condition, not an assertion
	}
	close(hook.release)
	wg.Wait()
	for i := range 32 {
		if errs[i] != nil || string(recs[i].Data) != string(data) || !recs[i].Expires.Equal(exp) {
			t.Fatalf("get %d: %q, %v, %v", i, recs[i].Data, recs[i].Expires, errs[i])
		}
	}
	if fmt.Sprint(hook.pipelines) != "[1]" {
		t.Fatalf("pipelines carried %v reads, want one pipeline with one read for the 31 gets", hook.pipelines)
	}
}
