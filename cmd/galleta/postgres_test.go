package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/galleta-go/galleta/internal/faultproxy"
	"github.com/galleta-go/galleta/internal/testpg"
	"github.com/galleta-go/galleta/pgstore"
	"github.com/galleta-go/galleta/store"
)

// withParam adds a query parameter to a URL.
func withParam(u, k, v string) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + k + "=" + url.QueryEscape(v)
}

// pgTarget is a schema of the test's own in the machine's PostgreSQL
// ($DATABASE_URL), dropped with everything in it when the test ends; the
// test skips (fails with CI=true) without PostgreSQL.
type pgTarget struct {
	url    string // --store value: the database URL with ?schema=
	schema string
	table  string // the session table, quoted and qualified as in SQL
}

// pgSchema is a fresh schema without a session table.
func pgSchema(t *testing.T) pgTarget {
	t.Helper()
	s := testpg.Schema(t)
	return pgTarget{url: withParam(testpg.URL(), "schema", s), schema: s, table: pgx.Identifier{s, "session"}.Sanitize()}
}

// pgWithTable is a fresh schema holding connect-pg-simple's table, made
// as a server makes it.
func pgWithTable(t *testing.T) pgTarget {
	t.Helper()
	p := pgSchema(t)
	st, err := pgstore.New(testpg.Pool(t, nil), pgstore.Options{Schema: p.schema, CreateTable: true, PruneInterval: -1, Logger: discardLog()})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	return p
}

// rows counts the table's rows, live or not.
func (p pgTarget) rows(t *testing.T) int {
	t.Helper()
	var n int
	testpg.QueryRow(t, "SELECT count(*) FROM "+p.table, nil, &n)
	return n
}

// hasTable reports whether the schema holds the session table.
func (p pgTarget) hasTable(t *testing.T) bool {
	t.Helper()
	var ok bool
	testpg.QueryRow(t, "SELECT to_regclass($1::text) IS NOT NULL", []any{p.table}, &ok)
	return ok
}

