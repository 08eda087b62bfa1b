package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	if c, ok := a.st.inner.(store.Counter); ok {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		n, err := c.Count(ctx)
		cancel()
		if err == nil {
			b.WriteString("# HELP galleta_sessions_live Live sessions in the store.\n# TYPE galleta_sessions_live gauge\n")
			fmt.Fprintf(&b, "galleta_sessions_live %d\n", n)
		}
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(b.String()))
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
