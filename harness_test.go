package galleta_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/memstore"
	"github.com/galleta-go/galleta/store"
	"github.com/galleta-go/galleta/store/storetest"
)

const testSecret = "0123456789abcdef0123456789abcdef-test"

// harnessStart is where a harness's clock starts.
var harnessStart = time.Date(2026, 11, 25, 23, 19, 36, 194e6, time.UTC)

// harness is a Manager on a memory store with an injected clock.
type harness struct {
	t     *testing.T
	clock *storetest.Clock
	st    *memstore.Store
	m     *galleta.Manager
	h     http.Handler
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newHarness(t *testing.T, o galleta.Options, handler http.HandlerFunc) *harness {
	t.Helper()
	h := &harness{t: t, clock: storetest.NewClock(harnessStart), logs: &syncBuffer{}}
	logger := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if o.Store == nil {
		h.st = memstore.New(memstore.Options{Now: h.clock.Now, SweepInterval: -1})
		t.Cleanup(func() { h.st.Close() })
		o.Store = h.st
	}
	if o.Secrets == nil {
		o.Secrets = []string{testSecret}
	}
	if o.Now == nil {
		o.Now = h.clock.Now
	}
	o.Logger = logger
	m, err := galleta.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	h.m = m
	h.h = m.Middleware(handler)
	return h
}

// do runs one request carrying cookieHeader ("" for none).
func (h *harness) do(method, target, cookieHeader string) *httptest.ResponseRecorder {
	h.t.Helper()
	r := httptest.NewRequest(method, target, nil)
	if cookieHeader != "" {
		r.Header.Set("Cookie", cookieHeader)
	}
	w := httptest.NewRecorder()
	h.h.ServeHTTP(w, r)
	return w
}

// setCookies returns the response's Set-Cookie lines for name.
func setCookies(w *httptest.ResponseRecorder, name string) []string {
	var out []string
	for _, line := range w.Result().Header.Values("Set-Cookie") {
		if strings.HasPrefix(line, name+"=") {
			out = append(out, line)
		}
	}
	return out
}

// pair returns "name=value" of the one Set-Cookie for name, failing the test
// when there is not exactly one.
func pair(t *testing.T, w *httptest.ResponseRecorder, name string) string {
	t.Helper()
	lines := setCookies(w, name)
	if len(lines) != 1 {
		t.Fatalf("want one Set-Cookie for %q, got %q", name, lines)
	}
	p, _, _ := strings.Cut(lines[0], ";")
	return p
}

// storedIDs lists the ids in the memory store.
func (h *harness) storedIDs() []string {
	var ids []string
	if err := h.st.List(context.Background(), func(id string, _ store.Record) bool {
		ids = append(ids, id)
		return true
	}); err != nil {
		h.t.Fatal(err)
	}
	return ids
}

func (h *harness) record(id string) (store.Record, error) {
	return h.st.Get(context.Background(), id)
}
