package galleta_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/cookie"
	"github.com/galleta-go/galleta/memstore"
	"github.com/galleta-go/galleta/store"
	"github.com/galleta-go/galleta/store/storetest"
)

// idOf returns the session id a "sid=..." pair carries.
func idOf(t *testing.T, pair string) string {
	t.Helper()
	v, _ := cookie.Get(pair, "sid")
	id, ok := cookie.Unsign(strings.TrimPrefix(v, "s:"), testSecret)
	if !ok {
		t.Fatalf("cookie %q does not verify", pair)
	}
	return id
}

func TestDeleteAndClear(t *testing.T) {
	h := newHarness(t, galleta.Options{}, func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		var err error
		switch r.URL.Path {
		case "/init":
			s.Set("a", 1)
			s.Set("b", 2)
			s.Set("c", 3)
		case "/delete":
			err = s.Delete("a")
		case "/delete-missing":
			err = s.Delete("nope")
		case "/clear":
			err = s.Clear()
		}
		if err != nil {
			t.Errorf("%s: %v", r.URL.Path, err)
		}
		fmt.Fprint(w, strings.Join(s.Keys(), ","))
	})
	c := pair(t, h.do("POST", "/init", ""), "sid")
	id := idOf(t, c)
	stored := func() string {
		rec, err := h.record(id)
		if err != nil {
			t.Fatal(err)
		}
		return string(rec.Data)
	}
	if got := h.do("POST", "/delete", c).Body.String(); got != "b,c" {
		t.Fatalf("after Delete the handler sees %q, want b,c", got)
	}
	if data := stored(); strings.Contains(data, `"a":`) || !strings.Contains(data, `"b":2`) {
		t.Fatalf("after Delete the store holds %s", data)
	}

	// Deleting a missing key is not a change: nothing is written.
	before, _ := h.record(id)
	h.do("POST", "/delete-missing", c)
	if after, _ := h.record(id); string(after.Data) != string(before.Data) {
		t.Fatalf("deleting a missing key rewrote the session: %s -> %s", before.Data, after.Data)
	}

	if got := h.do("POST", "/clear", c).Body.String(); got != "" {
		t.Fatalf("after Clear the handler sees %q", got)
	}
	if data := stored(); strings.Contains(data, `"b":`) || strings.Contains(data, `"c":`) || !strings.Contains(data, `"cookie":`) {
		t.Fatalf("after Clear the store holds %s: want the cookie and no values", data)
	}
	if got := h.do("GET", "/", c); got.Body.String() != "" || len(setCookies(got, "sid")) != 0 {
		t.Fatalf("cleared session: keys %q, cookies %q; want the same session, empty", got.Body.String(), setCookies(got, "sid"))
	}
}

// The Manager's own clock decides expiry too: a record the store still
// returns but the Manager finds past its expiry (or past the absolute
// deadline) is deleted, and the request gets a fresh session.
func TestManagerDropsExpiredRecords(t *testing.T) {
	for _, c := range []struct {
		name    string
		advance time.Duration // of the Manager's clock only
		o       galleta.Options
	}{
		{"idle expiry", 2 * time.Hour, galleta.Options{IdleTimeout: time.Hour, AbsoluteTimeout: -1}},
		{"absolute deadline", 25 * time.Hour, galleta.Options{IdleTimeout: 48 * time.Hour, AbsoluteTimeout: 24 * time.Hour}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The store's clock stays behind the Manager's, as a store on
			// another machine might.
			storeClock := storetest.NewClock(harnessStart)
			st := memstore.New(memstore.Options{Now: storeClock.Now, SweepInterval: -1})
			defer st.Close()
			c.o.Store = st
			h := newHarness(t, c.o, counter)
			sid := pair(t, h.do("POST", "/", ""), "sid")
			id := idOf(t, sid)
			if _, err := st.Get(t.Context(), id); err != nil {
				t.Fatal(err)
			}
			h.clock.Advance(c.advance)
			storeClock.Advance(time.Minute) // still live for the store
			if got := h.do("GET", "/", sid).Body.String(); got != "n=0" {
				t.Fatalf("expired session still served: %s", got)
			}
			if _, err := st.Get(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("expired record not deleted by the Manager: %v", err)
			}
		})
	}
}

