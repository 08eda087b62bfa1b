// Package testpg gives tests a PostgreSQL: the server at DATABASE_URL
// (default DefaultURL), a fresh schema per test that is dropped when the
// test ends, and pools whose connections the test can find (by their
// application_name) and terminate.
//
// Outside CI a missing backend skips the test with a message that says what
// is missing; with CI=true it fails the test (testenv.Missing).
package testpg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/galleta-go/galleta/internal/testenv"
)

// DefaultURL is the PostgreSQL the tests use when DATABASE_URL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// URL returns $DATABASE_URL, or DefaultURL.
func URL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

var (
	reachOnce sync.Once
	reachErr  error
)

// reachable connects once per test binary, within 3 seconds.
func reachable() error {
	reachOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, URL())
		if err != nil {
			reachErr = err
			return
		}
		reachErr = c.Ping(ctx)
		c.Close(ctx)
	})
	return reachErr
}

// Config returns a pool configuration for DATABASE_URL whose connections
// carry a fresh application_name (see AppName), or ends the test through
// testenv.Missing when PostgreSQL does not answer.
func Config(t testing.TB) *pgxpool.Config {
	t.Helper()
	need(t)
	cfg, err := pgxpool.ParseConfig(URL())
	if err != nil {
		t.Fatalf("DATABASE_URL %q: %v", URL(), err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "galleta-test-" + randHex(6)
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	return cfg
}

// AppName is the application_name of cfg's connections.
func AppName(cfg *pgxpool.Config) string { return cfg.ConnConfig.RuntimeParams["application_name"] }

// Pool returns a pool for cfg (Config(t) when nil), closed when the test
// ends.
func Pool(t testing.TB, cfg *pgxpool.Config) *pgxpool.Pool {
	t.Helper()
	if cfg == nil {
		cfg = Config(t)
	}
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("testpg: pool: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// Schema creates a schema with a fresh name ("galleta_test_<hex>") and
// drops it, with everything in it, when the test ends.
func Schema(t testing.TB) string {
	t.Helper()
	name := "galleta_test_" + randHex(8)
	Exec(t, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := exec(ctx, "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("testpg: drop schema %s: %v", name, err)
		}
	})
	return name
}

// need ends the test through testenv.Missing when PostgreSQL does not answer.
func need(t testing.TB) {
	t.Helper()
	if err := reachable(); err != nil {
		testenv.Missing(t, fmt.Sprintf("no PostgreSQL answers at DATABASE_URL=%s (%v); start PostgreSQL or point DATABASE_URL at one", URL(), err))
	}
}

// Exec runs sql on a connection of its own (not a test's pool), failing
// the test on an error.
func Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := exec(ctx, sql, args...); err != nil {
		t.Fatalf("testpg: %s: %v", sql, err)
	}
}

func exec(ctx context.Context, sql string, args ...any) error {
	c, err := pgx.Connect(ctx, URL())
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	_, err = c.Exec(ctx, sql, args...)
	return err
}

// QueryRow runs a one-row query on a connection of its own and scans the
// row into dst.
func QueryRow(t testing.TB, sql string, args []any, dst ...any) {
	t.Helper()
	need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, URL())
	if err != nil {
		t.Fatalf("testpg: connect: %v", err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	if err := c.QueryRow(ctx, sql, args...).Scan(dst...); err != nil {
		t.Fatalf("testpg: %s: %v", sql, err)
	}
}

// Terminate ends, with pg_terminate_backend, every server process whose
// application_name is app, and returns how many it ended.
func Terminate(ctx context.Context, app string) (int, error) {
	c, err := pgx.Connect(ctx, URL())
	if err != nil {
		return 0, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	var n int
	err = c.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()`, app).Scan(&n)
	return n, err
}

// Backends counts the server processes whose application_name is app.
func Backends(ctx context.Context, app string) (int, error) {
	c, err := pgx.Connect(ctx, URL())
	if err != nil {
		return 0, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	var n int
	err = c.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n)
	return n, err
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
