package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/galleta-go/galleta/filestore"
	"github.com/galleta-go/galleta/memstore"
	"github.com/galleta-go/galleta/redisstore"
	"github.com/galleta-go/galleta/store"
)

// storeSpec is a parsed --store value.
type storeSpec struct {
	kind   string // a storeKind's name: "memory", "file", "redis", "postgres"
	dir    string // file: the directory
	url    string // redis, postgres: the URL for the store's client, without galleta's own parameters
	prefix string // redis: the key prefix ("" is the store's default)
	schema string // postgres: the table's schema ("": the search_path)
	table  string // postgres: the table ("": the store's default, session)
	target string // postgres: host:port/database and the table, to tell two URLs of one table
	shown  string // what logs and messages print: a URL's password replaced by xxxxx
}

// String is the store as logs, errors and output show it: never a password.
func (s storeSpec) String() string {
	switch {
	case s.shown != "":
		return s.shown
	case s.kind == "file":
		return "file:" + s.dir
	}
	return s.kind
}

// same reports whether two specs name the same store (migrate refuses to
// copy a store onto itself). A Redis URL without ?prefix= has the
// store's default prefix; PostgreSQL URLs name the same table when host,
// port, database, schema and table are the same, however spelled (a
// table found through the search_path is compared as unqualified).
func (s storeSpec) same(o storeSpec) bool {
	if s.kind == "postgres" {
		return o.kind == "postgres" && s.target == o.target
	}
	return s.kind == o.kind && s.dir == o.dir && s.url == o.url && s.keyPrefix() == o.keyPrefix()
}

// keyPrefix is the Redis key prefix the store will use.
func (s storeSpec) keyPrefix() string {
	if s.kind == "redis" && s.prefix == "" {
		return redisDefaultPrefix
	}
	return s.prefix
}

// redisDefaultPrefix is redisstore's default Prefix (connect-redis's).
const redisDefaultPrefix = "sess:"

const defaultStore = "file:./sessions"

// storeKind is one kind of store the program can use. Adding a kind is one
// entry in storeKinds: how its --store values look, how to parse one and
// how to open the store.
type storeKind struct {
	name    string
	schemes []string // URL schemes ("redis" matches redis://...)
	// parse reads a --store value of this kind; errors are usage errors.
	parse func(v string) (storeSpec, error)
	// open opens the store. It may create the store only in openServe and
	// openCreate, writes nothing in openReadOnly, and starts background
	// cleanup only in openServe. Commands (every mode but openServe) fail
	// at once, with an error that says what to check, when the store
	// cannot be reached.
	open func(spec storeSpec, o openOptions) (store.Store, func() error, error)
	// gcNote, when set, is printed after `sessions gc`: what gc means for
	// this kind.
	gcNote string
}

// openOptions is what opening a store may need besides its spec.
type openOptions struct {
	idle time.Duration // the Manager's idle timeout (the file store's TTL)
	log  *slog.Logger
	mode openMode
}

// storeKinds are the stores the program knows.
var storeKinds = []storeKind{
	{name: "memory", parse: parseMemory, open: openMemory},
	{name: "file", schemes: []string{"file"}, parse: parseFile, open: openFile},
	{name: "redis", schemes: []string{"redis", "rediss", "unix", "redis+cluster", "rediss+cluster"}, parse: parseRedis, open: openRedis,
		gcNote: "Redis deletes expired sessions by itself, about a second after they end; gc deletes the ones the store's clock already finds expired in that second"},
	{name: "postgres", schemes: []string{"postgres", "postgresql"}, parse: parsePostgres, open: openPostgres, gcNote: pgGCNote},
}

// storeHelp is the list of --store forms for help texts and errors.
const storeHelp = "memory, file:DIR, redis://HOST:PORT/DB (rediss://, unix://PATH, redis+cluster://HOST:PORT,HOST:PORT/; ?prefix=P sets the key prefix) or postgres://USER:PASS@HOST:PORT/DB (?schema=S&table=T name the table, default session)"

