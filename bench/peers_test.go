// Package bench runs the same request through galleta and its peers in one
// benchmark run, so the figures compare on the same machine at the same
// time. It is a separate module so the main module never depends on peers.
package bench

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/galleta-go/galleta"
	gmem "github.com/galleta-go/galleta/memstore"
)

const secret = "0123456789abcdef0123456789abcdef-bench"

type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d discardWriter) WriteHeader(int)             {}

// run drives h with the cookie the first request set: every request loads
// the session, reads the user name, increments a counter, saves, responds.
func run(b *testing.B, h http.Handler) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/", nil))
	cs := w.Result().Cookies()
	if len(cs) != 1 {
		b.Fatalf("first request set %d cookies", len(cs))
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest("POST", "/", nil)
		r.AddCookie(cs[0])
		for pb.Next() {
			h.ServeHTTP(discardWriter{h: http.Header{}}, r)
		}
	})
}

func galletaHandler(b *testing.B) http.Handler { return galletaWith(b, galleta.Options{}) }

func galletaWith(b *testing.B, o galleta.Options) http.Handler {
	st := gmem.New(gmem.Options{SweepInterval: -1})
	b.Cleanup(func() { st.Close() })
	o.Secrets, o.Store = []string{secret}, st
	m, err := galleta.New(o)
	if err != nil {
		b.Fatal(err)
	}
	return m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		if _, ok := s.GetString("user"); !ok {
			s.Set("user", "alice")
		}
		s.Incr("n", 1)
		w.Write([]byte("ok"))
	}))
}

func scsHandler(b *testing.B) http.Handler {
	sm := scs.New()
	sm.Store = memstore.NewWithCleanupInterval(time.Hour)
	b.Cleanup(func() { sm.Store.(*memstore.MemStore).StopCleanup() })
	return sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if sm.GetString(ctx, "user") == "" {
			sm.Put(ctx, "user", "alice")
		}
		sm.Put(ctx, "n", sm.GetInt(ctx, "n")+1)
		w.Write([]byte("ok"))
	}))
}

// BenchmarkRequest: load, change one value, save, on each library's memory
// store.
func BenchmarkRequest(b *testing.B) {
	b.Run("galleta", func(b *testing.B) { run(b, galletaHandler(b)) })
	// Rolling sends Set-Cookie on every response, as scs does after a change.
	b.Run("galleta-rolling", func(b *testing.B) { run(b, galletaWith(b, galleta.Options{Rolling: true})) })
	b.Run("scs", func(b *testing.B) { run(b, scsHandler(b)) })
}

// BenchmarkMemoryPerSession: heap per stored small session (a user name and
// a counter) after n sessions were created through each library's
// middleware into a fresh store.
func BenchmarkMemoryPerSession(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		measure := func(b *testing.B, mk func(*testing.B) http.Handler) {
			for range b.N {
				h := mk(b)
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				for range n {
					h.ServeHTTP(discardWriter{h: http.Header{}}, httptest.NewRequest("POST", "/", nil))
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "bytes/session")
				runtime.KeepAlive(h)
			}
		}
		b.Run(fmt.Sprintf("galleta/n=%d", n), func(b *testing.B) { measure(b, galletaHandler) })
		b.Run(fmt.Sprintf("scs/n=%d", n), func(b *testing.B) { measure(b, scsHandler) })
	}
}
