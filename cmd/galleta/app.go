package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/store"
)

//go:embed web
var webFS embed.FS

const (
	maxBody    = 16 << 10 // form and JSON bodies
	maxUserLen = 64
)

// app is the demo web app.
type app struct {
	cfg        serveConfig
	secret     string
	m          *galleta.Manager
	st         *instrumented
	closeStore func() error
	tmpl       *template.Template
	log        *slog.Logger
	metrics    *metrics
	adminHash  [32]byte
	now        func() time.Time
	health     health
	live       *liveCount // nil when the store cannot count
	throttle   *throttle  // admin sign-in
}

// newApp opens the store the configuration names and builds the app on it.
func newApp(c serveConfig, secret string, log *slog.Logger) (*app, error) {
	raw, closeStore, err := openStore(c.store, c.idle, log, openServe)
	if err != nil {
		return nil, err
	}
	if c.store.kind == "memory" {
		log.Warn("galleta: --store memory: sessions live in this server's memory only; they are lost when the server exits and are not shared with other processes (use --store file:DIR to keep them)")
	}
	return buildApp(c, secret, log, raw, closeStore, time.Now)
}

// buildApp builds the app on an open store, which it owns from then on
// (closeStore runs at close, or here when building fails). now is the
// clock of the app's own timing (tests inject one).
func buildApp(c serveConfig, secret string, log *slog.Logger, raw store.Store, closeStore func() error, now func() time.Time) (*app, error) {
	mt := newMetrics()
	st := instrument(raw, mt)
	m, err := galleta.New(galleta.Options{
		CookieName:      c.cookieName,
		Secrets:         []string{secret},
		Store:           st,
		IdleTimeout:     c.idle,
		AbsoluteTimeout: c.absolute,
		Cookie:          galleta.CookieOptions{Secure: c.secure},
		TrustProxy:      c.trustProxy,
		Logger:          log,
	})
	if err != nil {
		closeStore()
		return nil, err
	}
	tmpl, err := template.New("").Funcs(template.FuncMap{
		"visible": visible,
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return t.Local().Format("2006-01-02 15:04:05 MST")
		},
		"ago": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			d := time.Until(t).Round(time.Second)
			if d < 0 {
				return (-d).String() + " ago"
			}
			return "in " + d.String()
		},
	}).ParseFS(webFS, "web/templates/*.html")
	if err != nil {
		m.Close()
		closeStore()
		return nil, fmt.Errorf("parse templates: %w", err)
	}
	a := &app{cfg: c, secret: secret, m: m, st: st, closeStore: closeStore, tmpl: tmpl, log: log, metrics: mt, now: now, throttle: newThrottle(now)}
	if c.adminPassword != "" {
		a.adminHash = sha256.Sum256([]byte(c.adminPassword))
	}
	if counter, ok := raw.(store.Counter); ok {
		a.live = newLiveCount(counter, now, liveEvery, log)
	}
	return a, nil
}

// waitLiveCount waits for a count of live sessions under way (tests).
func (a *app) waitLiveCount() {
	if a.live != nil {
		a.live.wait()
	}
}

func (a *app) close() {
	if a.live != nil {
		a.live.close()
	}
	a.m.Close()
	if err := a.closeStore(); err != nil {
		a.log.Error("galleta: close store", "err", err)
	}
}

func (a *app) handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(webFS, "web/static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("GET /login", a.loginForm)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("GET /profile", a.profile)
	mux.HandleFunc("GET /cookies", a.cookieLab)
	mux.HandleFunc("POST /cookies", a.cookieSet)
	mux.HandleFunc("POST /cookies/delete", a.cookieDelete)
	mux.HandleFunc("GET /admin", a.admin)
	mux.HandleFunc("POST /admin/login", a.adminLogin)
	mux.HandleFunc("POST /admin/logout", a.adminLogout)
	mux.HandleFunc("POST /admin/revoke", a.adminRevoke)
	mux.HandleFunc("POST /admin/revoke-user", a.adminRevokeUser)
	mux.HandleFunc("POST /api/login", a.apiLogin)
	mux.HandleFunc("POST /api/logout", a.apiLogout)
	mux.HandleFunc("GET /api/me", a.apiMe)
	mux.HandleFunc("POST /api/visits", a.apiVisits)
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /metrics", a.serveMetrics)

	var h http.Handler = mux
	h = a.m.Middleware(h)
	h = limitBody(h)
	h = http.NewCrossOriginProtection().Handler(h)
	h = a.logRequests(h)
	return h
}

