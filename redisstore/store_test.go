package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/galleta-go/galleta/internal/storecheck"
	"github.com/galleta-go/galleta/internal/testredis"
	"github.com/galleta-go/galleta/redisstore"
	"github.com/galleta-go/galleta/store"
)

const testID = "Tq1Nw3v0rG8m1JYzG2a0Pp4x9kXc7bV5nM3lK1jH0gF"

var data = []byte(`{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"user":"ann"}`)

// countHook counts the commands a client sends (a pipeline counts once).
type countHook struct{ n atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// The keys and values are connect-redis's: prefix+id holding the JSON as
// written; the expiry is the record's plus the offset, one second on a
// synced clock; Touch moves only the expiry; a commit whose session nobody
// else changed is one command.
func TestLayout(t *testing.T) {
	c := testredis.Client(t)
	hook := &countHook{}
	c.AddHook(hook)
	prefix := testredis.Prefix(t, c)
	s, err := redisstore.New(c, redisstore.Options{Prefix: prefix, Logger: storecheck.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	if err := s.Set(ctx, testID, store.Record{Data: data, Expires: exp}); err != nil {
		t.Fatal(err)
	}
	raw, err := c.Get(ctx, prefix+testID).Bytes()
	if err != nil || !bytes.Equal(raw, data) {
		t.Fatalf("GET %sID = %q, %v; want the record's Data as is", prefix, raw, err)
	}
	pexp := func() int64 {
		n, err := c.Do(ctx, "PEXPIRETIME", prefix+testID).Int64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := pexp() - exp.UnixMilli(); got != 1000 {
		t.Errorf("PEXPIRETIME - Expires = %d ms, want the offset 1000 (clocks of one host)", got)
	}
	exp2 := exp.Add(time.Hour)
	if err := s.Touch(ctx, testID, exp2); err != nil {
		t.Fatal(err)
	}
	if raw2, _ := c.Get(ctx, prefix+testID).Bytes(); !bytes.Equal(raw2, data) {
		t.Errorf("Touch changed the value to %q", raw2)
	}
	if got := pexp() - exp2.UnixMilli(); got != 1000 {
		t.Errorf("after Touch, PEXPIRETIME - Expires = %d ms, want 1000", got)
	}

	seen, err := s.Get(ctx, testID)
	if err != nil {
		t.Fatal(err)
	}
	before := hook.n.Load()
	next := []byte(`{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"user":"bob"}`)
	calls := 0
	if err := s.UpdateFrom(ctx, testID, seen, func(cur store.Record, found bool) (store.Record, bool, error) {
		calls++
		return store.Record{Data: next, Expires: exp2}, true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if n := hook.n.Load() - before; n != 1 || calls != 1 {
		t.Errorf("UpdateFrom with nobody else writing: %d commands, %d calls of fn; want 1 and 1", n, calls)
	}
	if raw, _ := c.Get(ctx, prefix+testID).Bytes(); !bytes.Equal(raw, next) {
		t.Errorf("after UpdateFrom the key holds %q", raw)
	}
}

var ctx = context.Background()

// A value that is not a JSON object is no session, logged without the id;
// an update replaces it; List skips it.
func TestCorruptValue(t *testing.T) {
	c := testredis.Client(t)
	prefix := testredis.Prefix(t, c)
	var log storecheck.LogBuf
	s, err := redisstore.New(c, redisstore.Options{Prefix: prefix, Logger: log.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"not json", "[1,2]", `{"cookie":`, `"str"`, ""} {
		if err := c.Set(ctx, prefix+testID, bad, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		if rec, err := s.Get(ctx, testID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get of %q = %q, %v; want ErrNotFound", bad, rec.Data, err)
		}
		listed := false
		if err := s.List(ctx, func(id string, _ store.Record) bool { listed = listed || id == testID; return true }); err != nil {
			t.Fatal(err)
		}
		if listed {
			t.Errorf("List returned the corrupt value %q", bad)
		}
		err := s.Update(ctx, testID, func(cur store.Record, found bool) (store.Record, bool, error) {
			if found {
				t.Errorf("Update of %q: fn saw found=true", bad)
			}
			return store.Record{Data: data, Expires: time.Now().Add(time.Hour)}, true, nil
		})
		if err != nil {
			t.Fatalf("Update over %q: %v", bad, err)
		}
		if rec, err := s.Get(ctx, testID); err != nil || !bytes.Equal(rec.Data, data) {
			t.Errorf("after Update over %q: %q, %v", bad, rec.Data, err)
		}
	}
	out := log.String()
	if !strings.Contains(out, "not a JSON object") {
		t.Errorf("no log line for the corrupt values: %q", out)
	}
	if strings.Contains(out, testID) {
		t.Errorf("a log line names the session id: %q", out)
	}
}

// A key of another type is an error (a 500), not unavailability, and the
// error does not name the key.
func TestWrongType(t *testing.T) {
	c := testredis.Client(t)
	prefix := testredis.Prefix(t, c)
	s, err := redisstore.New(c, redisstore.Options{Prefix: prefix, Logger: storecheck.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	c.HSet(ctx, prefix+testID, "a", "b")
	_, err = s.Get(ctx, testID)
	if err == nil || errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of a hash = %v, want an error that is neither ErrUnavailable nor ErrNotFound", err)
	}
	if strings.Contains(err.Error(), testID) {
		t.Errorf("the error names the id: %v", err)
	}
}

func TestTooLarge(t *testing.T) {
	c := testredis.Client(t)
	prefix := testredis.Prefix(t, c)
	s, err := redisstore.New(c, redisstore.Options{Prefix: prefix, MaxSize: 64, Logger: storecheck.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	big := append([]byte(`{"x":"`), append(bytes.Repeat([]byte("a"), 100), `"}`...)...)
	if err := s.Set(ctx, testID, store.Record{Data: big, Expires: time.Now().Add(time.Hour)}); !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("Set of %d bytes with MaxSize 64 = %v, want ErrTooLarge", len(big), err)
	}
	if n, _ := c.Exists(ctx, prefix+testID).Result(); n != 0 {
		t.Error("a refused Set wrote the key")
	}
}

// New warns when Redis would evict sessions, stays quiet when CONFIG is
// forbidden, and warns about a client without context deadlines.
func TestNewWarnings(t *testing.T) {
	open := func(t *testing.T, addr string, ctxTimeouts bool) string {
		c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: ctxTimeouts})
		t.Cleanup(func() { c.Close() })
		var log storecheck.LogBuf
		s, err := redisstore.New(c, redisstore.Options{Logger: log.Logger()})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Set(ctx, testID, store.Record{Data: data, Expires: time.Now().Add(time.Hour)}); err != nil {
			t.Fatalf("Set: %v", err)
		}
		return log.String()
	}
	t.Run("allkeys", func(t *testing.T) {
		srv := testredis.StartServer(t, "--maxmemory-policy", "allkeys-lru")
		if out := open(t, srv.Addr, true); !strings.Contains(out, "allkeys-lru") {
			t.Errorf("no warning for maxmemory-policy allkeys-lru: %q", out)
		}
	})
	t.Run("volatile", func(t *testing.T) {
		srv := testredis.StartServer(t, "--maxmemory-policy", "volatile-lru")
		if out := open(t, srv.Addr, true); out != "" {
			t.Errorf("log for a safe policy: %q", out)
		}
	})
	t.Run("configForbidden", func(t *testing.T) {
		srv := testredis.StartServer(t, "--maxmemory-policy", "allkeys-lru", "--rename-command", "CONFIG", "")
		if out := open(t, srv.Addr, true); out != "" {
			t.Errorf("log when CONFIG is forbidden: %q", out)
		}
	})
	t.Run("noContextTimeouts", func(t *testing.T) {
		srv := testredis.StartServer(t)
		if out := open(t, srv.Addr, false); !strings.Contains(out, "ContextTimeoutEnabled") {
			t.Errorf("no warning for a client without ContextTimeoutEnabled: %q", out)
		}
	})
}

// OOM (maxmemory with noeviction) is unavailability: 503, not 500.
func TestOOMIsUnavailable(t *testing.T) {
	srv := testredis.StartServer(t, "--maxmemory", "2mb", "--maxmemory-policy", "noeviction")
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	s, err := redisstore.New(c, redisstore.Options{MaxSize: -1, Logger: storecheck.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	big := append([]byte(`{"x":"`), append(bytes.Repeat([]byte("a"), 1<<20), `"}`...)...)
	var last error
	for i := range 4 {
		id := testID[:40] + string(rune('a'+i))
		if last = s.Set(ctx, id, store.Record{Data: big, Expires: time.Now().Add(time.Hour)}); last != nil {
			break
		}
	}
	if !errors.Is(last, store.ErrUnavailable) || !strings.Contains(last.Error(), "OOM") {
		t.Fatalf("Set beyond maxmemory = %v, want an OOM error wrapping ErrUnavailable", last)
	}
}

// An unreachable Redis: New still returns the store (and logs), calls fail
// fast with ErrUnavailable, and succeed once Redis is there.
func TestUnreachable(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: storecheck.DeadAddr(t), ContextTimeoutEnabled: true, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	var log storecheck.LogBuf
	s, err := redisstore.New(c, redisstore.Options{Logger: log.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "cannot reach Redis") {
		t.Errorf("New logged %q, want a warning that Redis cannot be reached", log.String())
	}
	storecheck.CallsUnavailable(t, s, testID, nil)
}

// Close closes a client only when Open built it.
func TestCloseOwnership(t *testing.T) {
	c := testredis.Client(t)
	s, err := redisstore.New(c, redisstore.Options{Logger: storecheck.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Errorf("the caller's client after the store's Close: %v", err)
	}
	if _, err := s.Get(ctx, testID); !errors.Is(err, redisstore.ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}

	o, err := redisstore.Open(testredis.URL(), redisstore.Options{Logger: storecheck.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := o.Client().Ping(ctx).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("Open's client after Close: %v, want redis.ErrClosed", err)
	}
	if err := o.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestNewClientURLs(t *testing.T) {
	for _, tc := range []struct {
		url     string
		cluster bool
		addrs   []string
		db      int
	}{
		{"redis://127.0.0.1:6379/2", false, []string{"127.0.0.1:6379"}, 2},
		{"rediss://u:p@example.com:6380/0", false, []string{"example.com:6380"}, 0},
		{"unix:///run/redis.sock?db=3", false, []string{"/run/redis.sock"}, 3},
		{"redis+cluster://10.0.0.1:7000,10.0.0.2:7001,10.0.0.3:7002/", true, []string{"10.0.0.1:7000", "10.0.0.2:7001", "10.0.0.3:7002"}, 0},
		{"redis+cluster://u:p@h1:7000,h2:7001?dial_timeout=2s", true, []string{"h1:7000", "h2:7001"}, 0},
		{"rediss+cluster://h1:7000", true, []string{"h1:7000"}, 0},
		{"redis://h1:7000?addr=h2:7001&addr=h3:7002", true, []string{"h1:7000", "h2:7001", "h3:7002"}, 0},
	} {
		c, err := redisstore.NewClient(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		switch c := c.(type) {
		case *redis.ClusterClient:
			o := c.Options()
			if !tc.cluster || strings.Join(o.Addrs, " ") != strings.Join(tc.addrs, " ") || !o.ContextTimeoutEnabled {
				t.Errorf("%s: cluster client with %v (context timeouts %v), want cluster=%v %v", tc.url, o.Addrs, o.ContextTimeoutEnabled, tc.cluster, tc.addrs)
			}
		case *redis.Client:
			o := c.Options()
			if tc.cluster || o.Addr != tc.addrs[0] || o.DB != tc.db || !o.ContextTimeoutEnabled {
				t.Errorf("%s: client for %s db %d (context timeouts %v), want cluster=%v %v db %d", tc.url, o.Addr, o.DB, o.ContextTimeoutEnabled, tc.cluster, tc.addrs, tc.db)
			}
		default:
			t.Errorf("%s: %T", tc.url, c)
		}
		c.Close()
	}
	storecheck.URLsRefused(t, []string{
		"127.0.0.1:6379",
		"http://h:1",
		"redis+cluster:///",
		"redis+cluster://h1:1,h2:2/3",
		"redis://user:s3cret@h:1/x",
		"redis+cluster://user:s3cret@h:1,h:2?bogus=1",
	}, func(u string) (io.Closer, error) { return redisstore.NewClient(u) })
}

// Redis without PEXPIRETIME (older than 7.0; simulated by renaming the
// command away) is refused at New with a message that says what is needed.
func TestRedisTooOld(t *testing.T) {
	srv := testredis.StartServer(t, "--rename-command", "PEXPIRETIME", "")
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	_, err := redisstore.New(c, redisstore.Options{Logger: storecheck.Quiet})
	if !errors.Is(err, redisstore.ErrRedisTooOld) || !strings.Contains(err.Error(), "7.0") {
		t.Fatalf("New on a Redis without PEXPIRETIME = %v, want ErrRedisTooOld", err)
	}
}

// A key without a Redis expiry (connect-redis with disableTTL) reads with
// its cookie's expires, else NoExpiryTTL from now.
func TestNoExpiryKey(t *testing.T) {
	c := testredis.Client(t)
	prefix := testredis.Prefix(t, c)
	now := time.Now().Truncate(time.Millisecond)
	s, err := redisstore.New(c, redisstore.Options{Prefix: prefix, Now: func() time.Time { return now }, Logger: storecheck.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	exp := now.Add(90 * time.Minute)
	withExpires := `{"cookie":{"originalMaxAge":5400000,"expires":"` + exp.UTC().Format("2006-01-02T15:04:05.000Z") + `","httpOnly":true,"path":"/"},"user":"ann"}`
	for _, tc := range []struct {
		value string
		want  time.Time
	}{
		{withExpires, exp},
		{string(data), now.Add(redisstore.NoExpiryTTL)},
	} {
		if err := c.Set(ctx, prefix+testID, tc.value, 0).Err(); err != nil {
			t.Fatal(err)
		}
		rec, err := s.Get(ctx, testID)
		if err != nil || !rec.Expires.Equal(tc.want) {
			t.Errorf("Get of a key without expiry holding %s = %v, %v; want Expires %v", tc.value, rec.Expires, err, tc.want)
		}
	}
}

// Overlapping updates of one session in one process are batched: every fn
// sees the one before, nothing is lost, and far fewer commands than
// updates reach Redis (without batching each update retried its
// compare-and-set against the others: several commands per update).
func TestBusySessionBatches(t *testing.T) {
	c := testredis.Client(t)
	hook := &countHook{}
	c.AddHook(hook)
	s, err := redisstore.New(c, redisstore.Options{Prefix: testredis.Prefix(t, c), Logger: storecheck.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	storecheck.BusySession(t, s, testID, hook.n.Load, "commands")
}
