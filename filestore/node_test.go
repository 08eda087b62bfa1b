package filestore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/galleta-go/galleta/store"
)

// TestNodeCompat shares a directory between this store and Node's
// session-file-store 1.5.0 (driven by nodecheck/check.js with the versions
// pinned in nodecheck/package-lock.json) and checks that each reads the
// other's sessions and that both put the expiry at the same instant.
//
// It needs node (GALLETA_NODE, default "node" on PATH) and the packages:
// npm ci --prefix filestore/nodecheck. Without them it skips, except with
// CI=true, where a missing backend fails.
func TestNodeCompat(t *testing.T) {
	nc := findNodeCheck(t)

	const ttl = time.Hour
	var fixed atomic.Int64 // unix ms; 0: the real clock
	now := func() time.Time {
		if ms := fixed.Load(); ms != 0 {
			return time.UnixMilli(ms)
		}
		return time.Now()
	}
	// fix pins the store's clock to the real time, whole milliseconds, so
	// the expiries it computes are exact; useRealClock returns it to time.Now.
	fix := func() time.Time {
		t0 := time.Now().Truncate(time.Millisecond)
		fixed.Store(t0.UnixMilli())
		return t0
	}
	useRealClock := func() { fixed.Store(0) }

	dir := t.TempDir()
	s, err := New(Options{Dir: dir, TTL: ttl, ReapInterval: -1, Now: now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	nc.dir, nc.ttl = dir, ttl
	ctx := context.Background()

	// What galleta's Manager writes for a browser-session cookie, and for
	// a cookie with a max age.
	goSession := func(created time.Time, user string, n int) []byte {
		return fmt.Appendf(nil, `{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"__galleta":{"created":%d},"user":%q,"n":%d}`,
			created.UnixMilli(), user, n)
	}
	goSessionMaxAge := func(created time.Time, maxAge time.Duration, user string) []byte {
		exp := created.Add(maxAge).UTC().Format("2006-01-02T15:04:05.000Z")
		return fmt.Appendf(nil, `{"cookie":{"originalMaxAge":%d,"expires":%q,"httpOnly":true,"path":"/"},"__galleta":{"created":%d},"user":%q}`,
			maxAge.Milliseconds(), exp, created.UnixMilli(), user)
	}
	// expiresAt checks that session-file-store's expiry of id is exp: live
	// 1 ms before, expired 1 ms after.
	expiresAt := func(t *testing.T, id string, exp time.Time) {
		t.Helper()
		if nc.expired(t, id, exp.Add(-time.Millisecond)) {
			t.Errorf("Node: %s expired at %d, 1 ms before Go's expiry %d; file: %s", id, exp.UnixMilli()-1, exp.UnixMilli(), nc.file(t, id))
		}
		if !nc.expired(t, id, exp.Add(time.Millisecond)) {
			t.Errorf("Node: %s still live at %d, 1 ms after Go's expiry %d; file: %s", id, exp.UnixMilli()+1, exp.UnixMilli(), nc.file(t, id))
		}
	}
	// goGet checks that Go reads id as a live session expiring at exp
	// whose user is user, and returns its data.
	goGet := func(t *testing.T, id, user string, exp time.Time) map[string]any {
		t.Helper()
		rec, err := s.Get(ctx, id)
		if err != nil {
			t.Fatalf("Go Get %s: %v; file: %s", id, err, nc.file(t, id))
		}
		var m map[string]any
		if err := json.Unmarshal(rec.Data, &m); err != nil {
			t.Fatalf("Go Get %s: Data is not JSON: %v: %s", id, err, rec.Data)
		}
		if m["user"] != user {
			t.Errorf("Go Get %s: user = %v, want %q; Data: %s", id, m["user"], user, rec.Data)
		}
		if !rec.Expires.Equal(exp) {
			t.Errorf("Go Get %s: Expires = %d, want %d (Node's rule); file: %s", id, rec.Expires.UnixMilli(), exp.UnixMilli(), nc.file(t, id))
		}
		return m
	}

	t.Run("GoToNode", func(t *testing.T) {
		t.Run("ttl", func(t *testing.T) {
			t0 := fix()
			defer useRealClock()
			id := "goToNodeTTL-aaaaaaaaaaaaaaaaaaaaa"
			exp := t0.Add(time.Hour)
			if err := s.Set(ctx, id, store.Record{Data: goSession(t0, "ann", 3), Expires: exp}); err != nil {
				t.Fatal(err)
			}
			m := nc.get(t, id)
			if m == nil {
				t.Fatalf("Node get: null for a live Go-written session; file: %s", nc.file(t, id))
			}
			if m["user"] != "ann" || m["n"] != 3.0 {
				t.Errorf("Node get: user = %v, n = %v; want ann, 3: %v", m["user"], m["n"], m)
			}
			wantCookie := map[string]any{"originalMaxAge": nil, "expires": nil, "httpOnly": true, "path": "/"}
			if c, _ := json.Marshal(m["cookie"]); !jsonEqual(c, wantCookie) {
				t.Errorf("Node get: cookie = %s, want %v", c, wantCookie)
			}
			if g, _ := m["__galleta"].(map[string]any); g == nil || g["created"] != float64(t0.UnixMilli()) {
				t.Errorf("Node get: __galleta = %v, want created %d", m["__galleta"], t0.UnixMilli())
			}
			expiresAt(t, id, exp)
		})
		t.Run("maxAgeCappedByDeadline", func(t *testing.T) {
			t0 := fix()
			defer useRealClock()
			id := "goToNodeMaxAge-aaaaaaaaaaaaaaaaaa"
			// originalMaxAge 60 s but an absolute deadline 30 s away:
			// Go's Expires is the deadline, and Node must agree.
			exp := t0.Add(30 * time.Second)
			if err := s.Set(ctx, id, store.Record{Data: goSessionMaxAge(t0, time.Minute, "ann"), Expires: exp}); err != nil {
				t.Fatal(err)
			}
			m := nc.get(t, id)
			if m == nil {
				t.Fatalf("Node get: null for a live Go-written session; file: %s", nc.file(t, id))
			}
			if c, _ := m["cookie"].(map[string]any); m["user"] != "ann" || c == nil || c["originalMaxAge"] != 60000.0 {
				t.Errorf("Node get: %v, want user ann and cookie.originalMaxAge 60000", m)
			}
			expiresAt(t, id, exp)
		})
	})

	t.Run("NodeToGo", func(t *testing.T) {
		useRealClock()
		t.Run("ttl", func(t *testing.T) {
			id := "nodeToGoTTL-aaaaaaaaaaaaaaaaaaaaa"
			nc.set(t, id, `{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"user":"bob"}`)
			last := nc.lastAccess(t, id)
			rec, err := s.Get(ctx, id)
			if err != nil {
				t.Fatalf("Go Get: %v; file: %s", err, nc.file(t, id))
			}
			if !bytes.Contains(rec.Data, []byte(`"bob"`)) {
				t.Errorf("Go Get: Data %s lacks \"bob\"", rec.Data)
			}
			goGet(t, id, "bob", last.Add(ttl))
		})
		t.Run("maxAge", func(t *testing.T) {
			id := "nodeToGoMaxAge-aaaaaaaaaaaaaaaaaa"
			exp := time.Now().Add(2 * time.Minute).UTC().Format("2006-01-02T15:04:05.000Z")
			nc.set(t, id, `{"cookie":{"originalMaxAge":120000,"expires":"`+exp+`","httpOnly":true,"path":"/"},"user":"bob"}`)
			last := nc.lastAccess(t, id)
			goGet(t, id, "bob", last.Add(120*time.Second))
		})
	})

	t.Run("Touch", func(t *testing.T) {
		for _, c := range []struct {
			name    string
			data    func(t0 time.Time) []byte
			exp     time.Duration // after t0, at Set
			touched time.Duration // after t0, by Touch
		}{
			{"ttl", func(t0 time.Time) []byte { return goSession(t0, "ann", 3) }, time.Hour, 70 * time.Minute},
			{"maxAge", func(t0 time.Time) []byte { return goSessionMaxAge(t0, time.Minute, "ann") }, 30 * time.Second, 45 * time.Second},
		} {
			t.Run(c.name, func(t *testing.T) {
				t0 := fix()
				defer useRealClock()
				id := "touch" + c.name + strings.Repeat("a", 27-len(c.name))
				if err := s.Set(ctx, id, store.Record{Data: c.data(t0), Expires: t0.Add(c.exp)}); err != nil {
					t.Fatal(err)
				}
				before := nc.file(t, id)
				newExp := t0.Add(c.touched)
				if err := s.Touch(ctx, id, newExp); err != nil {
					t.Fatal(err)
				}
				after := nc.file(t, id)
				if len(after) != len(before) || !bytes.Equal(after[len(lastAccessPrefix)+lastAccessDigits:], before[len(lastAccessPrefix)+lastAccessDigits:]) {
					t.Errorf("Touch rewrote more than the __lastAccess digits:\nbefore %s\nafter  %s", before, after)
				}
				if m := nc.get(t, id); m == nil || m["user"] != "ann" {
					t.Fatalf("Node get after Touch: %v, want the session of ann; file: %s", m, after)
				}
				expiresAt(t, id, newExp)
			})
		}
	})

	t.Run("NodeUpdatesGoFile", func(t *testing.T) {
		t0 := fix()
		id := "nodeUpdate-aaaaaaaaaaaaaaaaaaaaaa"
		if err := s.Set(ctx, id, store.Record{Data: goSession(t0, "ann", 3), Expires: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		useRealClock()
		// As express-session does: get, change, set. The edit is made on
		// Node's JSON text so Node's key order (__lastAccess first, where
		// Go wrote it) is kept.
		if m := nc.get(t, id); m == nil || m["user"] != "ann" {
			t.Fatalf("Node get: %v for a live Go-written session of ann; file: %s", m, nc.file(t, id))
		}
		nc.set(t, id, string(nc.getRaw(t, id, func(raw []byte) []byte {
			raw = bytes.Replace(raw, []byte(`"user":"ann"`), []byte(`"user":"carol"`), 1)
			return bytes.Replace(raw, []byte(`"n":3`), []byte(`"n":4`), 1)
		})))
		if b := nc.file(t, id); !bytes.Contains(b, []byte(`"user":"carol"`)) {
			t.Fatalf("Node set did not write carol: %s", b)
		}
		last := nc.lastAccess(t, id)
		got := goGet(t, id, "carol", last.Add(ttl))
		if got["n"] != 4.0 {
			t.Errorf("Go Get: n = %v, want 4 (Node's version)", got["n"])
		}
		if g, _ := got["__galleta"].(map[string]any); g == nil || g["created"] != float64(t0.UnixMilli()) {
			t.Errorf("Go Get: __galleta = %v, want created %d kept through Node's rewrite", got["__galleta"], t0.UnixMilli())
		}
		// Go touches Node's rewrite: Node sees the new expiry.
		newExp := time.Now().Add(2 * time.Hour).Truncate(time.Millisecond)
		if err := s.Touch(ctx, id, newExp); err != nil {
			t.Fatal(err)
		}
		if m := nc.get(t, id); m == nil || m["user"] != "carol" {
			t.Fatalf("Node get after Go's Touch of Node's rewrite: %v; file: %s", m, nc.file(t, id))
		}
		expiresAt(t, id, newExp)
		goGet(t, id, "carol", newExp)
	})
}

// nodeCheck runs nodecheck/check.js.
type nodeCheck struct {
	node, script string
	dir          string
	ttl          time.Duration
}

// findNodeCheck finds node and the installed packages, or skips (fails
// with CI=true).
func findNodeCheck(t *testing.T) *nodeCheck {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		msg := what + "; install Node.js (or point GALLETA_NODE at node) and, from the module root, the packages: npm ci --prefix filestore/nodecheck"
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and the Node backend is missing: " + msg)
		}
		t.Skip("Node compatibility test skipped: " + msg)
	}
	name := os.Getenv("GALLETA_NODE")
	if name == "" {
		name = "node"
	}
	node, err := exec.LookPath(name)
	if err != nil {
		missing(fmt.Sprintf("node not found (GALLETA_NODE or \"node\" on PATH): %v", err))
	}
	script, err := filepath.Abs(filepath.Join("nodecheck", "check.js"))
	if err != nil {
		t.Fatal(err)
	}
	mods := filepath.Join(filepath.Dir(script), "node_modules")
	for _, p := range []string{"session-file-store", "express-session"} {
		if _, err := os.Stat(filepath.Join(mods, p, "package.json")); err != nil {
			missing(fmt.Sprintf("%s is not installed in %s", p, mods))
		}
	}
	return &nodeCheck{node: node, script: script}
}

// run runs check.js with args and returns its standard output.
func (nc *nodeCheck) run(t *testing.T, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	full := append([]string{nc.script, args[0], nc.dir, strconv.FormatInt(int64(nc.ttl/time.Second), 10)}, args[1:]...)
	cmd := exec.CommandContext(ctx, nc.node, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("%w (timed out after 30s)", err)
		}
		t.Fatalf("node check.js %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return stdout.Bytes()
}

// get is session-file-store's get: the session, or nil.
func (nc *nodeCheck) get(t *testing.T, id string) map[string]any {
	t.Helper()
	out := nc.run(t, "get", id)
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("node get %s: output is not a JSON object or null: %v: %q", id, err, out)
	}
	return m
}

// getRaw is session-file-store's get, as JSON with Node's key order, passed
// through edit.
func (nc *nodeCheck) getRaw(t *testing.T, id string, edit func([]byte) []byte) []byte {
	t.Helper()
	out := bytes.TrimSpace(nc.run(t, "get", id))
	if string(out) == "null" {
		t.Fatalf("node get %s: null; file: %s", id, nc.file(t, id))
	}
	return edit(out)
}

func (nc *nodeCheck) set(t *testing.T, id, sess string) {
	t.Helper()
	nc.run(t, "set", id, sess)
}

// expired is session-file-store's isExpired for id's file at now.
func (nc *nodeCheck) expired(t *testing.T, id string, now time.Time) bool {
	t.Helper()
	out := strings.TrimSpace(string(nc.run(t, "expired", id, strconv.FormatInt(now.UnixMilli(), 10))))
	switch out {
	case "true":
		return true
	case "false":
		return false
	}
	t.Fatalf("node expired %s: output %q, want true or false", id, out)
	return false
}

// file is the content of id's session file.
func (nc *nodeCheck) file(t *testing.T, id string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(nc.dir, id+ext))
	if err != nil {
		t.Fatalf("read session file: %v", err)
	}
	return b
}

// lastAccess is the __lastAccess of id's file.
func (nc *nodeCheck) lastAccess(t *testing.T, id string) time.Time {
	t.Helper()
	var v struct {
		LastAccess *int64 `json:"__lastAccess"`
	}
	b := nc.file(t, id)
	if err := json.Unmarshal(b, &v); err != nil || v.LastAccess == nil {
		t.Fatalf("session file without a numeric __lastAccess (%v): %s", err, b)
	}
	return time.UnixMilli(*v.LastAccess)
}

func jsonEqual(a []byte, b any) bool {
	var x any
	if json.Unmarshal(a, &x) != nil {
		return false
	}
	bb, _ := json.Marshal(b)
	xb, _ := json.Marshal(x)
	return bytes.Equal(bb, xb)
}
