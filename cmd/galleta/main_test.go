package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/filestore"
	"github.com/galleta-go/galleta/memstore"
	"github.com/galleta-go/galleta/store"
)

// testApp starts the app on a test server with the file store in a temp
// directory.
func testApp(t *testing.T, storeURL string, admin string) (*httptest.Server, *app, string) {
	t.Helper()
	dir := t.TempDir()
	if storeURL == "" {
		storeURL = "file:" + filepath.Join(dir, "sessions")
	}
	spec, err := parseStore(storeURL)
	if err != nil {
		t.Fatal(err)
	}
	c := testConfig(admin)
	c.store = spec
	a, err := newApp(c, testSecret, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.handler())
	t.Cleanup(func() { srv.Close(); a.close() })
	return srv, a, dir
}

const testSecret = "0123456789abcdef0123456789abcdef-test"

func testConfig(admin string) serveConfig {
	return serveConfig{store: storeSpec{kind: "memory"}, idle: time.Hour, absolute: 12 * time.Hour, cookieName: "sid", adminPassword: admin, logFormat: "text"}
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func client(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func call(t *testing.T, c *http.Client, method, u, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestJSONAPI(t *testing.T) {
	srv, _, dir := testApp(t, "", "")
	c := client(t)
	if code, me := call(t, c, "GET", srv.URL+"/api/me", ""); code != 200 || me["user"] != nil || me["visits"] != float64(0) {
		t.Fatalf("anonymous /api/me: %d %v", code, me)
	}
	if code, m := call(t, c, "POST", srv.URL+"/api/login", `{"user":"ann"}`); code != 200 || m["user"] != "ann" {
		t.Fatalf("login: %d %v", code, m)
	}
	// Each answer carries the count stored by its own request: 200
	// concurrent calls see 1..200, each once.
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[int]int{}
	for range 200 {
		wg.Go(func() {
			code, m := call(t, c, "POST", srv.URL+"/api/visits", "")
			if code != 200 {
				t.Errorf("visits: %d", code)
				return
			}
			n, _ := m["visits"].(float64)
			mu.Lock()
			seen[int(n)]++
			mu.Unlock()
		})
	}
	wg.Wait()
	for i := 1; i <= 200; i++ {
		if seen[i] != 1 {
			t.Errorf("%d of the 200 answers carry visits=%d, want 1 (%d distinct values)", seen[i], i, len(seen))
		}
	}
	code, me := call(t, c, "GET", srv.URL+"/api/me", "")
	if code != 200 || me["user"] != "ann" || me["visits"] != float64(200) {
		t.Fatalf("after 200 concurrent visits: %d %v", code, me)
	}
	for _, k := range []string{"created", "expires"} {
		if _, err := time.Parse(time.RFC3339, me[k].(string)); err != nil {
			t.Errorf("%s = %v: %v", k, me[k], err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "sessions", "*.json"))
	if len(files) != 1 {
		t.Fatalf("%d session files, want 1", len(files))
	}
	if code, _ := call(t, c, "POST", srv.URL+"/api/logout", ""); code != 200 {
		t.Fatalf("logout: %d", code)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "sessions", "*.json")); len(files) != 0 {
		t.Fatalf("session file left after logout: %v", files)
	}
	u, _ := url.Parse(srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "sid" {
			t.Fatal("cookie kept after logout")
		}
	}
	// Bad inputs.
	for body, want := range map[string]int{
		``:            400,
		`{"user":""}`: 400,
		`{"user":"` + strings.Repeat("a", 65) + `"}`:    413,
		`{"user":"` + strings.Repeat("a", 20000) + `"}`: 413,
		`not json`: 400,
	} {
		if code, _ := call(t, c, "POST", srv.URL+"/api/login", body); code != want {
			t.Errorf("login body %.30q: %d, want %d", body, code, want)
		}
	}
}

// The home page shows the count its own request stored, as the API does.
func TestHomeCounterIsTheStoredCount(t *testing.T) {
	srv, _, _ := testApp(t, "", "")
	c := client(t)
	call(t, c, "POST", srv.URL+"/api/login", `{"user":"ann"}`)
	re := regexp.MustCompile(`id="visits">(\d+)<`)
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	for range 50 {
		wg.Go(func() {
			r, err := c.Get(srv.URL + "/")
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			m := re.FindSubmatch(b)
			if r.StatusCode != 200 || m == nil {
				t.Errorf("home: %d", r.StatusCode)
				return
			}
			mu.Lock()
			seen[string(m[1])]++
			mu.Unlock()
		})
	}
	wg.Wait()
	for i := 1; i <= 50; i++ {
		if seen[fmt.Sprint(i)] != 1 {
			t.Errorf("%d home pages show %d visits, want 1 (%d distinct values)", seen[fmt.Sprint(i)], i, len(seen))
		}
	}
}

func TestForeignCookieIsAFreshSession(t *testing.T) {
	srv, _, _ := testApp(t, "", "")
	for _, ck := range []string{
		"sid=s%3Aforged.sig", "sid=" + strings.Repeat("A", 43), "sid=s%3A" + strings.Repeat("A", 43) + ".AAAA", "sid=", "sid=%ZZ; sid=x",
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/", nil)
		req.Header.Set("Cookie", ck)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `id="visits">1<`) {
			t.Errorf("cookie %q: %d", ck, resp.StatusCode)
		}
		if sc := resp.Header.Get("Set-Cookie"); !strings.HasPrefix(sc, "sid=s%3A") {
			t.Errorf("cookie %q: the new session's cookie is not sent: Set-Cookie %q", ck, sc)
		}
	}
}

func form(t *testing.T, c *http.Client, u string, vals url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(u, vals)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestPagesAndForms(t *testing.T) {
	srv, _, _ := testApp(t, "", "s3cret")
	c := client(t)
	resp, _ := form(t, c, srv.URL+"/login", url.Values{"user": {"bob"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login form: %d", resp.StatusCode)
	}
	for _, p := range []string{"/", "/profile", "/cookies", "/admin", "/login", "/static/style.css"} {
		r, err := c.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 200 {
			t.Errorf("%s: %d", p, r.StatusCode)
		}
		if p != "/static/style.css" && !strings.Contains(string(b), "bob") {
			t.Errorf("%s does not show the signed-in user", p)
		}
	}
	// Oversized form field: 413.
	if r, _ := form(t, c, srv.URL+"/login", url.Values{"user": {strings.Repeat("x", 70)}}); r.StatusCode != 413 {
		t.Errorf("70-byte user name: %d", r.StatusCode)
	}
	if r, _ := form(t, c, srv.URL+"/login", url.Values{"user": {strings.Repeat("x", 40000)}}); r.StatusCode != 413 {
		t.Errorf("40 KB form: %d", r.StatusCode)
	}
	// Cross-site form post refused.
	req, _ := http.NewRequest("POST", srv.URL+"/logout", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if r, _ := c.Do(req); r.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST: %d, want 403", r.StatusCode)
	}
	// Admin: wrong password 401, right one lists sessions.
	if r, b := form(t, c, srv.URL+"/admin/login", url.Values{"password": {"nope"}}); r.StatusCode != 401 || !strings.Contains(b, "Wrong password") {
		t.Errorf("wrong admin password: %d", r.StatusCode)
	}
	if r, _ := form(t, c, srv.URL+"/admin/login", url.Values{"password": {"s3cret"}}); r.StatusCode != http.StatusSeeOther {
		t.Errorf("admin login: %d", r.StatusCode)
	}
	r, err := c.Get(srv.URL + "/admin")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !strings.Contains(string(b), `id="session-count">1<`) || !regexp.MustCompile(`<td>…[A-Za-z0-9_-]{6} \(you\)</td>`).Match(b) {
		t.Fatalf("admin page lacks the session count or the id suffix of the admin's own row: %s", b)
	}
	// Revoke all sessions of bob (the admin's own session is bob's).
	other := client(t)
	call(t, other, "POST", srv.URL+"/api/login", `{"user":"bob"}`)
	form(t, c, srv.URL+"/admin/revoke-user", url.Values{"user": {"bob"}})
	if _, me := call(t, other, "GET", srv.URL+"/api/me", ""); me["user"] != nil {
		t.Fatalf("bob's other session survived revoke-user: %v", me)
	}
}

func TestCookieLab(t *testing.T) {
	srv, a, _ := testApp(t, "", "")
	c := client(t)
	form(t, c, srv.URL+"/cookies", url.Values{"name": {"lab"}, "value": {"hello"}, "kind": {"signed"}, "max_age": {"60"}})
	page := func() string {
		r, err := c.Get(srv.URL + "/cookies")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return string(b)
	}
	if p := page(); !strings.Contains(p, "signature valid") {
		t.Fatalf("signed cookie not shown valid")
	}
	u, _ := url.Parse(srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "lab" {
			v, _ := url.QueryUnescape(ck.Value)
			c.Jar.SetCookies(u, []*http.Cookie{{Name: "lab", Value: url.QueryEscape(strings.Replace(v, "hello", "hellx", 1)), Path: "/"}})
		}
	}
	if p := page(); !strings.Contains(p, "INVALID signature") {
		t.Fatalf("tampered cookie not shown invalid")
	}
	// A name the cookie package refuses is a clear error, not a dropped header.
	r, b := form(t, c, srv.URL+"/cookies", url.Values{"name": {"a;b"}, "value": {"x"}})
	if r.StatusCode != 400 || !strings.Contains(b, "invalid") {
		t.Fatalf("bad name: %d", r.StatusCode)
	}
	_ = a
}

// The lab's max age is 0 to 400 days (the longest browsers keep a cookie);
// anything else is a clear 400, never a wrapped duration.
func TestCookieLabMaxAge(t *testing.T) {
	srv, _, _ := testApp(t, "", "")
	c := client(t)
	for _, tc := range []struct {
		maxAge string
		code   int
		attr   string // in Set-Cookie when code is 303
	}{
		{"9223372037", 400, ""},
		{"34560001", 400, ""},
		{"-1", 400, ""},
		{"1e3", 400, ""},
		{"99999999999999999999999", 400, ""},
		{"34560000", 303, "Max-Age=34560000"},
		{"60", 303, "Max-Age=60"},
		{"0", 303, ""},
		{"", 303, ""},
	} {
		r, body := form(t, c, srv.URL+"/cookies", url.Values{"name": {"lab"}, "value": {"v"}, "max_age": {tc.maxAge}})
		sc := r.Header.Get("Set-Cookie")
		switch {
		case r.StatusCode != tc.code:
			t.Errorf("max age %q: %d, want %d (Set-Cookie %q)", tc.maxAge, r.StatusCode, tc.code, sc)
		case tc.code == 400 && (!strings.Contains(body, "0 to 34560000") || sc != ""):
			t.Errorf("max age %q: the 400 does not say the range, or sets a cookie (%q): %s", tc.maxAge, sc, body)
		case tc.code == 303 && tc.attr != "" && !strings.Contains(sc, "; "+tc.attr+";"):
			t.Errorf("max age %q: Set-Cookie %q lacks %s", tc.maxAge, sc, tc.attr)
		case tc.code == 303 && tc.attr == "" && (strings.Contains(sc, "Max-Age") || strings.Contains(sc, "Expires")):
			t.Errorf("max age %q: Set-Cookie %q is not a browser-session cookie", tc.maxAge, sc)
		}
	}
}

func TestHealthAndMetrics(t *testing.T) {
	srv, a, _ := testApp(t, "", "")
	a.waitLiveCount() // the count at start: 0, kept for liveEvery
	c := client(t)
	call(t, c, "POST", srv.URL+"/api/visits", "")
	call(t, c, "GET", srv.URL+"/api/me", "")
	r, _ := http.Get(srv.URL + "/healthz")
	if r.StatusCode != 200 {
		t.Fatalf("healthz %d", r.StatusCode)
	}
	r, _ = http.Get(srv.URL + "/metrics")
	b, _ := io.ReadAll(r.Body)
	for _, want := range []string{`galleta_http_requests_total{code="200"}`, `galleta_store_operations_total{op="save"} 1`, `galleta_store_operations_total{op="load"} 1`, "galleta_sessions_live 0\n", "galleta_sessions_live_age_seconds ", `galleta_store_latency_seconds_bucket{op="load",le="+Inf"} 1`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %s:\n%s", want, b)
		}
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// serveInProcess runs `galleta serve` as run() would and returns a stop
// func that cancels it (as SIGTERM does) and returns the exit code. The
// log may be read while the server writes to it.
func serveInProcess(t *testing.T, args ...string) (stop func() int, logs *logBuffer) {
	ctx, cancel := context.WithCancel(context.Background())
	logs = &logBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{"serve"}, args...), io.Discard, logs) }()
	return func() int {
		cancel()
		select {
		case c := <-done:
			return c
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not stop")
			return -1
		}
	}, logs
}

func waitUp(t *testing.T, addr string) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r, err := http.Get("http://" + addr + "/healthz"); err == nil {
			r.Body.Close()
			return
		}
		time.Sleep(10 * time.Millisecond) // waiting for the listener, not an assertion
	}
	t.Fatalf("server on %s did not come up", addr)
}

func TestServeRestartKeepsSessions(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	args := []string{"--addr", addr, "--store", "file:" + filepath.Join(dir, "sessions")}
	stop, logs := serveInProcess(t, args...)
	waitUp(t, addr)
	c := client(t)
	call(t, c, "POST", "http://"+addr+"/api/login", `{"user":"cy"}`)
	call(t, c, "POST", "http://"+addr+"/api/visits", "")
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d on shutdown; log:\n%s", code, logs)
	}
	first, _, _ := strings.Cut(logs.String(), "\n")
	if !strings.Contains(first, "sessions.secret") {
		t.Errorf("first log line does not say where the secret is: %s", first)
	}
	if fi, err := os.Stat(filepath.Join(dir, "sessions.secret")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v %v", fi, err)
	}
	stop, logs = serveInProcess(t, args...)
	defer stop()
	waitUp(t, addr)
	if _, me := call(t, c, "GET", "http://"+addr+"/api/me", ""); me["user"] != "cy" || me["visits"] != float64(1) {
		t.Fatalf("after restart: %v\n%s", me, logs)
	}
	if strings.Contains(logs.String(), "created a new cookie secret") {
		t.Fatal("restart made a new secret")
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		for _, ck := range c.Jar.Cookies(&url.URL{Scheme: "http", Host: addr}) {
			if strings.Contains(line, ck.Value) || strings.Contains(line, strings.TrimPrefix(ck.Value, "s%3A")[:20]) {
				t.Fatalf("log line holds the cookie: %s", line)
			}
		}
	}
}

func TestCommandLineErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{}, 2, "Usage"},
		{[]string{"bogus"}, 2, "unknown command"},
		{[]string{"serve", "--nope"}, 2, "flag provided but not defined"},
		{[]string{"serve", "--store", "ftp://x"}, 2, "unknown kind"},
		{[]string{"serve", "--store", "redis://127.0.0.1:notaport"}, 2, "invalid port"},
		{[]string{"serve", "--store", "postgres://localhost:notaport/db"}, 2, "invalid port"},
		{[]string{"serve", "--secure", "maybe"}, 2, "want auto, always or never"},
		{[]string{"serve", "--log-format", "xml"}, 2, "want text or json"},
		{[]string{"serve", "--addr", busy.Addr().String(), "--store", "file:" + filepath.Join(dir, "s")}, 1, "address already in use"},
		{[]string{"sessions"}, 2, "needs a command"},
		{[]string{"sessions", "bogus"}, 2, "unknown sessions command"},
		{[]string{"sessions", "list", "--nope"}, 2, "flag provided but not defined"},
		{[]string{"sessions", "list", "extra"}, 2, "takes 0 argument"},
		{[]string{"serve", "extra"}, 2, "takes no arguments"},
		{[]string{"migrate", "--nope"}, 2, "flag provided but not defined"},
		{[]string{"sessions", "show"}, 2, "takes 1 argument"},
		{[]string{"sessions", "show", "../etc/passwd", "--store", "file:" + dir}, 2, "not a session id"},
		{[]string{"sessions", "list", "--store", "memory"}, 2, "memory store"},
		{[]string{"migrate", "--from", "file:" + dir}, 2, "needs --from and --to"},
		{[]string{"serve", "--help"}, 0, "GALLETA_ADDR"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := run(context.Background(), c.args, &out, &errb)
		if code != c.code || !strings.Contains(out.String()+errb.String(), c.want) {
			t.Errorf("%v: exit %d, want %d; output %q lacks %q", c.args, code, c.code, out.String()+errb.String(), c.want)
		}
		// A usage error is one line, with where to find help (no arguments
		// at all print the overview instead).
		if code == 2 && len(c.args) > 0 && (out.Len() > 0 || strings.Count(errb.String(), "\n") != 1 || !strings.Contains(errb.String(), "; see galleta ") || !strings.HasSuffix(errb.String(), " --help\n")) {
			t.Errorf("%v: want one line on stderr ending in \"; see galleta ... --help\"; stdout %q, stderr %q", c.args, out.String(), errb.String())
		}
	}
	// --help prints the usage and every flag on stdout, and exits 0.
	for _, args := range [][]string{
		{"--help"}, {"help"},
		{"serve", "--help"}, {"serve", "-h"},
		{"sessions", "--help"}, {"sessions", "help"}, {"sessions", "list", "--help"}, {"sessions", "show", "-h"},
		{"migrate", "--help"},
	} {
		code, out, errs := sh(args...)
		flags := map[string][]string{"serve": {"-addr", "-admin-password", "-store"}, "sessions": {"-store", "-idle", "-json"}, "migrate": {"-from", "-to", "-idle"}}[args[0]]
		if code != 0 || errs != "" || !strings.Contains(out, "Usage") || strings.HasSuffix(out, "Flags:\n") {
			t.Errorf("%v: exit %d, stderr %q, stdout:\n%s", args, code, errs, out)
		}
		for _, f := range flags {
			if !regexp.MustCompile(`(?m)^  ` + f + `\b`).MatchString(out) {
				t.Errorf("%v: the help does not list %s:\n%s", args, f, out)
			}
		}
	}
	// Environment variables mirror flags, and a bad value is a usage error.
	t.Setenv("GALLETA_IDLE", "soon")
	var errb bytes.Buffer
	if code := run(context.Background(), []string{"serve"}, io.Discard, &errb); code != 2 || !strings.Contains(errb.String(), "GALLETA_IDLE") {
		t.Errorf("bad GALLETA_IDLE: %d %s", code, errb.String())
	}
}

