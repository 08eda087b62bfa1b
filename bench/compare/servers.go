package main

// The Go servers, run by `compare -serve <kind>` in a process of their own
// so their CPU time can be read from /proc. Each serves the same routes
// as node/server.js:
//
//	GET /ready  outside the session: 200 "ok" once the store is reachable
//	GET /new    stores a new session holding one value (user=alice)
//	GET /inc    reads and increments the counter n of the cookie's session;
//	            the body is the new value
//	GET /_heap  outside the session: the live heap after two GCs, in bytes
//	GET /debug/pprof/...  outside the session: CPU profiles under load

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2"
	scsmem "github.com/alexedwards/scs/v2/memstore"
	"github.com/galleta-go/galleta"
	"github.com/galleta-go/galleta/filestore"
	gmem "github.com/galleta-go/galleta/memstore"
	"github.com/galleta-go/galleta/pgstore"
	"github.com/galleta-go/galleta/redisstore"
	"github.com/galleta-go/galleta/store"
	"github.com/gorilla/sessions"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

const secret = "0123456789abcdef0123456789abcdef-bench"

// serverConfig is what the driver passes to a server process.
type serverConfig struct {
	kind     string
	addr     string
	dir      string // file stores
	redisURL string
	prefix   string // Redis key prefix
	pgURL    string
	schema   string // PostgreSQL schema, created by the driver
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// goKinds are the servers this binary runs, in the order of the report.
var goKinds = map[string]func(context.Context, serverConfig) (newH, incH http.Handler, closeFn func(), err error){
	"plain":                plainServer,
	"galleta-memory":       galletaServer,
	"galleta-file":         galletaServer,
	"galleta-file-nofsync": galletaServer,
	"galleta-redis":        galletaServer,
	"galleta-postgres":     galletaServer,
	"scs-memory":           scsServer,
	"scs-redis":            scsServer,
	"scs-postgres":         scsServer,
	"gorilla-file":         gorillaServer,
}

func serve(c serverConfig) error {
	mk, ok := goKinds[c.kind]
	if !ok {
		return fmt.Errorf("unknown server kind %q", c.kind)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	newH, incH, closeFn, err := mk(ctx, c)
	if err != nil {
		return fmt.Errorf("%s: %w", c.kind, err)
	}
	defer closeFn()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	mux.Handle("GET /new", newH)
	mux.Handle("GET /inc", incH)
	mux.HandleFunc("GET /_heap", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		w.Write(strconv.AppendUint(nil, m.HeapAlloc, 10))
	})
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Fprintf(os.Stderr, "%s listening on %s\n", c.kind, ln.Addr())
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// plainServer is the ceiling: the same routes with no session at all
// (/new sets a random cookie of a session id's size, so the client has one
// to send).
func plainServer(context.Context, serverConfig) (http.Handler, http.Handler, func(), error) {
	newH := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var id [32]byte
		rand.Read(id[:])
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: base64.RawURLEncoding.EncodeToString(id[:]), Path: "/", HttpOnly: true})
		w.Write([]byte("ok"))
	})
	incH := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("1")) })
	return newH, incH, func() {}, nil
}

