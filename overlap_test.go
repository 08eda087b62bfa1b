package galleta_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/cookie"
	"github.com/galleta-go/galleta/memstore"
	"github.com/galleta-go/galleta/store"
	"github.com/galleta-go/galleta/store/storetest"
)

// change is what one request does to its session.
type change struct {
	name string
	do   func(r *http.Request, s *galleta.Session) error
}

func setKey(k string, v any) change {
	return change{"set " + k, func(_ *http.Request, s *galleta.Session) error { return s.Set(k, v) }}
}

func deleteKey(k string) change {
	return change{"delete " + k, func(_ *http.Request, s *galleta.Session) error { return s.Delete(k) }}
}

var clearAll = change{"clear", func(_ *http.Request, s *galleta.Session) error { return s.Clear() }}

func incr(k string, d int64) change {
	return change{"incr " + k, func(_ *http.Request, s *galleta.Session) error { _, err := s.Incr(k, d); return err }}
}

var destroy = change{"destroy", func(r *http.Request, s *galleta.Session) error { return s.Destroy(r.Context()) }}

// inOrder runs two requests on one session that was created with init:
// both load the session before either changes it, then first changes it and
// commits completely, then second does. It returns the stored values
// (without the cookie and bookkeeping keys; nil when the session is gone)
// and the two responses.
func inOrder(t *testing.T, init map[string]any, first, second change) (map[string]any, [2]*httptest.ResponseRecorder) {
	t.Helper()
	loaded := make(chan string, 2)
	gates := map[string]chan struct{}{"/first": make(chan struct{}), "/second": make(chan struct{})}
	h := newHarness(t, galleta.Options{}, func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		if r.URL.Path == "/init" {
			for _, k := range slices.Sorted(maps.Keys(init)) {
				if err := s.Set(k, init[k]); err != nil {
					t.Error(err)
				}
			}
			return
		}
		s.Keys() // the handler reads its session before the other one commits
		loaded <- r.URL.Path
		<-gates[r.URL.Path]
		c := first
		if r.URL.Path == "/second" {
			c = second
		}
		if err := c.do(r, s); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	})
	sid := pair(t, h.do("POST", "/init", ""), "sid")
	v, _ := cookie.Get(sid, "sid")
	id, _ := cookie.Unsign(v[2:], testSecret)

	var out [2]*httptest.ResponseRecorder
	done := make(chan struct{}, 2)
	for i, p := range []string{"/first", "/second"} {
		go func() { out[i] = h.do("POST", p, sid); done <- struct{}{} }()
	}
	<-loaded
	<-loaded
	close(gates["/first"])
	<-done
	close(gates["/second"])
	<-done
	for i, w := range out {
		if w.Code != http.StatusOK {
			t.Fatalf("request %d: %d %s", i+1, w.Code, w.Body.String())
		}
	}

	rec, err := h.record(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, out
	}
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Data, &got); err != nil {
		t.Fatalf("stored %s: %v", rec.Data, err)
	}
	delete(got, "cookie")
	delete(got, "__galleta")
	return got, out
}

