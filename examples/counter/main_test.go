package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/memstore"
	"github.com/galleta-go/galleta/store"
)

const testSecret = "a-test-secret-of-at-least-32-bytes!!"

// TestCounter serves the example on a fresh port, checks that the counter
// rises for a client with a cookie jar, then cancels run's context while a
// request is in flight: run must stop accepting, let that request finish
// and save its session, and return nil.
func TestCounter(t *testing.T) {
	ms := memstore.New(memstore.Options{SweepInterval: -1})
	t.Cleanup(func() { ms.Close() })
	st := &gatedStore{Store: ms}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nl := &notifyListener{Listener: ln, closed: make(chan struct{})}
	url := "http://" + ln.Addr().String() + "/"

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, nl, galleta.Options{
			Secrets: []string{testSecret},
			Store:   st,
			Logger:  slog.New(slog.DiscardHandler),
		})
	}()

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	visit := func() string {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Error(err)
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET / = %d %s", resp.StatusCode, b)
		}
		return string(b)
	}
	// The listener is open before run starts, so no retry is needed.
	for i := 1; i <= 2; i++ {
		if body := visit(); !strings.Contains(body, fmt.Sprintf("visited this page %d time(s)", i)) {
			t.Fatalf("visit %d: %s", i, body)
		}
	}

	// Third visit: hold its save in the store, so the request is in flight
	// when the shutdown starts.
	entered, release := st.gate()
	third := make(chan string, 1)
	go func() { third <- visit() }()
	wait(t, entered, "the third request to reach the store")

	cancel()
	wait(t, nl.closed, "run to stop accepting (close its listener) after its context ended")
	if conn, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second); err == nil {
		conn.Close()
		t.Error("a new connection was accepted after the shutdown began")
	}
	select {
	case err := <-done:
		t.Fatalf("run returned (%v) while a request was in flight", err)
	default:
	}

	close(release)
	select {
	case body := <-third:
		if !strings.Contains(body, "visited this page 3 time(s)") {
			t.Errorf("the request in flight during the shutdown got: %s", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request in flight did not finish")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run = %v after its context ended, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after the shutdown")
	}

	// The in-flight request's increment was saved.
	var saved []byte
	ms.List(t.Context(), func(_ string, rec store.Record) bool { saved = rec.Data; return false })
	if !bytes.Contains(saved, []byte(`"visits":3`)) {
		t.Errorf("stored session after the shutdown: %s, want visits 3", saved)
	}
}

// wait fails the test if ch is not closed within 10 seconds (a guard: the
// test never waits that long unless the example is broken).
func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// gatedStore is a memory store whose writes, once gate is called, signal
// that they started and then wait to be released.
type gatedStore struct {
	*memstore.Store
	mu      sync.Mutex
	entered chan struct{}
	release chan struct{}
}

func (g *gatedStore) gate() (entered <-chan struct{}, release chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.entered, g.release = make(chan struct{}), make(chan struct{})
	return g.entered, g.release
}

func (g *gatedStore) hold() {
	g.mu.Lock()
	entered, release := g.entered, g.release
	g.entered = nil
	g.mu.Unlock()
	if entered != nil {
		close(entered)
		<-release
	}
}

func (g *gatedStore) Set(ctx context.Context, id string, rec store.Record) error {
	g.hold()
	return g.Store.Set(ctx, id, rec)
}

func (g *gatedStore) Update(ctx context.Context, id string, fn store.UpdateFunc) error {
	g.hold()
	return g.Store.Update(ctx, id, fn)
}

// notifyListener closes closed once the server has closed it, which
// http.Server.Shutdown does first.
type notifyListener struct {
	net.Listener
	once   sync.Once
	closed chan struct{}
}

func (l *notifyListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { close(l.closed) })
	return err
}
