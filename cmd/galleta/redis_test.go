package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/galleta-go/galleta/internal/faultproxy"
	"github.com/galleta-go/galleta/internal/testredis"
	"github.com/galleta-go/galleta/redisstore"
	"github.com/galleta-go/galleta/store"
)

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; the fault tests cause many.
	redis.SetLogger(discardRedisLog{})
	code := m.Run()
	testredis.StopShared()
	removeBinary()
	os.Exit(code)
}

type discardRedisLog struct{}

func (discardRedisLog) Printf(context.Context, string, ...any) {}

// withPrefix adds galleta's prefix parameter to a Redis URL.
func withPrefix(u, prefix string) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + "prefix=" + url.QueryEscape(prefix)
}

// redisTarget is a Redis (one server or a cluster) under a key prefix of
// the test's own, which is deleted when the test ends.
type redisTarget struct {
	url    string // --store value, with ?prefix=
	client redis.UniversalClient
	prefix string
}

// redisServer is the machine's Redis ($REDIS_URL); the test skips (fails
// with CI=true) without one.
func redisServer(t *testing.T) redisTarget {
	t.Helper()
	c := testredis.Client(t)
	p := testredis.Prefix(t, c)
	return redisTarget{url: withPrefix(testredis.URL(), p), client: c, prefix: p}
}

// redisCluster is the package's three-primary cluster, started on first
// use and stopped by TestMain.
func redisCluster(t *testing.T) redisTarget {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a Redis Cluster: not in -short")
	}
	cl := testredis.SharedCluster(t)
	c := cl.Client()
	t.Cleanup(func() { c.Close() })
	p := testredis.Prefix(t, c)
	return redisTarget{url: withPrefix(cl.URL(), p), client: c, prefix: p}
}

