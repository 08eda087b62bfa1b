package filestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/galleta-go/galleta/internal/groupcommit"
	"github.com/galleta-go/galleta/store"
)

type opKind uint8

const (
	opSet opKind = iota
	opUpdate
	opDelete
	opTouch
)

// op is one change of a session, queued in the store's group (see
// internal/groupcommit) behind the session's other changes.
type op struct {
	kind opKind
	rec  store.Record // opSet: the record; opTouch: the new expiry
	fn   store.UpdateFunc
}

// submit queues o behind the session's other changes. The first goroutine
// to find the session idle leads and applies every queued change in order
// with one disk action per batch (group commit).
func (s *Store) submit(ctx context.Context, id string, o op) error {
	if s.readOnly {
		return ErrReadOnly
	}
	return s.group.Do(ctx, id, &groupcommit.Op[op]{Payload: o}, s.runBatch)
}

// runBatch applies the batch's changes in order to the session's file
// under the session's lock, then does one disk action: write, patch
// (touch), delete, or nothing.
func (s *Store) runBatch(id string, live []*groupcommit.Op[op], _ *struct{}) (finishing func()) {
	finish := func(err error) {
		for _, o := range live {
			if o.Err == nil {
				o.Err = err
			}
		}
	}
	st, err := s.lock(s.stripeOf(id))
	if err != nil {
		finish(err)
		return nil
	}
	defer st.unlock()
	now := s.now()

	needRead, touch, lookLater := false, false, false
	for _, o := range live {
		switch o.Payload.kind {
		case opUpdate:
			needRead = true
		case opTouch:
			needRead, touch = true, true
		}
	}
	var cur current
	if needRead {
		// A touch patches the inode read here, through the same handle.
		if cur, err = s.read(id, now, true, touch); err != nil {
			finish(err)
			return nil
		}
	} else if !onlySets(live) || s.noAnon.Load() {
		cur.exists = s.look(id)
	} else {
		// Only sets, as for a new session: the link of the new file
		// (writeNew) finds out whether the name is taken, and the look
		// happens only then (lookLater).
		lookLater = true
	}

	const (
		none = iota
		write
		patch
		remove
	)
	action := none
	rec, found := cur.rec, cur.found
	if !found {
		rec = store.Record{}
	}
	for _, o := range live {
		switch p := o.Payload; p.kind {
		case opSet:
			rec, found, action = p.rec, true, write
		case opUpdate:
			next, w, ferr := p.fn(rec, found)
			if ferr != nil {
				o.Err = ferr
				continue
			}
			if w {
				if err := s.checkSize(next.Data); err != nil {
					o.Err = err
					continue
				}
				rec, found, action = next, true, write
			}
		case opDelete:
			rec, found, action = store.Record{}, false, remove
		case opTouch:
			if !found {
				o.Err = store.ErrNotFound
				continue
			}
			rec.Expires = p.rec.Expires
			if action == none {
				action = patch
			}
		}
	}
	if (action == write || action == patch) && !rec.Expires.After(now) {
		action = remove // an already expired record is not stored
	}
	if action == patch && !cur.patchable && len(s.keys) == 0 {
		action = write // a Node-written file: rewrite it in galleta's layout
	}
	if action == remove && lookLater {
		cur.exists = s.look(id) // an already expired set: remove what is there
	}
	if action == remove && !cur.exists {
		action = none
	}
	if h := s.testHookBeforeWrite; h != nil && action != none {
		h()
	}
	switch action {
	case write:
		err = s.writeFile(id, st, rec, cur.exists, lookLater)
	case patch:
		err = s.patchFile(id, cur, rec)
	case remove:
		err = s.removeFile(id)
	}
	if cur.f != nil {
		if cerr := cur.f.Close(); cerr != nil && action == patch && err == nil {
			err = s.ioError("touch session", cerr)
		}
	}
	finish(err)
	if !s.sync || err != nil || (action != write && action != remove) {
		return nil
	}
	// The directory fsync that makes the new name (or its removal)
	// durable runs after the stripe lock is released and the session's
	// next batch may start (groupcommit): that batch writes and fsyncs
	// its file while this one's directory is flushed, and renames after
	// this rename, so a busy session pays about one fsync per batch, not
	// two. Nobody in this batch is answered before it is done.
	what := "write session: sync directory"
	if action == remove {
		what = "delete session: sync directory"
	}
	return func() {
		if err := s.dsync.sync(); err != nil {
			finish(s.ioError(what, err))
		}
	}
}

