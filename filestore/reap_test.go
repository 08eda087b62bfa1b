package filestore

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// goroutineStacks returns the stacks of all goroutines.
func goroutineStacks() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// goroutineIn reports whether one goroutine's stack in stacks holds all
// the frames.
func goroutineIn(stacks string, frames ...string) bool {
	for _, g := range strings.Split(stacks, "\n\n") {
		all := true
		for _, f := range frames {
			all = all && strings.Contains(g, f)
		}
		if all {
			return true
		}
	}
	return false
}

// waitStacks polls the goroutine stacks until cond holds for them, and
// returns them; ok is false if it did not hold within 10s.
func waitStacks(cond func(stacks string) bool) (stacks string, ok bool) {
	for deadline := time.Now().Add(10 * time.Second); ; {
		stacks = goroutineStacks()
		if cond(stacks) {
			return stacks, true
		}
		if time.Now().After(deadline) {
			return stacks, false
		}
		time.Sleep(time.Millisecond) // polling a condition, not an assertion
	}
}

// The background reaper is stopped through a context made at New, which
// Close cancels: a tick starts no goroutine of its own, Close waits for a
// tick in progress, and the reaper's goroutine is gone after Close.
func TestReaperNoGoroutinePerTickAndCloseWaits(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Options{Dir: dir, ReapInterval: time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	// Hold the reaper inside a tick: a leftover temporary file of stripe 7
	// makes Reap take that stripe's lock, whose mutex the test holds.
	st := &s.stripes[7]
	st.mu.Lock()
	held := true
	defer func() {
		if held {
			st.mu.Unlock()
		}
		s.Close()
	}()
	if err := os.WriteFile(filepath.Join(dir, tempName(7)), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	stacks, ok := waitStacks(func(stacks string) bool {
		return goroutineIn(stacks, "filestore.(*Store).removeStaleTemps", "filestore.(*Store).lock(")
	})
	if !ok {
		t.Fatalf("the reaper never waited on the held stripe lock in 10s; goroutines:\n%s", stacks)
	}
	if strings.Contains(stacks, "filestore.(*Store).reaper.func") {
		t.Errorf("a tick of the reaper started a goroutine of its own:\n%s", stacks)
	}

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	// Close must wait for the reaper, which is still inside Reap.
	stacks, ok = waitStacks(func(stacks string) bool {
		if goroutineIn(stacks, "filestore.(*Store).Close", "sync.(*WaitGroup).Wait") {
			return true
		}
		select {
		case <-closed:
			return true
		default:
			return false
		}
	})
	select {
	case <-closed:
		t.Fatalf("Close returned while the reaper was still inside Reap")
	default:
	}
	if !ok {
		t.Fatalf("Close is not waiting for the reaper; goroutines:\n%s", stacks)
	}
	st.mu.Unlock()
	held = false
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if stacks, ok := waitStacks(func(stacks string) bool {
		return !strings.Contains(stacks, "filestore.(*Store).reaper")
	}); !ok {
		t.Fatalf("the reaper's goroutine is still there 10s after Close:\n%s", stacks)
	}
}
