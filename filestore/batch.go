package filestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/galleta-go/galleta/store"
)

type opKind uint8

const (
	opSet opKind = iota
	opUpdate
	opDelete
	opTouch
)

// op is one change waiting in a session's queue.
type op struct {
	kind  opKind
	rec   store.Record // opSet: the record; opTouch: the new expiry
	fn    store.UpdateFunc
	state atomic.Int32  // opQueued, opLeading, opTaken, opAbandoned
	err   error         // set before done is closed
	done  chan struct{} // closed when the change was applied (or failed)
	wake  chan struct{} // receives once when this op's goroutine must lead
}

const (
	opQueued    int32 = iota
	opLeading         // chosen to lead; can no longer be abandoned
	opTaken           // in a batch being applied
	opAbandoned       // its caller's context ended while it waited
)

// queue holds the changes of one session waiting for its leader.
type queue struct {
	ops     []*op
	running bool // a leader exists
}

// submit queues o behind the session's other changes. The first goroutine
// to find the queue idle becomes its leader and applies every queued
// change in order with one disk action per batch (group commit). When its
// own change is done it hands the queue to the next waiter, so no caller
// leads for longer than its own change needs.
func (s *Store) submit(ctx context.Context, id string, o *op) error {
	if s.readOnly {
		return ErrReadOnly
	}
	o.done = make(chan struct{})
	o.wake = make(chan struct{}, 1)
	s.qmu.Lock()
	q := s.queues[id]
	if q == nil {
		q = &queue{}
		s.queues[id] = q
	}
	q.ops = append(q.ops, o)
	leader := !q.running
	q.running = true
	s.qmu.Unlock()

	if !leader {
		select {
		case <-o.done:
			return o.err
		case <-o.wake:
		case <-ctx.Done():
			if o.state.CompareAndSwap(opQueued, opAbandoned) {
				return ctx.Err()
			}
			// Already taken into a batch, or chosen to lead.
			select {
			case <-o.done:
				return o.err
			case <-o.wake:
			}
		}
	}
	return s.lead(id, q, o)
}

func (s *Store) lead(id string, q *queue, o *op) error {
	for {
		s.qmu.Lock()
		batch := q.ops
		q.ops = nil
		if len(batch) == 0 {
			q.running = false
			delete(s.queues, id)
			s.qmu.Unlock()
			return o.err
		}
		s.qmu.Unlock()
		s.runBatch(id, batch)
		select {
		case <-o.done:
		default:
			continue
		}
		s.qmu.Lock()
		for len(q.ops) > 0 {
			next := q.ops[0]
			if next.state.CompareAndSwap(opQueued, opLeading) {
				s.qmu.Unlock()
				next.wake <- struct{}{}
				return o.err
			}
			q.ops = q.ops[1:] // abandoned
		}
		q.running = false
		delete(s.queues, id)
		s.qmu.Unlock()
		return o.err
	}
}

// runBatch applies the batch's changes in order to the session's file
// under the session's lock, then does one disk action: write, patch
// (touch), delete, or nothing.
func (s *Store) runBatch(id string, batch []*op) {
	live := batch[:0:0]
	for _, o := range batch {
		if o.state.CompareAndSwap(opQueued, opTaken) || o.state.CompareAndSwap(opLeading, opTaken) {
			live = append(live, o)
		}
	}
	if len(live) == 0 {
		return
	}
	finish := func(err error) {
		for _, o := range live {
			if o.err == nil {
				o.err = err
			}
			close(o.done)
		}
	}
	st, err := s.lock(s.stripeOf(id))
	if err != nil {
		finish(err)
		return
	}
	defer st.unlock()
	now := s.now()

	needRead, touch := false, false
	for _, o := range live {
		switch o.kind {
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
			return
		}
	} else if fi, err := s.root.Lstat(id + ext); err == nil {
		// Replaced or removed without being read: only a regular file is
		// a session; anything else is moved aside first (a rename over a
		// directory fails), or, if it cannot be, removed or replaced as
		// the name it is (never followed).
		cur.exists = fi.Mode().IsRegular() || !s.quarantine(id, notRegularError{fi.Mode()}.Error(), true)
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
		switch o.kind {
		case opSet:
			rec, found, action = o.rec, true, write
		case opUpdate:
			next, w, ferr := o.fn(rec, found)
			if ferr != nil {
				o.err = ferr
				continue
			}
			if w {
				if err := s.checkSize(next.Data); err != nil {
					o.err = err
					continue
				}
				rec, found, action = next, true, write
			}
		case opDelete:
			rec, found, action = store.Record{}, false, remove
		case opTouch:
			if !found {
				o.err = store.ErrNotFound
				continue
			}
			rec.Expires = o.rec.Expires
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
	if action == remove && !cur.exists {
		action = none
	}
	if h := s.testHookBeforeWrite; h != nil && action != none {
		h()
	}
	switch action {
	case write:
		err = s.writeFile(id, st, rec)
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
}

// writeFile replaces id's file atomically: temporary file, fsync, rename,
// fsync of the directory.
func (s *Store) writeFile(id string, st *stripe, rec store.Record) error {
	var content []byte
	var err error
	if len(s.keys) > 0 {
		content = seal(s.keys[0], id, rec.Data)
	} else if content, err = encodeFile(rec.Data, rec.Expires, s.ttl); err != nil {
		return fmt.Errorf("filestore: write session: %w", err)
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
	if s.sync {
		if err := s.dsync.sync(); err != nil {
			return s.ioError("write session: sync directory", err)
		}
	}
	return nil
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

func (s *Store) removeFile(id string) error {
	if err := s.removeAt(id + ext); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return s.ioError("delete session", err)
	}
	if s.sync {
		if err := s.dsync.sync(); err != nil {
			return s.ioError("delete session: sync directory", err)
		}
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
