package bench

// Sessions in PostgreSQL: the request of BenchmarkRedisRequest (load the
// session, read the user name, increment a counter, save, respond)
// through galleta's Manager on its pgstore and through scs v2 on its pgx
// store (github.com/alexedwards/scs/pgxstore), on the same PostgreSQL
// ($DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test) in the
// same run, each in a schema of its own (dropped at the end) with a pgx v5
// pool of its own of the same size.
//
// Not equal guarantees: scs loads with SELECT and saves with an upsert of
// what it loaded plus its own change, so two overlapping requests of one
// session lose an increment. galleta saves with a compare-and-set UPDATE
// on the text it loaded and, when another request wrote first, replays
// the request's changes on the row it then holds with SELECT ... FOR
// UPDATE. Each benchmark reports:
//
//	req/s      requests answered per second
//	rtt/op     statements sent to PostgreSQL per request (each a round
//	           trip; a transaction's BEGIN and COMMIT count, and so does
//	           preparing a statement, once per statement and connection)
//	lost/op    increments answered with 200 that are not in the stored counter
//	stored/s   increments that reached the stored counter, per second
//	pg-µs/op   CPU time of the PostgreSQL server's processes per request,
//	           when the server runs on this machine (it shares the CPUs)
//	go-µs/op   CPU time of this process per request: the library, pgx,
//	           and the benchmark's own requests and recorders
//
// bench/postgres.sh runs these next to pgbench running the two statements
// of a request, the ceiling, and prints each library's share of it. By
// hand:
//
//	cd bench && go test -run='^$' -bench='^BenchmarkPostgres' -benchmem -count=1 .
//
// That the request costs the same with a million sessions in the table as
// with a thousand is measured in the store's own benchmarks (from the
// repository's root): go test -run='^$' -bench=Scale -benchtime=3s
// -timeout=1h ./pgstore -pgstore.scale=1000000.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/internal/testpg"
	"github.com/galleta-go/galleta/pgstore"
)

// pgTrips counts what a pool's connections send: statements (a
// transaction's BEGIN and COMMIT included) and statement preparations.
type pgTrips struct{ n atomic.Int64 }

func (c *pgTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *pgTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *pgTrips) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *pgTrips) TracePrepareEnd(context.Context, *pgx.Conn, pgx.TracePrepareEndData) {}

// pgPoolSize is the size of each library's pool: one connection per
// goroutine of the benchmark, so neither waits for a connection.
func pgPoolSize() int32 { return int32(*redisPar * runtime.GOMAXPROCS(0)) }

// pgPool is a pool on $DATABASE_URL of pgPoolSize connections whose
// search_path is a fresh schema (dropped at the end), counting its round
// trips. The benchmark skips (fails with CI=true) when PostgreSQL does
// not answer.
func pgPool(b *testing.B) (*pgxpool.Pool, string, *pgTrips) {
	schema := testpg.Schema(b)
	cfg := testpg.Config(b)
	cfg.MaxConns = pgPoolSize()
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	tr := &pgTrips{}
	cfg.ConnConfig.Tracer = tr
	return testpg.Pool(b, cfg), schema, tr
}

// pgLib is a library on PostgreSQL: incr builds the request's handler on a
// pool whose search_path is schema, read one that only reads the user
// name (no change).
type pgLib struct {
	name string
	incr func(b *testing.B, p *pgxpool.Pool, schema string) http.Handler
	read func(b *testing.B, p *pgxpool.Pool, schema string) http.Handler
}

var pgLibs = []pgLib{
	{"galleta", galletaPG(false), galletaPG(true)},
	{"scs", scsPG(false), scsPG(true)},
}

func galletaPG(readOnly bool) func(*testing.B, *pgxpool.Pool, string) http.Handler {
	return func(b *testing.B, p *pgxpool.Pool, schema string) http.Handler {
		st, err := pgstore.New(p, pgstore.Options{Schema: schema, CreateTable: true, PruneInterval: -1, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		m, err := galleta.New(galleta.Options{Secrets: []string{secret}, Store: st, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { m.Close(); st.Close() })
		return m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := galleta.FromRequest(r)
			u, ok := s.GetString("user")
			if !ok {
				s.Set("user", "alice")
			}
			if readOnly && ok {
				w.Write([]byte(u))
				return
			}
			n, _ := s.Incr("n", 1)
			w.Write(strconv.AppendInt(nil, n, 10))
		}))
	}
}

// scsTable is pgxstore's table (its README's SQL).
const scsTable = `CREATE TABLE sessions (token TEXT PRIMARY KEY, data BYTEA NOT NULL, expiry TIMESTAMPTZ NOT NULL);
CREATE INDEX sessions_expiry_idx ON sessions (expiry);`

func scsPG(readOnly bool) func(*testing.B, *pgxpool.Pool, string) http.Handler {
	return func(b *testing.B, p *pgxpool.Pool, _ string) http.Handler {
		if _, err := p.Exec(context.Background(), scsTable); err != nil {
			b.Fatalf("create scs's table: %v", err)
		}
		sm := scs.New()
		sm.Store = pgxstore.NewWithCleanupInterval(p, 0)
		sm.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "session store failed", http.StatusServiceUnavailable)
		}
		return sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			u := sm.GetString(ctx, "user")
			if u == "" {
				sm.Put(ctx, "user", "alice")
			}
			if readOnly && u != "" {
				w.Write([]byte(u))
				return
			}
			n := sm.GetInt(ctx, "n") + 1
			sm.Put(ctx, "n", n)
			w.Write(strconv.AppendInt(nil, int64(n), 10))
		}))
	}
}

