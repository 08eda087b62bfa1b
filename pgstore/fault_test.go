package pgstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/internal/faultproxy"
	"github.com/galleta-go/galleta/internal/storecheck"
	"github.com/galleta-go/galleta/internal/testpg"
	"github.com/galleta-go/galleta/pgstore"
	"github.com/galleta-go/galleta/store"
)

// faultApp is a Manager on a pgstore whose pool dials PostgreSQL through a
// fault proxy. Routes under /app use the session; /public is outside the
// cookie path.
type faultApp struct {
	h       http.Handler
	proxy   *faultproxy.Proxy
	pool    *pgxpool.Pool
	st      *pgstore.Store
	timeout time.Duration
}

const poolSize = 8

func newFaultApp(t *testing.T, timeout time.Duration) *faultApp {
	cfg := testpg.Config(t)
	target := net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port)))
	proxy, err := faultproxy.Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	host, port, _ := net.SplitHostPort(proxy.Addr())
	p, _ := strconv.Atoi(port)
	cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Fallbacks = host, uint16(p), nil
	cfg.MaxConns = poolSize
	st, pool := open(t, cfg, pgstore.Options{})
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
	return &faultApp{h: m.Middleware(mux), proxy: proxy, pool: pool, st: st, timeout: timeout}
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

func (a *faultApp) rows(t *testing.T) int {
	t.Helper()
	var n int
	testpg.QueryRow(t, "SELECT count(*) FROM "+a.st.Table(), nil, &n)
	return n
}

// settle polls until f() <= limit or 10 seconds pass, and returns f().
func settle(limit int, f func() int) int {
	deadline := time.Now().Add(10 * time.Second)
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

// TestFaults: with PostgreSQL cut off (connections closed and refused) or
// blackholed (accepted, nothing forwarded), requests that carry a session
// get 503 + Retry-After within 2x the store timeout, keep their cookie
// (no Set-Cookie) and mint no session; requests that do not load a
// session still succeed; goroutines and the pool's connections do not pile
// up over repeated faults, none stays acquired; and when traffic passes
// again the next request succeeds, with nothing restarted.
func TestFaults(t *testing.T) {
	const timeout = 300 * time.Millisecond
	app := newFaultApp(t, timeout)

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
		if n := app.rows(t); n != 1 {
			t.Errorf("cycle %d: %d rows in the table, want 1: no session may be minted during a fault", cycle, n)
		}
		goroutines = append(goroutines, stable(runtime.NumGoroutine))
		conns = append(conns, stable(func() int { return int(app.pool.Stat().TotalConns()) }))
	}
	// 72 requests failed (3 cycles x 2 faults x 12). Goroutines that piled
	// up per failed request, or connections never returned, would show here
	// as growth near that number; the pool (8 connections, some being
	// built after a stall) accounts for small changes.
	if g := settle(baseG+20, runtime.NumGoroutine); g > baseG+20 {
		t.Errorf("goroutines: %d before the faults, %v after each cycle, now %d: they pile up", baseG, goroutines, g)
	}
	st := app.pool.Stat()
	if st.TotalConns() > poolSize || st.AcquiredConns() != 0 {
		t.Errorf("pool after the faults: %d connections (max %d), %d still acquired; after each cycle %v", st.TotalConns(), poolSize, st.AcquiredConns(), conns)
	}
	if p := settle(int(app.pool.Stat().TotalConns()), app.proxy.Conns); p > int(app.pool.Stat().TotalConns()) {
		t.Errorf("the proxy still carries %d connections, the pool has %d: closed connections leak", p, app.pool.Stat().TotalConns())
	}
	t.Logf("goroutines before the faults %d, after each cycle %v; pool connections after each cycle %v", baseG, goroutines, conns)
}

