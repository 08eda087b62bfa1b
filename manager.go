package galleta

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/galleta-go/galleta/cookie"
	"github.com/galleta-go/galleta/internal/record"
	"github.com/galleta-go/galleta/memstore"
	"github.com/galleta-go/galleta/store"
)

// Defaults of Options.
const (
	DefaultCookieName      = "sid"
	DefaultIdleTimeout     = time.Hour
	DefaultAbsoluteTimeout = 12 * time.Hour
	DefaultStoreTimeout    = 5 * time.Second
	DefaultRetryAfter      = 5 * time.Second
	// MinSecretLen is the shortest secret New accepts unless
	// Options.AllowShortSecrets is set.
	MinSecretLen = 32
)

// Manager loads a request's session before the handler runs and commits it
// before the first byte of the response. Create one with New, wrap handlers
// with Middleware, and Close it on shutdown.
type Manager struct {
	name       string
	secrets    []string
	st         store.Store
	updater    store.Updater
	ownStore   io.Closer
	cookieOpts CookieOptions
	idle       time.Duration
	absolute   time.Duration
	rolling    bool
	saveUninit bool
	genID      func() (string, error)
	onError    func(http.ResponseWriter, *http.Request, error)
	trustProxy bool
	timeout    time.Duration
	retryAfter string
	now        func() time.Time
	log        *slog.Logger
	locks      *keyedLocks
}

// New checks the options and returns a Manager. It fails when no secret is
// given, a secret is too short, or the cookie settings contradict each other
// (a "__Host-" name with a Domain, SameSite=None without Secure, ...).
func New(o Options) (*Manager, error) {
	m := &Manager{
		name:       o.CookieName,
		secrets:    append([]string(nil), o.Secrets...),
		st:         o.Store,
		cookieOpts: o.Cookie,
		idle:       o.IdleTimeout,
		absolute:   o.AbsoluteTimeout,
		rolling:    o.Rolling,
		saveUninit: o.SaveUninitialized,
		genID:      o.GenerateID,
		onError:    o.ErrorHandler,
		trustProxy: o.TrustProxy,
		timeout:    o.StoreTimeout,
		now:        o.Now,
		log:        o.Logger,
	}
	if m.name == "" {
		m.name = DefaultCookieName
	}
	if len(m.secrets) == 0 {
		return nil, errors.New("galleta: Options.Secrets is empty: give at least one secret of 32+ random bytes (for example from `openssl rand -base64 32`)")
	}
	for i, s := range m.secrets {
		if s == "" {
			return nil, fmt.Errorf("galleta: Options.Secrets[%d] is empty", i)
		}
		if len(s) < MinSecretLen && !o.AllowShortSecrets {
			return nil, fmt.Errorf("galleta: Options.Secrets[%d] is %d bytes: use at least %d random bytes, or set AllowShortSecrets to share an existing Express secret", i, len(s), MinSecretLen)
		}
	}
	if m.cookieOpts.Path == "" {
		m.cookieOpts.Path = "/"
	}
	if m.cookieOpts.SameSite == 0 || m.cookieOpts.SameSite == http.SameSiteDefaultMode {
		m.cookieOpts.SameSite = http.SameSiteLaxMode
	}
	if m.idle <= 0 {
		m.idle = DefaultIdleTimeout
	}
	if m.absolute == 0 {
		m.absolute = DefaultAbsoluteTimeout
	}
	if m.timeout == 0 {
		m.timeout = DefaultStoreTimeout
	}
	ra := o.RetryAfter
	if ra <= 0 {
		ra = DefaultRetryAfter
	}
	m.retryAfter = strconv.FormatInt(int64((ra+time.Second-1)/time.Second), 10)
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.genID == nil {
		m.genID = randomID
	}
	if o.LockSessions {
		m.locks = &keyedLocks{m: map[string]*keyedLock{}}
	}
	if err := m.checkCookie(); err != nil {
		return nil, err
	}
	if m.st == nil {
		ms := memstore.New(memstore.Options{Now: m.now})
		m.st, m.ownStore = ms, ms
	}
	m.updater, _ = m.st.(store.Updater)
	return m, nil
}

