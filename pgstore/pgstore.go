// Package pgstore keeps sessions in PostgreSQL, in connect-pg-simple's
// table, so an Express app using connect-pg-simple and a Go app using
// galleta share them.
//
// A session is one row of connect-pg-simple's table:
//
//	CREATE TABLE "session" (
//	  "sid" varchar NOT NULL COLLATE "default",
//	  "sess" json NOT NULL,
//	  "expire" timestamp(6) NOT NULL
//	);
//	ALTER TABLE "session" ADD CONSTRAINT "session_pkey" PRIMARY KEY ("sid");
//	CREATE INDEX "IDX_session_expire" ON "session" ("expire");
//
// sess holds the session's JSON (express-session's layout) exactly as
// written (json, not jsonb, keeps the text), expire its expiry. There is
// nothing else: no version column, no second table, so Node's store reads
// and writes galleta's sessions and the reverse. Table and schema names are
// options, always quoted as identifiers.
//
// The store works on a *pgxpool.Pool (pgx v5) the caller owns, through
// New, or on one Open builds from a postgres:// URL. It implements
// store.Store, store.Updater, store.OptimisticUpdater, store.Lister,
// store.Counter, store.Reaper, store.Pinger and io.Closer.
//
// # Expiry, clocks and TimeZone
//
// Every comparison with "now" uses the store's clock (Options.Now), passed
// to SQL as a parameter; the database's now() is never used. This is what
// connect-pg-simple does (it passes Math.ceil(Date.now()/1000)), so the
// database's clock does not matter, only the application hosts' clocks do:
// keep them synced (NTP). A host whose clock runs ahead by d ends sessions,
// and prunes rows, d early for the others.
//
// The expire column has no time zone. connect-pg-simple writes
// to_timestamp(seconds), a timestamptz, which PostgreSQL converts to the
// column's local time with the connection's TimeZone setting, and compares
// the column with to_timestamp(...) the same way. The store does exactly
// that (a timestamptz parameter assigned to and compared with the column,
// and expire::timestamptz when it reads it), so galleta and Node agree on
// every expiry as long as ALL connections of every app using the table
// have the same TimeZone. The default is the server's TimeZone setting,
// which both sides then share; a per-connection setting (the URL's
// timezone=, an AfterConnect SET TIME ZONE, pg's options) must be the
// same on every side. Beware PGTZ: pgx (like libpq) reads it, Node's pg
// does not, so setting it for the Go app alone makes the sides disagree.
// Use UTC (ALTER DATABASE ... SET timezone = 'UTC'),
// or at least a zone without daylight saving: around a clock change a
// local time is missing or ambiguous, so a session expiring in that hour
// can end up to an hour early or late. The store logs a warning at setup
// when its connection's zone changes its UTC offset within the next year.
//
// A session is live while expire is after now. The store writes the
// session's Expires to the millisecond (truncated); connect-pg-simple
// writes whole seconds (rounded up) and treats a row as live while
// expire >= ceil(now in seconds), so Node ends a session galleta wrote up
// to a second before galleta does, and the two agree on sessions Node
// wrote.
//
// # Updates
//
// Update and UpdateFrom are a compare-and-set on the session's text: an
// UPDATE ... WHERE sid = $1 AND sess::text = <the text fn saw> AND the row
// is live, one statement and one round trip, atomic under PostgreSQL's
// row locking. A commit whose session nobody else changed since the
// Manager loaded it (UpdateFrom) costs that one round trip. When the text
// changed or the row is gone, the store falls back to a transaction that
// reads the row with SELECT ... FOR UPDATE, calls fn on what it holds and
// writes, so writers contending for one session queue on its row lock
// instead of spinning. A row another request deleted, or that expired,
// is never re-created unless fn asks for a new one (the Manager never
// does).
//
// # Pruning
//
// A goroutine started by New deletes expired rows every PruneInterval
// (randomized between 50% and 150% of it each time, as connect-pg-simple
// does, so instances do not prune in step), in statements of at most
// PruneBatch rows (DELETE ... WHERE ctid = ANY(ARRAY(SELECT ctid ...
// LIMIT n FOR UPDATE SKIP LOCKED))), so no statement holds many row locks
// or runs long, and two instances pruning at once skip each other's rows.
// Between two statements it waits as long as the last one took, so a
// large backlog is deleted at half speed rather than at the expense of
// requests' latency. Close stops it. Reap runs the same deletion once.
//
// # Errors
//
// A refused, dropped or timed-out connection, a pool that cannot hand out
// a connection in time, a server shutting down, starting up or in
// recovery (SQLSTATE class 08, 57P01, 57P02, 57P03), too many connections
// (53300), a read-only server (25006, a standby after a failover),
// statement or lock timeouts (57014, 55P03) and serialization failures
// are wrapped with store.ErrUnavailable, so the Manager answers 503 with
// Retry-After and keeps the cookie. Reads and idempotent writes are retried
// on a fresh connection when the connection they used was lost; a
// compare-and-set whose outcome is unknown is not (it could apply twice).
// A row whose sess is not a JSON object is corrupt: it is logged (without
// the id) and read as no session. Errors and logs never contain an id.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/galleta-go/galleta/internal/batch"
	"github.com/galleta-go/galleta/internal/groupcommit"
	"github.com/galleta-go/galleta/store"
)

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("pgstore: store is closed")

