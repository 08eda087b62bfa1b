// Package filestore keeps each session in a file, <dir>/<id>.json, in the
// layout of Node's session-file-store, so sessions survive restarts and
// crashes with no outside service, and a Node app can share the directory.
//
// # Durability
//
// Every write goes to a temporary file in the same directory (named
// ".tmp-…", never ending in ".json"), is fsynced, renamed over the session
// file, and the directory is fsynced; only then does the write return. A
// reader sees the old file or the new one, never a torn one. With
// Durability SyncNone the two fsyncs are skipped: writes still survive a
// crash of the process (kill -9), but not a power loss. An fsync error fails
// the write and is never retried into a false success; the previous version
// stays intact. Temporary files left by a crash are removed at New and by
// the reaper.
//
// # Expiry
//
// Each file's modification time is set to the session's expiry, so a stat
// tells whether a galleta-written session is live, and touching a session
// moves the mtime and patches the 13 digits of its leading "__lastAccess" in
// place instead of rewriting the file. Files written by Node (mtime = write
// time) expire by Node's rule: __lastAccess + (cookie.originalMaxAge or TTL).
// galleta writes __lastAccess so that Node's rule gives the same instant as
// the mtime: with the same TTL on both sides, a session expires for Node and
// Go at the same moment. The reaper deletes expired files, reading only
// files whose mtime says they may have expired.
//
// # Concurrency
//
// Every change of a session (Set, Update, Touch, Delete) runs under an
// exclusive lock on one of 256 lock files in <dir>/.locks, chosen by the id:
// a flock, which other processes sharing the directory take too, so
// Update's read-modify-write is atomic across processes. Within a process,
// overlapping changes of one session are coalesced: one goroutine applies
// all the queued changes in order and writes the file once (group commit),
// so 32 concurrent saves of a busy session cost a few fsyncs, not 32.
// Node's session-file-store takes no locks; a Node process writing the same
// session at the same moment is last-writer-wins.
//
// # Bad files
//
// A file that is empty, truncated, not a JSON object, of the wrong shape, or
// not decryptable is treated as no session and moved to <dir>/.corrupt/
// (named by time, a hash of the id and a random part), with one log line.
// So is a <id>.json that is not a regular file: a symbolic link is never
// followed (the link itself is moved), a FIFO or a device is never waited
// on. Ids are checked with store.ValidID before they become a file name.
//
// Files are reached through the directory New opened, never by a path
// built from it, and nothing outside it is opened, created or removed: a
// .locks or .corrupt that is a symbolic link is refused, not followed.
package filestore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/galleta-go/galleta/internal/groupcommit"
	"github.com/galleta-go/galleta/store"
)

// Durability chooses how hard a write tries to survive failures.
type Durability int

const (
	// SyncAll fsyncs the file and its directory before a write returns: an
	// acknowledged write survives power loss. The default.
	SyncAll Durability = iota
	// SyncNone skips the fsyncs. Writes are still atomic (temporary file and
	// rename) and survive a crash of the process, but a power loss may lose
	// recent writes.
	SyncNone
)

// Options configure a Store. The zero value of each field is its default.
type Options struct {
	// Dir is the directory of the session files. Default "./sessions". It
	// is created with mode 0700 when missing; files are 0600.
	Dir string

	// TTL is how long a session whose cookie has no max age lives after its
	// last access, for Node's expiry rule (session-file-store's ttl option).
	// Default 1 hour, session-file-store's default and galleta's default
	// IdleTimeout; keep it equal to the Manager's IdleTimeout and to the
	// Node app's ttl when they share the directory.
	TTL time.Duration

	// Durability of writes. Default SyncAll.
	Durability Durability

	// MaxSize is the largest session, in bytes, a write accepts; larger
	// ones fail with store.ErrTooLarge and nothing is written. Default
	// 1 MiB.
	MaxSize int

	// ReapInterval is how often a background goroutine deletes expired
	// sessions. Default 10 minutes. Negative: no goroutine (call Reap).
	ReapInterval time.Duration

	// EncryptionKeys turns on encryption at rest with AES-256-GCM: each key
	// is 32 random bytes; the first encrypts, all decrypt (rotation). Files
	// are then not readable by Node's session-file-store. Default none.
	EncryptionKeys [][]byte

	// NoCreate makes New fail when Dir does not exist instead of creating
	// it, for tools that act on an existing store (a typo in a path then
	// reports a missing directory instead of an empty store). Default
	// false.
	NoCreate bool

	// ReadOnly opens an existing directory for reading only: New creates
	// nothing, writes no probe, removes no temporary files and starts no
	// reaper; Get, List and Count work, every change returns ErrReadOnly,
	// and a bad file is reported as absent but left where it is. Implies
	// NoCreate. Default false.
	ReadOnly bool

	// Now is the clock. Default time.Now.
	Now func() time.Time

	// Logger receives the store's log lines (never a session id). Default
	// slog.Default().
	Logger *slog.Logger
}

