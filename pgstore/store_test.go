package pgstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/galleta-go/galleta/internal/storecheck"
	"github.com/galleta-go/galleta/internal/testpg"
	"github.com/galleta-go/galleta/pgstore"
	"github.com/galleta-go/galleta/store"
)

const testID = "Tq1Nw3v0rG8m1JYzG2a0Pp4x9kXc7bV5nM3lK1jH0gF"

var (
	ctx  = context.Background()
	data = []byte(`{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"user":"ann"}`)
)

// queryCounter counts the statements a pool's connections send (a
// transaction's BEGIN and COMMIT count too) and the statements they
// prepare: together, the round trips.
type queryCounter struct {
	queries, prepares atomic.Int64
}

func (q *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	q.queries.Add(1)
	return ctx
}
func (q *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (q *queryCounter) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	q.prepares.Add(1)
	return ctx
}
func (q *queryCounter) TracePrepareEnd(context.Context, *pgx.Conn, pgx.TracePrepareEndData) {}

func (q *queryCounter) trips() int64 { return q.queries.Load() + q.prepares.Load() }

// open returns a store on a fresh schema of the test's PostgreSQL with
// CreateTable, and its pool.
func open(t *testing.T, cfg *pgxpool.Config, o pgstore.Options) (*pgstore.Store, *pgxpool.Pool) {
	t.Helper()
	pool := testpg.Pool(t, cfg)
	if o.Schema == "" {
		o.Schema = testpg.Schema(t)
	}
	o.CreateTable = true
	if o.Logger == nil {
		o.Logger = storecheck.Quiet
	}
	s, err := pgstore.New(pool, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, pool
}

// column reads one column of id's row as text, through a connection of
// its own (UTC unless the database says otherwise).
func column(t *testing.T, s *pgstore.Store, col, id string) string {
	t.Helper()
	var v string
	testpg.QueryRow(t, "SELECT "+col+"::text FROM "+s.Table()+" WHERE sid = $1", []any{id}, &v)
	return v
}

// The table and its rows are connect-pg-simple's: table.sql's columns,
// primary key and index; sess holds the bytes written; expire the expiry
// to the millisecond; Touch changes expire only and never creates a row;
// a commit nobody raced (UpdateFrom) and Get, Set, Touch are one round
// trip each.
func TestLayout(t *testing.T) {
	cfg := testpg.Config(t)
	qc := &queryCounter{}
	cfg.ConnConfig.Tracer = qc
	cfg.MaxConns = 1 // one connection: its statement cache is warm after the first calls
	s, _ := open(t, cfg, pgstore.Options{})
	schema := strings.Trim(strings.Split(s.Table(), ".")[0], `"`)

	var cols string
	testpg.QueryRow(t, `SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' not null' ELSE '' END, ', ' ORDER BY attnum) `+
		`FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0`, []any{s.Table()}, &cols)
	if want := "sid character varying not null, sess json not null, expire timestamp(6) without time zone not null"; cols != want {
		t.Errorf("columns: %s\nwant      %s", cols, want)
	}
	var idx string
	testpg.QueryRow(t, `SELECT string_agg(indexname || ': ' || indexdef, '; ' ORDER BY indexname) FROM pg_indexes WHERE schemaname = $1`, []any{schema}, &idx)
	for _, want := range []string{`IDX_session_expire: CREATE INDEX "IDX_session_expire" ON ` + schema + `.session USING btree (expire)`,
		`session_pkey: CREATE UNIQUE INDEX session_pkey ON ` + schema + `.session USING btree (sid)`} {
		if !strings.Contains(idx, want) {
			t.Errorf("indexes %q lack %q", idx, want)
		}
	}

	exp := time.Date(2031, 3, 4, 5, 6, 7, 891_234_567, time.UTC)
	round := func(what string, f func()) {
		t.Helper()
		f() // warm: the first use of a statement on a connection prepares it
		before := qc.trips()
		f()
		if n := qc.trips() - before; n != 1 {
			t.Errorf("%s: %d round trips, want 1", what, n)
		}
	}
	round("Set", func() {
		if err := s.Set(ctx, testID, store.Record{Data: data, Expires: exp}); err != nil {
			t.Fatal(err)
		}
	})
	if got := column(t, s, "sess", testID); got != string(data) {
		t.Errorf("sess = %s, want the bytes written", got)
	}
	if got := column(t, s, "expire", testID); got != "2031-03-04 05:06:07.891" {
		t.Errorf("expire = %s, want 2031-03-04 05:06:07.891 (the expiry in UTC, to the millisecond)", got)
	}
	round("Get", func() {
		rec, err := s.Get(ctx, testID)
		if err != nil || !bytes.Equal(rec.Data, data) || !rec.Expires.Equal(exp.Truncate(time.Millisecond)) {
			t.Fatalf("Get = %s %v, %v", rec.Data, rec.Expires, err)
		}
	})
	exp2 := exp.Add(time.Hour)
	round("Touch", func() {
		if err := s.Touch(ctx, testID, exp2); err != nil {
			t.Fatal(err)
		}
	})
	if got := column(t, s, "expire", testID); got != "2031-03-04 06:06:07.891" {
		t.Errorf("expire after Touch = %s", got)
	}
	if got := column(t, s, "sess", testID); got != string(data) {
		t.Errorf("Touch changed sess to %s", got)
	}
	other := testID[:42] + "x"
	if err := s.Touch(ctx, other, exp2); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Touch of a missing id = %v, want ErrNotFound", err)
	}
	var n int
	testpg.QueryRow(t, "SELECT count(*) FROM "+s.Table(), nil, &n)
	if n != 1 {
		t.Errorf("%d rows after a Touch of a missing id, want 1", n)
	}

	seen, err := s.Get(ctx, testID)
	if err != nil {
		t.Fatal(err)
	}
	next := []byte(`{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"user":"bob"}`)
	calls := 0
	update := func(cur store.Record, found bool) (store.Record, bool, error) {
		calls++
		return store.Record{Data: next, Expires: exp2}, true, nil
	}
	before := qc.trips()
	if err := s.UpdateFrom(ctx, testID, seen, update); err != nil {
		t.Fatal(err)
	}
	if n := qc.trips() - before; n > 2 || calls != 1 { // may prepare the statement first
		t.Errorf("first UpdateFrom: %d round trips, %d calls of fn", n, calls)
	}
	seen.Data, next = next, data
	calls = 0
	before = qc.trips()
	if err := s.UpdateFrom(ctx, testID, seen, update); err != nil {
		t.Fatal(err)
	}
	if n := qc.trips() - before; n != 1 || calls != 1 {
		t.Errorf("UpdateFrom with nobody else writing: %d round trips, %d calls of fn; want 1 and 1", n, calls)
	}
	if got := column(t, s, "sess", testID); got != string(data) {
		t.Errorf("after UpdateFrom sess = %s", got)
	}
}

