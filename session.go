package galleta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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

	id       string // current id
	cookieID string // verified id from the request cookie, "" if none
	loaded   bool   // a record for id exists in the store (as far as we know)
	base     []byte // the record bytes loaded from the store (read-only)
	values   map[string]json.RawMessage
	ops      []op

	cookie record.Cookie // the stored cookie object
	meta   record.Meta

	// flags
	accessed      bool
	maxAgeChanged bool
	destroyed     bool
	regenerated   bool
	resign        bool // the cookie verified with an older secret
	committed     bool // headers written
	dirty         bool // changed since the last store write
	gone          bool // deleted by another request meanwhile
	committedOps  int  // len(ops) at the last store write
	loadedExpires time.Time
	storedExpires time.Time
	hadCookie     bool // the request carried a cookie with our name
	now           time.Time
}

type opKind uint8

const (
	opSet opKind = iota
	opDelete
	opClear
	opIncr
)

type op struct {
	kind  opKind
	key   string
	raw   json.RawMessage
	delta int64
}

// Errors a Session method can return.
var (
	// ErrNoSession is returned by changes on a nil Session: the request did
	// not pass through Manager.Middleware (or is outside Cookie.Path).
	ErrNoSession = errors.New("galleta: no session on this request: wrap the handler with Manager.Middleware and check Options.Cookie.Path")
	// ErrReservedKey is returned by Set for the keys the stored layout uses
	// itself ("cookie", "__galleta", "__lastAccess").
	ErrReservedKey = errors.New("galleta: reserved session key")
	// ErrDestroyed is returned by changes after Destroy.
	ErrDestroyed = errors.New("galleta: session destroyed in this request; call Regenerate to start a new one")
	// ErrNotNumber is returned by Incr when the key holds something other
	// than an integer.
	ErrNotNumber = errors.New("galleta: session value is not an integer")
)

func reserved(key string) bool {
	return key == record.KeyCookie || key == record.KeyMeta || key == record.KeyLastAcc
}

// ID returns the session id. It changes on Regenerate. Never log it: it is
// the bearer credential.
func (s *Session) ID() string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accessed = true
	if s.id == "" && !s.destroyed {
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
// session was found for the request's cookie).
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
	return s.meta.Created
}

