package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/internal/nodecheck"
	"github.com/galleta-go/galleta/internal/storecheck"
	"github.com/galleta-go/galleta/internal/testredis"
	"github.com/galleta-go/galleta/redisstore"
)

// pttl is the key's remaining life in Redis, in milliseconds.
func pttl(t *testing.T, c redis.UniversalClient, key string) int64 {
	t.Helper()
	d, err := c.PTTL(context.Background(), key).Result()
	if err != nil || d < 0 {
		t.Fatalf("PTTL: %v, %v (key missing or without expiry)", d, err)
	}
	return d.Milliseconds()
}

// TestNodeCompat shares Redis between a galleta Manager on this store and an
// Express-style app on connect-redis 9.0.0 with express-session 1.19.0 and
// the redis client, as pinned in internal/nodecheck/package-lock.json, over
// real HTTP with one connect.sid cookie: each side reads and changes what
// the other wrote, a destroy on one side ends the session on both, and the
// key's expiry agrees.
//
// connect-redis's TTL rule (dist/connect-redis.cjs, getTTL): a session whose
// cookie has expires gets ceil((expires - now) / 1000) seconds, one without
// gets the store's ttl (default 86400 s); set writes SET key json EX ttl and
// touch EXPIRE key ttl. express-session sets cookie.expires to now + maxAge
// just before it saves, so a maxAge of whole seconds gives exactly
// maxAge/1000 s. galleta writes PXAT at its Expires plus the one-second
// margin of its clock offset (see the package doc), so right after a write
// galleta's key has 1000 ms more to live than Node's for the same window:
// the test checks that difference within 250 ms (the requests' latency and
// connect-redis's rounding to whole seconds).
func TestNodeCompat(t *testing.T) {
	client := testredis.Client(t)
	const secret = "keyboard cat" // an Express-style short secret
	cases := []struct {
		name   string
		node   nodecheck.Config
		goOpts galleta.Options
		window time.Duration
	}{
		{"BrowserCookie", nodecheck.Config{TTL: 3600}, galleta.Options{IdleTimeout: time.Hour}, time.Hour},
		{"MaxAge", nodecheck.Config{MaxAge: 90_000}, galleta.Options{Cookie: galleta.CookieOptions{MaxAge: 90 * time.Second}}, 90 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prefix := testredis.Prefix(t, client)
			st, err := redisstore.New(client, redisstore.Options{Prefix: prefix, Logger: storecheck.Quiet})
			if err != nil {
				t.Fatal(err)
			}
			cfg := tc.node
			cfg.URL, cfg.Prefix, cfg.Secret = testredis.URL(), prefix, secret
			node := nodecheck.Start(t, "redis", cfg)
			app := nodecheck.StartGo(t, st, secret, tc.goOpts)

			t.Run("NodeToGo", func(t *testing.T) {
				r := node.Do(t, "POST", "/set?user=%22ann%22&n=1", "")
				c := nodecheck.CookiePair(t, r.SetCookie)
				nodeTTL := pttl(t, client, prefix+r.ID)

				g := app.Do(t, "GET", "/session", c)
				if g.ID != r.ID || g.Values()["user"] != "ann" || g.Values()["n"] != 1.0 {
					t.Fatalf("Go read Node's session as id %s %s, want id %s with user ann, n 1", g.ID, g.Session, r.ID)
				}
				g = app.Do(t, "POST", "/incr?k=n", c)
				if g.Values()["n"] != 2.0 {
					t.Fatalf("Go Incr on Node's session: %s, want n 2", g.Session)
				}
				goTTL := pttl(t, client, prefix+r.ID)
				if tc.goOpts.Cookie.MaxAge == 0 && g.SetCookie != "" {
					t.Errorf("Go changed a browser-session cookie's session and sent Set-Cookie %q; express-session would not", g.SetCookie)
				}
				back := node.Do(t, "GET", "/session", c)
				if back.ID != r.ID || back.Values()["n"] != 2.0 || back.Values()["user"] != "ann" {
					t.Fatalf("Node read Go's change as id %s %s, want id %s with n 2 and user ann", back.ID, back.Session, r.ID)
				}
				if _, ok := back.Values()["__galleta"]; !ok {
					t.Errorf("Node's session lost galleta's __galleta bookkeeping: %s", back.Session)
				}
				checkTTL(t, tc.window, nodeTTL, goTTL, keptAfterNode(tc.window))
			})

			t.Run("GoToNode", func(t *testing.T) {
				g := app.Do(t, "POST", "/set?user=%22bob%22", "")
				c := nodecheck.CookiePair(t, g.SetCookie)
				goTTL := pttl(t, client, prefix+g.ID)

				r := node.Do(t, "GET", "/session", c)
				if r.ID != g.ID || r.Values()["user"] != "bob" {
					t.Fatalf("Node read Go's session as id %s %s, want id %s with user bob", r.ID, r.Session, g.ID)
				}
				r = node.Do(t, "POST", "/set?cart=%5B1%2C2%5D", c)
				nodeTTL := pttl(t, client, prefix+g.ID)
				back := app.Do(t, "GET", "/session", c)
				if back.ID != g.ID || back.Values()["user"] != "bob" || len(back.Values()["cart"].([]any)) != 2 {
					t.Fatalf("Go read Node's change as id %s %s, want id %s with user bob and cart [1,2]", back.ID, back.Session, g.ID)
				}
				checkTTL(t, tc.window, nodeTTL, goTTL, false)

				// Node logs out: Go must not find the session.
				node.Do(t, "POST", "/destroy", c)
				if after := app.Do(t, "GET", "/session", c); after.ID == g.ID || after.Values()["user"] != nil {
					t.Errorf("Go after Node's destroy: id %s %s, want a new, empty session", after.ID, after.Session)
				}
			})

			t.Run("GoDestroys", func(t *testing.T) {
				r := node.Do(t, "POST", "/set?user=%22cy%22", "")
				c := nodecheck.CookiePair(t, r.SetCookie)
				app.Do(t, "POST", "/destroy", c)
				if n, _ := client.Exists(context.Background(), prefix+r.ID).Result(); n != 0 {
					t.Errorf("the key is still in Redis after Go's Destroy")
				}
				if after := node.Do(t, "GET", "/session", c); after.ID == r.ID {
					t.Errorf("Node after Go's destroy still has session %s: %s", r.ID, after.Session)
				}
			})
		})
	}
}

