package galleta_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/cookie"
	"github.com/galleta-go/galleta/store"
)

func TestNewRefusesBadOptions(t *testing.T) {
	cases := []struct {
		name string
		o    galleta.Options
		want string
	}{
		{"no secret", galleta.Options{}, "Secrets is empty"},
		{"empty secret", galleta.Options{Secrets: []string{""}}, "Secrets[0] is empty"},
		{"short secret", galleta.Options{Secrets: []string{"short"}}, "use at least 32"},
		{"host prefix without secure", galleta.Options{Secrets: []string{testSecret}, CookieName: "__Host-sid"}, "SecureAlways"},
		{"host prefix with domain", galleta.Options{Secrets: []string{testSecret}, CookieName: "__Host-sid", Cookie: galleta.CookieOptions{Secure: galleta.SecureAlways, Domain: "example.com"}}, "__Host-"},
		{"samesite none without secure", galleta.Options{Secrets: []string{testSecret}, Cookie: galleta.CookieOptions{SameSite: http.SameSiteNoneMode}}, "SameSite=None"},
		{"bad cookie name", galleta.Options{Secrets: []string{testSecret}, CookieName: "a;Max-Age=9"}, "invalid"},
		{"bad path", galleta.Options{Secrets: []string{testSecret}, Cookie: galleta.CookieOptions{Path: "/a;b"}}, "path"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := galleta.New(c.o)
			if err == nil {
				m.Close()
				t.Fatal("New accepted bad options")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
		})
	}
	m, err := galleta.New(galleta.Options{Secrets: []string{"k1"}, AllowShortSecrets: true})
	if err != nil {
		t.Fatalf("AllowShortSecrets: %v", err)
	}
	m.Close()
}

// counter is the handler most tests use: GET shows n, POST increments it.
func counter(w http.ResponseWriter, r *http.Request) {
	s := galleta.FromRequest(r)
	if r.Method == http.MethodPost {
		if _, err := s.Incr("n", 1); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
	}
	n, _ := s.GetInt("n")
	fmt.Fprintf(w, "n=%d", n)
}

func TestRoundTripAndExpressRules(t *testing.T) {
	h := newHarness(t, galleta.Options{}, counter)

	// An anonymous visit that does not write: no store write, no cookie.
	w := h.do("GET", "/", "")
	if got := setCookies(w, "sid"); len(got) != 0 {
		t.Fatalf("untouched new session sent a cookie: %q", got)
	}
	if ids := h.storedIDs(); len(ids) != 0 {
		t.Fatalf("untouched new session was stored: %d records", len(ids))
	}

	// A write: stored and a cookie set, with the secure defaults.
	w = h.do("POST", "/", "")
	lines := setCookies(w, "sid")
	if len(lines) != 1 {
		t.Fatalf("want one cookie, got %q", lines)
	}
	for _, attr := range []string{"Path=/", "HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(lines[0], attr) {
			t.Errorf("cookie %q lacks %s", lines[0], attr)
		}
	}
	for _, attr := range []string{"Expires", "Max-Age", "Secure", "Domain"} {
		if strings.Contains(lines[0], attr) {
			t.Errorf("browser-session cookie over HTTP has %s: %q", attr, lines[0])
		}
	}
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store on a response that sets a cookie", got)
	}
	if got := w.Header().Get("Vary"); got != "Cookie" {
		t.Errorf("Vary = %q, want Cookie", got)
	}
	c := pair(t, w, "sid")
	val, _ := cookie.Get(c, "sid")
	id, ok := cookie.Unsign(strings.TrimPrefix(val, "s:"), testSecret)
	if !ok || len(id) != 43 || !store.ValidID(id) {
		t.Fatalf("cookie %q does not carry a signed 43-char id", c)
	}

	// Unchanged revisit: data visible, no cookie (browser-session cookie).
	w = h.do("GET", "/", c)
	if w.Body.String() != "n=1" {
		t.Fatalf("body %q, want n=1", w.Body.String())
	}
	if got := setCookies(w, "sid"); len(got) != 0 {
		t.Fatalf("unchanged session re-sent its cookie: %q", got)
	}
	if w.Header().Get("Vary") != "Cookie" {
		t.Errorf("a response that used the session lacks Vary: Cookie")
	}
	// Changed revisit of a browser-session cookie: saved, cookie not re-sent.
	w = h.do("POST", "/", c)
	if w.Body.String() != "n=2" || len(setCookies(w, "sid")) != 0 {
		t.Fatalf("body %q cookies %q", w.Body.String(), setCookies(w, "sid"))
	}
	rec, err := h.record(id)
	if err != nil {
		t.Fatal(err)
	}
	var stored map[string]any
	if err := json.Unmarshal(rec.Data, &stored); err != nil {
		t.Fatal(err)
	}
	if stored["n"] != float64(2) {
		t.Fatalf("stored n = %v", stored["n"])
	}
}

