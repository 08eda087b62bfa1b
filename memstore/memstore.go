// Package memstore keeps sessions in the memory of the running process.
//
// It is the Go counterpart of express-session's MemoryStore and of the
// memorystore package, without their leak: every read checks the expiry, a
// background goroutine deletes expired sessions, and an optional limit evicts
// the least recently used session. Sessions are lost when the process exits
// and are not shared between processes, so it suits tests, development and
// single-process services whose users may log in again after a restart.
//
// The store implements store.Store, store.Updater, store.Lister,
// store.Counter, store.Reaper, store.Pinger and io.Closer. Call Close to stop
// the sweeper goroutine.
//
// The store does not log. A program that keeps its sessions here may want to
// say so in its own startup log, since a restart logs every user out.
//
// # Layout
//
// Sessions are spread over up to 64 shards by a seeded hash of the id; each
// shard has its own mutex, an open-addressing hash table of 8-byte slots and
// a dense slice of entries that doubles as an intrusive LRU list (int32
// links). A small session (a 43-byte id and about 160 bytes of JSON) costs
// under 300 bytes of heap including the id and the Data bytes. Get, Touch,
// Delete and Update do not allocate; Set allocates only when a shard's
// arrays grow.
//
// Data is not copied: Set and Update take ownership of the slice they are
// given, and Get returns the stored slice, which the caller must not modify
// (see store.Record).
//
// Expiry times are kept with millisecond precision (truncated), like the
// other galleta stores.
package memstore

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/galleta-go/galleta/store"
)

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("memstore: store is closed")

// Options configures a Store. The zero value gives the defaults.
type Options struct {
	// MaxSessions caps how many sessions the store holds. When a new
	// session would go above it, the least recently used session (by Get,
	// Set, Touch or Update) is evicted. The limit is split across the
	// shards and the LRU order is kept per shard, so eviction is an
	// approximation of a global LRU: the total never exceeds MaxSessions,
	// but a session may be evicted while other shards still have room.
	// Limits below 128 use one shard and so are an exact LRU. Default 0:
	// no limit.
	MaxSessions int

	// SweepInterval is how often the background goroutine deletes expired
	// sessions. Default (zero) 1 minute; a negative value starts no
	// goroutine (expired sessions are then only dropped when read, by
	// Reap, or by eviction).
	SweepInterval time.Duration

	// Now returns the current time; expiry is judged against it. Default
	// time.Now.
	Now func() time.Time
}

// defaultSweepInterval is the SweepInterval used when Options leaves it zero.
const defaultSweepInterval = time.Minute

const (
	maxShardBits = 6 // 64 shards
	// minPerShard is the smallest per-shard limit worth sharding for: a
	// MaxSessions below 64*minPerShard uses fewer shards so that each one
	// keeps a useful LRU.
	minPerShard = 64
	noIndex     = int32(-1)
)

// Store is an in-memory session store. Create it with New; the zero value
// is not usable. All methods are safe for concurrent use.
type Store struct {
	shards []shard
	shift  uint // 64 - log2(len(shards)); 64 when there is one shard
	seed   maphash.Seed
	now    func() time.Time

	closed    atomic.Bool
	closeOnce sync.Once
	stop      chan struct{} // closed by Close
	done      chan struct{} // closed when the sweeper has returned
}

var (
	_ store.Store     = (*Store)(nil)
	_ store.Updater   = (*Store)(nil)
	_ store.Lister    = (*Store)(nil)
	_ store.Counter   = (*Store)(nil)
	_ store.Reaper    = (*Store)(nil)
	_ store.Pinger    = (*Store)(nil)
	_ store.Immediate = (*Store)(nil)
)

