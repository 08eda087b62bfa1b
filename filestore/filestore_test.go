package filestore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/galleta-go/galleta/store"
	"github.com/galleta-go/galleta/store/storetest"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestConformance(t *testing.T) {
	for _, d := range []struct {
		name string
		o    Options
	}{
		{"sync", Options{}},
		{"nosync", Options{Durability: SyncNone}},
		{"encrypted", Options{EncryptionKeys: [][]byte{bytes.Repeat([]byte{7}, 32)}}},
	} {
		t.Run(d.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
				o := d.o
				o.Dir, o.Now, o.Logger, o.ReapInterval = t.TempDir(), now, quiet(), -1
				s, err := New(o)
				if err != nil {
					t.Fatal(err)
				}
				return s
			})
		})
	}
}

// newTest opens a store on a temp dir with a manual clock.
func newTest(t *testing.T, o Options) (*Store, *storetest.Clock) {
	t.Helper()
	c := storetest.NewClock(time.Now().Truncate(time.Millisecond))
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	o.Now, o.ReapInterval = c.Now, -1
	if o.Logger == nil {
		o.Logger = quiet()
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, c
}

const id1 = "NliONGT-j0K42qnn8ZTsQFxAzwiaoKLm"

var ctx = context.Background()

func sess(user string) []byte {
	return []byte(`{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"user":"` + user + `"}`)
}

func TestFileLayoutIsNodes(t *testing.T) {
	s, c := newTest(t, Options{})
	exp := c.Now().Add(time.Hour)
	if err := s.Set(ctx, id1, store.Record{Data: sess("ann"), Expires: exp}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(s.dir, id1+".json")
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatalf("file is not JSON: %s", raw)
	}
	// Node's rule: __lastAccess + (originalMaxAge || ttl) is the expiry.
	if la := int64(obj["__lastAccess"].(float64)); la+time.Hour.Milliseconds() != exp.UnixMilli() {
		t.Fatalf("__lastAccess %d + ttl != expiry %d", la, exp.UnixMilli())
	}
	if obj["user"] != "ann" {
		t.Fatalf("file %s", raw)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
	}
	if !fi.ModTime().Truncate(time.Millisecond).Equal(exp) || !stamped(fi) {
		t.Errorf("mtime %v (stamped %v), want the expiry %v with galleta's stamp", fi.ModTime(), stamped(fi), exp)
	}
	sub := filepath.Join(t.TempDir(), "new", "sessions")
	s2, _ := newTest(t, Options{Dir: sub})
	if di, err := os.Stat(s2.dir); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("created dir mode %v err %v, want 0700", di.Mode().Perm(), err)
	}
	// With a max age, Node's rule uses it.
	data := []byte(`{"cookie":{"originalMaxAge":60000,"expires":"2026-11-25T23:20:36.194Z","httpOnly":true,"path":"/"},"n":1}`)
	exp = c.Now().Add(30 * time.Second) // capped by an absolute deadline
	s.Set(ctx, id1, store.Record{Data: data, Expires: exp})
	raw, _ = os.ReadFile(p)
	json.Unmarshal(raw, &obj)
	if la := int64(obj["__lastAccess"].(float64)); la+60000 != exp.UnixMilli() {
		t.Fatalf("__lastAccess %d + 60000 != %d", la, exp.UnixMilli())
	}
}