func TestStoredLayoutIsExpressCompatible(t *testing.T) {
	h := newHarness(t, galleta.Options{}, func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		s.Set("user", "alice")
		s.SetMaxAge(time.Minute)
	})
	w := h.do("POST", "/", "")
	c := pair(t, w, "sid")
	val, _ := cookie.Get(c, "sid")
	id, _ := cookie.Unsign(val[2:], testSecret)
	rec, err := h.record(id)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"cookie":{"originalMaxAge":60000,"expires":"2026-11-25T23:20:36.194Z","httpOnly":true,"path":"/","sameSite":"lax"},"__galleta":{"created":1795648776194},"user":"alice"}`
	if string(rec.Data) != want {
		t.Fatalf("stored\n%s\nwant\n%s", rec.Data, want)
	}
	if !rec.Expires.Equal(h.clock.Now().Add(time.Minute)) {
		t.Fatalf("record expires %v, want now+1m", rec.Expires)
	}
}

// TestExpressCookieVector checks the exact Set-Cookie express-session sends
// for a known id and secret (DESIGN.md, express-behaviour.md).
func TestExpressCookieVector(t *testing.T) {
	h := newHarness(t, galleta.Options{
		CookieName:        "connect.sid",
		Secrets:           []string{"k1"},
		AllowShortSecrets: true,
		GenerateID:        func() (string, error) { return "NliONGT-j0K42qnn8ZTsQFxAzwiaoKLm", nil },
		Cookie:            galleta.CookieOptions{MaxAge: time.Minute},
	}, func(w http.ResponseWriter, r *http.Request) {
		galleta.FromRequest(r).Set("n", 1)
	})
	w := h.do("POST", "/", "")
	want := "connect.sid=s%3ANliONGT-j0K42qnn8ZTsQFxAzwiaoKLm.oztZx3yMp%2B%2BDXqz6H%2FyUspWCS5r%2BH8mtYj8xa13aOtI; Path=/; Expires=Wed, 25 Nov 2026 23:20:36 GMT; HttpOnly; SameSite=Lax"
	if got := setCookies(w, "connect.sid"); len(got) != 1 || got[0] != want {
		t.Fatalf("Set-Cookie\n%q\nwant\n%q", got, want)
	}
}

func TestSaveUninitialized(t *testing.T) {
	h := newHarness(t, galleta.Options{SaveUninitialized: true}, func(w http.ResponseWriter, r *http.Request) {})
	w := h.do("GET", "/", "")
	if len(setCookies(w, "sid")) != 1 || len(h.storedIDs()) != 1 {
		t.Fatalf("SaveUninitialized: cookies %q, stored %d", setCookies(w, "sid"), len(h.storedIDs()))
	}
}

func TestForeignCookiesGetAFreshSession(t *testing.T) {
	h := newHarness(t, galleta.Options{}, counter)
	w := h.do("POST", "/", "")
	good := pair(t, w, "sid")
	goodVal, _ := cookie.Get(good, "sid")
	goodID, _ := cookie.Unsign(goodVal[2:], testSecret)
	unknownSigned := "sid=" + cookie.EncodeValue("s:"+cookie.Sign(strings.Repeat("A", 43), testSecret))
	otherSecret := "sid=" + cookie.EncodeValue("s:"+cookie.Sign(goodID, "another-secret-another-secret-xx"))
	bad := []struct{ name, header string }{
		{"tampered signature", strings.Replace(good, "sid=s%3A", "sid=s%3AX", 1)},
		{"truncated", good[:len(good)-5]},
		{"trailing bytes", good + "x"},
		{"unsigned id", "sid=" + goodID},
		{"signed with another secret", otherSecret},
		{"well-formed unknown id", unknownSigned},
		{"empty", "sid="},
		{"doubled, forged first", "sid=forged; " + good},
		{"huge", "sid=" + strings.Repeat("a", 5000)},
		{"invalid utf-8", "sid=\xff\xfe; x\x01=\x02"},
		{"control bytes", "sid=s:\x00\x7f.abc"},
		{"thousands of cookies", strings.Repeat("a=b; ", 5000) + good},
		{"signed invalid id", "sid=" + cookie.EncodeValue("s:"+cookie.Sign("../../etc/passwd", testSecret))},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			before := len(h.storedIDs())
			w := h.do("POST", "/", c.header)
			if w.Code != 200 || w.Body.String() != "n=1" {
				t.Fatalf("status %d body %q: want a fresh session", w.Code, w.Body.String())
			}
			p := pair(t, w, "sid")
			v, _ := cookie.Get(p, "sid")
			id, ok := cookie.Unsign(v[2:], testSecret)
			if !ok || id == goodID || id == strings.Repeat("A", 43) {
				t.Fatalf("foreign cookie adopted: new id %q", id)
			}
			if got := len(h.storedIDs()); got != before+1 {
				t.Fatalf("store has %d records, want %d", got, before+1)
			}
		})
	}
	// The unknown id was never stored.
	if _, err := h.record(strings.Repeat("A", 43)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("attacker's id stored: %v", err)
	}
}

// The session is saved before the first byte: when the handler's redirect
// reaches the client, the store already has the value.
func TestSavedBeforeResponse(t *testing.T) {
	h := newHarness(t, galleta.Options{}, func(w http.ResponseWriter, r *http.Request) {
		galleta.FromRequest(r).Set("user", "bob")
		http.Redirect(w, r, "/home", http.StatusSeeOther)
	})
	probe := &probeWriter{ResponseRecorder: httptest.NewRecorder(), check: func(hdr http.Header) string {
		lines := hdr.Values("Set-Cookie")
		if len(lines) != 1 {
			return "no Set-Cookie at WriteHeader"
		}
		v, _ := cookie.Get(lines[0], "sid")
		id, _ := cookie.Unsign(v[2:], testSecret)
		rec, err := h.record(id)
		if err != nil || !strings.Contains(string(rec.Data), `"user":"bob"`) {
			return fmt.Sprintf("store not written when the status line left: %v", err)
		}
		return ""
	}}
	h.h.ServeHTTP(probe, httptest.NewRequest("POST", "/login", nil))
	if probe.Code != http.StatusSeeOther {
		t.Fatalf("status %d", probe.Code)
	}
	if probe.problem != "" || !probe.checked {
		t.Fatalf("checked=%v: %s", probe.checked, probe.problem)
	}
}

type probeWriter struct {
	*httptest.ResponseRecorder
	check   func(http.Header) string
	checked bool
	problem string
}

func (p *probeWriter) WriteHeader(code int) {
	if !p.checked {
		p.checked = true
		p.problem = p.check(p.Header())
	}
	p.ResponseRecorder.WriteHeader(code)
}

func (p *probeWriter) Write(b []byte) (int, error) {
	if !p.checked {
		p.WriteHeader(200)
	}
	return p.ResponseRecorder.Write(b)
}

func TestCookiePathBySegment(t *testing.T) {
	h := newHarness(t, galleta.Options{Cookie: galleta.CookieOptions{Path: "/app"}}, func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		if err := s.Set("k", 1); err != nil {
			fmt.Fprint(w, "no session")
			return
		}
		fmt.Fprint(w, "session")
	})
	for path, want := range map[string]string{"/app": "session", "/app/x": "session", "/application": "no session", "/": "no session", "/ap": "no session"} {
		if got := h.do("POST", path, "").Body.String(); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
}

func TestFlushAndHijackThroughWrapper(t *testing.T) {
	h := newHarness(t, galleta.Options{}, func(w http.ResponseWriter, r *http.Request) {
		galleta.FromRequest(r).Set("k", "v")
		switch r.URL.Path {
		case "/flush":
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Errorf("ResponseController.Flush: %v", err)
			}
			w.(http.Flusher).Flush()
			fmt.Fprint(w, "flushed")
		case "/hijack":
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("Hijack: %v", err)
				return
			}
			defer conn.Close()
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked")
			buf.Flush()
		}
	})
	srv := httptest.NewServer(h.h)
	defer srv.Close()
	for _, p := range []string{"/flush", "/hijack"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		body := make([]byte, 64)
		n, _ := resp.Body.Read(body)
		resp.Body.Close()
		if !strings.HasPrefix(p[1:], string(body[:n])[:4]) {
			t.Errorf("%s: body %q", p, body[:n])
		}
		if p == "/flush" && len(resp.Header.Values("Set-Cookie")) != 1 {
			t.Errorf("flushed response lacks the cookie")
		}
	}
	if got := len(h.storedIDs()); got != 2 {
		t.Fatalf("want 2 sessions saved before flush/hijack, got %d", got)
	}
}

// overlap runs two requests on one session that both load before either
// commits.
func overlap(t *testing.T, h *harness, c string, first, second string) {
	t.Helper()
	var wg sync.WaitGroup
	for _, p := range []string{first, second} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w := h.do("POST", p, c); w.Code >= 500 {
				t.Errorf("%s: %d %s", p, w.Code, w.Body.String())
			}
		}()
	}
	wg.Wait()
}

func TestNoLostUpdates(t *testing.T) {
	loaded := make(chan struct{}, 2)
	release := make(chan struct{})
	h := newHarness(t, galleta.Options{}, func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		switch r.URL.Path {
		case "/init":
			s.Set("init", true)
			return
		}
		loaded <- struct{}{}
		<-release
		s.Set(r.URL.Path[1:], true)
		s.Incr("hits", 1)
	})
	start := func() string { return pair(t, h.do("POST", "/init", ""), "sid") }
	idOf := func(c string) string {
		v, _ := cookie.Get(c, "sid")
		id, _ := cookie.Unsign(v[2:], testSecret)
		return id
	}
	waitLoaded := func() { <-loaded; <-loaded }

	t.Run("different keys both persist", func(t *testing.T) {
		c := start()
		done := make(chan struct{})
		go func() { overlap(t, h, c, "/cartA", "/cartB"); close(done) }()
		waitLoaded()
		release <- struct{}{}
		release <- struct{}{}
		<-done
		rec, err := h.record(idOf(c))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"cartA":true`, `"cartB":true`, `"hits":2`} {
			if !strings.Contains(string(rec.Data), want) {
				t.Errorf("stored %s lacks %s", rec.Data, want)
			}
		}
	})
}

