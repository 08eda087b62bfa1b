package redisstore_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
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
	once           sync.Once
	mu             sync.Mutex
	pipelines      []int
}

func (h *holdHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (h *holdHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if strings.EqualFold(cmd.Name(), h.cmd) {
			h.once.Do(func() { close(h.first); <-h.release })
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
// SET held, 31 more wait and then go in one round trip, each stored with
// its own value and expiry; on a cluster the pipeline is split by node.
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
			exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
			errs := make([]error, 32)
			var wg sync.WaitGroup
			set := func(i int) {
				defer wg.Done()
				errs[i] = s.Set(ctx, id(i), store.Record{Data: []byte(fmt.Sprintf(`{"user":"u%d"}`, i)), Expires: exp.Add(time.Duration(i) * time.Second)})
			}
			wg.Add(1)
			go set(0)
			<-hook.first
			for i := 1; i < 32; i++ {
				wg.Add(1)
				go set(i)
			}
			storecheck.WaitQueued(t, func() int { return redisstore.QueuedSets(s) }, 31)
			close(hook.release)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("set %d: %v", i, err)
				}
			}
			total := 0
			for _, n := range hook.pipelines {
				total += n
			}
			if len(hook.pipelines) == 0 || total != 31 {
				t.Fatalf("pipelines carried %v SETs, want the 31 queued ones", hook.pipelines)
			}
			if c.name == "server" && len(hook.pipelines) != 1 {
				t.Fatalf("pipelines %v, want one of 31", hook.pipelines)
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