// Defaults.
const (
	defaultDir          = "./sessions"
	defaultTTL          = time.Hour
	defaultMaxSize      = 1 << 20
	defaultReapInterval = 10 * time.Minute
	numStripes          = 256
	ext                 = ".json"
	tmpPrefix           = ".tmp-"
	locksDir            = ".locks"
	corruptDir          = ".corrupt"
)

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("filestore: store is closed")

// ErrReadOnly is returned by every change of a store opened with
// Options.ReadOnly.
var ErrReadOnly = errors.New("filestore: store was opened read-only (Options.ReadOnly)")

// Store is a session store on a directory. It implements store.Store,
// store.Updater, store.Lister, store.Counter, store.Reaper, store.Pinger
// and io.Closer.
type Store struct {
	dir      string
	root     *os.Root        // the directory as New opened it: every file is reached through it, never by path
	dirFile  *os.File        // the same directory, for fsync (and openat on Linux)
	dirConn  syscall.RawConn // dirFile's descriptor, held open while in use
	locks    *os.Root        // <dir>/.locks; nil when read-only
	ttl      time.Duration
	sync     bool
	readOnly bool
	maxSize  int
	keys     []cipherKey
	now      func() time.Time
	log      *slog.Logger

	stripes [numStripes]stripe
	dsync   dirSyncer
	// noAnon: the directory's file system (or the platform) cannot make
	// unnamed files (O_TMPFILE) or name them (linkat through /proc), so new
	// sessions are written like replaced ones: a named temporary file and
	// a rename.
	noAnon atomic.Bool

	group groupcommit.Group[op, struct{}]

	closed   atomic.Bool
	bg       context.Context // cancelled by Close: the reaper's Reap runs under it
	stop     context.CancelFunc
	reaperWG sync.WaitGroup

	// counters for tests and benchmarks
	writes  atomic.Int64
	touches atomic.Int64
	linked  atomic.Int64 // writes of new files through writeNew

	// testHookBeforeWrite, when set, runs before a batch's disk action.
	testHookBeforeWrite func()
}

type stripe struct {
	mu sync.Mutex
	f  *os.File // lock file, opened on first use
}

// New opens (creating if needed) the directory and checks that it can be
// written, so a bad directory fails here and not at the first request. It
// removes temporary files left by writers that crashed, and starts the
// reaper.
func New(o Options) (*Store, error) {
	s := &Store{
		dir:      o.Dir,
		ttl:      o.TTL,
		sync:     o.Durability == SyncAll,
		readOnly: o.ReadOnly,
		maxSize:  o.MaxSize,
		now:      o.Now,
		log:      o.Logger,
	}
	s.bg, s.stop = context.WithCancel(context.Background())
	if o.Durability != SyncAll && o.Durability != SyncNone {
		return nil, fmt.Errorf("filestore: unknown Durability %d", o.Durability)
	}
	if s.dir == "" {
		s.dir = defaultDir
	}
	if s.ttl <= 0 {
		s.ttl = defaultTTL
	}
	if s.maxSize <= 0 {
		s.maxSize = defaultMaxSize
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if len(o.EncryptionKeys) > 0 {
		keys, err := newCipherKeys(o.EncryptionKeys)
		if err != nil {
			return nil, err
		}
		s.keys = keys
	}
	if o.NoCreate || o.ReadOnly {
		fi, err := os.Stat(s.dir)
		if err != nil {
			return nil, fmt.Errorf("filestore: session directory %s: %w (nothing was created; check the path)", s.dir, unwrapPath(err))
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("filestore: %s is not a directory (nothing was created; check the path)", s.dir)
		}
	} else if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("filestore: create session directory %s: %w", s.dir, unwrapPath(err))
	}
	if err := s.openDir(); err != nil {
		s.release()
		return nil, err
	}
	if s.readOnly {
		return s, nil
	}
	if err := s.probe(); err != nil {
		s.release()
		return nil, err
	}
	if err := s.removeStaleTemps(context.Background(), 0); err != nil {
		s.release()
		return nil, err
	}
	interval := o.ReapInterval
	if interval == 0 {
		interval = defaultReapInterval
	}
	if interval > 0 {
		s.reaperWG.Add(1)
		go s.reaper(interval)
	}
	return s, nil
}

