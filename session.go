package galleta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/galleta-go/galleta/internal/record"
	"github.com/galleta-go/galleta/store"
)

// Session is the session of one request. A handler gets it with
// FromRequest or FromContext. Its methods are safe for concurrent use by the
// goroutines of one request.
//
// Values are JSON values: Set encodes with encoding/json (so a value that
// cannot be encoded is an error at Set, and nothing changes), the getters
// decode. Numbers come back through GetInt and GetFloat whatever Go type
// they were set with.
//
// Changes are recorded as operations (set, delete, clear, increment). At
// commit the Manager re-applies them on top of what the store holds then,
// so two overlapping requests that change different keys both persist, and
// Incr counts every increment. A session that another request destroyed or
// regenerated in the meantime is not written back.
//
// All methods of a nil *Session are safe: getters return zero values and
// changes return ErrNoSession. FromRequest returns nil when the request did
// not pass through the Manager's middleware or is outside its cookie path.
type Session struct {
	m  *Manager
	mu sync.Mutex

	state state
	id    string // current id; "" for a new session until one is needed

	// The request's cookie.
	cookieID  string // the verified id it carried, "" if none
	hadCookie bool   // it carried a cookie of our name (Destroy clears it)
	resign    bool   // it was signed by an older secret: send it re-signed

	data   record.Session // values, cookie object and bookkeeping, as this request sees them
	base   []byte         // the record bytes last loaded from or written to the store (read-only)
	stored time.Time      // the expiry the store holds
	ops    []record.Op    // this request's changes of values, in order
	saved  int            // ops[:saved] are in the store
	now    time.Time      // the request's clock reading, moved at each save

	merge merger // the commit's update function and results (commit.go)

	// What changed.
	used          bool // read or changed: the response varies by cookie
	maxAgeChanged bool // SetMaxAge in this request: the cookie goes out again
	unsaved       bool // cookie or bookkeeping changed since the last store write
}

// state is where a session stands with the store.
type state uint8

const (
	// stateNew: created in this request and not stored (yet).
	stateNew state = iota
	// stateStored: the store holds it under id (loaded at the start of the
	// request, or written by it).
	stateStored
	// stateRegenerated: it has a new id that is not stored yet; the old one
	// was deleted.
	stateRegenerated
	// stateDestroyed: destroyed in this request.
	stateDestroyed
	// stateGone: another request deleted it after this one loaded it (a
	// logout, a regenerate, a revoke); nothing of this request is written.
	stateGone
)

// dirty reports whether the store lacks something of the session: a new
// id, a change of values, or a change of cookie or bookkeeping.
func (s *Session) dirty() bool {
	switch s.state {
	case stateRegenerated:
		return true
	case stateNew, stateStored:
		return len(s.ops) > s.saved || s.unsaved
	}
	return false
}

// changed reports whether the session changed in this request, saved or
// not (express-session sends a persistent cookie again then).
func (s *Session) changed() bool { return len(s.ops) > 0 || s.maxAgeChanged }

// writable returns the error a change gets in the session's state.
func (s *Session) writable() error {
	switch s.state {
	case stateDestroyed:
		return ErrDestroyed
	case stateGone:
		return ErrDeleted
	}
	return nil
}

// ID returns the session id. It changes on Regenerate, and is "" after
// Destroy. Never log it: it is the bearer credential.
func (s *Session) ID() string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used = true
	if s.state == stateDestroyed {
		return ""
	}
	if s.id == "" {
		// New sessions get their id lazily, so anonymous requests that
		// never store anything cost no random bytes.
		id, err := s.m.newID()
		if err != nil {
			s.m.log.Error("galleta: generate session id", "err", err)
			return ""
		}
		s.id = id
	}
	return s.id
}

// IsNew reports whether the session was created in this request (no stored
// session was found for the request's cookie), or given a new id by
// Regenerate.
func (s *Session) IsNew() bool {
	if s == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cookieID == "" || s.cookieID != s.id
}

