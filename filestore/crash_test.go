package filestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/galleta-go/galleta/store"
)

// The crash loop (research §4 crashloop, §7 item 17): a child writes
// sessions and prints "ack <id> <v>" after each write that returned nil;
// the parent SIGKILLs it at a random moment, reopens the directory and
// checks that no temporary file survives New, that no file is torn, and
// that every acknowledged write is still there.

const (
	crashIDCount   = 20
	crashChildLife = 10 * time.Second // a child stops writing on its own after this
)

// crashData is the record of version v: a session-shaped JSON object whose
// pad is derived from v, so a record mixing two versions is detected.
func crashData(v int) []byte {
	return []byte(`{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"v":` +
		strconv.Itoa(v) + `,"pad":"` + crashPad(v) + `"}`)
}

func crashPad(v int) string {
	h := sha256.Sum256([]byte("galleta-crash-" + strconv.Itoa(v)))
	return strings.Repeat(hex.EncodeToString(h[:]), 5) // 320 bytes
}

// crashParse returns the version of a crashData record and checks its pad.
func crashParse(data []byte) (int, error) {
	var r struct {
		V   *int   `json:"v"`
		Pad string `json:"pad"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return 0, fmt.Errorf("record is not JSON: %v", err)
	}
	if r.V == nil {
		return 0, fmt.Errorf("record has no v")
	}
	if r.Pad != crashPad(*r.V) {
		return *r.V, fmt.Errorf("pad does not match v=%d (content of two versions mixed)", *r.V)
	}
	return *r.V, nil
}

func crashIDs() []string {
	ids := make([]string, crashIDCount)
	for i := range ids {
		ids[i] = fmt.Sprintf("crash-session-%02d-Xq9Lr2", i)
	}
	return ids
}

// childCrashWriter is the writer child: GALLETA_CRASH_DIR, GALLETA_CRASH_SYNC
// ("all" or "none"). It learns each id's stored version, prints "ready",
// then two goroutines (each owning half of the ids) write increasing
// versions with Set and Update until crashChildLife passes or it is killed.
func childCrashWriter() error {
	dir := os.Getenv("GALLETA_CRASH_DIR")
	if dir == "" {
		return errors.New("GALLETA_CRASH_DIR is not set")
	}
	o := Options{Dir: dir, ReapInterval: -1, Logger: childLogger()}
	if os.Getenv("GALLETA_CRASH_SYNC") == "none" {
		o.Durability = SyncNone
	}
	s, err := New(o)
	if err != nil {
		return err
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), crashChildLife)
	defer cancel()
	ids := crashIDs()
	vs := make([]int, len(ids))
	for i, id := range ids {
		rec, err := s.Get(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("get %s: %w", id, err)
		}
		if vs[i], err = crashParse(rec.Data); err != nil {
			return fmt.Errorf("stored %s: %w", id, err)
		}
	}
	if err := childLine("ready"); err != nil {
		return err
	}
	var (
		wg      sync.WaitGroup
		errMu   sync.Mutex
		firstEr error
	)
	for g := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(g)))
			for n := 0; ctx.Err() == nil && n < 1_000_000; n++ {
				i := g + 2*(n%(len(ids)/2))
				id := ids[i]
				var v int
				var err error
				if rng.IntN(2) == 0 {
					v = vs[i] + 1
					err = s.Set(ctx, id, store.Record{Data: crashData(v), Expires: time.Now().Add(time.Hour)})
				} else {
					err = s.Update(ctx, id, func(cur store.Record, found bool) (store.Record, bool, error) {
						v = 1
						if found {
							old, err := crashParse(cur.Data)
							if err != nil {
								return store.Record{}, false, err
							}
							v = old + 1
						}
						return store.Record{Data: crashData(v), Expires: time.Now().Add(time.Hour)}, true, nil
					})
				}
				if err != nil {
					if ctx.Err() != nil {
						return // the child's life ended
					}
					errMu.Lock()
					if firstEr == nil {
						firstEr = fmt.Errorf("write %s v=%d: %w", id, v, err)
					}
					errMu.Unlock()
					cancel()
					return
				}
				vs[i] = v
				if err := childLine("ack %s %d", id, v); err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return firstEr
}

func TestCrashLoop(t *testing.T) {
	iters := 200
	if testing.Short() {
		iters = 20
	}
	if v := os.Getenv("GALLETA_CRASH_ITERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("GALLETA_CRASH_ITERS=%q is not a positive integer", v)
		}
		iters = n
	}
	dir := t.TempDir()
	ids := crashIDs()
	lastAck := map[string]int{}
	var (
		start          = time.Now()
		totalAcks      int
		acksBySync     [2]int
		tempsBefore    int
		itersWithTemps int
		maxTemps       int
		newerThanAck   int // ids whose stored v was above the last ack (write done, ack not printed)
		failedIters    int
		leftAfterNew   int
	)
	for it := range iters {
		mode, dur := "all", 0
		if it%2 == 1 {
			mode, dur = "none", 1
		}
		bad := false
		fail := func(format string, args ...any) {
			t.Helper()
			bad = true
			t.Errorf(format, args...)
		}
		c := startChild(t, "crashwriter", "GALLETA_CRASH_DIR="+dir, "GALLETA_CRASH_SYNC="+mode)
		if _, ok := c.waitLine("ready", 30*time.Second); !ok {
			c.kill()
			t.Fatalf("iteration %d: the writer never became ready: %s", it, c.describe())
		}
		delay := 5*time.Millisecond + rand.N(90*time.Millisecond)
		time.Sleep(delay)
		c.kill()
		if !strings.Contains(fmt.Sprint(c.waitErr), "killed") {
			fail("iteration %d (sync %s): the writer ended before it was killed: %s", it, mode, c.describe())
		}
		for _, line := range c.output() {
			f := strings.Fields(line)
			if len(f) != 3 || f[0] != "ack" {
				continue
			}
			v, err := strconv.Atoi(f[2])
			if err != nil {
				t.Fatalf("iteration %d: bad ack line %q", it, line)
			}
			if v <= lastAck[f[1]] {
				fail("iteration %d: ack %s v=%d after ack v=%d: versions must increase", it, f[1], v, lastAck[f[1]])
			}
			lastAck[f[1]] = v
			totalAcks++
			acksBySync[dur]++
		}

		// Before reopening: count leftover temporary files.
		temps := crashTempFiles(t, dir)
		tempsBefore += len(temps)
		if len(temps) > 0 {
			itersWithTemps++
		}
		maxTemps = max(maxTemps, len(temps))

		// (b) every session file is whole JSON, read raw before any Get
		// (a Get would move a corrupt file aside).
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".json") || e.IsDir() {
				continue
			}
			raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if len(raw) == 0 || !json.Valid(raw) {
				fail("iteration %d (sync %s, killed after %v): TORN FILE %s: %d bytes, not valid JSON: %q",
					it, mode, delay, e.Name(), len(raw), clipString(string(raw), 200))
			}
		}

		// (a) New removes every temporary file left by the killed writer.
		s, err := New(Options{Dir: dir, ReapInterval: -1, Logger: childLogger()})
		if err != nil {
			t.Fatalf("iteration %d: reopen: %v", it, err)
		}
		if left := crashTempFiles(t, dir); len(left) > 0 {
			leftAfterNew += len(left)
			fail("iteration %d (sync %s): LEFTOVER TEMP FILES after New: %v (found %d before New)", it, mode, left, len(temps))
		}

		// (c) acknowledged writes are durable, (d) content is not mixed.
		for _, id := range ids {
			want, acked := lastAck[id]
			rec, err := s.Get(context.Background(), id)
			if errors.Is(err, store.ErrNotFound) {
				if acked {
					fail("iteration %d (sync %s, killed after %v): LOST ACKNOWLEDGED WRITE: %s is gone, last ack v=%d", it, mode, delay, id, want)
				}
				continue
			}
			if err != nil {
				t.Fatalf("iteration %d: get %s: %v", it, id, err)
			}
			v, err := crashParse(rec.Data)
			if err != nil {
				fail("iteration %d (sync %s): %s: MIXED CONTENT: %v", it, mode, id, err)
				continue
			}
			if v < want {
				fail("iteration %d (sync %s, killed after %v): LOST ACKNOWLEDGED WRITE: %s has v=%d, last ack v=%d", it, mode, delay, id, v, want)
			}
			if v > want {
				newerThanAck++
			}
		}
		// A corrupt file seen by Get would have been moved aside.
		if q, _ := os.ReadDir(filepath.Join(dir, corruptDir)); len(q) > 0 {
			fail("iteration %d (sync %s): %d file(s) quarantined as corrupt in %s", it, mode, len(q), corruptDir)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if bad {
			failedIters++
		}
	}
	t.Logf("crash loop: %d iterations (%d SyncAll, %d SyncNone), %d failed; %d acknowledged writes (%d SyncAll, %d SyncNone); "+
		"%d temp files found before reopening in %d iterations (max %d), %d left after New; %d id checks found a write newer than its last ack; %v",
		iters, (iters+1)/2, iters/2, failedIters, totalAcks, acksBySync[0], acksBySync[1],
		tempsBefore, itersWithTemps, maxTemps, leftAfterNew, newerThanAck, time.Since(start).Round(time.Millisecond))
	if totalAcks == 0 {
		t.Errorf("no write was acknowledged in %d iterations: the test checked nothing", iters)
	}
}

// crashTempFiles lists the names in dir starting with ".tmp-".
func crashTempFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			out = append(out, e.Name())
		}
	}
	return out
}