func (r redisTarget) keys(t *testing.T) int {
	t.Helper()
	n, err := testredis.CountPrefix(context.Background(), r.client, r.prefix)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Every form redisstore.Open takes is a --store value; galleta's own
// parameter prefix is taken out before the URL reaches go-redis (which
// refuses parameters it does not know); a typo is a usage error, and a
// password is never shown.
func TestParseRedisStore(t *testing.T) {
	for _, c := range []struct {
		in, url, prefix, shown string
	}{
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0", "", "redis://127.0.0.1:6379/0"},
		{"redis://127.0.0.1:6379/0?prefix=app%3Asess%3A", "redis://127.0.0.1:6379/0", "app:sess:", "redis://127.0.0.1:6379/0?prefix=app%3Asess%3A"},
		{"redis://127.0.0.1:6379/2?prefix=a:&dial_timeout=3s", "redis://127.0.0.1:6379/2?dial_timeout=3s", "a:", "redis://127.0.0.1:6379/2?prefix=a:&dial_timeout=3s"},
		{"rediss://ann:pw@cache.example:6380/1", "rediss://ann:pw@cache.example:6380/1", "", "rediss://ann:xxxxx@cache.example:6380/1"},
		{"unix:///run/redis.sock?db=3&prefix=x:", "unix:///run/redis.sock?db=3", "x:", "unix:///run/redis.sock?db=3&prefix=x:"},
		{"redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7000/?prefix=s:", "redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7000/", "s:", "redis+cluster://:xxxxx@10.0.0.1:7000,10.0.0.2:7000/?prefix=s:"},
		{"redis://h:1?addr=h:2&addr=h:3", "redis://h:1?addr=h:2&addr=h:3", "", "redis://h:1?addr=h:2&addr=h:3"},
		{"redis://h:1?addr=h:2&prefix=p:", "redis://h:1?addr=h%3A2", "p:", "redis://h:1?addr=h:2&prefix=p:"},
	} {
		spec, err := parseStore(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if spec.kind != "redis" || spec.url != c.url || spec.prefix != c.prefix || spec.String() != c.shown {
			t.Errorf("%s: kind %s, url %q, prefix %q, shown %q; want url %q, prefix %q, shown %q", c.in, spec.kind, spec.url, spec.prefix, spec, c.url, c.prefix, c.shown)
		}
	}
	for in, want := range map[string]string{
		"redis://u:hunter2@127.0.0.1:6379/0?prefix=":      "prefix is empty",
		"redis://u:hunter2@127.0.0.1:notaport/0":          "invalid port",
		"redis://u:hunter2@127.0.0.1:6379/0?nope=1":       "unexpected option: nope",
		"redis+cluster://u:hunter2@/":                     "no seed nodes",
		"redis+cluster://u:hunter2@h:1,h:2/5":             "database 0",
		"redis://u:hunter2@127.0.0.1:6379/0?prefix=%zz":   "bad query",
		"postgres://u:hunter2@localhost:notaport/db":      "not shown: it holds a password",
		"ftp://u:hunter2@x":                               "unknown kind",
		"redis://u:hunter2@127.0.0.1:6379/0?prefix=a&x=y": "unexpected option: x",
	} {
		code, out, errs := sh("sessions", "list", "--store", in)
		if code != 2 || !strings.Contains(errs, want) || strings.Contains(out+errs, "hunter2") {
			t.Errorf("--store %s: exit %d, want 2 with %q and no password; stderr %q", in, code, want, errs)
		}
	}
}

// The admin commands on Redis, one server and a cluster: list, show,
// count, revoke-user, delete and gc find the server's sessions on every
// primary, and no output holds a whole session id where it should not.
func TestSessionsOnRedis(t *testing.T) {
	for name, target := range map[string]func(*testing.T) redisTarget{"server": redisServer, "cluster": redisCluster} {
		t.Run(name, func(t *testing.T) {
			r := target(t)
			srv, _, _ := testApp(t, r.url, "")
			var clients []*http.Client
			for _, u := range []string{"ann", "ann", "bob", "cy", "dee", "eve"} {
				c := client(t)
				if code, _ := call(t, c, "POST", srv.URL+"/api/login", fmt.Sprintf(`{"user":%q}`, u)); code != 200 {
					t.Fatalf("login %s: %d", u, code)
				}
				clients = append(clients, c)
			}
			if n := r.keys(t); n != 6 {
				t.Fatalf("%d keys under the prefix, want 6", n)
			}
			if code, out, errs := sh("sessions", "count", "--store", r.url); code != 0 || strings.TrimSpace(out) != "6" {
				t.Fatalf("count: %d %q %s", code, out, errs)
			}
			code, out, errs := sh("sessions", "list", "--store", r.url, "--json")
			var list []sessionInfo
			if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 6 {
				t.Fatalf("list --json: %d %s %s", code, out, errs)
			}
			byUser := map[string][]string{}
			for _, s := range list {
				byUser[s.User] = append(byUser[s.User], s.ID)
				if s.Created.IsZero() || s.Expires.Before(time.Now()) || s.Size == 0 {
					t.Errorf("list entry %+v lacks its bookkeeping", s)
				}
			}
			if len(byUser["ann"]) != 2 || len(byUser["bob"]) != 1 {
				t.Fatalf("list users: %v", byUser)
			}
			code, out, _ = sh("sessions", "list", "--store", r.url)
			if code != 0 || !strings.Contains(out, "bob") || !strings.Contains(out, "6 live session(s)") || strings.Contains(out, list[0].ID) {
				t.Fatalf("list table (it shows id suffixes, never ids): %d\n%s", code, out)
			}
			bob := byUser["bob"][0]
			if code, out, _ := sh("sessions", "show", bob, "--store", r.url); code != 0 || !strings.Contains(out, `"user": "bob"`) {
				t.Fatalf("show: %d %s", code, out)
			}
			if code, out, errs := sh("sessions", "revoke-user", "ann", "--store", r.url); code != 0 || !strings.Contains(out, "revoked 2 session(s) of ann") {
				t.Fatalf("revoke-user: %d %s%s", code, out, errs)
			}
			if _, me := call(t, clients[0], "GET", srv.URL+"/api/me", ""); me["user"] != nil {
				t.Fatalf("ann is still signed in after revoke-user: %v", me)
			}
			if _, me := call(t, clients[2], "GET", srv.URL+"/api/me", ""); me["user"] != "bob" {
				t.Fatalf("bob was signed out by revoking ann: %v", me)
			}
			if code, out, _ := sh("sessions", "delete", bob, "--store", r.url); code != 0 || strings.TrimSpace(out) != "deleted" {
				t.Fatalf("delete: %d %s", code, out)
			}
			if _, me := call(t, clients[2], "GET", srv.URL+"/api/me", ""); me["user"] != nil {
				t.Fatalf("bob is still signed in after delete: %v", me)
			}
			if code, out, _ := sh("sessions", "show", bob, "--store", r.url); code != 1 || strings.Contains(out, "bob") {
				t.Fatalf("show after delete: %d %s", code, out)
			}
			if n := r.keys(t); n != 3 {
				t.Fatalf("%d keys under the prefix after revoking 3 sessions, want 3", n)
			}
			code, out, _ = sh("sessions", "gc", "--store", r.url)
			if code != 0 || !strings.Contains(out, "deleted 0 expired session(s)") || !strings.Contains(out, "Redis deletes expired sessions by itself") {
				t.Fatalf("gc: %d %s", code, out)
			}
			if code, out, _ := sh("sessions", "count", "--store", r.url, "--json"); code != 0 || !strings.Contains(out, `"live": 3`) {
				t.Fatalf("count --json after gc: %d %s", code, out)
			}
		})
	}
}

// gc on Redis deletes what redisstore.Reap deletes: keys Redis still
// holds (it keeps each about a second past its session's end, the
// store's clock offset) whose session the store's clock finds over, and
// nothing live.
func TestSessionsGCOnRedis(t *testing.T) {
	r := redisServer(t)
	live := strings.Repeat("L", 43)
	st, err := redisstore.New(r.client, redisstore.Options{Prefix: r.prefix, Logger: discardLog()})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(`{"cookie":` + cookieJSON + `,"user":"ann"}`)
	if err := st.Set(context.Background(), live, store.Record{Data: data, Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// A key whose session ended but that Redis keeps for up to a second:
	// its Redis expiry is 900 ms ahead of Redis's clock, which is less
	// than the offset (about a second), so by the store's clock it is
	// over. gc must run within those 900 ms; on a machine too slow for
	// that, the round is tried again.
	for round := 0; ; round++ {
		ctx := context.Background()
		now, err := r.client.Time(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		dead := fmt.Sprintf("D%042d", round)
		start := time.Now()
		if err := r.client.Do(ctx, "SET", r.prefix+dead, data, "PXAT", now.Add(900*time.Millisecond).UnixMilli()).Err(); err != nil {
			t.Fatal(err)
		}
		code, out, errs := sh("sessions", "gc", "--store", r.url, "--json")
		if time.Since(start) > 700*time.Millisecond && round < 5 {
			continue // Redis may have expired the key itself meanwhile
		}
		if code != 0 || !strings.Contains(out, `"deleted": 1`) {
			t.Fatalf("gc with one session over and one live: %d %s%s", code, out, errs)
		}
		break
	}
	if n := r.keys(t); n != 1 {
		t.Fatalf("%d keys after gc, want the live one", n)
	}
	if _, err := st.Get(context.Background(), live); err != nil {
		t.Fatalf("the live session after gc: %v", err)
	}
}

// list, show, count and migrate --from write nothing to Redis: on a
// private server, the count of changes since start (INFO's
// rdb_changes_since_last_save, which every write raises, scripts'
// included) and every key's expiry are the same before and after.
func TestReadingCommandsDoNotWriteToRedis(t *testing.T) {
	srvR := testredis.StartServer(t)
	u := withPrefix("redis://"+srvR.Addr+"/0", "ro:")
	srv, _, _ := testApp(t, u, "")
	for _, user := range []string{"ann", "bob"} {
		c := client(t)
		call(t, c, "POST", srv.URL+"/api/login", fmt.Sprintf(`{"user":%q}`, user))
		call(t, c, "POST", srv.URL+"/api/visits", "")
	}
	direct := redis.NewClient(&redis.Options{Addr: srvR.Addr})
	defer direct.Close()
	ctx := context.Background()
	snapshot := func() (changes string, expiries map[string]int64) {
		info, err := direct.Info(ctx, "persistence").Result()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "rdb_changes_since_last_save:"); ok {
				changes = v
			}
		}
		expiries = map[string]int64{}
		keys, err := direct.Keys(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			expiries[k] = direct.PExpireTime(ctx, k).Val().Milliseconds()
		}
		return changes, expiries
	}
	changes, expiries := snapshot()
	if changes == "" || changes == "0" || len(expiries) != 2 {
		t.Fatalf("before: %q changes, keys %v", changes, expiries)
	}
	var id string
	for k := range expiries {
		id = strings.TrimPrefix(k, "ro:")
	}
	for _, args := range [][]string{
		{"sessions", "list", "--store", u},
		{"sessions", "list", "--json", "--store", u},
		{"sessions", "show", id, "--store", u},
		{"sessions", "count", "--store", u},
		{"migrate", "--from", u, "--to", "file:" + filepath.Join(t.TempDir(), "copy")},
	} {
		code, out, errs := sh(args...)
		if code != 0 {
			t.Fatalf("%v: %d %s%s", args, code, out, errs)
		}
		c, e := snapshot()
		if c != changes || fmt.Sprint(e) != fmt.Sprint(expiries) {
			t.Fatalf("%v wrote to Redis: changes %s -> %s, expiries %v -> %v", args, changes, c, expiries, e)
		}
	}
	if code, _, _ := sh("sessions", "show", strings.Repeat("N", 43), "--store", u); code != 1 {
		t.Fatalf("show of a missing id: exit %d", code)
	}
	if c, _ := snapshot(); c != changes {
		t.Fatalf("show of a missing id wrote to Redis: changes %s -> %s", changes, c)
	}
	// The detector sees a write: delete raises the count.
	if code, _, errs := sh("sessions", "delete", id, "--store", u); code != 0 {
		t.Fatalf("delete: %s", errs)
	}
	if c, e := snapshot(); c == changes || len(e) != 1 {
		t.Fatalf("after delete: changes %s -> %s, keys %v", changes, c, e)
	}
	// The reading commands get a store that refuses changes outright.
	spec, _ := parseStore(u)
	st, closeStore, err := openStore(spec, time.Hour, discardLog(), openReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	if err := st.Delete(ctx, strings.Repeat("Z", 43)); err != errReadOnly {
		t.Fatalf("Delete on a read-only store: %v", err)
	}
	if _, ok := st.(store.Updater); ok {
		t.Fatal("the read-only store offers Update")
	}
}

// A Redis password never reaches output, logs or errors: not from a
// command whose Redis does not answer, not from one with a wrong
// password, not from a server (which starts while Redis is down, says
// so on /healthz, and exits cleanly).
func TestRedisPasswordNeverPrinted(t *testing.T) {
	const pw = "s3cr3t-Pa55"
	srvR := testredis.StartServer(t)
	admin := redis.NewClient(&redis.Options{Addr: srvR.Addr})
	err := admin.ConfigSet(context.Background(), "requirepass", pw).Err()
	admin.Close()
	if err != nil {
		t.Fatal(err)
	}
	good := "redis://:" + pw + "@" + srvR.Addr + "/0?prefix=pw:"
	if code, out, errs := sh("sessions", "count", "--store", good); code != 0 || strings.TrimSpace(out) != "0" || strings.Contains(out+errs, pw) {
		t.Fatalf("count with the right password: %d %q %q", code, out, errs)
	}
	wrong := "redis://:not-" + pw + "@" + srvR.Addr + "/0"
	code, out, errs := sh("sessions", "list", "--store", wrong)
	if code != 1 || !strings.Contains(errs, "cannot use Redis at redis://:xxxxx@"+srvR.Addr) || strings.Contains(out+errs, pw) {
		t.Fatalf("list with a wrong password: %d %q %q", code, out, errs)
	}
	down := "redis://:" + pw + "@" + freeAddr(t) + "/0"
	code, out, errs = sh("migrate", "--from", "file:"+t.TempDir(), "--to", down)
	if code != 1 || !strings.Contains(errs, "check the URL") || strings.Contains(out+errs, pw) {
		t.Fatalf("migrate to a Redis that is down: %d %q %q", code, out, errs)
	}
	addr := freeAddr(t)
	stop, logs := serveInProcess(t, "--addr", addr, "--store", down, "--secret-file", filepath.Join(t.TempDir(), "s"))
	waitUp(t, addr)
	if code, body := healthz(t, "http://"+addr); code != 503 || strings.Contains(body, pw) {
		t.Errorf("healthz with Redis down: %d %q", code, body)
	}
	if code := stop(); code != 0 {
		t.Errorf("serve exited %d", code)
	}
	if l := logs.String(); strings.Contains(l, pw) || !strings.Contains(l, "redis://:xxxxx@") {
		t.Fatalf("the server's log shows the password, or not the store:\n%s", l)
	}
}

// redisID is the session id of a client's sid cookie for host.
func cookieID(t *testing.T, c *http.Client, rawURL string) string {
	t.Helper()
	u, _ := url.Parse(rawURL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name != "sid" {
			continue
		}
		v, err := url.QueryUnescape(ck.Value)
		if err != nil || !strings.HasPrefix(v, "s:") {
			t.Fatalf("cookie %q", ck.Value)
		}
		return v[2:strings.LastIndexByte(v, '.')]
	}
	t.Fatal("no sid cookie")
	return ""
}

// Users stay signed in across a migration from the file store to Redis and
// back: a cookie issued by a server on the file store works against a
// server on Redis after migrate (same secret file), and again against a
// server on a file store migrated back from Redis, with the counts made
// in between.
func TestMigrateFileToRedisAndBack(t *testing.T) {
	r := redisServer(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "galleta.secret")
	fileStore := "file:" + filepath.Join(dir, "sessions")
	c := client(t)
	serveOn := func(storeURL string, check func(base string)) {
		t.Helper()
		addr := freeAddr(t)
		stop, logs := serveInProcess(t, "--addr", addr, "--store", storeURL, "--secret-file", secret)
		waitUp(t, addr)
		check("http://" + addr)
		if code := stop(); code != 0 {
			t.Fatalf("serve on %s exited %d:\n%s", storeURL, code, logs)
		}
		if id := cookieID(t, c, "http://"+addr); strings.Contains(logs.String(), id) {
			t.Fatalf("the log of the server on %s holds the session id", storeURL)
		}
	}
	var id string
	serveOn(fileStore, func(base string) {
		call(t, c, "POST", base+"/api/login", `{"user":"ann"}`)
		for range 3 {
			call(t, c, "POST", base+"/api/visits", "")
		}
		id = cookieID(t, c, base)
	})
	code, out, errs := sh("migrate", "--from", fileStore, "--to", r.url)
	if code != 0 || !strings.Contains(out, "copied 1 live session(s)") || !strings.Contains(out, "now holds 1 live session(s)") {
		t.Fatalf("migrate to Redis: %d %s%s", code, out, errs)
	}
	serveOn(r.url, func(base string) {
		if code, me := call(t, c, "GET", base+"/api/me", ""); code != 200 || me["user"] != "ann" || me["visits"] != float64(3) {
			t.Fatalf("on Redis after migrate: %d %v", code, me)
		}
		if _, m := call(t, c, "POST", base+"/api/visits", ""); m["visits"] != float64(4) {
			t.Fatalf("a visit on Redis: %v", m)
		}
	})
	if got := cookieID(t, c, "http://127.0.0.1"); got != id {
		t.Fatal("the server on Redis issued a new session instead of using the migrated one")
	}
	back := "file:" + filepath.Join(dir, "back")
	code, out, errs = sh("migrate", "--from", r.url, "--to", back)
	if code != 0 || !strings.Contains(out, "copied 1 live session(s)") {
		t.Fatalf("migrate back: %d %s%s", code, out, errs)
	}
	serveOn(back, func(base string) {
		if code, me := call(t, c, "GET", base+"/api/me", ""); code != 200 || me["user"] != "ann" || me["visits"] != float64(4) {
			t.Fatalf("on the file store migrated back: %d %v", code, me)
		}
	})
	if got := cookieID(t, c, "http://127.0.0.1"); got != id {
		t.Fatal("the server on the migrated-back file store issued a new session")
	}
	// The expiry came along: the same instant in all three stores.
	exps := map[string]string{}
	for _, s := range []string{r.url, back} {
		_, out, _ := sh("sessions", "show", id, "--store", s, "--json")
		var v struct {
			Info sessionInfo `json:"info"`
		}
		json.Unmarshal([]byte(out), &v)
		exps[s] = v.Info.Expires.UTC().Format(time.RFC3339Nano)
	}
	if exps[r.url] != exps[back] || exps[r.url] == "" {
		t.Fatalf("expiry changed in migration: %v", exps)
	}
}

// waitHealth polls /healthz until it answers want, for at most limit, and
// returns how long that took. Each poll may itself take up to the check's
// 2-second bound while Redis is stalled.
func waitHealth(t *testing.T, base string, want int, limit time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		code, body := healthz(t, base)
		if code == want {
			if code == 503 && body != "unhealthy: the session store is not answering\n" {
				t.Errorf("%s: 503 body %q, want the fixed text", what, body)
			}
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: /healthz still %d after %v, want %d", what, code, time.Since(start).Round(time.Millisecond), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// /healthz on Redis behind a fault proxy: cut off (connections closed and
// refused), then stalled (accepted, nothing forwarded), it turns 503 with
// the fixed body; each time the proxy lets traffic through again it turns
// 200 within a bounded time (the 1-second result cache plus one check),
// with the same server, store and client, and the session kept counting.
func TestHealthzRedisFaults(t *testing.T) {
	r := redisServer(t)
	base, err := url.Parse(testredis.URL())
	if err != nil || base.Scheme == "unix" {
		t.Skipf("REDIS_URL %s is not a TCP URL a proxy can stand in front of", testredis.URL())
	}
	opt := r.client.(*redis.Client).Options()
	proxy, err := faultproxy.Start(opt.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	base.Host = proxy.Addr()
	var logs logBuffer
	spec, err := parseStore(withPrefix(base.String(), r.prefix))
	if err != nil {
		t.Fatal(err)
	}
	c := testConfig("")
	c.store = spec
	a, err := newApp(c, testSecret, slogText(&logs))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.handler())
	t.Cleanup(func() { srv.Close(); a.close() })

	waitHealth(t, srv.URL, 200, 3*time.Second, "at start")
	user := client(t)
	if code, _ := call(t, user, "POST", srv.URL+"/api/login", `{"user":"ann"}`); code != 200 {
		t.Fatalf("login: %d", code)
	}
	visits := 0
	for _, f := range []struct {
		mode      faultproxy.Mode
		unhealthy time.Duration // the longest /healthz may stay 200
	}{
		// A cached ok (1 s), then a check that fails (at once, or after
		// go-redis's retries), with a second of slack for a busy machine.
		{faultproxy.Cut, healthTTL + healthTimeout + time.Second},
		// A cached ok (1 s), then a check that times out (2 s).
		{faultproxy.Stall, healthTTL + healthTimeout + time.Second},
	} {
		proxy.Set(f.mode)
		took := waitHealth(t, srv.URL, 503, f.unhealthy, f.mode.String())
		if f.mode == faultproxy.Cut {
			resp, err := user.Post(srv.URL+"/api/visits", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || strings.Contains(body, proxy.Addr()) {
				t.Errorf("a visit with Redis cut off: %d %q, Retry-After %q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
			}
		}
		proxy.Set(faultproxy.Pass)
		// A cached failure (1 s from the end of its check), then a check
		// that passes; a check caught in the stall finishes once the
		// proxy forwards again.
		back := waitHealth(t, srv.URL, 200, healthTTL+1500*time.Millisecond, f.mode.String()+" ended")
		visits++
		if code, m := call(t, user, "POST", srv.URL+"/api/visits", ""); code != 200 || m["visits"] != float64(visits) {
			t.Fatalf("a visit after the %s ended: %d %v, want visits %d", f.mode, code, m, visits)
		}
		t.Logf("%s: 503 after %v, 200 again %v after the proxy passed", f.mode, took.Round(time.Millisecond), back.Round(time.Millisecond))
	}
	if !strings.Contains(logs.String(), "health check failed") {
		t.Errorf("the cause of the 503s is not in the log:\n%s", logs.String())
	}
}

// migrate refuses to copy a Redis store onto itself, however the prefix is
// spelled, and copies between two prefixes of one Redis.
func TestMigrateRedisOntoItself(t *testing.T) {
	for _, pair := range [][2]string{
		{"redis://127.0.0.1:1/0", "redis://127.0.0.1:1/0?prefix=sess:"},
		{"redis://127.0.0.1:1/0?prefix=a:", "redis://127.0.0.1:1/0?prefix=a%3A"},
	} {
		if code, _, errs := sh("migrate", "--from", pair[0], "--to", pair[1]); code != 2 || !strings.Contains(errs, "the same store") {
			t.Errorf("migrate %s -> %s: exit %d, %s", pair[0], pair[1], code, errs)
		}
	}
	from := redisServer(t)
	srv, _, _ := testApp(t, from.url, "")
	call(t, client(t), "POST", srv.URL+"/api/login", `{"user":"ann"}`)
	to := testredis.Prefix(t, from.client)
	if code, out, errs := sh("migrate", "--from", from.url, "--to", withPrefix(testredis.URL(), to)); code != 0 || !strings.Contains(out, "now holds 1 live session(s)") {
		t.Fatalf("migrate to another prefix: %d %s%s", code, out, errs)
	}
	if n, _ := testredis.CountPrefix(context.Background(), from.client, to); n != 1 {
		t.Fatalf("%d keys under the new prefix, want 1", n)
	}
}