// kindOf returns the kind a --store value names, or nil.
func kindOf(v string) *storeKind {
	if v == "memory" || v == "mem" {
		return &storeKinds[0]
	}
	scheme, _, hasScheme := strings.Cut(v, ":")
	scheme = strings.ToLower(scheme)
	for i := range storeKinds {
		k := &storeKinds[i]
		for _, s := range k.schemes {
			if scheme == s && (hasScheme || s == "file") {
				return k
			}
		}
	}
	return nil
}

// parseStore reads a --store value (see storeHelp).
func parseStore(v string) (storeSpec, error) {
	k := kindOf(v)
	if k == nil {
		return storeSpec{}, usagef("store %q: unknown kind; want %s", redactURL(v), storeHelp)
	}
	return k.parse(v)
}

// openMode says what opening a store may do.
type openMode int

const (
	openServe    openMode = iota // create it if missing, clean up in the background (a server)
	openCreate                   // create it if missing (migrate --to); a PostgreSQL schema must exist
	openExisting                 // it must exist; changes allowed (delete, revoke-user, gc)
	openReadOnly                 // it must exist; nothing is written (list, show, count, migrate --from)
)

// openStore opens the store a spec names. idle is the Manager's idle
// timeout, which the file store needs for Node's expiry rule (its TTL).
// Only a server (openServe) starts the store's background cleanup; only
// openServe and openCreate may create a store, so a typo in a command's
// --store is an error instead of a new, empty store.
func openStore(spec storeSpec, idle time.Duration, log *slog.Logger, mode openMode) (store.Store, func() error, error) {
	for _, k := range storeKinds {
		if k.name == spec.kind && k.open != nil {
			return k.open(spec, openOptions{idle: idle, log: log, mode: mode})
		}
	}
	return nil, nil, fmt.Errorf("store %s cannot be opened", spec)
}

// gcNote is what `sessions gc` adds for the spec's kind.
func gcNote(spec storeSpec) string {
	for _, k := range storeKinds {
		if k.name == spec.kind {
			return k.gcNote
		}
	}
	return ""
}

func parseMemory(string) (storeSpec, error) { return storeSpec{kind: "memory"}, nil }

func openMemory(_ storeSpec, o openOptions) (store.Store, func() error, error) {
	var mo memstore.Options
	if o.mode != openServe {
		mo.SweepInterval = -1
	}
	s := memstore.New(mo)
	return s, s.Close, nil
}

// parseFile reads file:DIR, file:///abs/dir and file (./sessions).
func parseFile(v string) (storeSpec, error) {
	spec := storeSpec{kind: "file"}
	switch {
	case v == "file":
		spec.dir = "./sessions"
	case strings.HasPrefix(v, "file://"):
		u, err := url.Parse(v)
		if err != nil || u.Path == "" {
			return spec, usagef("store %q: want file:DIR or file:///abs/dir", v)
		}
		spec.dir = u.Path
	default:
		spec.dir = strings.TrimPrefix(v, "file:")
		if spec.dir == "" {
			return spec, usagef("store %q: the directory is empty; want file:DIR", v)
		}
	}
	spec.dir = filepath.Clean(spec.dir)
	return spec, nil
}

func openFile(spec storeSpec, o openOptions) (store.Store, func() error, error) {
	fo := filestore.Options{Dir: spec.dir, TTL: o.idle, Logger: o.log,
		NoCreate: o.mode == openExisting, ReadOnly: o.mode == openReadOnly}
	if o.mode != openServe {
		fo.ReapInterval = -1
	}
	s, err := filestore.New(fo)
	if err != nil {
		return nil, nil, err
	}
	return s, s.Close, nil
}

