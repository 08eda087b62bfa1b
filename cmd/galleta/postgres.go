package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/galleta-go/galleta/pgstore"
	"github.com/galleta-go/galleta/store"
)

// pgGCNote is what `sessions gc` adds on PostgreSQL.
const pgGCNote = "an expired row is invisible to every read already; servers on this store also delete them in the background, every 15 minutes on average"

// parsePostgres reads a postgres:// or postgresql:// URL as pgx does, plus
// galleta's own query parameters schema (the table's schema; default: the
// connection's search_path) and table (default "session",
// connect-pg-simple's), which it removes before the URL reaches pgx. The
// rest is checked now (pgx parses it without connecting), so a typo is a
// usage error. Passwords, in the user information or in a password= or
// sslpassword= parameter, are never shown.
func parsePostgres(v string) (storeSpec, error) {
	spec := storeSpec{kind: "postgres", url: v}
	// pgx reads galleta's parameters as run-time parameters: a URL it
	// cannot read is refused before anything of it is shown.
	if _, err := pgstore.ParseConfig(v); err != nil {
		return spec, pgParseError(v, err)
	}
	base, query, _ := strings.Cut(v, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return spec, pgParseError(v, err)
	}
	spec.shown = pgShown(v)
	for _, p := range []struct {
		name, what string
		dst        *string
	}{{"schema", "the table's schema", &spec.schema}, {"table", "the table's name (connect-pg-simple's tableName, session by default)", &spec.table}} {
		if !q.Has(p.name) {
			continue
		}
		*p.dst = q.Get(p.name)
		q.Del(p.name)
		switch n := *p.dst; {
		case n == "":
			return spec, usagef("store %q: %s is empty; give %s or drop the parameter", spec.shown, p.name, p.what)
		case len(n) > 63 || strings.IndexByte(n, 0) >= 0:
			return spec, usagef("store %q: %s %q is not a PostgreSQL name (at most 63 bytes, no NUL)", spec.shown, p.name, n)
		}
	}
	if q.Has("prefix") {
		return spec, usagef("store %q: prefix is the Redis store's key prefix; a PostgreSQL store's table is named by ?schema= and ?table=", spec.shown)
	}
	if spec.schema != "" || spec.table != "" {
		spec.url = base
		if len(q) > 0 {
			spec.url += "?" + q.Encode()
		}
	}
	cfg, err := pgstore.ParseConfig(spec.url)
	if err != nil {
		return spec, pgParseError(v, err)
	}
	cc := cfg.ConnConfig
	spec.target = fmt.Sprintf("%s:%d/%s %s", cc.Host, cc.Port, cc.Database, pgTable(spec))
	return spec, nil
}

// pgParseError is the usage error for a URL pgx cannot read. A URL that
// may hold a password is not repeated, nor is pgx's reason (a malformed
// URL can put a piece of the password anywhere in it).
func pgParseError(v string, err error) error {
	if mayHoldPassword(v) {
		return usagef("store postgres://…: the URL cannot be read (not shown: it holds a password); want postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=..., with any of / ? # @ : %% in the password percent-encoded")
	}
	return usagef("store %q: %s", v, strings.TrimPrefix(err.Error(), "pgstore: "))
}

// mayHoldPassword reports whether a PostgreSQL URL has user information
// with a colon or a parameter whose name holds "password" (however it is
// encoded or spelled).
func mayHoldPassword(v string) bool {
	_, rest, _ := strings.Cut(v, "://")
	if at := strings.LastIndexByte(rest, '@'); at >= 0 && strings.Contains(rest[:at], ":") {
		return true
	}
	l := strings.ToLower(rest)
	if d, err := url.QueryUnescape(l); err == nil {
		l = d
	} else if strings.Contains(l, "%") {
		return true // undecodable: assume the worst
	}
	return strings.Contains(l, "password")
}