// checkTTL compares the remaining life of the key right after Node's write
// and right after Go's: both should be the window, Go's plus the offset's
// one-second margin. But a Go write that comes right after Node's (kept)
// leaves the expiry Node set when moving it would gain less than the
// Manager's slack (1% of the window, at most a minute), as a touch does:
// the two are then the same.
func checkTTL(t *testing.T, window time.Duration, nodeTTL, goTTL int64, kept bool) {
	t.Helper()
	w := window.Milliseconds()
	if nodeTTL > w || nodeTTL < w-250 {
		t.Errorf("Node's write left PTTL %d ms, want %d ms (connect-redis: EX ceil(maxAge s) or ttl) within 250 ms", nodeTTL, w)
	}
	want := int64(1000)
	if kept {
		want = 0
	}
	if d := goTTL - nodeTTL - want; d < -250 || d > 250 {
		t.Errorf("Go's write left PTTL %d ms, Node's %d ms: the difference is %d ms, want %d within 250 ms", goTTL, nodeTTL, goTTL-nodeTTL, want)
	}
}

// keptAfterNode reports whether a Go write right after Node's keeps the
// expiry Node set: the Go side reads it a second early (the offset), so
// moving it gains about a second, kept when that is under the slack.
func keptAfterNode(window time.Duration) bool {
	return time.Second+250*time.Millisecond < min(window/100, time.Minute)
}