// The deletion of an expired record is bounded by StoreTimeout and not
// cancelled when the client goes away.
func TestDropExpiredUsesTheRequestContext(t *testing.T) {
	storeClock := storetest.NewClock(harnessStart) // stays behind: the store finds the record live
	st := &ctxStore{waitingStore: memstore.New(memstore.Options{Now: storeClock.Now, SweepInterval: -1})}
	defer st.Close()
	h := newHarness(t, galleta.Options{Store: st, StoreTimeout: time.Minute, IdleTimeout: time.Hour, AbsoluteTimeout: time.Hour}, counter)
	sid := pair(t, h.do("POST", "/", ""), "sid")
	h.clock.Advance(2 * time.Hour)
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxMark{}, "request"))
	r := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
	r.Header.Set("Cookie", sid)
	st.afterGet = cancel // the client goes away once the session is loaded
	h.h.ServeHTTP(httptest.NewRecorder(), r)
	if st.deleteCtx == nil {
		t.Fatal("expired record not deleted")
	}
	if st.deleteCtx.Value(ctxMark{}) != "request" {
		t.Error("the delete did not run in the request's context")
	}
	if st.deleteErr != nil {
		t.Errorf("the delete saw a cancelled context: %v", st.deleteErr)
	}
	if dl, ok := st.deleteCtx.Deadline(); !ok || time.Until(dl) > time.Minute {
		t.Errorf("the delete is not bounded by StoreTimeout (deadline %v, %v)", dl, ok)
	}
}

type ctxMark struct{}

// ctxStore records the context of the last Delete, and calls afterGet
// after a Get. It stands for a store that may wait (the memory store's
// Immediate is not promoted: the field is an interface without it).
type ctxStore struct {
	waitingStore
	afterGet  func()
	deleteCtx context.Context
	deleteErr error
}

type waitingStore interface {
	store.Store
	Close() error
}

func (c *ctxStore) Get(ctx context.Context, id string) (store.Record, error) {
	rec, err := c.waitingStore.Get(ctx, id)
	if c.afterGet != nil {
		c.afterGet()
	}
	return rec, err
}

func (c *ctxStore) Delete(ctx context.Context, id string) error {
	c.deleteCtx, c.deleteErr = ctx, ctx.Err()
	return c.waitingStore.Delete(ctx, id)
}

// A store that never waits (store.Immediate: the memory store) gets no
// StoreTimeout deadline, which would only cost a timer per call; the
// request's own context still reaches it.
func TestImmediateStoreGetsNoTimer(t *testing.T) {
	st := &deadlineStore{Store: memstore.New(memstore.Options{Now: storetest.NewClock(harnessStart).Now, SweepInterval: -1})}
	defer st.Close()
	h := newHarness(t, galleta.Options{Store: st, StoreTimeout: time.Minute}, counter)
	sid := pair(t, h.do("POST", "/", ""), "sid")
	h.do("POST", "/", sid)
	if st.calls < 2 {
		t.Fatalf("%d store calls seen, want a Get and an Update at least", st.calls)
	}
	if st.deadlines != 0 {
		t.Fatalf("%d of %d calls had a deadline; the memory store's should have none", st.deadlines, st.calls)
	}
}

// deadlineStore counts the calls of Get and Update whose context has a
// deadline; it keeps the memory store's Immediate (embedded pointer).
type deadlineStore struct {
	*memstore.Store
	calls, deadlines int
}

func (d *deadlineStore) see(ctx context.Context) {
	d.calls++
	if _, ok := ctx.Deadline(); ok {
		d.deadlines++
	}
}

