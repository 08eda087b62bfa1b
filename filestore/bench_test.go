//go:build linux

package filestore

// Benchmarks of the file store, each beside its bare floor: the same system
// calls done by hand on the same file system (b.TempDir) in the same run,
// so the ratio says what the store adds on top of the disk.
//
//	go test -run='^$' -bench=. -benchmem -count=1 ./filestore/
//
// The scale benchmarks (Get and Set at 1,000 vs N stored sessions, and a
// reap of N expired sessions) only run with a flag:
//
//	go test -run='^$' -bench=Scale -benchmem -count=1 ./filestore/ -filestore.scale=1000000 -benchtime=2000x

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/galleta-go/galleta/store"
)

var scale = flag.Int("filestore.scale", 0, "when > 0, BenchmarkScale* measure Get and Set at 1,000 vs this many stored sessions and reap this many expired sessions (needs 10 GB free)")

// benchData is a small express-session record (about 130 bytes; about 160
// in the file with the leading __lastAccess) whose counter n is given.
func benchData(n int) []byte {
	b := make([]byte, 0, 160)
	b = append(b, `{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"__galleta":{"created":1795648776194},"n":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, `,"user":"alice"}`...)
}

// benchCounter reads n back from a benchData record.
func benchCounter(data []byte) (int, bool) {
	i := bytes.Index(data, []byte(`"n":`))
	if i < 0 {
		return 0, false
	}
	rest := data[i+4:]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	n, err := strconv.Atoi(string(rest[:j]))
	return n, err == nil
}

// benchIncr is the UpdateFunc of the update benchmarks: n+1, an hour more.
func benchIncr(cur store.Record, found bool) (store.Record, bool, error) {
	n := 0
	if found {
		n, _ = benchCounter(cur.Data)
	}
	return store.Record{Data: benchData(n + 1), Expires: time.Now().Add(time.Hour)}, true, nil
}

// benchID is a valid 32-byte session id for i.
func benchID(i int) string { return fmt.Sprintf("bench-%026d", i) }

var benchCtx = context.Background()

func newBenchStore(b *testing.B, dir string, d Durability) *Store {
	b.Helper()
	s, err := New(Options{Dir: dir, Durability: d, ReapInterval: -1, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func durName(d Durability) string {
	if d == SyncAll {
		return "sync"
	}
	return "nosync"
}

// BenchmarkGet: a live session read through the store (open, fstat, read,
// close, validate).
func BenchmarkGet(b *testing.B) {
	s := newBenchStore(b, b.TempDir(), SyncNone)
	id := benchID(1)
	if err := s.Set(benchCtx, id, store.Record{Data: benchData(1), Expires: time.Now().Add(24 * time.Hour)}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := s.Get(benchCtx, id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFloorRead: os.ReadFile of a file with the same content as
// BenchmarkGet's.
func BenchmarkFloorRead(b *testing.B) {
	s := newBenchStore(b, b.TempDir(), SyncNone)
	id := benchID(1)
	if err := s.Set(benchCtx, id, store.Record{Data: benchData(1), Expires: time.Now().Add(24 * time.Hour)}); err != nil {
		b.Fatal(err)
	}
	content, err := os.ReadFile(s.path(id))
	if err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(b.TempDir(), id+ext)
	if err := os.WriteFile(p, content, 0o600); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := os.ReadFile(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSet: replace one session again and again (serial), with and
// without the fsyncs.
func BenchmarkSet(b *testing.B) {
	for _, d := range []Durability{SyncAll, SyncNone} {
		b.Run(durName(d), func(b *testing.B) {
			s := newBenchStore(b, b.TempDir(), d)
			id := benchID(1)
			data := benchData(1)
			exp := time.Now().Add(time.Hour)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := s.Set(benchCtx, id, store.Record{Data: data, Expires: exp.Add(time.Duration(i) * time.Millisecond)}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFloorWrite: the bare atomic replace of a file of the same size:
// CreateTemp in the directory, write, fsync, close, rename, fsync of the
// directory (sync); without the two fsyncs (nosync). The store also sets
// the mtime (one utimensat) and takes a flock; the floor does neither.
func BenchmarkFloorWrite(b *testing.B) {
	content, err := encodeFile(benchData(1), time.Now().Add(time.Hour), defaultTTL)
	if err != nil {
		b.Fatal(err)
	}
	for _, sync := range []bool{true, false} {
		name := "nosync"
		if sync {
			name = "sync"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			df, err := os.Open(dir)
			if err != nil {
				b.Fatal(err)
			}
			defer df.Close()
			dst := filepath.Join(dir, benchID(1)+ext)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				f, err := os.CreateTemp(dir, tmpPrefix)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.Write(content); err != nil {
					b.Fatal(err)
				}
				if sync {
					if err := f.Sync(); err != nil {
						b.Fatal(err)
					}
				}
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
				if err := os.Rename(f.Name(), dst); err != nil {
					b.Fatal(err)
				}
				if sync {
					if err := df.Sync(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkTouch: move a live session's expiry (patch 13 bytes in place and
// set the mtime, no fsync). Compare with BenchmarkSet/sync, which a store
// without in-place touch would pay for every touch.
func BenchmarkTouch(b *testing.B) {
	s := newBenchStore(b, b.TempDir(), SyncAll)
	id := benchID(1)
	exp := time.Now().Add(time.Hour)
	if err := s.Set(benchCtx, id, store.Record{Data: benchData(1), Expires: exp}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := s.Touch(benchCtx, id, exp.Add(time.Duration(i+1)*time.Millisecond)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if got := s.touches.Load(); got != int64(b.N) {
		b.Fatalf("%d touches for %d ops", got, b.N)
	}
}

// BenchmarkUpdate: serial read-modify-write of one session.
func BenchmarkUpdate(b *testing.B) {
	for _, d := range []Durability{SyncAll, SyncNone} {
		b.Run(durName(d), func(b *testing.B) {
			s := newBenchStore(b, b.TempDir(), d)
			id := benchID(1)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := s.Update(benchCtx, id, benchIncr); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			benchCheckCounter(b, s, id, b.N)
		})
	}
}

func benchCheckCounter(b *testing.B, s *Store, id string, want int) {
	b.Helper()
	rec, err := s.Get(benchCtx, id)
	if err != nil {
		b.Fatal(err)
	}
	if n, _ := benchCounter(rec.Data); n != want {
		b.Fatalf("counter %d after %d updates: lost updates", n, want)
	}
}

// benchParallelism makes b.RunParallel start about 32 goroutines.
func benchParallelism(b *testing.B) {
	p := (32 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)
	b.SetParallelism(p)
}

// BenchmarkBusySession: about 32 goroutines updating ONE session. writes/op
// below 1 is group commit: overlapping updates share one file write (and
// one pair of fsyncs).
func BenchmarkBusySession(b *testing.B) {
	for _, d := range []Durability{SyncAll, SyncNone} {
		b.Run(durName(d), func(b *testing.B) {
			s := newBenchStore(b, b.TempDir(), d)
			id := benchID(1)
			before := s.writes.Load()
			benchParallelism(b)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.Update(benchCtx, id, benchIncr); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			writes := s.writes.Load() - before
			b.ReportMetric(float64(writes)/float64(b.N), "writes/op")
			benchCheckCounter(b, s, id, b.N)
		})
	}
}

// BenchmarkManySessions: about 32 goroutines updating 1,000 sessions, the
// next id for each update taken round-robin.
func BenchmarkManySessions(b *testing.B) {
	const ids = 1000
	for _, d := range []Durability{SyncAll, SyncNone} {
		b.Run(durName(d), func(b *testing.B) {
			dir := b.TempDir()
			s := newBenchStore(b, dir, d)
			benchCreate(b, dir, ids, time.Now().Add(24*time.Hour))
			before := s.writes.Load()
			var next atomic.Int64
			benchParallelism(b)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := benchID(int(next.Add(1) % ids))
					if err := s.Update(benchCtx, id, benchIncr); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(s.writes.Load()-before)/float64(b.N), "writes/op")
		})
	}
}

// BenchmarkFloorManyWrites: ManySessions' floor, about 32 goroutines doing
// BenchmarkFloorWrite's atomic replace round-robin over 1,000 file names
// in one directory (each its own directory fsync: nothing shared).
func BenchmarkFloorManyWrites(b *testing.B) {
	const ids = 1000
	content, err := encodeFile(benchData(1), time.Now().Add(time.Hour), defaultTTL)
	if err != nil {
		b.Fatal(err)
	}
	for _, sync := range []bool{true, false} {
		name := "nosync"
		if sync {
			name = "sync"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			df, err := os.Open(dir)
			if err != nil {
				b.Fatal(err)
			}
			defer df.Close()
			var next atomic.Int64
			benchParallelism(b)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					dst := filepath.Join(dir, benchID(int(next.Add(1)%ids))+ext)
					f, err := os.CreateTemp(dir, tmpPrefix)
					if err == nil {
						_, err = f.Write(content)
					}
					if err == nil && sync {
						err = f.Sync()
					}
					if err == nil {
						err = f.Close()
					}
					if err == nil {
						err = os.Rename(f.Name(), dst)
					}
					if err == nil && sync {
						err = df.Sync()
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// benchCreate writes n sessions benchID(0..n-1) straight into dir in the
// store's layout (the content encodeFile gives, mtime = expiry), without
// fsync, from several goroutines, then syncs the file system once: much
// faster than n Sets.
func benchCreate(b *testing.B, dir string, n int, expires time.Time) time.Duration {
	b.Helper()
	content, err := encodeFile(benchData(1), expires, defaultTTL)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	workers := 4 * runtime.GOMAXPROCS(0)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				p := filepath.Join(dir, benchID(i)+ext)
				err := os.WriteFile(p, content, 0o600)
				if err == nil {
					at, mt := stampTimes(expires) // as the store writes them
					err = os.Chtimes(p, at, mt)
				}
				if err != nil {
					errOnce.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		b.Fatal(first)
	}
	// Flush the new files now, so their writeback does not run in the
	// background of the measurement that follows.
	syscall.Sync()
	return time.Since(start)
}

// BenchmarkReap: each op reaps a directory of 10,000 expired sessions
// (created with the timer stopped).
func BenchmarkReap(b *testing.B) {
	const n = 10000
	var created time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dir, err := os.MkdirTemp(b.TempDir(), "reap")
		if err != nil {
			b.Fatal(err)
		}
		s, err := New(Options{Dir: dir, Durability: SyncNone, ReapInterval: -1, Logger: quiet()})
		if err != nil {
			b.Fatal(err)
		}
		created += benchCreate(b, dir, n, time.Now().Add(-time.Hour))
		b.StartTimer()
		got, err := s.Reap(benchCtx)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if got != n {
			b.Fatalf("reaped %d of %d", got, n)
		}
		s.Close()
		os.RemoveAll(dir)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "sessions/s")
	b.Logf("created %d×%d expired sessions in %v (%.0f/s)", b.N, n, created, float64(n*b.N)/created.Seconds())
}

// benchScaleSetup skips unless -filestore.scale is set and 10 GB are free.
func benchScaleSetup(b *testing.B) int {
	b.Helper()
	if *scale <= 0 {
		b.Skip("set -filestore.scale=N (e.g. 1000000) to run")
	}
	var st syscall.Statfs_t
	dir := b.TempDir()
	if err := syscall.Statfs(dir, &st); err != nil {
		b.Fatal(err)
	}
	if free := st.Bavail * uint64(st.Bsize); free < 10<<30 {
		b.Skipf("%.1f GB free in %s; the scale benchmarks need 10 GB", float64(free)/(1<<30), dir)
	}
	return *scale
}

func benchScaleSizes() []int {
	if *scale == 1000 {
		return []int{1000}
	}
	return []int{1000, *scale}
}

// BenchmarkScaleGet: Get of random sessions among n stored ones. The
// sessions are written straight to the directory (see benchCreate).
func BenchmarkScaleGet(b *testing.B) {
	benchScaleSetup(b)
	for _, n := range benchScaleSizes() {
		dir := b.TempDir()
		s := newBenchStore(b, dir, SyncNone)
		took := benchCreate(b, dir, n, time.Now().Add(24*time.Hour))
		b.Logf("n=%d: created %d sessions in %v (%.0f/s)", n, n, took, float64(n)/took.Seconds())
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			ids := make([]string, b.N)
			for i := range ids {
				ids[i] = benchID(rng.IntN(n))
			}
			// Read each picked session once first, so both sizes measure
			// the store on cached files: at n=1000 the picks repeat and
			// are cached after the first pass; at n=1M each pick is a
			// different file that the kernel may have dropped from its
			// caches, which measures the disk, not the store. The cold
			// figure is reported separately as cold-ns/get.
			coldStart := time.Now()
			for _, id := range ids {
				if _, err := s.Get(benchCtx, id); err != nil {
					b.Fatal(err)
				}
			}
			cold := time.Since(coldStart)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := s.Get(benchCtx, ids[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(cold.Nanoseconds())/float64(b.N), "cold-ns/get")
			// The bare floor on the same files (what the kernel's own
			// growth with the directory is), in rounds alternating with
			// the store so neither gains from going second; the best
			// round of each is reported.
			bestStore, bestFloor := time.Duration(1<<62), time.Duration(1<<62)
			for range 3 {
				t0 := time.Now()
				for _, id := range ids {
					if _, err := os.ReadFile(filepath.Join(dir, id+ext)); err != nil {
						b.Fatal(err)
					}
				}
				bestFloor = min(bestFloor, time.Since(t0))
				t0 = time.Now()
				for _, id := range ids {
					if _, err := s.Get(benchCtx, id); err != nil {
						b.Fatal(err)
					}
				}
				bestStore = min(bestStore, time.Since(t0))
			}
			b.ReportMetric(float64(bestStore.Nanoseconds())/float64(b.N), "best-ns/get")
			b.ReportMetric(float64(bestFloor.Nanoseconds())/float64(b.N), "floor-ns/read")
		})
		s.Close()
		os.RemoveAll(dir)
	}
}

// BenchmarkScaleSet: Set (SyncNone, to keep the run short; the fsyncs cost
// the same whatever the directory size) of random sessions among n stored
// ones, replacing them.
func BenchmarkScaleSet(b *testing.B) {
	benchScaleSetup(b)
	for _, n := range benchScaleSizes() {
		dir := b.TempDir()
		s := newBenchStore(b, dir, SyncNone)
		exp := time.Now().Add(24 * time.Hour)
		took := benchCreate(b, dir, n, exp)
		b.Logf("n=%d: created %d sessions in %v (%.0f/s)", n, n, took, float64(n)/took.Seconds())
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(3, 4))
			ids := make([]string, b.N)
			for i := range ids {
				ids[i] = benchID(rng.IntN(n))
			}
			data := benchData(2)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := s.Set(benchCtx, ids[i], store.Record{Data: data, Expires: exp}); err != nil {
					b.Fatal(err)
				}
			}
		})
		s.Close()
		os.RemoveAll(dir)
	}
}

// BenchmarkScaleReap: one Reap of *scale expired sessions. The reap runs
// once whatever -benchtime says; its time is reported as s/reap (and as
// ns/op of that single reap).
func BenchmarkScaleReap(b *testing.B) {
	n := benchScaleSetup(b)
	dir := b.TempDir()
	s := newBenchStore(b, dir, SyncNone)
	took := benchCreate(b, dir, n, time.Now().Add(-time.Hour))
	b.Logf("created %d expired sessions in %v (%.0f/s)", n, took, float64(n)/took.Seconds())
	var (
		once   sync.Once
		dur    time.Duration
		reaped int
	)
	b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
		once.Do(func() {
			start := time.Now()
			got, err := s.Reap(benchCtx)
			dur = time.Since(start)
			if err != nil {
				b.Fatal(err)
			}
			reaped = got
		})
		if reaped != n {
			b.Fatalf("reaped %d of %d", reaped, n)
		}
		b.ReportMetric(float64(dur.Nanoseconds()), "ns/op")
		b.ReportMetric(dur.Seconds(), "s/reap")
		b.ReportMetric(float64(n)/dur.Seconds(), "sessions/s")
	})
}
