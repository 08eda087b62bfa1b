// Package store defines the contract between the session Manager and the
// places sessions live (memstore and filestore in this module).
//
// A store keeps opaque records keyed by session id. The record's Data is the
// session as a JSON object in express-session's layout (the session's keys at
// top level plus a "cookie" object), so a Node service using the matching
// Node store can read what a Go service wrote, and the reverse. Stores never
// interpret Data beyond what their Node counterpart needs (for example the
// file store adds "__lastAccess").
//
// The required interface is small; further abilities are separate interfaces
// a caller finds by type assertion, in the way io.WriterTo extends io.Writer:
//
//	Updater            atomic read-modify-write (no lost updates)
//	OptimisticUpdater  the same in one round trip when nothing changed
//	Lister             walk the live sessions (admin tools, migration)
//	Counter            count the live sessions
//	Reaper             delete expired sessions on demand
//	Pinger             check that the store can serve reads and writes now
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by Get and Touch when no live session has the id:
// it was never stored, was deleted, or has expired.
var ErrNotFound = errors.New("session not found")

// ErrInvalidID is returned (wrapped) when an id fails ValidID. A store checks
// the id before it becomes a file name, a key or a query parameter, and
// returns this error without touching the backing storage.
var ErrInvalidID = errors.New("invalid session id: want 1 to 250 bytes of [A-Za-z0-9_-]")

// ErrUnavailable is wrapped by stores into errors that mean the backing
// service cannot be reached right now (connection refused, timeout, pool
// exhausted). The Manager answers such errors with 503 and Retry-After and
// keeps the user's cookie; any other store error becomes a 500.
var ErrUnavailable = errors.New("session store unavailable")

// ErrTooLarge is wrapped by stores that refuse a record above their size
// limit. Nothing is written when it is returned.
var ErrTooLarge = errors.New("session too large")

// MaxIDLen is the longest id a store accepts: <id>.json must fit in a file
// name (255 bytes on every common file system).
const MaxIDLen = 250

// ValidID reports whether id is 1 to MaxIDLen (250) bytes of [A-Za-z0-9_-]: the
// alphabet of base64url, which covers galleta's ids and express-session's
// (uid-safe). Anything else (dots, slashes, NUL, backslashes, spaces) is
// refused, so an id can never name a path outside a store's directory or
// inject into a key pattern.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// Record is one stored session.
type Record struct {
	// Data is the session encoded as a JSON object. A record returned by Get
	// is read-only for the caller (a store may hand out a slice it keeps); a
	// record passed to Set or returned from an UpdateFunc belongs to the
	// store from then on and the caller must not modify it.
	Data []byte

	// Expires is the moment the session stops being live. A store never
	// returns a record whose Expires is not after its clock's now, and may
	// delete it at any time after.
	Expires time.Time
}

// Store is the contract every session store meets.
//
// All methods are safe for concurrent use. The id is checked with ValidID
// first; an invalid id gives an error wrapping ErrInvalidID and no access to
// the backing storage. Errors that mean the backing service is unreachable
// wrap ErrUnavailable. Every method honours ctx's deadline and cancellation.
type Store interface {
	// Get returns the live record stored under id, or ErrNotFound.
	Get(ctx context.Context, id string) (Record, error)

	// Set stores rec under id, replacing whatever was there. A record whose
	// Expires is not in the future is not stored (and any old one is
	// deleted), like connect-redis does with a non-positive TTL.
	Set(ctx context.Context, id string, rec Record) error

	// Delete removes id. Deleting an id that is not there is not an error.
	Delete(ctx context.Context, id string) error

	// Touch moves the expiry of a live record to expires without changing
	// its Data. It returns ErrNotFound when no live record has the id; it
	// never creates one, so a touch cannot bring back a deleted session.
	Touch(ctx context.Context, id string, expires time.Time) error
}

// UpdateFunc computes the new record from the one stored now. found is false
// when there is no live record under the id. Returning write=false leaves
// the stored state as it is. An error aborts the update and is returned by
// Update unchanged.
//
// The function may be called more than once (stores built on compare-and-swap
// retry on conflict), so it must not have side effects beyond its result. It
// runs while the store holds its lock on the id: it must be quick and must
// not call the store.
type UpdateFunc func(cur Record, found bool) (next Record, write bool, err error)

// Updater is implemented by stores that can change one record atomically: no
// other write to the id can land between the read that fn sees and the write
// of fn's result. The Manager uses it to re-apply a request's changes on top
// of the stored session, so overlapping requests lose no update and a session
// deleted meanwhile is not written back. Without it the Manager falls back to
// Get and Set, which is last-writer-wins.
type Updater interface {
	Update(ctx context.Context, id string, fn UpdateFunc) error
}

// OptimisticUpdater is implemented by stores where reading costs a round
// trip to a server (Redis, PostgreSQL). The caller passes the record it last
// read (or wrote) as seen; the store first calls fn with seen and writes the
// result only if the stored record's Data still equals seen.Data, in one
// round trip (a compare-and-swap). If it does not, or the record is gone,
// the store proceeds as Update does: it calls fn again with the record
// stored now (found false when there is none) and writes that result
// atomically. The Manager uses it at commit, with the record it loaded.
type OptimisticUpdater interface {
	UpdateFrom(ctx context.Context, id string, seen Record, fn UpdateFunc) error
}

// Lister is implemented by stores that can walk their live sessions. fn is
// called once per live session, in no particular order, until it returns
// false. fn must not call the store. Sessions added or removed during the
// walk may or may not be seen.
type Lister interface {
	List(ctx context.Context, fn func(id string, rec Record) bool) error
}

// Counter is implemented by stores that can count their live sessions.
type Counter interface {
	Count(ctx context.Context) (int, error)
}

// Reaper is implemented by stores that can delete their expired sessions on
// demand. It returns how many it deleted.
type Reaper interface {
	Reap(ctx context.Context) (int, error)
}

// Immediate is implemented by stores whose calls never wait: no I/O, no
// other process, only memory and short locks (the memory store). The
// Manager calls them without its StoreTimeout bound, which would cost a
// timer per call and bound nothing.
type Immediate interface {
	Immediate()
}

// Pinger is implemented by stores that can check their own health: Ping
// returns nil when the store can serve reads and writes now, and otherwise
// an error that says what is wrong (wrapping ErrUnavailable when the
// backing service cannot be reached). It does the least work that proves
// a write would succeed (the file store writes and removes a probe file),
// so it suits a health endpoint, not a request path.
type Pinger interface {
	Ping(ctx context.Context) error
}