// Every URL pgx takes is a --store value; galleta's own parameters schema
// and table are taken out before the URL reaches pgx (which would send
// them to the server as settings); a typo is a usage error, and a
// password is never shown.
func TestParsePostgresStore(t *testing.T) {
	for _, c := range []struct {
		in, url, schema, table, shown string
	}{
		{"postgres://app@db:5432/app?sslmode=disable", "postgres://app@db:5432/app?sslmode=disable", "", "", "postgres://app@db:5432/app?sslmode=disable"},
		{"postgresql://app:pw@db/app?schema=s1&table=web+sessions", "postgresql://app:pw@db/app", "s1", "web sessions", "postgresql://app:xxxxx@db/app?schema=s1&table=web+sessions"},
		{"postgres://db/app?sslmode=require&password=pw&table=t&pool_max_conns=8", "postgres://db/app?password=pw&pool_max_conns=8&sslmode=require", "", "t", "postgres://db/app?sslmode=require&password=xxxxx&table=t&pool_max_conns=8"},
		{"postgres:///app?host=/run/postgresql&schema=a", "postgres:///app?host=%2Frun%2Fpostgresql", "a", "", "postgres:///app?host=/run/postgresql&schema=a"},
		{"postgres://u:pw@h1:5432,h2:5433/app?target_session_attrs=read-write", "postgres://u:pw@h1:5432,h2:5433/app?target_session_attrs=read-write", "", "", "postgres://u:xxxxx@h1:5432,h2:5433/app?target_session_attrs=read-write"},
		{"postgres://db/app?sslpass%77ord=pw&schema=x", "postgres://db/app?sslpassword=pw", "x", "", "postgres://db/app?sslpass%77ord=xxxxx&schema=x"},
	} {
		spec, err := parseStore(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if spec.kind != "postgres" || spec.url != c.url || spec.schema != c.schema || spec.table != c.table || spec.String() != c.shown {
			t.Errorf("%s: kind %s, url %q, schema %q, table %q, shown %q; want url %q, schema %q, table %q, shown %q",
				c.in, spec.kind, spec.url, spec.schema, spec.table, spec, c.url, c.schema, c.table, c.shown)
		}
	}
	for in, want := range map[string]string{
		"postgres://u:hunter2@127.0.0.1:5432/db?schema=":                          "schema is empty",
		"postgres://u:hunter2@127.0.0.1:5432/db?table=":                           "table is empty",
		"postgres://u:hunter2@127.0.0.1:5432/db?table=" + strings.Repeat("t", 64): "not a PostgreSQL name",
		"postgres://u:hunter2@127.0.0.1:5432/db?prefix=sess:":                     "Redis store's key prefix",
		"postgres://u:hunter2@127.0.0.1:notaport/db":                              "not shown: it holds a password",
		"postgres://u:hunter2/x@127.0.0.1/db":                                     "not shown: it holds a password",
		"postgres://127.0.0.1/db?password=hunter2&sslmode=bogus":                  "not shown: it holds a password",
		"postgres://127.0.0.1:notaport/db":                                        "invalid port",
		"postgres://127.0.0.1/db?sslmode=bogus":                                   "sslmode",
		"postgres://u:hunter2@127.0.0.1/db?schema=a&schema=%zz":                   "not shown: it holds a password",
	} {
		code, out, errs := sh("sessions", "list", "--store", in)
		if code != 2 || !strings.Contains(errs, want) || strings.Contains(out+errs, "hunter2") {
			t.Errorf("--store %s: exit %d, want 2 with %q and no password; stderr %q", in, code, want, errs)
		}
	}
}

// migrate refuses to copy a table onto itself, however the URL spells it.
func TestMigratePostgresOntoItself(t *testing.T) {
	for _, pair := range [][2]string{
		{"postgres://a@db:5432/app", "postgresql://b:pw@db/app?sslmode=disable&table=session"},
		{"postgres://db/app?schema=s&table=t", "postgres://db/app?table=t&schema=s&application_name=x"},
	} {
		if code, _, errs := sh("migrate", "--from", pair[0], "--to", pair[1]); code != 2 || !strings.Contains(errs, "the same store") || strings.Contains(errs, "pw") {
			t.Errorf("migrate %s -> %s: exit %d, %s", pair[0], pair[1], code, errs)
		}
	}
	for _, pair := range [][2]string{
		{"postgres://db/app", "postgres://db/app?schema=public"}, // the search_path may not be public: not refused
		{"postgres://db/app?table=a", "postgres://db/app?table=b"},
		{"postgres://db/app", "postgres://db/other"},
	} {
		a, _ := parseStore(pair[0])
		b, _ := parseStore(pair[1])
		if a.same(b) {
			t.Errorf("%s and %s taken for one table", pair[0], pair[1])
		}
	}
}

// The admin commands on PostgreSQL: list, show, count, revoke-user,
// delete and gc act on the rows a server wrote, and gc deletes what
// pgstore.Reap deletes: the expired rows, none of the live ones.
func TestSessionsOnPostgres(t *testing.T) {
	p := pgSchema(t)
	srv, _, _ := testApp(t, p.url, "") // a server creates the table
	var clients []*http.Client
	for _, u := range []string{"ann", "ann", "bob", "cy", "dee", "eve"} {
		c := client(t)
		if code, _ := call(t, c, "POST", srv.URL+"/api/login", fmt.Sprintf(`{"user":%q}`, u)); code != 200 {
			t.Fatalf("login %s: %d", u, code)
		}
		clients = append(clients, c)
	}
	if n := p.rows(t); n != 6 {
		t.Fatalf("%d rows, want 6", n)
	}
	if code, out, errs := sh("sessions", "count", "--store", p.url); code != 0 || strings.TrimSpace(out) != "6" {
		t.Fatalf("count: %d %q %s", code, out, errs)
	}
	code, out, errs := sh("sessions", "list", "--store", p.url, "--json")
	var list []sessionInfo
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 6 {
		t.Fatalf("list --json: %d %s %s", code, out, errs)
	}
	byUser := map[string][]string{}
	for _, s := range list {
		byUser[s.User] = append(byUser[s.User], s.ID)
		if s.Created.IsZero() || s.Expires.Before(time.Now()) || s.Size == 0 {
			t.Errorf("list entry %+v lacks its bookkeeping", s)
		}
	}
	if len(byUser["ann"]) != 2 || len(byUser["bob"]) != 1 {
		t.Fatalf("list users: %v", byUser)
	}
	code, out, _ = sh("sessions", "list", "--store", p.url)
	if code != 0 || !strings.Contains(out, "bob") || !strings.Contains(out, "6 live session(s)") || strings.Contains(out, list[0].ID) {
		t.Fatalf("list table (it shows id suffixes, never ids): %d\n%s", code, out)
	}
	bob := byUser["bob"][0]
	if code, out, _ := sh("sessions", "show", bob, "--store", p.url); code != 0 || !strings.Contains(out, `"user": "bob"`) {
		t.Fatalf("show: %d %s", code, out)
	}
	if code, out, errs := sh("sessions", "revoke-user", "ann", "--store", p.url); code != 0 || !strings.Contains(out, "revoked 2 session(s) of ann") {
		t.Fatalf("revoke-user: %d %s%s", code, out, errs)
	}
	if _, me := call(t, clients[0], "GET", srv.URL+"/api/me", ""); me["user"] != nil {
		t.Fatalf("ann is still signed in after revoke-user: %v", me)
	}
	if _, me := call(t, clients[2], "GET", srv.URL+"/api/me", ""); me["user"] != "bob" {
		t.Fatalf("bob was signed out by revoking ann: %v", me)
	}
	if code, out, _ := sh("sessions", "delete", bob, "--store", p.url); code != 0 || strings.TrimSpace(out) != "deleted" {
		t.Fatalf("delete: %d %s", code, out)
	}
	if _, me := call(t, clients[2], "GET", srv.URL+"/api/me", ""); me["user"] != nil {
		t.Fatalf("bob is still signed in after delete: %v", me)
	}
	if code, out, _ := sh("sessions", "show", bob, "--store", p.url); code != 1 || strings.Contains(out, "bob") {
		t.Fatalf("show after delete: %d %s", code, out)
	}
	if n := p.rows(t); n != 3 {
		t.Fatalf("%d rows after revoking 3 sessions, want 3", n)
	}
	// Two rows that ended (one a second ago, one a day ago), as a server
	// or a Node app leaves them until a prune.
	data := `{"cookie":` + cookieJSON + `,"user":"old"}`
	for i, ago := range []time.Duration{time.Second, 24 * time.Hour} {
		testpg.Exec(t, "INSERT INTO "+p.table+" (sid, sess, expire) VALUES ($1, $2, $3::timestamptz)",
			fmt.Sprintf("D%042d", i), data, time.Now().Add(-ago))
	}
	if code, out, _ := sh("sessions", "count", "--store", p.url, "--json"); code != 0 || !strings.Contains(out, `"live": 3`) {
		t.Fatalf("count with two expired rows: %d %s", code, out)
	}
	code, out, _ = sh("sessions", "gc", "--store", p.url)
	if code != 0 || !strings.Contains(out, "deleted 2 expired session(s)") || !strings.Contains(out, "servers on this store also delete them") {
		t.Fatalf("gc: %d %s", code, out)
	}
	if n := p.rows(t); n != 3 {
		t.Fatalf("%d rows after gc, want the 3 live ones", n)
	}
	if code, out, _ := sh("sessions", "gc", "--store", p.url, "--json"); code != 0 || !strings.Contains(out, `"deleted": 0`) {
		t.Fatalf("gc again: %d %s", code, out)
	}
	if _, me := call(t, clients[3], "GET", srv.URL+"/api/me", ""); me["user"] != "cy" {
		t.Fatalf("cy was signed out by gc: %v", me)
	}
}

// Commands never create the table, nor anything else: on a schema
// without the table, on a schema that does not exist, every sessions
// command and migrate (either side) fails saying what is missing and
// how to create it, and the table is still missing afterwards. A
// PostgreSQL that does not answer is one error naming the URL, without
// its password, in well under the 5-second bound when the port is closed.
func TestPostgresCommandsDoNotCreate(t *testing.T) {
	p := pgSchema(t)
	noSchema := withParam(testpg.URL(), "schema", p.schema+"_missing")
	id := strings.Repeat("A", 43)
	dir := filepath.Join(t.TempDir(), "f")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	file := "file:" + dir
	cmds := [][]string{
		{"sessions", "list"}, {"sessions", "list", "--json"}, {"sessions", "show", id}, {"sessions", "count"},
		{"sessions", "delete", id}, {"sessions", "revoke-user", "ann"}, {"sessions", "gc"},
	}
	for _, c := range []struct{ url, want string }{
		{p.url, "no session table " + p.table},
		{noSchema, "the schema " + pgx.Identifier{p.schema + "_missing"}.Sanitize() + " does not exist"},
	} {
		for _, args := range cmds {
			code, out, errs := sh(append(args, "--store", c.url)...)
			if code != 1 || !strings.Contains(errs, c.want) || !strings.Contains(errs, "nothing was created") || !strings.Contains(errs, "galleta serve") {
				t.Errorf("%v on %s: exit %d, want 1 and %q\n%s%s", args, c.url, code, c.want, out, errs)
			}
		}
		if code, out, errs := sh("migrate", "--from", c.url, "--to", file); code != 1 || !strings.Contains(errs, c.want) {
			t.Errorf("migrate from %s: exit %d, want 1 and %q\n%s%s", c.url, code, c.want, out, errs)
		}
	}
	if p.hasTable(t) {
		t.Fatal("a command other than migrate --to created the table")
	}
	// migrate --to creates a missing table, as it creates a missing file
	// store directory, but not a missing schema.
	if code, out, errs := sh("migrate", "--from", file, "--to", noSchema); code != 1 || !strings.Contains(errs, "does not exist") {
		t.Errorf("migrate to a missing schema: exit %d, want 1\n%s%s", code, out, errs)
	}
	if code, out, errs := sh("migrate", "--from", file, "--to", p.url); code != 0 {
		t.Errorf("migrate to a missing table: exit %d, want 0 (it creates the table)\n%s%s", code, out, errs)
	}
	if !p.hasTable(t) {
		t.Fatal("migrate --to did not create the table")
	}
	var schemas int
	testpg.QueryRow(t, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", []any{p.schema + "_missing"}, &schemas)
	if schemas != 0 {
		t.Fatal("a command created the schema")
	}

	const pw = "s3cr3t-Pa55"
	for _, down := range []string{
		"postgres://ann:" + pw + "@" + freeAddr(t) + "/db?sslmode=disable",
		"postgres://ann@" + freeAddr(t) + "/db?sslmode=disable&password=" + pw,
	} {
		for _, args := range [][]string{{"sessions", "count", "--store", down}, {"migrate", "--from", file, "--to", down}} {
			start := time.Now()
			code, out, errs := sh(args...)
			if code != 1 || !strings.Contains(errs, "cannot use PostgreSQL at postgres://ann") || !strings.Contains(errs, "xxxxx") ||
				!strings.Contains(errs, "check the URL") || strings.Contains(out+errs, pw) {
				t.Errorf("%v with PostgreSQL down: exit %d\n%s%s", args, code, out, errs)
			}
			if d := time.Since(start); d > pingTimeout {
				t.Errorf("%v took %v with the port closed", args, d)
			}
		}
	}
}

// A server creates the table (the demo runs with one command) and says
// so in its log; it starts while PostgreSQL is down, answers 503 on
// /healthz, never logs the password, and exits cleanly.
func TestServeOnPostgres(t *testing.T) {
	p := pgSchema(t)
	addr := freeAddr(t)
	stop, logs := serveInProcess(t, "--addr", addr, "--store", p.url, "--secret-file", filepath.Join(t.TempDir(), "s"))
	waitUp(t, addr)
	if !p.hasTable(t) {
		t.Fatalf("serve did not create the table:\n%s", logs)
	}
	c := client(t)
	if code, m := call(t, c, "POST", "http://"+addr+"/api/visits", ""); code != 200 || m["visits"] != float64(1) {
		t.Fatalf("a visit: %d %v", code, m)
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d:\n%s", code, logs)
	}
	if l := logs.String(); !strings.Contains(l, "created the session table") || !strings.Contains(l, p.url) {
		t.Errorf("the log does not say the table was created, or which store:\n%s", l)
	}

	const pw = "s3cr3t-Pa55"
	down := "postgres://ann:" + pw + "@" + freeAddr(t) + "/db?sslmode=disable"
	addr = freeAddr(t)
	stop, logs = serveInProcess(t, "--addr", addr, "--store", down, "--secret-file", filepath.Join(t.TempDir(), "s"))
	waitUp(t, addr)
	if code, body := healthz(t, "http://"+addr); code != 503 || strings.Contains(body, pw) {
		t.Errorf("healthz with PostgreSQL down: %d %q", code, body)
	}
	if code, _ := call(t, client(t), "POST", "http://"+addr+"/api/visits", ""); code != 503 {
		t.Errorf("a visit with PostgreSQL down: %d, want 503", code)
	}
	if code := stop(); code != 0 {
		t.Errorf("serve exited %d", code)
	}
	if l := logs.String(); strings.Contains(l, pw) || !strings.Contains(l, "postgres://ann:xxxxx@") {
		t.Fatalf("the server's log shows the password, or not the store:\n%s", l)
	}
}

// pgSnapshot is every row of the table with its row version (xmin, ctid):
// any write to a row, even of the same values, changes them.
func pgSnapshot(t *testing.T, table string) string {
	t.Helper()
	var s string
	testpg.QueryRow(t, "SELECT coalesce(string_agg(sid || ' ' || xmin::text || ' ' || ctid::text || ' ' || expire::text || ' ' || md5(sess::text), E'\\n' ORDER BY sid), '') FROM "+table, nil, &s)
	return s
}

// list, show, count and migrate --from write nothing to PostgreSQL: every
// row keeps its version; a delete shows that the snapshot sees writes. The
// reading commands' store refuses changes, and so does PostgreSQL on its
// connections (default_transaction_read_only).
func TestReadingCommandsDoNotWriteToPostgres(t *testing.T) {
	p := pgSchema(t)
	srv, _, _ := testApp(t, p.url, "")
	for _, user := range []string{"ann", "bob"} {
		c := client(t)
		call(t, c, "POST", srv.URL+"/api/login", fmt.Sprintf(`{"user":%q}`, user))
		call(t, c, "POST", srv.URL+"/api/visits", "")
	}
	// An expired row: a write would be tempting (gc), a read must not.
	testpg.Exec(t, "INSERT INTO "+p.table+" (sid, sess, expire) VALUES ($1, $2, $3::timestamptz)",
		strings.Repeat("D", 43), `{"cookie":`+cookieJSON+`}`, time.Now().Add(-time.Minute))
	before := pgSnapshot(t, p.table)
	if strings.Count(before, "\n") != 2 {
		t.Fatalf("before: %q", before)
	}
	var id string
	testpg.QueryRow(t, "SELECT sid FROM "+p.table+" WHERE sess::json->>'user' = 'ann'", nil, &id)
	for _, args := range [][]string{
		{"sessions", "list", "--store", p.url},
		{"sessions", "list", "--json", "--store", p.url},
		{"sessions", "show", id, "--store", p.url},
		{"sessions", "show", strings.Repeat("N", 43), "--store", p.url},
		{"sessions", "show", strings.Repeat("D", 43), "--store", p.url},
		{"sessions", "count", "--store", p.url},
		{"migrate", "--from", p.url, "--to", "file:" + filepath.Join(t.TempDir(), "copy")},
	} {
		code, out, errs := sh(args...)
		if code != 0 && !(args[1] == "show" && id != args[2] && code == 1) {
			t.Fatalf("%v: %d %s%s", args, code, out, errs)
		}
		if after := pgSnapshot(t, p.table); after != before {
			t.Fatalf("%v wrote to PostgreSQL:\n%s\n->\n%s", args, before, after)
		}
	}
	if code, _, errs := sh("sessions", "delete", id, "--store", p.url); code != 0 {
		t.Fatalf("delete: %s", errs)
	}
	if after := pgSnapshot(t, p.table); after == before || strings.Count(after, "\n") != 1 {
		t.Fatalf("after delete:\n%s", after)
	}
	spec, _ := parseStore(p.url)
	st, closeStore, err := openStore(spec, time.Hour, discardLog(), openReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	ctx := context.Background()
	if err := st.Delete(ctx, strings.Repeat("Z", 43)); err != errReadOnly {
		t.Fatalf("Delete on a read-only store: %v", err)
	}
	if _, ok := st.(store.Updater); ok {
		t.Fatal("the read-only store offers Update")
	}
	// Under the wrapper, PostgreSQL refuses the write itself (25006).
	err = st.(readOnly).s.Set(ctx, strings.Repeat("W", 43), store.Record{Data: []byte(`{"cookie":` + cookieJSON + `}`), Expires: time.Now().Add(time.Hour)})
	if err == nil || !strings.Contains(err.Error(), "read-only transaction") {
		t.Fatalf("a write on the reading commands' connections: %v", err)
	}
	if n := p.rows(t); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}
}

// Users stay signed in through migrations in every direction between the
// three durable stores: file → PostgreSQL → Redis → PostgreSQL (another
// schema) → file. After each step a server on the new store (same secret
// file) takes the cookie the first server issued, finds the user and the
// count, and counts on; the session keeps its id and its expiry.
func TestMigrateAcrossFileRedisAndPostgres(t *testing.T) {
	pg1, pg2 := pgWithTable(t), pgWithTable(t)
	r := redisServer(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "galleta.secret")
	first := "file:" + filepath.Join(dir, "sessions")
	last := "file:" + filepath.Join(dir, "back")
	c := client(t)
	visits := 0
	serveOn := func(storeURL string, check func(base string)) {
		t.Helper()
		addr := freeAddr(t)
		stop, logs := serveInProcess(t, "--addr", addr, "--store", storeURL, "--secret-file", secret)
		waitUp(t, addr)
		check("http://" + addr)
		if code := stop(); code != 0 {
			t.Fatalf("serve on %s exited %d:\n%s", storeURL, code, logs)
		}
		if id := cookieID(t, c, "http://"+addr); strings.Contains(logs.String(), id) {
			t.Fatalf("the log of the server on %s holds the session id", storeURL)
		}
	}
	var id string
	serveOn(first, func(base string) {
		call(t, c, "POST", base+"/api/login", `{"user":"ann"}`)
		for range 3 {
			visits++
			call(t, c, "POST", base+"/api/visits", "")
		}
		id = cookieID(t, c, base)
	})
	expiry := func(s string) string {
		t.Helper()
		code, out, errs := sh("sessions", "show", id, "--store", s, "--json")
		var v struct {
			Info sessionInfo `json:"info"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
			t.Fatalf("show on %s: %d %s%s", s, code, out, errs)
		}
		// PostgreSQL and Redis keep an expiry to the millisecond.
		return v.Info.Expires.UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano)
	}
	want := expiry(first)
	from := first
	for _, to := range []string{pg1.url, r.url, pg2.url, last} {
		code, out, errs := sh("migrate", "--from", from, "--to", to)
		if code != 0 || !strings.Contains(out, "copied 1 live session(s)") || !strings.Contains(out, "now holds 1 live session(s)") {
			t.Fatalf("migrate %s -> %s: %d %s%s", from, to, code, out, errs)
		}
		if got := expiry(to); got != want {
			t.Fatalf("expiry after migrate to %s: %s, want %s", to, got, want)
		}
		serveOn(to, func(base string) {
			if code, me := call(t, c, "GET", base+"/api/me", ""); code != 200 || me["user"] != "ann" || me["visits"] != float64(visits) {
				t.Fatalf("on %s after migrate: %d %v, want ann with %d visits", to, code, me, visits)
			}
			visits++
			if _, m := call(t, c, "POST", base+"/api/visits", ""); m["visits"] != float64(visits) {
				t.Fatalf("a visit on %s: %v, want %d", to, m, visits)
			}
		})
		if got := cookieID(t, c, "http://127.0.0.1"); got != id {
			t.Fatalf("the server on %s issued a new session instead of using the migrated one", to)
		}
		want = expiry(to) // the visit moved it
		from = to
	}
	if pg1.rows(t) != 1 || pg2.rows(t) != 1 || r.keys(t) != 1 {
		t.Fatalf("rows %d and %d, keys %d; want one session in each", pg1.rows(t), pg2.rows(t), r.keys(t))
	}
}

// /healthz on PostgreSQL behind a fault proxy: cut off (connections
// closed and refused), then stalled (accepted, nothing forwarded), it
// turns 503 with the fixed body within the cached second plus one check;
// each time the proxy lets traffic through again it turns 200 within a
// bounded time, with the same server, pool and client, and the session
// kept counting.
func TestHealthzPostgresFaults(t *testing.T) {
	p := pgSchema(t)
	base, err := url.Parse(p.url)
	if err != nil || base.Host == "" || strings.Contains(base.Host, ",") || base.Query().Has("host") {
		t.Skipf("DATABASE_URL %s is not a one-host TCP URL a proxy can stand in front of", testpg.URL())
	}
	port := base.Port()
	if port == "" {
		port = "5432"
	}
	proxy, err := faultproxy.Start(net.JoinHostPort(base.Hostname(), port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	base.Host = proxy.Addr()
	spec, err := parseStore(base.String())
	if err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	c := testConfig("")
	c.store = spec
	a, err := newApp(c, testSecret, slogText(&logs))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.handler())
	t.Cleanup(func() { srv.Close(); a.close() })

	waitHealth(t, srv.URL, 200, 3*time.Second, "at start")
	user := client(t)
	if code, _ := call(t, user, "POST", srv.URL+"/api/login", `{"user":"ann"}`); code != 200 {
		t.Fatalf("login: %d", code)
	}
	visits := 0
	for _, mode := range []faultproxy.Mode{faultproxy.Cut, faultproxy.Stall} {
		proxy.Set(mode)
		// A cached ok (1 s), then a check that fails (at once when cut,
		// at the check's bound when stalled), and a second of slack.
		took := waitHealth(t, srv.URL, 503, healthTTL+healthTimeout+time.Second, mode.String())
		if mode == faultproxy.Cut {
			resp, err := user.Post(srv.URL+"/api/visits", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || strings.Contains(body, proxy.Addr()) {
				t.Errorf("a visit with PostgreSQL cut off: %d %q, Retry-After %q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
			}
		}
		proxy.Set(faultproxy.Pass)
		// A cached failure (1 s from the end of its check), then a check
		// that passes on a new connection; one caught in the stall
		// finishes once the proxy forwards again.
		back := waitHealth(t, srv.URL, 200, healthTTL+1500*time.Millisecond, mode.String()+" ended")
		visits++
		if code, m := call(t, user, "POST", srv.URL+"/api/visits", ""); code != 200 || m["visits"] != float64(visits) {
			t.Fatalf("a visit after the %s ended: %d %v, want visits %d", mode, code, m, visits)
		}
		t.Logf("%s: 503 after %v, 200 again %v after the proxy passed", mode, took.Round(time.Millisecond), back.Round(time.Millisecond))
	}
	if !strings.Contains(logs.String(), "health check failed") {
		t.Errorf("the cause of the 503s is not in the log:\n%s", logs.String())
	}
}

// Two `galleta serve` processes on one PostgreSQL table (same database,
// schema and table, same secret file), both creating the table as they
// start: see twoProcesses.
func TestTwoProcessesOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the program and starts processes: not in -short")
	}
	p := pgSchema(t)
	twoProcesses(t, galletaBinary(t), p.url, p.rows)
}
