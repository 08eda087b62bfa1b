package pgstore_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/internal/nodecheck"
	"github.com/galleta-go/galleta/internal/testpg"
	"github.com/galleta-go/galleta/pgstore"
)

// offsetClock is the real clock plus an offset the test moves, the Go
// twin of server.js's POST /clock.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) Now() time.Time      { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) Set(d time.Duration) { c.off.Store(int64(d)) }

// rawExpire reads the expire column of id as stored (a local time without
// zone) and returns it as text and as the instant it means in loc.
func rawExpire(t *testing.T, st *pgstore.Store, id string, loc *time.Location) (string, time.Time) {
	t.Helper()
	var raw string
	testpg.QueryRow(t, "SELECT expire::text FROM "+st.Table()+" WHERE sid = $1", []any{id}, &raw)
	at, err := time.ParseInLocation("2006-01-02 15:04:05.999999", raw, loc)
	if err != nil {
		t.Fatalf("expire %q: %v", raw, err)
	}
	return raw, at
}

// TestNodeCompat shares one PostgreSQL table between a galleta Manager on
// this store and an Express-style app on connect-pg-simple 10.0.0 with
// express-session 1.19.0 and pg 8.23.1, as pinned in
// internal/nodecheck/package-lock.json, over real HTTP with one
// connect.sid cookie: each side reads and changes what the other wrote,
// a destroy on either side ends the session on both, and they agree on
// its expiry, with the connections' TimeZone UTC (the server's) and
// America/Sao_Paulo (set on both sides' connections).
//
// connect-pg-simple's expiry (index.js, #getExpireTime): ceil(cookie.expires
// / 1000) seconds when the cookie has expires, else ceil(now/1000 + ttl),
// written with to_timestamp($n) into the timestamp column; get keeps a row
// while expire >= to_timestamp(ceil(now/1000)); touch sets expire the same
// way. galleta writes its Expires to the millisecond. So the expire column
// after either side's write holds the same local time in the connections'
// zone, to within Node's rounding up to a second and the requests'
// latency; and at that expiry minus 3 seconds both sides, asked at that
// instant (Node's Date.now moved by server.js's /clock, galleta's clock by
// the test), find the session, and at plus 3 seconds neither does.
func TestNodeCompat(t *testing.T) {
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
	for _, tz := range []string{"", "America/Sao_Paulo"} {
		loc := time.UTC // the server's TimeZone (Etc/UTC on the test machine)
		if tz != "" {
			var err error
			if loc, err = time.LoadLocation(tz); err != nil {
				t.Fatal(err)
			}
		}
		zone := tz
		if zone == "" {
			zone = "ServerTimeZone"
		}
		t.Run(zone, func(t *testing.T) {
			if tz == "" {
				var server string
				testpg.QueryRow(t, "SELECT current_setting('TimeZone')", nil, &server)
				if l, err := time.LoadLocation(server); err != nil || time.Date(2030, 1, 1, 0, 0, 0, 0, l).UTC().Hour() != 0 {
					t.Skipf("the server's TimeZone is %s; this case expects a UTC server", server)
				}
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) { nodeCompat(t, tz, loc, tc.node, tc.goOpts, tc.window, secret) })
			}
		})
	}
}