// TestKilledSessionNotResurrected orders two requests exactly: a slow one
// loads, a logout (or a login that regenerates the id) completes, then the
// slow one commits. The old id must stay dead.
func TestKilledSessionNotResurrected(t *testing.T) {
	for _, killer := range []string{"/logout", "/regen"} {
		t.Run(killer, func(t *testing.T) {
			slowLoaded := make(chan struct{})
			slowGo := make(chan struct{})
			h := newHarness(t, galleta.Options{}, func(w http.ResponseWriter, r *http.Request) {
				s := galleta.FromRequest(r)
				switch r.URL.Path {
				case "/login":
					s.Set("user", "ann")
				case "/logout":
					s.Destroy(r.Context())
				case "/regen":
					s.Regenerate(r.Context())
				case "/slow":
					close(slowLoaded)
					<-slowGo
					s.Set("cart", 3)
				}
			})
			c := pair(t, h.do("POST", "/login", ""), "sid")
			v, _ := cookie.Get(c, "sid")
			oldID, _ := cookie.Unsign(v[2:], testSecret)
			done := make(chan *httptest.ResponseRecorder)
			go func() { done <- h.do("POST", "/slow", c) }()
			<-slowLoaded
			w := h.do("POST", killer, c)
			cl := setCookies(w, "sid")
			if killer == "/logout" && (len(cl) != 1 || !strings.Contains(cl[0], "Max-Age=0") || !strings.HasPrefix(cl[0], "sid=;") || !strings.Contains(cl[0], "Path=/")) {
				t.Fatalf("logout cookie %q, want an expired sid with Path=/", cl)
			}
			close(slowGo)
			slow := <-done
			if slow.Code != 200 {
				t.Fatalf("slow request: %d", slow.Code)
			}
			if got := setCookies(slow, "sid"); len(got) != 0 {
				t.Fatalf("slow request re-sent the dead session's cookie: %q", got)
			}
			if _, err := h.record(oldID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("old session written back after %s: %v", killer, err)
			}
			want := 0
			if killer == "/regen" {
				want = 1
			}
			if ids := h.storedIDs(); len(ids) != want {
				t.Fatalf("%d records stored, want %d", len(ids), want)
			}
			// The old cookie is now anonymous.
			if got := h.do("GET", "/", c); len(setCookies(got, "sid")) != 0 {
				t.Fatalf("replayed cookie: %q", setCookies(got, "sid"))
			}
		})
	}
}