func (d *deadlineStore) Get(ctx context.Context, id string) (store.Record, error) {
	d.see(ctx)
	return d.Store.Get(ctx, id)
}

func (d *deadlineStore) Update(ctx context.Context, id string, fn store.UpdateFunc) error {
	d.see(ctx)
	return d.Store.Update(ctx, id, fn)
}

// With SecureAlways, the cookie is not sent over plain HTTP (as
// express-session), except to localhost, where browsers accept it; the
// session is stored either way.
func TestSecureCookieNotSentOverPlainHTTP(t *testing.T) {
	h := newHarness(t, galleta.Options{Cookie: galleta.CookieOptions{Secure: galleta.SecureAlways}}, counter)
	for _, c := range []struct {
		name, target string
		tls          bool
		want         bool
	}{
		{"plain HTTP", "http://example.com/", false, false},
		{"HTTPS", "https://example.com/", true, true},
		{"plain HTTP to localhost", "http://localhost:8080/", false, true},
		{"plain HTTP to 127.0.0.1", "http://127.0.0.1:8080/", false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(h.storedIDs())
			r := httptest.NewRequest("POST", c.target, nil)
			if c.tls {
				r.TLS = &tls.ConnectionState{}
			}
			w := httptest.NewRecorder()
			h.h.ServeHTTP(w, r)
			lines := setCookies(w, "sid")
			if got := len(lines) == 1; got != c.want {
				t.Fatalf("cookie sent = %v (%q), want %v", got, lines, c.want)
			}
			if c.want && !strings.Contains(lines[0], "; Secure") {
				t.Fatalf("cookie %q lacks Secure", lines[0])
			}
			if got := len(h.storedIDs()); got != before+1 {
				t.Fatalf("session not stored (%d records, want %d)", got, before+1)
			}
		})
	}
}

func TestIncrOverflow(t *testing.T) {
	h := newHarness(t, galleta.Options{}, func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		d, _ := strconv.ParseInt(r.URL.Query().Get("d"), 10, 64)
		n, err := s.Incr("n", d)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, n)
	})
	c := pair(t, h.do("POST", "/?d="+strconv.FormatInt(math.MaxInt64-1, 10), ""), "sid")
	w := h.do("POST", "/?d=2", c)
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "int64") {
		t.Fatalf("MaxInt64-1 + 2: %d %q, want an overflow error", w.Code, w.Body.String())
	}
	if got := h.do("POST", "/?d=1", c).Body.String(); got != strconv.FormatInt(math.MaxInt64, 10) {
		t.Fatalf("after the failed Incr: %q, want MaxInt64 (the failed Incr changed nothing)", got)
	}
	w = h.do("POST", "/?d="+strconv.FormatInt(math.MinInt64, 10), c)
	if w.Code != http.StatusOK || w.Body.String() != "-1" {
		t.Fatalf("MaxInt64 + MinInt64: %d %q, want -1", w.Code, w.Body.String())
	}
	w = h.do("POST", "/?d="+strconv.FormatInt(math.MinInt64, 10), c)
	if w.Code != http.StatusBadRequest {
		t.Fatalf("-1 + MinInt64: %d %q, want an overflow error", w.Code, w.Body.String())
	}
	var err error
	h2 := newHarness(t, galleta.Options{}, func(w http.ResponseWriter, r *http.Request) {
		_, err = galleta.FromRequest(r).Incr("n", math.MinInt64)
		if err == nil {
			_, err = galleta.FromRequest(r).Incr("n", -1)
		}
	})
	h2.do("POST", "/", "")
	if !errors.Is(err, galleta.ErrOverflow) {
		t.Fatalf("Incr error %v does not wrap ErrOverflow", err)
	}
}

