package bench

// File-backed sessions: the same request (load the session, read the user
// name, increment a counter, save, respond) through galleta's Manager on
// its filestore and through gorilla/sessions' FilesystemStore.
//
// Not equal guarantees: gorilla's FilesystemStore writes the session file
// in place with os.WriteFile (truncate then write: no temporary file, no
// atomic rename, no fsync), so a crash or power loss can leave a torn or
// empty file, and its load-modify-save has no lock on the session, so
// overlapping requests on one session lose increments. galleta's filestore
// (SyncAll, its default) writes a temporary file, fsyncs it, renames it and
// fsyncs the directory, under a per-session lock with group commit; SyncNone
// skips the two fsyncs only. The comparison is about cost, not equal
// guarantees. Each benchmark reports lost/op: the increments that did not
// reach the stored counter, per request.
//
//	cd bench && go test -run='^$' -bench=FileStore -benchmem -count=1 .

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/filestore"
	"github.com/gorilla/sessions"
)

// galletaFileHandler is galletaWith's handler on a filestore in b.TempDir.
// The body is the counter after the increment (as this request saw it).
func galletaFileHandler(b *testing.B, d filestore.Durability) http.Handler {
	st, err := filestore.New(filestore.Options{
		Dir:          b.TempDir(),
		Durability:   d,
		ReapInterval: -1,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	m, err := galleta.New(galleta.Options{Secrets: []string{secret}, Store: st})
	if err != nil {
		b.Fatal(err)
	}
	return m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		if _, ok := s.GetString("user"); !ok {
			s.Set("user", "alice")
		}
		n, _ := s.Incr("n", 1)
		w.Write(strconv.AppendInt(nil, n, 10))
	}))
}

// gorillaFileHandler: gorilla/sessions' FilesystemStore in b.TempDir, the
// same request.
func gorillaFileHandler(b *testing.B) http.Handler {
	fs := sessions.NewFilesystemStore(b.TempDir(), []byte(secret))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := fs.Get(r, "session") // a bad or missing cookie gives a new session
		if _, ok := s.Values["user"].(string); !ok {
			s.Values["user"] = "alice"
		}
		n, _ := s.Values["n"].(int)
		n++
		s.Values["n"] = n
		if err := s.Save(r, w); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(strconv.AppendInt(nil, int64(n), 10))
	})
}

// newSession makes a first request and returns the cookie it set.
func newSession(b *testing.B, h http.Handler) *http.Cookie {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/", nil))
	cs := w.Result().Cookies()
	if len(cs) != 1 || w.Code != http.StatusOK {
		b.Fatalf("first request: status %d, %d cookies", w.Code, len(cs))
	}
	return cs[0]
}

// counter makes one more request with c and returns the counter it saw.
func counter(b *testing.B, h http.Handler, c *http.Cookie) int {
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/", nil)
	r.AddCookie(c)
	h.ServeHTTP(w, r)
	n, err := strconv.Atoi(w.Body.String())
	if w.Code != http.StatusOK || err != nil {
		b.Fatalf("status %d, body %q", w.Code, w.Body.String())
	}
	return n
}

// runFile drives h from about 16 goroutines per CPU (SetParallelism(16)).
// busy: every request carries the one cookie of a single session. Else each
// goroutine has its own session. Every request is a shallow copy of a
// prepared request (gorilla's registry writes into *r, so a request is
// never reused as is); the copy is made for every library alike.
func runFile(b *testing.B, h http.Handler, busy bool) {
	par := 16
	g := par * runtime.GOMAXPROCS(0)
	cookies := make([]*http.Cookie, g)
	for i := range cookies {
		if i == 0 || !busy {
			cookies[i] = newSession(b, h)
		} else {
			cookies[i] = cookies[0]
		}
	}
	var next, done atomic.Int64
	b.SetParallelism(par)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		base := httptest.NewRequest("POST", "/", nil)
		base.AddCookie(cookies[int(next.Add(1)-1)%g])
		for pb.Next() {
			r := *base
			h.ServeHTTP(discardWriter{h: http.Header{}}, &r)
			done.Add(1)
		}
	})
	b.StopTimer()
	// Each session's counter is 1 (first request) + its requests + 1 (this
	// check); what is missing was lost by overlapping requests.
	want := int64(0)
	got := int64(0)
	seen := map[string]bool{}
	for _, c := range cookies {
		if seen[c.Value] {
			continue
		}
		seen[c.Value] = true
		want += 2
		got += int64(counter(b, h, c))
	}
	want += done.Load()
	b.ReportMetric(float64(want-got)/float64(b.N), "lost/op")
}

// BenchmarkFileStore: one busy session (every request on one cookie) and
// many sessions (each goroutine its own), on galleta's filestore with and
// without fsync and on gorilla's FilesystemStore.
func BenchmarkFileStore(b *testing.B) {
	for _, shape := range []struct {
		name string
		busy bool
	}{{"busy", true}, {"many", false}} {
		b.Run(shape.name+"/galleta-sync", func(b *testing.B) {
			runFile(b, galletaFileHandler(b, filestore.SyncAll), shape.busy)
		})
		b.Run(shape.name+"/galleta-nosync", func(b *testing.B) {
			runFile(b, galletaFileHandler(b, filestore.SyncNone), shape.busy)
		})
		b.Run(shape.name+"/gorilla", func(b *testing.B) {
			runFile(b, gorillaFileHandler(b), shape.busy)
		})
	}
}
