package galleta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/galleta-go/galleta/cookie"
	"github.com/galleta-go/galleta/internal/record"
	"github.com/galleta-go/galleta/store"
)

// The commit: everything that writes a session to the store or its cookie
// to the response. It runs with s.mu held, from the response writer (before
// the first byte, and when the handler returns) and from Session.Save, with
// a context already bounded by StoreTimeout.

// save writes the session when the store lacks something of it: a new
// session with content (or any new session when force or
// SaveUninitialized), a regenerated one, or a change. It reports whether it
// wrote. A session deleted by another request meanwhile is not written
// back: the state becomes stateGone and the error wraps ErrDeleted.
func (s *Session) save(ctx context.Context, force bool) (bool, error) {
	switch s.state {
	case stateDestroyed:
		return false, nil
	case stateGone:
		return false, ErrDeleted
	case stateNew:
		if !s.dirty() && !force && !s.m.saveUninit {
			return false, nil
		}
	case stateStored:
		if !s.dirty() {
			return false, nil
		}
	}
	if s.id == "" {
		id, err := s.m.newID()
		if err != nil {
			return false, err
		}
		s.id = id
	}
	s.now = s.m.now()
	exp := s.expiry()
	if d := exp.Sub(s.stored); s.state == stateStored && d >= 0 && d < s.slack() {
		// The stored expiry moves in steps of the touch's slack, changes
		// or not: a row whose indexed expiry stays put is rewritten in
		// place (a HOT update in PostgreSQL: no index entries), and the
		// session may end up to that much earlier, as with touches.
		exp = s.stored
	}
	if s.state != stateStored || s.m.updater == nil {
		// A new id (nobody else can hold it), or a store without atomic
		// update (last writer wins, as the store's docs say).
		data := s.encode(s.data.Values)
		if err := s.m.storeSet(ctx, s.id, store.Record{Data: data, Expires: exp}); err != nil {
			return false, fmt.Errorf("galleta: save session: %w", redact(err, s.id))
		}
		s.wrote(data, exp)
		return true, nil
	}
	s.merge = merger{s: s, pending: s.ops[s.saved:], exp: exp}
	err := s.m.storeUpdate(ctx, s.id, store.Record{Data: s.base, Expires: s.stored}, s.merge.update)
	data, merged, gone := s.merge.data, s.merge.merged, s.merge.gone
	s.merge = merger{}
	if err != nil {
		return false, fmt.Errorf("galleta: save session: %w", redact(err, s.id))
	}
	if gone {
		s.state = stateGone
		return false, ErrDeleted
	}
	if merged != nil {
		s.data.Values = merged
	}
	s.wrote(data, exp)
	return true, nil
}

// merger is the update function of a commit (and its results), kept in the
// Session so that a commit allocates no closure state of its own.
type merger struct {
	s       *Session
	pending []record.Op // the request's changes the store lacks
	exp     time.Time

	data   []byte                     // the record written
	merged map[string]json.RawMessage // the values written, when they differ from the session's
	gone   bool                       // the record was gone: nothing written
}

// update is the store.UpdateFunc of a commit. When the stored bytes are
// the ones the request loaded, the session's own state is the truth;
// otherwise another request wrote meanwhile, and the request's changes are
// replayed on what it stored. A stored record that went bad meanwhile is
// replaced by this request's state. It may run more than once.
func (u *merger) update(cur store.Record, found bool) (store.Record, bool, error) {
	s := u.s
	u.data, u.merged, u.gone = nil, nil, !found
	if u.gone {
		return store.Record{}, false, nil
	}
	if !bytes.Equal(cur.Data, s.base) {
		m, err := record.Merge(cur.Data, u.pending)
		if errors.Is(err, record.ErrOverflow) {
			return store.Record{}, false, err
		}
		if err == nil {
			u.merged = m
		}
	}
	if u.merged != nil {
		u.data = s.encode(u.merged)
	} else {
		u.data = s.encode(s.data.Values)
	}
	return store.Record{Data: u.data, Expires: u.exp}, true, nil
}