// A row whose sess is JSON but not an object is no session, logged
// without the id; an update replaces it; List skips it, Count counts it.
func TestCorruptRow(t *testing.T) {
	var log storecheck.LogBuf
	s, _ := open(t, nil, pgstore.Options{Logger: log.Logger()})
	for _, bad := range []string{`[1,2]`, `"str"`, `null`, `42`, ` true `} {
		testpg.Exec(t, "INSERT INTO "+s.Table()+" (sid, sess, expire) VALUES ($1, $2, now() + interval '1 hour') ON CONFLICT (sid) DO UPDATE SET sess = EXCLUDED.sess", testID, bad)
		if rec, err := s.Get(ctx, testID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get of %s = %q, %v; want ErrNotFound", bad, rec.Data, err)
		}
		listed := false
		if err := s.List(ctx, func(id string, _ store.Record) bool { listed = listed || id == testID; return true }); err != nil {
			t.Fatal(err)
		}
		if listed {
			t.Errorf("List returned the corrupt row %s", bad)
		}
		if n, err := s.Count(ctx); err != nil || n != 1 {
			t.Errorf("Count with a corrupt row = %d, %v; want 1", n, err)
		}
		for _, name := range []string{"Update", "UpdateFrom"} {
			var shown []bool
			f := func(cur store.Record, found bool) (store.Record, bool, error) {
				shown = append(shown, found)
				return store.Record{Data: data, Expires: time.Now().Add(time.Hour)}, true, nil
			}
			testpg.Exec(t, "UPDATE "+s.Table()+" SET sess = $2 WHERE sid = $1", testID, bad)
			var err error
			if name == "Update" {
				err = s.Update(ctx, testID, f)
			} else {
				err = s.UpdateFrom(ctx, testID, store.Record{Data: data, Expires: time.Now().Add(time.Hour)}, f)
			}
			if err != nil {
				t.Fatalf("%s over %s: %v", name, bad, err)
			}
			// UpdateFrom shows fn its seen record first, then what is stored.
			if len(shown) == 0 || shown[len(shown)-1] {
				t.Errorf("%s of %s: fn was shown found=%v; want the corrupt row shown as no session last", name, bad, shown)
			}
			if rec, err := s.Get(ctx, testID); err != nil || !bytes.Equal(rec.Data, data) {
				t.Errorf("after %s over %s: %q, %v", name, bad, rec.Data, err)
			}
		}
	}
	out := log.String()
	if !strings.Contains(out, "not a JSON object") {
		t.Errorf("no log line for the corrupt rows: %q", out)
	}
	if strings.Contains(out, testID) {
		t.Errorf("a log line names the session id: %q", out)
	}
}