// Defaults of Options.
const (
	DefaultTable             = "session" // connect-pg-simple's tableName default
	defaultMaxSize           = 1 << 20
	defaultPruneInterval     = 15 * time.Minute // connect-pg-simple's pruneSessionInterval default
	defaultPruneBatch        = 1000
	defaultMaxUpdateAttempts = 100
)

// setupTimeout bounds the setup New runs (table check, creation).
const setupTimeout = 5 * time.Second

// Options configures a Store. The zero value gives the defaults.
type Options struct {
	// Schema is the table's schema. Default "": the table name is not
	// qualified and PostgreSQL finds it through the connection's
	// search_path, as connect-pg-simple does without schemaName. Quoted
	// as an identifier, like Table.
	Schema string

	// Table is the table's name. Default "session", connect-pg-simple's.
	// Use the Node app's tableName (and schemaName as Schema). Names are
	// quoted as identifiers, so any text is safe; a name with a NUL byte,
	// or longer than PostgreSQL's 63 bytes, is refused by New.
	Table string

	// CreateTable creates the table (and its primary key and expire index)
	// when it is missing, with connect-pg-simple's table.sql. Without it a
	// missing table makes New fail with an error that prints the SQL to
	// run.
	CreateTable bool

	// MaxSize is the largest session (bytes of JSON) the store writes;
	// larger ones fail with store.ErrTooLarge and nothing is written.
	// Default 1 MiB; negative: no limit (PostgreSQL's own is 1 GB).
	MaxSize int

	// PruneInterval is the mean time between two prunes of expired rows
	// by the background goroutine; each wait is drawn between 50% and 150%
	// of it. Default 15 minutes (connect-pg-simple's default); negative:
	// no background pruning (run Reap yourself, or let the Node app's
	// store prune).
	PruneInterval time.Duration

	// PruneBatch is the most rows one DELETE statement of a prune removes;
	// a prune repeats it until a statement deletes fewer. Default 1000.
	PruneBatch int

	// MaxUpdateAttempts bounds the attempts of one Update or UpdateFrom
	// when other writers keep re-creating the session between its
	// statements; after that the update fails with an error wrapping
	// store.ErrUnavailable. Default 100 (the context usually ends it
	// first).
	MaxUpdateAttempts int

	// Now returns the current time; expiry is judged against it. Default
	// time.Now.
	Now func() time.Time

	// Logger receives warnings: corrupt rows, a TimeZone with daylight
	// saving, prune failures, a database unreachable at New. Never an id.
	// Default slog.Default().
	Logger *slog.Logger

	// Test hooks (set by export_test.go): the pruner's timer and a report
	// of each prune.
	after  func(time.Duration) <-chan time.Time
	pruned func(n int, err error)
	// beforeSets, when set, runs before each statement of sets with the
	// number of its rows (tests).
	beforeSets func(n int)
}

