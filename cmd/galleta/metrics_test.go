package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/galleta-go/galleta/memstore"
)

// countingStore counts its Count calls; gate, when set, holds each call
// until the test sends on it.
type countingStore struct {
	*memstore.Store
	calls atomic.Int64
	n     atomic.Int64
	gate  chan struct{}
}

func (c *countingStore) Count(ctx context.Context) (int, error) {
	c.calls.Add(1)
	if c.gate != nil {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return int(c.n.Load()), nil
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	r, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

var (
	liveRE    = regexp.MustCompile(`(?m)^galleta_sessions_live (\d+)$`)
	liveAgeRE = regexp.MustCompile(`(?m)^galleta_sessions_live_age_seconds ([0-9.]+)$`)
)

// live reads the cached count and its age from a scrape.
func live(t *testing.T, body string) (n, age string) {
	t.Helper()
	m, a := liveRE.FindStringSubmatch(body), liveAgeRE.FindStringSubmatch(body)
	if m == nil || a == nil {
		t.Fatalf("no live-session gauges in:\n%s", body)
	}
	return m[1], a[1]
}

// Scrapes read a cached count: the store is walked at most once per 30 s,
// by one walk at a time, whatever the number of scrapers.
func TestMetricsCountIsCached(t *testing.T) {
	st := &countingStore{Store: newMemStore()}
	st.n.Store(7)
	clock := newFakeClock()
	srv, a := testAppOn(t, st, clock.Now, "", discardLog())
	a.waitLiveCount()
	for i := range 100 {
		n, age := live(t, scrape(t, srv.URL))
		if n != "7" || age != "0" {
			t.Fatalf("scrape %d: live %s, age %s; want 7, 0", i, n, age)
		}
	}
	if c := st.calls.Load(); c != 1 {
		t.Fatalf("100 scrapes made %d Count calls, want 1", c)
	}
	clock.Advance(10 * time.Second)
	if n, age := live(t, scrape(t, srv.URL)); n != "7" || age != "10" {
		t.Fatalf("10 s later: live %s, age %s; want 7, 10", n, age)
	}
	// Past 30 s a scrape still answers at once, with the old value, and
	// starts one walk in the background.
	st.n.Store(9)
	clock.Advance(21 * time.Second)
	if n, age := live(t, scrape(t, srv.URL)); n != "7" || age != "31" {
		t.Fatalf("31 s later: live %s, age %s; want 7, 31", n, age)
	}
	a.waitLiveCount()
	if n, age := live(t, scrape(t, srv.URL)); n != "9" || age != "0" {
		t.Fatalf("after the refresh: live %s, age %s; want 9, 0", n, age)
	}
	if c := st.calls.Load(); c != 2 {
		t.Fatalf("%d Count calls, want 2", c)
	}
}

// While a slow walk runs, concurrent scrapes neither wait for it nor start
// another.
func TestMetricsCountOneWalkAtATime(t *testing.T) {
	st := &countingStore{Store: newMemStore(), gate: make(chan struct{})}
	clock := newFakeClock()
	srv, a := testAppOn(t, st, clock.Now, "", discardLog())
	st.gate <- struct{}{} // the walk at start
	a.waitLiveCount()
	clock.Advance(time.Minute)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 5 {
				scrape(t, srv.URL)
			}
		})
	}
	wg.Wait() // all 80 answered while the walk they asked for is held at the gate
	if c := st.calls.Load(); c > 2 {
		t.Fatalf("80 concurrent scrapes: %d Count calls, want 2", c)
	}
	st.gate <- struct{}{} // returns once the second walk is in Count
	a.waitLiveCount()
	if c := st.calls.Load(); c != 2 {
		t.Fatalf("80 concurrent scrapes: %d Count calls, want 2", c)
	}
}