func TestTooLarge(t *testing.T) {
	s, _ := open(t, nil, pgstore.Options{MaxSize: 64})
	big := append([]byte(`{"x":"`), append(bytes.Repeat([]byte("a"), 100), `"}`...)...)
	if err := s.Set(ctx, testID, store.Record{Data: big, Expires: time.Now().Add(time.Hour)}); !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("Set of %d bytes with MaxSize 64 = %v, want ErrTooLarge", len(big), err)
	}
	err := s.Update(ctx, testID, func(store.Record, bool) (store.Record, bool, error) {
		return store.Record{Data: big, Expires: time.Now().Add(time.Hour)}, true, nil
	})
	if !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("Update to %d bytes with MaxSize 64 = %v, want ErrTooLarge", len(big), err)
	}
	var n int
	testpg.QueryRow(t, "SELECT count(*) FROM "+s.Table(), nil, &n)
	if n != 0 {
		t.Errorf("%d rows after refused writes", n)
	}
}

// Table and schema names are quoted identifiers: a name made to break out
// of quotes names a table, nothing more; names PostgreSQL would change are
// refused.
func TestHostileNames(t *testing.T) {
	schema := testpg.Schema(t)
	testpg.Exec(t, "CREATE TABLE "+pgx.Identifier{schema, "canary"}.Sanitize()+" (x int)")
	for _, name := range []string{
		`session"; DROP TABLE canary; --`,
		`x" (sid text); DROP TABLE canary; CREATE TABLE "y`,
		`Session With Spaces.and.dots`,
		`"`,
		`sessão`,
	} {
		s, _ := open(t, nil, pgstore.Options{Schema: schema, Table: name})
		if err := s.Set(ctx, testID, store.Record{Data: data, Expires: time.Now().Add(time.Hour)}); err != nil {
			t.Fatalf("table %q: Set: %v", name, err)
		}
		if rec, err := s.Get(ctx, testID); err != nil || !bytes.Equal(rec.Data, data) {
			t.Errorf("table %q: Get = %s, %v", name, rec.Data, err)
		}
		var n int
		testpg.QueryRow(t, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'r'", []any{schema, name}, &n)
		if n != 1 {
			t.Errorf("table %q: not created under its exact name", name)
		}
	}
	var canary int
	testpg.QueryRow(t, "SELECT count(*) FROM pg_class WHERE relname = 'canary'", nil, &canary)
	if canary != 1 {
		t.Errorf("the canary table is gone: a name was run as SQL")
	}
	pool := testpg.Pool(t, nil)
	for _, o := range []pgstore.Options{
		{Table: "a\x00b"},
		{Schema: "a\x00b"},
		{Table: strings.Repeat("t", 64)},
	} {
		if s, err := pgstore.New(pool, o); err == nil {
			s.Close()
			t.Errorf("New(%+q) accepted a name PostgreSQL would change", o.Table+o.Schema)
		}
	}
}

// Without CreateTable a missing table fails New with the SQL to run; a
// table that is not connect-pg-simple's is refused; several instances
// creating the table at once create it once.
func TestTableChecks(t *testing.T) {
	pool := testpg.Pool(t, nil)
	schema := testpg.Schema(t)
	_, err := pgstore.New(pool, pgstore.Options{Schema: schema, Logger: storecheck.Quiet})
	if err == nil {
		t.Fatal("New without the table and without CreateTable succeeded")
	}
	want := `CREATE TABLE "` + schema + `"."session" (`
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `CREATE INDEX "IDX_session_expire"`) || !strings.Contains(err.Error(), "CreateTable") {
		t.Errorf("New's error does not print the SQL to run: %v", err)
	}
	// The printed SQL creates a table New accepts.
	sql := err.Error()[strings.Index(err.Error(), "CREATE TABLE"):]
	sql = sql[:strings.LastIndex(sql, ";")+1]
	testpg.Exec(t, sql)
	s, err := pgstore.New(pool, pgstore.Options{Schema: schema, Logger: storecheck.Quiet})
	if err != nil {
		t.Fatalf("New on the table its own error's SQL created: %v", err)
	}
	s.Close()

	for _, tc := range []struct{ ddl, want string }{
		{`(sid varchar PRIMARY KEY, sess text NOT NULL, expire timestamp NOT NULL)`, `sess is "text"`},
		{`(sid varchar, sess json NOT NULL, expire timestamp NOT NULL)`, "primary key"},
		{`(sid varchar PRIMARY KEY, sess json NOT NULL)`, `expire is ""`},
		{`(sid int PRIMARY KEY, sess json NOT NULL, expire timestamp NOT NULL)`, `sid is "integer"`},
	} {
		table := "t" + fmt.Sprint(len(tc.ddl))
		testpg.Exec(t, "CREATE TABLE "+pgx.Identifier{schema, table}.Sanitize()+" "+tc.ddl)
		s, err := pgstore.New(pool, pgstore.Options{Schema: schema, Table: table, Logger: storecheck.Quiet})
		if err == nil {
			s.Close()
			t.Errorf("New accepted %s", tc.ddl)
		} else if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New on %s: %v, want it to say %s", tc.ddl, err, tc.want)
		}
	}
	// jsonb and timestamptz work (connect-pg-simple works on them too).
	testpg.Exec(t, "CREATE TABLE "+pgx.Identifier{schema, "b"}.Sanitize()+" (sid text PRIMARY KEY, sess jsonb NOT NULL, expire timestamptz NOT NULL)")
	if s, err := pgstore.New(pool, pgstore.Options{Schema: schema, Table: "b", Logger: storecheck.Quiet}); err != nil {
		t.Errorf("New on a jsonb/timestamptz table: %v", err)
	} else {
		s.Close()
	}

	// Eight instances create one table concurrently.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			s, err := pgstore.New(pool, pgstore.Options{Schema: schema, Table: "together", CreateTable: true, Logger: storecheck.Quiet})
			if err != nil {
				t.Errorf("concurrent CreateTable: %v", err)
				return
			}
			s.Close()
		})
	}
	wg.Wait()
}