// openDir opens the session directory and, unless read-only, its lock
// directory. Every later access goes through these handles: a file is
// never reached by a path that could lead out of the directory.
func (s *Store) openDir() error {
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return fmt.Errorf("filestore: open session directory %s: %w", s.dir, unwrapPath(err))
	}
	s.root = root
	if s.dirFile, err = root.Open("."); err != nil {
		return fmt.Errorf("filestore: open session directory %s: %w", s.dir, unwrapPath(err))
	}
	if s.dirConn, err = s.dirFile.SyscallConn(); err != nil {
		return fmt.Errorf("filestore: open session directory %s: %w", s.dir, err)
	}
	s.dsync.f = s.dirFile
	if s.readOnly {
		return nil
	}
	locks := filepath.Join(s.dir, locksDir)
	if err := root.Mkdir(locksDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("filestore: create lock directory %s: %w", locks, unwrapPath(err))
	}
	if fi, err := root.Lstat(locksDir); err != nil {
		return fmt.Errorf("filestore: lock directory %s: %w", locks, unwrapPath(err))
	} else if !fi.IsDir() {
		return fmt.Errorf("filestore: lock directory %s is %s, not a directory: galleta follows no link out of %s; remove it (New creates the directory)", locks, typeName(fi.Mode()), s.dir)
	}
	if s.locks, err = root.OpenRoot(locksDir); err != nil {
		return fmt.Errorf("filestore: open lock directory %s: %w", locks, unwrapPath(err))
	}
	return nil
}

// release closes the handles openDir opened.
func (s *Store) release() error {
	var err error
	if s.locks != nil {
		s.locks.Close()
	}
	if s.dirFile != nil {
		err = s.dirFile.Close()
	}
	if s.root != nil {
		s.root.Close()
	}
	return err
}

// probe writes, syncs and removes a temporary file, so permissions, a
// read-only mount and a full disk show up at New (and in Ping).
func (s *Store) probe() error {
	var b [8]byte
	rand.Read(b[:])
	name := tmpPrefix + "probe-" + hex.EncodeToString(b[:])
	f, err := s.openAt(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if readOnlyFS(err) {
			return fmt.Errorf("filestore: session directory %s is not writable: %w; remount the file system read-write or choose another Dir", s.dir, unwrapPath(err))
		}
		return fmt.Errorf("filestore: session directory %s is not writable: %w; fix its permissions or choose another Dir", s.dir, unwrapPath(err))
	}
	_, err = f.Write([]byte("{}"))
	if err == nil && s.sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	s.removeAt(name)
	if err != nil {
		return fmt.Errorf("filestore: cannot write in session directory %s: %w", s.dir, unwrapPath(err))
	}
	return nil
}

// Close stops the reaper and releases the directory and lock files. It is
// idempotent; methods called after Close return ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.stop() // the reaper's Reap returns at its next check
	s.reaperWG.Wait()
	for i := range s.stripes {
		st := &s.stripes[i]
		st.mu.Lock()
		if st.f != nil {
			st.f.Close()
			st.f = nil
		}
		st.mu.Unlock()
	}
	return s.release()
}

func (s *Store) check(ctx context.Context, id string) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !store.ValidID(id) {
		return fmt.Errorf("filestore: %w", store.ErrInvalidID)
	}
	return nil
}

func (s *Store) path(id string) string { return filepath.Join(s.dir, id+ext) }

// stripeOf picks the id's lock stripe. It must be the same in every process
// sharing the directory (a per-process hash seed would give two processes
// different locks for one id), so it is a fixed hash: FNV-1a.
func (s *Store) stripeOf(id string) int {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return int(h % numStripes)
}

// lock takes the stripe's in-process mutex and its flock.
func (s *Store) lock(i int) (*stripe, error) {
	st := &s.stripes[i]
	st.mu.Lock()
	if st.f == nil {
		f, err := s.openLock(i)
		if err != nil {
			st.mu.Unlock()
			return nil, err
		}
		st.f = f
	}
	if err := flockFile(st.f); err != nil {
		st.mu.Unlock()
		return nil, fmt.Errorf("filestore: lock: %w", err)
	}
	return st, nil
}