func TestSessionsAndMigrate(t *testing.T) {
	dir := t.TempDir()
	from := "file:" + filepath.Join(dir, "a")
	srv, a, _ := testApp(t, from, "")
	var cookies []*http.Client
	for _, u := range []string{"ann", "ann", "bob"} {
		c := client(t)
		call(t, c, "POST", srv.URL+"/api/login", fmt.Sprintf(`{"user":%q}`, u))
		cookies = append(cookies, c)
	}
	sh := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := sh("sessions", "count", "--store", from); code != 0 || strings.TrimSpace(out) != "3" {
		t.Fatalf("count: %d %q", code, out)
	}
	code, out := sh("sessions", "list", "--store", from, "--json")
	var list []sessionInfo
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 3 {
		t.Fatalf("list --json: %d %s", code, out)
	}
	if code, out := sh("sessions", "list", "--store", from); code != 0 || !strings.Contains(out, "bob") || strings.Contains(out, list[0].ID) {
		t.Fatalf("list table: %d %s", code, out)
	}
	if code, out := sh("sessions", "show", list[0].ID, "--store", from); code != 0 || !strings.Contains(out, `"cookie"`) {
		t.Fatalf("show: %d %s", code, out)
	}
	// migrate twice: harmless, counts match.
	to := "file:" + filepath.Join(dir, "b")
	for i := range 2 {
		code, out := sh("migrate", "--from", from, "--to", to)
		if code != 0 || !strings.Contains(out, "copied 3 live session(s)") || !strings.Contains(out, "now holds 3 live") {
			t.Fatalf("migrate run %d: %d %s", i, code, out)
		}
	}
	if code, out := sh("sessions", "revoke-user", "ann", "--store", from); code != 0 || !strings.Contains(out, "revoked 2") {
		t.Fatalf("revoke-user: %d %s", code, out)
	}
	if _, me := call(t, cookies[2], "GET", srv.URL+"/api/me", ""); me["user"] != "bob" {
		t.Fatalf("bob was revoked too: %v", me)
	}
	if _, me := call(t, cookies[0], "GET", srv.URL+"/api/me", ""); me["user"] != nil {
		t.Fatalf("ann's session survived: %v", me)
	}
	var bob string
	for _, s := range list {
		if s.User == "bob" {
			bob = s.ID
		}
	}
	if code, _ := sh("sessions", "delete", bob, "--store", from); code != 0 {
		t.Fatal("delete failed")
	}
	if code, out := sh("sessions", "count", "--store", from); code != 0 || strings.TrimSpace(out) != "0" {
		t.Fatalf("count after deletes: %q", out)
	}
	if code, out := sh("sessions", "gc", "--store", from); code != 0 || !strings.Contains(out, "deleted 0") {
		t.Fatalf("gc: %d %s", code, out)
	}
	_ = a
	_ = galleta.ErrNoSession
}