// Store keeps sessions in PostgreSQL. Create it with New or Open; all
// methods are safe for concurrent use.
type Store struct {
	pool        *pgxpool.Pool
	own         bool // built by Open: Close closes it
	schema      string
	table       string
	qtable      string // quoted, schema-qualified when Schema is set
	sql         statements
	createTable bool
	maxSize     int
	batch       int
	maxAttempts int
	retries     int // statements run again after a lost connection: the pool's size
	now         func() time.Time
	log         *slog.Logger

	group groupcommit.Group[pending, carry] // overlapping updates of one session
	sets  batch.Batcher[setItem]            // overlapping sets (batch.go)
	reads batch.Batcher[*readItem]          // overlapping gets (batch.go)
	cas   batch.Batcher[*casItem]           // overlapping compare-and-sets (batch.go)

	setupSem chan struct{} // one setup at a time; waiting honours ctx
	ready    atomic.Bool   // setup done

	closed     atomic.Bool
	closeOnce  sync.Once
	stopPrune  context.CancelFunc
	pruneDone  chan struct{} // closed when the pruner has returned; nil without one
	pruneAfter func(time.Duration) <-chan time.Time
	pruned     func(int, error)
	beforeSets func(int)
}

var (
	_ store.Store             = (*Store)(nil)
	_ store.Updater           = (*Store)(nil)
	_ store.OptimisticUpdater = (*Store)(nil)
	_ store.Lister            = (*Store)(nil)
	_ store.Counter           = (*Store)(nil)
	_ store.Reaper            = (*Store)(nil)
	_ store.Pinger            = (*Store)(nil)
)

// New returns a store on pool, which it never closes: the caller owns it.
//
// New checks the table, bounded by 5 seconds: it must have connect-pg-simple's
// columns (sid text or varchar with a primary key or unique index, sess
// json or jsonb, expire timestamp or timestamptz). With CreateTable, a
// missing table is created; without it, New fails with an error that
// prints the SQL to run. When PostgreSQL cannot be reached, New still
// returns the store (requests get store.ErrUnavailable until it can) and
// logs a warning; the first call that reaches it runs the same check.
//
// Unless PruneInterval is negative, New starts the pruning goroutine,
// which Close stops.
func New(pool *pgxpool.Pool, o Options) (*Store, error) {
	if pool == nil {
		return nil, errors.New("pgstore: New: nil pool; pass a *pgxpool.Pool (or use Open with a postgres:// URL)")
	}
	s, err := newStore(pool, o)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if err := s.setup(ctx); err != nil {
		if !errors.Is(err, store.ErrUnavailable) {
			return nil, err
		}
		s.log.Warn("pgstore: cannot reach PostgreSQL now; requests will get 503 until it answers, and the table is checked then", "err", err)
	}
	s.startPruner(o.PruneInterval)
	return s, nil
}

