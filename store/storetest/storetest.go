// Package storetest is the conformance suite every galleta session store
// runs:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
//			return mystore.New(mystore.Options{Now: now})
//		})
//	}
//
// The suite checks the store.Store contract and, when the store implements
// them, store.Updater, store.Lister, store.Counter and store.Reaper.
//
// Time: each subtest starts a Clock at the real time.Now and passes its Now
// to the store. Records that must stay live expire hours ahead, so a store
// backed by a server that also expires keys by its own clock (Redis TTLs,
// PostgreSQL now()) passes too; expiry is tested by advancing the Clock, and
// such a store must compare Expires with its injected now when it reads.
//
// Precision: stores keep Expires to the millisecond, truncated. The suite
// compares times after truncating both sides to the millisecond.
//
// Ids: every subtest uses fresh random ids (43 characters of base64url), so
// stores that share one server keyspace across subtests do not collide.
// Counts are compared as deltas; Reap's result is checked exactly only when
// the store reports itself empty at the start of the subtest.
//
// Concurrency subtests start 64 goroutines; run the suite with -race.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/galleta-go/galleta/store"
)

// Clock is a manually advanced clock for expiry tests, so no test sleeps.
// It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// NewFunc builds a fresh, empty store whose notion of "now" is the given
// func. The suite closes the store via t.Cleanup when it implements
// io.Closer.
type NewFunc func(t *testing.T, now func() time.Time) store.Store

