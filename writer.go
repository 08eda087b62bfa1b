package galleta

import (
	"bufio"
	"io"
	"net"
	"net/http"
)

// responseWriter commits the session before the first byte of the response
// leaves. It keeps Flush, Hijack and ReadFrom working and exposes the
// underlying writer through Unwrap for http.ResponseController.
type responseWriter struct {
	http.ResponseWriter
	m         *Manager
	s         *Session
	r         *http.Request
	committed bool
	failed    bool
}

// commit saves the session once; it reports whether the handler's response
// may go out.
func (w *responseWriter) commit() bool {
	if w.committed {
		return !w.failed
	}
	w.committed = true
	if err := w.s.commit(w.ResponseWriter.Header(), w.r); err != nil {
		w.failed = true
		clear(w.ResponseWriter.Header())
		w.m.fail(w.ResponseWriter, w.r, err)
		return false
	}
	return true
}

// finish runs when the handler returns: it commits a session that nothing
// was written for, and saves changes made after the response had started
// (without the before-response guarantee, which can no longer hold).
func (w *responseWriter) finish() {
	if !w.committed {
		w.commit()
		return
	}
	if !w.failed {
		w.s.saveAfterResponse(w.r.Context())
	}
}

func (w *responseWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code) // informational: not the response yet
		return
	}
	if w.commit() {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.commit() {
		return 0, ErrResponseReplaced
	}
	return w.ResponseWriter.Write(p)
}

func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.commit() {
		return 0, ErrResponseReplaced
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, src)
}

type writerOnly struct{ io.Writer }

func (w *responseWriter) Flush() { _ = w.FlushError() }

// FlushError is what http.ResponseController.Flush calls.
func (w *responseWriter) FlushError() error {
	if !w.commit() {
		return ErrResponseReplaced
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !w.commit() {
		return nil, nil, ErrResponseReplaced
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