// PostgreSQL blackholed from the start: New returns after its bounded
// setup with a warning, requests get 503 within 2x their deadline, and
// once traffic passes the store checks the table then and serves.
func TestStalledFromStart(t *testing.T) {
	cfg := testpg.Config(t)
	target := net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port)))
	proxy, err := faultproxy.Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	proxy.Set(faultproxy.Stall)
	host, port, _ := net.SplitHostPort(proxy.Addr())
	p, _ := strconv.Atoi(port)
	cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Fallbacks = host, uint16(p), nil
	cfg.ConnConfig.ConnectTimeout = time.Second
	pool := testpg.Pool(t, cfg)
	var log storecheck.LogBuf
	start := time.Now()
	st, err := pgstore.New(pool, pgstore.Options{Schema: testpg.Schema(t), CreateTable: true, Logger: log.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if took := time.Since(start); took > 7*time.Second {
		t.Errorf("New took %v with PostgreSQL blackholed, want about its 5 s bound", took)
	}
	if !strings.Contains(log.String(), "cannot reach PostgreSQL") {
		t.Errorf("New logged %q, want a warning", log.String())
	}
	const timeout = 300 * time.Millisecond
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			start := time.Now()
			_, err := st.Get(ctx, testID)
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := st.Set(ctx, testID, storeRecord()); err != nil {
		t.Fatalf("Set once PostgreSQL passes (the table created then): %v", err)
	}
	if _, err := st.Get(ctx, testID); err != nil {
		t.Errorf("Get once PostgreSQL passes = %v", err)
	}
}

// pg_terminate_backend on every connection of the pool, again and again,
// while 16 clients increment one session's counter: every request either
// succeeds or gets a clean 503 (no 500, no hang past 2x the store
// timeout), and no acknowledged increment is lost: the final counter is at
// least the number of 200s (and at most that plus the 503s, whose write
// may or may not have landed before its connection died).
func TestTerminateBackends(t *testing.T) {
	const timeout = 2 * time.Second
	app := newFaultApp(t, timeout)
	w, _ := app.do("POST", "/app/incr", "")
	if w.Code != 200 {
		t.Fatalf("first request: %d %s", w.Code, w.Body)
	}
	cookie, _, _ := strings.Cut(w.Header().Get("Set-Cookie"), ";")
	baseG := stable(runtime.NumGoroutine)

	var ok, unavailable, killed atomic.Int64
	ok.Add(1)
	stop := make(chan struct{})
	var killer sync.WaitGroup
	appName := testpg.AppName(app.pool.Config())
	killer.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			n, err := testpg.Terminate(ctx, appName)
			cancel()
			if err != nil {
				t.Errorf("pg_terminate_backend: %v", err)
				return
			}
			killed.Add(int64(n))
		}
	})
	var wg sync.WaitGroup
	for c := range 16 {
		wg.Go(func() {
			for i := range 40 {
				w, took := app.do("POST", "/app/incr", cookie)
				switch w.Code {
				case 200:
					ok.Add(1)
				case 503:
					unavailable.Add(1)
					if w.Header().Get("Set-Cookie") != "" {
						t.Errorf("503 with Set-Cookie")
					}
				default:
					t.Errorf("client %d request %d: %d %q, want 200 or 503", c, i, w.Code, w.Body)
				}
				if took > 2*timeout {
					t.Errorf("client %d request %d took %v, over 2x the store timeout", c, i, took)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	killer.Wait()

	rec, err := app.st.Get(context.Background(), storecheck.SessionID(t, cookie))
	if err != nil {
		t.Fatal(err)
	}
	n := counterOf(t, rec.Data)
	t.Logf("%d backends terminated; %d requests acknowledged (200), %d got 503; final counter %d", killed.Load(), ok.Load(), unavailable.Load(), n)
	if n < ok.Load() {
		t.Errorf("final counter %d < %d acknowledged increments: an acknowledged write was lost", n, ok.Load())
	}
	if n > ok.Load()+unavailable.Load() {
		t.Errorf("final counter %d > %d requests made: an increment was applied twice", n, ok.Load()+unavailable.Load())
	}
	if killed.Load() == 0 {
		t.Error("no backend was terminated: the test proved nothing")
	}
	if g := settle(baseG+20, runtime.NumGoroutine); g > baseG+20 {
		t.Errorf("goroutines: %d before, %d after", baseG, g)
	}
	if a := settle(0, func() int { return int(app.pool.Stat().AcquiredConns()) }); a != 0 {
		t.Errorf("%d connections still acquired after every request ended", a)
	}
}

func storeRecord() store.Record {
	return store.Record{Data: data, Expires: time.Now().Add(time.Hour)}
}

// counterOf is the "n" of a stored session.
func counterOf(t *testing.T, data []byte) int64 {
	t.Helper()
	var v struct{ N int64 }
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("stored session %s: %v", data, err)
	}
	return v.N
}