// Two overlapping increments that fit each on its own but not together:
// the second save fails instead of wrapping around, and the stored value
// stays the first one's.
func TestIncrOverflowAtMerge(t *testing.T) {
	half := strconv.FormatInt(math.MaxInt64/2+1, 10)
	got, resp := inOrderCodes(t, incr("n", math.MaxInt64/2+1), incr("n", math.MaxInt64/2+1))
	if resp[0] != http.StatusOK || resp[1] != http.StatusInternalServerError {
		t.Fatalf("responses %v, want 200 then 500", resp)
	}
	if got != half {
		t.Fatalf("stored n = %s, want %s (the first increment only)", got, half)
	}
}

// inOrderCodes is inOrder for two changes of an empty session, returning
// the stored "n" and the status codes; a failed save is allowed.
func inOrderCodes(t *testing.T, first, second change) (string, [2]int) {
	t.Helper()
	loaded := make(chan struct{}, 2)
	gates := map[string]chan struct{}{"/first": make(chan struct{}), "/second": make(chan struct{})}
	h := newHarness(t, galleta.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		if r.URL.Path == "/init" {
			s.Set("init", true)
			return
		}
		s.Keys()
		loaded <- struct{}{}
		<-gates[r.URL.Path]
		c := map[string]change{"/first": first, "/second": second}[r.URL.Path]
		if err := c.do(r, s); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	})
	sid := pair(t, h.do("POST", "/init", ""), "sid")
	var codes [2]int
	done := make(chan struct{}, 2)
	for i, p := range []string{"/first", "/second"} {
		go func() { codes[i] = h.do("POST", p, sid).Code; done <- struct{}{} }()
	}
	<-loaded
	<-loaded
	close(gates["/first"])
	<-done
	close(gates["/second"])
	<-done
	rec, err := h.record(idOf(t, sid))
	if err != nil {
		t.Fatal(err)
	}
	_, after, _ := strings.Cut(string(rec.Data), `"n":`)
	n, _, _ := strings.Cut(after, "}")
	return n, codes
}

// Save leaves the session holding the stored, merged result: 200
// overlapping requests that each Incr, Save and GetInt see 200 distinct
// counts, 1 to 200, the count stored at their save.
func TestSaveReturnsTheStoredCount(t *testing.T) {
	h := newHarness(t, galleta.Options{}, func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		if r.URL.Path == "/init" {
			s.Set("user", "ann")
			return
		}
		if _, err := s.Incr("visits", 1); err != nil {
			t.Error(err)
		}
		if err := s.Save(r.Context()); err != nil {
			t.Error(err)
		}
		n, _ := s.GetInt("visits")
		fmt.Fprint(w, n)
	})
	c := pair(t, h.do("POST", "/init", ""), "sid")
	const n = 200
	got := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got[i], _ = strconv.Atoi(h.do("POST", "/visit", c).Body.String())
		})
	}
	wg.Wait()
	slices.Sort(got)
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("sorted counts %v..., want exactly 1..%d", got[:min(len(got), 20)], n)
		}
	}
}

// A request that loaded a session, found at commit that another request
// deleted it (touch or update finds nothing), and then changes it after
// its response started, must not bring it back under the old id.
func TestLateChangeDoesNotResurrect(t *testing.T) {
	loaded := make(chan struct{})
	proceed := make(chan struct{})
	var lateErr error
	h := newHarness(t, galleta.Options{IdleTimeout: time.Hour}, func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		switch r.URL.Path {
		case "/login":
			s.Set("user", "ann")
		case "/logout":
			s.Destroy(r.Context())
		case "/stream":
			s.Keys()
			close(loaded)
			<-proceed
			w.Write([]byte("started")) // commit: the touch finds the session gone
			lateErr = s.Set("cart", 3)
		}
	})
	c := pair(t, h.do("POST", "/login", ""), "sid")
	id := idOf(t, c)
	h.clock.Advance(10 * time.Minute) // far enough for the commit to touch
	done := make(chan struct{})
	go func() { h.do("GET", "/stream", c); close(done) }()
	<-loaded
	h.do("POST", "/logout", c)
	close(proceed)
	<-done
	if _, err := h.record(id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a late change brought the logged-out session back: %v", err)
	}
	if !errors.Is(lateErr, galleta.ErrDeleted) {
		t.Fatalf("late Set = %v, want ErrDeleted", lateErr)
	}
}