// limitBody caps request bodies; handlers turn the cap into a 413.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		next.ServeHTTP(w, r)
	})
}

// statusWriter records the status for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(p)
	s.bytes += int64(n)
	return n, err
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) Flush() { http.NewResponseController(s.ResponseWriter).Flush() }

// logRequests writes one line per request: method, path, status, latency.
// Never a cookie or a session id.
func (a *app) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		d := time.Since(start)
		a.metrics.request(sw.status, d)
		a.log.Info("request", "method", r.Method, "path", visible(r.URL.Path), "status", sw.status, "bytes", sw.bytes, "latency", d.Round(time.Microsecond).String())
	})
}

// page is what every template gets.
type page struct {
	Title   string
	User    string
	Admin   bool // the session is signed in as admin
	AdminOn bool // the admin page is on (--admin-password)
	Flashes []string
	Errors  []string
	Data    any
}

func (a *app) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	s := galleta.FromRequest(r)
	p.User, _ = s.GetString("user")
	p.User = visible(p.User) // stored by anyone (a Node app too)
	p.AdminOn = a.cfg.adminPassword != ""
	p.Admin = a.isAdmin(r)
	p.Flashes = append(p.Flashes, s.Flashes("info")...)
	var buf strings.Builder
	if err := a.tmpl.ExecuteTemplate(&buf, name, p); err != nil {
		a.log.Error("galleta: render page", "page", name, "err", err)
		http.Error(w, "page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(buf.String()))
}

// storeFailed answers a request whose store call failed: the error (which
// may name a file or hold a raw driver message) goes to the log, the
// client gets a fixed text, 503 with Retry-After when the store is
// unavailable, else 500. Errors from the Manager never hold a session id;
// callers that have one in hand pass it through scrub first.
func (a *app) storeFailed(w http.ResponseWriter, r *http.Request, what string, err error) {
	a.log.Error("galleta: "+what, "path", visible(r.URL.Path), "err", err)
	status, msg := http.StatusInternalServerError, "The session store failed; the details are in the server's log."
	if galleta.IsUnavailable(err) {
		status, msg = http.StatusServiceUnavailable, "The session store is not answering; try again in a moment."
		w.Header().Set("Retry-After", "5")
	}
	if strings.HasPrefix(r.URL.Path, "/api/") {
		jsonError(w, status, msg)
		return
	}
	http.Error(w, msg, status)
}

// scrub hides a session id in an error's text (a store may name a file
// after the id), keeping the chain for errors.Is.
func scrub(err error, id string) error {
	if err == nil || id == "" || !strings.Contains(err.Error(), id) {
		return err
	}
	return scrubbed{err, strings.ReplaceAll(err.Error(), id, "<session-id>")}
}

type scrubbed struct {
	err error
	msg string
}

func (s scrubbed) Error() string { return s.msg }
func (s scrubbed) Unwrap() error { return s.err }

// formValue reads a form field, reporting a body over the cap as 413.
func formValue(w http.ResponseWriter, r *http.Request, key string) (string, bool) {
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		} else {
			http.Error(w, "the form could not be read", http.StatusBadRequest)
		}
		return "", false
	}
	return r.PostForm.Get(key), true
}

// checkUser validates a user name: 1-64 bytes of UTF-8 without control,
// bidi or other invisible format characters (see invisible).
func checkUser(u string) (status int, msg string) {
	u = strings.TrimSpace(u)
	switch {
	case u == "":
		return http.StatusBadRequest, "enter a user name"
	case len(u) > maxUserLen:
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("a user name is at most %d bytes", maxUserLen)
	case !utf8.ValidString(u) || strings.ContainsFunc(u, invisible):
		return http.StatusBadRequest, "a user name must be printable text: no control characters, bidi controls or other invisible characters"
	}
	return 0, ""
}

// countVisit adds one to the session's visits and saves at once, so the
// count it returns is the stored one: the Incr result alone is this
// request's view, which misses overlapping requests' increments. Save
// leaves the session holding the merged, stored value.
func (a *app) countVisit(r *http.Request) (int64, error) {
	s := galleta.FromRequest(r)
	if _, err := s.Incr("visits", 1); err != nil {
		return 0, err
	}
	if err := s.Save(r.Context()); err != nil {
		return 0, err
	}
	n, _ := s.GetInt("visits")
	return n, nil
}

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	n, err := a.countVisit(r)
	if err != nil {
		a.storeFailed(w, r, "count a visit", err)
		return
	}
	a.render(w, r, http.StatusOK, "home.html", page{Title: "Home", Data: map[string]any{"Visits": n}})
}

