package main

// The bare floor of the file stores: what the disk allows for the system
// calls a new session costs (the same ones galleta's file store makes), done by hand with no HTTP and no session
// library, at the same concurrency, in the same directory kind, in the
// same round as the servers. A file-store figure is read against it.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// floorContent is about the size of a new session's file.
var floorContent = []byte(`{"__lastAccess":1764150000000,"cookie":{"originalMaxAge":86400000,"expires":"2026-11-27T10:00:00.000Z","httpOnly":true,"path":"/"},"user":"alice"}`)

// fileFloor runs workers goroutines for d, each looping over the system
// calls galleta's file store makes for a new session: open an unnamed
// file in the directory (O_TMPFILE), write floorContent, fsync it (sync),
// give it a new name (linkat through /proc/self/fd), close, fsync the
// directory (sync). It returns the completed loops per second.
func fileFloor(ctx context.Context, dir string, workers int, d time.Duration, sync_ bool) (float64, error) {
	df, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer df.Close()
	dirfd := int(df.Fd())
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
	for range workers {
		wg.Go(func() {
			var rnd [16]byte
			for time.Now().Before(deadline) && ctx.Err() == nil {
				rand.Read(rnd[:])
				name := hex.EncodeToString(rnd[:]) + ".json"
				fd, err := syscall.Openat(dirfd, ".", 0x400000|syscall.O_DIRECTORY|syscall.O_WRONLY|syscall.O_CLOEXEC, 0o600)
				if err != nil {
					fail(fmt.Errorf("openat O_TMPFILE: %w", err))
					return
				}
				_, err = syscall.Write(fd, floorContent)
				if err == nil && sync_ {
					err = syscall.Fsync(fd)
				}
				if err == nil {
					err = linkat(fmt.Sprintf("/proc/self/fd/%d", fd), dirfd, name)
				}
				syscall.Close(fd)
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
	runtime.KeepAlive(df)
	if firstErr != nil {
		return 0, fmt.Errorf("file floor in %s: %w", dir, firstErr)
	}
	return float64(n.Load()) / time.Since(start).Seconds(), nil
}

// linkat is linkat(AT_FDCWD, old, newdirfd, new, AT_SYMLINK_FOLLOW).
func linkat(old string, newdirfd int, new string) error {
	op, err := syscall.BytePtrFromString(old)
	if err != nil {
		return err
	}
	np, err := syscall.BytePtrFromString(new)
	if err != nil {
		return err
	}
	const atFdcwd, atSymlinkFollow = -100, 0x400
	at := atFdcwd
	_, _, errno := syscall.Syscall6(syscall.SYS_LINKAT, uintptr(at), uintptr(unsafe.Pointer(op)), uintptr(newdirfd), uintptr(unsafe.Pointer(np)), atSymlinkFollow, 0)
	if errno != 0 {
		return fmt.Errorf("linkat: %w", errno)
	}
	return nil
}