func newStore(pool *pgxpool.Pool, o Options) (*Store, error) {
	if o.Table == "" {
		o.Table = DefaultTable
	}
	for _, n := range []struct{ what, name string }{{"Table", o.Table}, {"Schema", o.Schema}} {
		if err := checkIdent(n.what, n.name); err != nil {
			return nil, err
		}
	}
	s := &Store{
		pool:        pool,
		retries:     max(maxRetries, int(pool.Config().MaxConns)),
		schema:      o.Schema,
		table:       o.Table,
		createTable: o.CreateTable,
		maxSize:     o.MaxSize,
		batch:       o.PruneBatch,
		maxAttempts: o.MaxUpdateAttempts,
		now:         o.Now,
		log:         o.Logger,
		setupSem:    make(chan struct{}, 1),
		pruneAfter:  o.after,
		pruned:      o.pruned,
		beforeSets:  o.beforeSets,
		sets:        newSetBatcher(),
		reads:       batch.Batcher[*readItem]{Max: maxSetBatch},
		cas:         batch.Batcher[*casItem]{Max: maxSetBatch, Key: func(i *casItem) string { return i.id }},
	}
	if s.schema != "" {
		s.qtable = pgx.Identifier{s.schema, s.table}.Sanitize()
	} else {
		s.qtable = pgx.Identifier{s.table}.Sanitize()
	}
	s.sql = buildStatements(s.qtable)
	if s.maxSize == 0 {
		s.maxSize = defaultMaxSize
	}
	if s.batch <= 0 {
		s.batch = defaultPruneBatch
	}
	if s.maxAttempts <= 0 {
		s.maxAttempts = defaultMaxUpdateAttempts
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.pruneAfter == nil {
		s.pruneAfter = time.After
	}
	return s, nil
}

// checkIdent refuses names PostgreSQL would silently change: a NUL byte
// (pgx drops it when quoting) or more than 63 bytes (PostgreSQL truncates).
func checkIdent(what, name string) error {
	for i := 0; i < len(name); i++ {
		if name[i] == 0 {
			return fmt.Errorf("pgstore: Options.%s contains a NUL byte; PostgreSQL names cannot", what)
		}
	}
	if len(name) > 63 {
		return fmt.Errorf("pgstore: Options.%s is %d bytes; PostgreSQL names are at most 63 bytes (longer ones are truncated)", what, len(name))
	}
	return nil
}

// Open builds a pgx pool from rawURL and returns a store on it that owns
// it: Close closes the pool. rawURL is what pgxpool.ParseConfig accepts,
// normally postgres://user:password@host:port/database?options, with
// libpq's options (sslmode, connect_timeout, application_name, timezone
// and other run-time parameters) and pgxpool's (pool_max_conns,
// pool_min_conns, pool_max_conn_idle_time, ...). Without connect_timeout
// in the URL a connection attempt is bounded by 5 seconds (pgx's default
// is none, so a connection attempt to a blackholed server would hang
// until the request's deadline and keep its pool slot after it). Errors
// never repeat the password.
func Open(rawURL string, o Options) (*Store, error) {
	cfg, err := ParseConfig(rawURL)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: build the connection pool: %w", err)
	}
	s, err := New(pool, o)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.own = true
	return s, nil
}

// ParseConfig parses rawURL as Open does, for callers that want to change
// the pool's configuration (an AfterConnect, a tracer, the pool size) and
// pass the pool to New.
func ParseConfig(rawURL string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		// pgx's parse errors redact the password.
		return nil, fmt.Errorf("pgstore: database URL: %w (want postgres://user:password@host:port/database?sslmode=...)", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	return cfg, nil
}

// Close stops the pruner, waits for it to return and, when Open built the
// pool, closes the pool. A pool passed to New is left open. Close is safe
// to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if s.stopPrune != nil {
			s.stopPrune()
			<-s.pruneDone
		}
		if s.own {
			s.pool.Close()
		}
	})
	return nil
}

// Pool returns the pool the store uses.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Table returns the table's name as the store writes it in SQL: quoted,
// and qualified by the schema when Options.Schema is set.
func (s *Store) Table() string { return s.qtable }

func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pgstore: %w", err)
	}
	return nil
}

// begin checks the id, the store and ctx, and makes sure setup has run.
func (s *Store) begin(ctx context.Context, id string) error {
	if !store.ValidID(id) {
		return fmt.Errorf("pgstore: %w", store.ErrInvalidID)
	}
	return s.start(ctx)
}

// start checks the store and ctx, and makes sure setup has run (its errors
// say what failed).
func (s *Store) start(ctx context.Context) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if s.ready.Load() {
		return nil
	}
	return s.setup(ctx)
}

// nowMS is the store's now, truncated to the millisecond: the precision
// of every expiry it writes and compares.
func (s *Store) nowMS() time.Time { return time.UnixMilli(s.now().UnixMilli()) }

// ms truncates t to the millisecond.
func ms(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()) }

