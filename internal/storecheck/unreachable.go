package storecheck

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/galleta-go/galleta/store"
)

// DeadAddr is a loopback host:port where nothing listens: a port the
// kernel handed out and that was closed again.
func DeadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens here now
	return addr
}

// Unreachable is a store CallsUnavailable calls.
type Unreachable interface {
	store.Store
	store.Pinger
	store.Counter
}

// CallsUnavailable calls Get, Ping, Set and Count of session id on s,
// whose backend cannot be reached, each with a 500 ms deadline, and
// checks that each fails with store.ErrUnavailable within a second. also,
// when set, checks each such error further; what names the call.
func CallsUnavailable(t *testing.T, s Unreachable, id string, also func(what string, err error)) {
	t.Helper()
	call := func(what string, f func(context.Context) error) {
		t.Helper()
		cctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := f(cctx)
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s = %v, want ErrUnavailable", what, err)
		} else if also != nil {
			also(what, err)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("%s took %v with a 500 ms context", what, took)
		}
	}
	call("Get", func(ctx context.Context) error { _, err := s.Get(ctx, id); return err })
	call("Ping", s.Ping)
	call("Set", func(ctx context.Context) error {
		data := []byte(`{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"user":"ann"}`)
		return s.Set(ctx, id, store.Record{Data: data, Expires: time.Now().Add(time.Hour)})
	})
	call("Count", func(ctx context.Context) error { _, err := s.Count(ctx); return err })
}
