package main

// The bare floor of the file stores: what the disk allows for the system
// calls a new session costs, done by hand with no HTTP and no session
// library, at the same concurrency, in the same directory kind, in the
// same round as the servers. A file-store figure is read against it.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// floorContent is about the size of a new session's file.
var floorContent = []byte(`{"__lastAccess":1764150000000,"cookie":{"originalMaxAge":86400000,"expires":"2026-11-27T10:00:00.000Z","httpOnly":true,"path":"/"},"user":"alice"}`)

// fileFloor runs workers goroutines for d, each looping: create a
// temporary file (O_CREATE|O_EXCL), write floorContent, fsync it (sync),
// close, rename it to a new name, fsync the directory (sync). It returns
// the completed loops per second.
func fileFloor(ctx context.Context, dir string, workers int, d time.Duration, sync_ bool) (float64, error) {
	df, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer df.Close()
	var (
		n        atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	start := time.Now()
	deadline := start.Add(d)
	for w := range workers {
		wg.Go(func() {
			var rnd [16]byte
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				rand.Read(rnd[:])
				name := hex.EncodeToString(rnd[:])
				tmp := filepath.Join(dir, fmt.Sprintf(".tmp-%d-%d", w, i))
				f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
				if err != nil {
					fail(err)
					return
				}
				_, err = f.Write(floorContent)
				if err == nil && sync_ {
					err = f.Sync()
				}
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err == nil {
					err = os.Rename(tmp, filepath.Join(dir, name+".json"))
				}
				if err == nil && sync_ {
					err = df.Sync()
				}
				if err != nil {
					fail(err)
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, fmt.Errorf("file floor in %s: %w", dir, firstErr)
	}
	return float64(n.Load()) / time.Since(start).Seconds(), nil
}