func (s *Store) tooLarge(n int) error {
	if s.maxSize > 0 && n > s.maxSize {
		return fmt.Errorf("pgstore: session of %d bytes is over MaxSize (%d bytes); nothing was written: %w", n, s.maxSize, store.ErrTooLarge)
	}
	return nil
}

// isObject reports whether b, which PostgreSQL has validated as JSON (the
// column is json), is a JSON object.
func isObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c == '{'
	}
	return false
}

// row is a live row as the store read it.
type row struct {
	found  bool
	data   []byte
	expire time.Time
}

// view turns a row into what the store reports: the record, and whether
// it is a live session. A corrupt row (sess not a JSON object) is no
// session and is logged.
func (s *Store) view(r row, now time.Time) (store.Record, bool) {
	if !r.found || !r.expire.After(now) {
		return store.Record{}, false
	}
	if !isObject(r.data) {
		s.log.Warn("pgstore: a stored session is not a JSON object; it is treated as no session (the row is left for the pruner)",
			"table", s.qtable, "bytes", len(r.data))
		return store.Record{}, false
	}
	return store.Record{Data: r.data, Expires: r.expire}, true
}

// read returns the live row of id (found false when there is none): one
// statement, retried when its connection was lost.
func (s *Store) read(ctx context.Context, id string, now time.Time) (row, error) {
	var r row
	err := s.retry(ctx, true, func() error {
		r = row{}
		err := s.pool.QueryRow(ctx, s.sql.get, id, now).Scan(&r.data, &r.expire)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		r.found = err == nil
		return err
	})
	return r, err
}

// Get returns the live session stored under id, or store.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (store.Record, error) {
	if err := s.begin(ctx, id); err != nil {
		return store.Record{}, err
	}
	now := s.nowMS()
	it := &readItem{id: id, now: now}
	if err := s.reads.Do(ctx, it, s.readMany); err != nil {
		return store.Record{}, s.fail("get session", err)
	}
	rec, ok := s.view(it.r, now)
	if !ok {
		return store.Record{}, store.ErrNotFound
	}
	return rec, nil
}

// Set stores rec under id (INSERT ... ON CONFLICT DO UPDATE, as
// connect-pg-simple's set). A record whose Expires is not after now is not
// stored and the row is deleted.
func (s *Store) Set(ctx context.Context, id string, rec store.Record) error {
	if err := s.begin(ctx, id); err != nil {
		return err
	}
	if err := s.tooLarge(len(rec.Data)); err != nil {
		return err
	}
	exp := ms(rec.Expires)
	if !exp.After(s.nowMS()) {
		return s.fail("delete expired session", s.exec(ctx, true, s.sql.del, id))
	}
	return s.fail("save session", s.set(ctx, id, string(rec.Data), exp))
}

// Delete removes id. Deleting a missing id is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := s.begin(ctx, id); err != nil {
		return err
	}
	return s.fail("delete session", s.exec(ctx, true, s.sql.del, id))
}

// Touch moves the expiry of the live session under id to expires without
// rewriting sess (UPDATE ... SET expire, as connect-pg-simple's touch, but
// only on a live row). It returns store.ErrNotFound when no live session
// has the id and never creates a row. An expires not after now deletes
// the session.
func (s *Store) Touch(ctx context.Context, id string, expires time.Time) error {
	if err := s.begin(ctx, id); err != nil {
		return err
	}
	now := s.nowMS()
	exp := ms(expires)
	var n int64
	err := s.retry(ctx, true, func() error {
		var tag pgconn.CommandTag
		var err error
		if exp.After(now) {
			tag, err = s.pool.Exec(ctx, s.sql.touch, id, exp, now)
		} else {
			tag, err = s.pool.Exec(ctx, s.sql.delLive, id, now)
		}
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return s.fail("touch session", err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// exec runs one statement, retried when its connection was lost if
// idempotent says a second run cannot do harm.
func (s *Store) exec(ctx context.Context, idempotent bool, sql string, args ...any) error {
	return s.retry(ctx, idempotent, func() error {
		_, err := s.pool.Exec(ctx, sql, args...)
		return err
	})
}