// Overlapping requests of one session: the stored result is what running
// their changes in commit order gives, and a destroyed session stays
// destroyed. express-session, scs and gorilla keep only the last writer's
// whole session instead.
func TestOverlappingChanges(t *testing.T) {
	cases := []struct {
		name          string
		init          map[string]any
		first, second change
		want          map[string]any // nil: the session is gone
	}{
		{"delete vs set", map[string]any{"x": 1, "y": 1}, deleteKey("x"), setKey("y", 2), map[string]any{"y": 2.0}},
		{"set vs delete", map[string]any{"x": 1, "y": 1}, setKey("y", 2), deleteKey("x"), map[string]any{"y": 2.0}},
		{"delete vs set of the same key", map[string]any{"x": 1}, deleteKey("x"), setKey("x", 2), map[string]any{"x": 2.0}},
		{"set vs delete of the same key", map[string]any{"x": 1}, setKey("x", 2), deleteKey("x"), map[string]any{}},
		{"clear vs set", map[string]any{"x": 1}, clearAll, setKey("y", 2), map[string]any{"y": 2.0}},
		{"set vs clear", map[string]any{"x": 1}, setKey("y", 2), clearAll, map[string]any{}},
		{"incr vs incr", map[string]any{"n": 5}, incr("n", 2), incr("n", 3), map[string]any{"n": 10.0}},
		{"incr vs set of another key", map[string]any{"n": 5}, incr("n", 1), setKey("x", true), map[string]any{"n": 6.0, "x": true}},
		{"set vs destroy", map[string]any{"x": 1}, setKey("x", 2), destroy, nil},
		{"destroy vs set", map[string]any{"x": 1}, destroy, setKey("x", 2), nil},
		{"destroy vs incr", map[string]any{"n": 1}, destroy, incr("n", 1), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, resp := inOrder(t, c.init, c.first, c.second)
			if c.want == nil {
				if got != nil {
					t.Fatalf("session written back after destroy: %v", got)
				}
				for i, w := range resp {
					for _, line := range setCookies(w, "sid") {
						if !cookieExpired(line) {
							t.Errorf("request %d sent a live session cookie for a destroyed session: %q", i+1, line)
						}
					}
				}
				return
			}
			if !maps.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
				t.Fatalf("stored %v, want %v", got, c.want)
			}
		})
	}
}

func cookieExpired(setCookie string) bool {
	c, err := http.ParseSetCookie(setCookie)
	return err == nil && c.MaxAge < 0
}

// optimisticStore is a memory store that also offers
// store.OptimisticUpdater, counting how its updates went.
type optimisticStore struct {
	*memstore.Store
	mu         sync.Mutex
	seen       [][]byte
	fast, slow int
}

func (o *optimisticStore) UpdateFrom(ctx context.Context, id string, seen store.Record, fn store.UpdateFunc) error {
	o.mu.Lock()
	o.seen = append(o.seen, seen.Data)
	o.mu.Unlock()
	return o.Store.Update(ctx, id, func(cur store.Record, found bool) (store.Record, bool, error) {
		o.mu.Lock()
		defer o.mu.Unlock()
		if found && bytes.Equal(cur.Data, seen.Data) {
			o.fast++
			return fn(seen, true)
		}
		o.slow++
		return fn(cur, found)
	})
}

// The Manager hands an OptimisticUpdater the record it loaded, so a store
// on a server can commit in one round trip when nobody else wrote; when
// somebody did, the merge still holds.
func TestCommitUsesOptimisticUpdate(t *testing.T) {
	st := &optimisticStore{Store: memstore.New(memstore.Options{Now: storetest.NewClock(harnessStart).Now, SweepInterval: -1})}
	defer st.Close()
	stored := func(id string) []byte {
		rec, err := st.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return rec.Data
	}
	loaded := make(chan struct{}, 2)
	gate := make(chan struct{})
	h := newHarness(t, galleta.Options{Store: st}, func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		if r.URL.Path == "/both" {
			s.Keys()
			loaded <- struct{}{}
			<-gate
		}
		s.Incr("n", 1)
	})
	c := pair(t, h.do("POST", "/", ""), "sid")
	first := stored(idOf(t, c))
	h.do("POST", "/", c)
	if st.fast != 1 || st.slow != 0 || len(st.seen) != 1 || !bytes.Equal(st.seen[0], first) {
		t.Fatalf("one request: fast %d slow %d, seen %q; want one fast update from the loaded %q", st.fast, st.slow, st.seen, first)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { h.do("POST", "/both", c) })
	}
	<-loaded
	<-loaded
	close(gate)
	wg.Wait()
	if st.fast != 2 || st.slow != 1 {
		t.Fatalf("two overlapping requests: fast %d slow %d, want 2 and 1", st.fast, st.slow)
	}
	if data := stored(idOf(t, c)); !strings.Contains(string(data), `"n":4`) {
		t.Fatalf("after 1+1+2 increments the store holds %s", data)
	}
}