// pgCPU is the CPU time (user and system) of the PostgreSQL backends
// serving the pool whose connections carry application_name app, when
// they run on this machine (ok false otherwise). A benchmark's
// connections live as long as its pool, so the difference across a run is
// what its backends used; other users of the server are not counted.
func pgCPU(b *testing.B, app string) (cpu time.Duration, ok bool) {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, testpg.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE application_name = $1", app)
	if err != nil {
		b.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		b.Fatal(err)
	}
	var ticks int64
	for _, pid := range pids {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, false // not on this machine (or gone)
		}
		s := string(raw)
		end := strings.LastIndexByte(s, ')')
		fields := strings.Fields(s[end+1:])
		if end < 0 || len(fields) < 13 {
			return 0, false
		}
		u, _ := strconv.ParseInt(fields[11], 10, 64) // utime, field 14 of stat
		k, _ := strconv.ParseInt(fields[12], 10, 64) // stime, field 15
		ticks += u + k
	}
	return time.Duration(ticks) * time.Second / 100, true // USER_HZ is 100 on Linux
}

// selfCPU is the CPU time (user and system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runPG is runRedis on PostgreSQL: h driven from redisPar goroutines per
// CPU; one: every request on one session's cookie, else a session per
// goroutine. It reports req/s, rtt/op, pg-µs/op and, with counts, lost/op
// and stored/s.
func runPG(b *testing.B, h http.Handler, p *pgxpool.Pool, trips *pgTrips, one, counts bool) {
	app := p.Config().ConnConfig.RuntimeParams["application_name"]
	g := *redisPar * runtime.GOMAXPROCS(0)
	cookies := make([]*http.Cookie, g)
	for i := range cookies {
		if i == 0 || !one {
			cookies[i] = firstCookie(b, h)
		} else {
			cookies[i] = cookies[0]
		}
	}
	var next, ok, failed atomic.Int64
	b.SetParallelism(*redisPar)
	b.ReportAllocs()
	trips0 := trips.n.Load()
	cpu0, local := pgCPU(b, app)
	self0 := selfCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := cookies[int(next.Add(1)-1)%g]
		for pb.Next() {
			if code, _ := serve(h, c); code == 200 {
				ok.Add(1)
			} else {
				failed.Add(1)
			}
		}
	})
	b.StopTimer()
	cpu, _ := pgCPU(b, app)
	b.ReportMetric(float64((selfCPU()-self0).Microseconds())/float64(b.N), "go-µs/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	b.ReportMetric(float64(trips.n.Load()-trips0)/float64(b.N), "rtt/op")
	if local {
		b.ReportMetric(float64((cpu-cpu0).Microseconds())/float64(b.N), "pg-µs/op")
	}
	if failed.Load() > 0 {
		b.Errorf("%d of %d requests failed", failed.Load(), b.N)
	}
	if !counts {
		return
	}
	// Each session's counter holds 1 (its first request) plus every
	// increment answered 200.
	want, got := ok.Load(), int64(0)
	seen := map[string]bool{}
	for _, c := range cookies {
		if !seen[c.Value] {
			seen[c.Value] = true
			want++
			got += storedCount(b, h, c)
		}
	}
	b.ReportMetric(float64(want-got)/float64(b.N), "lost/op")
	b.ReportMetric(float64(got-int64(len(seen)))/b.Elapsed().Seconds(), "stored/s")
}

// BenchmarkPostgresRequest: the request on PostgreSQL, in the shapes of
// BenchmarkRedisRequest: incr-one (every request increments one
// session's counter: overlapping requests of one session), incr-many
// (each goroutine its own session: 2 round trips for either library, the
// load and the save) and read-many (requests that change nothing: 1 round
// trip, the load; galleta skips the touch while the expiry would move by
// under 1% of the idle window).
func BenchmarkPostgresRequest(b *testing.B) {
	for _, shape := range []struct {
		name      string
		one, read bool
	}{{"incr-one", true, false}, {"incr-many", false, false}, {"read-many", false, true}} {
		for _, lib := range pgLibs {
			b.Run(shape.name+"/"+lib.name, func(b *testing.B) {
				pool, schema, trips := pgPool(b)
				mk := lib.incr
				if shape.read {
					mk = lib.read
				}
				runPG(b, mk(b, pool, schema), pool, trips, shape.one, !shape.read)
			})
		}
	}
}

// BenchmarkPostgresLostUpdates: each op is a burst of 100 increments
// started together on one new session; the stored counter is then
// compared with the increments answered 200. lost/op is the share of
// them missing.
func BenchmarkPostgresLostUpdates(b *testing.B) {
	for _, lib := range pgLibs {
		b.Run(lib.name, func(b *testing.B) {
			pool, schema, _ := pgPool(b)
			h := lib.incr(b, pool, schema)
			var lost, acked int64
			for b.Loop() {
				ck := firstCookie(b, h)
				var ok atomic.Int64
				start := make(chan struct{})
				var wg sync.WaitGroup
				for range burst {
					wg.Go(func() {
						<-start
						if code, _ := serve(h, ck); code == 200 {
							ok.Add(1)
						}
					})
				}
				close(start)
				wg.Wait()
				acked += ok.Load()
				lost += 1 + ok.Load() - storedCount(b, h, ck)
			}
			b.ReportMetric(float64(lost)/float64(acked), "lost/op")
			b.ReportMetric(float64(acked)/float64(b.N*burst), "ok/op")
		})
	}
}