func TestNodeWrittenFileExpiresByNodesRule(t *testing.T) {
	s, c := newTest(t, Options{})
	p := filepath.Join(s.dir, id1+".json")
	last := c.Now().Add(-10 * time.Minute).UnixMilli()
	node := `{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"n":1,"__lastAccess":` + itoa(last) + `}`
	os.WriteFile(p, []byte(node), 0o600)
	old := c.Now().Add(-10 * time.Minute)
	os.Chtimes(p, old, old)
	rec, err := s.Get(ctx, id1)
	if err != nil {
		t.Fatalf("Node file with 50 minutes left: %v", err)
	}
	if want := time.UnixMilli(last).Add(time.Hour); !rec.Expires.Equal(want) {
		t.Fatalf("expires %v, want %v", rec.Expires, want)
	}
	c.Advance(50*time.Minute + time.Millisecond)
	if _, err := s.Get(ctx, id1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after Node's expiry: %v", err)
	}
	// Reap deletes it; the file was read because its mtime was past.
	if n, err := s.Reap(ctx); err != nil || n != 1 {
		t.Fatalf("Reap = %d, %v", n, err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("expired Node file still there")
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestTouchPatchesInPlace(t *testing.T) {
	s, c := newTest(t, Options{})
	exp := c.Now().Add(time.Hour)
	s.Set(ctx, id1, store.Record{Data: sess("ann"), Expires: exp})
	p := filepath.Join(s.dir, id1+".json")
	fiBefore, _ := os.Stat(p)
	inoBefore := inode(fiBefore)
	writes := s.writes.Load()
	c.Advance(10 * time.Minute)
	exp2 := c.Now().Add(time.Hour)
	if err := s.Touch(ctx, id1, exp2); err != nil {
		t.Fatal(err)
	}
	if s.writes.Load() != writes {
		t.Fatal("Touch rewrote the file")
	}
	fi, _ := os.Stat(p)
	if inode(fi) != inoBefore {
		t.Fatal("Touch replaced the file")
	}
	if !fi.ModTime().Truncate(time.Millisecond).Equal(exp2) || !stamped(fi) {
		t.Fatalf("mtime %v (stamped %v), want %v with galleta's stamp", fi.ModTime(), stamped(fi), exp2)
	}
	raw, _ := os.ReadFile(p)
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	if la := int64(obj["__lastAccess"].(float64)); la != c.Now().UnixMilli() {
		t.Fatalf("__lastAccess %d, want now %d (Node must see the touch)", la, c.Now().UnixMilli())
	}
	rec, err := s.Get(ctx, id1)
	if err != nil || !bytes.Equal(rec.Data, sess("ann")) || !rec.Expires.Equal(exp2) {
		t.Fatalf("after touch: %s %v %v", rec.Data, rec.Expires, err)
	}
}

func TestBadIDsTouchNothing(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "sessions")
	s, c := newTest(t, Options{Dir: dir})
	victim := filepath.Join(parent, "x.json")
	os.WriteFile(victim, []byte(`{"keep":true}`), 0o600)
	for _, id := range []string{"../x", "a/b", "..", ".", "a\x00b", `a\b`, "/abs", `C:\x`, strings.Repeat("a", 251), ""} {
		rec := store.Record{Data: sess("evil"), Expires: c.Now().Add(time.Hour)}
		for name, err := range map[string]error{
			"Set":    s.Set(ctx, id, rec),
			"Delete": s.Delete(ctx, id),
			"Touch":  s.Touch(ctx, id, rec.Expires),
			"Update": s.Update(ctx, id, func(store.Record, bool) (store.Record, bool, error) { return rec, true, nil }),
		} {
			if !errors.Is(err, store.ErrInvalidID) {
				t.Errorf("%s(%q) = %v, want ErrInvalidID", name, id, err)
			}
		}
		if _, err := s.Get(ctx, id); !errors.Is(err, store.ErrInvalidID) {
			t.Errorf("Get(%q) = %v", id, err)
		}
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != `{"keep":true}` {
		t.Fatal("a file outside the directory changed")
	}
	ents, _ := os.ReadDir(parent)
	if len(ents) != 2 {
		t.Fatalf("parent dir has %d entries, want 2", len(ents))
	}
}

func TestCorruptFilesQuarantined(t *testing.T) {
	logs := &bytes.Buffer{}
	var mu sync.Mutex
	s, c := newTest(t, Options{Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, logs}, nil))})
	cases := map[string][]byte{
		"empty":       {},
		"truncated":   []byte(`{"__lastAccess":1795648796836,"cookie":{"originalMaxAge":null,"exp`),
		"not json":    []byte("hello\x00world"),
		"array":       []byte(`[1,2,3]`),
		"wrong shape": []byte(`{"cookie":"not an object"}`),
		"bad access":  []byte(`{"cookie":{},"__lastAccess":"yesterday"}`),
	}
	i := 0
	for name, content := range cases {
		id := "corrupt" + string(rune('A'+i))
		i++
		p := filepath.Join(s.dir, id+".json")
		os.WriteFile(p, content, 0o600)
		future := c.Now().Add(time.Hour)
		os.Chtimes(p, future, future)
		for range 3 {
			if _, err := s.Get(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: Get = %v, want ErrNotFound", name, err)
			}
		}
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: file not moved aside", name)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(s.dir, corruptDir))
	if len(ents) != len(cases) {
		t.Fatalf("%d files in .corrupt, want %d", len(ents), len(cases))
	}
	mu.Lock()
	n := strings.Count(logs.String(), "corrupt session file moved aside")
	leaked := strings.Contains(logs.String(), "corrupt")
	mu.Unlock()
	if n != len(cases) || !leaked {
		t.Fatalf("%d log lines, want one per file", n)
	}
	// Wrong encryption key.
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	dir := t.TempDir()
	se, c2 := newTest(t, Options{Dir: dir, EncryptionKeys: [][]byte{k1}})
	se.Set(ctx, id1, store.Record{Data: sess("ann"), Expires: c2.Now().Add(time.Hour)})
	raw, _ := os.ReadFile(filepath.Join(dir, id1+".json"))
	if bytes.Contains(raw, []byte("ann")) {
		t.Fatal("encrypted file holds the plaintext")
	}
	rotated, _ := newTest(t, Options{Dir: dir, EncryptionKeys: [][]byte{k2, k1}})
	if _, err := rotated.Get(ctx, id1); err != nil {
		t.Fatalf("old key in the rotation list: %v", err)
	}
	wrong, _ := newTest(t, Options{Dir: dir, EncryptionKeys: [][]byte{k2}})
	if _, err := wrong.Get(ctx, id1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("wrong key: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, corruptDir)); len(ents) != 1 {
		t.Fatal("undecryptable file not moved aside")
	}
	// A file renamed to another id does not decrypt (the id is bound in).
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestTooLarge(t *testing.T) {
	s, c := newTest(t, Options{MaxSize: 1000})
	big := append([]byte(`{"x":"`), bytes.Repeat([]byte("a"), 1000)...)
	big = append(big, `"}`...)
	err := s.Set(ctx, id1, store.Record{Data: big, Expires: c.Now().Add(time.Hour)})
	if !errors.Is(err, store.ErrTooLarge) || !strings.Contains(err.Error(), "1000-byte limit") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.dir, id1+".json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("oversized session written")
	}
}

func TestNewFailsOnBadDirectory(t *testing.T) {
	parent := t.TempDir()
	file := filepath.Join(parent, "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := New(Options{Dir: filepath.Join(file, "sub"), Logger: quiet()}); err == nil || !strings.Contains(err.Error(), "create session directory") {
		t.Fatalf("dir under a file: %v", err)
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(parent, "ro")
		os.Mkdir(ro, 0o500)
		if _, err := New(Options{Dir: ro, Logger: quiet()}); err == nil || !strings.Contains(err.Error(), "not writable") {
			t.Fatalf("read-only dir: %v", err)
		}
	}
}

func TestStaleTempFilesRemovedAtOpen(t *testing.T) {
	dir := t.TempDir()
	s, _ := newTest(t, Options{Dir: dir})
	s.Close()
	for _, n := range []string{tempName(3), tempName(200)} {
		os.WriteFile(filepath.Join(dir, n), []byte("half a sess"), 0o600)
	}
	newTest(t, Options{Dir: dir})
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			t.Fatalf("temp file %s survived New", e.Name())
		}
	}
}