// The expire column has no time zone: the store writes and reads it
// through the connection's TimeZone, as connect-pg-simple does. On a
// connection in America/Sao_Paulo (UTC-3) an expiry is stored as Sao Paulo
// local time and reads back exactly; a store whose connections use UTC
// reads the same row three hours off, which is why every app using the
// table needs the same TimeZone.
func TestTimeZone(t *testing.T) {
	schema := testpg.Schema(t)
	cfg := testpg.Config(t)
	cfg.ConnConfig.RuntimeParams["timezone"] = "America/Sao_Paulo"
	sp, _ := open(t, cfg, pgstore.Options{Schema: schema})
	utc, _ := open(t, nil, pgstore.Options{Schema: schema})

	exp := time.Date(2031, 3, 4, 5, 6, 7, 891_000_000, time.UTC)
	if err := sp.Set(ctx, testID, store.Record{Data: data, Expires: exp}); err != nil {
		t.Fatal(err)
	}
	if got := column(t, sp, "expire", testID); got != "2031-03-04 02:06:07.891" {
		t.Errorf("expire written on a Sao Paulo connection = %s, want 2031-03-04 02:06:07.891 (local time)", got)
	}
	if rec, err := sp.Get(ctx, testID); err != nil || !rec.Expires.Equal(exp) {
		t.Errorf("Sao Paulo store reads Expires %v, %v; want %v", rec.Expires, err, exp)
	}
	if rec, err := utc.Get(ctx, testID); err != nil || !rec.Expires.Equal(exp.Add(-3*time.Hour)) {
		t.Errorf("UTC store reads the Sao Paulo row's Expires as %v, %v; want %v (3 h off: mixed TimeZones disagree)", rec.Expires, err, exp.Add(-3*time.Hour))
	}
}

// A zone with daylight saving is warned about at New; UTC is not.
func TestTimeZoneWarning(t *testing.T) {
	for _, tc := range []struct {
		tz   string
		warn bool
	}{{"Europe/Berlin", true}, {"UTC", false}, {"America/Sao_Paulo", false}} {
		cfg := testpg.Config(t)
		cfg.ConnConfig.RuntimeParams["timezone"] = tc.tz
		var log storecheck.LogBuf
		open(t, cfg, pgstore.Options{Logger: log.Logger()})
		if got := strings.Contains(log.String(), "daylight saving"); got != tc.warn {
			t.Errorf("TimeZone %s: warning %v, want %v (log %q)", tc.tz, got, tc.warn, log.String())
		}
	}
}

