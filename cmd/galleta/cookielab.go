package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/cookie"
)

type labCookie struct {
	Name, Value, Kind, Status string
}

// cookieLab lists every cookie the browser sent, with its kind and, for
// signed ones, whether the signature verifies.
func (a *app) cookieLab(w http.ResponseWriter, r *http.Request) {
	a.renderLab(w, r, http.StatusOK, nil)
}

func (a *app) renderLab(w http.ResponseWriter, r *http.Request, status int, errs []string) {
	jar := cookie.ParseRequest(r, a.secret)
	var rows []labCookie
	for _, c := range jar.All() {
		row := labCookie{Name: c.Name, Value: c.Value, Kind: c.Kind.String(), Status: "plain"}
		switch {
		case c.Name == a.cfg.cookieName:
			row.Value, row.Kind, row.Status = "(hidden: the session cookie)", "session", "HttpOnly"
		case c.Kind == cookie.KindSigned && c.Valid:
			row.Status = "signature valid"
		case c.Kind == cookie.KindSigned:
			row.Value, row.Status = cookie.DecodeValue(c.Raw), "INVALID signature (tampered)"
		case c.Kind == cookie.KindJSON:
			row.Status = "JSON"
		}
		rows = append(rows, row)
	}
	a.render(w, r, status, "cookies.html", page{Title: "Cookie lab", Errors: errs, Data: map[string]any{"Cookies": rows}})
}

func (a *app) cookieSet(w http.ResponseWriter, r *http.Request) {
	if _, ok := formValue(w, r, "name"); !ok {
		return
	}
	f := r.PostForm
	name, value, kind := f.Get("name"), f.Get("value"), f.Get("kind")
	maxAge, ok := parseMaxAge(f.Get("max_age"))
	if !ok {
		a.renderLab(w, r, http.StatusBadRequest, []string{fmt.Sprintf("max age must be a whole number of seconds from 0 to %d (400 days, the longest a browser keeps a cookie); leave it empty for a browser-session cookie", maxCookieAge/time.Second)})
		return
	}
	if name == a.cfg.cookieName {
		a.renderLab(w, r, http.StatusBadRequest, []string{"that name is the session cookie's"})
		return
	}
	// Not HttpOnly, so the lab's cookies can be changed from the page to
	// see tampering detected.
	o := cookie.Options{MaxAge: maxAge, SameSite: http.SameSiteLaxMode}
	var err error
	switch kind {
	case "signed":
		err = cookie.SetSigned(w.Header(), name, value, a.secret, o)
	case "json":
		var v any = value
		if json, ok := parseJSON(value); ok {
			v = json
		}
		err = cookie.SetJSON(w.Header(), name, v, o)
	default:
		err = cookie.Set(w.Header(), name, value, o)
	}
	if err != nil {
		a.renderLab(w, r, http.StatusBadRequest, []string{err.Error()})
		return
	}
	galleta.FromRequest(r).AddFlash("info", "Cookie "+name+" set.")
	http.Redirect(w, r, "/cookies", http.StatusSeeOther)
}

// maxCookieAge is the longest lifetime browsers give a cookie (RFC 6265bis
// caps Max-Age and Expires at 400 days).
const maxCookieAge = 400 * 24 * time.Hour

// parseMaxAge reads the lab's max age field: empty or 0 is a
// browser-session cookie; else whole seconds up to maxCookieAge. Checking
// the range before converting keeps a huge number from wrapping the
// time.Duration (9223372037 s became Max-Age=0, a deletion).
func parseMaxAge(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > int64(maxCookieAge/time.Second) {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

func (a *app) cookieDelete(w http.ResponseWriter, r *http.Request) {
	name, ok := formValue(w, r, "name")
	if !ok {
		return
	}
	if name == a.cfg.cookieName {
		a.renderLab(w, r, http.StatusBadRequest, []string{"sign out to end the session"})
		return
	}
	if err := cookie.Clear(w.Header(), name, cookie.Options{}); err != nil {
		a.renderLab(w, r, http.StatusBadRequest, []string{err.Error()})
		return
	}
	http.Redirect(w, r, "/cookies", http.StatusSeeOther)
}
