package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/galleta-go/galleta/store"
)

// metrics are served in Prometheus's text format, with no dependency.
type metrics struct {
	mu       sync.Mutex
	requests map[int]uint64 // by status code

	ops map[string]*opStats // store calls by operation
}

type opStats struct {
	calls, errors atomic.Uint64
	mu            sync.Mutex
	buckets       []uint64 // cumulative per latencyBuckets
	sum           float64
	count         uint64
}

var latencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}

// storeOps are the operations the metrics follow: loads, saves (Set and
// Update), touches and deletes.
var storeOps = []string{"load", "save", "touch", "delete"}

func newMetrics() *metrics {
	m := &metrics{requests: map[int]uint64{}, ops: map[string]*opStats{}}
	for _, op := range storeOps {
		m.ops[op] = &opStats{buckets: make([]uint64, len(latencyBuckets))}
	}
	return m
}

func (m *metrics) request(status int, _ time.Duration) {
	m.mu.Lock()
	m.requests[status]++
	m.mu.Unlock()
}

func (m *metrics) observe(op string, d time.Duration, err error) {
	s := m.ops[op]
	s.calls.Add(1)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.errors.Add(1)
	}
	sec := d.Seconds()
	s.mu.Lock()
	for i, b := range latencyBuckets {
		if sec <= b {
			s.buckets[i]++
		}
	}
	s.sum += sec
	s.count++
	s.mu.Unlock()
}

