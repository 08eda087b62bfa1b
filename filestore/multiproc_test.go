package filestore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/galleta-go/galleta/store"
)

// Cross-process updates (research §5): Update is documented as an atomic
// read-modify-write across processes sharing the directory (a flock on
// <dir>/.locks/NN). Two writers each increment counters; no increment may
// be lost.

const (
	mpUpdates    = 300 // K: updates per writer
	mpGoroutines = 4
	mpTimeout    = 60 * time.Second
)

var mpIDs = []string{"mp-counter-A-7fQ2", "mp-counter-B-7fQ2", "mp-counter-C-7fQ2", "mp-counter-D-7fQ2"}

const mpPrefix = `{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"n":`

// mpData and mpValue are storetest's counter record.
func mpData(n int) []byte { return []byte(mpPrefix + strconv.Itoa(n) + `}`) }

func mpValue(data []byte) (int, error) {
	s, ok := strings.CutPrefix(string(data), mpPrefix)
	if !ok || !strings.HasSuffix(s, "}") {
		return 0, fmt.Errorf("stored counter record %q is not what the test wrote", clipString(string(data), 200))
	}
	return strconv.Atoi(strings.TrimSuffix(s, "}"))
}

// mpTarget is the id index of goroutine g's j-th update: round-robin over
// the ids, shifted by goroutine so that goroutines of one process collide
// too.
func mpTarget(g, j int) int { return (g + j) % len(mpIDs) }

// mpAimed is how many increments one writer aims at each id.
func mpAimed() []int {
	aimed := make([]int, len(mpIDs))
	for g := range mpGoroutines {
		for j := range mpPerGoroutine(g) {
			aimed[mpTarget(g, j)]++
		}
	}
	return aimed
}

// mpPerGoroutine splits K updates over the goroutines.
func mpPerGoroutine(g int) int {
	n := mpUpdates / mpGoroutines
	if g < mpUpdates%mpGoroutines {
		n++
	}
	return n
}

