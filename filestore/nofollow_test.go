//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package filestore

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/galleta-go/galleta/store"
)

// Nothing outside the directory is ever opened, created or removed, and
// only regular files are sessions: a <id>.json that is a symbolic link, a
// FIFO or a directory is no session, is never followed, never blocks, and
// is moved aside to .corrupt/ (the link itself, not its target).

// outsideFile is a file outside the store's directory holding a live
// galleta session, so a store that followed a link to it would load it,
// patch its __lastAccess and move its mtime.
type outsideFile struct {
	path    string
	content []byte
	mtime   time.Time
}

func newOutsideFile(t *testing.T, now time.Time) *outsideFile {
	t.Helper()
	o := &outsideFile{
		path: filepath.Join(t.TempDir(), "elsewhere.json"),
		// Accessed 10 minutes ago, 50 minutes left: a touch to any other
		// expiry would change both the digits and the mtime.
		content: []byte(`{"__lastAccess":` + itoa(now.Add(-10*time.Minute).UnixMilli()) + `,"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"user":"root"}`),
		mtime:   now.Add(50 * time.Minute).Truncate(time.Second),
	}
	o.write(t)
	return o
}

func (o *outsideFile) write(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(o.path, o.content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(o.path, o.mtime, o.mtime); err != nil {
		t.Fatal(err)
	}
}

// check fails the test if the outside file's bytes or mtime changed, and
// then restores it, so the next operation is judged on its own.
func (o *outsideFile) check(t *testing.T, when string) {
	t.Helper()
	b, err := os.ReadFile(o.path)
	if err != nil {
		t.Errorf("%s: the file outside the directory is gone: %v", when, err)
		o.write(t)
		return
	}
	if !bytes.Equal(b, o.content) {
		t.Errorf("%s: THE FILE OUTSIDE THE DIRECTORY WAS WRITTEN: %q, was %q", when, b, o.content)
	}
	fi, err := os.Lstat(o.path)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(o.mtime) {
		t.Errorf("%s: the mtime of the file outside the directory moved: %v, was %v", when, fi.ModTime(), o.mtime)
	}
	if t.Failed() {
		o.write(t)
	}
}

// corruptEntries lists <dir>/.corrupt with each entry's type.
func corruptEntries(t *testing.T, dir string) map[string]os.FileMode {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, corruptDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	m := map[string]os.FileMode{}
	for _, e := range ents {
		m[e.Name()] = e.Type()
	}
	return m
}

// within runs f and fails the test if it has not returned after d (a
// store that blocks on a special file must fail the test, not hang CI).
// After a timeout, unblock (if not nil) is called to release f.
func within(t *testing.T, what string, d time.Duration, unblock func() func(), f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
		return
	case <-timer.C:
	}
	t.Errorf("%s did not return within %v: it blocks", what, d)
	if unblock != nil {
		release := unblock()
		defer release()
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still blocked 10s after it was released", what)
	}
}

// storeOps runs each of the store's methods once on id.
type storeOp struct {
	name string
	run  func(t *testing.T, s *Store, exp time.Time) // asserts the op's own result
}

func storeOps(id string) []storeOp {
	return []storeOp{
		{"Get", func(t *testing.T, s *Store, exp time.Time) {
			if rec, err := s.Get(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get = %q, %v; want ErrNotFound", rec.Data, err)
			}
		}},
		{"Touch", func(t *testing.T, s *Store, exp time.Time) {
			if err := s.Touch(ctx, id, exp); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Touch = %v, want ErrNotFound", err)
			}
		}},
		{"Update", func(t *testing.T, s *Store, exp time.Time) {
			called := false
			err := s.Update(ctx, id, func(cur store.Record, found bool) (store.Record, bool, error) {
				called = true
				if found {
					t.Errorf("Update saw a session %q", cur.Data)
				}
				return store.Record{}, false, nil
			})
			if err != nil || !called {
				t.Errorf("Update = %v (fn called: %v)", err, called)
			}
		}},
		{"Set", func(t *testing.T, s *Store, exp time.Time) {
			if err := s.Set(ctx, id, store.Record{Data: sess("new"), Expires: exp}); err != nil {
				t.Errorf("Set = %v", err)
				return
			}
			fi, err := os.Lstat(filepath.Join(s.dir, id+ext))
			if err != nil || !fi.Mode().IsRegular() {
				t.Errorf("after Set, %s.json is %v (%v), want a regular file", id, fi.Mode(), err)
			}
			if rec, err := s.Get(ctx, id); err != nil || !bytes.Equal(rec.Data, sess("new")) {
				t.Errorf("after Set, Get = %q, %v", rec.Data, err)
			}
		}},
		{"Delete", func(t *testing.T, s *Store, exp time.Time) {
			if err := s.Delete(ctx, id); err != nil {
				t.Errorf("Delete = %v", err)
			}
			if _, err := os.Lstat(filepath.Join(s.dir, id+ext)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("after Delete, %s.json is still there (%v)", id, err)
			}
		}},
		{"List", func(t *testing.T, s *Store, exp time.Time) {
			err := s.List(ctx, func(got string, rec store.Record) bool {
				if got == id {
					t.Errorf("List returned the special file as a session: %q", rec.Data)
				}
				return true
			})
			if err != nil {
				t.Errorf("List = %v", err)
			}
		}},
		{"Count", func(t *testing.T, s *Store, exp time.Time) {
			if n, err := s.Count(ctx); err != nil || n != 0 {
				t.Errorf("Count = %d, %v; want 0", n, err)
			}
		}},
		{"Reap", func(t *testing.T, s *Store, exp time.Time) {
			if n, err := s.Reap(ctx); err != nil || n != 0 {
				t.Errorf("Reap = %d, %v; want 0", n, err)
			}
		}},
	}
}