func galletaServer(ctx context.Context, c serverConfig) (http.Handler, http.Handler, func(), error) {
	var (
		st      store.Store
		closeFn = func() {}
	)
	switch c.kind {
	case "galleta-memory":
		m := gmem.New(gmem.Options{})
		st, closeFn = m, func() { m.Close() }
	case "galleta-file", "galleta-file-nofsync":
		d := filestore.SyncAll
		if c.kind == "galleta-file-nofsync" {
			d = filestore.SyncNone
		}
		f, err := filestore.New(filestore.Options{Dir: c.dir, Durability: d, Logger: quiet})
		if err != nil {
			return nil, nil, nil, err
		}
		st, closeFn = f, func() { f.Close() }
	case "galleta-redis":
		opt, err := redis.ParseURL(c.redisURL)
		if err != nil {
			return nil, nil, nil, err
		}
		cl := redis.NewClient(opt)
		r, err := redisstore.New(cl, redisstore.Options{Prefix: c.prefix, Logger: quiet})
		if err != nil {
			cl.Close()
			return nil, nil, nil, err
		}
		st, closeFn = r, func() { r.Close(); cl.Close() }
	case "galleta-postgres":
		p, err := pgPool(ctx, c)
		if err != nil {
			return nil, nil, nil, err
		}
		s, err := pgstore.New(p, pgstore.Options{Schema: c.schema, CreateTable: true, Logger: quiet})
		if err != nil {
			p.Close()
			return nil, nil, nil, err
		}
		st, closeFn = s, func() { s.Close(); p.Close() }
	}
	m, err := galleta.New(galleta.Options{Secrets: []string{secret}, Store: st, Logger: quiet})
	if err != nil {
		closeFn()
		return nil, nil, nil, err
	}
	newH := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		galleta.FromRequest(r).Set("user", "alice")
		w.Write([]byte("ok"))
	}))
	incH := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := galleta.FromRequest(r).Incr("n", 1)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(strconv.AppendInt(nil, n, 10))
	}))
	return newH, incH, closeFn, nil
}

// pgPool is a pool whose search_path is the driver's schema, with
// pgxpool's defaults otherwise (what a user of either library gets).
func pgPool(ctx context.Context, c serverConfig) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(c.pgURL)
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = c.schema
	return pgxpool.NewWithConfig(ctx, cfg)
}

// scsTable is pgxstore's table (its README's SQL).
const scsTable = `CREATE TABLE IF NOT EXISTS sessions (token TEXT PRIMARY KEY, data BYTEA NOT NULL, expiry TIMESTAMPTZ NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_expiry_idx ON sessions (expiry);`

func scsServer(ctx context.Context, c serverConfig) (http.Handler, http.Handler, func(), error) {
	sm := scs.New()
	closeFn := func() {}
	switch c.kind {
	case "scs-memory":
		m := scsmem.New()
		sm.Store, closeFn = m, m.StopCleanup
	case "scs-redis":
		opt, err := redis.ParseURL(c.redisURL)
		if err != nil {
			return nil, nil, nil, err
		}
		cl := redis.NewClient(opt)
		sm.Store, closeFn = goredisstore.NewWithPrefix(cl, c.prefix), func() { cl.Close() }
	case "scs-postgres":
		p, err := pgPool(ctx, c)
		if err != nil {
			return nil, nil, nil, err
		}
		if _, err := p.Exec(ctx, scsTable); err != nil {
			p.Close()
			return nil, nil, nil, fmt.Errorf("create scs's table: %w", err)
		}
		s := pgxstore.New(p)
		sm.Store, closeFn = s, func() { s.StopCleanup(); p.Close() }
	}
	newH := sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), "user", "alice")
		w.Write([]byte("ok"))
	}))
	incH := sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		n := sm.GetInt(ctx, "n") + 1
		sm.Put(ctx, "n", n)
		w.Write(strconv.AppendInt(nil, int64(n), 10))
	}))
	return newH, incH, closeFn, nil
}

// gorillaServer: gorilla/sessions' FilesystemStore, the file store Go
// users reach for. It writes the file in place (os.WriteFile: no
// temporary file, no rename, no fsync) under one process-wide lock.
func gorillaServer(_ context.Context, c serverConfig) (http.Handler, http.Handler, func(), error) {
	fs := sessions.NewFilesystemStore(c.dir, []byte(secret))
	save := func(w http.ResponseWriter, r *http.Request, s *sessions.Session) bool {
		if err := s.Save(r, w); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return false
		}
		return true
	}
	newH := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := fs.New(r, "session")
		s.Values["user"] = "alice"
		if save(w, r, s) {
			w.Write([]byte("ok"))
		}
	})
	incH := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := fs.Get(r, "session") // a bad or missing cookie gives a new session
		n, _ := s.Values["n"].(int)
		n++
		s.Values["n"] = n
		if save(w, r, s) {
			w.Write(strconv.AppendInt(nil, int64(n), 10))
		}
	})
	return newH, incH, func() {}, nil
}
