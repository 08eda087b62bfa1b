package bench

// Sessions in Redis: the request of BenchmarkRequest (load the session,
// read the user name, increment a counter, save, respond) through
// galleta's Manager on its redisstore and through scs v2 on its go-redis
// store (github.com/alexedwards/scs/goredisstore), on the same Redis
// ($REDIS_URL, default redis://127.0.0.1:6379/0) in the same run, each
// with a go-redis v9 client of its own with the same options.
//
// Not equal guarantees: scs loads with GET and saves with SET, so two
// overlapping requests of one session both write what they loaded plus
// their own change, and one increment is lost. galleta saves with a
// compare-and-set script and replays the request's changes when another
// request got there first. Each benchmark reports:
//
//	req/s     requests answered per second
//	rtt/op    Redis round trips per request (commands and pipelines sent)
//	lost/op   increments answered with 200 that are not in the stored counter
//	stored/s  increments that reached the stored counter, per second
//	redis-µs/op  CPU time of the Redis server per request (it shares the
//	          machine: a script costs it more than a GET or a SET)
//
// bench/redis.sh runs these next to redis-benchmark, the ceiling, and
// prints each library's share of it. By hand:
//
//	cd bench && go test -run='^$' -bench='^BenchmarkRedis' -benchmem -count=1 .
//	cd bench && go test -run='^$' -bench='^BenchmarkRedisScale$' -count=1 -timeout=30m . -redis.scale=1000000

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/redis/go-redis/v9"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/cookie"
	"github.com/galleta-go/galleta/internal/testredis"
	"github.com/galleta-go/galleta/redisstore"
)