// checkCookie serialises a sample session cookie with every attribute the
// Manager can send, so a bad name, domain or path fails at New, not at the
// first request.
func (m *Manager) checkCookie() error {
	c := m.cookieOpts
	if c.Secure < SecureAuto || c.Secure > SecureNever {
		return fmt.Errorf("galleta: Options.Cookie.Secure has unknown value %d", c.Secure)
	}
	if c.SameSite == http.SameSiteNoneMode && c.Secure != SecureAlways {
		return errors.New("galleta: SameSite=None needs Options.Cookie.Secure = SecureAlways (browsers reject it otherwise)")
	}
	if strings.HasPrefix(m.name, "__Host-") || strings.HasPrefix(m.name, "__Secure-") || c.Partitioned {
		if c.Secure != SecureAlways {
			return fmt.Errorf("galleta: cookie %q needs Options.Cookie.Secure = SecureAlways", m.name)
		}
	}
	for _, secure := range []bool{false, true} {
		if secure == false && c.Secure == SecureAlways {
			continue
		}
		if _, err := cookie.Serialize(m.name, "s:sample.sig", m.cookieAttrs(secure, time.Time{})); err != nil {
			return fmt.Errorf("galleta: session cookie settings: %w", err)
		}
	}
	return nil
}

// Close releases what the Manager owns: the default memory store. A store
// passed in Options.Store is the caller's to close.
func (m *Manager) Close() error {
	if m.ownStore != nil {
		return m.ownStore.Close()
	}
	return nil
}

// Store returns the store the Manager uses.
func (m *Manager) Store() store.Store { return m.st }

func randomID() (string, error) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24; crashes the program rather than return weak bytes
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func (m *Manager) newID() (string, error) {
	id, err := m.genID()
	if err != nil {
		return "", fmt.Errorf("galleta: generate session id: %w", err)
	}
	if !store.ValidID(id) {
		return "", fmt.Errorf("galleta: Options.GenerateID returned an id of %d bytes that is not 1-250 bytes of [A-Za-z0-9_-]", len(id))
	}
	return id, nil
}

func (m *Manager) deadline(now time.Time) time.Time {
	if m.absolute < 0 {
		return time.Time{}
	}
	return now.Add(m.absolute)
}

func (m *Manager) newCookie() record.Cookie {
	c := record.Cookie{
		OriginalMaxAge: -1,
		HTTPOnly:       !m.cookieOpts.DisableHTTPOnly,
		Path:           m.cookieOpts.Path,
		Domain:         m.cookieOpts.Domain,
		Partitioned:    m.cookieOpts.Partitioned,
		Secure:         m.cookieOpts.Secure == SecureAlways,
	}
	if m.cookieOpts.MaxAge > 0 {
		c.OriginalMaxAge = m.cookieOpts.MaxAge.Milliseconds()
	}
	switch m.cookieOpts.SameSite {
	case http.SameSiteStrictMode:
		c.SameSite = "strict"
	case http.SameSiteNoneMode:
		c.SameSite = "none"
	default:
		c.SameSite = "lax"
	}
	return c
}

func (m *Manager) cookieAttrs(secure bool, expires time.Time) cookie.Options {
	return cookie.Options{
		Path:        m.cookieOpts.Path,
		Domain:      m.cookieOpts.Domain,
		Secure:      secure,
		HTTPOnly:    !m.cookieOpts.DisableHTTPOnly,
		SameSite:    m.cookieOpts.SameSite,
		Partitioned: m.cookieOpts.Partitioned,
		Expires:     expires,
	}
}

// isSecure decides the Secure attribute for this request.
func (m *Manager) isSecure(r *http.Request) bool {
	switch m.cookieOpts.Secure {
	case SecureAlways:
		return true
	case SecureNever:
		return false
	}
	return m.requestSecure(r)
}

