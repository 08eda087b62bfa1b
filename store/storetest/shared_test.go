package storetest_test

import (
	"testing"
	"time"

	"github.com/galleta-go/galleta/memstore"
	"github.com/galleta-go/galleta/store"
	"github.com/galleta-go/galleta/store/storetest"
)

// RunShared on the simplest shared backend: each subtest's two "stores"
// are one memory store (Close is idempotent), which must pass.
func TestRunSharedOnOneMemoryStore(t *testing.T) {
	var (
		shared *memstore.Store
		calls  int
	)
	storetest.RunShared(t, func(t *testing.T, now func() time.Time) store.Store {
		if calls%2 == 0 {
			shared = memstore.New(memstore.Options{Now: now, SweepInterval: -1})
		}
		calls++
		return shared
	})
}