var (
	redisPar   = flag.Int("redis.par", 8, "goroutines per CPU that send requests in the Redis benchmarks (b.SetParallelism)")
	redisScale = flag.Int("redis.scale", 0, "when > 0, BenchmarkRedisScale measures the request with 1,000 and with this many sessions in Redis (about 300 bytes of Redis memory each)")
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// rttHook counts what a client sends: each command and each pipeline is
// one round trip.
type rttHook struct {
	n atomic.Int64
	c *redis.Client // for INFO, not counted
}

func (h *rttHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *rttHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h *rttHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// redisClient is a new client for $REDIS_URL with a pool large enough for
// the benchmark's goroutines, counting its round trips; closed at the
// end. The benchmark skips (fails with CI=true) when Redis does not answer.
func redisClient(b *testing.B) (*redis.Client, *rttHook) {
	probe := testredis.Client(b)
	opt := *probe.Options()
	opt.PoolSize = max(64, 2**redisPar*runtime.GOMAXPROCS(0))
	c := redis.NewClient(&opt)
	b.Cleanup(func() { c.Close() })
	h := &rttHook{c: probe}
	c.AddHook(h)
	return c, h
}

// redisCPU is the CPU time the Redis server has used (INFO cpu, user and
// system), to report the server's cost per request: Redis shares the
// machine with the benchmark, and a script costs it more than a GET.
func redisCPU(b *testing.B, c *redis.Client) time.Duration {
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatalf("INFO cpu: %v", err)
	}
	var sec float64
	for line := range strings.SplitSeq(info, "\r\n") {
		k, v, _ := strings.Cut(line, ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			f, _ := strconv.ParseFloat(v, 64)
			sec += f
		}
	}
	return time.Duration(sec * float64(time.Second))
}

// counterHandler is the request: the user name set once, the counter
// incremented, the counter as this request saw it in the body.
type redisLib struct {
	name string
	// incr builds the handler on client under prefix.
	incr func(b *testing.B, c *redis.Client, prefix string) http.Handler
	// read builds a handler that only reads the user name (no change).
	read func(b *testing.B, c *redis.Client, prefix string) http.Handler
}

var redisLibs = []redisLib{
	{"galleta", galletaRedis(false), galletaRedis(true)},
	{"scs", scsRedis(false), scsRedis(true)},
}

func galletaRedis(readOnly bool) func(*testing.B, *redis.Client, string) http.Handler {
	return func(b *testing.B, c *redis.Client, prefix string) http.Handler {
		st, err := redisstore.New(c, redisstore.Options{Prefix: prefix, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		m, err := galleta.New(galleta.Options{Secrets: []string{secret}, Store: st, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { m.Close() })
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

func scsRedis(readOnly bool) func(*testing.B, *redis.Client, string) http.Handler {
	return func(b *testing.B, c *redis.Client, prefix string) http.Handler {
		sm := scs.New()
		sm.Store = goredisstore.NewWithPrefix(c, prefix)
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

// newPrefix is a fresh key prefix whose keys are deleted (pipelined) when
// the benchmark ends.
func newPrefix(b *testing.B, c *redis.Client, lib string) string {
	var r [6]byte
	rand.Read(r[:])
	p := "galleta-bench:" + hex.EncodeToString(r[:]) + ":" + lib + ":"
	b.Cleanup(func() {
		if _, err := unlinkPrefix(context.Background(), c, p); err != nil {
			b.Errorf("delete the benchmark's keys under %s: %v", p, err)
		}
	})
	return p
}

// unlinkPrefix deletes every key under prefix (no glob characters) with
// pipelined UNLINKs, a SCAN page at a time.
func unlinkPrefix(ctx context.Context, c *redis.Client, prefix string) (int, error) {
	n := 0
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, prefix+"*", 1000).Result()
		if err != nil {
			return n, err
		}
		if len(keys) > 0 {
			d, err := c.Unlink(ctx, keys...).Result()
			n += int(d)
			if err != nil {
				return n, err
			}
		}
		if next == 0 {
			return n, nil
		}
		cursor = next
	}
}

// statusWriter is a discarding ResponseWriter that keeps the status.
type statusWriter struct {
	h    http.Header
	code int
}

func (w *statusWriter) Header() http.Header { return w.h }
func (w *statusWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = 200
	}
	return len(p), nil
}
func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

// serve runs one request with cookie c (nil: none) and returns status and
// body.
func serve(h http.Handler, c *http.Cookie) (int, string) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/", nil)
	if c != nil {
		r.AddCookie(c)
	}
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

// firstCookie makes a first request and returns the session cookie it set.
func firstCookie(b *testing.B, h http.Handler) *http.Cookie {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/", nil))
	cs := w.Result().Cookies()
	if len(cs) != 1 || w.Code != 200 {
		b.Fatalf("first request: status %d, %d cookies, body %q", w.Code, len(cs), w.Body.String())
	}
	return cs[0]
}

// storedCount is the counter stored for c: one more request's view minus
// its own increment (nobody else runs then).
func storedCount(b *testing.B, h http.Handler, c *http.Cookie) int64 {
	code, body := serve(h, c)
	n, err := strconv.ParseInt(body, 10, 64)
	if code != 200 || err != nil {
		b.Fatalf("reading the counter: status %d, body %q", code, body)
	}
	return n - 1
}

// runRedis drives h from redisPar goroutines per CPU with RunParallel.
// one: every request on the cookie of a single session (BenchmarkRequest's
// shape); else each goroutine has a session of its own. It reports req/s,
// rtt/op and lost/op (increments answered 200 but missing from the
// stored counters).
func runRedis(b *testing.B, h http.Handler, hook *rttHook, one, counts bool) {
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
	rtt0, cpu0 := hook.n.Load(), redisCPU(b, hook.c)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		base := httptest.NewRequest("POST", "/", nil)
		base.AddCookie(cookies[int(next.Add(1)-1)%g])
		for pb.Next() {
			r := *base
			w := &statusWriter{h: http.Header{}}
			h.ServeHTTP(w, &r)
			if w.code == 200 {
				ok.Add(1)
			} else {
				failed.Add(1)
			}
		}
	})
	b.StopTimer()
	rtt, cpu := hook.n.Load()-rtt0, redisCPU(b, hook.c)-cpu0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	b.ReportMetric(float64(rtt)/float64(b.N), "rtt/op")
	b.ReportMetric(cpu.Seconds()*1e6/float64(b.N), "redis-µs/op")
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
	// Increments that reached a counter, per second of the run: what is
	// left of req/s once the lost ones are taken out.
	b.ReportMetric(float64(got-int64(len(seen)))/b.Elapsed().Seconds(), "stored/s")
}

// BenchmarkRedisRequest: the request of BenchmarkRequest on Redis.
// incr-one: every request increments one session's counter (the shape of
// BenchmarkRequest: overlapping requests of one session); incr-many: each
// goroutine its own session (no overlap; 2 round trips for either
// library: load, then save); read-many: requests that change nothing (1
// round trip: load; galleta skips the touch while the expiry would move by
// under 1% of the idle window).
func BenchmarkRedisRequest(b *testing.B) {
	for _, shape := range []struct {
		name      string
		one, read bool
	}{{"incr-one", true, false}, {"incr-many", false, false}, {"read-many", false, true}} {
		for _, lib := range redisLibs {
			b.Run(shape.name+"/"+lib.name, func(b *testing.B) {
				c, hook := redisClient(b)
				mk := lib.incr
				if shape.read {
					mk = lib.read
				}
				runRedis(b, mk(b, c, newPrefix(b, c, lib.name)), hook, shape.one, !shape.read)
			})
		}
	}
}

// burst is how many increments run at once on one session in
// BenchmarkRedisLostUpdates.
const burst = 100

// BenchmarkRedisLostUpdates: each op is a burst of 100 increments started
// together on one new session; the stored counter is then compared with
// the increments answered 200. lost/op is the share of them missing
// (0.5: half of the acknowledged increments are not stored).
func BenchmarkRedisLostUpdates(b *testing.B) {
	for _, lib := range redisLibs {
		b.Run(lib.name, func(b *testing.B) {
			c, _ := redisClient(b)
			h := lib.incr(b, c, newPrefix(b, c, lib.name))
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

// BenchmarkRedisScale (with -redis.scale=N): galleta's request (as
// incr-many, on sessions picked at random) with 1,000 sessions in Redis,
// then with N, twice (the best of each size is compared). The sessions are
// bulk-loaded with pipelined SETs under a prefix of their own, shrunk with
// pipelined UNLINKs, and deleted at the end. The goal: the request costs
// the same (within 20%) at both sizes.
func BenchmarkRedisScale(b *testing.B) {
	if *redisScale <= 0 {
		b.Skip("set -redis.scale=N (e.g. 1000000) to run")
	}
	c, hook := redisClient(b)
	prefix := newPrefix(b, c, "scale")
	h := galletaRedis(false)(b, c, prefix)
	ctx := context.Background()
	created := time.Now().UnixMilli()
	id := func(i int) string { return fmt.Sprintf("scale%038d", i) }
	loaded := 0
	load := func(n int) {
		start := time.Now()
		for loaded < n {
			pipe := c.Pipeline()
			for end := min(n, loaded+1000); loaded < end; loaded++ {
				data := fmt.Sprintf(`{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"__galleta":{"created":%d},"user":"alice","n":1}`, created)
				pipe.Set(ctx, prefix+id(loaded), data, time.Hour)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatalf("bulk load: %v", err)
			}
		}
		b.Logf("%d sessions in Redis under the prefix (bulk load %v)", loaded, time.Since(start).Round(time.Millisecond))
	}
	cookies := func(n int) []*http.Cookie {
		out := make([]*http.Cookie, min(n, 100000))
		for i := range out {
			j := i
			if n > len(out) {
				j = mrand.IntN(n)
			}
			out[i] = &http.Cookie{Name: "sid", Value: url.QueryEscape("s:" + cookie.Sign(id(j), secret))}
		}
		return out
	}
	// shrink deletes the sessions from n on, pipelined.
	shrink := func(n int) {
		for loaded > n {
			pipe := c.Pipeline()
			for end := max(n, loaded-1000); loaded > end; loaded-- {
				pipe.Unlink(ctx, prefix+id(loaded-1))
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatalf("delete: %v", err)
			}
		}
	}
	// Two rounds of both sizes, the best of each kept: the machine's
	// noise between two runs is larger than the effect sought.
	cost := map[int]float64{}
	for _, n := range []int{1000, *redisScale, 1000, *redisScale} {
		shrink(n)
		load(n)
		cs := cookies(n)
		var last float64 // ns/op of the sub-benchmark's final run
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			var next atomic.Int64
			var failed atomic.Int64
			b.SetParallelism(*redisPar)
			rtt0 := hook.n.Load()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				rng := mrand.New(mrand.NewPCG(uint64(next.Add(1)), 1))
				for pb.Next() {
					r := httptest.NewRequest("POST", "/", nil)
					r.AddCookie(cs[rng.IntN(len(cs))])
					w := &statusWriter{h: http.Header{}}
					h.ServeHTTP(w, r)
					if w.code != 200 || w.h.Get("Set-Cookie") != "" {
						failed.Add(1)
					}
				}
			})
			b.StopTimer()
			if failed.Load() > 0 {
				b.Fatalf("%d requests failed or got a new session", failed.Load())
			}
			last = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
			b.ReportMetric(float64(hook.n.Load()-rtt0)/float64(b.N), "rtt/op")
		})
		if cost[n] == 0 || last < cost[n] {
			cost[n] = last
		}
	}
	if cost[1000] > 0 {
		b.Logf("request with %d sessions in Redis: %.0f ns, with 1,000: %.0f ns (best of 2 rounds); ratio %.2f (goal: within 1.20)", *redisScale, cost[*redisScale], cost[1000], cost[*redisScale]/cost[1000])
	}
	start := time.Now()
	n, err := unlinkPrefix(ctx, c, prefix)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("deleted %d keys in %v", n, time.Since(start).Round(time.Millisecond))
}