// requestSecure reports whether the request arrived over HTTPS: a TLS
// connection, or a trusted proxy's X-Forwarded-Proto (first value).
func (m *Manager) requestSecure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if m.trustProxy {
		p := r.Header.Get("X-Forwarded-Proto")
		if i := strings.IndexByte(p, ','); i >= 0 {
			p = p[:i]
		}
		return strings.EqualFold(strings.TrimSpace(p), "https")
	}
	return false
}

// pathMatches reports whether the cookie path covers the request path, by
// whole segments.
func pathMatches(cookiePath, reqPath string) bool {
	if cookiePath == "/" || cookiePath == reqPath {
		return true
	}
	if !strings.HasPrefix(reqPath, cookiePath) {
		return false
	}
	return strings.HasSuffix(cookiePath, "/") || reqPath[len(cookiePath)] == '/'
}

type ctxKey struct{}

// FromContext returns the session the middleware put in ctx, or nil.
func FromContext(ctx context.Context) *Session {
	s, _ := ctx.Value(ctxKey{}).(*Session)
	return s
}

// FromRequest returns the request's session, or nil when the request did
// not pass through Manager.Middleware or is outside the cookie path. The
// methods of a nil *Session are safe to call.
func FromRequest(r *http.Request) *Session { return FromContext(r.Context()) }

// Middleware loads the request's session, runs next, and commits the
// session before the first byte of the response: on the handler's first
// WriteHeader, Write, Flush or Hijack, or when it returns. A failed load or
// save answers with Options.ErrorHandler instead of the handler's response.
func (m *Manager) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !pathMatches(m.cookieOpts.Path, r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		s, unlock, err := m.load(r)
		if unlock != nil {
			defer unlock()
		}
		if err != nil {
			m.fail(w, r, err)
			return
		}
		rw := &responseWriter{ResponseWriter: w, m: m, s: s, r: r}
		next.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), ctxKey{}, s)))
		rw.finish()
	})
}

// sessionCookie finds the session cookie in the request's Cookie headers.
func (m *Manager) sessionCookie(r *http.Request) (string, bool) {
	lines := r.Header["Cookie"]
	switch len(lines) {
	case 0:
		return "", false
	case 1:
		return cookie.Get(lines[0], m.name)
	default:
		return cookie.Get(strings.Join(lines, "; "), m.name)
	}
}

// verify returns the session id a cookie value carries, and whether it was
// signed by an older secret (so the response re-signs it).
func (m *Manager) verify(v string) (id string, old bool, ok bool) {
	if len(v) < 2 || v[0] != 's' || v[1] != ':' {
		return "", false, false
	}
	v = v[2:]
	if id, ok := cookie.Unsign(v, m.secrets[0]); ok && store.ValidID(id) {
		return id, false, true
	}
	if len(m.secrets) > 1 {
		if id, ok := cookie.Unsign(v, m.secrets[1:]...); ok && store.ValidID(id) {
			return id, true, true
		}
	}
	return "", false, false
}

// load builds the request's session: the stored one when the request
// carries a correctly signed cookie whose id the store knows, else a new
// one. It never adopts an id the server did not issue.
func (m *Manager) load(r *http.Request) (s *Session, unlock func(), err error) {
	now := m.now()
	s = &Session{m: m, now: now}
	v, ok := m.sessionCookie(r)
	if ok {
		s.hadCookie = true
		id, old, valid := m.verify(v)
		if valid {
			if m.locks != nil {
				unlock, err = m.locks.lock(r.Context(), id)
				if err != nil {
					return nil, nil, fmt.Errorf("galleta: wait for the session's other request: %w", err)
				}
			}
			rec, err := m.storeGet(r.Context(), id)
			switch {
			case err == nil:
				if m.adopt(s, id, rec, now) {
					s.resign = old
					return s, unlock, nil
				}
			case errors.Is(err, store.ErrNotFound):
				m.log.Debug("galleta: signed session cookie names no live session (expired, deleted or unknown); starting a new session")
			default:
				return nil, unlock, fmt.Errorf("galleta: load session: %w", redact(err, id))
			}
		} else {
			m.log.Debug("galleta: session cookie with a bad signature ignored; starting a new session")
		}
	}
	s.meta = record.Meta{Created: now, Deadline: m.deadline(now)}
	s.cookie = m.newCookie()
	// Like express-session's secure:'auto', resolved when the session is
	// created, so a Node service re-sending this cookie keeps Secure.
	s.cookie.Secure = m.isSecure(r)
	return s, unlock, nil
}

