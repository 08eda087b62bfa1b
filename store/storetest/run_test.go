package storetest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/galleta-go/galleta/memstore"
	"github.com/galleta-go/galleta/store"
	"github.com/galleta-go/galleta/store/storetest"
)

// TestRunUsesTestContexts runs the suite on a store that records the
// context of every call and checks that each one was a test's own context
// (t.Context, cancelled when its test ends), not context.Background: a
// store that keeps a request's context beyond the call would otherwise
// never be exercised by a cancelled one.
func TestRunUsesTestContexts(t *testing.T) {
	var (
		mu   sync.Mutex
		ctxs []context.Context
	)
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		return &recording{Store: memstore.New(memstore.Options{Now: now, SweepInterval: -1}), mu: &mu, ctxs: &ctxs}
	})
	if len(ctxs) == 0 {
		t.Fatal("the suite made no store calls")
	}
	for i, ctx := range ctxs {
		if ctx.Err() == nil {
			t.Fatalf("store call %d of %d had a context still live after the suite: not a test's t.Context()", i+1, len(ctxs))
		}
	}
}

// recording is a memstore that records the contexts it is called with.
type recording struct {
	*memstore.Store
	mu   *sync.Mutex
	ctxs *[]context.Context
}

func (r *recording) see(ctx context.Context) {
	r.mu.Lock()
	*r.ctxs = append(*r.ctxs, ctx)
	r.mu.Unlock()
}

func (r *recording) Get(ctx context.Context, id string) (store.Record, error) {
	r.see(ctx)
	return r.Store.Get(ctx, id)
}

func (r *recording) Set(ctx context.Context, id string, rec store.Record) error {
	r.see(ctx)
	return r.Store.Set(ctx, id, rec)
}

func (r *recording) Delete(ctx context.Context, id string) error {
	r.see(ctx)
	return r.Store.Delete(ctx, id)
}

func (r *recording) Touch(ctx context.Context, id string, exp time.Time) error {
	r.see(ctx)
	return r.Store.Touch(ctx, id, exp)
}

func (r *recording) Update(ctx context.Context, id string, fn store.UpdateFunc) error {
	r.see(ctx)
	return r.Store.Update(ctx, id, fn)
}

func (r *recording) List(ctx context.Context, fn func(string, store.Record) bool) error {
	r.see(ctx)
	return r.Store.List(ctx, fn)
}

func (r *recording) Count(ctx context.Context) (int, error) {
	r.see(ctx)
	return r.Store.Count(ctx)
}

func (r *recording) Reap(ctx context.Context) (int, error) {
	r.see(ctx)
	return r.Store.Reap(ctx)
}