// Group commit: 32 concurrent updates of one session while a write is in
// flight cost two writes: the one in flight and one for the 31 queued.
func TestGroupCommit(t *testing.T) {
	s, c := newTest(t, Options{})
	exp := c.Now().Add(time.Hour)
	s.Set(ctx, id1, store.Record{Data: []byte(`{"n":0}`), Expires: exp})
	release := make(chan struct{})
	first := make(chan struct{})
	var once sync.Once
	s.testHookBeforeWrite = func() {
		once.Do(func() { close(first); <-release })
	}
	before := s.writes.Load()
	var wg sync.WaitGroup
	incr := func() {
		defer wg.Done()
		err := s.Update(ctx, id1, func(cur store.Record, found bool) (store.Record, bool, error) {
			var v struct{ N int }
			json.Unmarshal(cur.Data, &v)
			return store.Record{Data: []byte(`{"n":` + itoa(int64(v.N+1)) + `}`), Expires: exp}, true, nil
		})
		if err != nil {
			t.Error(err)
		}
	}
	wg.Add(1)
	go incr()
	<-first
	for range 31 {
		wg.Add(1)
		go incr()
	}
	// Wait until all 31 are queued behind the blocked leader.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := s.group.Waiting(id1)
		if n == 31 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond) // polling a condition, not an assertion
	}
	close(release)
	wg.Wait()
	rec, _ := s.Get(ctx, id1)
	if string(rec.Data) != `{"n":32}` {
		t.Fatalf("final %s, want n=32", rec.Data)
	}
	if w := s.writes.Load() - before; w != 2 {
		t.Fatalf("32 concurrent updates cost %d writes, want 2", w)
	}
}