// New returns a store configured by o and, unless o.SweepInterval is
// negative, starts its sweeper goroutine.
func New(o Options) *Store {
	bits := maxShardBits
	if o.MaxSessions > 0 {
		bits = 0
		for bits < maxShardBits && o.MaxSessions>>(bits+1) >= minPerShard {
			bits++
		}
	}
	n := 1 << bits
	s := &Store{
		shards: make([]shard, n),
		shift:  uint(64 - bits),
		seed:   maphash.MakeSeed(),
		now:    o.Now,
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.head, sh.tail = noIndex, noIndex
		if o.MaxSessions > 0 {
			sh.limit = o.MaxSessions / n
			if i < o.MaxSessions%n {
				sh.limit++
			}
		}
	}
	interval := o.SweepInterval
	if interval == 0 {
		interval = defaultSweepInterval
	}
	if interval < 0 {
		close(s.done)
	} else {
		go s.sweeper(interval)
	}
	return s
}

// Close stops the sweeper goroutine and waits for it to return. It is safe
// to call more than once; every call returns nil. After Close every other
// method returns ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stop)
	})
	<-s.done
	return nil
}

func (s *Store) sweeper(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweep(s.stop)
		}
	}
}

// sweep deletes the expired sessions one shard at a time, so no lock is held
// for longer than one shard's walk. It stops early when stop is closed.
func (s *Store) sweep(stop <-chan struct{}) int {
	n := 0
	for i := range s.shards {
		select {
		case <-stop:
			return n
		default:
		}
		n += s.shards[i].reap(s, s.nowMS())
	}
	return n
}

func (s *Store) nowMS() int64 { return s.now().UnixMilli() }

// check returns the error every method returns before touching the shards.
// Ping reports whether the store can be used: nil until Close, ErrClosed
// after it. Memory never becomes unreachable.
func (s *Store) Ping(ctx context.Context) error { return s.check(ctx) }

// Immediate marks the store as one whose calls never wait (store.Immediate):
// the Manager skips its per-call timeout.
func (s *Store) Immediate() {}

func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

func (s *Store) checkID(ctx context.Context, id string) error {
	if !store.ValidID(id) {
		return fmt.Errorf("memstore: %w", store.ErrInvalidID)
	}
	return s.check(ctx)
}

func (s *Store) hash(id string) uint64 { return maphash.String(s.seed, id) }

func (s *Store) shardFor(h uint64) *shard { return &s.shards[h>>s.shift] }

// Get returns the live record stored under id, or store.ErrNotFound. The
// returned Data is the stored slice: do not modify it.
func (s *Store) Get(ctx context.Context, id string) (store.Record, error) {
	if err := s.checkID(ctx, id); err != nil {
		return store.Record{}, err
	}
	now := s.nowMS()
	h := s.hash(id)
	sh := s.shardFor(h)
	sh.mu.Lock()
	slot, idx := sh.find(id, uint32(h))
	if idx < 0 {
		sh.mu.Unlock()
		return store.Record{}, store.ErrNotFound
	}
	e := &sh.entries[idx]
	if e.expires <= now {
		sh.remove(s, slot, idx)
		sh.mu.Unlock()
		return store.Record{}, store.ErrNotFound
	}
	sh.toFront(idx)
	rec := store.Record{Data: e.data, Expires: time.UnixMilli(e.expires)}
	sh.mu.Unlock()
	return rec, nil
}

// Set stores rec under id, taking ownership of rec.Data. A record whose
// Expires is not after now is not stored, and any record under id is
// deleted.
func (s *Store) Set(ctx context.Context, id string, rec store.Record) error {
	if err := s.checkID(ctx, id); err != nil {
		return err
	}
	now := s.nowMS()
	exp := rec.Expires.UnixMilli()
	h := s.hash(id)
	sh := s.shardFor(h)
	sh.mu.Lock()
	sh.put(s, id, uint32(h), rec.Data, exp, now)
	sh.mu.Unlock()
	return nil
}

// Delete removes id. Deleting a missing id is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := s.checkID(ctx, id); err != nil {
		return err
	}
	h := s.hash(id)
	sh := s.shardFor(h)
	sh.mu.Lock()
	if slot, idx := sh.find(id, uint32(h)); idx >= 0 {
		sh.remove(s, slot, idx)
	}
	sh.mu.Unlock()
	return nil
}