func TestConcurrentIncrCountsEveryRequest(t *testing.T) {
	h := newHarness(t, galleta.Options{}, counter)
	c := pair(t, h.do("POST", "/", ""), "sid")
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.do("POST", "/", c)
		}()
	}
	wg.Wait()
	if got := h.do("GET", "/", c).Body.String(); got != "n=201" {
		t.Fatalf("after 1+200 increments: %s", got)
	}
}

func TestLockSessionsReadModifyWrite(t *testing.T) {
	h := newHarness(t, galleta.Options{LockSessions: true}, func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		n, _ := s.GetInt("n")
		time.Sleep(50 * time.Microsecond) // widen the race window; not an assertion
		s.Set("n", n+1)
		fmt.Fprintf(w, "n=%d", n+1)
	})
	c := pair(t, h.do("POST", "/", ""), "sid")
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() { defer wg.Done(); h.do("POST", "/", c) }()
	}
	wg.Wait()
	var last string
	h2 := h.do("GET", "/", c)
	last = h2.Body.String()
	if last != "n=102" {
		t.Fatalf("serialised read-modify-write: %s, want n=102 (1 + 100 + this GET)", last)
	}
}

func TestRegenerate(t *testing.T) {
	h := newHarness(t, galleta.Options{}, func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		switch r.URL.Path {
		case "/visit":
			s.Set("cart", []int{1, 2})
		case "/login":
			if err := s.Regenerate(r.Context()); err != nil {
				t.Error(err)
			}
			s.Set("user", "ann")
		}
		fmt.Fprint(w, s.Deadline().UnixMilli())
	})
	w := h.do("POST", "/visit", "")
	c1 := pair(t, w, "sid")
	deadline := w.Body.String()
	v1, _ := cookie.Get(c1, "sid")
	id1, _ := cookie.Unsign(v1[2:], testSecret)
	h.clock.Advance(time.Minute)
	w = h.do("POST", "/login", c1)
	c2 := pair(t, w, "sid")
	v2, _ := cookie.Get(c2, "sid")
	id2, _ := cookie.Unsign(v2[2:], testSecret)
	if id2 == id1 || id2 == "" {
		t.Fatal("regenerate kept the id")
	}
	if w.Body.String() != deadline {
		t.Fatalf("absolute deadline moved: %s -> %s", deadline, w.Body.String())
	}
	if _, err := h.record(id1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old id still stored: %v", err)
	}
	rec, err := h.record(id2)
	if err != nil || !strings.Contains(string(rec.Data), `"cart":[1,2]`) || !strings.Contains(string(rec.Data), `"user":"ann"`) {
		t.Fatalf("new session %s %v: want data carried over", rec.Data, err)
	}
}

