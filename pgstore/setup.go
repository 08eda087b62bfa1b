package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// setupSQL reads, on one connection: whether the table exists, the
// connection's TimeZone, and how many UTC offsets that zone has over the
// next year (more than one: daylight saving).
const setupSQL = `SELECT to_regclass($1::text) IS NOT NULL, current_setting('TimeZone'), ` +
	`(SELECT count(DISTINCT extract(timezone FROM t)) FROM generate_series(now(), now() + interval '1 year', interval '1 month') t)`

// columnsSQL reads the types of the three columns and whether sid has a
// unique, immediate index without predicate (the arbiter ON CONFLICT (sid)
// needs).
const columnsSQL = `SELECT ` +
	`coalesce((SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = c.oid AND attname = 'sid' AND NOT attisdropped), ''), ` +
	`coalesce((SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = c.oid AND attname = 'sess' AND NOT attisdropped), ''), ` +
	`coalesce((SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = c.oid AND attname = 'expire' AND NOT attisdropped), ''), ` +
	`EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] ` +
	`WHERE i.indrelid = c.oid AND i.indisunique AND i.indimmediate AND i.indnkeyatts = 1 AND i.indpred IS NULL AND a.attname = 'sid') ` +
	`FROM (SELECT to_regclass($1::text)::oid AS oid) c`

// createSQL is connect-pg-simple's table.sql for this table: the same
// columns, primary key and expire index. The constraint and index are
// named after the table as connect-pg-simple names them for its default
// table ("session_pkey", "IDX_session_expire").
func (s *Store) createSQL() string {
	pkey := pgx.Identifier{s.table + "_pkey"}.Sanitize()
	idx := pgx.Identifier{"IDX_" + s.table + "_expire"}.Sanitize()
	return strings.Join(s.createStatements(pkey, idx), ";\n") + ";"
}

func (s *Store) createStatements(pkey, idx string) []string {
	t := s.qtable
	return []string{
		"CREATE TABLE " + t + " (\n" +
			`  "sid" varchar NOT NULL COLLATE "default",` + "\n" +
			`  "sess" json NOT NULL,` + "\n" +
			`  "expire" timestamp(6) NOT NULL` + "\n)",
		"ALTER TABLE " + t + " ADD CONSTRAINT " + pkey + ` PRIMARY KEY ("sid") NOT DEFERRABLE INITIALLY IMMEDIATE`,
		"CREATE INDEX " + idx + " ON " + t + ` ("expire")`,
	}
}

// setup checks the table once (creating it with CreateTable), and warns
// about a TimeZone with daylight saving. A concurrent caller waits for the
// running setup, or for its own context.
func (s *Store) setup(ctx context.Context) error {
	if s.ready.Load() {
		return nil
	}
	select {
	case s.setupSem <- struct{}{}:
	case <-ctx.Done():
		return s.fail("check the table", ctx.Err())
	}
	defer func() { <-s.setupSem }()
	if s.ready.Load() {
		return nil
	}
	var (
		exists  bool
		tz      string
		offsets int
	)
	err := s.retry(ctx, true, func() error {
		return s.pool.QueryRow(ctx, setupSQL, s.qtable).Scan(&exists, &tz, &offsets)
	})
	if err != nil {
		return s.fail("check the table", err)
	}
	if !exists {
		if !s.createTable {
			return fmt.Errorf("pgstore: the table %s does not exist; create it with connect-pg-simple's table.sql:\n%s\nor set Options.CreateTable", s.qtable, s.createSQL())
		}
		if err := s.create(ctx); err != nil {
			return err
		}
	}
	if err := s.checkColumns(ctx); err != nil {
		return err
	}
	if offsets > 1 {
		s.log.Warn("pgstore: the connection's TimeZone changes its UTC offset (daylight saving); the expire column has no time zone, so sessions that expire around a change can end up to an hour early or late. Set TimeZone to UTC for every app using the table (ALTER DATABASE ... SET timezone = 'UTC')",
			"timezone", tz, "table", s.qtable)
	}
	s.ready.Store(true)
	return nil
}

// create makes the table in a transaction under an advisory lock, so
// galleta instances starting together create it once, with IF NOT EXISTS
// (and the primary key inside CREATE TABLE), so a table another process
// created meanwhile is no error.
func (s *Store) create(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.fail("create the table", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('galleta pgstore create ' || $1::text, 0))`, s.qtable); err != nil {
		return s.fail("create the table", err)
	}
	pkey := pgx.Identifier{s.table + "_pkey"}.Sanitize()
	idx := pgx.Identifier{"IDX_" + s.table + "_expire"}.Sanitize()
	for _, stmt := range []string{
		"CREATE TABLE IF NOT EXISTS " + s.qtable + ` ("sid" varchar NOT NULL COLLATE "default", "sess" json NOT NULL, "expire" timestamp(6) NOT NULL, ` +
			"CONSTRAINT " + pkey + ` PRIMARY KEY ("sid") NOT DEFERRABLE INITIALLY IMMEDIATE)`,
		"CREATE INDEX IF NOT EXISTS " + idx + " ON " + s.qtable + ` ("expire")`,
	} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			if unavailable(err) || errors.Is(err, context.Canceled) {
				return s.fail("create the table", err)
			}
			return fmt.Errorf("pgstore: create the table %s (Options.CreateTable): %w; does the schema exist, and may the database user create tables in it?", s.qtable, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return s.fail("create the table", err)
	}
	s.log.Info("pgstore: created the session table (or found it created meanwhile)", "table", s.qtable)
	return nil
}

// checkColumns refuses a table that is not connect-pg-simple's.
func (s *Store) checkColumns(ctx context.Context) error {
	var sid, sess, expire string
	var unique bool
	err := s.retry(ctx, true, func() error {
		return s.pool.QueryRow(ctx, columnsSQL, s.qtable).Scan(&sid, &sess, &expire, &unique)
	})
	if err != nil {
		return s.fail("check the table", err)
	}
	var bad []string
	if sid != "text" && !strings.HasPrefix(sid, "character varying") {
		bad = append(bad, fmt.Sprintf("sid is %q, want varchar or text", sid))
	}
	if sess != "json" && sess != "jsonb" {
		bad = append(bad, fmt.Sprintf("sess is %q, want json", sess))
	}
	if !strings.HasPrefix(expire, "timestamp") {
		bad = append(bad, fmt.Sprintf("expire is %q, want timestamp(6)", expire))
	}
	if sid != "" && !unique {
		bad = append(bad, "sid has no primary key (or unique, immediate index)")
	}
	if len(bad) > 0 {
		return fmt.Errorf("pgstore: the table %s is not connect-pg-simple's: %s; its table.sql is:\n%s", s.qtable, strings.Join(bad, "; "), s.createSQL())
	}
	return nil
}
