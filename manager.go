package galleta

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/galleta-go/galleta/cookie"
	"github.com/galleta-go/galleta/internal/record"
	"github.com/galleta-go/galleta/memstore"
	"github.com/galleta-go/galleta/store"
)

// Defaults of Options that callers may want to show or reuse.
const (
	DefaultIdleTimeout     = time.Hour
	DefaultAbsoluteTimeout = 12 * time.Hour
	// MinSecretLen is the shortest secret New accepts unless
	// Options.AllowShortSecrets is set.
	MinSecretLen = 32
)

const (
	defaultCookieName   = "sid"
	defaultStoreTimeout = 5 * time.Second
	defaultRetryAfter   = 5 * time.Second
)

// Manager loads a request's session before the handler runs and commits it
// before the first byte of the response. Create one with New, wrap handlers
// with Middleware, and Close it on shutdown.
//
// The Manager holds the configuration and does the loading (middleware.go);
// the Session records what a handler does, and commits itself (commit.go)
// with the Manager's settings.
type Manager struct {
	name       string
	secrets    []string
	st         store.Store
	updater    store.Updater
	optimistic store.OptimisticUpdater
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
		m.name = defaultCookieName
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
		m.timeout = defaultStoreTimeout
	}

	ra := o.RetryAfter
	if ra <= 0 {
		ra = defaultRetryAfter
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
	if _, ok := m.st.(store.Immediate); ok {
		m.timeout = -1 // nothing to bound; a timer per call would cost
	}
	m.optimistic, _ = m.st.(store.OptimisticUpdater)
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
		if !secure && c.Secure == SecureAlways {
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

// deadline is the absolute deadline of a session created at created, or
// zero with no absolute timeout.
func (m *Manager) deadline(created time.Time) time.Time {
	if m.absolute < 0 {
		return time.Time{}
	}
	return created.Add(m.absolute)
}

// newMeta is the bookkeeping of a session created now.
func (m *Manager) newMeta(now time.Time) record.Meta {
	return record.Meta{Created: now, Deadline: m.deadline(now)}
}

// newCookie is the stored cookie object of a new session. secure is the
// resolved Secure attribute: with SecureAuto it is fixed when the session
// is created, like express-session's secure:'auto', so a Node service
// re-sending the cookie keeps it.
func (m *Manager) newCookie(secure bool) record.Cookie {
	c := record.Cookie{
		OriginalMaxAge: -1,
		HTTPOnly:       !m.cookieOpts.DisableHTTPOnly,
		Path:           m.cookieOpts.Path,
		Domain:         m.cookieOpts.Domain,
		Partitioned:    m.cookieOpts.Partitioned,
		Secure:         secure,
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

// storeSet, storeTouch and storeUpdate are the commit's calls: their ctx is
// already bounded by StoreTimeout (commitContext, or callContext in
// Session.Save and Touch), once for the whole commit, which makes at most
// one of them.

func (m *Manager) storeSet(ctx context.Context, id string, rec store.Record) error {
	return m.st.Set(ctx, id, rec)
}

func (m *Manager) storeDelete(ctx context.Context, id string) error {
	ctx, cancel := m.commitContext(ctx)
	defer cancel()
	return redact(m.st.Delete(ctx, id), id)
}

func (m *Manager) storeTouch(ctx context.Context, id string, exp time.Time) error {
	return m.st.Touch(ctx, id, exp)
}

// storeUpdate updates id atomically; seen (the record this request loaded
// or last wrote) lets an OptimisticUpdater skip its read.
func (m *Manager) storeUpdate(ctx context.Context, id string, seen store.Record, fn store.UpdateFunc) error {
	if m.optimistic != nil {
		return m.optimistic.UpdateFrom(ctx, id, seen, fn)
	}
	return m.updater.Update(ctx, id, fn)
}