func TestIdleTimeout(t *testing.T) {
	h := newHarness(t, galleta.Options{IdleTimeout: 10 * time.Minute}, counter)
	c := pair(t, h.do("POST", "/", ""), "sid")
	h.clock.Advance(10*time.Minute - time.Second)
	if got := h.do("GET", "/", c).Body.String(); got != "n=1" {
		t.Fatalf("at idle-1s: %s", got)
	}
	// The visit moved the idle expiry: another idle-1s is still fine.
	h.clock.Advance(10*time.Minute - time.Second)
	if got := h.do("GET", "/", c).Body.String(); got != "n=1" {
		t.Fatalf("touched session at idle-1s: %s", got)
	}
	h.clock.Advance(10*time.Minute + time.Second)
	if got := h.do("GET", "/", c).Body.String(); got != "n=0" {
		t.Fatalf("at idle+1s: %s, want a fresh session", got)
	}
	if ids := h.storedIDs(); len(ids) != 0 {
		t.Fatalf("expired session still stored")
	}
}

func TestAbsoluteTimeout(t *testing.T) {
	h := newHarness(t, galleta.Options{IdleTimeout: 10 * time.Minute, AbsoluteTimeout: time.Hour}, counter)
	c := pair(t, h.do("POST", "/", ""), "sid")
	for i := 1; i < 60; i++ {
		h.clock.Advance(time.Minute)
		if got := h.do("GET", "/", c).Body.String(); got != "n=1" {
			t.Fatalf("minute %d: %s", i, got)
		}
	}
	h.clock.Advance(time.Minute + time.Millisecond)
	if got := h.do("GET", "/", c).Body.String(); got != "n=0" {
		t.Fatalf("past the absolute timeout: %s", got)
	}
}

func TestRememberMe(t *testing.T) {
	h := newHarness(t, galleta.Options{}, func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		if r.URL.Path == "/remember" {
			s.SetMaxAge(30 * 24 * time.Hour)
		}
		s.Incr("n", 1)
	})
	c := pair(t, h.do("POST", "/", ""), "sid")
	w := h.do("POST", "/remember", c)
	lines := setCookies(w, "sid")
	if len(lines) != 1 || !strings.Contains(lines[0], "Expires=Fri, 25 Dec 2026 23:19:36 GMT") {
		t.Fatalf("remember-me cookie %q", lines)
	}
	// Idle window is now 30 days, past the 12h absolute default.
	h.clock.Advance(20 * 24 * time.Hour)
	w = h.do("POST", "/", c)
	if len(setCookies(w, "sid")) != 1 {
		t.Fatalf("a changed persistent-cookie session re-sends its cookie (Express rule)")
	}
}

