package filestore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/galleta-go/galleta/store"
)

// tmpNames lists the temporary files in dir.
func tmpNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			names = append(names, e.Name())
		}
	}
	return names
}

// A new session is written unnamed and linked under its name: it is never
// a temporary file in the directory, and it reads back with its expiry.
func TestNewSessionIsLinkedNotRenamed(t *testing.T) {
	for _, d := range []Durability{SyncAll, SyncNone} {
		dir := t.TempDir()
		s, c := newTest(t, Options{Dir: dir, Durability: d})
		exp := c.Now().Add(time.Hour)
		if err := s.Set(ctx, id1, store.Record{Data: sess("ana"), Expires: exp}); err != nil {
			t.Fatal(err)
		}
		if s.noAnon.Load() {
			t.Skipf("the file system of %s has no O_TMPFILE; the fallback is tested below", dir)
		}
		rec, err := s.Get(ctx, id1)
		if err != nil || !strings.Contains(string(rec.Data), `"user":"ana"`) || !rec.Expires.Equal(exp) {
			t.Fatalf("Get = %q, %v, %v", rec.Data, rec.Expires, err)
		}
		fi, err := os.Lstat(filepath.Join(dir, id1+ext))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 || !stamped(fi) {
			t.Fatalf("file: %v, %v (want a stamped regular 0600 file)", fi, err)
		}
		if left := tmpNames(t, dir); len(left) != 0 {
			t.Fatalf("temporary files left: %v", left)
		}
		if s.writes.Load() != 1 || s.linked.Load() != 1 {
			t.Fatalf("writes = %d, linked = %d; want 1 and 1", s.writes.Load(), s.linked.Load())
		}
		// A replacement of the file is a rename, not a link.
		if err := s.Set(ctx, id1, store.Record{Data: sess("bo"), Expires: exp}); err != nil {
			t.Fatal(err)
		}
		if rec, _ := s.Get(ctx, id1); !strings.Contains(string(rec.Data), `"user":"bo"`) || s.linked.Load() != 1 || s.writes.Load() != 2 {
			t.Fatalf("after a replacement: %q, writes %d, linked %d", rec.Data, s.writes.Load(), s.linked.Load())
		}
	}
}

// When a file of that name appears between the look and the link (another
// program wrote it), the link fails rather than replace it, and the write
// falls back to a rename, which replaces it as a write always did.
func TestNewSessionNameTakenMeanwhile(t *testing.T) {
	dir := t.TempDir()
	s, c := newTest(t, Options{Dir: dir})
	s.testHookBeforeWrite = func() {
		if err := os.WriteFile(filepath.Join(dir, id1+ext), sess("other"), 0o600); err != nil {
			t.Error(err)
		}
	}
	if err := s.Set(ctx, id1, store.Record{Data: sess("ana"), Expires: c.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	rec, err := s.Get(ctx, id1)
	if err != nil || !strings.Contains(string(rec.Data), `"user":"ana"`) {
		t.Fatalf("Get = %q, %v; want ana's session", rec.Data, err)
	}
	if s.noAnon.Load() || s.linked.Load() != 0 {
		t.Fatalf("a taken name: noAnon %v, linked %d; want false, 0 (the rename wrote it)", s.noAnon.Load(), s.linked.Load())
	}
	if left := tmpNames(t, dir); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// Without unnamed files (another file system, no /proc), new sessions are
// written through a temporary file and a rename, with the same result.
func TestNewSessionWithoutUnnamedFiles(t *testing.T) {
	dir := t.TempDir()
	s, c := newTest(t, Options{Dir: dir})
	s.noAnon.Store(true)
	exp := c.Now().Add(time.Hour)
	if err := s.Set(ctx, id1, store.Record{Data: sess("ana"), Expires: exp}); err != nil {
		t.Fatal(err)
	}
	rec, err := s.Get(ctx, id1)
	if err != nil || !strings.Contains(string(rec.Data), `"user":"ana"`) || !rec.Expires.Equal(exp) {
		t.Fatalf("Get = %q, %v, %v", rec.Data, rec.Expires, err)
	}
	if left := tmpNames(t, dir); len(left) != 0 || s.linked.Load() != 0 {
		t.Fatalf("temporary files left: %v; linked %d", left, s.linked.Load())
	}
}