func nodeCompat(t *testing.T, tz string, loc *time.Location, nodeCfg nodecheck.Config, goOpts galleta.Options, window time.Duration, secret string) {
	cfg := testpg.Config(t)
	if tz != "" {
		cfg.ConnConfig.RuntimeParams["timezone"] = tz
	}
	clock := &offsetClock{}
	schema := testpg.Schema(t)
	st, _ := open(t, cfg, pgstore.Options{Schema: schema, Now: clock.Now})
	nodeCfg.URL, nodeCfg.Schema, nodeCfg.Secret, nodeCfg.TimeZone = testpg.URL(), schema, secret, tz
	node := nodecheck.Start(t, "pg", nodeCfg)
	goOpts.Now = clock.Now
	app := nodecheck.StartGo(t, st, secret, goOpts)
	const margin = 3 * time.Second

	// written checks that the expire column, read as a local time in the
	// connections' zone, is about now + window: within Node's rounding up
	// and the latency. A store writing in another zone would be hours off.
	written := func(t *testing.T, who, id string, before time.Time) time.Time {
		t.Helper()
		raw, at := rawExpire(t, st, id, loc)
		lo, hi := before.Add(window-time.Second), time.Now().Add(window+time.Second)
		if at.Before(lo) || at.After(hi) {
			t.Errorf("%s's write left expire %s, which in %s is %v; want between %v and %v (now + %v)", who, raw, loc, at, lo, hi, window)
		}
		return at
	}
	// agree asks both sides, at E-margin and E+margin, whether the session
	// is live, E being the expiry in the table now. Dead first: those
	// requests write nothing. Live last, Node's after Go's, with the
	// expire Go's request moved put back.
	agree := func(t *testing.T, c, id string) {
		t.Helper()
		raw, _ := rawExpire(t, st, id, loc)
		rec, err := st.Get(t.Context(), id)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		e := rec.Expires
		clock.Set(time.Until(e.Add(margin)))
		if g := app.Do(t, "GET", "/session", c); g.ID == id || len(g.Values()) != 0 {
			t.Errorf("Go at expiry %v + %v still has the session: id %s %s", e, margin, g.ID, g.Session)
		}
		node.SetClock(t, time.Until(e.Add(margin)))
		if r := node.Do(t, "GET", "/session", c); r.ID == id || r.Values()["user"] != nil {
			t.Errorf("Node at expiry %v + %v still has the session: id %s %s", e, margin, r.ID, r.Session)
		}
		clock.Set(time.Until(e.Add(-margin)))
		if g := app.Do(t, "GET", "/session", c); g.ID != id || g.Values()["user"] == nil {
			t.Errorf("Go at expiry %v - %v lost the session: id %s %s", e, margin, g.ID, g.Session)
		}
		testpg.Exec(t, "UPDATE "+st.Table()+" SET expire = $2::timestamp WHERE sid = $1", id, raw)
		node.SetClock(t, time.Until(e.Add(-margin)))
		if r := node.Do(t, "GET", "/session", c); r.ID != id || r.Values()["user"] == nil {
			t.Errorf("Node at expiry %v - %v lost the session: id %s %s", e, margin, r.ID, r.Session)
		}
		clock.Set(0)
		node.SetClock(t, 0)
	}

	t.Run("NodeToGo", func(t *testing.T) {
		first := time.Now()
		before := first
		r := node.Do(t, "POST", "/set?user=%22ann%22&n=1", "")
		c := nodecheck.CookiePair(t, r.SetCookie)
		nodeExp := written(t, "Node", r.ID, before)

		g := app.Do(t, "GET", "/session", c)
		if g.ID != r.ID || g.Values()["user"] != "ann" || g.Values()["n"] != 1.0 {
			t.Fatalf("Go read Node's session as id %s %s, want id %s with user ann, n 1", g.ID, g.Session, r.ID)
		}
		before = time.Now()
		g = app.Do(t, "POST", "/incr?k=n", c)
		if g.Values()["n"] != 2.0 {
			t.Fatalf("Go Incr on Node's session: %s, want n 2", g.Session)
		}
		goExp := written(t, "Go", r.ID, before)
		if d, tol := goExp.Sub(nodeExp), writesTolerance(first); d < -tol || d > tol {
			t.Errorf("expire after Go's write %v, after Node's %v: %v apart, want within %v", goExp, nodeExp, d, tol)
		}
		back := node.Do(t, "GET", "/session", c)
		if back.ID != r.ID || back.Values()["n"] != 2.0 || back.Values()["user"] != "ann" {
			t.Fatalf("Node read Go's change as id %s %s, want id %s with n 2 and user ann", back.ID, back.Session, r.ID)
		}
		if _, ok := back.Values()["__galleta"]; !ok {
			t.Errorf("Node's session lost galleta's __galleta bookkeeping: %s", back.Session)
		}
		agree(t, c, r.ID)
	})

	t.Run("GoToNode", func(t *testing.T) {
		first := time.Now()
		before := first
		g := app.Do(t, "POST", "/set?user=%22bob%22", "")
		c := nodecheck.CookiePair(t, g.SetCookie)
		goExp := written(t, "Go", g.ID, before)

		r := node.Do(t, "GET", "/session", c)
		if r.ID != g.ID || r.Values()["user"] != "bob" {
			t.Fatalf("Node read Go's session as id %s %s, want id %s with user bob", r.ID, r.Session, g.ID)
		}
		before = time.Now()
		node.Do(t, "POST", "/set?cart=%5B1%2C2%5D", c)
		nodeExp := written(t, "Node", g.ID, before)
		if d, tol := goExp.Sub(nodeExp), writesTolerance(first); d < -tol || d > tol {
			t.Errorf("expire after Go's write %v, after Node's %v: %v apart, want within %v", goExp, nodeExp, d, tol)
		}
		back := app.Do(t, "GET", "/session", c)
		if back.ID != g.ID || back.Values()["user"] != "bob" || len(back.Values()["cart"].([]any)) != 2 {
			t.Fatalf("Go read Node's change as id %s %s, want id %s with user bob and cart [1,2]", back.ID, back.Session, g.ID)
		}
		agree(t, c, g.ID)

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
		var n int
		testpg.QueryRow(t, "SELECT count(*) FROM "+st.Table()+" WHERE sid = $1", []any{r.ID}, &n)
		if n != 0 {
			t.Errorf("the row is still in the table after Go's Destroy")
		}
		if after := node.Do(t, "GET", "/session", c); after.ID == r.ID {
			t.Errorf("Node after Go's destroy still has session %s: %s", r.ID, after.Session)
		}
	})
}

