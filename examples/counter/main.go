// Command counter is the smallest galleta app: a visit counter on the memory
// store. Run it with `go run ./examples/counter` and open
// http://127.0.0.1:8080/.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"html"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/galleta-go/galleta"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	// SIGINT or SIGTERM cancels ctx: run stops accepting, lets the requests
	// in flight finish and returns.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	secret := os.Getenv("GALLETA_SECRET")
	if secret == "" {
		// A fresh secret each start: sessions (in memory anyway) end with
		// the process.
		b := make([]byte, 32)
		rand.Read(b)
		secret = base64.RawURLEncoding.EncodeToString(b)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "counter:", err)
		os.Exit(1)
	}
	if err := run(ctx, ln, galleta.Options{Secrets: []string{secret}}); err != nil {
		fmt.Fprintln(os.Stderr, "counter:", err)
		os.Exit(1)
	}
}

// run serves the counter on ln until ctx is done, then stops accepting,
// waits for the requests in flight (their sessions are saved before their
// responses leave), closes the Manager and returns nil. o.Store nil means
// the memory store; o.Logger nil means slog.Default().
func run(ctx context.Context, ln net.Listener, o galleta.Options) error {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	m, err := galleta.New(o)
	if err != nil {
		ln.Close()
		return err
	}
	defer m.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		s := galleta.FromRequest(r)
		n, err := s.Incr("visits", 1)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>galleta counter</title>
<h1>You have visited this page %d time(s).</h1>
<p>Session created %s. <form method="post" action="/reset"><button>Forget me</button></form>`,
			n, html.EscapeString(s.CreatedAt().Format(time.RFC1123)))
	})
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, r *http.Request) {
		if err := galleta.FromRequest(r).Destroy(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})

	srv := &http.Server{Handler: m.Middleware(mux), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("counter: listening", "url", "http://"+ln.Addr().String()+"/")
	if o.Store == nil {
		log.Info("counter: sessions are kept in this process's memory; they end when it exits")
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("counter: shutting down; waiting for requests in flight")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