// Deadline returns the absolute expiry (Options.AbsoluteTimeout after
// creation, raised by SetMaxAge), or the zero time when there is none.
func (s *Session) Deadline() time.Time {
	if s == nil {
		return time.Time{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.meta.Deadline
}

// ExpiresAt returns when the session expires if it sees no further request:
// the idle expiry capped by the absolute deadline, as of this request.
func (s *Session) ExpiresAt() time.Time {
	if s == nil {
		return time.Time{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expiryLocked()
}

func (s *Session) expiryLocked() time.Time {
	e := s.now.Add(s.idleWindowLocked())
	if !s.meta.Deadline.IsZero() && s.meta.Deadline.Before(e) {
		e = s.meta.Deadline
	}
	return e
}

// idleWindowLocked is the session's max age when it has one, else the
// Manager's idle timeout.
func (s *Session) idleWindowLocked() time.Duration {
	if s.cookie.OriginalMaxAge >= 0 {
		return time.Duration(s.cookie.OriginalMaxAge) * time.Millisecond
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
	if s.cookie.OriginalMaxAge < 0 {
		return 0
	}
	return time.Duration(s.cookie.OriginalMaxAge) * time.Millisecond
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
	if s.destroyed {
		return ErrDestroyed
	}
	s.accessed = true
	if d <= 0 {
		s.cookie.OriginalMaxAge = -1
	} else {
		s.cookie.OriginalMaxAge = d.Milliseconds()
		if !s.meta.Deadline.IsZero() && s.meta.Deadline.Before(s.now.Add(d)) {
			s.meta.Deadline = s.now.Add(d)
		}
	}
	s.maxAgeChanged = true
	s.dirty = true
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
	s.accessed = true
	raw, ok := s.values[key]
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
	return parseInt(raw)
}

func parseInt(raw []byte) (int64, bool) {
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
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
// It returns an error wrapping ErrNotFound-like text when key is missing.
func (s *Session) Decode(key string, v any) error {
	raw, ok := s.raw(key)
	if !ok {
		return fmt.Errorf("galleta: session has no key %q", key)
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
	s.accessed = true
	keys := make([]string, 0, len(s.values))
	for k := range s.values {
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
	s.accessed = true
	return len(s.values)
}

// Set stores v under key. v must encode as JSON; if it does not, Set
// returns the encoding error and the session is unchanged. Setting a value
// equal to the stored one is not a change.
func (s *Session) Set(key string, v any) error {
	if s == nil {
		return ErrNoSession
	}
	if reserved(key) {
		return fmt.Errorf("%w %q: choose another name", ErrReservedKey, key)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("galleta: session value for %q cannot be stored as JSON: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed {
		return ErrDestroyed
	}
	s.accessed = true
	if old, ok := s.values[key]; ok && bytes.Equal(old, raw) {
		return nil
	}
	s.setLocked(key, raw)
	return nil
}

func (s *Session) setLocked(key string, raw json.RawMessage) {
	if s.values == nil {
		s.values = make(map[string]json.RawMessage, 4)
	}
	s.values[key] = raw
	s.ops = append(s.ops, op{kind: opSet, key: key, raw: raw})
	s.dirty = true
}

// Delete removes key. Removing a missing key is not a change.
func (s *Session) Delete(key string) error {
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed {
		return ErrDestroyed
	}
	s.accessed = true
	if _, ok := s.values[key]; !ok {
		return nil
	}
	delete(s.values, key)
	s.ops = append(s.ops, op{kind: opDelete, key: key})
	s.dirty = true
	return nil
}

// Clear removes every key. The session itself (id, cookie, timeouts) stays.
func (s *Session) Clear() error {
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed {
		return ErrDestroyed
	}
	s.accessed = true
	if len(s.values) == 0 {
		return nil
	}
	clear(s.values)
	s.ops = append(s.ops, op{kind: opClear})
	s.dirty = true
	return nil
}

// Incr adds delta to the integer under key (a missing key counts as 0) and
// returns the new value. Unlike Get then Set, increments of overlapping
// requests add up: each request's delta is re-applied to the stored value
// at commit.
func (s *Session) Incr(key string, delta int64) (int64, error) {
	if s == nil {
		return 0, ErrNoSession
	}
	if reserved(key) {
		return 0, fmt.Errorf("%w %q: choose another name", ErrReservedKey, key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed {
		return 0, ErrDestroyed
	}
	s.accessed = true
	var n int64
	if raw, ok := s.values[key]; ok {
		var isInt bool
		if n, isInt = parseInt(raw); !isInt {
			return 0, fmt.Errorf("%w: key %q holds %.40s", ErrNotNumber, key, raw)
		}
	}
	n += delta
	if s.values == nil {
		s.values = make(map[string]json.RawMessage, 4)
	}
	s.values[key] = strconv.AppendInt(nil, n, 10)
	s.ops = append(s.ops, op{kind: opIncr, key: key, delta: delta})
	s.dirty = true
	return n, nil
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
	if s.destroyed {
		return ErrDestroyed
	}
	s.accessed = true
	all := s.flashesLocked()
	all[kind] = append(all[kind], msg)
	raw, err := json.Marshal(all)
	if err != nil {
		return err
	}
	s.setLocked(flashKey, raw)
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
	s.accessed = true
	all := s.flashesLocked()
	msgs, ok := all[kind]
	if !ok || s.destroyed {
		return nil
	}
	delete(all, kind)
	if len(all) == 0 {
		delete(s.values, flashKey)
		s.ops = append(s.ops, op{kind: opDelete, key: flashKey})
		s.dirty = true
	} else if raw, err := json.Marshal(all); err == nil {
		s.setLocked(flashKey, raw)
	}
	return msgs
}

func (s *Session) flashesLocked() map[string][]string {
	all := map[string][]string{}
	if raw, ok := s.values[flashKey]; ok {
		_ = json.Unmarshal(raw, &all) // a foreign shape is replaced
	}
	return all
}

// Regenerate gives the session a new id, as after a login or any change of
// privilege: the data is kept, the old id is deleted from the store at once
// (a request still holding it finds nothing), the absolute deadline is
// unchanged, and the new cookie is sent with this response.
func (s *Session) Regenerate(ctx context.Context) error {
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accessed = true
	newID, err := s.m.newID()
	if err != nil {
		return err
	}
	if s.loaded {
		if err := s.m.storeDelete(ctx, s.id); err != nil {
			return fmt.Errorf("galleta: regenerate: delete old session: %w", err)
		}
	}
	if s.destroyed {
		// A fresh session after a logout in the same request.
		s.destroyed = false
		clear(s.values)
		s.meta = record.Meta{Created: s.now, Deadline: s.m.deadline(s.now)}
		s.cookie = s.m.newCookie()
	}
	s.id = newID
	s.loaded = false
	s.base = nil
	s.regenerated = true
	s.dirty = true
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
	s.accessed = true
	if s.loaded {
		if err := s.m.storeDelete(ctx, s.id); err != nil {
			return fmt.Errorf("galleta: destroy session: %w", err)
		}
	}
	s.destroyed = true
	s.loaded = false
	s.base = nil
	clear(s.values)
	s.ops = s.ops[:0]
	s.committedOps = 0
	return nil
}

// Reload replaces the session's data with what the store holds now,
// dropping this request's unsaved changes. It returns an error wrapping
// store.ErrNotFound when the session is no longer stored.
func (s *Session) Reload(ctx context.Context) error {
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accessed = true
	if s.destroyed || !s.loaded {
		return fmt.Errorf("galleta: reload: %w", store.ErrNotFound)
	}
	rec, err := s.m.storeGet(ctx, s.id)
	if err != nil {
		return fmt.Errorf("galleta: reload: %w", err)
	}
	if err := s.decodeLocked(rec); err != nil {
		return fmt.Errorf("galleta: reload: %w", err)
	}
	s.ops = s.ops[:0]
	s.committedOps = 0
	s.maxAgeChanged = false
	s.dirty = false
	return nil
}

// Save writes the session to the store now instead of at the end of the
// request (the Manager saves before the response anyway; Save is for
// long-running handlers that want a checkpoint).
func (s *Session) Save(ctx context.Context) error {
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed {
		return ErrDestroyed
	}
	s.accessed = true
	_, err := s.m.saveLocked(ctx, s, true)
	return err
}

// Touch extends the session's idle expiry in the store now, without
// rewriting its data. The Manager touches every used session at the end of
// a request anyway; Touch is for long-running requests such as streams.
func (s *Session) Touch(ctx context.Context) error {
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed || !s.loaded {
		return nil
	}
	s.now = s.m.now()
	exp := s.expiryLocked()
	if err := s.m.storeTouch(ctx, s.id, exp); err != nil {
		return fmt.Errorf("galleta: touch session: %w", err)
	}
	s.storedExpires = exp
	return nil
}

// decodeLocked replaces the state with a stored record.
func (s *Session) decodeLocked(rec store.Record) error {
	var buf [16]record.Field
	fields, err := record.Fields(rec.Data, buf[:0])
	if err != nil {
		return err
	}
	if s.values == nil {
		s.values = make(map[string]json.RawMessage, len(fields))
	} else {
		clear(s.values)
	}
	s.cookie = s.m.newCookie()
	s.meta = record.Meta{}
	for _, f := range fields {
		switch f.Key {
		case record.KeyCookie:
			c, err := record.DecodeCookie(f.Raw)
			if err != nil {
				return err
			}
			s.cookie = c
		case record.KeyMeta:
			m, err := record.DecodeMeta(f.Raw)
			if err != nil {
				return err
			}
			s.meta = m
		case record.KeyLastAcc:
		default:
			s.values[f.Key] = json.RawMessage(f.Raw)
		}
	}
	if s.meta.Created.IsZero() {
		// Written by a Node service: galleta starts counting now.
		s.meta.Created = s.now
	}
	if s.meta.Deadline.IsZero() {
		s.meta.Deadline = s.m.deadline(s.meta.Created)
	}
	s.base = rec.Data
	s.loadedExpires = rec.Expires
	s.storedExpires = rec.Expires
	return nil
}

// encodeLocked writes the state as a stored record.
func (s *Session) encodeLocked(values map[string]json.RawMessage, c record.Cookie, meta record.Meta, expires time.Time) []byte {
	if c.OriginalMaxAge >= 0 {
		c.Expires = s.now.Add(time.Duration(c.OriginalMaxAge) * time.Millisecond)
		if !meta.Deadline.IsZero() && meta.Deadline.Before(c.Expires) {
			c.Expires = meta.Deadline
		}
	} else {
		c.Expires = time.Time{}
	}
	bp := encodeBufs.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"cookie":`...)
	b = record.AppendCookie(b, c)
	b = append(b, `,"__galleta":`...)
	if meta.Deadline.Equal(s.m.deadline(meta.Created)) {
		// The usual deadline follows from created and the options; store
		// it only when SetMaxAge raised it.
		meta.Deadline = time.Time{}
	}
	b = record.AppendMeta(b, meta)
	if len(values) > 0 {
		var kb [16]string
		keys := kb[:0]
		for k := range values {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = append(b, ',')
			b = record.AppendKey(b, k)
			b = append(b, values[k]...)
		}
	}
	b = append(b, '}')
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

// afterSave records that data (expiring at exp) is what the store holds.
func (s *Session) afterSave(data []byte, exp time.Time) {
	s.loaded = true
	s.base = data
	s.storedExpires = exp
	s.committedOps = len(s.ops)
	s.dirty = false
}

// replay applies a request's operations to the values stored now.
func replay(cur map[string]json.RawMessage, ops []op) {
	for _, o := range ops {
		switch o.kind {
		case opSet:
			cur[o.key] = o.raw
		case opDelete:
			delete(cur, o.key)
		case opClear:
			clear(cur)
		case opIncr:
			var n int64
			if raw, ok := cur[o.key]; ok {
				n, _ = parseInt(raw) // a non-integer stored meanwhile is replaced
			}
			cur[o.key] = strconv.AppendInt(nil, n+o.delta, 10)
		}
	}
}