func (a *app) loginForm(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "login.html", page{Title: "Sign in"})
}

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	u, ok := formValue(w, r, "user")
	if !ok {
		return
	}
	if status, msg := checkUser(u); status != 0 {
		a.render(w, r, status, "login.html", page{Title: "Sign in", Errors: []string{msg}})
		return
	}
	if err := a.signIn(r, strings.TrimSpace(u)); err != nil {
		a.storeFailed(w, r, "sign in", err)
		return
	}
	galleta.FromRequest(r).AddFlash("info", "Signed in as "+strings.TrimSpace(u)+".")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// signIn regenerates the session id (a change of privilege) and records
// the user.
func (a *app) signIn(r *http.Request, user string) error {
	s := galleta.FromRequest(r)
	if err := s.Regenerate(r.Context()); err != nil {
		return err
	}
	return s.Set("user", user)
}

func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	if err := galleta.FromRequest(r).Destroy(r.Context()); err != nil {
		a.storeFailed(w, r, "sign out", err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (a *app) profile(w http.ResponseWriter, r *http.Request) {
	s := galleta.FromRequest(r)
	id := s.ID()
	suffix := ""
	if len(id) > 6 {
		suffix = "…" + id[len(id)-6:]
	}
	a.render(w, r, http.StatusOK, "profile.html", page{Title: "Profile", Data: map[string]any{
		"New":      s.IsNew(),
		"Created":  s.CreatedAt(),
		"Expires":  s.ExpiresAt(),
		"Deadline": s.Deadline(),
		"Idle":     a.cfg.idle,
		"Absolute": a.cfg.absolute,
		"IDSuffix": suffix,
		"Keys":     s.Keys(),
	}})
}

// healthTTL is how long one health check answers /healthz: a ping of the
// file store writes and syncs a probe file, and /healthz needs no login.
const healthTTL = time.Second

// healthTimeout bounds one health check: a stalled store answers 503 after
// it.
const healthTimeout = 2 * time.Second

// health is the last health check; its mutex is held while one runs, so
// checks run one at a time and the waiters reuse its result.
type health struct {
	mu  sync.Mutex
	at  time.Time
	err error
	ok  bool // a check has run
}

// healthz answers 200 when the store can serve reads and writes now: a
// store with Ping proves a write would succeed; others are asked for a
// missing id. Failures are 503 with a fixed body; the detail is logged.
func (a *app) healthz(w http.ResponseWriter, r *http.Request) {
	err := a.checkHealth(r.Context())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "unhealthy: the session store is not answering\n")
		return
	}
	io.WriteString(w, "ok\n")
}

// checkHealth runs a check, or reuses one that ended less than healthTTL
// ago. A result's age counts from the end of its check, so the requests
// that queued behind a slow one (a stalled store takes the whole 2-second
// bound) take its result instead of each running another; a recovery shows
// at most healthTTL after the last failing check ended.
func (a *app) checkHealth(ctx context.Context) error {
	h := &a.health
	h.mu.Lock()
	defer h.mu.Unlock()
	now := a.now()
	if h.ok && !now.Before(h.at) && now.Sub(h.at) < healthTTL {
		return h.err
	}
	// The check outlives a client that hangs up: its result serves others.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), healthTimeout)
	defer cancel()
	var err error
	if p, ok := a.st.inner.(store.Pinger); ok {
		err = p.Ping(ctx)
	} else if _, err = a.st.inner.Get(ctx, "healthz-probe"); errors.Is(err, store.ErrNotFound) {
		err = nil
	}
	if err != nil {
		a.log.Error("galleta: health check failed", "store", a.cfg.store.String(), "err", err)
	}
	h.at, h.err, h.ok = a.now(), err, true
	return err
}

// adminOK reports whether the password matches, in constant time.
func (a *app) adminOK(pw string) bool {
	if a.cfg.adminPassword == "" {
		return false
	}
	h := sha256.Sum256([]byte(pw))
	return subtle.ConstantTimeCompare(h[:], a.adminHash[:]) == 1
}

// handle is an opaque name for a session on the admin page, so the page
// never carries session ids: HMAC-like hash of secret and id.
func (a *app) handle(id string) string {
	h := sha256.Sum256([]byte(a.secret + "\x00admin\x00" + id))
	return hex.EncodeToString(h[:12])
}