// adopt fills s from a stored record. It returns false (and deletes the
// record) when the record is expired by the Manager's clock or its absolute
// deadline, or is corrupt.
func (m *Manager) adopt(s *Session, id string, rec store.Record, now time.Time) bool {
	if !rec.Expires.IsZero() && !now.Before(rec.Expires) {
		m.dropExpired(id)
		return false
	}
	if err := s.decodeLocked(rec); err != nil {
		m.log.Warn("galleta: stored session is not valid; starting a new session", "err", err)
		return false
	}
	if !s.meta.Deadline.IsZero() && !now.Before(s.meta.Deadline) {
		m.dropExpired(id)
		return false
	}
	s.id, s.cookieID, s.loaded = id, id, true
	return true
}

func (m *Manager) dropExpired(id string) {
	ctx, cancel := m.commitContext(context.Background())
	defer cancel()
	if err := m.st.Delete(ctx, id); err != nil {
		m.log.Warn("galleta: delete expired session", "err", redact(err, id))
	}
}

// errCommitConflict means the session was deleted by another request
// between load and commit: this request's changes are dropped.
var errCommitConflict = errors.New("session deleted by another request")

// saveLocked writes the session to the store when it needs it: a new
// session with content (or SaveUninitialized), a regenerated one, or any
// change. explicit forces a new session to be stored. It reports whether it
// wrote.
func (m *Manager) saveLocked(ctx context.Context, s *Session, explicit bool) (bool, error) {
	if s.destroyed {
		return false, nil
	}
	if s.loaded && !s.dirty {
		return false, nil
	}
	if !s.loaded && !s.dirty && !s.regenerated && !explicit && !m.saveUninit {
		return false, nil
	}
	if s.id == "" {
		id, err := m.newID()
		if err != nil {
			return false, err
		}
		s.id = id
	}
	s.now = m.now()
	exp := s.expiryLocked()
	if !s.loaded || m.updater == nil {
		// A new id (nobody else can hold it), or a store without atomic
		// update (last writer wins, as the store's docs say).
		data := s.encodeLocked(s.values, s.cookie, s.meta, exp)
		if err := m.storeSet(ctx, s.id, store.Record{Data: data, Expires: exp}); err != nil {
			return false, fmt.Errorf("galleta: save session: %w", redact(err, s.id))
		}
		s.afterSave(data, exp)
		return true, nil
	}
	var (
		data     []byte
		merged   map[string]json.RawMessage
		conflict bool
	)
	pending := s.ops[s.committedOps:]
	err := m.storeUpdate(ctx, s.id, func(cur store.Record, found bool) (store.Record, bool, error) {
		if !found {
			conflict = true
			return store.Record{}, false, nil
		}
		conflict = false
		if bytes.Equal(cur.Data, s.base) {
			// Nobody wrote since we loaded: our state is the truth.
			merged = nil
			data = s.encodeLocked(s.values, s.cookie, s.meta, exp)
			return store.Record{Data: data, Expires: exp}, true, nil
		}
		var buf [16]record.Field
		fields, err := record.Fields(cur.Data, buf[:0])
		if err != nil {
			// The stored record went bad meanwhile: ours replaces it.
			merged = nil
			data = s.encodeLocked(s.values, s.cookie, s.meta, exp)
			return store.Record{Data: data, Expires: exp}, true, nil
		}
		merged = make(map[string]json.RawMessage, len(fields)+len(pending))
		for _, f := range fields {
			if !reserved(f.Key) {
				merged[f.Key] = json.RawMessage(f.Raw)
			}
		}
		replay(merged, pending)
		data = s.encodeLocked(merged, s.cookie, s.meta, exp)
		return store.Record{Data: data, Expires: exp}, true, nil
	})
	if err != nil {
		return false, fmt.Errorf("galleta: save session: %w", redact(err, s.id))
	}
	if conflict {
		s.loaded = false
		s.dirty = false
		s.gone = true
		return false, errCommitConflict
	}
	if merged != nil {
		s.values = merged
	}
	s.afterSave(data, exp)
	return true, nil
}