// A batch's directory fsync overlaps the next batch of the session: while
// the first update's fsync of the directory hangs, the second update's
// file is written and renamed; neither is answered before a directory
// fsync that began after its rename has ended.
func TestDirectorySyncOverlapsNextBatch(t *testing.T) {
	s, c := newTest(t, Options{})
	exp := c.Now().Add(time.Hour)
	if err := s.Set(ctx, id1, store.Record{Data: []byte(`{"n":0}`), Expires: exp}); err != nil {
		t.Fatal(err)
	}
	syncing := make(chan struct{})
	flush := make(chan struct{})
	var once sync.Once
	s.dsync.testHook = func() { once.Do(func() { close(syncing); <-flush }) }
	incr := func(done chan<- error) {
		done <- s.Update(ctx, id1, func(cur store.Record, found bool) (store.Record, bool, error) {
			var v struct{ N int }
			json.Unmarshal(cur.Data, &v)
			return store.Record{Data: []byte(`{"n":` + itoa(int64(v.N+1)) + `}`), Expires: exp}, true, nil
		})
	}
	first, second := make(chan error, 1), make(chan error, 1)
	go incr(first)
	<-syncing // the first update's file is renamed; its directory fsync hangs
	go incr(second)
	// The second batch writes while the first's fsync hangs: its value
	// shows on disk though neither update has been answered.
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec, err := s.Get(ctx, id1)
		if err == nil && string(rec.Data) == `{"n":2}` {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second update was not written while the first's directory fsync ran (file holds %s, %v)", rec.Data, err)
		}
		time.Sleep(time.Millisecond) // polling a condition, not an assertion
	}
	select {
	case err := <-first:
		t.Fatalf("the first update was answered (%v) before its directory fsync ended", err)
	case err := <-second:
		t.Fatalf("the second update was answered (%v) before a directory fsync after its rename", err)
	default:
	}
	close(flush)
	for i, ch := range []chan error{first, second} {
		if err := <-ch; err != nil {
			t.Fatalf("update %d: %v", i+1, err)
		}
	}
}

