package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls cond until it holds, failing after five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling a condition, not an assertion
	}
}

// Ops queued while a batch runs form the next batch, run once each, in
// order, one batch of a key at a time, and each caller gets its own Err.
func TestBatchesInOrder(t *testing.T) {
	var g Group[int, struct{}]
	release := make(chan struct{})
	var (
		mu      sync.Mutex
		batches [][]int
		running atomic.Int32
	)
	run := func(_ string, batch []*Op[int], _ *struct{}) {
		if running.Add(1) != 1 {
			t.Error("two batches of one key ran at once")
		}
		defer running.Add(-1)
		var ids []int
		for _, o := range batch {
			ids = append(ids, o.Payload)
			if o.Payload%2 == 1 {
				o.Err = fmt.Errorf("odd %d", o.Payload)
			}
		}
		mu.Lock()
		batches = append(batches, ids)
		first := len(batches) == 1
		mu.Unlock()
		if first {
			<-release
		}
	}
	errs := make([]error, 33)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = g.Do(t.Context(), "k", &Op[int]{Payload: 0}, Plain(run)) })
	waitFor(t, "the first batch", func() bool { mu.Lock(); defer mu.Unlock(); return len(batches) == 1 })
	for i := 1; i <= 32; i++ {
		wg.Go(func() { errs[i] = g.Do(t.Context(), "k", &Op[int]{Payload: i}, Plain(run)) })
		waitFor(t, "op queued", func() bool { return g.Waiting("k") == i }) // keeps the order known
	}
	close(release)
	wg.Wait()
	if len(batches) != 2 || len(batches[1]) != 32 {
		t.Fatalf("batches %v, want [0] then the 32 queued behind it", batches)
	}
	for i, id := range batches[1] {
		if id != i+1 {
			t.Fatalf("second batch %v is not in queue order", batches[1])
		}
	}
	for i, err := range errs {
		if (i%2 == 1) != (err != nil) {
			t.Errorf("op %d: Err %v", i, err)
		}
	}
	if n := g.Waiting("k"); n != 0 || len(g.queues) != 0 {
		t.Fatalf("after all ops: %d waiting, %d queues kept", n, len(g.queues))
	}
}

// An op whose context ends while it waits is dropped: Do returns the
// context's error and the op is never run.
func TestAbandoned(t *testing.T) {
	var g Group[string, struct{}]
	release := make(chan struct{})
	started := make(chan struct{})
	var ran []string
	run := func(_ string, batch []*Op[string], _ *struct{}) {
		for _, o := range batch {
			ran = append(ran, o.Payload)
		}
		if batch[0].Payload == "leader" {
			close(started)
			<-release
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { g.Do(t.Context(), "k", &Op[string]{Payload: "leader"}, Plain(run)) })
	<-started
	ctx, cancel := context.WithCancel(t.Context())
	gone := make(chan error)
	go func() { gone <- g.Do(ctx, "k", &Op[string]{Payload: "gone"}, Plain(run)) }()
	waitFor(t, "op queued", func() bool { return g.Waiting("k") == 1 })
	wg.Go(func() { g.Do(t.Context(), "k", &Op[string]{Payload: "kept"}, Plain(run)) })
	waitFor(t, "op queued", func() bool { return g.Waiting("k") == 2 })
	cancel()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned op: %v, want context.Canceled", err)
	}
	close(release)
	wg.Wait()
	if fmt.Sprint(ran) != "[leader kept]" {
		t.Fatalf("ran %v, want the leader and the kept op only", ran)
	}
}

// Keys do not wait for each other.
func TestKeysIndependent(t *testing.T) {
	var g Group[int, struct{}]
	block := make(chan struct{})
	started := make(chan struct{})
	go g.Do(t.Context(), "slow", &Op[int]{}, func(string, []*Op[int], *struct{}) func() { close(started); <-block; return nil })
	<-started
	done := make(chan struct{})
	go func() {
		g.Do(t.Context(), "fast", &Op[int]{}, func(string, []*Op[int], *struct{}) func() { return nil })
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("an op of another key waited for a blocked batch")
	}
	close(block)
}

// A key's carry passes from batch to batch while the key is busy and
// starts from zero once its queue has emptied.
func TestCarry(t *testing.T) {
	var g Group[int, int]
	release := make(chan struct{})
	started := make(chan struct{})
	var seen []int
	run := func(_ string, batch []*Op[int], carry *int) {
		seen = append(seen, *carry)
		*carry += len(batch)
		if batch[0].Payload == 0 {
			close(started)
			<-release
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { g.Do(t.Context(), "k", &Op[int]{Payload: 0}, Plain(run)) })
	<-started
	for i := 1; i <= 3; i++ {
		wg.Go(func() { g.Do(t.Context(), "k", &Op[int]{Payload: i}, Plain(run)) })
	}
	waitFor(t, "three ops queued", func() bool { return g.Waiting("k") == 3 })
	close(release)
	wg.Wait()
	g.Do(t.Context(), "k", &Op[int]{Payload: 9}, Plain(run))
	if fmt.Sprint(seen) != "[0 1 0]" {
		t.Fatalf("carries seen %v, want [0 1 0]: the second batch sees the first's, a new queue starts at zero", seen)
	}
}

// A batch's finishing step runs after the key went to the next batch: the
// next batch runs while it does, and the first batch's callers are
// answered only when it is done, with what it set.
func TestFinishOverlapsNextBatch(t *testing.T) {
	var g Group[string, struct{}]
	startedA := make(chan struct{})
	release := make(chan struct{}) // lets batch a's run return
	finishing := make(chan struct{})
	flush := make(chan struct{}) // lets batch a's finishing step end
	ranB := make(chan struct{})
	run := func(_ string, batch []*Op[string], _ *struct{}) func() {
		switch batch[0].Payload {
		case "a":
			close(startedA)
			<-release
			return func() {
				close(finishing)
				<-flush
				batch[0].Err = errors.New("flush failed")
			}
		case "b":
			close(ranB)
		}
		return nil
	}
	errA, errB := make(chan error, 1), make(chan error, 1)
	go func() { errA <- g.Do(t.Context(), "k", &Op[string]{Payload: "a"}, run) }()
	<-startedA
	go func() { errB <- g.Do(t.Context(), "k", &Op[string]{Payload: "b"}, run) }()
	waitFor(t, "b queued", func() bool { return g.Waiting("k") == 1 })
	close(release)
	<-finishing
	select {
	case <-ranB:
	case <-time.After(10 * time.Second):
		t.Fatal("b's batch did not run while a's finishing step did")
	}
	if err := <-errB; err != nil {
		t.Fatalf("b: %v", err)
	}
	select {
	case err := <-errA:
		t.Fatalf("a answered (%v) before its finishing step ended", err)
	default:
	}
	close(flush)
	if err := <-errA; err == nil || err.Error() != "flush failed" {
		t.Fatalf("a: %v, want the finishing step's error", err)
	}
}