// Run runs the conformance suite against stores built by newStore. Each
// subtest builds its own store.
func Run(t *testing.T, newStore NewFunc) {
	t.Helper()
	h := &harness{newStore: newStore}
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *harness)
	}{
		{"GetMissing", testGetMissing},
		{"SetGet", testSetGet},
		{"SetReplaces", testSetReplaces},
		{"Delete", testDelete},
		{"Touch", testTouch},
		{"TouchMissing", testTouchMissing},
		{"Expiry", testExpiry},
		{"SetExpiredNotStored", testSetExpiredNotStored},
		{"InvalidID", testInvalidID},
		{"MaxLengthID", testMaxLengthID},
		{"LargeValue", testLargeValue},
		{"RepeatedGet", testRepeatedGet},
		{"Update", testUpdate},
		{"NoResurrection", testNoResurrection},
		{"ConcurrentOneID", testConcurrentOneID},
		{"ConcurrentUpdateNoLostUpdate", testConcurrentCounter},
		{"ConcurrentManyIDs", testConcurrentManyIDs},
		{"List", testList},
		{"Count", testCount},
		{"Reap", testReap},
		{"CanceledContext", testCanceledContext},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

type harness struct{ newStore NewFunc }

// open returns a new store and its clock, started at the real now.
func (h *harness) open(t *testing.T) (store.Store, *Clock) {
	t.Helper()
	clock := NewClock(time.Now())
	s := h.newStore(t, clock.Now)
	if s == nil {
		t.Fatal("NewFunc returned a nil store")
	}
	if c, ok := s.(io.Closer); ok {
		t.Cleanup(func() {
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	return s, clock
}

// newID returns a random 43-character base64url id.
func newID(t testing.TB) string {
	t.Helper()
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// sessionData returns a small express-session shaped JSON object.
func sessionData(tag string) []byte {
	return []byte(`{"cookie":{"originalMaxAge":3600000,"expires":null,"httpOnly":true,"path":"/"},"user":"` + tag + `"}`)
}

func sameMS(a, b time.Time) bool {
	return a.Truncate(time.Millisecond).Equal(b.Truncate(time.Millisecond))
}

func mustSet(t *testing.T, s store.Store, id string, rec store.Record) {
	t.Helper()
	if err := s.Set(t.Context(), id, rec); err != nil {
		t.Fatalf("Set(%q): %v", id, err)
	}
}

// wantRecord checks that Get(id) returns data and expires.
func wantRecord(t *testing.T, s store.Store, id string, data []byte, expires time.Time) {
	t.Helper()
	got, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get(%q): %v, want a record", id, err)
	}
	if !bytes.Equal(got.Data, data) {
		t.Errorf("Get(%q).Data = %q, want %q", id, clip(got.Data), clip(data))
	}
	if !sameMS(got.Expires, expires) {
		t.Errorf("Get(%q).Expires = %v, want %v (to the millisecond)", id, got.Expires, expires)
	}
}

// wantNotFound checks that Get(id) returns store.ErrNotFound.
func wantNotFound(t *testing.T, s store.Store, id string) {
	t.Helper()
	got, err := s.Get(t.Context(), id)
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(%q) = %q, %v; want ErrNotFound", id, clip(got.Data), err)
	}
}

func clip(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + fmt.Sprintf("...(%d bytes)", len(b))
	}
	return string(b)
}

func testGetMissing(t *testing.T, h *harness) {
	s, _ := h.open(t)
	wantNotFound(t, s, newID(t))
}

func testSetGet(t *testing.T, h *harness) {
	s, c := h.open(t)
	id := newID(t)
	data := sessionData("alice")
	exp := c.Now().Add(2*time.Hour + 123*time.Millisecond)
	mustSet(t, s, id, store.Record{Data: bytes.Clone(data), Expires: exp})
	wantRecord(t, s, id, data, exp)
}

func testSetReplaces(t *testing.T, h *harness) {
	s, c := h.open(t)
	id := newID(t)
	mustSet(t, s, id, store.Record{Data: sessionData("first"), Expires: c.Now().Add(2 * time.Hour)})
	exp := c.Now().Add(3 * time.Hour)
	mustSet(t, s, id, store.Record{Data: sessionData("second"), Expires: exp})
	wantRecord(t, s, id, sessionData("second"), exp)
}

func testDelete(t *testing.T, h *harness) {
	ctx := t.Context()
	s, c := h.open(t)
	id, other := newID(t), newID(t)
	mustSet(t, s, id, store.Record{Data: sessionData("a"), Expires: c.Now().Add(2 * time.Hour)})
	mustSet(t, s, other, store.Record{Data: sessionData("b"), Expires: c.Now().Add(2 * time.Hour)})
	for i := range 2 {
		if err := s.Delete(ctx, id); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
		wantNotFound(t, s, id)
	}
	if err := s.Delete(ctx, newID(t)); err != nil {
		t.Errorf("Delete of a missing id = %v, want nil", err)
	}
	wantRecord(t, s, other, sessionData("b"), c.Now().Add(2*time.Hour))
}

func testTouch(t *testing.T, h *harness) {
	ctx := t.Context()
	s, c := h.open(t)
	id := newID(t)
	data := sessionData("alice")
	mustSet(t, s, id, store.Record{Data: bytes.Clone(data), Expires: c.Now().Add(time.Hour)})
	for _, d := range []time.Duration{3 * time.Hour, 90 * time.Minute} { // later, then earlier
		exp := c.Now().Add(d + 7*time.Millisecond)
		if err := s.Touch(ctx, id, exp); err != nil {
			t.Fatalf("Touch: %v", err)
		}
		wantRecord(t, s, id, data, exp)
	}
}

func testTouchMissing(t *testing.T, h *harness) {
	ctx := t.Context()
	s, c := h.open(t)
	id := newID(t)
	if err := s.Touch(ctx, id, c.Now().Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Touch of a missing id = %v, want ErrNotFound", err)
	}
	wantNotFound(t, s, id)
}

func testExpiry(t *testing.T, h *harness) {
	ctx := t.Context()
	s, c := h.open(t)
	id, keep := newID(t), newID(t)
	data := sessionData("short")
	exp := c.Now().Add(time.Minute)
	mustSet(t, s, id, store.Record{Data: bytes.Clone(data), Expires: exp})
	mustSet(t, s, keep, store.Record{Data: sessionData("long"), Expires: c.Now().Add(2 * time.Hour)})

	c.Advance(59 * time.Second)
	wantRecord(t, s, id, data, exp)

	c.Advance(2 * time.Second)
	wantNotFound(t, s, id)
	if err := s.Touch(ctx, id, c.Now().Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Touch of an expired id = %v, want ErrNotFound", err)
	}
	wantNotFound(t, s, id)
	if u, ok := s.(store.Updater); ok {
		err := u.Update(ctx, id, func(cur store.Record, found bool) (store.Record, bool, error) {
			if found {
				t.Errorf("Update of an expired id: fn saw found=true, Data %q", clip(cur.Data))
			}
			return store.Record{}, false, nil
		})
		if err != nil {
			t.Errorf("Update of an expired id: %v", err)
		}
	}
	wantRecord(t, s, keep, sessionData("long"), c.Now().Add(2*time.Hour-61*time.Second))
}

func testSetExpiredNotStored(t *testing.T, h *harness) {
	s, c := h.open(t)
	for _, tc := range []struct {
		name string
		exp  time.Duration
	}{{"past", -time.Minute}, {"now", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			fresh, existing := newID(t), newID(t)
			mustSet(t, s, fresh, store.Record{Data: sessionData("x"), Expires: c.Now().Add(tc.exp)})
			wantNotFound(t, s, fresh)

			mustSet(t, s, existing, store.Record{Data: sessionData("old"), Expires: c.Now().Add(2 * time.Hour)})
			mustSet(t, s, existing, store.Record{Data: sessionData("new"), Expires: c.Now().Add(tc.exp)})
			wantNotFound(t, s, existing)
		})
	}
}

var invalidIDs = []string{
	"", "../x", "a/b", "..", "a\x00b", `a\b`, "/abs", `C:\x`, "a.b",
	strings.Repeat("a", store.MaxIDLen+1), "é", "a b", "a\nb", "sess:*",
}

func testInvalidID(t *testing.T, h *harness) {
	ctx := t.Context()
	s, c := h.open(t)
	u, isUpdater := s.(store.Updater)
	exp := c.Now().Add(time.Hour)
	for _, id := range invalidIDs {
		check := func(method string, err error) {
			t.Helper()
			if !errors.Is(err, store.ErrInvalidID) {
				t.Errorf("%s(%q) = %v, want an error wrapping ErrInvalidID", method, clip([]byte(id)), err)
			}
		}
		_, err := s.Get(ctx, id)
		check("Get", err)
		check("Set", s.Set(ctx, id, store.Record{Data: sessionData("x"), Expires: exp}))
		check("Delete", s.Delete(ctx, id))
		check("Touch", s.Touch(ctx, id, exp))
		if isUpdater {
			called := false
			check("Update", u.Update(ctx, id, func(store.Record, bool) (store.Record, bool, error) {
				called = true
				return store.Record{Data: sessionData("x"), Expires: exp}, true, nil
			}))
			if called {
				t.Errorf("Update(%q) called fn for an invalid id", clip([]byte(id)))
			}
		}
	}
}

func testMaxLengthID(t *testing.T, h *harness) {
	ctx := t.Context()
	s, c := h.open(t)
	id := newID(t)
	id += strings.Repeat("x", store.MaxIDLen-len(id))
	data := sessionData("max")
	exp := c.Now().Add(time.Hour)
	mustSet(t, s, id, store.Record{Data: bytes.Clone(data), Expires: exp})
	wantRecord(t, s, id, data, exp)
	if err := s.Touch(ctx, id, exp.Add(time.Hour)); err != nil {
		t.Errorf("Touch: %v", err)
	}
	if u, ok := s.(store.Updater); ok {
		if err := u.Update(ctx, id, func(cur store.Record, found bool) (store.Record, bool, error) {
			return cur, false, nil
		}); err != nil {
			t.Errorf("Update: %v", err)
		}
	}
	if err := s.Delete(ctx, id); err != nil {
		t.Errorf("Delete: %v", err)
	}
	wantNotFound(t, s, id)
}

// largeData returns about size bytes of JSON text with varied content.
func largeData(size int) []byte {
	b := make([]byte, 0, size+64)
	b = append(b, `{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"items":[`...)
	for i := 0; len(b) < size-32; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"k":"`...)
		b = strconv.AppendInt(b, int64(i*7919%100003), 36)
		b = append(b, `","v":"\u00e9\"\\ `...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `"}`...)
	}
	return append(b, "]}"...)
}

