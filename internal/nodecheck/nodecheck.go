// Package nodecheck runs the Node side of the store compatibility tests:
// server.js, an HTTP server with express-session on a Node session store
// (connect-redis for Redis, connect-pg-simple for PostgreSQL), at the
// versions pinned in package-lock.json beside it. A test starts it with
// Start, sends it requests carrying the same connect.sid cookie a galleta
// Manager reads, and checks that each side reads and changes what the
// other wrote. SetClock moves the clock Node judges expiry by. StartGo
// serves the Go side: a galleta Manager on the store under test with the
// same routes, so both sides are driven alike over real HTTP.
//
// It needs node (GALLETA_NODE, default "node" on PATH) and the packages:
// `npm ci --prefix internal/nodecheck`. Without them Start skips the test,
// except with CI=true, where it fails it.
package nodecheck

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/galleta-go/galleta/internal/storecheck"
	"github.com/galleta-go/galleta/internal/testenv"
)

// storePackages are the npm packages each Node store needs.
var storePackages = map[string][]string{
	"redis": {"express-session", "connect-redis", "redis"},
	"pg":    {"express-session", "connect-pg-simple", "pg"},
}

// Config configures server.js.
type Config struct {
	URL    string `json:"url"`              // the store's URL (redis://..., postgres://...)
	Prefix string `json:"prefix,omitempty"` // key prefix (connect-redis's prefix)
	Schema string `json:"schema,omitempty"` // connect-pg-simple's schemaName
	Table  string `json:"table,omitempty"`  // connect-pg-simple's tableName (default "session")
	// TimeZone is the TimeZone of pg's connections (default: the server's).
	TimeZone string `json:"timezone,omitempty"`
	Secret   string `json:"secret"` // the cookie secret
	TTL      int    `json:"ttl,omitempty"`
	// MaxAge is the cookie's maxAge in milliseconds; 0: a browser-session
	// cookie (maxAge null), whose store ttl is TTL seconds.
	MaxAge int64 `json:"maxAge,omitempty"`
}

// Server is a running server.js.
type Server struct {
	URL    string // http://127.0.0.1:PORT
	cmd    *exec.Cmd
	stdin  io.Closer
	stderr *storecheck.LogBuf
	done   chan struct{}
}

// Dir is the directory of server.js and package.json.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// missing ends the test through testenv.Missing: Node or its packages are
// not there.
func missing(t testing.TB, what string) {
	t.Helper()
	testenv.Missing(t, "the Node side of a compatibility test: "+what+"; install Node.js 20 or newer (or point GALLETA_NODE at node) and, from the module root, the packages: npm ci --prefix internal/nodecheck")
}

// Start runs server.js with the Node store named store ("redis", "pg") and cfg,
// waits until it listens, and stops it when the test ends.
func Start(t testing.TB, store string, cfg Config) *Server {
	t.Helper()
	name := os.Getenv("GALLETA_NODE")
	if name == "" {
		name = "node"
	}
	node, err := exec.LookPath(name)
	if err != nil {
		missing(t, fmt.Sprintf("node not found (GALLETA_NODE or \"node\" on PATH): %v", err))
	}
	pkgs, ok := storePackages[store]
	if !ok {
		t.Fatalf("nodecheck: unknown store %q", store)
	}
	mods := filepath.Join(Dir(), "node_modules")
	for _, p := range pkgs {
		if _, err := os.Stat(filepath.Join(mods, p, "package.json")); err != nil {
			missing(t, fmt.Sprintf("%s is not installed in %s", p, mods))
		}
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join(Dir(), "server.js"), store, string(cfgJSON))
	cmd.Dir = Dir()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{cmd: cmd, stdin: stdin, stderr: &storecheck.LogBuf{}, done: make(chan struct{})}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("nodecheck: start node: %v", err)
	}
	go func() { // owned by s: ends with the process
		cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(s.stop)

	port := make(chan string, 1)
	go func() { // ends when node's stdout closes (the process exits)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				port <- p
			}
		}
	}()
	select {
	case p := <-port:
		s.URL = "http://127.0.0.1:" + p
	case <-s.done:
		t.Fatalf("nodecheck: server.js exited before listening:\n%s", s.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("nodecheck: server.js did not listen within 30s:\n%s", s.stderr.String())
	}
	return s
}

func (s *Server) stop() {
	s.stdin.Close()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// Reply is server.js's answer.
type Reply struct {
	ID      string          `json:"id"`
	Session json.RawMessage `json:"session"`
	Error   string          `json:"error"`
	// SetCookie is the response's Set-Cookie header ("" when none).
	SetCookie string `json:"-"`
}

// Values decodes the session.
func (r Reply) Values() map[string]any {
	var m map[string]any
	json.Unmarshal(r.Session, &m)
	return m
}

// Do sends method path with the Cookie header cookie ("" for none) and
// returns the reply; a status other than 200 fails the test.
func (s *Server) Do(t testing.TB, method, path, cookie string) Reply {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("nodecheck: %s %s: %v\nstderr: %s", method, path, err, s.stderr.String())
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var r Reply
	if err := json.Unmarshal(body, &r); err != nil || res.StatusCode != 200 {
		t.Fatalf("nodecheck: %s %s: %s %s (%v)\nstderr: %s", method, path, res.Status, body, err, s.stderr.String())
	}
	r.SetCookie = res.Header.Get("Set-Cookie")
	return r
}

// SetClock moves the clock Node's express-session and store read (Date.now)
// to the real time plus offset, for the requests that follow.
func (s *Server) SetClock(t testing.TB, offset time.Duration) {
	t.Helper()
	res, err := http.Post(fmt.Sprintf("%s/clock?offset=%d", s.URL, offset.Milliseconds()), "", nil)
	if err != nil {
		t.Fatalf("nodecheck: set the clock: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("nodecheck: set the clock: %s", res.Status)
	}
}
