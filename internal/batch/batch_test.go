package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// waitQueued waits until n calls wait for the next batch.
func waitQueued[T any](t *testing.T, b *Batcher[T], n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.Queued() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued after 10 s, want %d", b.Queued(), n)
		}
		time.Sleep(time.Millisecond) // polling a condition, not an assertion
	}
}

// A call alone runs at once; calls that arrive while it runs wait and run
// together, at most Max per batch, one per key, in the order they came.
func TestBatches(t *testing.T) {
	b := &Batcher[string]{Max: 3, Key: func(s string) string { return s[:1] }}
	var mu sync.Mutex
	var batches []string
	first := make(chan struct{})
	release := make(chan struct{})
	run := func(batch []*Req[string]) {
		var items []string
		for _, r := range batch {
			items = append(items, r.Item)
			r.Err = errors.New("result of " + r.Item)
		}
		mu.Lock()
		batches = append(batches, fmt.Sprint(items))
		n := len(batches)
		mu.Unlock()
		if n == 1 {
			close(first)
			<-release
		}
	}
	var wg sync.WaitGroup
	errs := map[string]error{}
	do := func(item string) {
		defer wg.Done()
		err := b.Do(context.Background(), item, run)
		mu.Lock()
		errs[item] = err
		mu.Unlock()
	}
	wg.Add(1)
	go do("a0")
	<-first
	for i, item := range []string{"b1", "c1", "b2", "d1", "e1"} {
		wg.Add(1)
		go do(item)
		waitQueued(t, b, i+1)
	}
	close(release)
	wg.Wait()
	// b2 waits for the batch after b1's; the first batch after a0 takes
	// three (Max) distinct keys.
	if got := fmt.Sprint(batches); got != "[[a0] [b1 c1 d1] [b2 e1]]" {
		t.Fatalf("batches %s", got)
	}
	for item, err := range errs {
		if err == nil || err.Error() != "result of "+item {
			t.Errorf("%s got %v", item, err)
		}
	}
	if b.running || b.Queued() != 0 {
		t.Fatalf("after the calls: running %v, %d queued", b.running, b.Queued())
	}
}

// A call whose context ends while it waits leaves the queue unrun, and
// the batcher goes on with the others.
func TestCancelledWhileQueued(t *testing.T) {
	b := &Batcher[string]{Max: 10, Key: func(s string) string { return s }}
	first := make(chan struct{})
	release := make(chan struct{})
	var mu sync.Mutex
	var ran []string
	run := func(batch []*Req[string]) {
		mu.Lock()
		for _, r := range batch {
			ran = append(ran, r.Item)
		}
		n := len(ran)
		mu.Unlock()
		if n == 1 {
			close(first)
			<-release
		}
	}
	done := make(chan error, 3)
	go func() { done <- b.Do(context.Background(), "a", run) }()
	<-first
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- b.Do(ctx, "x", run) }()
	waitQueued(t, b, 1)
	go func() { done <- b.Do(context.Background(), "c", run) }()
	waitQueued(t, b, 2)
	cancel()
	waitQueued(t, b, 1)
	close(release)
	var cancelled int
	for range 3 {
		if err := <-done; errors.Is(err, context.Canceled) {
			cancelled++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(ran) != "[a c]" || cancelled != 1 {
		t.Fatalf("ran %v, %d cancelled; want [a c] and 1", ran, cancelled)
	}
}

// Many callers at once: every call runs exactly once and gets its own
// answer (run with -race).
func TestManyCallers(t *testing.T) {
	b := &Batcher[int]{Max: 8, Key: func(i int) string { return fmt.Sprint(i % 5) }}
	var mu sync.Mutex
	seen := map[int]int{}
	run := func(batch []*Req[int]) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range batch {
			seen[r.Item]++
			r.Err = fmt.Errorf("%d", r.Item)
		}
	}
	var wg sync.WaitGroup
	for i := range 500 {
		wg.Go(func() {
			if err := b.Do(context.Background(), i, run); err == nil || err.Error() != fmt.Sprint(i) {
				t.Errorf("call %d got %v", i, err)
			}
		})
	}
	wg.Wait()
	for i := range 500 {
		if seen[i] != 1 {
			t.Fatalf("call %d ran %d times", i, seen[i])
		}
	}
}

func TestContext(t *testing.T) {
	base := context.Background()
	early, c1 := context.WithTimeout(base, time.Minute)
	defer c1()
	late, c2 := context.WithTimeout(base, time.Hour)
	defer c2()
	ctx, cancel := Context([]*Req[int]{{Ctx: late}, {Ctx: base}, {Ctx: early}})
	defer cancel()
	want, _ := early.Deadline()
	if dl, ok := ctx.Deadline(); !ok || !dl.Equal(want) {
		t.Fatalf("deadline %v, %v; want the earliest, %v", dl, ok, want)
	}
	c2() // one caller goes away: the batch goes on
	if ctx.Err() != nil {
		t.Fatal("the batch's context ended with one caller's")
	}
	ctx2, cancel2 := Context([]*Req[int]{{Ctx: base}, {Ctx: base}})
	defer cancel2()
	if _, ok := ctx2.Deadline(); ok {
		t.Fatal("no caller has a deadline: the batch should have none")
	}
}

// A call handed the running role just as its context ends (between the
// handOff that picks it and the wake-up) hands the role on: the batcher
// is never left running with nobody to run it. Before the fix, the call
// saw its done still open, left as if never taken, and every later call
// queued until its own deadline: the stores' fault tests' "first request
// after the fault ended: 503".
func TestRoleHandedAsDeadlineEnds(t *testing.T) {
	b := &Batcher[string]{Max: 10}
	first := make(chan struct{})
	release := make(chan struct{})
	run := func(batch []*Req[string]) {
		if batch[0].Item == "a" {
			close(first)
			<-release
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	waiter := make(chan error, 1)
	b.beforePass = func(next *Req[string]) {
		b.beforePass = nil // once
		cancel()
		if err := <-waiter; !errors.Is(err, context.Canceled) {
			t.Errorf("the waiter whose context ended got %v", err)
		}
	}
	leader := make(chan error, 1)
	go func() { leader <- b.Do(context.Background(), "a", run) }()
	<-first
	go func() { waiter <- b.Do(ctx, "x", run) }()
	waitQueued(t, b, 1)
	close(release)
	if err := <-leader; err != nil {
		t.Fatal(err)
	}
	// A fresh call must run at once, not wait for a role nobody holds.
	fresh, cancelFresh := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelFresh()
	if err := b.Do(fresh, "c", run); err != nil {
		t.Fatalf("a call after the handed role's caller left: %v (the role was dropped)", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running || len(b.queue) != 0 {
		t.Fatalf("after the calls: running %v, %d queued", b.running, len(b.queue))
	}
}