// CreatedAt returns when the session was first created. Regenerate keeps it.
func (s *Session) CreatedAt() time.Time {
	if s == nil {
		return time.Time{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data.Meta.Created
}

// Deadline returns the absolute expiry (Options.AbsoluteTimeout after
// creation, raised by SetMaxAge), or the zero time when there is none.
func (s *Session) Deadline() time.Time {
	if s == nil {
		return time.Time{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data.Meta.Deadline
}

// ExpiresAt returns when the session expires if it sees no further request:
// the idle expiry capped by the absolute deadline, as of this request.
func (s *Session) ExpiresAt() time.Time {
	if s == nil {
		return time.Time{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expiry()
}

// expiry is the record's expiry as of s.now: the idle window from now,
// capped by the absolute deadline.
func (s *Session) expiry() time.Time {
	return s.capped(s.now.Add(s.idleWindow()))
}

// cookieExpires is the persistent cookie's expiry as of s.now (also stored
// as cookie.expires), or zero for a browser-session cookie.
func (s *Session) cookieExpires() time.Time {
	if s.data.Cookie.OriginalMaxAge < 0 {
		return time.Time{}
	}
	return s.capped(s.now.Add(time.Duration(s.data.Cookie.OriginalMaxAge) * time.Millisecond))
}

func (s *Session) capped(t time.Time) time.Time {
	if d := s.data.Meta.Deadline; !d.IsZero() && d.Before(t) {
		return d
	}
	return t
}

// idleWindow is the session's max age when it has one, else the Manager's
// idle timeout.
func (s *Session) idleWindow() time.Duration {
	if s.data.Cookie.OriginalMaxAge >= 0 {
		return time.Duration(s.data.Cookie.OriginalMaxAge) * time.Millisecond
	}
	return s.m.idle
}

// MaxAge returns the session's cookie max age; 0 means a browser-session
// cookie (no Expires attribute).
func (s *Session) MaxAge() time.Duration {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data.Cookie.OriginalMaxAge < 0 {
		return 0
	}
	return time.Duration(s.data.Cookie.OriginalMaxAge) * time.Millisecond
}

// SetMaxAge gives this session its own cookie lifetime ("remember me"): the
// cookie becomes persistent with Expires d from each save, and the session's
// idle window becomes d instead of Options.IdleTimeout. The absolute
// deadline is raised to at least now+d. d <= 0 turns the cookie back into a
// browser-session cookie with the Manager's idle timeout. The cookie is sent
// again in this response.
func (s *Session) SetMaxAge(d time.Duration) error {
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	s.used = true
	if d <= 0 {
		s.data.Cookie.OriginalMaxAge = -1
	} else {
		s.data.Cookie.OriginalMaxAge = d.Milliseconds()
		if dl := s.data.Meta.Deadline; !dl.IsZero() && dl.Before(s.now.Add(d)) {
			s.data.Meta.Deadline = s.now.Add(d)
		}
	}
	s.maxAgeChanged = true
	s.unsaved = true
	return nil
}

// Get returns the value stored under key decoded into a Go value the way
// encoding/json decodes into an interface{} (numbers are float64; use GetInt
// for integers).
func (s *Session) Get(key string) (any, bool) {
	raw, ok := s.raw(key)
	if !ok {
		return nil, false
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, false
	}
	return v, true
}

func (s *Session) raw(key string) (json.RawMessage, bool) {
	if s == nil {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used = true
	raw, ok := s.data.Values[key]
	return raw, ok
}

// Has reports whether key is set.
func (s *Session) Has(key string) bool {
	_, ok := s.raw(key)
	return ok
}

// GetString returns the string stored under key. ok is false when the key
// is missing or holds something other than a string.
func (s *Session) GetString(key string) (string, bool) {
	raw, ok := s.raw(key)
	if !ok || len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true
	}
	var v string
	if json.Unmarshal(raw, &v) != nil {
		return "", false
	}
	return v, true
}

// GetInt returns the integer stored under key. It accepts any JSON number
// with an integral value in int64's range (1, 1.0, 1e3); ok is false for
// anything else.
func (s *Session) GetInt(key string) (int64, bool) {
	raw, ok := s.raw(key)
	if !ok {
		return 0, false
	}
	return record.Int(raw)
}

// GetFloat returns the number stored under key.
func (s *Session) GetFloat(key string) (float64, bool) {
	raw, ok := s.raw(key)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	return f, err == nil
}

// GetBool returns the boolean stored under key.
func (s *Session) GetBool(key string) (value, ok bool) {
	raw, ok := s.raw(key)
	if !ok {
		return false, false
	}
	switch string(raw) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// Decode decodes the value stored under key into v with encoding/json.
// When key is missing the error wraps ErrNoKey; a decoding error is
// wrapped as encoding/json returned it.
func (s *Session) Decode(key string, v any) error {
	raw, ok := s.raw(key)
	if !ok {
		return fmt.Errorf("galleta: decode session key %q: %w", key, ErrNoKey)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("galleta: decode session key %q: %w", key, err)
	}
	return nil
}

// Keys returns the session's keys, sorted.
func (s *Session) Keys() []string {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used = true
	keys := make([]string, 0, len(s.data.Values))
	for k := range s.data.Values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Len returns the number of keys.
func (s *Session) Len() int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used = true
	return len(s.data.Values)
}

// Set stores v under key. v must encode as JSON; if it does not, Set
// returns the encoding error and the session is unchanged. Setting a value
// equal to the stored one is not a change.
func (s *Session) Set(key string, v any) error {
	if s == nil {
		return ErrNoSession
	}
	if record.Reserved(key) {
		return fmt.Errorf("%w %q: choose another name", ErrReservedKey, key)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("galleta: session value for %q cannot be stored as JSON: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	s.used = true
	if old, ok := s.data.Values[key]; ok && bytes.Equal(old, raw) {
		return nil
	}
	s.apply(record.Op{Kind: record.OpSet, Key: key, Raw: raw})
	return nil
}

// apply makes a change: to the values this request sees, and to its log.
// An OpIncr must already be known not to overflow.
func (s *Session) apply(o record.Op) {
	if s.data.Values == nil {
		s.data.Values = make(map[string]json.RawMessage, 4)
	}
	_ = record.Apply(s.data.Values, []record.Op{o})
	s.ops = append(s.ops, o)
}

// Delete removes key. Removing a missing key is not a change.
func (s *Session) Delete(key string) error {
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	s.used = true
	if _, ok := s.data.Values[key]; !ok {
		return nil
	}
	s.apply(record.Op{Kind: record.OpDelete, Key: key})
	return nil
}

// Clear removes every key. The session itself (id, cookie, timeouts) stays.
// Clearing an empty session is not a change. Like every change, the clear
// is applied to the stored session at commit, so keys that overlapping
// requests stored before this request commits are removed too.
func (s *Session) Clear() error {
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	s.used = true
	if len(s.data.Values) == 0 {
		return nil
	}
	s.apply(record.Op{Kind: record.OpClear})
	return nil
}

// Incr adds delta to the integer under key (a missing key counts as 0) and
// returns the result as this request sees it: the value the session held
// when the request loaded it (or at its last Save or Reload), plus this
// request's own increments. Increments that overlapping requests make are
// not in that number, but none is lost: each request's delta is re-applied
// to the stored value at commit. To learn the stored total, call Save and
// then GetInt: Save leaves the session holding what the store holds.
//
// Incr returns an error wrapping ErrNotNumber when key holds something
// other than an integer, and ErrOverflow when the result would leave
// int64's range; the session is then unchanged. (If the stored total
// overflows only when overlapping requests' increments join it, the save
// fails with ErrOverflow.)
func (s *Session) Incr(key string, delta int64) (int64, error) {
	if s == nil {
		return 0, ErrNoSession
	}
	if record.Reserved(key) {
		return 0, fmt.Errorf("%w %q: choose another name", ErrReservedKey, key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return 0, err
	}
	s.used = true
	var n int64
	if raw, ok := s.data.Values[key]; ok {
		var isInt bool
		if n, isInt = record.Int(raw); !isInt {
			return 0, fmt.Errorf("%w: key %q holds %.40s", ErrNotNumber, key, raw)
		}
	}
	sum, ok := record.Add(n, delta)
	if !ok {
		return 0, fmt.Errorf("%w: key %q holds %d; adding %d leaves int64's range", ErrOverflow, key, n, delta)
	}
	s.apply(record.Op{Kind: record.OpIncr, Key: key, Delta: delta})
	return sum, nil
}

// flashKey is where flash messages live, in connect-flash's layout
// ({"flash": {"kind": ["msg", ...]}}) so Node's req.flash reads them too.
const flashKey = "flash"

// AddFlash queues a message of the given kind ("info", "error", ...) for
// the next request that calls Flashes with that kind.
func (s *Session) AddFlash(kind, msg string) error {
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	s.used = true
	all := s.flashes()
	all[kind] = append(all[kind], msg)
	raw, err := json.Marshal(all)
	if err != nil {
		return err
	}
	s.apply(record.Op{Kind: record.OpSet, Key: flashKey, Raw: raw})
	return nil
}

// Flashes returns the queued messages of kind and removes them, so each
// message is read exactly once.
func (s *Session) Flashes(kind string) []string {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used = true
	if s.writable() != nil {
		return nil
	}
	all := s.flashes()
	msgs, ok := all[kind]
	if !ok {
		return nil
	}
	delete(all, kind)
	if len(all) == 0 {
		s.apply(record.Op{Kind: record.OpDelete, Key: flashKey})
	} else if raw, err := json.Marshal(all); err == nil {
		s.apply(record.Op{Kind: record.OpSet, Key: flashKey, Raw: raw})
	}
	return msgs
}

func (s *Session) flashes() map[string][]string {
	all := map[string][]string{}
	if raw, ok := s.data.Values[flashKey]; ok {
		_ = json.Unmarshal(raw, &all) // a foreign shape is replaced
	}
	return all
}

// Regenerate gives the session a new id, as after a login or any change of
// privilege: the data is kept, the old id is deleted from the store at once
// (a request still holding it finds nothing), the absolute deadline is
// unchanged, and the new cookie is sent with this response. After Destroy
// it starts a fresh, empty session.
func (s *Session) Regenerate(ctx context.Context) error {
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used = true
	newID, err := s.m.newID()
	if err != nil {
		return err
	}
	if s.state == stateStored {
		if err := s.m.storeDelete(ctx, s.id); err != nil {
			return fmt.Errorf("galleta: regenerate: delete old session: %w", err)
		}
	}
	if s.state == stateDestroyed {
		s.data = record.Session{Values: s.data.Values, Cookie: s.m.newCookie(s.data.Cookie.Secure), Meta: s.m.newMeta(s.now)}
	}
	s.id = newID
	s.state = stateRegenerated
	s.base = nil
	return nil
}

// Destroy deletes the session from the store at once and expires the
// cookie in this response (logout). Changes after Destroy return
// ErrDestroyed; Regenerate starts a new session.
func (s *Session) Destroy(ctx context.Context) error {
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used = true
	if s.state == stateStored {
		if err := s.m.storeDelete(ctx, s.id); err != nil {
			return fmt.Errorf("galleta: destroy session: %w", err)
		}
	}
	s.state = stateDestroyed
	s.base = nil
	clear(s.data.Values)
	s.ops, s.saved = s.ops[:0], 0
	s.unsaved, s.maxAgeChanged = false, false
	return nil
}

// Reload replaces the session's data with what the store holds now,
// dropping this request's unsaved changes. It returns an error wrapping
// store.ErrNotFound when the session is not stored (new, destroyed, or
// deleted by another request meanwhile).
func (s *Session) Reload(ctx context.Context) error {
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used = true
	if s.state != stateStored {
		return fmt.Errorf("galleta: reload: %w", store.ErrNotFound)
	}
	rec, err := s.m.storeGet(ctx, s.id)
	if errors.Is(err, store.ErrNotFound) {
		s.state = stateGone
	}
	if err != nil {
		return fmt.Errorf("galleta: reload: %w", redact(err, s.id))
	}
	var d record.Session
	if err := record.Decode(rec.Data, &d, s.m.newCookie(s.data.Cookie.Secure)); err != nil {
		return fmt.Errorf("galleta: reload: %w", err)
	}
	s.adopt(d, rec)
	s.ops, s.saved = s.ops[:0], 0
	s.unsaved, s.maxAgeChanged = false, false
	return nil
}

// Save writes the session to the store now instead of when the response
// starts: a checkpoint for a long-running handler, or a way to learn what
// the store holds. Like the commit, it applies this request's changes on
// top of the stored session, and afterwards the session holds the result,
// including overlapping requests' changes (so Incr, Save, GetInt gives the
// stored count). A new session is stored even when empty.
//
// It returns ErrDestroyed after Destroy, and an error wrapping ErrDeleted
// when another request deleted the session after this one loaded it.
func (s *Session) Save(ctx context.Context) error {
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	s.used = true
	ctx, cancel := s.m.callContext(ctx)
	defer cancel()
	_, err := s.save(ctx, true)
	return err
}

// Touch extends the session's idle expiry in the store now, without
// rewriting its data. The Manager touches every used session at the end of
// a request anyway; Touch is for long-running requests such as streams.
// It does nothing for a session that is not stored, and returns ErrDeleted
// when another request deleted it meanwhile.
func (s *Session) Touch(ctx context.Context) error {
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateStored {
		return nil
	}
	s.now = s.m.now()
	ctx, cancel := s.m.callContext(ctx)
	defer cancel()
	if err := s.touch(ctx, true); err != nil {
		return err
	}
	if s.state == stateGone {
		return ErrDeleted
	}
	return nil
}

// adopt makes a decoded stored record the session's state.
func (s *Session) adopt(d record.Session, rec store.Record) {
	if d.Meta.Created.IsZero() {
		// Written by a Node service: galleta starts counting now.
		d.Meta.Created = s.now
	}
	if d.Meta.Deadline.IsZero() {
		d.Meta.Deadline = s.m.deadline(d.Meta.Created)
	}
	s.data = d
	s.base = rec.Data
	s.stored = rec.Expires
}

// encode is the record of the session with the given values (its own, or
// merged with the store's) as of s.now.
func (s *Session) encode(values map[string]json.RawMessage) []byte {
	c := s.data.Cookie
	c.Expires = s.cookieExpires()
	meta := s.data.Meta
	if meta.Deadline.Equal(s.m.deadline(meta.Created)) {
		// The usual deadline follows from created and the options; it is
		// stored only when SetMaxAge raised it.
		meta.Deadline = time.Time{}
	}
	bp := encodeBufs.Get().(*[]byte)
	b := record.Encode((*bp)[:0], values, c, meta)
	// The store keeps the record: give it an exact-size copy, not a buffer
	// with spare capacity (that would be retained per session in memory).
	out := make([]byte, len(b))
	copy(out, b)
	if cap(b) <= 64<<10 {
		*bp = b
		encodeBufs.Put(bp)
	}
	return out
}

var encodeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}