func TestFlashExactlyOnce(t *testing.T) {
	h := newHarness(t, galleta.Options{}, func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		if r.Method == "POST" {
			s.AddFlash("info", "saved")
			s.AddFlash("info", "again")
			return
		}
		fmt.Fprint(w, strings.Join(s.Flashes("info"), ","))
	})
	c := pair(t, h.do("POST", "/", ""), "sid")
	if got := h.do("GET", "/", c).Body.String(); got != "saved,again" {
		t.Fatalf("first read %q", got)
	}
	if got := h.do("GET", "/", c).Body.String(); got != "" {
		t.Fatalf("second read %q, want nothing", got)
	}
}

func TestUnencodableValue(t *testing.T) {
	h := newHarness(t, galleta.Options{}, func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		if err := s.Set("ch", make(chan int)); err == nil || !strings.Contains(err.Error(), `"ch"`) {
			t.Errorf("Set(chan) error = %v", err)
		}
		if err := s.Set("cookie", 1); !errors.Is(err, galleta.ErrReservedKey) {
			t.Errorf("Set(cookie) error = %v", err)
		}
	})
	w := h.do("POST", "/", "")
	if len(setCookies(w, "sid")) != 0 || len(h.storedIDs()) != 0 {
		t.Fatal("a failed Set wrote something")
	}
}

func TestHandlerPanicSavesNothing(t *testing.T) {
	h := newHarness(t, galleta.Options{}, func(w http.ResponseWriter, r *http.Request) {
		galleta.FromRequest(r).Set("half", true)
		panic("boom")
	})
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic swallowed by the middleware")
			}
		}()
		h.do("POST", "/", "")
	}()
	if len(h.storedIDs()) != 0 {
		t.Fatal("panicking handler's session was saved")
	}
}

func TestKeyRotation(t *testing.T) {
	oldSecret := "old-secret-old-secret-old-secret-old"
	hOld := newHarness(t, galleta.Options{Secrets: []string{oldSecret}}, counter)
	c := pair(t, hOld.do("POST", "/", ""), "sid")
	// Same store, new secret first, old one still accepted.
	h := newHarness(t, galleta.Options{Secrets: []string{testSecret, oldSecret}, Store: hOld.st}, counter)
	w := h.do("GET", "/", c)
	if w.Body.String() != "n=1" {
		t.Fatalf("old-secret cookie rejected: %s", w.Body.String())
	}
	newC := pair(t, w, "sid")
	v, _ := cookie.Get(newC, "sid")
	if _, ok := cookie.Unsign(v[2:], testSecret); !ok {
		t.Fatal("cookie not re-signed with the first secret")
	}
	// Without the old secret the old cookie no longer verifies.
	h2 := newHarness(t, galleta.Options{Secrets: []string{testSecret}, Store: hOld.st}, counter)
	if got := h2.do("GET", "/", c).Body.String(); got != "n=0" {
		t.Fatalf("removed secret still verifies: %s", got)
	}
}

// failingStore fails every call with err, or blocks until ctx ends.
type failingStore struct {
	err   error
	block bool
}

func (f failingStore) wait(ctx context.Context) error {
	if f.block {
		<-ctx.Done()
		return ctx.Err()
	}
	return f.err
}
func (f failingStore) Get(ctx context.Context, id string) (store.Record, error) {
	return store.Record{}, f.wait(ctx)
}
func (f failingStore) Set(ctx context.Context, id string, r store.Record) error { return f.wait(ctx) }
func (f failingStore) Delete(ctx context.Context, id string) error              { return f.wait(ctx) }
func (f failingStore) Touch(ctx context.Context, id string, e time.Time) error  { return f.wait(ctx) }