// touchLocked moves an unchanged session's idle expiry in the store, unless
// it would move by less than 1% of the idle window (at most a minute): busy
// sessions then cost no store write on most requests.
func (m *Manager) touchLocked(ctx context.Context, s *Session) error {
	if !s.loaded || s.destroyed {
		return nil
	}
	exp := s.expiryLocked()
	slack := min(s.idleWindowLocked()/100, time.Minute)
	if exp.Sub(s.storedExpires) < slack {
		return nil
	}
	err := m.storeTouch(ctx, s.id, exp)
	switch {
	case err == nil:
		s.storedExpires = exp
		return nil
	case errors.Is(err, store.ErrNotFound):
		s.loaded = false
		s.gone = true
		return nil
	default:
		return fmt.Errorf("galleta: touch session: %w", redact(err, s.id))
	}
}

// commit runs before the first byte of the response: it saves or touches
// the session and sets the response headers (Set-Cookie, Vary,
// Cache-Control).
func (m *Manager) commit(s *Session, h http.Header, r *http.Request) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.committed = true
	ctx, cancel := m.commitContext(r.Context())
	defer cancel()

	if s.accessed {
		addVary(h)
	}
	if s.destroyed {
		if s.hadCookie {
			o := m.cookieAttrs(m.isSecure(r), time.Time{})
			if err := cookie.Clear(h, m.name, o); err != nil {
				return fmt.Errorf("galleta: clear session cookie: %w", err)
			}
			noStore(h)
			addVary(h)
		}
		return nil
	}
	changed := s.dirty || s.regenerated || len(s.ops) > 0 // changed in this request, saved or not
	wrote, err := m.saveLocked(ctx, s, false)
	if errors.Is(err, errCommitConflict) {
		m.log.Info("galleta: session was deleted by another request before this one saved; its changes are dropped")
		return nil
	}
	if err != nil {
		return err
	}
	if !wrote {
		s.now = m.now()
		if err := m.touchLocked(ctx, s); err != nil {
			return err
		}
	}
	if !s.loaded {
		return nil
	}
	send := false
	if s.cookieID != s.id {
		send = true // new or regenerated, and stored
	} else {
		send = m.rolling || s.resign || s.maxAgeChanged || (changed && s.cookie.OriginalMaxAge >= 0)
	}
	if !send {
		return nil
	}
	secure := m.isSecure(r)
	if secure && !m.requestSecure(r) && m.cookieOpts.Secure == SecureAlways && !isLocalhost(r) {
		// express-session: a Secure cookie is not sent over plain HTTP
		// (the store write above still happened).
		return nil
	}
	var expires time.Time
	if s.cookie.OriginalMaxAge >= 0 {
		expires = s.now.Add(time.Duration(s.cookie.OriginalMaxAge) * time.Millisecond)
		if !s.meta.Deadline.IsZero() && s.meta.Deadline.Before(expires) {
			expires = s.meta.Deadline
		}
	}
	o := m.cookieAttrs(secure, expires)
	if err := cookie.SetSigned(h, m.name, s.id, m.secrets[0], o); err != nil {
		return fmt.Errorf("galleta: set session cookie: %w", err)
	}
	addVary(h)
	noStore(h)
	return nil
}

// isLocalhost reports whether the request is for a loopback host, where
// browsers accept Secure cookies over plain HTTP.
func isLocalhost(r *http.Request) bool {
	host := r.Host
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		host = host[:i]
	}
	return host == "localhost" || strings.HasSuffix(host, ".localhost") || host == "127.0.0.1" || host == "[::1]"
}