func testLargeValue(t *testing.T, h *harness) {
	ctx := t.Context()
	s, c := h.open(t)
	id := newID(t)
	data := largeData(1 << 20)
	exp := c.Now().Add(time.Hour)
	err := s.Set(ctx, id, store.Record{Data: bytes.Clone(data), Expires: exp})
	switch {
	case errors.Is(err, store.ErrTooLarge):
		t.Logf("store refuses %d bytes: %v", len(data), err)
		wantNotFound(t, s, id)
	case err != nil:
		t.Fatalf("Set of %d bytes: %v, want nil or ErrTooLarge", len(data), err)
	default:
		wantRecord(t, s, id, data, exp)
	}
}

func testRepeatedGet(t *testing.T, h *harness) {
	ctx := t.Context()
	s, c := h.open(t)
	id := newID(t)
	data := sessionData("twice")
	mustSet(t, s, id, store.Record{Data: bytes.Clone(data), Expires: c.Now().Add(time.Hour)})
	a, err := s.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Data, data) || !bytes.Equal(b.Data, data) || !a.Expires.Equal(b.Expires) {
		t.Errorf("two Gets returned %q/%v and %q/%v, want %q", a.Data, a.Expires, b.Data, b.Expires, data)
	}
}

func updater(t *testing.T, s store.Store) store.Updater {
	t.Helper()
	u, ok := s.(store.Updater)
	if !ok {
		t.Skipf("%T does not implement store.Updater", s)
	}
	return u
}

