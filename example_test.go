package galleta_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/galleta-go/galleta"
)

// A visit counter: the middleware loads the session, the handler changes
// it, and the session is saved before the response leaves.
func ExampleManager_Middleware() {
	m, err := galleta.New(galleta.Options{
		Secrets: []string{"a-secret-of-at-least-32-bytes-from-a-vault"},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		panic(err)
	}
	defer m.Close()

	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := galleta.FromRequest(r).Incr("visits", 1)
		fmt.Fprintf(w, "visit %d", n)
	}))

	// Two requests from one client: the second sends the cookie back.
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	fmt.Println(w.Body.String())
	cookie := strings.Split(w.Header().Get("Set-Cookie"), ";")[0]

	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", cookie)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println(w.Body.String())
	// Output:
	// visit 1
	// visit 2
}

// Log in: regenerate the id (the old one dies at once) and remember the
// user for 30 days.
func ExampleSession_Regenerate() {
	login := func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		if err := s.Regenerate(r.Context()); err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		s.Set("user", r.FormValue("user"))
		if r.FormValue("remember") == "on" {
			s.SetMaxAge(30 * 24 * time.Hour)
		}
		http.Redirect(w, r, "/", http.StatusSeeOther) // the session is saved before this redirect leaves
	}
	_ = login
}

// Log out: the session is deleted from the store and the cookie expired.
func ExampleSession_Destroy() {
	logout := func(w http.ResponseWriter, r *http.Request) {
		if err := galleta.FromRequest(r).Destroy(r.Context()); err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}
	_ = logout
}

// Flash messages survive exactly one read.
func ExampleSession_AddFlash() {
	save := func(w http.ResponseWriter, r *http.Request) {
		galleta.FromRequest(r).AddFlash("info", "Profile saved.")
		http.Redirect(w, r, "/profile", http.StatusSeeOther)
	}
	show := func(w http.ResponseWriter, r *http.Request) {
		for _, msg := range galleta.FromRequest(r).Flashes("info") {
			fmt.Fprintln(w, msg)
		}
	}
	_, _ = save, show
}

// Sharing sessions with an Express app: same cookie name, same secret, and
// a store both can read (the file store with session-file-store, Redis with
// connect-redis, PostgreSQL with connect-pg-simple).
func ExampleOptions_express() {
	m, err := galleta.New(galleta.Options{
		CookieName:        "connect.sid",
		Secrets:           []string{"keyboard cat"}, // the Express app's secret
		AllowShortSecrets: true,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	fmt.Println(err)
	m.Close()
	// Output: <nil>
}
