package filestore_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/cookie"
	"github.com/galleta-go/galleta/filestore"
)

// Sessions in files: a request's session is saved as <dir>/<id>.json, in
// session-file-store's layout, and a server started later on the same
// directory (here: a new store and Manager) serves it again.
func Example() {
	dir, err := os.MkdirTemp("", "galleta-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	const secret = "a-secret-of-at-least-32-bytes-from-a-vault"

	// serve opens the store and returns the app and a function that stops
	// it, as one run of a server process would.
	serve := func() (http.Handler, func()) {
		st, err := filestore.New(filestore.Options{Dir: dir})
		if err != nil {
			panic(err) // a directory that cannot be created or written fails here
		}
		m, err := galleta.New(galleta.Options{
			Secrets: []string{secret},
			Store:   st,
		})
		if err != nil {
			panic(err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
			galleta.FromRequest(r).Set("user", "ann")
		})
		mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
			user, _ := galleta.FromRequest(r).GetString("user")
			fmt.Fprintf(w, "user: %q", user)
		})
		return m.Middleware(mux), func() { st.Close() }
	}

	h, stop := serve()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/login", nil))
	sid := strings.Split(w.Header().Get("Set-Cookie"), ";")[0] // sid=s%3A<id>.<signature>
	stop()

	// On disk: one file named by the session id, holding express-session's
	// JSON (galleta's other files are dot files). The id is not printed:
	// it is random.
	v, _ := cookie.Get(sid, "sid")
	id, _ := cookie.Unsign(strings.TrimPrefix(v, "s:"), secret)
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, f := range files {
		var rec map[string]any
		data, _ := os.ReadFile(f)
		if err := json.Unmarshal(data, &rec); err != nil {
			panic(err)
		}
		name := strings.Replace(filepath.Base(f), id, "<id>", 1)
		fmt.Printf("%s: user %q, has a cookie object: %v\n", name, rec["user"], rec["cookie"] != nil)
	}

	// The next run of the server finds the session by its cookie.
	h, stop = serve()
	defer stop()
	r := httptest.NewRequest("GET", "/me", nil)
	r.Header.Set("Cookie", sid)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println("after a restart:", w.Body)
	// Output:
	// <id>.json: user "ann", has a cookie object: true
	// after a restart: user: "ann"
}
