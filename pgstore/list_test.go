package pgstore_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/galleta-go/galleta/internal/storecheck"
	"github.com/galleta-go/galleta/internal/testpg"
	"github.com/galleta-go/galleta/pgstore"
	"github.com/galleta-go/galleta/store"
)

// List walks the table in pages (100 rows, about 4 MiB) by keyset on sid:
// every live session once, in sid order, large sessions included, expired
// ones and ids galleta cannot use skipped; it stops when fn says so and
// when its context ends.
func TestListPages(t *testing.T) {
	s, _ := open(t, nil, pgstore.Options{})
	fill(t, s, "live", 250, time.Now().Add(time.Hour))
	fill(t, s, "dead", 120, time.Now().Add(-time.Hour))
	testpg.Exec(t, "INSERT INTO "+s.Table()+` (sid, sess, expire) VALUES ('not a galleta id', '{}', now() + interval '1 hour')`)
	big := make([][]byte, 9)
	for i := range big {
		big[i] = append(append([]byte(`{"pad":"`), bytes.Repeat([]byte{'a' + byte(i)}, 900_000)...), `"}`...)
		if err := s.Set(ctx, "large"+string(rune('a'+i)), store.Record{Data: big[i], Expires: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	err := s.List(ctx, func(id string, rec store.Record) bool {
		ids = append(ids, id)
		if strings.HasPrefix(id, "large") && !bytes.Equal(rec.Data, big[id[5]-'a']) {
			t.Errorf("List returned %s with %d bytes of other data", id, len(rec.Data))
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 259 || !slices.IsSorted(ids) {
		t.Errorf("List returned %d ids (sorted: %v), want the 259 live ones in sid order", len(ids), slices.IsSorted(ids))
	}
	if len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Errorf("List returned an id twice")
	}
	for _, id := range ids {
		if strings.HasPrefix(id, "dead") || strings.Contains(id, " ") {
			t.Errorf("List returned %q", id)
		}
	}
	n := 0
	if err := s.List(ctx, func(string, store.Record) bool { n++; return n < 150 }); err != nil || n != 150 {
		t.Errorf("List stopped by fn after %d calls, %v; want 150, nil", n, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	n = 0
	err = s.List(cctx, func(string, store.Record) bool {
		if n++; n == 120 {
			cancel()
		}
		return true
	})
	if !errors.Is(err, context.Canceled) || n != 120 {
		t.Errorf("List with its context canceled in fn: %v after %d calls; want context.Canceled after 120", err, n)
	}
}

// Count walks the table 10,000 rows per statement and counts the live
// rows of every page.
func TestCountPages(t *testing.T) {
	s, _ := open(t, nil, pgstore.Options{})
	fill(t, s, "live", 23456, time.Now().Add(time.Hour))
	fill(t, s, "dead", 7000, time.Now().Add(-time.Hour))
	if n, err := s.Count(ctx); err != nil || n != 23456 {
		t.Errorf("Count = %d, %v; want 23456", n, err)
	}
}

// Ping proves a connection, the table, the store's privileges and a server
// that takes writes: a read-only connection is unavailable (as a standby
// is), a user without DELETE is an error that says so.
func TestPing(t *testing.T) {
	schema := testpg.Schema(t)
	s, _ := open(t, nil, pgstore.Options{Schema: schema})
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	cfg := testpg.Config(t)
	cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	ro, _ := open(t, cfg, pgstore.Options{Schema: schema})
	if err := ro.Ping(ctx); !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("Ping on a read-only connection = %v, want ErrUnavailable (25006)", err)
	}
	if err := ro.Set(ctx, testID, store.Record{Data: data, Expires: time.Now().Add(time.Hour)}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Set on a read-only connection = %v, want ErrUnavailable", err)
	}

	role := "galleta_test_ro_" + strings.ToLower(testID[:8])
	testpg.Exec(t, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" LOGIN")
	t.Cleanup(func() {
		testpg.Exec(t, "DROP OWNED BY "+pgx.Identifier{role}.Sanitize())
		testpg.Exec(t, "DROP ROLE "+pgx.Identifier{role}.Sanitize())
	})
	testpg.Exec(t, "GRANT USAGE ON SCHEMA "+pgx.Identifier{schema}.Sanitize()+" TO "+pgx.Identifier{role}.Sanitize())
	testpg.Exec(t, "GRANT SELECT, INSERT, UPDATE ON "+s.Table()+" TO "+pgx.Identifier{role}.Sanitize())
	cfg = testpg.Config(t)
	cfg.ConnConfig.User = role
	weak, _ := open(t, cfg, pgstore.Options{Schema: schema})
	err := weak.Ping(ctx)
	if err == nil || errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "DELETE") {
		t.Errorf("Ping as a user without DELETE = %v, want an error naming the privileges, not unavailability", err)
	}
}

// A role over its connection limit (53300) is unavailability: 503, the
// request can be retried.
func TestTooManyConnections(t *testing.T) {
	role := "galleta_test_cl_" + strings.ToLower(testID[8:16])
	testpg.Exec(t, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" LOGIN CONNECTION LIMIT 0")
	t.Cleanup(func() { testpg.Exec(t, "DROP ROLE "+pgx.Identifier{role}.Sanitize()) })
	cfg := testpg.Config(t)
	cfg.ConnConfig.User = role
	pool := testpg.Pool(t, cfg)
	s, err := pgstore.New(pool, pgstore.Options{Logger: storecheck.Quiet})
	if err != nil {
		t.Fatalf("New with a database refusing connections: %v, want the store (and a warning)", err)
	}
	defer s.Close()
	_, err = s.Get(ctx, testID)
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "53300") {
		t.Errorf("Get over the connection limit = %v, want ErrUnavailable (53300)", err)
	}
	if strings.Contains(err.Error(), testID) {
		t.Errorf("the error names the session id: %v", err)
	}
}
