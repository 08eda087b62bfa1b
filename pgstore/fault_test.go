package pgstore_test

import (
	"context"
	"encoding/json"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/galleta-go/galleta/internal/faultproxy"
	"github.com/galleta-go/galleta/internal/storecheck"
	"github.com/galleta-go/galleta/internal/testpg"
	"github.com/galleta-go/galleta/pgstore"
	"github.com/galleta-go/galleta/store"
)

// faultApp is a Manager on a pgstore whose pool dials PostgreSQL through a
// fault proxy (see storecheck.FaultApp).
type faultApp struct {
	*storecheck.FaultApp
	pool *pgxpool.Pool
	st   *pgstore.Store
}

const poolSize = 8

// settleWithin bounds how long this package's tests wait for leftover
// goroutines and connections to go.
const settleWithin = 10 * time.Second

// proxied returns a pool configuration for the test's PostgreSQL whose
// connections go through a fault proxy, and the proxy.
func proxied(t *testing.T) (*pgxpool.Config, *faultproxy.Proxy) {
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
	return cfg, proxy
}

func newFaultApp(t *testing.T, timeout time.Duration) *faultApp {
	cfg, proxy := proxied(t)
	cfg.MaxConns = poolSize
	st, pool := open(t, cfg, pgstore.Options{})
	return &faultApp{FaultApp: storecheck.NewFaultApp(t, st, proxy, timeout), pool: pool, st: st}
}

// TestFaults runs storecheck.RunFaults with PostgreSQL cut off and
// blackholed: 503s in time, no row minted, goroutines and the pool's
// connections flat, none stays acquired, recovery with nothing restarted.
func TestFaults(t *testing.T) {
	app := newFaultApp(t, 300*time.Millisecond)
	storecheck.RunFaults(t, storecheck.Faults{
		App: app.FaultApp,
		Sessions: func() int {
			var n int
			testpg.QueryRow(t, "SELECT count(*) FROM "+app.st.Table(), nil, &n)
			return n
		},
		Conns:    func() int { return int(app.pool.Stat().TotalConns()) },
		MaxConns: poolSize,
		Acquired: func() int { return int(app.pool.Stat().AcquiredConns()) },
		Settle:   settleWithin,
	})
}

// PostgreSQL blackholed from the start: New returns after its bounded
// setup with a warning, requests get 503 within 2x their deadline, and
// once traffic passes the store checks the table then and serves.
func TestStalledFromStart(t *testing.T) {
	cfg, proxy := proxied(t)
	proxy.Set(faultproxy.Stall)
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
	storecheck.GetsFailFast(t, st, testID, 300*time.Millisecond)
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
	w, _ := app.Do("POST", "/app/incr", "")
	if w.Code != 200 {
		t.Fatalf("first request: %d %s", w.Code, w.Body)
	}
	cookie, _, _ := strings.Cut(w.Header().Get("Set-Cookie"), ";")
	baseG := storecheck.Stable(runtime.NumGoroutine)

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
				w, took := app.Do("POST", "/app/incr", cookie)
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
	if g := storecheck.Settle(settleWithin, baseG+20, runtime.NumGoroutine); g > baseG+20 {
		t.Errorf("goroutines: %d before, %d after", baseG, g)
	}
	if a := storecheck.Settle(settleWithin, 0, func() int { return int(app.pool.Stat().AcquiredConns()) }); a != 0 {
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