// openLock opens (creating it if needed) stripe i's lock file in the lock
// directory New opened. A name there that is not a regular file (a link,
// say) is refused, not followed.
func (s *Store) openLock(i int) (*os.File, error) {
	if s.locks == nil {
		return nil, ErrReadOnly
	}
	name := fmt.Sprintf("%02x", i)
	p := filepath.Join(s.dir, locksDir, name)
	notRegular := func(mode fs.FileMode) error {
		return fmt.Errorf("filestore: lock file %s is %s, not a regular file: galleta follows no link out of %s; remove it", p, typeName(mode), s.dir)
	}
	f, err := s.locks.OpenFile(name, os.O_RDWR|os.O_CREATE|oNonblock, 0o600)
	if err == nil {
		fi, err := f.Stat()
		if err == nil && fi.Mode().IsRegular() {
			return f, nil
		}
		f.Close()
		if err == nil {
			return nil, notRegular(fi.Mode())
		}
		return nil, fmt.Errorf("filestore: open lock file %s: %w", p, unwrapPath(err))
	}
	if fi, lerr := s.locks.Lstat(name); lerr == nil && !fi.Mode().IsRegular() {
		return nil, notRegular(fi.Mode())
	}
	return nil, s.writeError("open lock file in "+filepath.Join(s.dir, locksDir), err)
}

func (st *stripe) unlock() {
	funlock(st.f)
	st.mu.Unlock()
}

// unwrapPath drops the path from an *fs.PathError or *os.LinkError (it
// holds the session id) and keeps the cause.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

func (s *Store) ioError(op string, err error) error {
	return fmt.Errorf("filestore: %s: %w (dir %s)", op, unwrapPath(err), s.dir)
}

// current is what a session file holds now.
type current struct {
	rec       store.Record
	found     bool // a live session
	exists    bool // a file exists (live or expired)
	patchable bool

	// With read's keep: the file read, still open for a patch of the very
	// inode that was read (the caller closes it), and why it could not be
	// opened for writing, if so.
	f       *os.File
	noWrite error
}

// notRegularError is the error for a session file name that is not a
// regular file: a symbolic link (never followed), a FIFO or a device
// (never waited on), a directory or a socket.
type notRegularError struct{ mode fs.FileMode }

func (e notRegularError) Error() string {
	return "not a regular file but " + typeName(e.mode)
}

// typeName names a file type for a message.
func typeName(m fs.FileMode) string {
	switch t := m.Type(); {
	case t&fs.ModeSymlink != 0:
		return "a symbolic link"
	case t&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeSocket != 0:
		return "a socket"
	case t&fs.ModeDevice != 0:
		return "a device"
	case t == 0:
		return "a regular file"
	default:
		return "a special file (" + t.String() + ")"
	}
}

// openRegular opens name in the session directory for flag, without
// following a symbolic link or waiting on a FIFO, and returns it with its
// fstat if it is a regular file. Anything else is a *fs.PathError wrapping
// notRegularError (fs.ErrNotExist when there is nothing).
func (s *Store) openRegular(name string, flag int) (*os.File, fs.FileInfo, error) {
	f, err := s.openAt(name, flag, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, err
		}
		// O_NOFOLLOW refuses a link (ELOOP on Linux, other errors
		// elsewhere); a socket does not open (ENXIO), nor a directory for
		// writing (EISDIR): tell these from real errors by the type.
		if fi, lerr := s.root.Lstat(name); lerr == nil && !fi.Mode().IsRegular() {
			return nil, nil, &fs.PathError{Op: "open", Path: name, Err: notRegularError{fi.Mode()}}
		}
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = &fs.PathError{Op: "open", Path: name, Err: notRegularError{fi.Mode()}}
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// read loads id's file. A missing file is found=false; a bad one (corrupt,
// or not a regular file) is moved aside (when the caller holds the stripe
// lock) and reported as missing. With keep, the file is opened for writing
// too when it can be, and left open in c.f when it exists.
func (s *Store) read(id string, now time.Time, locked, keep bool) (c current, err error) {
	name := id + ext
	flag := os.O_RDONLY
	if keep {
		flag = os.O_RDWR
	}
	f, fi, err := s.openRegular(name, flag)
	if keep && errors.Is(err, fs.ErrPermission) {
		// Readable but not writable: a patch will report it.
		c.noWrite = err
		f, fi, err = s.openRegular(name, os.O_RDONLY)
	}
	if err != nil {
		var nr notRegularError
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return current{}, nil
		case errors.As(err, &nr):
			s.quarantine(id, nr.Error(), locked)
			return current{}, nil
		}
		return current{}, s.ioError("read session", err)
	}
	bad := func(why string) (current, error) {
		f.Close()
		s.quarantine(id, why, locked)
		return current{}, nil
	}
	size := fi.Size()
	if size > int64(s.maxSize)*2+1024 {
		return bad("larger than the size limit")
	}
	buf := make([]byte, size)
	if _, err = io.ReadFull(f, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			// Shrunk under us: a Node writer without atomic rename, or
			// a truncated file.
			return bad("truncated")
		}
		f.Close()
		return current{}, s.ioError("read session", err)
	}
	mtime := fi.ModTime()
	var d decoded
	if len(s.keys) > 0 {
		plain, err := open(s.keys, id, buf)
		if err != nil {
			return bad("cannot be decrypted with any of the keys (or is not an encrypted session file)")
		}
		if d, err = decodeFile(plain); err != nil {
			return bad("decrypts to something that is not a session")
		}
		d.patchable = false
	} else if d, err = decodeFile(buf); err != nil {
		return bad("empty, truncated or not a session JSON object")
	}
	exp := mtime
	if !exp.After(now) && !d.lastAccess.IsZero() {
		// Written by Node (mtime = write time): Node's rule.
		w, err := nodeWindow(d.data, s.ttl)
		if err == nil {
			if e := d.lastAccess.Add(w); e.After(exp) {
				exp = e
			}
		}
	}
	c.rec = store.Record{Data: d.data, Expires: exp.Truncate(time.Millisecond)}
	c.found = c.rec.Expires.After(now)
	c.patchable = d.patchable
	c.exists = true
	if keep {
		c.f = f
	} else {
		f.Close()
	}
	return c, nil
}

