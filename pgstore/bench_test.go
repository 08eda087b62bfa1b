package pgstore_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/galleta-go/galleta/cookie"
	"github.com/galleta-go/galleta/internal/storecheck"
	"github.com/galleta-go/galleta/internal/testpg"
	"github.com/galleta-go/galleta/pgstore"
	"github.com/galleta-go/galleta/store"
)

// Benchmarks of the store's calls against the machine's PostgreSQL
// (DATABASE_URL), for figures, not pass/fail:
//
//	go test -run='^$' -bench=. -benchmem ./pgstore
//
// Each op is one call; "Parallel" ones spread over GOMAXPROCS goroutines
// on distinct sessions. The session is ~200 bytes of express-session JSON.
//
// BenchmarkScale runs only with -pgstore.scale=N (N rows, e.g. 1000000):
//
//	go test -run='^$' -bench=Scale -benchtime=3s -timeout=1h ./pgstore -pgstore.scale=1000000
//
// Its Request sub-benchmarks are one request through the Manager (load +
// commit of an Incr) on a working set of 1,000 random sessions of a table
// of 1,000 rows and of N rows, in the steady state (each session served
// once before the timing); PruneUnderLoad measures requests' latency with
// and without a Reap of N expired rows running beside them.

var scaleRows = flag.Int("pgstore.scale", 0, "rows of BenchmarkScale's large table (e.g. 1000000); 0 skips BenchmarkScale")