// A stored record whose reserved keys are bad is a fresh session, and none
// of its values leak into that new session.
func TestCorruptRecordValuesDoNotLeak(t *testing.T) {
	h := newHarness(t, galleta.Options{}, func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		s.Set("visited", true)
		fmt.Fprint(w, strings.Join(s.Keys(), ","))
	})
	id := strings.Repeat("C", 43)
	for _, data := range []string{
		`{"user":"admin","cookie":"nope"}`,
		`{"user":"admin","__galleta":[1]}`,
		`{"user":"admin","cookie":{"expires":"yesterday"}}`,
	} {
		if err := h.st.Set(t.Context(), id, store.Record{Data: []byte(data), Expires: h.clock.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		w := h.do("POST", "/", "sid="+cookie.EncodeValue("s:"+cookie.Sign(id, testSecret)))
		if got := w.Body.String(); got != "visited" {
			t.Fatalf("record %s: the fresh session holds %q, want only visited", data, got)
		}
	}
}

func TestDecodeMissingKey(t *testing.T) {
	var err error
	h := newHarness(t, galleta.Options{}, func(w http.ResponseWriter, r *http.Request) {
		var v struct{ A int }
		err = galleta.FromRequest(r).Decode("nope", &v)
	})
	h.do("GET", "/", "")
	if !errors.Is(err, galleta.ErrNoKey) {
		t.Fatalf("Decode of a missing key = %v, want an error wrapping ErrNoKey", err)
	}
}

// A changed session's stored expiry moves in steps of the touch's slack
// (1% of the idle window, at most a minute), as an unchanged one's does:
// a write a few seconds after the last one keeps the stored expiry, so a
// database row's indexed expiry column need not change (a PostgreSQL HOT
// update).
func TestStoredExpiryMovesInSteps(t *testing.T) {
	h := newHarness(t, galleta.Options{IdleTimeout: time.Hour}, counter)
	c := pair(t, h.do("POST", "/", ""), "sid")
	id := idOf(t, c)
	first := must(h.record(id)).Expires
	if want := h.clock.Now().Add(time.Hour); !first.Equal(want) {
		t.Fatalf("new session expires %v, want %v", first, want)
	}
	h.clock.Advance(10 * time.Second)
	if got := h.do("POST", "/", c).Body.String(); got != "n=2" {
		t.Fatalf("second visit: %s", got)
	}
	if got := must(h.record(id)).Expires; !got.Equal(first) {
		t.Fatalf("10 s later (slack 36 s) the write moved the expiry to %v; want it kept at %v", got, first)
	}
	h.clock.Advance(30 * time.Second) // 40 s since the expiry was set
	h.do("POST", "/", c)
	if got, want := must(h.record(id)).Expires, h.clock.Now().Add(time.Hour); !got.Equal(want) {
		t.Fatalf("40 s later the expiry is %v, want %v", got, want)
	}
	// Shortening the window is never delayed.
	h2 := newHarness(t, galleta.Options{IdleTimeout: time.Hour}, func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		s.Incr("n", 1)
		if r.URL.Path == "/short" {
			s.SetMaxAge(10 * time.Minute)
		}
	})
	c2 := pair(t, h2.do("POST", "/", ""), "sid")
	h2.clock.Advance(time.Second)
	h2.do("POST", "/short", c2)
	if got, want := must(h2.record(idOf(t, c2))).Expires, h2.clock.Now().Add(10*time.Minute); !got.Equal(want) {
		t.Fatalf("after SetMaxAge(10m) the expiry is %v, want %v", got, want)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
