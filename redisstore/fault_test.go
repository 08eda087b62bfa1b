package redisstore_test

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

	"github.com/redis/go-redis/v9"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/internal/faultproxy"
	"github.com/galleta-go/galleta/internal/storecheck"
	"github.com/galleta-go/galleta/internal/testredis"
	"github.com/galleta-go/galleta/redisstore"
)

// faultApp is a Manager on a redisstore whose client dials Redis through a
// fault proxy. Routes under /app use the session; /public is outside the
// cookie path.
type faultApp struct {
	h       http.Handler
	proxy   *faultproxy.Proxy
	client  *redis.Client
	timeout time.Duration
}

func newFaultApp(t *testing.T, timeout time.Duration) (*faultApp, string) {
	direct := testredis.Client(t)
	prefix := testredis.Prefix(t, direct)
	proxy, err := faultproxy.Start(direct.Options().Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	opt := *direct.Options()
	client := redis.NewClient(&redis.Options{
		Addr: proxy.Addr(), DB: opt.DB, Username: opt.Username, Password: opt.Password,
		ContextTimeoutEnabled: true,
		PoolSize:              16,
	})
	t.Cleanup(func() { client.Close() })
	st, err := redisstore.New(client, redisstore.Options{Prefix: prefix, Logger: storecheck.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	m, err := galleta.New(galleta.Options{
		Secrets:      []string{"0123456789abcdef0123456789abcdef"},
		Store:        st,
		StoreTimeout: timeout,
		Cookie:       galleta.CookieOptions{Path: "/app"},
		Logger:       storecheck.Quiet,
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
	return &faultApp{h: m.Middleware(mux), proxy: proxy, client: client, timeout: timeout}, prefix
}

func (a *faultApp) do(method, path, cookie string) (*httptest.ResponseRecorder, time.Duration) {
	r := httptest.NewRequest(method, path, nil)
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	w := httptest.NewRecorder()
	start := time.Now()
	a.h.ServeHTTP(w, r)
	return w, time.Since(start)
}

// settle polls until f() <= limit or 5 seconds pass, and returns f().
func settle(limit int, f func() int) int {
	deadline := time.Now().Add(5 * time.Second)
	n := f()
	for n > limit && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n = f()
	}
	return n
}

// stable returns f() once it has not changed for 100 ms (at most 2 s).
func stable(f func() int) int {
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

// TestFaults: with Redis cut off (connections closed and refused) or
// blackholed (accepted, nothing forwarded), requests that carry a session
// get 503 + Retry-After within 2x the store timeout, keep their cookie (no
// Set-Cookie) and mint no session; requests that do not load a session
// still succeed; goroutines and the client's connections do not pile up
// over repeated faults; and when traffic passes again the next request
// succeeds, with nothing restarted.
func TestFaults(t *testing.T) {
	const timeout = 300 * time.Millisecond
	app, prefix := newFaultApp(t, timeout)
	direct := testredis.Client(t)
	keys := func() int {
		n, err := testredis.CountPrefix(context.Background(), direct, prefix)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	w, _ := app.do("POST", "/app/incr", "")
	if w.Code != 200 || w.Body.String() != "1" {
		t.Fatalf("first request: %d %s", w.Code, w.Body)
	}
	cookie, _, _ := strings.Cut(w.Header().Get("Set-Cookie"), ";")
	want := 1

	baseG := stable(runtime.NumGoroutine)
	var goroutines, conns []int
	for cycle := range 3 {
		for _, mode := range []faultproxy.Mode{faultproxy.Cut, faultproxy.Stall} {
			app.proxy.Set(mode)
			const parallel = 12
			var wg sync.WaitGroup
			for i := range parallel {
				wg.Go(func() {
					w, took := app.do("POST", "/app/incr", cookie)
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
				if w, _ := app.do("GET", path, ""); w.Code != 200 {
					t.Errorf("%s: GET %s without a session cookie: %d %q, want 200 (it needs no store)", mode, path, w.Code, w.Body)
				}
			}
			if w, took := app.do("GET", "/public", cookie); w.Code != 200 || took > timeout {
				t.Errorf("%s: GET /public (outside the cookie path) with the cookie: %d after %v, want 200 at once", mode, w.Code, took)
			}

			app.proxy.Set(faultproxy.Pass)
			w, _ := app.do("POST", "/app/incr", cookie)
			want++
			if w.Code != 200 || w.Body.String() != fmt.Sprint(want) {
				t.Fatalf("%s, cycle %d: first request after the fault ended: %d %q, want 200 %d", mode, cycle, w.Code, w.Body, want)
			}
		}
		if n := keys(); n != 1 {
			t.Errorf("cycle %d: %d session keys in Redis, want 1: no session may be minted during a fault", cycle, n)
		}
		goroutines = append(goroutines, stable(runtime.NumGoroutine))
		conns = append(conns, stable(func() int { return int(app.client.PoolStats().TotalConns) }))
	}
	// 72 requests failed (3 cycles x 2 faults x 12). Goroutines that piled
	// up per failed request, or connections never returned, would show here
	// as growth near that number; the pool (size 16) and its per-connection
	// goroutines account for small changes.
	if g := settle(baseG+20, runtime.NumGoroutine); g > baseG+20 {
		t.Errorf("goroutines: %d before the faults, %v after each cycle, now %d: they pile up", baseG, goroutines, g)
	}
	if c := app.client.PoolStats().TotalConns; c > 16 {
		t.Errorf("client pool connections after each fault cycle: %v, now %d, over the pool size 16", conns, c)
	}
	if p := settle(int(app.client.PoolStats().TotalConns), app.proxy.Conns); p > int(app.client.PoolStats().TotalConns)+1 {
		t.Errorf("the proxy still carries %d connections, the client's pool has %d: closed connections leak", p, app.client.PoolStats().TotalConns)
	}
	t.Logf("goroutines before the faults %d, after each cycle %v; pool connections after each cycle %v", baseG, goroutines, conns)
}

// Redis blackholed from the start: New returns after its probe, and
// concurrent first calls (each would measure the clock offset) still end
// within their own deadlines instead of queueing behind one another.
func TestStalledFromStart(t *testing.T) {
	direct := testredis.Client(t)
	proxy, err := faultproxy.Start(direct.Options().Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	proxy.Set(faultproxy.Stall)
	client := redis.NewClient(&redis.Options{Addr: proxy.Addr(), DB: direct.Options().DB, Username: direct.Options().Username,
		Password: direct.Options().Password, ContextTimeoutEnabled: true})
	t.Cleanup(func() { client.Close() })
	start := time.Now()
	st, err := redisstore.New(client, redisstore.Options{Prefix: testredis.Prefix(t, direct), Logger: storecheck.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("New took %v with Redis blackholed, want about its 1 s probe", took)
	}
	const timeout = 300 * time.Millisecond
	var wg sync.WaitGroup
	// A call with a long deadline measures first; the short ones must not
	// wait for it beyond their own deadlines.
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st.Get(ctx, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	})
	time.Sleep(50 * time.Millisecond) // let it take the measurement (real Redis, real clock)
	for range 8 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			start := time.Now()
			_, err := st.Get(ctx, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
			if !galleta.IsUnavailable(err) {
				t.Errorf("Get = %v, want unavailable", err)
			}
			if took := time.Since(start); took > 2*timeout {
				t.Errorf("Get took %v, over 2x its %v deadline", took, timeout)
			}
		})
	}
	wg.Wait()
	proxy.Set(faultproxy.Pass)
	if _, err := st.Get(context.Background(), "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"); err == nil || galleta.IsUnavailable(err) {
		t.Errorf("Get once Redis passes = %v, want ErrNotFound", err)
	}
}