// writeFile replaces id's file atomically: temporary file, fsync, rename
// (the fsync of the directory is runBatch's finishing step). A file that
// does not exist yet (exists false: a new session) is written unnamed and
// then linked under its name instead (see writeNew).
//
// lookLater: nobody looked at the name yet; if the link finds it taken,
// it is looked at (see look) before it is replaced.
func (s *Store) writeFile(id string, st *stripe, rec store.Record, exists, lookLater bool) error {
	var content []byte
	var err error
	if len(s.keys) > 0 {
		content = seal(s.keys[0], id, rec.Data)
	} else if content, err = encodeFile(rec.Data, rec.Expires, s.ttl); err != nil {
		return fmt.Errorf("filestore: write session: %w", err)
	}
	if !exists && !s.noAnon.Load() {
		if done, err := s.writeNew(id, content, rec.Expires); done {
			return err
		}
		if lookLater {
			s.look(id)
		}
	}
	tmp := tempName(s.stripeOf(id))
	f, err := s.openAt(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return s.writeError("write session", err)
	}
	fail := func(err error) error {
		f.Close()
		s.removeAt(tmp)
		return s.ioError("write session", err)
	}
	if _, err := f.Write(content); err != nil {
		return fail(err)
	}
	if err := s.stamp(f, tmp, rec.Expires); err != nil {
		return fail(err)
	}
	if s.sync {
		if err := f.Sync(); err != nil {
			return fail(err)
		}
	}
	if err := f.Close(); err != nil {
		s.removeAt(tmp)
		return s.ioError("write session", err)
	}
	if err := s.renameAt(tmp, id+ext); err != nil {
		s.removeAt(tmp)
		return s.ioError("write session", err)
	}
	s.writes.Add(1)
	return nil // runBatch's finishing step syncs the directory
}

// onlySets reports whether every change of the batch is a set.
func onlySets(live []*groupcommit.Op[op]) bool {
	for _, o := range live {
		if o.Payload.kind != opSet {
			return false
		}
	}
	return true
}

// look reports whether id's name holds a session file, for a write or a
// delete that did not read it: only a regular file is a session; anything
// else is moved aside first (a rename over a directory fails), or, if it
// cannot be, removed or replaced as the name it is (never followed).
func (s *Store) look(id string) (exists bool) {
	fi, err := s.root.Lstat(id + ext)
	if err != nil {
		return false
	}
	return fi.Mode().IsRegular() || !s.quarantine(id, notRegularError{fi.Mode()}.Error(), true)
}