// Every pgx query mode works, including the simple protocol a pgbouncer
// in transaction mode may need.
func TestQueryExecModes(t *testing.T) {
	for _, mode := range []pgx.QueryExecMode{
		pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe,
		pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol,
	} {
		t.Run(mode.String(), func(t *testing.T) {
			cfg := testpg.Config(t)
			cfg.ConnConfig.DefaultQueryExecMode = mode
			s, _ := open(t, cfg, pgstore.Options{})
			exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
			weird := []byte(`{"q":"it's \"quoted\" \\ and 'single' $1 -- é ☃ \u0000"}`)
			if err := s.Set(ctx, testID, store.Record{Data: weird, Expires: exp}); err != nil {
				t.Fatal(err)
			}
			rec, err := s.Get(ctx, testID)
			if err != nil || !bytes.Equal(rec.Data, weird) || !rec.Expires.Equal(exp) {
				t.Fatalf("Get = %s %v, %v", rec.Data, rec.Expires, err)
			}
			calls := 0
			err = s.UpdateFrom(ctx, testID, rec, func(cur store.Record, found bool) (store.Record, bool, error) {
				calls++
				return store.Record{Data: data, Expires: exp}, true, nil
			})
			if err != nil || calls != 1 {
				t.Fatalf("UpdateFrom = %v after %d calls, want one call (the text matched)", err, calls)
			}
			if err := s.Touch(ctx, testID, exp.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if n, err := s.Count(ctx); err != nil || n != 1 {
				t.Errorf("Count = %d, %v", n, err)
			}
			if err := s.Ping(ctx); err != nil {
				t.Errorf("Ping: %v", err)
			}
		})
	}
}

// Open builds the pool from a URL and Close closes it; a pool passed to
// New is the caller's. Run-time parameters in the URL reach the
// connections. Errors never show the password.
func TestOpen(t *testing.T) {
	pool := testpg.Pool(t, nil)
	schema := testpg.Schema(t)
	s, err := pgstore.New(pool, pgstore.Options{Schema: schema, CreateTable: true, Logger: storecheck.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := pool.Ping(ctx); err != nil {
		t.Errorf("the caller's pool after the store's Close: %v", err)
	}
	if _, err := s.Get(ctx, testID); !errors.Is(err, pgstore.ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}

	u := testpg.URL()
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	o, err := pgstore.Open(u+sep+"timezone=America/Sao_Paulo&application_name=galleta-open-test", pgstore.Options{Schema: schema, Logger: storecheck.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	var tz string
	if err := o.Pool().QueryRow(ctx, "SHOW TimeZone").Scan(&tz); err != nil || tz != "America/Sao_Paulo" {
		t.Errorf("Open's connections have TimeZone %q, %v; want the URL's America/Sao_Paulo", tz, err)
	}
	if o.Pool().Config().ConnConfig.ConnectTimeout != 5*time.Second {
		t.Errorf("Open's ConnectTimeout = %v, want 5s when the URL has none", o.Pool().Config().ConnConfig.ConnectTimeout)
	}
	if err := o.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := o.Pool().Ping(ctx); err == nil {
		t.Error("Open's pool still works after Close")
	}
	if err := o.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	storecheck.URLsRefused(t, []string{
		"postgres://user:s3cret@127.0.0.1:5432/x?sslmode=bogus",
		"postgres://user:s3cret@127.0.0.1:5432/x?pool_max_conns=many",
		"http://user:s3cret@h/x",
	}, func(u string) (io.Closer, error) { return pgstore.Open(u, pgstore.Options{Logger: storecheck.Quiet}) })
}

// An unreachable PostgreSQL: New still returns the store (and logs),
// calls fail fast with ErrUnavailable.
func TestUnreachable(t *testing.T) {
	cfg, err := pgxpool.ParseConfig("postgres://postgres@" + storecheck.DeadAddr(t) + "/test?sslmode=disable&connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	var log storecheck.LogBuf
	s, err := pgstore.New(pool, pgstore.Options{Logger: log.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if !strings.Contains(log.String(), "cannot reach PostgreSQL") {
		t.Errorf("New logged %q, want a warning that PostgreSQL cannot be reached", log.String())
	}
	storecheck.CallsUnavailable(t, s, testID, func(what string, err error) {
		if strings.Contains(err.Error(), testID) {
			t.Errorf("%s's error names the session id: %v", what, err)
		}
	})
}
