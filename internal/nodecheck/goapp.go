package nodecheck

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/internal/storecheck"
	"github.com/galleta-go/galleta/store"
)

// GoApp is the Go side of a compatibility test: a galleta Manager on a
// store, served over real HTTP, with the routes server.js has (GET
// /session, POST /set, /incr, /destroy) and its cookie (connect.sid).
type GoApp struct {
	srv *httptest.Server
}

// StartGo serves a Manager with o on st, with the secret server.js signs
// with, and stops it when the test ends. It sets o's Store, Secrets
// (AllowShortSecrets: an Express secret may be short), CookieName and a
// Logger that discards.
func StartGo(t testing.TB, st store.Store, secret string, o galleta.Options) *GoApp {
	t.Helper()
	o.Store, o.Secrets, o.AllowShortSecrets, o.CookieName, o.Logger = st, []string{secret}, true, "connect.sid", storecheck.Quiet
	m, err := galleta.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, s *galleta.Session) {
		vals := map[string]any{}
		for _, k := range s.Keys() {
			vals[k], _ = s.Get(k)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id": s.ID(), "session": vals})
	}
	mux.HandleFunc("GET /session", func(w http.ResponseWriter, r *http.Request) {
		reply(w, galleta.FromRequest(r))
	})
	mux.HandleFunc("POST /set", func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		for k, vs := range r.URL.Query() {
			var v any
			if json.Unmarshal([]byte(vs[0]), &v) != nil {
				v = vs[0]
			}
			if err := s.Set(k, v); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		}
		reply(w, s)
	})
	mux.HandleFunc("POST /incr", func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		if _, err := s.Incr(r.URL.Query().Get("k"), 1); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		reply(w, s)
	})
	mux.HandleFunc("POST /destroy", func(w http.ResponseWriter, r *http.Request) {
		if err := galleta.FromRequest(r).Destroy(r.Context()); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	srv := httptest.NewServer(m.Middleware(mux))
	t.Cleanup(srv.Close)
	return &GoApp{srv: srv}
}

// Do sends a request to the Go app and returns the reply (ID, session
// values, Set-Cookie), as Server.Do does for Node; a status other than
// 200 fails the test.
func (a *GoApp) Do(t testing.TB, method, path, cookie string) Reply {
	t.Helper()
	req, _ := http.NewRequest(method, a.srv.URL+path, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("Go %s %s: %s %s", method, path, res.Status, body)
	}
	var r Reply
	if method != "POST" || path != "/destroy" {
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("Go %s %s: %v: %s", method, path, err, body)
		}
	}
	r.SetCookie = res.Header.Get("Set-Cookie")
	return r
}

// CookiePair is the name=value part of a Set-Cookie header, which either
// side sends back as its Cookie header; it fails the test unless that is
// a signed connect.sid cookie.
func CookiePair(t testing.TB, setCookie string) string {
	t.Helper()
	pair, _, _ := strings.Cut(setCookie, ";")
	if !strings.HasPrefix(pair, "connect.sid=s%3A") {
		t.Fatalf("Set-Cookie %q is not a signed connect.sid cookie", setCookie)
	}
	return pair
}