func TestStoreFailures(t *testing.T) {
	cookieHeader := "sid=" + cookie.EncodeValue("s:"+cookie.Sign(strings.Repeat("Q", 43), testSecret))
	cases := []struct {
		name   string
		st     failingStore
		status int
	}{
		{"unavailable", failingStore{err: fmt.Errorf("dial tcp: refused: %w", store.ErrUnavailable)}, 503},
		{"hangs", failingStore{block: true}, 503},
		{"other error", failingStore{err: errors.New("disk on fire " + strings.Repeat("Q", 43))}, 500},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, galleta.Options{Store: c.st, StoreTimeout: 50 * time.Millisecond}, counter)
			start := time.Now()
			w := h.do("POST", "/", cookieHeader)
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("took %v with a 50ms store timeout", took)
			}
			if w.Code != c.status {
				t.Fatalf("status %d, want %d", w.Code, c.status)
			}
			if c.status == 503 && w.Header().Get("Retry-After") != "5" {
				t.Errorf("Retry-After = %q", w.Header().Get("Retry-After"))
			}
			if len(w.Result().Header.Values("Set-Cookie")) != 0 {
				t.Errorf("a store failure touched the cookie: %q", w.Result().Header.Values("Set-Cookie"))
			}
			if strings.Contains(w.Body.String(), "QQQQ") || strings.Contains(h.logs.String(), "QQQQ") {
				t.Errorf("session id leaked: body %q logs %q", w.Body.String(), h.logs.String())
			}
			// No cookie: served anonymously without touching the store
			// (the counter handler changes the session, so it must save:
			// use GET which changes nothing).
			if w := h.do("GET", "/", ""); w.Code != 200 {
				t.Errorf("anonymous request with the store down: %d", w.Code)
			}
		})
	}
	t.Run("custom error handler", func(t *testing.T) {
		var got error
		h := newHarness(t, galleta.Options{Store: cases[0].st, ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			got = err
			w.WriteHeader(418)
		}}, counter)
		if w := h.do("GET", "/", cookieHeader); w.Code != 418 || !galleta.IsUnavailable(got) {
			t.Fatalf("status %d err %v", w.Code, got)
		}
	})
}

// A failed save replaces the handler's response; the handler's Write gets
// an error.
func TestFailedSaveReplacesResponse(t *testing.T) {
	var writeErr error
	h := newHarness(t, galleta.Options{Store: failingStore{err: store.ErrUnavailable}}, func(w http.ResponseWriter, r *http.Request) {
		galleta.FromRequest(r).Set("k", 1)
		w.Header().Set("Location", "/next")
		_, writeErr = w.Write([]byte("ok"))
	})
	w := h.do("POST", "/", "")
	if w.Code != 503 || w.Header().Get("Location") != "" || strings.Contains(w.Body.String(), "ok") {
		t.Fatalf("status %d location %q body %q", w.Code, w.Header().Get("Location"), w.Body.String())
	}
	if !errors.Is(writeErr, galleta.ErrResponseReplaced) {
		t.Fatalf("handler Write error = %v", writeErr)
	}
}

func TestNodeWrittenRecordLoads(t *testing.T) {
	h := newHarness(t, galleta.Options{}, counter)
	id := "NliONGT-j0K42qnn8ZTsQFxAzwiaoKLm"
	node := `{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"n":41,"__lastAccess":1795648796836}`
	if err := h.st.Set(context.Background(), id, store.Record{Data: []byte(node), Expires: h.clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	c := "sid=" + cookie.EncodeValue("s:"+cookie.Sign(id, testSecret))
	if got := h.do("POST", "/", c).Body.String(); got != "n=42" {
		t.Fatalf("Node record: %s", got)
	}
	rec, _ := h.record(id)
	if strings.Contains(string(rec.Data), "__lastAccess") {
		t.Fatalf("galleta copied the Node store's bookkeeping: %s", rec.Data)
	}
}

func TestCorruptRecordIsAFreshSession(t *testing.T) {
	h := newHarness(t, galleta.Options{}, counter)
	id := strings.Repeat("C", 43)
	c := "sid=" + cookie.EncodeValue("s:"+cookie.Sign(id, testSecret))
	for _, data := range []string{"", "{", "[1,2]", `{"cookie":"nope"}`, `{"cookie":{"expires":"yesterday"}}`, "\xff"} {
		h.st.Set(context.Background(), id, store.Record{Data: []byte(data), Expires: h.clock.Now().Add(time.Hour)})
		if w := h.do("POST", "/", c); w.Code != 200 || w.Body.String() != "n=1" {
			t.Fatalf("corrupt %q: %d %s", data, w.Code, w.Body.String())
		}
	}
}

func TestReloadSaveTouch(t *testing.T) {
	h := newHarness(t, galleta.Options{IdleTimeout: 10 * time.Minute}, func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		ctx := r.Context()
		switch r.URL.Path {
		case "/save":
			s.Set("a", 1)
			if err := s.Save(ctx); err != nil {
				t.Error(err)
			}
			s.Set("b", 2)
			if err := s.Reload(ctx); err != nil {
				t.Error(err)
			}
			if s.Has("b") || !s.Has("a") {
				t.Errorf("after Reload: keys %v, want [a]", s.Keys())
			}
		case "/touch":
			if err := s.Touch(ctx); err != nil {
				t.Error(err)
			}
		}
	})
	c := pair(t, h.do("POST", "/save", ""), "sid")
	v, _ := cookie.Get(c, "sid")
	id, _ := cookie.Unsign(v[2:], testSecret)
	h.clock.Advance(5 * time.Minute)
	h.do("POST", "/touch", c)
	rec, err := h.record(id)
	if err != nil || !rec.Expires.Equal(h.clock.Now().Add(10*time.Minute)) {
		t.Fatalf("after touch expires %v err %v", rec.Expires, err)
	}
}

func TestChangesAfterResponseStartedAreSaved(t *testing.T) {
	h := newHarness(t, galleta.Options{}, func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		s.Set("a", 1)
		fmt.Fprint(w, "hello")
		s.Set("late", true)
	})
	c := pair(t, h.do("POST", "/", ""), "sid")
	v, _ := cookie.Get(c, "sid")
	id, _ := cookie.Unsign(v[2:], testSecret)
	rec, _ := h.record(id)
	if !strings.Contains(string(rec.Data), `"late":true`) {
		t.Fatalf("late change lost: %s", rec.Data)
	}
}

