package filestore_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/filestore"
)

// The Manager on the file store: overlapping requests of one session lose
// no increment, and a restart (a new Store and Manager on the same
// directory and secret) keeps the session.
func TestManagerOnFileStore(t *testing.T) {
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	open := func() (*galleta.Manager, *filestore.Store) {
		st, err := filestore.New(filestore.Options{Dir: dir, ReapInterval: -1, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		m, err := galleta.New(galleta.Options{Secrets: []string{"0123456789abcdef0123456789abcdef"}, Store: st, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		return m, st
	}
	handler := func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		switch r.Method {
		case "POST":
			n, err := s.Incr("visits", 1)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			fmt.Fprint(w, n)
		default:
			n, _ := s.GetInt("visits")
			fmt.Fprint(w, n)
		}
	}
	m, st := open()
	h := m.Middleware(http.HandlerFunc(handler))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/", nil))
	c := strings.SplitN(w.Header().Get("Set-Cookie"), ";", 2)[0]
	if c == "" {
		t.Fatal("no cookie")
	}
	do := func(h http.Handler, method string) string {
		r := httptest.NewRequest(method, "/", nil)
		r.Header.Set("Cookie", c)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Errorf("%s: %d %s", method, w.Code, w.Body.String())
		}
		return w.Body.String()
	}
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() { do(h, "POST") })
	}
	wg.Wait()
	if got := do(h, "GET"); got != "201" {
		t.Fatalf("after 1+200 concurrent increments: %s", got)
	}
	m.Close()
	st.Close()

	m2, st2 := open()
	defer st2.Close()
	defer m2.Close()
	if got := do(m2.Middleware(http.HandlerFunc(handler)), "GET"); got != "201" {
		t.Fatalf("after a restart: %s", got)
	}
}