// The TimeZone rule, shown with Node: Node's connections in
// America/Sao_Paulo (UTC-3), galleta's in UTC. Node writes its expiry as
// Sao Paulo local time; galleta reads that local time as UTC, three hours
// earlier, so a 90-second session Node just wrote is already over for
// galleta. Both sides must use one TimeZone.
func TestNodeMismatchedTimeZone(t *testing.T) {
	const secret = "keyboard cat"
	schema := testpg.Schema(t)
	st, _ := open(t, nil, pgstore.Options{Schema: schema})
	node := nodecheck.Start(t, "pg", nodecheck.Config{URL: testpg.URL(), Schema: schema, Secret: secret, MaxAge: 90_000, TimeZone: "America/Sao_Paulo"})
	app := nodecheck.StartGo(t, st, secret, galleta.Options{Cookie: galleta.CookieOptions{MaxAge: 90 * time.Second}})
	r := node.Do(t, "POST", "/set?user=%22ann%22", "")
	c := nodecheck.CookiePair(t, r.SetCookie)
	if g := app.Do(t, "GET", "/session", c); g.ID == r.ID {
		t.Errorf("galleta on UTC connections read a session Node wrote on Sao Paulo connections as live (%s); expected it 3 h in the past", g.Session)
	}
	if back := node.Do(t, "GET", "/session", c); back.ID != r.ID {
		t.Errorf("Node lost its own session")
	}
}

// writesTolerance is how far apart the expiries of two writes of one
// session, the first started at first, may be: connect-pg-simple rounds its
// expiry up to a whole second (to_timestamp(ceil(ms/1000))) where galleta
// keeps milliseconds, and the second write came later by up to the time
// elapsed since the first began.
func writesTolerance(first time.Time) time.Duration {
	return time.Second + time.Since(first)
}