func TestTypedGetters(t *testing.T) {
	h := newHarness(t, galleta.Options{}, func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		if r.Method == "POST" {
			s.Set("i", 7)
			s.Set("f", 1.5)
			s.Set("big", 1e3)
			s.Set("s", `quo"te`)
			s.Set("b", true)
			s.Set("m", map[string]int{"x": 1})
			return
		}
		i, ok1 := s.GetInt("i")
		big, ok2 := s.GetInt("big")
		_, notInt := s.GetInt("f")
		f, _ := s.GetFloat("f")
		str, _ := s.GetString("s")
		b, _ := s.GetBool("b")
		var m map[string]int
		err := s.Decode("m", &m)
		g, _ := s.Get("i")
		fmt.Fprintln(w, i, ok1, big, ok2, notInt, f, str, b, m["x"], err, g)
	})
	c := pair(t, h.do("POST", "/", ""), "sid")
	want := "7 true 1000 true false 1.5 quo\"te true 1 <nil> 7\n"
	if got := h.do("GET", "/", c).Body.String(); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestNilSessionIsSafe(t *testing.T) {
	var s *galleta.Session
	if s.Set("a", 1) != galleta.ErrNoSession || s.ID() != "" || s.Has("a") {
		t.Fatal("nil session misbehaves")
	}
	if _, err := s.Incr("a", 1); err != galleta.ErrNoSession {
		t.Fatal(err)
	}
	if galleta.FromRequest(httptest.NewRequest("GET", "/", nil)) != nil {
		t.Fatal("FromRequest without middleware returned a session")
	}
}

func TestSecureAutoAndProxy(t *testing.T) {
	h := newHarness(t, galleta.Options{TrustProxy: true}, counter)
	r := httptest.NewRequest("POST", "/", nil)
	r.Header.Set("X-Forwarded-Proto", "https, http")
	w := httptest.NewRecorder()
	h.h.ServeHTTP(w, r)
	if l := setCookies(w, "sid"); len(l) != 1 || !strings.Contains(l[0], "; Secure") {
		t.Fatalf("trusted proxy https: %q", l)
	}
	h2 := newHarness(t, galleta.Options{}, counter)
	w = httptest.NewRecorder()
	h2.h.ServeHTTP(w, r)
	if l := setCookies(w, "sid"); len(l) != 1 || strings.Contains(l[0], "Secure") {
		t.Fatalf("untrusted X-Forwarded-Proto honoured: %q", l)
	}
}

func TestIDOfNewSessionIsStable(t *testing.T) {
	var seen string
	h := newHarness(t, galleta.Options{}, func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		seen = s.ID()
		if seen == "" || s.ID() != seen || !s.IsNew() {
			t.Errorf("ID() of a new session: %q then %q", seen, s.ID())
		}
		s.Set("k", 1)
	})
	c := pair(t, h.do("POST", "/", ""), "sid")
	v, _ := cookie.Get(c, "sid")
	if id, _ := cookie.Unsign(v[2:], testSecret); id != seen {
		t.Fatalf("cookie carries %q, handler saw %q", id, seen)
	}
}