func addVary(h http.Header) {
	for _, v := range h["Vary"] {
		for _, f := range strings.Split(v, ",") {
			f = strings.TrimSpace(f)
			if f == "*" || strings.EqualFold(f, "Cookie") {
				return
			}
		}
	}
	h.Add("Vary", "Cookie")
}

// noStore keeps a response that sets a cookie out of shared caches.
func noStore(h http.Header) {
	cc := strings.ToLower(strings.Join(h["Cache-Control"], ","))
	if strings.Contains(cc, "no-store") || (strings.Contains(cc, "private") && !strings.Contains(cc, "public")) {
		return
	}
	h.Set("Cache-Control", "no-store")
}

// fail answers a request whose session could not be loaded or saved.
func (m *Manager) fail(w http.ResponseWriter, r *http.Request, err error) {
	if m.onError != nil {
		m.onError(w, r, err)
		return
	}
	unavailable := IsUnavailable(err)
	m.log.Error("galleta: session store failed", "err", err, "method", r.Method, "path", r.URL.Path, "unavailable", unavailable)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if unavailable {
		w.Header().Set("Retry-After", m.retryAfter)
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "Service unavailable: the session store cannot be reached. Try again shortly.\n")
		return
	}
	w.WriteHeader(http.StatusInternalServerError)
	io.WriteString(w, "Internal server error: the session could not be loaded or saved.\n")
}

// IsUnavailable reports whether err means the session store could not be
// reached (the default error handler's 503 case): it wraps
// store.ErrUnavailable or a deadline.
func IsUnavailable(err error) bool {
	return errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// Store calls, each bounded by StoreTimeout.

func (m *Manager) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if m.timeout < 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, m.timeout)
}

// commitContext is for writes: they finish even if the client went away
// (the handler did its work; losing the write would be worse).
func (m *Manager) commitContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return m.callContext(context.WithoutCancel(ctx))
}

func (m *Manager) storeGet(ctx context.Context, id string) (store.Record, error) {
	ctx, cancel := m.callContext(ctx)
	defer cancel()
	return m.st.Get(ctx, id)
}

func (m *Manager) storeSet(ctx context.Context, id string, rec store.Record) error {
	ctx, cancel := m.callContext(ctx)
	defer cancel()
	return m.st.Set(ctx, id, rec)
}

func (m *Manager) storeDelete(ctx context.Context, id string) error {
	ctx, cancel := m.commitContext(ctx)
	defer cancel()
	if err := m.st.Delete(ctx, id); err != nil {
		return redact(err, id)
	}
	return nil
}

func (m *Manager) storeTouch(ctx context.Context, id string, exp time.Time) error {
	ctx, cancel := m.callContext(ctx)
	defer cancel()
	return m.st.Touch(ctx, id, exp)
}

func (m *Manager) storeUpdate(ctx context.Context, id string, fn store.UpdateFunc) error {
	ctx, cancel := m.callContext(ctx)
	defer cancel()
	return m.updater.Update(ctx, id, fn)
}

// redact hides a session id inside a store's error text (a file path, a
// key), keeping the error chain for errors.Is.
func redact(err error, id string) error {
	if err == nil || id == "" || !strings.Contains(err.Error(), id) {
		return err
	}
	return &redacted{err: err, id: id}
}

type redacted struct {
	err error
	id  string
}

func (r *redacted) Error() string {
	return strings.ReplaceAll(r.err.Error(), r.id, "<session-id>")
}
func (r *redacted) Unwrap() error { return r.err }

// keyedLocks serialises the requests of one session (Options.LockSessions).
type keyedLocks struct {
	mu sync.Mutex
	m  map[string]*keyedLock
}

type keyedLock struct {
	ch   chan struct{}
	refs int
}

func (k *keyedLocks) lock(ctx context.Context, id string) (func(), error) {
	k.mu.Lock()
	l := k.m[id]
	if l == nil {
		l = &keyedLock{ch: make(chan struct{}, 1)}
		k.m[id] = l
	}
	l.refs++
	k.mu.Unlock()
	release := func() {
		k.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(k.m, id)
		}
		k.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