// putSession writes a session record straight into a file store, as
// another process (Node included) could.
func putSession(t *testing.T, dir, id, data string) {
	t.Helper()
	st, err := filestore.New(filestore.Options{Dir: dir, ReapInterval: -1, Logger: discardLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Set(context.Background(), id, store.Record{Data: []byte(data), Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

const cookieJSON = `{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"}`

// sh runs the program in-process and returns its exit code, stdout and
// stderr.
func sh(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// A random session id starts with '-' once in 64: it is an argument, not
// an unknown flag, wherever it stands.
func TestSessionIDStartingWithDash(t *testing.T) {
	dir := t.TempDir()
	id := "-YdYbd" + strings.Repeat("x", 37)
	putSession(t, dir, id, `{"cookie":`+cookieJSON+`,"user":"dee"}`)
	st := "file:" + dir
	for _, args := range [][]string{
		{"sessions", "show", id, "--store", st},
		{"sessions", "show", "--store", st, id},
		{"sessions", "show", "--store=" + st, id, "--json"},
		{"sessions", "show", "--store", st, "--", id},
	} {
		if code, out, errs := sh(args...); code != 0 || !strings.Contains(out, `"dee"`) {
			t.Errorf("%q: exit %d\n%s%s", args, code, out, errs)
		}
	}
	// Short unknown flags and ids too short to be a session's are still flags.
	for _, args := range [][]string{
		{"sessions", "show", "-nope", "--store", st},
		{"sessions", "show", "-Ydy", "--store", st},
	} {
		if code, _, errs := sh(args...); code != 2 || !strings.Contains(errs, "flag provided but not defined") {
			t.Errorf("%q: exit %d, %s", args, code, errs)
		}
	}
	if code, out, errs := sh("sessions", "delete", id, "--store", st); code != 0 {
		t.Fatalf("delete: %d %s%s", code, out, errs)
	}
	if code, out, _ := sh("sessions", "count", "--store", st); code != 0 || strings.TrimSpace(out) != "0" {
		t.Fatalf("after delete: %d %s", code, out)
	}
}

// An empty or blank user name names nobody: it must not revoke every
// anonymous session.
func TestRevokeUserNeedsAName(t *testing.T) {
	dir := t.TempDir()
	st := "file:" + filepath.Join(dir, "s")
	srv, _, _ := testApp(t, st, "pw")
	anon := client(t)
	call(t, anon, "POST", srv.URL+"/api/visits", "") // an anonymous stored session
	for _, name := range []string{"", "  ", "\t"} {
		code, out, errs := sh("sessions", "revoke-user", name, "--store", st)
		if code != 2 || !strings.Contains(errs, "user name") || strings.Contains(errs, "\n\n") {
			t.Errorf("revoke-user %q: exit %d, want 2 and a usage error naming the user name\n%s%s", name, code, out, errs)
		}
	}
	admin := client(t)
	form(t, admin, srv.URL+"/admin/login", url.Values{"password": {"pw"}})
	for _, name := range []string{"", "   "} {
		r, body := form(t, admin, srv.URL+"/admin/revoke-user", url.Values{"user": {name}})
		if r.StatusCode != 400 || !strings.Contains(body, "Enter the user name") {
			t.Errorf("admin revoke-user %q: %d, want 400 with a message", name, r.StatusCode)
		}
	}
	if code, out, _ := sh("sessions", "count", "--store", st); code != 0 || strings.TrimSpace(out) != "2" {
		t.Fatalf("sessions left: %q, want 2 (the anonymous one and the admin's)", out)
	}
}

// testAppOn starts the app on a store the test made (a fake, usually), with
// the app's clock (nil: time.Now) and log given by the test. The app closes
// the store.
func testAppOn(t *testing.T, st store.Store, now func() time.Time, admin string, log *slog.Logger) (*httptest.Server, *app) {
	t.Helper()
	closeStore := func() error { return nil }
	if c, ok := st.(interface{ Close() error }); ok {
		closeStore = c.Close
	}
	if now == nil {
		now = time.Now
	}
	a, err := buildApp(testConfig(admin), testSecret, log, st, closeStore, now)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.handler())
	t.Cleanup(func() { srv.Close(); a.close() })
	return srv, a
}

func newMemStore() *memstore.Store { return memstore.New(memstore.Options{SweepInterval: -1}) }

// logBuffer is a log that tests read back.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func slogJSON(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }

func readAll(t *testing.T, r *http.Response) string {
	t.Helper()
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Commands that act on an existing store never create one: a typo in
// --store is an error, not an empty store. Reading commands write nothing
// at all.
func TestCommandsDoNotCreateStores(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "typo")
	id := strings.Repeat("A", 43)
	for _, args := range [][]string{
		{"sessions", "list"}, {"sessions", "list", "--json"}, {"sessions", "show", id}, {"sessions", "count"},
		{"sessions", "delete", id}, {"sessions", "revoke-user", "ann"}, {"sessions", "gc"},
	} {
		code, out, errs := sh(append(args, "--store", "file:"+missing)...)
		if code != 1 || !strings.Contains(errs, missing) || !strings.Contains(errs, "nothing was created") {
			t.Errorf("%v on a missing directory: exit %d, want 1 and an error naming it\n%s%s", args, code, out, errs)
		}
		if _, err := os.Stat(missing); err == nil {
			t.Fatalf("%v created %s", args, missing)
		}
	}
	code, out, errs := sh("migrate", "--from", "file:"+missing, "--to", "file:"+filepath.Join(dir, "new"))
	if code != 1 || !strings.Contains(errs, "nothing was created") {
		t.Errorf("migrate from a missing directory: exit %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatalf("migrate --from created %s", missing)
	}
	// Reading commands leave an existing store as it is (no lock directory,
	// no probe file).
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o700)
	for _, args := range [][]string{{"sessions", "list"}, {"sessions", "show", id}, {"sessions", "count"}} {
		sh(append(args, "--store", "file:"+empty)...)
		if entries, _ := os.ReadDir(empty); len(entries) != 0 {
			t.Fatalf("%v wrote into the store: %v", args, entries)
		}
	}
	code, out, errs = sh("migrate", "--from", "file:"+empty, "--to", "file:"+filepath.Join(dir, "new"))
	if entries, _ := os.ReadDir(empty); code != 0 || len(entries) != 0 {
		t.Fatalf("migrate: exit %d, and it wrote into --from: %v\n%s%s", code, entries, out, errs)
	}
	// migrate --to may create its store.
	if _, err := os.Stat(filepath.Join(dir, "new")); err != nil {
		t.Fatalf("migrate did not create --to: %v", err)
	}
}

// With no admin password the admin page says how to turn it on, and shows
// no password form that could never work.
func TestAdminPageOff(t *testing.T) {
	srv, _, _ := testApp(t, "", "")
	c := client(t)
	r, err := c.Get(srv.URL + "/admin")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, r)
	if r.StatusCode != 403 || !strings.Contains(body, "--admin-password") || strings.Contains(body, `name="password"`) {
		t.Fatalf("admin off: %d, want 403, the --admin-password hint and no password form:\n%s", r.StatusCode, body)
	}
	r2, body := form(t, c, srv.URL+"/admin/login", url.Values{"password": {"x"}})
	if r2.StatusCode != 403 || !strings.Contains(body, "--admin-password") || strings.Contains(body, `name="password"`) {
		t.Fatalf("admin sign-in while off: %d:\n%s", r2.StatusCode, body)
	}
}

// The lab shows a tampered signed cookie decoded, as it shows valid ones.
func TestCookieLabShowsTamperedDecoded(t *testing.T) {
	srv, _, _ := testApp(t, "", "")
	c := client(t)
	form(t, c, srv.URL+"/cookies", url.Values{"name": {"lab"}, "value": {"hello wörld/1"}, "kind": {"signed"}})
	u, _ := url.Parse(srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "lab" {
			ck.Value = strings.Replace(ck.Value, "hello", "hellx", 1)
			c.Jar.SetCookies(u, []*http.Cookie{{Name: "lab", Value: ck.Value, Path: "/"}})
		}
	}
	r, err := c.Get(srv.URL + "/cookies")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, r)
	if !strings.Contains(body, "INVALID signature") || !strings.Contains(body, "<code>s:hellx wörld/1.") {
		t.Fatalf("the tampered cookie is not shown decoded:\n%s", body)
	}
}

func TestServeHelpWording(t *testing.T) {
	_, out, _ := sh("serve", "--help")
	if !strings.Contains(out, "this long after creation") || strings.Contains(out, "sign-in") {
		t.Fatalf("--absolute's help should say the timeout counts from creation:\n%s", out)
	}
}

// Every store is offered everywhere a store is named.
func TestStoresAdvertised(t *testing.T) {
	_, top, _ := sh("--help")
	_, serve, _ := sh("serve", "--help")
	_, sessions, _ := sh("sessions", "--help")
	_, migrate, _ := sh("migrate", "--help")
	for name, out := range map[string]string{"galleta --help": top, "serve --help": serve, "sessions --help": sessions, "migrate --help": migrate} {
		for _, want := range []string{"file:DIR", "redis://HOST:PORT/DB", "postgres://USER:PASS@HOST:PORT/DB"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s does not offer %s:\n%s", name, want, out)
			}
		}
	}
	if _, _, errs := sh("serve", "--store", "ftp://x"); !strings.Contains(errs, "want memory, file:DIR, redis://HOST:PORT/DB") || !strings.Contains(errs, "postgres://") {
		t.Errorf("unknown store kind: %s", errs)
	}
}

// A memory store's server says once, in its own log, what memory means.
func TestMemoryStoreLogsItsLimits(t *testing.T) {
	var logs logBuffer
	c := testConfig("")
	a, err := newApp(c, testSecret, newLogger("text", &logs))
	if err != nil {
		t.Fatal(err)
	}
	a.close()
	if n := strings.Count(logs.String(), `msg="galleta: --store memory:`); n != 1 || !strings.Contains(logs.String(), "lost when the server exits") || !strings.Contains(logs.String(), "not shared with other processes") {
		t.Fatalf("%d lines about the memory store, want 1 saying sessions are lost at exit and not shared:\n%s", n, logs.String())
	}
}