// pgShown is a PostgreSQL URL that pgx parsed, for logs and messages: the
// password of the user information and the values of password= and
// sslpassword= replaced by xxxxx.
func pgShown(v string) string {
	v = redactURL(v)
	base, query, ok := strings.Cut(v, "?")
	if !ok {
		return v
	}
	parts := strings.Split(query, "&")
	for i, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil || strings.Contains(strings.ToLower(dk), "password") {
			parts[i] = k + "=xxxxx"
		}
	}
	return base + "?" + strings.Join(parts, "&")
}

// pgTable is the table a spec names, quoted and qualified as in SQL.
func pgTable(spec storeSpec) string {
	table := spec.table
	if table == "" {
		table = pgstore.DefaultTable
	}
	if spec.schema == "" {
		return pgx.Identifier{table}.Sanitize()
	}
	return pgx.Identifier{spec.schema, table}.Sanitize()
}

// openPostgres opens a pgstore on a pool of its own. Only a server
// creates the table (connect-pg-simple's table.sql, in a schema that must
// exist) and prunes expired rows; every command (migrate --to included)
// finds the table or fails, saying what to do, with nothing created. A
// command first checks that PostgreSQL answers (at most 5 s) and that the
// table is there; the reading ones get connections on which PostgreSQL
// itself refuses writes (default_transaction_read_only), behind a store
// that cannot write. A server starts even while PostgreSQL is down: its
// requests get 503 and /healthz says so until it answers.
func openPostgres(spec storeSpec, o openOptions) (store.Store, func() error, error) {
	cfg, err := pgstore.ParseConfig(spec.url)
	if err != nil {
		return nil, nil, fmt.Errorf("store %s: the URL cannot be read", spec)
	}
	rp := cfg.ConnConfig.RuntimeParams
	if _, ok := rp["application_name"]; !ok {
		rp["application_name"] = "galleta"
	}
	if o.mode == openReadOnly {
		rp["default_transaction_read_only"] = "on"
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("open the PostgreSQL store at %s: %w", spec, err)
	}
	create := o.mode == openServe || o.mode == openCreate
	if o.mode != openServe {
		if err := checkPostgres(pool, spec, !create); err != nil {
			pool.Close()
			return nil, nil, err
		}
	}
	po := pgstore.Options{Schema: spec.schema, Table: spec.table, Logger: o.log, CreateTable: create}
	if o.mode != openServe {
		po.PruneInterval = -1
	}
	s, err := pgstore.New(pool, po)
	if err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("open the PostgreSQL store at %s: %w", spec, err)
	}
	closeAll := func() error { err := s.Close(); pool.Close(); return err }
	if o.mode == openReadOnly {
		return readOnly{s}, closeAll, nil
	}
	return s, closeAll, nil
}

// checkPostgres is a command's first contact: PostgreSQL answers within
// pingTimeout, the schema exists and, when needTable, the table too
// (migrate --to creates a missing table in an existing schema, as it
// creates a missing file store directory).
func checkPostgres(pool *pgxpool.Pool, spec storeSpec, needTable bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()
	var table, schema bool
	err := pool.QueryRow(ctx, `SELECT to_regclass($1::text) IS NOT NULL, $2::text = '' OR EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $2::text)`,
		pgTable(spec), spec.schema).Scan(&table, &schema)
	if err != nil {
		return fmt.Errorf("cannot use PostgreSQL at %s: %w; check the URL (host, port, user, password, database, sslmode) and that PostgreSQL is up", spec, err)
	}
	const create = "start `galleta serve` on this store once (it creates the table), or run connect-pg-simple's table.sql"
	switch {
	case !schema:
		return fmt.Errorf("the schema %s does not exist in the database at %s; nothing was created. Check ?schema=, or create the schema and then the table: %s", pgx.Identifier{spec.schema}.Sanitize(), spec, create)
	case !table && needTable:
		return fmt.Errorf("no session table %s in the database at %s; nothing was created. Check ?schema= and ?table= (defaults: the search_path and session); to create the table, %s", pgTable(spec), spec, create)
	}
	return nil
}