// wrote records that the store holds data, expiring at exp, under s.id.
func (s *Session) wrote(data []byte, exp time.Time) {
	s.state = stateStored
	s.base = data
	s.stored = exp
	s.saved = len(s.ops)
	s.unsaved = false
}

// slack is how far the stored expiry may lag behind the session's: 1% of
// the idle window, at most a minute.
func (s *Session) slack() time.Duration { return min(s.idleWindow()/100, time.Minute) }

// touch moves a stored, unchanged session's idle expiry in the store. Unless
// always, it skips a move of less than 1% of the idle window (at most a
// minute): busy sessions then cost no store write on most requests. A
// session the store no longer has becomes stateGone.
func (s *Session) touch(ctx context.Context, always bool) error {
	if s.state != stateStored {
		return nil
	}
	exp := s.expiry()
	if !always && exp.Sub(s.stored) < s.slack() {
		return nil
	}
	err := s.m.storeTouch(ctx, s.id, exp)
	switch {
	case err == nil:
		s.stored = exp
		return nil
	case errors.Is(err, store.ErrNotFound):
		s.state = stateGone
		return nil
	default:
		return fmt.Errorf("galleta: touch session: %w", redact(err, s.id))
	}
}

// commit runs before the first byte of the response: it saves or touches
// the session and sets the response headers (Set-Cookie, Vary,
// Cache-Control). An error means nothing was sent yet and the error
// handler should answer instead.
func (s *Session) commit(h http.Header, r *http.Request) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.m
	ctx, cancel := m.commitContext(r.Context())
	defer cancel()

	if s.used {
		addVary(h)
	}
	if s.state == stateDestroyed {
		if s.hadCookie {
			if err := cookie.Clear(h, m.name, m.cookieAttrs(m.isSecure(r), time.Time{})); err != nil {
				return fmt.Errorf("galleta: clear session cookie: %w", err)
			}
			noStore(h)
			addVary(h)
		}
		return nil
	}
	wrote, err := s.save(ctx, false)
	if errors.Is(err, ErrDeleted) {
		m.log.Info("galleta: session was deleted by another request before this one saved; its changes are dropped")
		return nil
	}
	if err != nil {
		return err
	}
	if !wrote {
		s.now = m.now()
		if err := s.touch(ctx, false); err != nil {
			return err
		}
	}
	if s.state != stateStored || !s.sendCookie() {
		return nil
	}
	secure := m.isSecure(r)
	if secure && !m.requestSecure(r) && m.cookieOpts.Secure == SecureAlways && !isLocalhost(r) {
		// express-session: a Secure cookie is not sent over plain HTTP
		// (the store write above still happened).
		return nil
	}
	if err := cookie.SetSigned(h, m.name, s.id, m.secrets[0], m.cookieAttrs(secure, s.cookieExpires())); err != nil {
		return fmt.Errorf("galleta: set session cookie: %w", err)
	}
	addVary(h)
	noStore(h)
	return nil
}

// sendCookie is express-session's rule for a stored session: send the
// cookie when its id is new (created or regenerated), when it must be
// re-signed, when its max age changed, with Rolling, and for a persistent
// cookie whenever the session changed.
func (s *Session) sendCookie() bool {
	if s.cookieID != s.id {
		return true
	}
	return s.m.rolling || s.resign || s.maxAgeChanged || (s.changed() && s.data.Cookie.OriginalMaxAge >= 0)
}

// saveAfterResponse saves changes the handler made after the response had
// started (without the before-response guarantee, which can no longer
// hold). A session deleted meanwhile stays deleted.
func (s *Session) saveAfterResponse(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dirty() {
		return
	}
	ctx, cancel := s.m.commitContext(ctx)
	defer cancel()
	wasStored := s.state == stateStored
	_, err := s.save(ctx, false)
	switch {
	case errors.Is(err, ErrDeleted):
	case err != nil:
		s.m.log.Error("galleta: save session changes made after the response started", "err", err)
	case !wasStored && s.state == stateStored:
		s.m.log.Warn("galleta: a new session was created after the response started, so its cookie could not be sent; change the session before writing the response")
	}
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