func benchStore(b *testing.B, o pgstore.Options) *pgstore.Store {
	if o.Schema == "" {
		o.Schema = testpg.Schema(b)
	}
	o.CreateTable, o.Logger = true, storecheck.Quiet
	cfg := testpg.Config(b)
	cfg.MaxConns = 16
	s, err := pgstore.New(testpg.Pool(b, cfg), o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func BenchmarkStore(b *testing.B) {
	s := benchStore(b, pgstore.Options{})
	storecheck.BenchStore(b, s, func(b *testing.B, ids []string, exp time.Time) {
		b.Run("UpdateConflict", func(b *testing.B) { // seen is stale: CAS misses, then the locked transaction
			stale := store.Record{Data: []byte(`{"stale":true}`), Expires: exp}
			write := func(cur store.Record, found bool) (store.Record, bool, error) {
				return store.Record{Data: storecheck.BenchData, Expires: exp}, true, nil
			}
			for i := 0; b.Loop(); i++ {
				if err := s.UpdateFrom(ctx, ids[i%len(ids)], stale, write); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// sessionCookie is the Cookie header of the Manager's default cookie for id.
func sessionCookie(id string) string {
	return "sid=" + url.QueryEscape("s:"+cookie.Sign(id, storecheck.Secret))
}

func serve(h http.Handler, cookie string) int {
	r := httptest.NewRequest("POST", "/", nil)
	r.Header.Set("Cookie", cookie)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

// BenchmarkManager is one request through the Manager on this store: load
// (Get) and commit of an Incr (UpdateFrom), the path of a real app.
func BenchmarkManager(b *testing.B) { storecheck.BenchManager(b, benchStore(b, pgstore.Options{})) }

// fillSessions inserts n sessions "<prefix><i>" (43-byte ids) expiring at
// exp, in chunks, then vacuums and analyzes the table and checkpoints, so
// what follows does not pay the bulk load's hint bits and WAL.
func fillSessions(b *testing.B, s *pgstore.Store, prefix string, n int, exp time.Time) {
	const chunk = 100_000
	for lo := 0; lo < n; lo += chunk {
		testpg.Exec(b, "INSERT INTO "+s.Table()+` (sid, sess, expire) SELECT $1 || lpad(i::text, 43 - length($1), '0'), $2::json, $3::timestamptz FROM generate_series($4::int, $5::int) i`,
			prefix, string(storecheck.BenchData), exp, lo, min(lo+chunk, n)-1)
	}
	testpg.Exec(b, "VACUUM ANALYZE "+s.Table())
	testpg.Exec(b, "CHECKPOINT")
}

func sessionName(prefix string, i int) string {
	return prefix + fmt.Sprintf("%0*d", 43-len(prefix), i)
}

func BenchmarkScale(b *testing.B) {
	if *scaleRows == 0 {
		b.Skip("set -pgstore.scale=N (e.g. 1000000) to run it")
	}
	var perOp [2]time.Duration
	for k, rows := range []int{1000, *scaleRows} {
		s := benchStore(b, pgstore.Options{PruneInterval: -1})
		fillSessions(b, s, "live", rows, time.Now().Add(24*time.Hour))
		h := storecheck.IncrHandler(b, s)
		cookies := make([]string, 1000)
		for i := range cookies {
			cookies[i] = sessionCookie(sessionName("live", rand.N(rows)))
		}
		// Steady state: every session of the working set read and
		// written once (pages cached, first writes after the checkpoint
		// done) before the timing.
		for _, c := range cookies {
			if code := serve(h, c); code != 200 {
				b.Fatal(code)
			}
		}
		b.Run(fmt.Sprintf("Request/rows=%d", rows), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if code := serve(h, cookies[i%len(cookies)]); code != 200 {
					b.Fatal(code)
				}
			}
			perOp[k] = b.Elapsed() / time.Duration(b.N)
		})
	}
	if perOp[0] > 0 {
		b.Logf("a request costs %v on 1,000 rows, %v on %d rows: %+.0f%%", perOp[0], perOp[1], *scaleRows, 100*(float64(perOp[1])/float64(perOp[0])-1))
	}
	b.Run(fmt.Sprintf("PruneUnderLoad/rows=%d", *scaleRows), func(b *testing.B) { pruneUnderLoad(b, *scaleRows) })
}

// pruneUnderLoad fills rows expired sessions and 10,000 live ones, runs
// requests from 4 goroutines for 3 seconds (the baseline), then again
// while Reap deletes the expired rows, and reports both phases' latency
// percentiles and the prune's time.
func pruneUnderLoad(b *testing.B, rows int) {
	const live, workers = 10_000, 4
	for b.Loop() {
		b.StopTimer()
		s := benchStore(b, pgstore.Options{PruneInterval: -1})
		fillSessions(b, s, "dead", rows, time.Now().Add(-time.Hour))
		fillSessions(b, s, "live", live, time.Now().Add(24*time.Hour))
		h := storecheck.IncrHandler(b, s)
		load := func(stop <-chan struct{}) []time.Duration {
			var mu sync.Mutex
			var all []time.Duration
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					var mine []time.Duration
					for {
						select {
						case <-stop:
							mu.Lock()
							all = append(all, mine...)
							mu.Unlock()
							return
						default:
						}
						c := sessionCookie(sessionName("live", rand.N(live)))
						start := time.Now()
						if code := serve(h, c); code != 200 {
							b.Errorf("request: %d", code)
						}
						mine = append(mine, time.Since(start))
					}
				})
			}
			<-stop
			wg.Wait()
			slices.Sort(all)
			return all
		}
		pct := func(d []time.Duration, p float64) float64 {
			if len(d) == 0 {
				return 0
			}
			return float64(d[int(p*float64(len(d)-1))].Microseconds()) / 1000
		}
		b.StartTimer()
		stop := make(chan struct{})
		time.AfterFunc(3*time.Second, func() { close(stop) })
		base := load(stop)

		stop = make(chan struct{})
		var pruned int
		var took time.Duration
		go func() {
			start := time.Now()
			n, err := s.Reap(context.Background())
			took, pruned = time.Since(start), n
			if err != nil {
				b.Errorf("Reap: %v", err)
			}
			close(stop)
		}()
		during := load(stop)
		b.StopTimer()
		if pruned != rows {
			b.Errorf("Reap deleted %d rows, want %d", pruned, rows)
		}
		b.ReportMetric(pct(base, 0.50), "p50-base-ms")
		b.ReportMetric(pct(base, 0.99), "p99-base-ms")
		b.ReportMetric(pct(during, 0.50), "p50-prune-ms")
		b.ReportMetric(pct(during, 0.99), "p99-prune-ms")
		b.ReportMetric(took.Seconds(), "prune-s")
		b.Logf("%d requests in 3 s without pruning: p50 %.2f ms, p99 %.2f ms; %d requests during the %v prune of %d rows: p50 %.2f ms, p99 %.2f ms (%.2fx)",
			len(base), pct(base, .5), pct(base, .99), len(during), took.Round(time.Millisecond), pruned, pct(during, .5), pct(during, .99), pct(during, .99)/pct(base, .99))
		b.StartTimer()
	}
}