func TestCloseStopsReaperAndIsIdempotent(t *testing.T) {
	s, err := New(Options{Dir: t.TempDir(), ReapInterval: time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, id1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
}

// The reaper decides galleta's files by their stamp and a stat: an expired
// stamped file is deleted without being read (garbage content proves it:
// a read would quarantine it instead), a touched one stays, and a file
// without the stamp is read and judged by Node's rule.
func TestReapByStamp(t *testing.T) {
	s, c := newTest(t, Options{})
	live, expired, touched := "liveAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "expiredAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "touchedAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	for _, id := range []string{live, expired, touched} {
		if err := s.Set(ctx, id, store.Record{Data: sess(id[:4]), Expires: c.Now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	s.Set(ctx, live, store.Record{Data: sess("live"), Expires: c.Now().Add(time.Hour)})
	// Garbage inside the expired file, stamp kept.
	p := filepath.Join(s.dir, expired+".json")
	fi, _ := os.Stat(p)
	at, _ := atime(fi)
	os.WriteFile(p, []byte("not json at all"), 0o600)
	os.Chtimes(p, at, fi.ModTime())
	// A Node file: no stamp, mtime in the past, __lastAccess recent.
	node := filepath.Join(s.dir, "nodeAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.json")
	os.WriteFile(node, []byte(`{"cookie":{"originalMaxAge":null},"__lastAccess":`+itoa(c.Now().Add(time.Minute).UnixMilli())+`}`), 0o600)
	past := c.Now().Add(-time.Hour)
	os.Chtimes(node, past, past)

	c.Advance(2 * time.Minute)
	if err := s.Touch(ctx, touched, c.Now().Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("touch of an expired session: %v", err)
	}
	n, err := s.Reap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("reaped %d, want 2 (the expired and the untouched one)", n)
	}
	for id, want := range map[string]bool{live: true, expired: false, touched: false} {
		_, err := os.Stat(filepath.Join(s.dir, id+".json"))
		if (err == nil) != want {
			t.Errorf("%s: exists=%v, want %v", id[:7], err == nil, want)
		}
	}
	if _, err := os.Stat(node); err != nil {
		t.Errorf("Node file live by Node's rule was reaped")
	}
	if ents, _ := os.ReadDir(filepath.Join(s.dir, corruptDir)); len(ents) != 0 {
		t.Fatalf("the reaper read the stamped expired file (it was quarantined)")
	}
}

// A touch finds Node's window wherever "cookie" is in the record, even
// past the first bytes of a large file.
func TestTouchLargeRecordCookieLast(t *testing.T) {
	s, c := newTest(t, Options{})
	data := []byte(`{"user":"ann","pad":"` + strings.Repeat("x", 2000) + `","cookie":{"originalMaxAge":60000,"expires":null,"httpOnly":true,"path":"/"}}`)
	if err := s.Set(ctx, id1, store.Record{Data: data, Expires: c.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	c.Advance(10 * time.Second)
	exp := c.Now().Add(time.Minute)
	if err := s.Touch(ctx, id1, exp); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	raw, _ := os.ReadFile(filepath.Join(s.dir, id1+".json"))
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	if la := int64(obj["__lastAccess"].(float64)); la+60000 != exp.UnixMilli() {
		t.Fatalf("__lastAccess %d + 60000 != %d", la, exp.UnixMilli())
	}
}

func TestNoCreateAndReadOnly(t *testing.T) {
	ctx := t.Context()
	missing := filepath.Join(t.TempDir(), "typo")
	for _, o := range []Options{{Dir: missing, NoCreate: true}, {Dir: missing, ReadOnly: true}} {
		o.Logger = quiet()
		if s, err := New(o); err == nil {
			s.Close()
			t.Fatalf("New(%+v) opened a missing directory", o)
		} else if !strings.Contains(err.Error(), "nothing was created") {
			t.Errorf("error %q does not say nothing was created", err)
		}
		if _, err := os.Lstat(missing); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("New with NoCreate/ReadOnly created %s (lstat: %v)", missing, err)
		}
	}

	// A store written by a normal store, then opened read-only.
	w, c := newTest(t, Options{})
	if err := w.Set(ctx, "good", store.Record{Data: sess("ann"), Expires: c.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.dir, "bad.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := c.Now().Add(-time.Minute) // an mtime in the past: the file is read, not counted by its stat
	if err := os.Chtimes(filepath.Join(w.dir, "bad.json"), old, old); err != nil {
		t.Fatal(err)
	}
	before := dirNames(t, w.dir)
	ro, err := New(Options{Dir: w.dir, ReadOnly: true, Now: c.Now, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if rec, err := ro.Get(ctx, "good"); err != nil || !bytes.Equal(rec.Data, sess("ann")) {
		t.Fatalf("read-only Get = %q, %v", rec.Data, err)
	}
	if _, err := ro.Get(ctx, "bad"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("read-only Get of a corrupt file = %v, want ErrNotFound", err)
	}
	if n, err := ro.Count(ctx); err != nil || n != 1 {
		t.Fatalf("read-only Count = %d, %v; want 1", n, err)
	}
	for name, err := range map[string]error{
		"Set":    ro.Set(ctx, "x", store.Record{Data: sess("x"), Expires: c.Now().Add(time.Hour)}),
		"Delete": ro.Delete(ctx, "good"),
		"Touch":  ro.Touch(ctx, "good", c.Now().Add(2*time.Hour)),
		"Update": ro.Update(ctx, "good", func(cur store.Record, found bool) (store.Record, bool, error) { return cur, true, nil }),
	} {
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("read-only %s = %v, want ErrReadOnly", name, err)
		}
	}
	if _, err := ro.Reap(ctx); !errors.Is(err, ErrReadOnly) {
		t.Errorf("read-only Reap = %v, want ErrReadOnly", err)
	}
	if after := dirNames(t, w.dir); !slices.Equal(before, after) {
		t.Fatalf("a read-only store changed the directory: before %q, after %q", before, after)
	}
}

// dirNames lists a directory's entries, recursively, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		names = append(names, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// Two bad files of one session moved aside at the same instant of the
// store's clock are both kept: the second does not replace the first.
func TestQuarantineKeepsEachFile(t *testing.T) {
	s, c := newTest(t, Options{})
	p := filepath.Join(s.dir, id1+".json")
	future := c.Now().Add(time.Hour)
	for _, content := range []string{"first bad", "second bad"} {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, future, future)
		if _, err := s.Get(ctx, id1); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get of %q = %v, want ErrNotFound", content, err)
		}
	}
	var kept []string
	ents, _ := os.ReadDir(filepath.Join(s.dir, corruptDir))
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(s.dir, corruptDir, e.Name()))
		kept = append(kept, string(b))
	}
	slices.Sort(kept)
	if want := []string{"first bad", "second bad"}; !slices.Equal(kept, want) {
		t.Fatalf(".corrupt holds %q, want %q", kept, want)
	}
}