func testUpdate(t *testing.T, h *harness) {
	s, c := h.open(t)
	u := updater(t, s)
	exp := c.Now().Add(time.Hour)

	t.Run("SeesCurrent", func(t *testing.T) {
		ctx := t.Context()
		id := newID(t)
		mustSet(t, s, id, store.Record{Data: sessionData("cur"), Expires: exp})
		calls := 0
		err := u.Update(ctx, id, func(cur store.Record, found bool) (store.Record, bool, error) {
			calls++
			if !found || !bytes.Equal(cur.Data, sessionData("cur")) || !sameMS(cur.Expires, exp) {
				t.Errorf("fn got found=%v %q %v, want true %q %v", found, clip(cur.Data), cur.Expires, sessionData("cur"), exp)
			}
			return store.Record{}, false, nil
		})
		if err != nil || calls == 0 {
			t.Fatalf("Update = %v after %d calls of fn", err, calls)
		}
		wantRecord(t, s, id, sessionData("cur"), exp)
	})
	t.Run("WriteReplaces", func(t *testing.T) {
		ctx := t.Context()
		id := newID(t)
		mustSet(t, s, id, store.Record{Data: sessionData("old"), Expires: exp})
		exp2 := exp.Add(time.Hour)
		err := u.Update(ctx, id, func(cur store.Record, found bool) (store.Record, bool, error) {
			return store.Record{Data: sessionData("new"), Expires: exp2}, true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		wantRecord(t, s, id, sessionData("new"), exp2)
	})
	t.Run("NoWriteLeavesUnchanged", func(t *testing.T) {
		ctx := t.Context()
		id := newID(t)
		mustSet(t, s, id, store.Record{Data: sessionData("keep"), Expires: exp})
		err := u.Update(ctx, id, func(cur store.Record, found bool) (store.Record, bool, error) {
			return store.Record{Data: sessionData("ignored"), Expires: exp.Add(time.Hour)}, false, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		wantRecord(t, s, id, sessionData("keep"), exp)
	})
	t.Run("ErrorAborts", func(t *testing.T) {
		ctx := t.Context()
		id := newID(t)
		mustSet(t, s, id, store.Record{Data: sessionData("keep"), Expires: exp})
		sentinel := errors.New("storetest: fn failed")
		err := u.Update(ctx, id, func(cur store.Record, found bool) (store.Record, bool, error) {
			return store.Record{Data: sessionData("written"), Expires: exp.Add(time.Hour)}, true, sentinel
		})
		if !errors.Is(err, sentinel) {
			t.Errorf("Update = %v, want the error fn returned", err)
		}
		wantRecord(t, s, id, sessionData("keep"), exp)

		missing := newID(t)
		err = u.Update(ctx, missing, func(cur store.Record, found bool) (store.Record, bool, error) {
			return store.Record{Data: sessionData("written"), Expires: exp}, true, sentinel
		})
		if !errors.Is(err, sentinel) {
			t.Errorf("Update of a missing id = %v, want the error fn returned", err)
		}
		wantNotFound(t, s, missing)
	})
	t.Run("MissingCreates", func(t *testing.T) {
		ctx := t.Context()
		id := newID(t)
		err := u.Update(ctx, id, func(cur store.Record, found bool) (store.Record, bool, error) {
			if found {
				t.Errorf("fn got found=true for a missing id")
			}
			return store.Record{Data: sessionData("created"), Expires: exp}, true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		wantRecord(t, s, id, sessionData("created"), exp)
	})
	t.Run("MissingNoWrite", func(t *testing.T) {
		ctx := t.Context()
		id := newID(t)
		if err := u.Update(ctx, id, func(store.Record, bool) (store.Record, bool, error) {
			return store.Record{}, false, nil
		}); err != nil {
			t.Fatal(err)
		}
		wantNotFound(t, s, id)
	})
	t.Run("WriteExpiredDeletes", func(t *testing.T) {
		ctx := t.Context()
		id := newID(t)
		mustSet(t, s, id, store.Record{Data: sessionData("old"), Expires: exp})
		if err := u.Update(ctx, id, func(cur store.Record, found bool) (store.Record, bool, error) {
			return store.Record{Data: sessionData("dead"), Expires: c.Now()}, true, nil
		}); err != nil {
			t.Fatal(err)
		}
		wantNotFound(t, s, id)
	})
}

func testNoResurrection(t *testing.T, h *harness) {
	ctx := t.Context()
	s, c := h.open(t)
	id := newID(t)
	exp := c.Now().Add(time.Hour)
	mustSet(t, s, id, store.Record{Data: sessionData("gone"), Expires: exp})
	if err := s.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := s.Touch(ctx, id, exp.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Touch after Delete = %v, want ErrNotFound", err)
	}
	if u, ok := s.(store.Updater); ok {
		err := u.Update(ctx, id, func(cur store.Record, found bool) (store.Record, bool, error) {
			if found {
				t.Errorf("Update after Delete: fn saw found=true, Data %q", clip(cur.Data))
			}
			return store.Record{}, false, nil
		})
		if err != nil {
			t.Errorf("Update after Delete: %v", err)
		}
	}
	wantNotFound(t, s, id)
}

const goroutines = 64

func testConcurrentOneID(t *testing.T, h *harness) {
	ctx := t.Context()
	s, c := h.open(t)
	u, isUpdater := s.(store.Updater)
	id := newID(t)
	exp := c.Now().Add(time.Hour)
	const iters = 200
	// Every value written has this shape, so the final one can be checked.
	value := func(g, i int) []byte { return fmt.Appendf(nil, `{"g":%d,"i":%d}`, g, i) }
	valid := func(b []byte) bool {
		var g, i int
		n, err := fmt.Sscanf(string(b), `{"g":%d,"i":%d}`, &g, &i)
		return err == nil && n == 2 && bytes.Equal(b, value(g, i))
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range iters {
				var err error
				op := (g + i) % 5
				switch op {
				case 0:
					var rec store.Record
					rec, err = s.Get(ctx, id)
					if err == nil && !valid(rec.Data) {
						t.Errorf("Get returned %q, which no goroutine wrote", clip(rec.Data))
					}
				case 1:
					err = s.Set(ctx, id, store.Record{Data: value(g, i), Expires: exp})
				case 2:
					err = s.Touch(ctx, id, exp.Add(time.Duration(i)*time.Millisecond))
				case 3:
					err = s.Delete(ctx, id)
				case 4:
					if !isUpdater {
						err = s.Set(ctx, id, store.Record{Data: value(g, i), Expires: exp})
						break
					}
					err = u.Update(ctx, id, func(cur store.Record, found bool) (store.Record, bool, error) {
						if found && !valid(cur.Data) {
							return store.Record{}, false, fmt.Errorf("fn saw %q, which no goroutine wrote", clip(cur.Data))
						}
						return store.Record{Data: value(g, i), Expires: exp}, true, nil
					})
				}
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					t.Errorf("goroutine %d op %d: %v", g, op, err)
					return
				}
			}
		})
	}
	wg.Wait()
	rec, err := s.Get(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	if err == nil && !valid(rec.Data) {
		t.Errorf("final Get returned %q, which no goroutine wrote", clip(rec.Data))
	}
}

func testConcurrentCounter(t *testing.T, h *harness) {
	ctx := t.Context()
	s, c := h.open(t)
	u := updater(t, s)
	id := newID(t)
	exp := c.Now().Add(time.Hour)
	const iters = 20
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for range iters {
				err := u.Update(ctx, id, func(cur store.Record, found bool) (store.Record, bool, error) {
					n := 0
					if found {
						var err error
						if n, err = counterValue(cur.Data); err != nil {
							return store.Record{}, false, err
						}
					}
					return store.Record{Data: counterData(n + 1), Expires: exp}, true, nil
				})
				if err != nil {
					t.Errorf("goroutine %d: Update: %v", g, err)
					return
				}
			}
		})
	}
	wg.Wait()
	wantRecord(t, s, id, counterData(goroutines*iters), exp)
}

// counterData is the record of the counter subtests: a JSON object, as the
// store contract says Data is.
func counterData(n int) []byte {
	return []byte(`{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"n":` + strconv.Itoa(n) + `}`)
}

func counterValue(data []byte) (int, error) {
	const prefix = `{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"n":`
	s, ok := strings.CutPrefix(string(data), prefix)
	if !ok || !strings.HasSuffix(s, "}") {
		return 0, fmt.Errorf("stored counter record %q is not what the suite wrote", clip(data))
	}
	return strconv.Atoi(strings.TrimSuffix(s, "}"))
}

func testConcurrentManyIDs(t *testing.T, h *harness) {
	ctx := t.Context()
	s, c := h.open(t)
	exp := c.Now().Add(time.Hour)
	const iters = 50
	var wg sync.WaitGroup
	for g := range goroutines {
		id := newID(t)
		wg.Go(func() {
			for i := range iters {
				data := fmt.Appendf(nil, `{"id":%q,"i":%d}`, id, i)
				if err := s.Set(ctx, id, store.Record{Data: data, Expires: exp}); err != nil {
					t.Errorf("Set: %v", err)
					return
				}
				rec, err := s.Get(ctx, id)
				if err != nil || !bytes.Equal(rec.Data, fmt.Appendf(nil, `{"id":%q,"i":%d}`, id, i)) {
					t.Errorf("goroutine %d: Get = %q, %v; want its own data", g, clip(rec.Data), err)
					return
				}
				if i%3 == 2 {
					if err := s.Delete(ctx, id); err != nil {
						t.Errorf("Delete: %v", err)
						return
					}
					if _, err := s.Get(ctx, id); !errors.Is(err, store.ErrNotFound) {
						t.Errorf("goroutine %d: Get after Delete = %v, want ErrNotFound", g, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// populate stores live and short-lived records for the List, Count and Reap
// subtests: live ones expire in two hours, short ones in one minute, and
// one more record is set and deleted. It returns the live and short ids.
func populate(t *testing.T, s store.Store, c *Clock, nLive, nShort int) (live map[string][]byte, short []string) {
	ctx := t.Context()
	t.Helper()
	live = make(map[string][]byte)
	for i := range nLive {
		id := newID(t)
		live[id] = sessionData("live" + strconv.Itoa(i))
		mustSet(t, s, id, store.Record{Data: bytes.Clone(live[id]), Expires: c.Now().Add(2 * time.Hour)})
	}
	for i := range nShort {
		id := newID(t)
		short = append(short, id)
		mustSet(t, s, id, store.Record{Data: sessionData("short" + strconv.Itoa(i)), Expires: c.Now().Add(time.Minute)})
	}
	gone := newID(t)
	mustSet(t, s, gone, store.Record{Data: sessionData("gone"), Expires: c.Now().Add(2 * time.Hour)})
	if err := s.Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	return live, short
}

func testList(t *testing.T, h *harness) {
	ctx := t.Context()
	s, c := h.open(t)
	l, ok := s.(store.Lister)
	if !ok {
		t.Skipf("%T does not implement store.Lister", s)
	}
	live, short := populate(t, s, c, 5, 3)
	mine := func(id string) bool {
		_, ok := live[id]
		return ok || slices.Contains(short, id)
	}
	c.Advance(2 * time.Minute)

	seen := map[string]int{}
	err := l.List(ctx, func(id string, rec store.Record) bool {
		if !mine(id) {
			return true // another test's session in a shared store
		}
		seen[id]++
		if want, ok := live[id]; !ok {
			t.Errorf("List returned %q, which expired or was deleted", id)
		} else if !bytes.Equal(rec.Data, want) {
			t.Errorf("List returned %q with Data %q, want %q", id, clip(rec.Data), want)
		}
		if !rec.Expires.After(c.Now()) {
			t.Errorf("List returned %q with Expires %v, not after now %v", id, rec.Expires, c.Now())
		}
		return true
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for id := range live {
		if seen[id] != 1 {
			t.Errorf("List returned live %q %d times, want once", id, seen[id])
		}
	}

	calls := 0
	if err := l.List(ctx, func(string, store.Record) bool { calls++; return false }); err != nil {
		t.Fatalf("List stopped early: %v", err)
	}
	if calls != 1 {
		t.Errorf("List called fn %d times after it returned false, want 1", calls)
	}
}

func counter(t *testing.T, s store.Store) store.Counter {
	t.Helper()
	n, ok := s.(store.Counter)
	if !ok {
		t.Skipf("%T does not implement store.Counter", s)
	}
	return n
}

func count(t *testing.T, n store.Counter) int {
	t.Helper()
	got, err := n.Count(t.Context())
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	return got
}

func testCount(t *testing.T, h *harness) {
	s, c := h.open(t)
	n := counter(t, s)
	before := count(t, n)
	live, short := populate(t, s, c, 4, 3)
	if got, want := count(t, n), before+len(live)+len(short); got != want {
		t.Errorf("Count = %d, want %d (%d before, %d set)", got, want, before, len(live)+len(short))
	}
	c.Advance(2 * time.Minute)
	if got, want := count(t, n), before+len(live); got != want {
		t.Errorf("Count after expiry = %d, want %d (%d before, %d live)", got, want, before, len(live))
	}
}

func testReap(t *testing.T, h *harness) {
	ctx := t.Context()
	s, c := h.open(t)
	r, ok := s.(store.Reaper)
	if !ok {
		t.Skipf("%T does not implement store.Reaper", s)
	}
	// The result is exact only for a store that starts empty.
	fresh := false
	if n, ok := s.(store.Counter); ok {
		fresh = count(t, n) == 0
	}
	live, short := populate(t, s, c, 4, 6)
	c.Advance(2 * time.Minute)
	got, err := r.Reap(ctx)
	if err != nil {
		t.Fatalf("Reap: %v", err)
	}
	if got < len(short) || (fresh && got != len(short)) {
		t.Errorf("Reap = %d, want %d (the expired records)", got, len(short))
	}
	for id, data := range live {
		wantRecord(t, s, id, data, c.Now().Add(2*time.Hour-2*time.Minute))
	}
	for _, id := range short {
		wantNotFound(t, s, id)
	}
	if got, err := r.Reap(ctx); err != nil || (fresh && got != 0) {
		t.Errorf("second Reap = %d, %v; want 0, nil", got, err)
	}
}

func testCanceledContext(t *testing.T, h *harness) {
	s, c := h.open(t)
	id := newID(t)
	exp := c.Now().Add(time.Hour)
	mustSet(t, s, id, store.Record{Data: sessionData("ctx"), Expires: exp})
	cctx, cancel := context.WithCancel(t.Context())
	cancel()
	check := func(method string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context = %v, want an error wrapping context.Canceled", method, err)
		}
	}
	_, err := s.Get(cctx, id)
	check("Get", err)
	check("Set", s.Set(cctx, newID(t), store.Record{Data: sessionData("x"), Expires: exp}))
	check("Delete", s.Delete(cctx, id))
	check("Touch", s.Touch(cctx, id, exp))
	if u, ok := s.(store.Updater); ok {
		check("Update", u.Update(cctx, id, func(cur store.Record, found bool) (store.Record, bool, error) {
			return cur, false, nil
		}))
	}
	if l, ok := s.(store.Lister); ok {
		check("List", l.List(cctx, func(string, store.Record) bool { return true }))
	}
	if n, ok := s.(store.Counter); ok {
		_, err := n.Count(cctx)
		check("Count", err)
	}
	if r, ok := s.(store.Reaper); ok {
		_, err := r.Reap(cctx)
		check("Reap", err)
	}
	// The record is still there for a live context.
	wantRecord(t, s, id, sessionData("ctx"), exp)
}