func (a *app) serveMetrics(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	m := a.metrics
	b.WriteString("# HELP galleta_http_requests_total HTTP requests served, by status code.\n# TYPE galleta_http_requests_total counter\n")
	m.mu.Lock()
	codes := make([]int, 0, len(m.requests))
	for c := range m.requests {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	for _, c := range codes {
		fmt.Fprintf(&b, "galleta_http_requests_total{code=\"%d\"} %d\n", c, m.requests[c])
	}
	m.mu.Unlock()
	b.WriteString("# HELP galleta_store_operations_total Session store calls: load, save, touch, delete.\n# TYPE galleta_store_operations_total counter\n")
	for _, op := range storeOps {
		fmt.Fprintf(&b, "galleta_store_operations_total{op=%q} %d\n", op, m.ops[op].calls.Load())
	}
	b.WriteString("# HELP galleta_store_errors_total Session store calls that failed (not found is not a failure).\n# TYPE galleta_store_errors_total counter\n")
	for _, op := range storeOps {
		fmt.Fprintf(&b, "galleta_store_errors_total{op=%q} %d\n", op, m.ops[op].errors.Load())
	}
	b.WriteString("# HELP galleta_store_latency_seconds Session store call latency.\n# TYPE galleta_store_latency_seconds histogram\n")
	for _, op := range storeOps {
		s := m.ops[op]
		s.mu.Lock()
		for i, le := range latencyBuckets {
			fmt.Fprintf(&b, "galleta_store_latency_seconds_bucket{op=%q,le=\"%g\"} %d\n", op, le, s.buckets[i])
		}
		fmt.Fprintf(&b, "galleta_store_latency_seconds_bucket{op=%q,le=\"+Inf\"} %d\n", op, s.count)
		fmt.Fprintf(&b, "galleta_store_latency_seconds_sum{op=%q} %g\n", op, s.sum)
		fmt.Fprintf(&b, "galleta_store_latency_seconds_count{op=%q} %d\n", op, s.count)
		s.mu.Unlock()
	}
	if a.live != nil {
		if n, age, ok := a.live.get(); ok {
			fmt.Fprintf(&b, "# HELP galleta_sessions_live Live sessions in the store, counted in the background at most every %v (see galleta_sessions_live_age_seconds).\n# TYPE galleta_sessions_live gauge\n", a.live.every)
			fmt.Fprintf(&b, "galleta_sessions_live %d\n", n)
			b.WriteString("# HELP galleta_sessions_live_age_seconds Seconds since galleta_sessions_live was counted.\n# TYPE galleta_sessions_live_age_seconds gauge\n")
			fmt.Fprintf(&b, "galleta_sessions_live_age_seconds %g\n", age.Round(time.Millisecond).Seconds())
		}
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(b.String()))
}

// liveEvery is how often at most the store is walked to count its live
// sessions for /metrics.
const liveEvery = 30 * time.Second

// liveCount is the store's live-session count for /metrics, which needs no
// login and may be scraped by many: counting walks the whole store (a file
// store reads its directory), so scrapes read a cached value. A scrape
// that finds the value older than every asks the counting goroutine for a
// new one and does not wait for it; the goroutine runs one count at a time,
// so the store is walked at most once per every. The goroutine belongs to
// the app: close stops it.
type liveCount struct {
	c     store.Counter
	now   func() time.Time
	every time.Duration
	log   *slog.Logger

	mu      sync.Mutex
	idle    sync.Cond // signalled when a count ends
	n       int
	at      time.Time // when the count n came from started
	have    bool      // a count succeeded
	running bool      // a count is asked for or under way
	asked   time.Time // when the last count was asked for

	kick   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// newLiveCount starts the counting goroutine and asks it for a first count.
func newLiveCount(c store.Counter, now func() time.Time, every time.Duration, log *slog.Logger) *liveCount {
	l := &liveCount{c: c, now: now, every: every, log: log, kick: make(chan struct{}, 1), done: make(chan struct{})}
	l.idle.L = &l.mu
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.mu.Lock()
	l.askLocked(now())
	l.mu.Unlock()
	go l.loop()
	return l
}

func (l *liveCount) askLocked(now time.Time) {
	l.running, l.asked = true, now
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// get returns the cached count and its age (ok is false before the first
// count succeeded), and asks for a new count when it is due.
func (l *liveCount) get() (n int, age time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.running && now.Sub(l.asked) >= l.every {
		l.askLocked(now)
	}
	if !l.have {
		return 0, 0, false
	}
	return l.n, max(now.Sub(l.at), 0), true
}

func (l *liveCount) loop() {
	defer close(l.done)
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-l.kick:
		}
		start := l.now()
		ctx, cancel := context.WithTimeout(l.ctx, 2*time.Minute)
		n, err := l.c.Count(ctx)
		cancel()
		if err != nil && l.ctx.Err() == nil {
			l.log.Error("galleta: count live sessions for /metrics", "err", err)
		}
		l.mu.Lock()
		if err == nil {
			l.n, l.at, l.have = n, start, true
		}
		l.running = false
		l.idle.Broadcast()
		l.mu.Unlock()
	}
}

// wait blocks until no count is asked for or under way (tests).
func (l *liveCount) wait() {
	l.mu.Lock()
	for l.running {
		l.idle.Wait()
	}
	l.mu.Unlock()
}

// close stops the goroutine, cancelling a count under way.
func (l *liveCount) close() {
	l.cancel()
	<-l.done
	l.mu.Lock()
	l.running = false
	l.idle.Broadcast()
	l.mu.Unlock()
}

// instrumented wraps a store and records each call in the metrics. It
// implements every optional interface the inner store has through the
// methods below (the program's stores have them all).
type instrumented struct {
	inner store.Store
	m     *metrics
}

func instrument(s store.Store, m *metrics) *instrumented { return &instrumented{inner: s, m: m} }

func (s *instrumented) Get(ctx context.Context, id string) (store.Record, error) {
	t := time.Now()
	rec, err := s.inner.Get(ctx, id)
	s.m.observe("load", time.Since(t), err)
	return rec, err
}

func (s *instrumented) Set(ctx context.Context, id string, rec store.Record) error {
	t := time.Now()
	err := s.inner.Set(ctx, id, rec)
	s.m.observe("save", time.Since(t), err)
	return err
}

func (s *instrumented) Delete(ctx context.Context, id string) error {
	t := time.Now()
	err := s.inner.Delete(ctx, id)
	s.m.observe("delete", time.Since(t), err)
	return err
}

func (s *instrumented) Touch(ctx context.Context, id string, exp time.Time) error {
	t := time.Now()
	err := s.inner.Touch(ctx, id, exp)
	s.m.observe("touch", time.Since(t), err)
	return err
}

func (s *instrumented) Update(ctx context.Context, id string, fn store.UpdateFunc) error {
	u, ok := s.inner.(store.Updater)
	if !ok {
		return errors.New("store has no atomic update")
	}
	t := time.Now()
	err := u.Update(ctx, id, fn)
	s.m.observe("save", time.Since(t), err)
	return err
}

// UpdateFrom passes the Manager's one-round-trip commit through to a store
// that has it (Redis, PostgreSQL), and falls back to Update, which an OptimisticUpdater
// is allowed to be, for the others.
func (s *instrumented) UpdateFrom(ctx context.Context, id string, seen store.Record, fn store.UpdateFunc) error {
	o, ok := s.inner.(store.OptimisticUpdater)
	if !ok {
		return s.Update(ctx, id, fn)
	}
	t := time.Now()
	err := o.UpdateFrom(ctx, id, seen, fn)
	s.m.observe("save", time.Since(t), err)
	return err
}

func (s *instrumented) List(ctx context.Context, fn func(string, store.Record) bool) error {
	l, ok := s.inner.(store.Lister)
	if !ok {
		return errors.New("this store cannot list its sessions")
	}
	return l.List(ctx, fn)
}

func parseJSON(s string) (any, bool) {
	var v any
	if json.Unmarshal([]byte(s), &v) != nil {
		return nil, false
	}
	return v, true
}