// replant removes whatever p is now and calls plant to make it again.
func replant(t *testing.T, p string, plant func(p string) error) {
	t.Helper()
	if err := os.RemoveAll(p); err != nil {
		t.Fatal(err)
	}
	if err := plant(p); err != nil {
		t.Fatal(err)
	}
}

func TestSymlinkSessionIsNotFollowed(t *testing.T) {
	const id = "linkAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	for _, target := range []string{"outside", "inside"} {
		t.Run(target, func(t *testing.T) {
			s, c := newTest(t, Options{})
			exp := c.Now().Add(time.Hour)
			o := newOutsideFile(t, c.Now())
			link := o.path
			if target == "inside" {
				// A link to another session file of the same directory:
				// still not a session (it would let one id load another's).
				const other = "otherAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
				if err := os.Rename(o.path, filepath.Join(s.dir, other+ext)); err != nil {
					t.Fatal(err)
				}
				o.path, link = filepath.Join(s.dir, other+ext), other+ext
			}
			p := filepath.Join(s.dir, id+ext)
			for _, op := range storeOps(id) {
				replant(t, p, func(p string) error { return os.Symlink(link, p) })
				if target == "inside" && (op.name == "List" || op.name == "Count" || op.name == "Reap") {
					continue // the other session is live and listed; covered by "outside"
				}
				before := len(corruptEntries(t, s.dir))
				op.run(t, s, exp)
				o.check(t, "after "+op.name)
				if op.name == "Get" || op.name == "Touch" || op.name == "Update" {
					// Moved aside: the link itself, still pointing where it did.
					ents := corruptEntries(t, s.dir)
					if len(ents) != before+1 {
						t.Errorf("%s: %d entries in .corrupt, want %d (the link moved aside)", op.name, len(ents), before+1)
					}
					for name, typ := range ents {
						if typ&os.ModeSymlink == 0 {
							t.Errorf("%s: .corrupt/%s is %v, want the symbolic link itself", op.name, name, typ)
						} else if dst, _ := os.Readlink(filepath.Join(s.dir, corruptDir, name)); dst != link {
							t.Errorf("%s: .corrupt/%s points to %q, want %q", op.name, name, dst, link)
						}
					}
					if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("%s: the link %s.json was left in place (%v)", op.name, id, err)
					}
				}
			}
		})
	}
}

func TestFIFOSessionDoesNotBlock(t *testing.T) {
	const id = "fifoAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	s, c := newTest(t, Options{})
	exp := c.Now().Add(time.Hour)
	p := filepath.Join(s.dir, id+ext)
	// unblock gives a blocked open(2) of the FIFO a writer, held until the
	// stuck call returned.
	unblock := func() func() {
		f, err := os.OpenFile(p, os.O_RDWR|syscall.O_NONBLOCK, 0)
		if err != nil {
			return func() {}
		}
		return func() { f.Close() }
	}
	for _, op := range storeOps(id) {
		replant(t, p, func(p string) error { return syscall.Mkfifo(p, 0o600) })
		within(t, op.name+" on a FIFO", 5*time.Second, unblock, func() { op.run(t, s, exp) })
		if op.name == "Get" || op.name == "Touch" || op.name == "Update" {
			if fi, err := os.Lstat(p); err == nil {
				t.Errorf("%s: the FIFO was left in place (%v)", op.name, fi.Mode())
			}
		}
	}
	for name, typ := range corruptEntries(t, s.dir) {
		if typ&os.ModeNamedPipe == 0 {
			t.Errorf(".corrupt/%s is %v, want the FIFO", name, typ)
		}
	}
}

