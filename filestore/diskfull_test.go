package filestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/galleta-go/galleta/store"
)

// Disk full (research §7 item 34): on a 256 KiB tmpfs, a write that does not
// fit fails with a clear error naming the directory and not the session,
// leaves no file behind, keeps the previous version of the session intact,
// and the store works again once space is freed.

// diskFullMount mounts a size-capped tmpfs on a fresh directory and
// unmounts it in t.Cleanup.
func diskFullMount(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("cannot mount a %s tmpfs on %s (%v: %s): mounting a tmpfs needs root/CAP_SYS_ADMIN", size, dir, err, strings.TrimSpace(string(out)))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, strings.TrimSpace(string(out)))
		}
	})
	return dir
}

// diskFullData is a session of about size bytes.
func diskFullData(tag string, size int) []byte {
	head := `{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"tag":"` + tag + `","blob":"`
	n := max(size-len(head)-2, 0)
	return []byte(head + strings.Repeat(string(rune('a'+len(tag)%26)), n) + `"}`)
}

func TestDiskFull(t *testing.T) {
	mnt := diskFullMount(t, "256k")
	dir := filepath.Join(mnt, "sessions")
	s, err := New(Options{Dir: dir, ReapInterval: -1, Logger: childLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() }) // before the unmount (cleanups run last-in first-out)
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)

	const keepID = "keepSESSIONzz01"
	keepData := diskFullData("keep", 2000)
	if err := s.Set(ctx, keepID, store.Record{Data: keepData, Expires: exp}); err != nil {
		t.Fatalf("write keep on an empty tmpfs: %v", err)
	}
	keepPath := filepath.Join(dir, keepID+".json")
	keepRaw, err := os.ReadFile(keepPath)
	if err != nil {
		t.Fatal(err)
	}
	checkKeep := func(when string) {
		t.Helper()
		rec, err := s.Get(ctx, keepID)
		if err != nil {
			t.Errorf("%s: keep is gone: %v", when, err)
			return
		}
		if !bytes.Equal(rec.Data, keepData) {
			t.Errorf("%s: PREVIOUS VERSION NOT INTACT: keep reads back %d bytes %q, want its old %d bytes", when, len(rec.Data), clipString(string(rec.Data), 120), len(keepData))
		}
		raw, err := os.ReadFile(keepPath)
		if err != nil {
			t.Errorf("%s: read keep's file: %v", when, err)
		} else if !bytes.Equal(raw, keepRaw) {
			t.Errorf("%s: keep's file changed: %d bytes, was %d", when, len(raw), len(keepRaw))
		}
	}
	checkNoTemp := func(when string) {
		t.Helper()
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), tmpPrefix) {
				t.Errorf("%s: LEFTOVER TEMP FILE %s", when, e.Name())
			}
		}
	}
	checkErr := func(when string, err error, ids []string) {
		t.Helper()
		msg := err.Error()
		if !strings.Contains(msg, "no space left on device") {
			t.Errorf("%s: error %q does not say %q", when, msg, "no space left on device")
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("%s: error %q does not wrap syscall.ENOSPC", when, msg)
		}
		if !strings.Contains(msg, dir) {
			t.Errorf("%s: error %q does not name the store's directory %s", when, msg, dir)
		}
		for _, id := range ids {
			if strings.Contains(msg, id) {
				t.Errorf("%s: error %q CONTAINS SESSION ID %s", when, msg, id)
			}
		}
	}

	// Fill the disk with ~40 KB sessions until a write fails.
	var (
		ids    = []string{keepID}
		filled []string
		failID string
		setErr error
	)
	for i := range 100 {
		id := fmt.Sprintf("fillSESSION%04d", i)
		ids = append(ids, id)
		if err := s.Set(ctx, id, store.Record{Data: diskFullData(id, 40_000), Expires: exp}); err != nil {
			failID, setErr = id, err
			break
		}
		filled = append(filled, id)
	}
	if setErr == nil {
		t.Fatalf("100 sessions of 40 KB fit on a 256 KiB tmpfs: the disk never filled")
	}
	t.Logf("disk full after %d sessions of 40 KB; Set error: %v", len(filled), setErr)
	checkErr("Set on a full disk", setErr, ids)
	if _, err := os.Lstat(filepath.Join(dir, failID+".json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the failed session's file exists after its write failed (stat: %v)", err)
	}
	if _, err := s.Get(ctx, failID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of the session whose write failed: %v, want ErrNotFound", err)
	}
	checkKeep("after the disk filled")
	checkNoTemp("after the failed Set")

	// Overwrite keep with a record that cannot fit: error, old version kept.
	big := diskFullData("keep-big", 200_000)
	err = s.Set(ctx, keepID, store.Record{Data: big, Expires: exp})
	if err == nil {
		t.Fatalf("overwriting keep with 200 KB on a full 256 KiB tmpfs succeeded")
	}
	checkErr("overwrite of keep on a full disk", err, ids)
	checkKeep("after the failed overwrite")
	checkNoTemp("after the failed overwrite")

	// Also through Update (the read-modify-write path).
	err = s.Update(ctx, keepID, func(cur store.Record, found bool) (store.Record, bool, error) {
		return store.Record{Data: big, Expires: exp}, true, nil
	})
	if err == nil {
		t.Fatalf("Update of keep to 200 KB on a full tmpfs succeeded")
	}
	checkErr("Update of keep on a full disk", err, ids)
	checkKeep("after the failed Update")
	checkNoTemp("after the failed Update")

	// Free space: the store recovers (ENOSPC on write is not sticky).
	if len(filled) < 3 {
		t.Fatalf("only %d sessions filled the disk; need 3 to free", len(filled))
	}
	for _, id := range filled[:3] {
		if err := s.Delete(ctx, id); err != nil {
			t.Fatalf("Delete to free space: %v", err)
		}
	}
	after := diskFullData(failID, 40_000)
	if err := s.Set(ctx, failID, store.Record{Data: after, Expires: exp}); err != nil {
		t.Fatalf("STORE DID NOT RECOVER: Set after freeing space: %v", err)
	}
	if rec, err := s.Get(ctx, failID); err != nil || !bytes.Equal(rec.Data, after) {
		t.Errorf("after recovery, Get = %d bytes, %v; want the %d bytes written", len(rec.Data), err, len(after))
	}
	newKeep := diskFullData("keep-v2", 3000)
	if err := s.Set(ctx, keepID, store.Record{Data: newKeep, Expires: exp}); err != nil {
		t.Fatalf("STORE DID NOT RECOVER: overwrite keep after freeing space: %v", err)
	}
	if rec, err := s.Get(ctx, keepID); err != nil || !bytes.Equal(rec.Data, newKeep) {
		t.Errorf("after recovery, keep = %d bytes, %v; want its new %d bytes", len(rec.Data), err, len(newKeep))
	}
	checkNoTemp("after recovery")
}
