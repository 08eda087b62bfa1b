package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/galleta-go/galleta/memstore"
	"github.com/galleta-go/galleta/store"
)

// brokenStore is a memory store whose changes, listing and ping fail, when
// broken, with an error naming a path (and the id), as a file store's
// errors do. Reads keep working, so requests reach the handlers.
type brokenStore struct {
	*memstore.Store
	broken atomic.Bool
}

const brokenPath = "/srv/secret-path/sessions"

func (b *brokenStore) fail(id string) error {
	if !b.broken.Load() {
		return nil
	}
	return fmt.Errorf("open %s/%s.json: permission denied", brokenPath, id)
}

func (b *brokenStore) Set(ctx context.Context, id string, rec store.Record) error {
	if err := b.fail(id); err != nil {
		return err
	}
	return b.Store.Set(ctx, id, rec)
}

func (b *brokenStore) Update(ctx context.Context, id string, fn store.UpdateFunc) error {
	if err := b.fail(id); err != nil {
		return err
	}
	return b.Store.Update(ctx, id, fn)
}

func (b *brokenStore) Delete(ctx context.Context, id string) error {
	if err := b.fail(id); err != nil {
		return err
	}
	return b.Store.Delete(ctx, id)
}

func (b *brokenStore) List(ctx context.Context, fn func(string, store.Record) bool) error {
	if err := b.fail("list"); err != nil {
		return err
	}
	return b.Store.List(ctx, fn)
}

func (b *brokenStore) Ping(ctx context.Context) error {
	if err := b.fail("probe"); err != nil {
		return err
	}
	return b.Store.Ping(ctx)
}

// Store failures reach the log, not the client: no path, no raw error text,
// no session id in a body, and no session id in the log.
func TestStoreErrorsStayInTheLog(t *testing.T) {
	st := &brokenStore{Store: newMemStore()}
	var logs logBuffer
	srv, _ := testAppOn(t, st, nil, "pw", slogText(&logs))
	admin := client(t)
	form(t, admin, srv.URL+"/admin/login", url.Values{"password": {"pw"}})
	user := client(t)
	call(t, user, "POST", srv.URL+"/api/login", `{"user":"ann"}`)
	var ids []string
	st.List(context.Background(), func(id string, _ store.Record) bool { ids = append(ids, id); return true })
	if len(ids) != 2 {
		t.Fatalf("%d sessions stored, want 2", len(ids))
	}
	st.broken.Store(true)

	for _, tc := range []struct {
		c            *http.Client
		method, path string
		form         url.Values
		json         string
	}{
		{user, "GET", "/", nil, ""},
		{user, "POST", "/api/visits", nil, ""},
		{user, "POST", "/api/login", nil, `{"user":"bob"}`},
		{user, "POST", "/api/logout", nil, ""},
		{user, "POST", "/login", url.Values{"user": {"bob"}}, ""},
		{user, "POST", "/logout", url.Values{}, ""},
		{admin, "GET", "/admin", nil, ""},
		{admin, "POST", "/admin/revoke", url.Values{"handle": {"x"}}, ""},
		{admin, "POST", "/admin/revoke-user", url.Values{"user": {"ann"}}, ""},
		{admin, "POST", "/admin/login", url.Values{"password": {"pw"}}, ""},
	} {
		var r *http.Response
		var err error
		switch {
		case tc.form != nil:
			r, err = tc.c.PostForm(srv.URL+tc.path, tc.form)
		default:
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.json))
			r, err = tc.c.Do(req)
		}
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, r)
		if r.StatusCode < 500 {
			t.Errorf("%s %s: %d, want a 5xx from the broken store", tc.method, tc.path, r.StatusCode)
		}
		if strings.Contains(body, "secret-path") || strings.Contains(body, "permission denied") {
			t.Errorf("%s %s: %d, the body shows the store's error: %s", tc.method, tc.path, r.StatusCode, body)
		}
		for _, id := range ids {
			if strings.Contains(body, id) {
				t.Errorf("%s %s: the body holds a session id", tc.method, tc.path)
			}
		}
	}
	l := logs.String()
	if !strings.Contains(l, "secret-path") {
		t.Errorf("the store's errors are not in the log:\n%s", l)
	}
	for _, id := range ids {
		if strings.Contains(l, id) {
			t.Errorf("the log holds a session id:\n%s", l)
		}
	}
}

func slogText(l *logBuffer) *slog.Logger { return newLogger("text", l) }

func TestScrub(t *testing.T) {
	id := strings.Repeat("q", 43)
	err := scrub(fmt.Errorf("open /d/%s.json: %w", id, store.ErrUnavailable), id)
	if strings.Contains(err.Error(), id) || !strings.Contains(err.Error(), "/d/<session-id>.json") || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("scrub: %v", err)
	}
}
