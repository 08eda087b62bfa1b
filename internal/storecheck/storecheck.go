// Package storecheck holds what the tests of the stores on a server
// (redisstore, pgstore) share beyond the conformance suite in
// store/storetest:
//
//   - RunFaults, the scenario a store must pass behind internal/faultproxy
//     (FaultApp, Settle, Stable), and GetsFailFast for a backend
//     blackholed from the start;
//   - CallsUnavailable (with DeadAddr) for a backend that is not there;
//   - BusySession, overlapping updates of one session batched;
//   - URLsRefused, bad URLs refused without showing their password;
//   - BenchStore and BenchManager, the benchmarks of a store's calls and
//     of a request through the Manager;
//   - Quiet, LogBuf, SessionID and Secret, the small things they use.
//
// What differs between the stores (how to build one behind a proxy, how
// to count its sessions and its connections, what a round trip is) is a
// parameter; each store's own checks stay in its package.
package storecheck

import (
	"bytes"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Quiet is a logger that discards, for stores and Managers whose logs a
// test does not read.
var Quiet = slog.New(slog.DiscardHandler)

// Secret is the cookie secret of the Managers the shared checks build.
const Secret = "0123456789abcdef0123456789abcdef"

// LogBuf is a concurrency-safe log sink whose text a test reads. The zero
// value is ready to use.
type LogBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is all that was logged so far.
func (l *LogBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Logger is a text logger writing to l.
func (l *LogBuf) Logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// SessionID is the session id in a signed session cookie pair
// ("name=s%3A<id>.<signature>"); anything else fails the test.
func SessionID(t testing.TB, pair string) string {
	t.Helper()
	_, v, _ := strings.Cut(pair, "=")
	v, err := url.QueryUnescape(v)
	if err != nil || !strings.HasPrefix(v, "s:") || !strings.Contains(v, ".") {
		t.Fatalf("cookie %q is not a signed session cookie", pair)
	}
	return v[2:strings.LastIndexByte(v, '.')]
}

// URLsRefused checks that open fails on each of urls and that no error
// shows the password ("s3cret") a URL may carry.
func URLsRefused(t *testing.T, urls []string, open func(url string) (io.Closer, error)) {
	t.Helper()
	for _, bad := range urls {
		c, err := open(bad)
		if err == nil {
			c.Close()
			t.Errorf("%s: no error", bad)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows the password: %v", bad, err)
		}
	}
}

// WaitQueued waits (at most 10 s) until queued reports want calls waiting
// in a store's batch queue, and fails the test otherwise.
func WaitQueued(t testing.TB, queued func() int, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for queued() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued after 10 s, want %d", queued(), want)
		}
		time.Sleep(time.Millisecond) // polling a condition, not an assertion
	}
}