// Touch moves the expiry of the live record under id to expires, or returns
// store.ErrNotFound. An expires that is not after now deletes the record.
func (s *Store) Touch(ctx context.Context, id string, expires time.Time) error {
	if err := s.checkID(ctx, id); err != nil {
		return err
	}
	now := s.nowMS()
	exp := expires.UnixMilli()
	h := s.hash(id)
	sh := s.shardFor(h)
	sh.mu.Lock()
	slot, idx := sh.find(id, uint32(h))
	if idx < 0 {
		sh.mu.Unlock()
		return store.ErrNotFound
	}
	e := &sh.entries[idx]
	if e.expires <= now {
		sh.remove(s, slot, idx)
		sh.mu.Unlock()
		return store.ErrNotFound
	}
	if exp <= now {
		sh.remove(s, slot, idx)
	} else {
		e.expires = exp
		sh.toFront(idx)
	}
	sh.mu.Unlock()
	return nil
}

// Update calls fn with the live record under id (found reports whether there
// is one) while holding the lock of the id's shard, and stores fn's result
// when it asks to write. A written record whose Expires is not after now
// deletes the id. An error from fn is returned unchanged and nothing is
// written. fn must not call the store.
func (s *Store) Update(ctx context.Context, id string, fn store.UpdateFunc) error {
	if err := s.checkID(ctx, id); err != nil {
		return err
	}
	now := s.nowMS()
	h := s.hash(id)
	sh := s.shardFor(h)
	sh.mu.Lock()
	defer sh.mu.Unlock() // fn may panic
	slot, idx := sh.find(id, uint32(h))
	var cur store.Record
	if idx >= 0 {
		if e := &sh.entries[idx]; e.expires <= now {
			sh.remove(s, slot, idx)
			idx = noIndex
		} else {
			cur = store.Record{Data: e.data, Expires: time.UnixMilli(e.expires)}
		}
	}
	next, write, err := fn(cur, idx >= 0)
	if err != nil {
		return err
	}
	if !write {
		if idx >= 0 {
			sh.toFront(idx)
		}
		return nil
	}
	sh.put(s, id, uint32(h), next.Data, next.Expires.UnixMilli(), now)
	return nil
}

// List calls fn for each live session, shard by shard, until fn returns
// false. Each shard's live sessions are copied out under its lock and fn is
// called without any lock held. Listing does not count as use for the LRU.
func (s *Store) List(ctx context.Context, fn func(id string, rec store.Record) bool) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	type item struct {
		id   string
		data []byte
		exp  int64
	}
	var batch []item
	for i := range s.shards {
		if err := s.check(ctx); err != nil {
			return err
		}
		now := s.nowMS()
		sh := &s.shards[i]
		batch = batch[:0]
		sh.mu.Lock()
		for j := range sh.entries {
			if e := &sh.entries[j]; e.expires > now {
				batch = append(batch, item{e.id, e.data, e.expires})
			}
		}
		sh.mu.Unlock()
		for j := range batch {
			if !fn(batch[j].id, store.Record{Data: batch[j].data, Expires: time.UnixMilli(batch[j].exp)}) {
				return nil
			}
		}
		clear(batch) // drop references before the next shard
	}
	return nil
}

// Count returns the number of live sessions.
func (s *Store) Count(ctx context.Context) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	n := 0
	for i := range s.shards {
		now := s.nowMS()
		sh := &s.shards[i]
		sh.mu.Lock()
		for j := range sh.entries {
			if sh.entries[j].expires > now {
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n, nil
}

// Reap deletes the expired sessions, one shard at a time, and returns how
// many it deleted.
func (s *Store) Reap(ctx context.Context) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	n := 0
	for i := range s.shards {
		if err := s.check(ctx); err != nil {
			return n, err
		}
		n += s.shards[i].reap(s, s.nowMS())
	}
	return n, nil
}
