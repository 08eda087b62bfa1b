// Package e2e drives the galleta demo app (cmd/galleta serve) with a real
// headless Chromium. It is a separate module so that the main module keeps
// depending on the standard library only.
//
//	cd e2e && go test -count=1 -v ./...
//
// Needs Debian's chromium package (apt-get install chromium), or a browser
// named by $GALLETA_CHROMIUM. Screenshots go to $GALLETA_E2E_OUT, by default
// $TMPDIR/galleta-e2e.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

const adminPassword = "test-admin"

// chromiumPath finds the browser, or skips (fails on CI) when it is missing.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("GALLETA_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium not found: .ci/run installs Debian's chromium package")
		}
		t.Skipf("no Chromium at %s (%v): install it with `apt-get install chromium`, or name a Chromium/Chrome binary in $GALLETA_CHROMIUM", path, err)
	}
	return path
}

// browser is one chromedp tab plus the helpers the steps use.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string // http://127.0.0.1:PORT of the server this tab talks to
	out  string // screenshot folder
	shot *int   // screenshot counter, shared by every tab
}

// step runs actions with a per-step timeout so that a missing element fails
// fast with a message instead of waiting for the overall timeout.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// submit runs actions that trigger a navigation (a click on a submit
// button), waits for the resulting page to load, and returns its HTTP status.
func (b *browser) submit(what string, actions ...chromedp.Action[chromedp.Void]) int64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, actions...)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	if resp == nil {
		return 0
	}
	return resp.Status
}

// open navigates to path on the server and returns the HTTP status.
func (b *browser) open(path string) int64 {
	b.t.Helper()
	return b.submit("open "+path, chromedp.Navigate(b.base+path))
}

func (b *browser) reload() {
	b.t.Helper()
	b.do("reload", chromedp.Reload())
}

// eval evaluates a JavaScript expression into T.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// has reports whether an element matches the CSS selector right now.
func (b *browser) has(sel string) bool {
	b.t.Helper()
	return eval[bool](b, fmt.Sprintf("document.querySelector(%s) !== null", jsString(sel)))
}

// text returns the trimmed text of the element, failing when it is missing.
func (b *browser) text(sel string) string {
	b.t.Helper()
	v := eval[*string](b, fmt.Sprintf("(e => e === null ? null : e.textContent)(document.querySelector(%s))", jsString(sel)))
	if v == nil {
		b.t.Fatalf("no element %s on %s; page text:\n%s", sel, b.location(), b.pageText())
	}
	return strings.TrimSpace(*v)
}

func (b *browser) pageText() string {
	b.t.Helper()
	return eval[string](b, "document.body ? document.body.innerText : ''")
}

func (b *browser) location() string {
	b.t.Helper()
	return eval[string](b, "document.location.href")
}

// visits reads the home page's counter.
func (b *browser) visits() int {
	b.t.Helper()
	s := b.text("#visits")
	n, err := strconv.Atoi(s)
	if err != nil {
		b.t.Fatalf("#visits is %q, not a number", s)
	}
	return n
}

// screenshot saves a full-page PNG as NN-name.png in the output folder.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	*b.shot++
	file := filepath.Join(b.out, fmt.Sprintf("%02d-%s.png", *b.shot, name))
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Fatalf("write screenshot: %v", err)
	}
}

// cookies lists the browser's cookies for the server's URL, HttpOnly ones
// included.
func (b *browser) cookies() []*network.Cookie {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.base + "/"}})
	if err != nil {
		b.t.Fatalf("list cookies: %v", err)
	}
	return res.Cookies
}