// mpRun performs one writer's K updates with mpGoroutines goroutines.
func mpRun(ctx context.Context, s *Store) error {
	exp := time.Now().Add(time.Hour)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for g := range mpGoroutines {
		wg.Go(func() {
			for j := range mpPerGoroutine(g) {
				id := mpIDs[mpTarget(g, j)]
				err := s.Update(ctx, id, func(cur store.Record, found bool) (store.Record, bool, error) {
					n := 0
					if found {
						var err error
						if n, err = mpValue(cur.Data); err != nil {
							return store.Record{}, false, err
						}
					}
					return store.Record{Data: mpData(n + 1), Expires: exp}, true, nil
				})
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("goroutine %d update %d of %s: %w", g, j, id, err)
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// mpStripes describes which lock file each id uses in this process.
func mpStripes(s *Store) string {
	var b strings.Builder
	for i, id := range mpIDs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%02x", id, s.stripeOf(id))
	}
	return b.String()
}

// childCounter is the counter child: GALLETA_MP_DIR. It opens the store,
// prints "ready <stripes>", waits for "go" on stdin, performs its K
// updates and prints "done".
func childCounter() error {
	dir := os.Getenv("GALLETA_MP_DIR")
	if dir == "" {
		return errors.New("GALLETA_MP_DIR is not set")
	}
	s, err := New(Options{Dir: dir, ReapInterval: -1, Logger: childLogger()})
	if err != nil {
		return err
	}
	defer s.Close()
	if err := childLine("ready %s", mpStripes(s)); err != nil {
		return err
	}
	gotGo := make(chan error, 1)
	go func() {
		var line string
		_, err := fmt.Fscanln(os.Stdin, &line)
		if err == nil && line != "go" {
			err = fmt.Errorf("expected go on stdin, got %q", line)
		}
		gotGo <- err
	}()
	select {
	case err := <-gotGo:
		if err != nil {
			return err
		}
	case <-time.After(mpTimeout):
		return errors.New("no go on stdin")
	}
	ctx, cancel := context.WithTimeout(context.Background(), mpTimeout)
	defer cancel()
	start := time.Now()
	if err := mpRun(ctx, s); err != nil {
		return err
	}
	return childLine("done %v", time.Since(start))
}

// mpStartCounter starts a counter child on dir and waits until it is
// ready; it returns the child and its stripes line.
func mpStartCounter(t *testing.T, dir string) (*child, string) {
	t.Helper()
	c := startChild(t, "counter", "GALLETA_MP_DIR="+dir)
	line, ok := c.waitLine("ready", 30*time.Second)
	if !ok {
		c.kill()
		t.Fatalf("counter child never became ready: %s", c.describe())
	}
	return c, strings.TrimPrefix(line, "ready ")
}

func mpGo(t *testing.T, c *child) {
	t.Helper()
	if _, err := c.stdin.Write([]byte("go\n")); err != nil {
		t.Fatalf("tell child to go: %v", err)
	}
}

// mpWait waits for the child to end on its own within the deadline and
// fails the test unless it succeeded.
func mpWait(t *testing.T, c *child, deadline <-chan time.Time) {
	t.Helper()
	select {
	case <-c.exited:
	case <-deadline:
		c.kill()
		t.Fatalf("counter child did not finish within %v: %s", mpTimeout, c.describe())
	}
	if c.waitErr != nil {
		t.Fatalf("counter child failed: %s", c.describe())
	}
	if _, ok := c.waitLine("done", time.Second); !ok {
		t.Fatalf("counter child did not report done: %s", c.describe())
	}
}

// mpCheck verifies the counters after two writers of K updates each.
func mpCheck(t *testing.T, dir string, writers int, stripes map[string]string) {
	t.Helper()
	s, err := New(Options{Dir: dir, ReapInterval: -1, Logger: childLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	aimed := mpAimed()
	sum, lost := 0, 0
	var detail []string
	for i, id := range mpIDs {
		n := 0
		rec, err := s.Get(context.Background(), id)
		if err == nil {
			if n, err = mpValue(rec.Data); err != nil {
				t.Fatal(err)
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		want := writers * aimed[i]
		sum += n
		lost += want - n
		detail = append(detail, fmt.Sprintf("%s: n=%d want %d", id, n, want))
		if n != want {
			t.Errorf("LOST UPDATE: %s has n=%d, want %d (%d increments by each of %d writers)", id, n, want, aimed[i], writers)
		}
	}
	if sum != writers*mpUpdates {
		var sp []string
		for who, s := range stripes {
			sp = append(sp, who+": "+s)
		}
		t.Errorf("LOST UPDATES across processes: sum of n = %d, want %d (%d lost); %s; lock file (stripe) of each id per process: %s",
			sum, writers*mpUpdates, lost, strings.Join(detail, "; "), strings.Join(sp, " | "))
	}
}

func TestTwoProcessesLoseNoUpdate(t *testing.T) {
	t.Run("TwoChildren", func(t *testing.T) {
		dir := t.TempDir()
		a, stripesA := mpStartCounter(t, dir)
		b, stripesB := mpStartCounter(t, dir)
		start := time.Now()
		mpGo(t, a)
		mpGo(t, b)
		deadline := time.After(mpTimeout)
		mpWait(t, a, deadline)
		mpWait(t, b, deadline)
		t.Logf("two processes × %d updates (%d goroutines each) over %d ids: %v", mpUpdates, mpGoroutines, len(mpIDs), time.Since(start).Round(time.Millisecond))
		mpCheck(t, dir, 2, map[string]string{"child A": stripesA, "child B": stripesB})
	})
	t.Run("ParentAndChild", func(t *testing.T) {
		dir := t.TempDir()
		s, err := New(Options{Dir: dir, ReapInterval: -1, Logger: childLogger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		c, stripesC := mpStartCounter(t, dir)
		start := time.Now()
		mpGo(t, c)
		ctx, cancel := context.WithTimeout(context.Background(), mpTimeout)
		defer cancel()
		if err := mpRun(ctx, s); err != nil {
			t.Fatalf("parent's updates: %v", err)
		}
		mpWait(t, c, time.After(mpTimeout))
		t.Logf("parent process + child process × %d updates (%d goroutines each) over %d ids: %v", mpUpdates, mpGoroutines, len(mpIDs), time.Since(start).Round(time.Millisecond))
		mpCheck(t, dir, 2, map[string]string{"parent": mpStripes(s), "child": stripesC})
	})
}
