package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/galleta-go/galleta/store"
)

// pingStore reads like an empty store (every id is missing) and answers
// Ping with err, counting the pings.
type pingStore struct {
	mu     sync.Mutex
	err    error
	pings  atomic.Int64
	onPing func() // runs inside each Ping (a slow store moves the clock)
}

func (p *pingStore) Get(context.Context, string) (store.Record, error) {
	return store.Record{}, store.ErrNotFound
}
func (p *pingStore) Set(context.Context, string, store.Record) error { return nil }
func (p *pingStore) Delete(context.Context, string) error            { return nil }
func (p *pingStore) Touch(context.Context, string, time.Time) error  { return store.ErrNotFound }
func (p *pingStore) setErr(err error)                                { p.mu.Lock(); p.err = err; p.mu.Unlock() }
func (p *pingStore) Ping(context.Context) error {
	p.pings.Add(1)
	if p.onPing != nil {
		p.onPing()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// getOnly hides every method of a store but the four of store.Store.
type getOnly struct{ store.Store }

func healthz(t *testing.T, url string) (int, string) {
	t.Helper()
	r, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("healthz Cache-Control %q", cc)
	}
	return r.StatusCode, readAll(t, r)
}

// /healthz asks a store that can ping itself whether a write would
// succeed: reads of a missing id pass while every write fails. The detail
// goes to the log, the body is generic.
func TestHealthzPings(t *testing.T) {
	st := &pingStore{}
	clock := newFakeClock()
	var logs logBuffer
	srv, _ := testAppOn(t, st, clock.Now, "", slogText(&logs))
	if code, body := healthz(t, srv.URL); code != 200 || body != "ok\n" {
		t.Fatalf("healthy: %d %q", code, body)
	}
	st.setErr(errors.New("filestore: cannot write in session directory /srv/secret-path: read-only file system"))
	clock.Advance(2 * time.Second)
	code, body := healthz(t, srv.URL)
	if code != 503 || strings.Contains(body, "secret-path") || strings.Contains(body, "read-only") {
		t.Fatalf("store that cannot write: %d %q, want 503 and a generic body", code, body)
	}
	if !strings.Contains(logs.String(), "read-only file system") {
		t.Fatalf("the ping's error is not in the log:\n%s", logs.String())
	}
	// One ping serves the checks of the next second: an unauthenticated
	// flood of /healthz does not become a flood of probe writes.
	before := st.pings.Load()
	for range 20 {
		if code, _ := healthz(t, srv.URL); code != 503 {
			t.Fatalf("cached failure: %d", code)
		}
	}
	if n := st.pings.Load() - before; n != 0 {
		t.Fatalf("20 checks within a second pinged %d more times, want 0", n)
	}
	st.setErr(nil)
	clock.Advance(time.Second)
	if code, _ := healthz(t, srv.URL); code != 200 || st.pings.Load() != before+1 {
		t.Fatalf("a second later: %d after %d pings, want 200 after %d", code, st.pings.Load(), before+1)
	}
}

// A store without Ping is checked by reading a missing id, as before.
func TestHealthzWithoutPing(t *testing.T) {
	bs := &brokenStore{Store: newMemStore()}
	clock := newFakeClock()
	srv, _ := testAppOn(t, getOnly{bs}, clock.Now, "", discardLog())
	if code, _ := healthz(t, srv.URL); code != 200 {
		t.Fatalf("healthy: %d", code)
	}
	bs.Store.Close() // Get now fails with memstore.ErrClosed
	clock.Advance(healthTTL)
	if code, body := healthz(t, srv.URL); code != 503 || strings.Contains(body, "closed") {
		t.Fatalf("closed store: %d %q", code, body)
	}
}

// A slow check (a stalled store holds it for its whole 2-second bound)
// answers for a second from when it ended, not from when it started: the
// requests that queued behind it take its result instead of each running
// another slow check, and a second later the next request checks again.
func TestHealthzSlowCheckAnswersTheQueue(t *testing.T) {
	clock := newFakeClock()
	st := &pingStore{err: errors.New("redisstore: ping: i/o timeout"), onPing: func() { clock.Advance(healthTimeout) }}
	srv, _ := testAppOn(t, st, clock.Now, "", discardLog())
	if code, _ := healthz(t, srv.URL); code != 503 {
		t.Fatalf("stalled store: %d, want 503", code)
	}
	for range 5 {
		if code, _ := healthz(t, srv.URL); code != 503 {
			t.Fatalf("cached failure: %d", code)
		}
	}
	if n := st.pings.Load(); n != 1 {
		t.Fatalf("5 checks right after a 2-second check pinged again: %d pings, want 1", n)
	}
	st.setErr(nil)
	clock.Advance(healthTTL)
	if code, _ := healthz(t, srv.URL); code != 200 || st.pings.Load() != 2 {
		t.Fatalf("a second after the slow check ended: %d after %d pings, want 200 after 2", code, st.pings.Load())
	}
}