func (b *browser) cookie(name string) *network.Cookie {
	b.t.Helper()
	for _, c := range b.cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// signIn signs in on /login and checks the home page greets the user.
func (b *browser) signIn(user string, shotName string) {
	b.t.Helper()
	b.open("/login")
	b.do("type the user name", chromedp.SendKeys(chromedp.ID("user"), user))
	if shotName != "" {
		b.screenshot(shotName)
	}
	if st := b.submit("click #signin", chromedp.Click(chromedp.ID("signin"))); st != 200 {
		b.t.Fatalf("sign in as %s: the page after the redirect answered %d, want 200", user, st)
	}
	if u, _ := url.Parse(b.location()); u == nil || u.Path != "/" {
		b.t.Fatalf("after sign-in the browser is on %s, want /", b.location())
	}
	if !b.has("#signed-in") {
		b.t.Fatalf("after sign-in there is no #signed-in; page:\n%s", b.pageText())
	}
	if got := b.text("#signed-in"); !strings.Contains(got, user) {
		b.t.Fatalf("#signed-in = %q, want it to name %q", got, user)
	}
}

// sessionID decodes the session id from a sid cookie value:
// encodeURIComponent("s:" + id + "." + signature).
func sessionID(t *testing.T, value string) string {
	t.Helper()
	raw, err := url.PathUnescape(value)
	if err != nil {
		t.Fatalf("sid cookie %q is not percent-encoded: %v", value, err)
	}
	dot := strings.LastIndex(raw, ".")
	if !strings.HasPrefix(raw, "s:") || dot < 2 {
		t.Fatalf("sid cookie decodes to %q, want s:<id>.<signature>", raw)
	}
	return raw[2:dot]
}

// encodeURIComponent escapes like JavaScript's encodeURIComponent, which is
// how the app encodes cookie values.
func encodeURIComponent(s string) string {
	const keep = "-_.!~*'()"
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(keep, c) >= 0 {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, "%%%02X", c)
		}
	}
	return sb.String()
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return strconv.Quote(s) // Go's quoting of ASCII is valid JavaScript
}

func countSessionFiles(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("GALLETA_E2E_OUT")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "galleta-e2e")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots: %s", dir)
	return dir
}

func TestBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	h := newHarness(t)
	tmp := t.TempDir()
	sessions := filepath.Join(tmp, "sessions")
	secret := filepath.Join(tmp, "sessions.secret")
	fileArgs := []string{"--store", "file:" + sessions, "--secret-file", secret, "--admin-password", adminPassword}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "chromium-profile")),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	defer cancelTab()
	// The first Run starts the browser; its context must live as long as it.
	if err := chromedp.Do(tabCtx); err != nil {
		t.Fatalf("start Chromium %s: %v", chromium, err)
	}

	shots := 0
	addr := freeAddr(t)
	b := &browser{t: t, ctx: tabCtx, base: "http://" + addr, out: screenshotDir(t), shot: &shots}
	stop := h.startServer(t, addr, fileArgs...)

	// 1. Home, anonymous: the counter starts at 1 and rises on reload.
	b.open("/")
	if !b.has("#signed-out") {
		t.Fatalf("step 1: fresh browser on / shows no #signed-out; page:\n%s", b.pageText())
	}
	if n := b.visits(); n != 1 {
		t.Fatalf("step 1: first visit: #visits = %d, want 1", n)
	}
	b.screenshot("home")
	b.reload()
	if n := b.visits(); n != 2 {
		t.Fatalf("step 1: after a reload #visits = %d, want 2", n)
	}

	// 2. Sign in; reloads keep counting.
	b.signIn("alice", "login")
	b.screenshot("signed-in")
	before := b.visits()
	b.reload()
	b.reload()
	after := b.visits()
	if after != before+2 {
		t.Fatalf("step 2: signed in, two reloads moved #visits from %d to %d, want %d", before, after, before+2)
	}
	if got := b.text("#signed-in"); !strings.Contains(got, "alice") {
		t.Fatalf("step 2: after reloads #signed-in = %q, want alice", got)
	}

	// 3. Profile shows when the session was created.
	b.open("/profile")
	created := b.text("#created")
	ct, err := time.Parse("2006-01-02 15:04:05 MST", created)
	if err != nil {
		t.Fatalf("step 3: /profile #created = %q, not a time: %v", created, err)
	}
	if d := time.Since(ct); d < -time.Minute || d > 5*time.Minute {
		t.Fatalf("step 3: /profile #created = %s, %v from now; want a moment ago", created, d)
	}
	if id := b.text("#session-id"); !strings.HasPrefix(id, "…") {
		t.Fatalf("step 3: /profile #session-id = %q, want the id's last characters", id)
	}
	b.screenshot("profile")

	// 4. Restart the file-store server on the same port, store and secret:
	// the browser is still signed in and the counter goes on.
	b.open("/")
	beforeRestart := b.visits()
	stop()
	waitPortFree(t, addr)
	stop = h.startServer(t, addr, fileArgs...)
	b.reload()
	if !b.has("#signed-in") {
		t.Fatalf("step 4: after restarting the file-store server the browser is signed out; page:\n%s", b.pageText())
	}
	if got := b.text("#signed-in"); !strings.Contains(got, "alice") {
		t.Fatalf("step 4: after the restart #signed-in = %q, want alice", got)
	}
	if n := b.visits(); n <= beforeRestart {
		t.Fatalf("step 4: after the restart #visits = %d, want more than %d (before the restart)", n, beforeRestart)
	}
	b.screenshot("file-store-after-restart")

	// 5. The same with --store memory, in a separate browser context (its own
	// cookie jar) that lives across that server's restart: signed out after
	// it, although the secret file is the same.
	func() {
		memSecret := filepath.Join(tmp, "memory.secret")
		memArgs := []string{"--store", "memory", "--secret-file", memSecret, "--admin-password", adminPassword}
		memAddr := freeAddr(t)
		memCtx, cancelMem := chromedp.NewContext(tabCtx, chromedp.WithNewBrowserContext())
		defer cancelMem()
		// Open the tab before the first navigation waits for a page load.
		if err := chromedp.Do(memCtx); err != nil {
			t.Fatalf("step 5: open a tab in a new browser context: %v", err)
		}
		m := &browser{t: t, ctx: memCtx, base: "http://" + memAddr, out: b.out, shot: b.shot}
		stopMem := h.startServer(t, memAddr, memArgs...)
		defer func() { stopMem() }()
		m.signIn("mallory", "")
		m.reload()
		if n := m.visits(); n < 2 {
			t.Fatalf("step 5: memory store, signed in and reloaded: #visits = %d, want at least 2", n)
		}
		m.screenshot("memory-store-signed-in")
		secretBefore, err := os.ReadFile(memSecret)
		if err != nil {
			t.Fatalf("step 5: the memory server wrote no secret file: %v", err)
		}
		stopMem()
		waitPortFree(t, memAddr)
		stopMem = h.startServer(t, memAddr, memArgs...)
		m.reload()
		if secretAfter, err := os.ReadFile(memSecret); err != nil || string(secretAfter) != string(secretBefore) {
			t.Fatalf("step 5: the secret file changed across the restart (err %v): the test cannot tell store from secret", err)
		}
		if !m.has("#signed-out") {
			t.Fatalf("step 5: after restarting the memory-store server the browser is still signed in; page:\n%s", m.pageText())
		}
		if n := m.visits(); n != 1 {
			t.Fatalf("step 5: after restarting the memory-store server #visits = %d, want 1 (a new session)", n)
		}
		m.screenshot("memory-store-after-restart")
	}()

	// 6. Back on the file-store server: sign out deletes the session file
	// and expires its cookie.
	b.signIn("carol", "")
	sid := b.cookie("sid")
	if sid == nil {
		t.Fatalf("step 6: signed in, but the browser holds no sid cookie; cookies: %v", cookieNames(b.cookies()))
	}
	if !sid.HTTPOnly {
		t.Errorf("step 6: the sid cookie is not HttpOnly")
	}
	id := sessionID(t, sid.Value)
	sessionFile := filepath.Join(sessions, id+".json")
	if _, err := os.Stat(sessionFile); err != nil {
		t.Fatalf("step 6: signed in, but the session file is missing: %v", err)
	}
	filesBefore := countSessionFiles(t, sessions)
	if st := b.submit("click #signout", chromedp.Click(chromedp.ID("signout"))); st != 200 {
		t.Fatalf("step 6: the page after sign-out answered %d, want 200", st)
	}
	if !b.has("#signed-out") {
		t.Fatalf("step 6: after sign-out there is no #signed-out; page:\n%s", b.pageText())
	}
	b.screenshot("signed-out")
	if _, err := os.Stat(sessionFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("step 6: after sign-out the session file %s still exists (stat: %v)", filepath.Base(sessionFile), err)
	}
	// Sign-out redirects to /, whose visit counter starts a new anonymous
	// session at once (#visits = 1), with a new sid cookie and file. So what
	// must be gone is the signed-in session's cookie and file; a sid cookie
	// that is left must name that new session.
	filesAfter := countSessionFiles(t, sessions)
	fresh := 0
	for _, c := range b.cookies() {
		if c.Name != "sid" {
			continue
		}
		newID := sessionID(t, c.Value)
		if newID == id {
			t.Fatalf("step 6: after sign-out the browser still holds the signed-in session's sid cookie")
		}
		if _, err := os.Stat(filepath.Join(sessions, newID+".json")); err != nil {
			t.Fatalf("step 6: after sign-out the browser holds a sid cookie for a session that is not stored: %v", err)
		}
		if n := b.visits(); n != 1 {
			t.Fatalf("step 6: after sign-out the new session's #visits = %d, want 1", n)
		}
		fresh = 1
	}
	if filesAfter != filesBefore-1+fresh {
		t.Fatalf("step 6: session files went from %d to %d across sign-out; want %d (the signed-in one deleted, %d new anonymous one)", filesBefore, filesAfter, filesBefore-1+fresh, fresh)
	}
	t.Logf("step 6: sign-out deleted the session file; session files %d -> %d (new anonymous session from the redirect to /: %v)", filesBefore, filesAfter, fresh == 1)

	// 7. Cookie lab: a signed cookie verifies; changed in the browser, it
	// does not.
	b.open("/cookies")
	b.do("fill the cookie form",
		chromedp.SendKeys(chromedp.ID("name"), "lab"),
		chromedp.SendKeys(chromedp.ID("value"), "hello"),
		chromedp.SetValue(chromedp.ID("kind"), "signed"),
		chromedp.SendKeys(chromedp.ID("max_age"), "3600"),
	)
	if st := b.submit("click #set", chromedp.Click(chromedp.ID("set"))); st != 200 {
		t.Fatalf("step 7: the page after setting the cookie answered %d, want 200; page:\n%s", st, b.pageText())
	}
	const labStatus = `#cookie-table tr.cookie-row[data-name="lab"] td.status`
	if got := b.text(labStatus); got != "signature valid" {
		t.Fatalf("step 7: the lab cookie's status is %q, want \"signature valid\"", got)
	}
	b.screenshot("cookie-lab-signed")
	lab := b.cookie("lab")
	if lab == nil {
		t.Fatalf("step 7: the browser holds no lab cookie; cookies: %v", cookieNames(b.cookies()))
	}
	if lab.Session || lab.Expires < float64(time.Now().Add(50*time.Minute).Unix()) {
		t.Errorf("step 7: the lab cookie has no max age of an hour (session %v, expires %v)", lab.Session, lab.Expires)
	}
	raw, err := url.PathUnescape(lab.Value)
	if err != nil || !strings.HasPrefix(raw, "s:hello.") {
		t.Fatalf("step 7: the lab cookie is %q (decoded %q), want s:hello.<signature>", lab.Value, raw)
	}
	if encodeURIComponent(raw) != lab.Value {
		t.Fatalf("step 7: re-encoding the lab cookie gives %q, want %q: the test's encoding differs from the app's", encodeURIComponent(raw), lab.Value)
	}
	tampered := encodeURIComponent("s:hellx." + strings.TrimPrefix(raw, "s:hello."))
	b.do("tamper with the lab cookie",
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf("document.cookie = %s", jsString("lab="+tampered+"; path=/"))))
	if got := b.cookie("lab"); got == nil || got.Value != tampered {
		t.Fatalf("step 7: document.cookie did not change the lab cookie: %+v", got)
	}
	b.reload()
	if got := b.text(labStatus); got != "INVALID signature (tampered)" {
		t.Fatalf("step 7: after changing the lab cookie in the browser its status is %q, want \"INVALID signature (tampered)\"", got)
	}
	// The tampered value is shown decoded, as valid ones are, not as the
	// percent-encoded header text.
	const labValue = `#cookie-table tr.cookie-row[data-name="lab"] td code`
	if got, want := b.text(labValue), "s:hellx."+strings.TrimPrefix(raw, "s:hello."); got != want {
		t.Fatalf("step 7: the tampered lab cookie's value reads %q, want it decoded: %q", got, want)
	}
	b.screenshot("cookie-lab-tampered")

	// 8. Admin: a wrong password is refused, the right one lists sessions.
	b.open("/admin")
	b.do("type a wrong admin password", chromedp.SendKeys(chromedp.ID("password"), "not-the-password"))
	st := b.submit("click #admin-signin", chromedp.Click(chromedp.ID("admin-signin")))
	if st != 401 {
		t.Errorf("step 8: a wrong admin password answered %d, want 401", st)
	}
	if !strings.Contains(b.pageText(), "Wrong password.") {
		t.Fatalf("step 8: a wrong admin password does not show \"Wrong password.\"; page:\n%s", b.pageText())
	}
	if b.has("#sessions") {
		t.Fatalf("step 8: a wrong admin password shows the sessions table")
	}
	b.screenshot("admin-wrong-password")
	b.do("type the admin password", chromedp.SendKeys(chromedp.ID("password"), adminPassword))
	if st := b.submit("click #admin-signin", chromedp.Click(chromedp.ID("admin-signin"))); st != 200 {
		t.Fatalf("step 8: the admin page after signing in answered %d, want 200; page:\n%s", st, b.pageText())
	}
	if !b.has("table#sessions") {
		t.Fatalf("step 8: signed in as admin, but there is no #sessions table; page:\n%s", b.pageText())
	}
	rows := eval[int](b, `document.querySelectorAll("#sessions tr").length - 1`)
	if rows < 1 {
		t.Fatalf("step 8: the #sessions table has %d session rows, want at least 1", rows)
	}
	b.screenshot("admin-sessions")
	// The Session column shows the last 6 characters of each id, as the
	// profile page does ("…" + 6 characters), and marks the admin's own.
	adminSid := b.cookie("sid")
	if adminSid == nil {
		t.Fatalf("step 8: signed in as admin, but the browser holds no sid cookie")
	}
	adminID := sessionID(t, adminSid.Value)
	wantMine := "…" + adminID[len(adminID)-6:] + " (you)"
	cells := eval[[]string](b, `Array.from(document.querySelectorAll("#sessions tr > td:first-child"), td => td.textContent.trim())`)
	mine := 0
	for _, c := range cells {
		if strings.HasSuffix(c, "(you)") {
			mine++
			if c != wantMine {
				t.Errorf("step 8: the admin's own row in #sessions reads %q in the Session column, want %q (the id's last 6 characters)", c, wantMine)
			}
		} else if !strings.HasPrefix(c, "…") || len([]rune(c)) != 7 {
			t.Errorf("step 8: a row of #sessions reads %q in the Session column, want \"…\" and the id's last 6 characters", c)
		}
	}
	if mine != 1 {
		t.Errorf("step 8: %d rows of #sessions are marked (you), want 1; Session column: %q", mine, cells)
	}
	// The Size column holds "N B" on one line (it once wrapped as "155 / B").
	sizes := eval[[]string](b, `Array.from(document.querySelectorAll("#sessions td.size"), td => {
		const r = document.createRange(); r.selectNodeContents(td);
		return td.textContent + "|" + r.getClientRects().length;
	})`)
	if len(sizes) != rows {
		t.Errorf("step 8: %d Size cells for %d rows", len(sizes), rows)
	}
	for _, s := range sizes {
		text, lines, _ := strings.Cut(s, "|")
		if !strings.HasSuffix(text, "\u00a0B") || lines != "1" {
			t.Errorf("step 8: a Size cell reads %q on %s line(s), want \"N B\" on 1", text, lines)
		}
	}
	t.Logf("step 8: the admin page lists %d session(s)", rows)

	// 9. The file-store server stops gracefully (exit 0 on SIGTERM).
	stop()
}

func cookieNames(cs []*network.Cookie) []string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names
}
