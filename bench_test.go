package galleta_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/memstore"
)

// BenchmarkRequest is one full request through the middleware on the
// memory store: load the session, change one value, save, respond. The same
// request runs through scs in the bench/ module.
func BenchmarkRequest(b *testing.B) {
	st := memstore.New(memstore.Options{SweepInterval: -1})
	defer st.Close()
	m, err := galleta.New(galleta.Options{Secrets: []string{testSecret}, Store: st})
	if err != nil {
		b.Fatal(err)
	}
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		if _, err := s.Incr("n", 1); err != nil {
			b.Error(err)
		}
		if _, ok := s.GetString("user"); !ok {
			s.Set("user", "alice")
		}
		w.Write([]byte("ok"))
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/", nil))
	c := w.Result().Cookies()[0]
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest("POST", "/", nil)
		r.AddCookie(c)
		for pb.Next() {
			w := discardWriter{h: http.Header{}}
			h.ServeHTTP(w, r)
		}
	})
}

type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d discardWriter) WriteHeader(int)             {}
