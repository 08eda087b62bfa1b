package main

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// nasty holds what must never reach a terminal, page or log as is: an
// escape sequence that sets the terminal title and rings the bell, a C1
// CSI, NEL, bidi override, isolate and mark, the Arabic letter mark, a
// zero-width space, a tag character and a line separator.
const nasty = "\x1b]0;pwned\x07ann\u009b31m\u0085\u202eevil\u2066x\u2069\u200e\u061c\u200b\U000E0041\u2028\x7f"

// rawRunes are the characters of nasty that a safe output must not hold
// (the plain letters are fine).
var rawRunes = []string{"\x1b", "\x07", "\u009b", "\u0085", "\u202e", "\u2066", "\u2069", "\u200e", "\u061c", "\u200b", "\U000E0041", "\u2028", "\x7f"}

func holdsRaw(s string) string {
	for _, r := range rawRunes {
		if strings.Contains(s, r) {
			return r
		}
	}
	return ""
}

func TestVisible(t *testing.T) {
	for in, want := range map[string]string{
		"ann":              "ann",
		"José 日本 🍪":        "José 日本 🍪",
		"a\x1b[2Jb":        `a\x1b[2Jb`,
		"\t\n\r\x7f":       `\t\n\r\x7f`,
		"x\u009by":         `x\u009by`,
		"\u202enna":        `\u202enna`,
		"a\u200e\u061c":    `a\u200e\u061c`,
		"tag\U000E0041":    `tag\U000e0041`,
		"bad\xffutf8\xc3":  `bad\xffutf8\xc3`,
		"sep\u2028\u2029.": `sep\u2028\u2029.`,
	} {
		if got := visible(in); got != want {
			t.Errorf("visible(%q) = %q, want %q", in, got, want)
		}
	}
	js, _ := json.Marshal(map[string]string{"user": nasty})
	esc := escapeJSON(js)
	if r := holdsRaw(string(esc)); r != "" {
		t.Fatalf("escapeJSON left %q in %s", r, esc)
	}
	var back map[string]string
	if err := json.Unmarshal(esc, &back); err != nil || back["user"] != nasty {
		t.Fatalf("escapeJSON changed the meaning: %v %q", err, back["user"])
	}
}

func TestCheckUserRefusesInvisibleCharacters(t *testing.T) {
	for _, u := range []string{"a\u0085nn", "a\u009b1m", "\u202eevil", "a\u202ab", "x\u2066y", "x\u2069", "\u200eann", "ann\u200f", "a\u061cb", "zero\u200bwidth", "tag\U000E0041", "bom\ufeff", "a\x1bb", "a\x7f", "a\u2028b", "a\tb"} {
		if status, _ := checkUser(u); status != 400 {
			t.Errorf("checkUser(%q) = %d, want 400", u, status)
		}
	}
	for _, u := range []string{"ann", "José", "日本語", "O'Brien-Smith", "🍪 fan", "a b"} {
		if status, msg := checkUser(u); status != 0 {
			t.Errorf("checkUser(%q) = %d %s, want it accepted", u, status, msg)
		}
	}
}

// A session written by anyone (Node included) cannot put escape sequences,
// bidi overrides or invisible characters on the admin's terminal or page.
func TestStoredTextIsEscaped(t *testing.T) {
	dir := t.TempDir()
	st := "file:" + dir
	userJSON, _ := json.Marshal(nasty)
	// Raw C1 and bidi characters are valid inside JSON strings; ESC is not,
	// so the stored text holds it as \u001b and the decoded user holds it raw.
	data := `{"cookie":` + cookieJSON + `,"user":` + string(userJSON) + `,"k\u202eey` + "\u009b" + `":"v` + "\u202e\u2066" + `"}`
	id := strings.Repeat("N", 43)
	putSession(t, dir, id, data)

	code, out, errs := sh("sessions", "list", "--store", st)
	if code != 0 || holdsRaw(out) != "" || !strings.Contains(out, `\x1b]0;pwned\x07ann\u009b31m`) || !strings.Contains(out, `\u202eevil`) {
		t.Errorf("list: exit %d, raw %q in:\n%s%s", code, holdsRaw(out), out, errs)
	}
	code, out, _ = sh("sessions", "list", "--store", st, "--json")
	var list []sessionInfo
	if code != 0 || holdsRaw(out) != "" || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].User != nasty {
		t.Errorf("list --json: exit %d, raw %q, or the user does not decode back:\n%s", code, holdsRaw(out), out)
	}
	for _, args := range [][]string{{"show", id}, {"show", id, "--json"}} {
		code, out, errs := sh(append(append([]string{"sessions"}, args...), "--store", st)...)
		if code != 0 || holdsRaw(out) != "" || !strings.Contains(out, "pwned") {
			t.Errorf("%v: exit %d, raw %q in:\n%s%s", args, code, holdsRaw(out), out, errs)
		}
	}
	code, out, _ = sh("sessions", "revoke-user", "x\u202ey", "--store", st)
	if code != 0 || holdsRaw(out) != "" {
		t.Errorf("revoke-user echoes the raw name: %q", out)
	}

	// The admin page (html/template escapes markup, not bidi).
	srv, _, _ := testApp(t, st, "pw")
	c := client(t)
	form(t, c, srv.URL+"/admin/login", url.Values{"password": {"pw"}})
	r, err := c.Get(srv.URL + "/admin")
	if err != nil {
		t.Fatal(err)
	}
	page := readAll(t, r)
	if r.StatusCode != 200 || holdsRaw(page) != "" || !strings.Contains(page, `\u202eevil`) {
		t.Errorf("admin page: %d, raw %q", r.StatusCode, holdsRaw(page))
	}
}

// The request log (JSON escapes C0 but not C1 or bidi) shows a nasty path
// escaped.
func TestLogEscapesThePath(t *testing.T) {
	var logs logBuffer
	srv, _ := testAppOn(t, newMemStore(), nil, "", slogJSON(&logs))
	r, err := client(t).Get(srv.URL + "/x%1B%5B2J%C2%9B%E2%80%AEevil%E2%81%A6")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if l := logs.String(); holdsRaw(l) != "" || !strings.Contains(l, `\\x1b[2J\\u009b\\u202eevil\\u2066`) {
		t.Fatalf("raw %q in the log, or the path is not shown escaped:\n%s", holdsRaw(l), l)
	}
}
