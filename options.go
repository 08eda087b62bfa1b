package galleta

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/galleta-go/galleta/store"
)

// Options configure a Manager. The zero value of every field means its
// documented default; only Secrets is required.
type Options struct {
	// CookieName is the name of the session cookie. Default "sid". Use
	// "connect.sid" to share sessions with an Express app, or a "__Host-"
	// name (which needs Cookie.Secure = SecureAlways) for the strictest
	// browser rules.
	CookieName string

	// Secrets sign the session cookie: the first signs, every one verifies,
	// so a new secret goes first and an old one stays until the cookies it
	// signed have expired (a cookie verified by an older secret is re-signed
	// with the first in the same response). Required. Each must be at least
	// 32 bytes unless AllowShortSecrets is set.
	Secrets []string

	// AllowShortSecrets accepts secrets shorter than 32 bytes, for sharing
	// cookies with an existing Express app whose secret is short. Default
	// false.
	AllowShortSecrets bool

	// Store keeps the sessions. Default: a new memory store (memstore),
	// which the Manager closes on Close. A Store that implements
	// store.Updater gets the no-lost-update guarantee; one that does not is
	// last-writer-wins.
	Store store.Store

	// Cookie sets the session cookie's attributes.
	Cookie CookieOptions

	// IdleTimeout ends a session that sees no request for this long
	// (rolling: every request moves it). A session with its own max age
	// (Cookie.MaxAge or Session.SetMaxAge) uses that instead. Default 1
	// hour, which is also session-file-store's default ttl.
	IdleTimeout time.Duration

	// AbsoluteTimeout ends a session this long after it was created,
	// however active it is; Regenerate does not restart it. Default 12
	// hours (ASVS level 2). Negative: no absolute timeout.
	AbsoluteTimeout time.Duration

	// Rolling sends the session cookie on every response, as express-session's
	// rolling option does, so a persistent cookie's Expires moves with the
	// idle timeout. Default false: the cookie is sent when the session is
	// created or regenerated, when its max age changes, and (for a persistent
	// cookie) when its data changed.
	Rolling bool

	// SaveUninitialized stores a new session even when the request did not
	// put anything in it. Default false: an empty new session is never
	// stored and no cookie is sent, so anonymous traffic costs no store
	// writes.
	SaveUninitialized bool

	// LockSessions makes the requests of one session run one at a time in
	// this process, from load to commit, for handlers that do a
	// read-modify-write of one key (n := GetInt; Set(n+1)). Default false:
	// requests run in parallel and each one's changes are merged key by key
	// at commit (use Session.Incr for counters). The lock is per process.
	LockSessions bool

	// GenerateID makes new session ids. Default: 32 bytes from crypto/rand,
	// base64url without padding (43 characters, 256 bits). An id must pass
	// store.ValidID; an error fails the request with a 500.
	GenerateID func() (string, error)

	// ErrorHandler writes the response when loading or saving the session
	// fails. err wraps store.ErrUnavailable when the store cannot be
	// reached. Default: 503 with Retry-After for an unavailable store, 500
	// otherwise, a plain-text body without the session id, and the user's
	// cookie left alone.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

	// TrustProxy believes the X-Forwarded-Proto header of the request when
	// deciding whether the request came over HTTPS (for Cookie.Secure =
	// SecureAuto). Default false: only a TLS connection counts. Set it only
	// behind a proxy that sets or strips the header.
	TrustProxy bool

	// StoreTimeout bounds each store call. Default 5 seconds. Negative: no
	// bound beyond the request's context. Not applied to a store that never
	// waits (store.Immediate: the memory store).
	StoreTimeout time.Duration

	// RetryAfter is the Retry-After value sent with a 503 when the store is
	// unavailable. Default 5 seconds.
	RetryAfter time.Duration

	// Now is the clock. Default time.Now. Tests inject one so expiry never
	// needs a sleep.
	Now func() time.Time

	// Logger receives the Manager's log lines (never a session id or a
	// cookie value). Default slog.Default().
	Logger *slog.Logger
}

// CookieOptions are the session cookie's attributes.
type CookieOptions struct {
	// Path scopes the cookie and the middleware: requests outside it (by
	// whole path segments: "/app" covers "/app" and "/app/x", not
	// "/application") get no session. Default "/".
	Path string

	// Domain of the cookie. Default none (host-only).
	Domain string

	// Secure decides the Secure attribute. Default SecureAuto.
	Secure SecureMode

	// DisableHTTPOnly lets scripts in the page read the cookie. Default
	// false: HttpOnly is set.
	DisableHTTPOnly bool

	// SameSite attribute. Default http.SameSiteLaxMode.
	SameSite http.SameSite

	// Partitioned sets the Partitioned attribute (CHIPS); it needs Secure.
	// Default false.
	Partitioned bool

	// MaxAge makes the cookie persistent: Expires is set MaxAge from each
	// save, and the session's idle window becomes MaxAge. Default 0: a
	// browser-session cookie (no Expires), ended by the browser on close and
	// by IdleTimeout on the server.
	MaxAge time.Duration
}

// SecureMode decides the session cookie's Secure attribute.
type SecureMode int

const (
	// SecureAuto sets Secure when the request came over HTTPS (TLS, or a
	// trusted proxy's X-Forwarded-Proto: https). The default.
	SecureAuto SecureMode = iota
	// SecureAlways always sets Secure. Browsers then send the cookie only
	// over HTTPS (and to http://localhost). Over plain HTTP the cookie is not
	// sent at all, as express-session does.
	SecureAlways
	// SecureNever never sets Secure. For local development only.
	SecureNever
)
