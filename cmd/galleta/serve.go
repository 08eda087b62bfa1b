package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/galleta-go/galleta"
)

const serveUsage = `Usage: galleta serve [flags]

Runs the demo web app. Every flag can also be set with the environment
variable named after it (GALLETA_ADDR, GALLETA_STORE, ...); a flag wins over
its variable.

Flags:
`

// serveConfig is serve's flags.
type serveConfig struct {
	addr          string
	store         storeSpec
	secretFile    string
	idle          time.Duration
	absolute      time.Duration
	cookieName    string
	secure        galleta.SecureMode
	trustProxy    bool
	adminPassword string
	logFormat     string
}

// envFlags registers flags whose defaults come from environment variables
// ($GALLETA_<NAME>); a bad value in a variable is kept as a usage error for
// after parsing.
type envFlags struct {
	fs   *flag.FlagSet
	errs []error
}

// envName is the variable that mirrors a flag: idle -> GALLETA_IDLE.
func envName(flag string) string {
	return "GALLETA_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// lookup returns the variable's value, parsed; a parse failure is recorded.
func lookup[T any](e *envFlags, name string, def T, parse func(string) (T, error), want string) T {
	v, ok := os.LookupEnv(envName(name))
	if !ok {
		return def
	}
	x, err := parse(v)
	if err != nil {
		e.errs = append(e.errs, usagef("$%s=%q is not %s", envName(name), v, want))
		return def
	}
	return x
}

func (e *envFlags) String(p *string, name, def, usage string) {
	def = lookup(e, name, def, func(v string) (string, error) { return v, nil }, "")
	e.fs.StringVar(p, name, def, usage+" ($"+envName(name)+")")
}

func (e *envFlags) Duration(p *time.Duration, name string, def time.Duration, usage string) {
	def = lookup(e, name, def, time.ParseDuration, "a duration like 30m or 12h")
	e.fs.DurationVar(p, name, def, usage+" ($"+envName(name)+")")
}

func (e *envFlags) Bool(p *bool, name string, def bool, usage string) {
	def = lookup(e, name, def, strconv.ParseBool, "true or false")
	e.fs.BoolVar(p, name, def, usage+" ($"+envName(name)+")")
}

func parseServe(args []string, stdout io.Writer) (serveConfig, error) {
	var c serveConfig
	fs := newFlagSet("serve", serveUsage, stdout)
	ef := &envFlags{fs: fs.FlagSet}
	var storeURL, secure string
	ef.String(&c.addr, "addr", "127.0.0.1:8080", "address to listen on")
	ef.String(&storeURL, "store", defaultStore, "where sessions live: memory (lost at exit), file:DIR, redis://HOST:PORT/DB (rediss://, unix://PATH, redis+cluster://HOST:PORT,HOST:PORT/; ?prefix=P sets the key prefix, default sess:), or postgres://USER:PASS@HOST:PORT/DB?sslmode=... (?schema=S&table=T name the table, default session; created when missing)")
	ef.String(&c.secretFile, "secret-file", "", "file holding the cookie secret (one line); created with a random secret when missing (default: beside a file store, e.g. ./sessions.secret; ./galleta.secret for the others)")
	ef.Duration(&c.idle, "idle", galleta.DefaultIdleTimeout, "idle timeout: a session unused this long ends")
	ef.Duration(&c.absolute, "absolute", galleta.DefaultAbsoluteTimeout, "absolute timeout: a session ends this long after creation, however active")
	ef.String(&c.cookieName, "cookie-name", "sid", "session cookie name (connect.sid to share with Express)")
	ef.String(&secure, "secure", "auto", "Secure cookie attribute: auto (when the request is HTTPS), always or never")
	ef.Bool(&c.trustProxy, "trust-proxy", false, "trust X-Forwarded-Proto from a reverse proxy")
	ef.String(&c.adminPassword, "admin-password", "", "password of the admin page (the admin page is off without one)")
	ef.String(&c.logFormat, "log-format", "text", "log format: text or json")
	if err := parse(fs, args); err != nil {
		return c, err
	}
	if len(ef.errs) > 0 {
		return c, ef.errs[0]
	}
	if fs.NArg() > 0 {
		return c, usagef("serve takes no arguments, got %q", fs.Args())
	}
	spec, err := parseStore(storeURL)
	if err != nil {
		return c, err
	}
	c.store = spec
	switch secure {
	case "auto":
		c.secure = galleta.SecureAuto
	case "always":
		c.secure = galleta.SecureAlways
	case "never":
		c.secure = galleta.SecureNever
	default:
		return c, usagef("--secure %q: want auto, always or never", secure)
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return c, usagef("--log-format %q: want text or json", c.logFormat)
	}
	if c.idle <= 0 {
		return c, usagef("--idle must be positive, got %v", c.idle)
	}
	if c.absolute == 0 {
		return c, usagef("--absolute must not be 0 (use a negative value for no absolute timeout)")
	}
	if c.secretFile == "" {
		c.secretFile = defaultSecretFile(c.store)
	}
	return c, nil
}

// defaultSecretFile is beside the store: ./sessions -> ./sessions.secret.
func defaultSecretFile(s storeSpec) string {
	if s.kind == "file" {
		return filepath.Clean(s.dir) + ".secret"
	}
	return "galleta.secret"
}

// loadSecret reads the secret file, creating it (0600, one line of 32
// random bytes in base64url) when it does not exist.
//
// Several servers may start at once with a new file: each writes its own
// secret to a temporary file in the same directory, syncs it, and links it
// to the final name. link(2) fails when the name exists, so exactly one
// creator wins, the file appears only complete, and the others read the
// winner's secret. A crash leaves at most a temporary file, never an empty
// secret file.
func loadSecret(path string) (secret string, created bool, err error) {
	s, err := readSecret(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return s, false, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, fmt.Errorf("create the directory of the secret file %s: %w", path, err)
	}
	var raw [32]byte
	rand.Read(raw[:])
	s = base64.RawURLEncoding.EncodeToString(raw[:])
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // 0600
	if err != nil {
		return "", false, fmt.Errorf("create secret file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(s + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", false, fmt.Errorf("write secret file %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		s, err := readSecret(path) // another server created it first
		return s, false, err
	} else if err != nil {
		return "", false, fmt.Errorf("create secret file %s: %w (write one line of at least %d random characters there yourself, or choose another --secret-file)", path, err, galleta.MinSecretLen)
	}
	if d, err := os.Open(dir); err == nil { // make the new name durable
		d.Sync()
		d.Close()
	}
	return s, true, nil
}

// readSecret reads an existing secret file.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err != nil {
		return "", fmt.Errorf("read secret file %s: %w", path, err)
	}
	s := strings.TrimSpace(string(b))
	switch {
	case s == "":
		return "", fmt.Errorf("secret file %s is empty (an older galleta that stopped while creating it can leave it so): delete it and start again to have a new secret made, which signs everyone out; or put the secret your sessions were signed with in it", path)
	case len(s) < galleta.MinSecretLen:
		return "", fmt.Errorf("secret file %s holds %d bytes; it needs at least %d (delete it to have a new one made, which signs everyone out)", path, len(s), galleta.MinSecretLen)
	}
	return s, nil
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseServe(args, stdout)
	if err != nil {
		return err
	}
	log := newLogger(c.logFormat, stderr)
	secret, created, err := loadSecret(c.secretFile)
	if err != nil {
		return err
	}
	if created {
		log.Info("galleta: created a new cookie secret; keep this file to keep sessions valid across restarts", "secret_file", c.secretFile)
	} else {
		log.Info("galleta: cookie secret loaded", "secret_file", c.secretFile)
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w; choose another address with --addr", c.addr, err)
	}
	a, err := newApp(c, secret, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer a.close()
	srv := &http.Server{
		Handler:           a.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("galleta: serving the demo app", "url", "http://"+ln.Addr().String()+"/", "store", c.store.String(), "admin", c.adminPassword != "")
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("galleta: shutting down; waiting for requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("galleta: stopped")
	return nil
}
