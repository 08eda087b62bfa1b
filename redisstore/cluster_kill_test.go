package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/internal/storecheck"
	"github.com/galleta-go/galleta/internal/testenv"
	"github.com/galleta-go/galleta/internal/testredis"
	"github.com/galleta-go/galleta/redisstore"
	"github.com/galleta-go/galleta/store"
)

// TestClusterPrimaryKilled: a primary of a three-primary cluster is
// SIGKILLed while requests run. Every request ends (200 or 503) within 2x
// the store timeout, nothing hangs, no increment acknowledged with 200 on a
// session of a surviving primary is lost, and once the node is restarted
// (same port, same nodes.conf; it comes back empty, there is no
// persistence) requests succeed again with the same app, store and client.
// The cluster runs with cluster-require-full-coverage yes, so once it marks
// the node failed every request may get 503.
func TestClusterPrimaryKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own cluster and kills a node: not in -short")
	}
	if err := testredis.Binaries(); err != nil {
		testenv.Missing(t, "the cluster test needs the binaries: "+err.Error())
	}
	ctx := context.Background()
	cl, err := testredis.StartCluster(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	client := cl.Client()
	t.Cleanup(func() { client.Close() })
	prefix := testredis.Prefix(t, client)
	st, err := redisstore.New(client, redisstore.Options{Prefix: prefix, Logger: storecheck.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 500 * time.Millisecond
	m, err := galleta.New(galleta.Options{Secrets: []string{"0123456789abcdef0123456789abcdef"}, Store: st, StoreTimeout: timeout, Logger: storecheck.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		if r.Method == "GET" {
			n, _ := s.GetInt("n")
			fmt.Fprint(w, n)
			return
		}
		n, err := s.Incr("n", 1)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprint(w, n)
	}))
	do := func(method, cookie string) (*httptest.ResponseRecorder, time.Duration) {
		r := httptest.NewRequest(method, "/", nil)
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		w := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(w, r)
		return w, time.Since(start)
	}

	// Sessions, and the node each lives on.
	const sessions = 30
	type sess struct {
		cookie string
		node   int
		acked  atomic.Int64 // the highest count answered with 200
	}
	var all [sessions]*sess
	for i := range all {
		w, _ := do("POST", "")
		if w.Code != 200 {
			t.Fatalf("create session %d: %d %s", i, w.Code, w.Body)
		}
		pair, _, _ := strings.Cut(w.Header().Get("Set-Cookie"), ";")
		node, err := cl.NodeOf(ctx, prefix+storecheck.SessionID(t, pair))
		if err != nil {
			t.Fatal(err)
		}
		all[i] = &sess{cookie: pair, node: node}
		all[i].acked.Store(1)
	}
	victim := all[0].node

	var (
		stop              atomic.Bool
		ok, unavailable   atomic.Int64
		slowest           atomic.Int64
		wg                sync.WaitGroup
		mu                sync.Mutex
		unexpected        []string
		okAfterRestart    atomic.Int64
		restarted         atomic.Bool
		victimOKAfterKill atomic.Int64
		killed            atomic.Bool
		restarting        atomic.Bool
		healthyLat        []time.Duration // requests on surviving primaries' sessions, sent after the kill and answered before the restart
	)
	for g := range 6 {
		wg.Go(func() {
			for i := g; !stop.Load(); i++ {
				s := all[i%sessions]
				// Only a request sent after the kill finished and answered
				// before the restart began must not succeed on the victim's
				// sessions; one in flight at the kill may have got its
				// replies already.
				sentAfterKill := killed.Load()
				w, took := do("POST", s.cookie)
				beforeRestart := !restarting.Load()
				if d := int64(took); d > slowest.Load() {
					slowest.Store(d) // racy max, good enough for a report
				}
				if s.node != victim && sentAfterKill && beforeRestart {
					mu.Lock()
					healthyLat = append(healthyLat, took)
					mu.Unlock()
				}
				switch w.Code {
				case 200:
					ok.Add(1)
					if restarted.Load() {
						okAfterRestart.Add(1)
					}
					if sentAfterKill && beforeRestart && s.node == victim && w.Header().Get("Set-Cookie") == "" {
						victimOKAfterKill.Add(1)
					}
					if w.Header().Get("Set-Cookie") != "" {
						continue // a new session: the old one was on the killed node
					}
					n, _ := strconv.ParseInt(w.Body.String(), 10, 64)
					for {
						cur := s.acked.Load()
						if n <= cur || s.acked.CompareAndSwap(cur, n) {
							break
						}
					}
				case 503:
					unavailable.Add(1)
				default:
					mu.Lock()
					unexpected = append(unexpected, fmt.Sprintf("%d %s", w.Code, strings.TrimSpace(w.Body.String())))
					mu.Unlock()
				}
				if took > 2*timeout {
					mu.Lock()
					unexpected = append(unexpected, fmt.Sprintf("a request took %v, over 2x the store timeout", took))
					mu.Unlock()
				}
			}
		})
	}
	stopLoad := func() {
		stop.Store(true)
		wg.Wait()
	}
	defer stopLoad()

	time.Sleep(300 * time.Millisecond) // load before the kill (a real clock: the cluster's)
	if err := cl.Kill(victim); err != nil {
		t.Fatal(err)
	}
	killed.Store(true)
	// Wait until the cluster has noticed (the load then gets 503s), at most
	// 10 s: cluster-node-timeout plus gossip.
	deadline := time.Now().Add(10 * time.Second)
	before := unavailable.Load()
	for unavailable.Load() < before+20 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if unavailable.Load() < before+20 {
		t.Fatalf("10 s after the kill only %d requests got 503", unavailable.Load()-before)
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	if err := st.Ping(pctx); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Ping with a primary down = %v, want ErrUnavailable", err)
	}
	cancel()
	restarting.Store(true)
	if err := cl.Restart(ctx, victim); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitOK(ctx); err != nil {
		t.Fatal(err)
	}
	restarted.Store(true)
	// Requests succeed again, through the same Manager, store and client.
	deadline = time.Now().Add(10 * time.Second)
	for okAfterRestart.Load() < 100 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	stopLoad()
	if err := st.Ping(ctx); err != nil {
		t.Errorf("Ping after the restart: %v", err)
	}
	if okAfterRestart.Load() < 100 {
		t.Fatalf("after the restart only %d requests succeeded in 10 s", okAfterRestart.Load())
	}
	for _, u := range unexpected {
		t.Error(u)
	}
	if victimOKAfterKill.Load() > 0 {
		t.Errorf("%d requests on sessions of the killed node got 200 with their old session while it was down", victimOKAfterKill.Load())
	}
	// No acknowledged increment on a surviving primary is lost.
	for i, s := range all {
		if s.node == victim {
			continue
		}
		w, _ := do("GET", s.cookie)
		n, _ := strconv.ParseInt(w.Body.String(), 10, 64)
		if w.Code != 200 || w.Header().Get("Set-Cookie") != "" || n < s.acked.Load() {
			t.Errorf("session %d (node %d): stored %q (status %d), but %d was acknowledged", i, s.node, w.Body, w.Code, s.acked.Load())
		}
	}
	// The surviving primaries' sessions are not held up by the dead node
	// (their reads and writes run in their own node's lane): none of their
	// requests sent after the kill waits out the store timeout.
	slices.Sort(healthyLat)
	n := len(healthyLat)
	if n < 5 {
		t.Errorf("only %d requests on the surviving primaries' sessions between the kill and the restart; want at least 5 to judge their latency", n)
	} else {
		t.Logf("surviving primaries' sessions between the kill and the restart: %d requests, p50 %v, max %v", n, healthyLat[n/2], healthyLat[n-1])
		held := 0
		for _, d := range healthyLat {
			if d >= timeout*9/10 {
				held++
			}
		}
		if held > 0 {
			t.Errorf("%d of %d requests on the surviving primaries' sessions took 90%% of the store timeout or more (slowest %v): the dead node held them up", held, n, healthyLat[n-1])
		}
	}
	t.Logf("victim node %d; %d ok, %d 503; slowest request %v; %d ok after the restart",
		victim, ok.Load(), unavailable.Load(), time.Duration(slowest.Load()), okAfterRestart.Load())
}