func TestDirectoryNamedLikeASession(t *testing.T) {
	const id = "dirAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	s, c := newTest(t, Options{})
	exp := c.Now().Add(time.Hour)
	p := filepath.Join(s.dir, id+ext)
	mkdir := func(p string) error {
		if err := os.Mkdir(p, 0o700); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(p, "inside"), []byte("keep"), 0o600)
	}
	for _, op := range storeOps(id) {
		replant(t, p, mkdir)
		within(t, op.name+" on a directory", 5*time.Second, nil, func() { op.run(t, s, exp) })
	}
	// Moved aside whole, with its content.
	n := 0
	for name, typ := range corruptEntries(t, s.dir) {
		if !typ.IsDir() {
			t.Errorf(".corrupt/%s is %v, want the directory", name, typ)
			continue
		}
		n++
		if b, err := os.ReadFile(filepath.Join(s.dir, corruptDir, name, "inside")); err != nil || string(b) != "keep" {
			t.Errorf(".corrupt/%s/inside = %q, %v", name, b, err)
		}
	}
	if n == 0 {
		t.Errorf("no directory was moved to .corrupt")
	}
}

// A .corrupt that is a link to elsewhere receives nothing: the bad file is
// reported and left where it is.
func TestCorruptDirSymlinkNotFollowed(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	s, c := newTest(t, Options{Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))})
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(s.dir, corruptDir)); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(s.dir, id1+ext)
	if err := os.WriteFile(p, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	future := c.Now().Add(time.Hour)
	os.Chtimes(p, future, future)
	if _, err := s.Get(ctx, id1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of a corrupt file = %v, want ErrNotFound", err)
	}
	if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
		t.Fatalf("a file was moved out of the directory through the .corrupt link: %v", ents)
	}
	if _, err := os.Lstat(p); err != nil {
		t.Errorf("the corrupt file is gone (%v), want it left in place", err)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if !strings.Contains(out, "not a directory") || !strings.Contains(out, corruptDir) {
		t.Errorf("log does not say .corrupt is not a directory:\n%s", out)
	}
	if strings.Contains(out, id1) {
		t.Errorf("log names the session id:\n%s", out)
	}
}

// A .locks that is a link to elsewhere is refused at New, and a link put
// in its place later, or a lock file that is a link, gets nothing created
// or opened through it.
func TestLocksDirSymlinkNotFollowed(t *testing.T) {
	t.Run("at New", func(t *testing.T) {
		elsewhere, dir := t.TempDir(), t.TempDir()
		if err := os.Symlink(elsewhere, filepath.Join(dir, locksDir)); err != nil {
			t.Fatal(err)
		}
		if s, err := New(Options{Dir: dir, ReapInterval: -1, Logger: quiet()}); err == nil {
			s.Set(ctx, id1, store.Record{Data: sess("a"), Expires: time.Now().Add(time.Hour)})
			s.Close()
			t.Errorf("New accepted a .locks that links out of the directory")
		} else if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), locksDir) {
			t.Errorf("error %q does not name the directory and %s", err, locksDir)
		}
		if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
			t.Errorf("lock files were created out of the directory through the .locks link: %v", ents)
		}
	})
	t.Run("swapped after New", func(t *testing.T) {
		// Lock files still go to the .locks New opened.
		elsewhere, dir := t.TempDir(), t.TempDir()
		s, c := newTest(t, Options{Dir: dir})
		if err := os.Rename(filepath.Join(dir, locksDir), filepath.Join(dir, "old-locks")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(elsewhere, filepath.Join(dir, locksDir)); err != nil {
			t.Fatal(err)
		}
		if err := s.Set(ctx, id1, store.Record{Data: sess("a"), Expires: c.Now().Add(time.Hour)}); err != nil {
			t.Fatalf("Set after .locks was swapped for a link: %v", err)
		}
		if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
			t.Errorf("a lock file was created out of the directory through the swapped .locks: %v", ents)
		}
	})
	t.Run("lock file is a link", func(t *testing.T) {
		dir := t.TempDir()
		s, c := newTest(t, Options{Dir: dir})
		o := newOutsideFile(t, c.Now())
		if err := os.Symlink(o.path, filepath.Join(dir, locksDir, hex2(s.stripeOf(id1)))); err != nil {
			t.Fatal(err)
		}
		err := s.Set(ctx, id1, store.Record{Data: sess("a"), Expires: c.Now().Add(time.Hour)})
		if err == nil {
			t.Errorf("Set took a lock through a lock file that links out of the directory")
		} else if !strings.Contains(err.Error(), filepath.Join(dir, locksDir)) || strings.Contains(err.Error(), id1) {
			t.Errorf("error %q does not name the lock directory, or names the session", err)
		}
		o.check(t, "after a Set with a linked lock file")
	})
}

func hex2(i int) string { return string("0123456789abcdef"[i>>4]) + string("0123456789abcdef"[i&15]) }