// parseRedis reads a URL in one of redisstore.Open's forms, plus galleta's
// own query parameter prefix (the key prefix, default "sess:", as
// connect-redis's), which it removes before the URL reaches go-redis. The
// rest of the URL is checked now (go-redis parses it without connecting),
// so a typo is a usage error.
func parseRedis(v string) (storeSpec, error) {
	spec := storeSpec{kind: "redis", shown: redactURL(v)}
	base, query, _ := strings.Cut(v, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return spec, usagef("store %q: bad query: %v", spec.shown, err)
	}
	spec.url = v
	if q.Has("prefix") {
		spec.prefix = q.Get("prefix")
		if spec.prefix == "" {
			return spec, usagef("store %q: prefix is empty; give the key prefix (the Node app's RedisStore prefix, sess: by default) or drop the parameter", spec.shown)
		}
		q.Del("prefix")
		spec.url = base
		if len(q) > 0 {
			spec.url += "?" + q.Encode()
		}
	}
	client, err := redisstore.NewClient(spec.url)
	if err != nil {
		return spec, usageError{strings.TrimPrefix(err.Error(), "redisstore: ")}
	}
	client.Close() // only parsed: it never connected
	return spec, nil
}

// pingTimeout bounds the check a command makes that Redis answers.
const pingTimeout = 5 * time.Second

// openRedis opens a redisstore. Redis has no store to create and deletes
// expired keys itself, so the modes differ only in what is allowed: a
// command first checks that Redis answers (an unreachable or mistyped
// server is an error at once, not 503s), and the reading ones get a
// store that cannot write. A server starts even while Redis is down: its
// requests get 503 and /healthz says so until Redis answers.
func openRedis(spec storeSpec, o openOptions) (store.Store, func() error, error) {
	client, err := redisstore.NewClient(spec.url)
	if err != nil {
		return nil, nil, err
	}
	if o.mode != openServe {
		ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
		err := client.Ping(ctx).Err()
		cancel()
		if err != nil {
			client.Close()
			return nil, nil, fmt.Errorf("cannot use Redis at %s: %w; check the URL (host, port, password, TLS) and that Redis is up", spec, err)
		}
	}
	s, err := redisstore.New(client, redisstore.Options{Prefix: spec.prefix, Logger: o.log})
	if err != nil {
		client.Close()
		return nil, nil, fmt.Errorf("open the Redis store at %s: %w", spec, err)
	}
	closeAll := func() error { return errors.Join(s.Close(), client.Close()) }
	if o.mode == openReadOnly {
		return readOnly{s}, closeAll, nil
	}
	return s, closeAll, nil
}

// redactURL hides the password in a URL's user information
// ("redis://user:xxxxx@host"), for messages and logs. It works on the
// text, so a URL that does not parse (a typo, a cluster's host list) is
// redacted too.
func redactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	end := len(rest)
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		end = i
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at < 0 {
		return raw
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return raw
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

// errReadOnly is what a store opened for reading answers a change with.
var errReadOnly = errors.New("the store was opened read-only; nothing was written")

// readOnly is a store that only reads: Get, List, Count and Ping pass
// through, every change fails with errReadOnly. It is what the reading
// commands get for a store without a read-only mode of its own (Redis),
// so that they cannot write however they are changed.
type readOnly struct{ s store.Store }

func (r readOnly) Get(ctx context.Context, id string) (store.Record, error) { return r.s.Get(ctx, id) }
func (readOnly) Set(context.Context, string, store.Record) error            { return errReadOnly }
func (readOnly) Delete(context.Context, string) error                       { return errReadOnly }
func (readOnly) Touch(context.Context, string, time.Time) error             { return errReadOnly }

func (r readOnly) List(ctx context.Context, fn func(string, store.Record) bool) error {
	l, ok := r.s.(store.Lister)
	if !ok {
		return errors.New("this store cannot list its sessions")
	}
	return l.List(ctx, fn)
}

func (r readOnly) Count(ctx context.Context) (int, error) {
	c, ok := r.s.(store.Counter)
	if !ok {
		return 0, errors.New("this store cannot count its sessions")
	}
	return c.Count(ctx)
}

func (r readOnly) Ping(ctx context.Context) error {
	p, ok := r.s.(store.Pinger)
	if !ok {
		return nil
	}
	return p.Ping(ctx)
}
