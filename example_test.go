package galleta_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/memstore"
	"github.com/galleta-go/galleta/store"
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

// Log in: regenerate the id (the old one dies at once, the data stays) and
// remember the user for 30 days.
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

	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	m, err := galleta.New(galleta.Options{
		Secrets: []string{"a-secret-of-at-least-32-bytes-from-a-vault"},
		Now:     func() time.Time { return now }, // a fixed clock, for the Expires below
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cart", func(w http.ResponseWriter, r *http.Request) {
		galleta.FromRequest(r).Set("cart", "3 apples") // before logging in
	})
	mux.HandleFunc("POST /login", login)
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		user, _ := s.GetString("user")
		cart, _ := s.GetString("cart")
		fmt.Fprintf(w, "new session: %v, user: %q, cart: %q", s.IsNew(), user, cart)
	})
	h := m.Middleware(mux)

	// send makes one request from a browser holding cookie ("name=value").
	send := func(method, target, cookie, form string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, strings.NewReader(form))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	cookieOf := func(w *httptest.ResponseRecorder) string {
		return strings.Split(w.Header().Get("Set-Cookie"), ";")[0]
	}

	before := cookieOf(send("POST", "/cart", "", ""))
	w := send("POST", "/login", before, "user=ann&remember=on")
	after := cookieOf(w)
	fmt.Println(w.Code, "new cookie value:", after != "" && after != before)
	_, attrs, _ := strings.Cut(w.Header().Get("Set-Cookie"), "; ")
	fmt.Println("attributes:", attrs)
	fmt.Println("new cookie:", send("GET", "/me", after, "").Body)
	fmt.Println("old cookie:", send("GET", "/me", before, "").Body)
	// Output:
	// 303 new cookie value: true
	// attributes: Path=/; Expires=Fri, 25 Dec 2026 09:00:00 GMT; HttpOnly; SameSite=Lax
	// new cookie: new session: false, user: "ann", cart: "3 apples"
	// old cookie: new session: true, user: "", cart: ""
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

	st := memstore.New(memstore.Options{})
	defer st.Close()
	m, err := galleta.New(galleta.Options{
		Secrets: []string{"a-secret-of-at-least-32-bytes-from-a-vault"},
		Store:   st,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		galleta.FromRequest(r).Set("user", "ann")
	})
	mux.HandleFunc("POST /logout", logout)
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		user, _ := s.GetString("user")
		fmt.Fprintf(w, "new session: %v, user: %q", s.IsNew(), user)
	})
	h := m.Middleware(mux)

	// send makes one request from a browser holding cookie ("name=value").
	send := func(method, target, cookie string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, nil)
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	stored := func() int {
		n, _ := st.Count(context.Background())
		return n
	}

	cookie := strings.Split(send("POST", "/login", "").Header().Get("Set-Cookie"), ";")[0]
	fmt.Println("logged in:", send("GET", "/me", cookie).Body, "| sessions stored:", stored())
	w := send("POST", "/logout", cookie)
	fmt.Println(w.Code, w.Header().Get("Set-Cookie"))
	fmt.Println("sessions stored:", stored())
	fmt.Println("old cookie:", send("GET", "/me", cookie).Body)
	// Output:
	// logged in: new session: false, user: "ann" | sessions stored: 1
	// 303 sid=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax
	// sessions stored: 0
	// old cookie: new session: true, user: ""
}

// Flash messages survive exactly one read: set before a redirect, shown by
// the next page, gone from the one after.
func ExampleSession_AddFlash() {
	save := func(w http.ResponseWriter, r *http.Request) {
		galleta.FromRequest(r).AddFlash("info", "Profile saved.")
		http.Redirect(w, r, "/profile", http.StatusSeeOther)
	}
	show := func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%q", galleta.FromRequest(r).Flashes("info"))
	}

	m, err := galleta.New(galleta.Options{
		Secrets: []string{"a-secret-of-at-least-32-bytes-from-a-vault"},
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /profile", save)
	mux.HandleFunc("GET /profile", show)
	h := m.Middleware(mux)

	// send makes one request from a browser holding cookie ("name=value").
	send := func(method, target, cookie string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, nil)
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	w := send("POST", "/profile", "")
	cookie := strings.Split(w.Header().Get("Set-Cookie"), ";")[0]
	fmt.Println(w.Code, w.Header().Get("Location"))
	fmt.Println("first view:", send("GET", "/profile", cookie).Body)
	fmt.Println("second view:", send("GET", "/profile", cookie).Body)
	// Output:
	// 303 /profile
	// first view: ["Profile saved."]
	// second view: []
}

// A JSON API answers session failures in JSON: ErrorHandler writes the
// response when the store fails, and galleta.IsUnavailable tells an outage
// (503, try again) from any other failure (500). The handler's own response
// is never sent: the session is saved before it, and the save failed.
func ExampleOptions_errorHandler() {
	m, err := galleta.New(galleta.Options{
		Secrets: []string{"a-secret-of-at-least-32-bytes-from-a-vault"},
		Store:   downStore{},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			status, msg := http.StatusInternalServerError, "the session could not be saved"
			if galleta.IsUnavailable(err) {
				status, msg = http.StatusServiceUnavailable, "sessions are unavailable, try again shortly"
				w.Header().Set("Retry-After", "5")
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(map[string]string{"error": msg})
		},
	})
	if err != nil {
		panic(err)
	}
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		galleta.FromRequest(r).Set("user", "ann")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"user":"ann"}`)
	}))

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/api/login", nil))
	fmt.Println(w.Code, w.Header().Get("Content-Type"), "Retry-After:", w.Header().Get("Retry-After"))
	fmt.Print(w.Body.String())
	// Output:
	// 503 application/json Retry-After: 5
	// {"error":"sessions are unavailable, try again shortly"}
}

// downStore stands for a store whose server cannot be reached: every call
// fails with an error wrapping store.ErrUnavailable, as a Redis or
// PostgreSQL store reports a refused connection.
type downStore struct{}

var errDown = fmt.Errorf("dial tcp 10.0.0.7:6379: connect: connection refused: %w", store.ErrUnavailable)

func (downStore) Get(context.Context, string) (store.Record, error) { return store.Record{}, errDown }
func (downStore) Set(context.Context, string, store.Record) error   { return errDown }
func (downStore) Delete(context.Context, string) error              { return errDown }
func (downStore) Touch(context.Context, string, time.Time) error    { return errDown }

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