// quarantine moves a bad file (or whatever else is at <id>.json) to
// <dir>/.corrupt/, and reports whether it did. Without the stripe lock it
// leaves the file for a locked caller (a writer may be replacing it). A
// .corrupt that is not a directory of its own (a link, say) receives
// nothing.
func (s *Store) quarantine(id, why string, locked bool) bool {
	if s.readOnly {
		s.log.Warn("filestore: corrupt session file treated as absent and left in place (store opened read-only)", "reason", why, "dir", s.dir)
		return false
	}
	if !locked {
		st, err := s.lock(s.stripeOf(id))
		if err != nil {
			return false
		}
		defer st.unlock()
		// Read again under the lock (a writer may have just replaced the
		// file); a file still bad is moved aside by that read.
		s.read(id, s.now(), true, false)
		return false
	}
	if err := s.root.Mkdir(corruptDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		s.log.Error("filestore: cannot create quarantine directory; a corrupt session file is left in place", "dir", s.dir, "err", unwrapPath(err))
		return false
	}
	if fi, err := s.root.Lstat(corruptDir); err != nil || !fi.IsDir() {
		what := "missing"
		if err == nil {
			what = typeName(fi.Mode())
		}
		s.log.Error("filestore: quarantine directory is not a directory (galleta follows no link out of the session directory); a corrupt session file is left in place: remove it", "quarantine", filepath.Join(s.dir, corruptDir), "is", what, "reason", why)
		return false
	}
	// Time, a hash of the id (never the id), and a random part: two bad
	// files of one session at one instant of the clock are both kept.
	sum := sha256.Sum256([]byte(id))
	var r [4]byte
	rand.Read(r[:])
	name := fmt.Sprintf("%d-%s-%s.json", s.now().UnixNano(), hex.EncodeToString(sum[:6]), hex.EncodeToString(r[:]))
	if err := s.root.Rename(id+ext, filepath.Join(corruptDir, name)); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Error("filestore: cannot move a corrupt session file aside", "dir", s.dir, "err", unwrapPath(err))
		}
		return false
	}
	s.log.Warn("filestore: corrupt session file moved aside; the session is treated as absent", "reason", why, "moved_to", filepath.Join(s.dir, corruptDir, name))
	return true
}

// Get returns the live session stored under id.
func (s *Store) Get(ctx context.Context, id string) (store.Record, error) {
	if err := s.check(ctx, id); err != nil {
		return store.Record{}, err
	}
	c, err := s.read(id, s.now(), false, false)
	if err != nil {
		return store.Record{}, err
	}
	if !c.found {
		return store.Record{}, store.ErrNotFound
	}
	return c.rec, nil
}