// writeNew writes a new session's file as an unnamed file in the session
// directory (O_TMPFILE), fsyncs it and gives it its name (linkat, which
// fails rather than replace a file); the directory's fsync follows in
// runBatch's finishing step. Readers see no name until the content is
// complete, and a crash before the link
// leaves nothing behind, as with a temporary file and a rename; but the
// directory changes once instead of three times (create, rename's remove
// and add), and its lock, which every creation in the directory takes,
// is held once. On this VM's ext4 a named create then a rename from 32
// writers spent ~1 ms of CPU per session spinning on that lock.
//
// done is false when the caller should write the file the usual way: the
// file system cannot do this (remembered in s.noAnon), or the name exists
// after all (a file written meanwhile by another program: the rename
// replaces it, as before).
func (s *Store) writeNew(id string, content []byte, expires time.Time) (done bool, err error) {
	// failed sorts a failure to make or name the file: the directory is
	// gone (say so), the file system cannot do it (fall back for good), or
	// a plain I/O error.
	failed := func(err error) (bool, error) {
		if derr := s.dirChanged(); derr != nil {
			return true, fmt.Errorf("filestore: write session: %w", derr)
		}
		if errors.Is(err, errNoAnon) {
			s.noAnon.Store(true)
			return false, nil
		}
		return true, s.ioError("write session", err)
	}
	f, err := s.openAnon()
	if err != nil {
		return failed(err)
	}
	defer f.Close()
	if _, err := f.Write(content); err != nil {
		return true, s.ioError("write session", err)
	}
	if err := s.stamp(f, id+ext, expires); err != nil {
		return true, s.ioError("write session", err)
	}
	if s.sync {
		if err := f.Sync(); err != nil {
			return true, s.ioError("write session", err)
		}
	}
	if err := s.linkAnon(f, id+ext); errors.Is(err, fs.ErrExist) {
		return false, nil
	} else if err != nil {
		return failed(err)
	}
	s.writes.Add(1)
	s.linked.Add(1)
	return true, nil // runBatch's finishing step syncs the directory
}

// patchFile moves a galleta-written file's expiry to rec.Expires: the 13
// digits of the leading __lastAccess are overwritten in place (one write of
// 13 bytes inside one sector, so a crash leaves the old or the new value)
// and the mtime is set, both through cur.f, the handle the batch read the
// file with (runBatch closes it): the inode patched is the regular file
// that was read and checked. rec.Data is the file's session as the batch
// read it, which gives Node's window without reading the file again. Not
// fsynced: see Touch.
func (s *Store) patchFile(id string, cur current, rec store.Record) error {
	if cur.f == nil {
		return store.ErrNotFound // not read by this batch: nothing to patch
	}
	if len(s.keys) == 0 {
		w, err := nodeWindow(rec.Data, s.ttl)
		if err != nil {
			return s.ioError("touch session", err)
		}
		digits := strconv.AppendInt(nil, rec.Expires.Add(-w).UnixMilli(), 10)
		if len(digits) == lastAccessDigits {
			if cur.noWrite != nil {
				return s.ioError("touch session", cur.noWrite)
			}
			if _, err := cur.f.WriteAt(digits, int64(len(lastAccessPrefix))); err != nil {
				return s.ioError("touch session", err)
			}
		}
	}
	if err := s.stamp(cur.f, id+ext, rec.Expires); err != nil {
		return s.ioError("touch session", err)
	}
	s.touches.Add(1)
	return nil
}

// removeFile removes id's file (runBatch's finishing step syncs the
// directory).
func (s *Store) removeFile(id string) error {
	if err := s.removeAt(id + ext); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return s.ioError("delete session", err)
	}
	return nil
}

// dirSyncer coalesces directory fsyncs: a caller needs one fsync that
// started after its rename; callers that arrive while one runs share the
// next one. A failed directory fsync is sticky (after fsync reports an
// error, a later success proves nothing): every later write fails until the
// store is reopened.
type dirSyncer struct {
	f         *os.File
	mu        sync.Mutex
	cond      *sync.Cond
	started   uint64
	completed uint64
	running   bool
	failed    error

	testHook func() // tests: runs before each fsync
}

// err is the sticky failure, if any.
func (d *dirSyncer) err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.failed
}

func (d *dirSyncer) sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cond == nil {
		d.cond = sync.NewCond(&d.mu)
	}
	target := d.started + 1
	for d.completed < target && d.failed == nil {
		if d.running {
			d.cond.Wait()
			continue
		}
		d.running = true
		d.started++
		gen := d.started
		d.mu.Unlock()
		if d.testHook != nil {
			d.testHook()
		}
		err := d.f.Sync()
		d.mu.Lock()
		d.running = false
		d.completed = gen
		if err != nil {
			d.failed = err
		}
		d.cond.Broadcast()
	}
	return d.failed
}
