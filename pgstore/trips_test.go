package pgstore_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/internal/storecheck"
	"github.com/galleta-go/galleta/internal/testpg"
	"github.com/galleta-go/galleta/pgstore"
	"github.com/galleta-go/galleta/store"
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
	m, err := galleta.New(galleta.Options{Secrets: []string{benchSecret}, Store: s, Logger: storecheck.Quiet})
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
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	if err := s.Set(ctx, "busy", store.Record{Data: []byte(`{"n":0}`), Expires: exp}); err != nil {
		t.Fatal(err)
	}
	seen, err := s.Get(ctx, "busy")
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 32, 20
	before := qc.trips()
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				err := s.UpdateFrom(ctx, "busy", seen, func(cur store.Record, found bool) (store.Record, bool, error) {
					if !found {
						return store.Record{}, false, errors.New("session gone")
					}
					var v struct{ N int }
					if err := json.Unmarshal(cur.Data, &v); err != nil {
						return store.Record{}, false, err
					}
					return store.Record{Data: fmt.Appendf(nil, `{"n":%d}`, v.N+1), Expires: exp}, true, nil
				})
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	trips := qc.trips() - before
	rec, err := s.Get(ctx, "busy")
	if err != nil || string(rec.Data) != fmt.Sprintf(`{"n":%d}`, goroutines*each) {
		t.Fatalf("after %d updates: %q, %v", goroutines*each, rec.Data, err)
	}
	if trips > goroutines*each/2 {
		t.Fatalf("%d updates of one session took %d round trips; batching should need far fewer than one each", goroutines*each, trips)
	}
	t.Logf("%d updates, %d round trips", goroutines*each, trips)
}