// Set stores rec under id (atomically and, by default, durably).
func (s *Store) Set(ctx context.Context, id string, rec store.Record) error {
	if err := s.check(ctx, id); err != nil {
		return err
	}
	if err := s.checkSize(rec.Data); err != nil {
		return err
	}
	return s.submit(ctx, id, op{kind: opSet, rec: rec})
}

func (s *Store) checkSize(data []byte) error {
	if len(data) > s.maxSize {
		return fmt.Errorf("filestore: session of %d bytes is over the %d-byte limit (Options.MaxSize): %w", len(data), s.maxSize, store.ErrTooLarge)
	}
	return nil
}

// Update runs fn on the stored session under the session's lock (across
// processes) and writes its result.
func (s *Store) Update(ctx context.Context, id string, fn store.UpdateFunc) error {
	if err := s.check(ctx, id); err != nil {
		return err
	}
	return s.submit(ctx, id, op{kind: opUpdate, fn: fn})
}

// Delete removes id.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := s.check(ctx, id); err != nil {
		return err
	}
	return s.submit(ctx, id, op{kind: opDelete})
}

// Touch moves a live session's expiry without rewriting its data: it sets
// the file's mtime and patches __lastAccess in place. Touches are not
// fsynced: a power loss may forget one, which makes the session expire at
// its previous time, never corrupts it.
func (s *Store) Touch(ctx context.Context, id string, expires time.Time) error {
	if err := s.check(ctx, id); err != nil {
		return err
	}
	return s.submit(ctx, id, op{kind: opTouch, rec: store.Record{Expires: expires}})
}

// List calls fn for each live session.
func (s *Store) List(ctx context.Context, fn func(id string, rec store.Record) bool) error {
	now := s.now()
	return s.walk(ctx, func(id string) (bool, error) {
		c, err := s.read(id, now, false, false)
		if err != nil {
			return false, err
		}
		if c.found {
			return fn(id, c.rec), nil
		}
		return true, nil
	})
}

// Count returns the number of live sessions. A galleta-written file is
// counted by its mtime alone; others are read.
func (s *Store) Count(ctx context.Context) (int, error) {
	now := s.now()
	n := 0
	err := s.walk(ctx, func(id string) (bool, error) {
		fi, err := s.root.Lstat(id + ext)
		if errors.Is(err, fs.ErrNotExist) {
			return true, nil
		}
		if err != nil {
			return false, s.ioError("count sessions", err)
		}
		if !fi.Mode().IsRegular() {
			return true, nil // no session (walk skips these; this one changed meanwhile)
		}
		if fi.ModTime().After(now) {
			n++
			return true, nil
		}
		if stamped(fi) {
			return true, nil // galleta's and past its mtime: expired
		}
		c, err := s.read(id, now, false, false)
		if err != nil {
			return false, err
		}
		if c.found {
			n++
		}
		return true, nil
	})
	return n, err
}

// walk lists the session files in directory order, without sorting (a
// directory of a million files is read in chunks) and without a stat (the
// callers that need one do it, in parallel where it matters: a stat of a
// cold inode waits on the disk). Only regular files are listed (the type
// comes with the name): a link, a FIFO or a directory is no session.
func (s *Store) walk(ctx context.Context, fn func(id string) (bool, error)) error {
	if s.closed.Load() {
		return ErrClosed
	}
	d, err := s.root.Open(".")
	if err != nil {
		return s.ioError("list sessions", err)
	}
	defer d.Close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		ents, err := d.ReadDir(1024)
		for _, e := range ents {
			id, ok := strings.CutSuffix(e.Name(), ext)
			if !ok || !e.Type().IsRegular() || !store.ValidID(id) {
				continue
			}
			more, err := fn(id)
			if err != nil {
				return err
			}
			if !more {
				return nil
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return s.ioError("list sessions", err)
		}
	}
}

// tempName is a fresh temporary file name for a writer holding stripe i.
// The stripe is in the name so a cleaner can take that stripe's lock and
// know no live writer owns the file.
func tempName(i int) string {
	var b [8]byte
	rand.Read(b[:])
	return tmpPrefix + fmt.Sprintf("%02x-", i) + hex.EncodeToString(b[:])
}

var (
	_ store.Store   = (*Store)(nil)
	_ store.Updater = (*Store)(nil)
	_ store.Lister  = (*Store)(nil)
	_ store.Counter = (*Store)(nil)
	_ store.Reaper  = (*Store)(nil)
	_ store.Pinger  = (*Store)(nil)
	_ io.Closer     = (*Store)(nil)
)
