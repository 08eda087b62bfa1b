package storecheck

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/internal/faultproxy"
	"github.com/galleta-go/galleta/store"
)

// FaultApp is a Manager on a store whose client reaches its backend
// through a fault proxy. Routes under /app use the session (POST
// /app/incr increments "n" and answers it; GET /app/hello only has the
// cookie path); GET /public is outside the cookie path.
type FaultApp struct {
	Proxy   *faultproxy.Proxy
	Timeout time.Duration // the Manager's StoreTimeout
	h       http.Handler
}

// NewFaultApp builds the Manager on st, whose client dials through proxy,
// with StoreTimeout timeout, and closes it when the test ends.
func NewFaultApp(t testing.TB, st store.Store, proxy *faultproxy.Proxy, timeout time.Duration) *FaultApp {
	t.Helper()
	m, err := galleta.New(galleta.Options{
		Secrets:      []string{Secret},
		Store:        st,
		StoreTimeout: timeout,
		Cookie:       galleta.CookieOptions{Path: "/app"},
		Logger:       Quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	mux := http.NewServeMux()
	mux.HandleFunc("POST /app/incr", func(w http.ResponseWriter, r *http.Request) {
		n, err := galleta.FromRequest(r).Incr("n", 1)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprint(w, n)
	})
	mux.HandleFunc("GET /app/hello", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	mux.HandleFunc("GET /public", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "public") })
	return &FaultApp{Proxy: proxy, Timeout: timeout, h: m.Middleware(mux)}
}

// Do serves one request with the Cookie header cookie ("" for none) and
// returns the response and how long it took.
func (a *FaultApp) Do(method, path, cookie string) (*httptest.ResponseRecorder, time.Duration) {
	r := httptest.NewRequest(method, path, nil)
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	w := httptest.NewRecorder()
	start := time.Now()
	a.h.ServeHTTP(w, r)
	return w, time.Since(start)
}

// Faults is what RunFaults needs to know of a store behind the proxy.
type Faults struct {
	App *FaultApp
	// Sessions counts the sessions stored under the store's prefix or in
	// its table: the scenario's own session must stay the only one.
	Sessions func() int
	// Conns counts the connections the store's client (its pool) has open.
	Conns func() int
	// MaxConns is the client's pool size: no more may be open after the
	// faults.
	MaxConns int
	// Acquired, when the client can tell, counts connections still
	// checked out of its pool: none may be once every request has ended.
	Acquired func() int
	// ProxySlack is how many more connections than Conns the proxy may
	// still carry once it has settled (a client closing a connection
	// while its pool already counts it gone).
	ProxySlack int
	// Settle bounds how long leftover goroutines and proxy connections
	// may take to go.
	Settle time.Duration
}

// RunFaults cuts the backend off (connections closed and refused) and
// blackholes it (accepted, nothing forwarded), each three times over, and
// checks that requests that carry a session get 503 + Retry-After within
// 2x the store timeout, keep their cookie (no Set-Cookie) and mint no
// session; that requests that do not load a session still succeed; that
// goroutines and the client's connections do not pile up over repeated
// faults; and that when traffic passes again the next request succeeds,
// with nothing restarted.
func RunFaults(t *testing.T, f Faults) {
	app, timeout := f.App, f.App.Timeout
	w, _ := app.Do("POST", "/app/incr", "")
	if w.Code != 200 || w.Body.String() != "1" {
		t.Fatalf("first request: %d %s", w.Code, w.Body)
	}
	cookie, _, _ := strings.Cut(w.Header().Get("Set-Cookie"), ";")
	want := 1

	baseG := Stable(runtime.NumGoroutine)
	var goroutines, conns []int
	for cycle := range 3 {
		for _, mode := range []faultproxy.Mode{faultproxy.Cut, faultproxy.Stall} {
			app.Proxy.Set(mode)
			const parallel = 12
			var wg sync.WaitGroup
			for i := range parallel {
				wg.Go(func() {
					w, took := app.Do("POST", "/app/incr", cookie)
					switch {
					case w.Code != 503:
						t.Errorf("%s, cycle %d, request %d: %d %q, want 503", mode, cycle, i, w.Code, w.Body)
					case w.Header().Get("Retry-After") == "":
						t.Errorf("%s: 503 without Retry-After", mode)
					case w.Header().Get("Set-Cookie") != "":
						t.Errorf("%s: 503 with Set-Cookie %q: the user's cookie must be kept", mode, w.Header().Get("Set-Cookie"))
					}
					if took > 2*timeout {
						t.Errorf("%s: the 503 took %v, over 2x the store timeout (%v)", mode, took, timeout)
					}
				})
			}
			wg.Wait()
			for _, path := range []string{"/public", "/app/hello"} {
				if w, _ := app.Do("GET", path, ""); w.Code != 200 {
					t.Errorf("%s: GET %s without a session cookie: %d %q, want 200 (it needs no store)", mode, path, w.Code, w.Body)
				}
			}
			if w, took := app.Do("GET", "/public", cookie); w.Code != 200 || took > timeout {
				t.Errorf("%s: GET /public (outside the cookie path) with the cookie: %d after %v, want 200 at once", mode, w.Code, took)
			}

			app.Proxy.Set(faultproxy.Pass)
			w, _ := app.Do("POST", "/app/incr", cookie)
			want++
			if w.Code != 200 || w.Body.String() != fmt.Sprint(want) {
				t.Fatalf("%s, cycle %d: first request after the fault ended: %d %q, want 200 %d", mode, cycle, w.Code, w.Body, want)
			}
		}
		if n := f.Sessions(); n != 1 {
			t.Errorf("cycle %d: %d sessions stored, want 1: no session may be minted during a fault", cycle, n)
		}
		goroutines = append(goroutines, Stable(runtime.NumGoroutine))
		conns = append(conns, Stable(f.Conns))
	}
	// 72 requests failed (3 cycles x 2 faults x 12). Goroutines that piled
	// up per failed request, or connections never returned, would show here
	// as growth near that number; the pool (its connections and their
	// goroutines, some being rebuilt after a stall) accounts for small
	// changes.
	if g := Settle(f.Settle, baseG+20, runtime.NumGoroutine); g > baseG+20 {
		t.Errorf("goroutines: %d before the faults, %v after each cycle, now %d: they pile up", baseG, goroutines, g)
	}
	if c := f.Conns(); c > f.MaxConns {
		t.Errorf("pool after the faults: %d connections, over its size %d; after each cycle %v", c, f.MaxConns, conns)
	}
	if f.Acquired != nil {
		if a := f.Acquired(); a != 0 {
			t.Errorf("pool after the faults: %d connections still acquired; after each cycle %v", a, conns)
		}
	}
	if p := Settle(f.Settle, f.Conns(), app.Proxy.Conns); p > f.Conns()+f.ProxySlack {
		t.Errorf("the proxy still carries %d connections, the pool has %d: closed connections leak", p, f.Conns())
	}
	t.Logf("goroutines before the faults %d, after each cycle %v; pool connections after each cycle %v", baseG, goroutines, conns)
}

// Settle polls until f() <= limit or within has passed, and returns f().
func Settle(within time.Duration, limit int, f func() int) int {
	deadline := time.Now().Add(within)
	n := f()
	for n > limit && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n = f()
	}
	return n
}

// Stable returns f() once it has not changed for 100 ms (at most 2 s).
func Stable(f func() int) int {
	deadline := time.Now().Add(2 * time.Second)
	n, same := f(), 0
	for same < 5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if m := f(); m == n {
			same++
		} else {
			n, same = m, 0
		}
	}
	return n
}

// GetsFailFast runs 8 concurrent Gets of id on s, whose backend is
// blackholed, each with its own deadline timeout, and checks that every
// one ends with an unavailable error within 2x that deadline: none
// queues behind another.
func GetsFailFast(t *testing.T, s store.Store, id string, timeout time.Duration) {
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			start := time.Now()
			_, err := s.Get(ctx, id)
			if !galleta.IsUnavailable(err) {
				t.Errorf("Get = %v, want unavailable", err)
			}
			if took := time.Since(start); took > 2*timeout {
				t.Errorf("Get took %v, over 2x its %v deadline", took, timeout)
			}
		})
	}
	wg.Wait()
}
