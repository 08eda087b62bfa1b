package galleta

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/galleta-go/galleta/internal/record"
	"github.com/galleta-go/galleta/store"
)

// Errors a Session method can return.
var (
	// ErrNoSession is returned by changes on a nil Session: the request did
	// not pass through Manager.Middleware (or is outside Cookie.Path).
	ErrNoSession = errors.New("galleta: no session on this request: wrap the handler with Manager.Middleware and check Options.Cookie.Path")
	// ErrReservedKey is returned by Set and Incr for the keys the stored
	// layout uses itself ("cookie", "__galleta", "__lastAccess").
	ErrReservedKey = errors.New("galleta: reserved session key")
	// ErrDestroyed is returned by changes after Destroy.
	ErrDestroyed = errors.New("galleta: session destroyed in this request; call Regenerate to start a new one")
	// ErrDeleted is returned by changes and Save once the Manager found
	// that another request deleted the session after this one loaded it
	// (a logout, a regenerate, an admin's revoke): this request's changes
	// are dropped rather than bring the session back.
	ErrDeleted = errors.New("galleta: session was deleted by another request (logout, regenerate or revoke) after this request loaded it; its changes are dropped")
	// ErrNotNumber is returned by Incr when the key holds something other
	// than an integer.
	ErrNotNumber = errors.New("galleta: session value is not an integer")
	// ErrOverflow is returned by Incr, and by the save, when an integer
	// would leave int64's range.
	ErrOverflow = record.ErrOverflow
	// ErrNoKey is wrapped by Decode when the session has no such key.
	ErrNoKey = errors.New("galleta: no such session key")
)

// ErrResponseReplaced is returned by Write on a response whose session
// could not be saved: the error handler's response went out instead.
var ErrResponseReplaced = errors.New("galleta: response replaced by the session error response (the session could not be saved)")

// IsUnavailable reports whether err means the session store could not be
// reached (the default error handler's 503 case): it wraps
// store.ErrUnavailable or a deadline.
func IsUnavailable(err error) bool {
	return errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
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
