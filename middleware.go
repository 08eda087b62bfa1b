package galleta

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/galleta-go/galleta/cookie"
	"github.com/galleta-go/galleta/internal/record"
	"github.com/galleta-go/galleta/store"
)

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
	s = &Session{m: m, now: m.now()}
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
				if m.adopt(r.Context(), s, id, rec) {
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
	s.data = record.Session{Cookie: m.newCookie(m.isSecure(r)), Meta: m.newMeta(s.now)}
	return s, unlock, nil
}

// adopt makes s the stored session id. It returns false (and deletes the
// record) when the record is expired by the Manager's clock or its absolute
// deadline, or is corrupt.
func (m *Manager) adopt(ctx context.Context, s *Session, id string, rec store.Record) bool {
	if !rec.Expires.IsZero() && !s.now.Before(rec.Expires) {
		m.dropExpired(ctx, id)
		return false
	}
	var d record.Session
	if err := record.Decode(rec.Data, &d, m.newCookie(m.cookieOpts.Secure == SecureAlways)); err != nil {
		m.log.Warn("galleta: stored session is not valid; starting a new session", "err", err)
		return false
	}
	s.adopt(d, rec)
	if dl := s.data.Meta.Deadline; !dl.IsZero() && !s.now.Before(dl) {
		m.dropExpired(ctx, id)
		return false
	}
	s.id, s.cookieID, s.state = id, id, stateStored
	return true
}

// dropExpired deletes a record the Manager found expired. It runs even if
// the client went away (bounded by StoreTimeout); a failure only logs,
// since the store expires the record by itself too.
func (m *Manager) dropExpired(ctx context.Context, id string) {
	if err := m.storeDelete(ctx, id); err != nil {
		m.log.Warn("galleta: delete expired session", "err", err)
	}
}
