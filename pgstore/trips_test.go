package pgstore_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/internal/storecheck"
	"github.com/galleta-go/galleta/internal/testpg"
	"github.com/galleta-go/galleta/pgstore"
)

// A request that changes its session costs two round trips (Get, then
// UpdateFrom's one UPDATE); one that only reads it costs one (Get; the
// touch is skipped while the expiry moves by under 1%).
func TestManagerRoundTrips(t *testing.T) {
	cfg := testpg.Config(t)
	qc := &queryCounter{}
	cfg.ConnConfig.Tracer = qc
	cfg.MaxConns = 1
	s, _ := open(t, cfg, pgstore.Options{})
	m, err := galleta.New(galleta.Options{Secrets: []string{storecheck.Secret}, Store: s, Logger: storecheck.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			galleta.FromRequest(r).Incr("n", 1)
		} else {
			galleta.FromRequest(r).Get("n")
		}
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/", nil))
	c, _, _ := strings.Cut(w.Header().Get("Set-Cookie"), ";")
	for i, tc := range []struct {
		method string
		trips  int64
	}{{"POST", 0}, {"POST", 2}, {"GET", 1}, {"POST", 2}} {
		before := qc.trips()
		r := httptest.NewRequest(tc.method, "/", nil)
		r.Header.Set("Cookie", c)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", tc.method, w.Code, w.Body)
		}
		// The first request prepares the statements on the connection.
		if n := qc.trips() - before; i > 0 && n != tc.trips {
			t.Errorf("request %d, %s: %d round trips, want %d", i, tc.method, n, tc.trips)
		}
	}
}

// Overlapping updates of one session in one process are batched: every fn
// sees the one before, nothing is lost, and far fewer statements than
// updates reach PostgreSQL (without batching each contended update fell
// back to a locked transaction of its own).
func TestBusySessionBatches(t *testing.T) {
	cfg := testpg.Config(t)
	qc := &queryCounter{}
	cfg.ConnConfig.Tracer = qc
	s, _ := open(t, cfg, pgstore.Options{})
	storecheck.BusySession(t, s, "busy", qc.trips, "round trips")
}
