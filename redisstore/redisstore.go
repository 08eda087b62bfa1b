// Package redisstore keeps sessions in Redis, in connect-redis's layout, so
// an Express app using connect-redis and a Go app using galleta share them.
//
// A session is one string key, Prefix + id (default "sess:<id>"), whose
// value is the session's JSON (express-session's layout) and whose Redis
// expiry is the session's expiry. There is nothing else in Redis: no index,
// no second key, so Node's store reads and writes galleta's sessions and
// the reverse.
//
// The store works with any go-redis v9 client: one server (redis.Client),
// Sentinel (redis.NewFailoverClient), or Redis Cluster (redis.ClusterClient),
// through New. Open builds a client from a URL (see Open for the forms).
// It implements store.Store, store.Updater, store.OptimisticUpdater,
// store.Lister, store.Counter, store.Reaper, store.Pinger and io.Closer.
//
// # Requirements
//
// Redis 7.0 or newer (PEXPIRETIME, used to read a session's expiry in the
// same step as its value). The client should have ContextTimeoutEnabled set
// (Open sets it; New logs a warning when it is off), so a call never
// outlives its context's deadline.
//
// # Expiry and clocks
//
// Writes set the key's expiry with PXAT in Redis's clock: the session's
// Expires (in milliseconds, truncated) translated from the store's clock
// (Options.Now) to Redis's by an offset the store measures once, with TIME
// on every primary, before its first command. Reads translate PEXPIRETIME
// back with the same offset, so a session's Expires reads back exactly as
// written, and expiry is judged by the store's clock, as the store contract
// asks (an injected clock at any date works too).
//
// The offset is the measured difference (Redis's clock minus the store's,
// an upper bound since TIME runs after the store reads its clock) rounded to
// the nearest second, plus one second. So Redis never deletes a key before
// the store's clock says it expires, whatever the skew between the hosts;
// and every process whose clock is within half a second of Redis's (any
// host with NTP) uses the same offset, so what one writes, another reads
// back to the millisecond. The cost: a key lives in Redis about a second
// longer than its session, a Node app (which trusts Redis's expiry) can use
// a session galleta wrote for that second longer, and galleta reads a
// session Node wrote (EX seconds) as ending a second before Redis drops
// it. The offset is measured once: a clock step on either host after that
// shifts expiries by the step until the store is created again.
//
// # Updates
//
// Update and UpdateFrom are compare-and-set Lua scripts: the new value is
// written only if the stored value is still, byte for byte, the one the
// update function saw, and a key that another request deleted or that
// expired meanwhile is never re-created. When the stored value changed, the
// script's reply carries the current value and expiry, so the retry needs no
// extra read. A commit whose session nobody else changed costs one round
// trip. After a second conflict in a row the store backs off (random, up
// to about 16 ms) and reads again; at most Options.MaxUpdateAttempts
// attempts, and never past the context's deadline.
//
// # Errors
//
// A connection error, a timeout, a cluster that is down (CLUSTERDOWN,
// TRYAGAIN, MASTERDOWN, a node that does not answer), LOADING, READONLY
// (a failover in progress), OOM, too many clients and a pool timeout are
// wrapped with store.ErrUnavailable, so the Manager answers 503 with
// Retry-After and keeps the cookie. A stored value that is not a JSON
// object (not even braces at both ends) is corrupt: it is logged (without
// the id) and read as no session; one with braces that still does not parse
// is left to the Manager, which starts a new session in its place.
// Errors and logs never contain a key, since keys contain session ids.
package redisstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/galleta-go/galleta/internal/batch"
	"github.com/galleta-go/galleta/internal/groupcommit"
	"github.com/galleta-go/galleta/internal/record"
	"github.com/galleta-go/galleta/store"
)

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("redisstore: store is closed")

// Defaults of Options.
const (
	defaultPrefix            = "sess:"
	defaultMaxSize           = 1 << 20
	defaultMaxUpdateAttempts = 1000
	// NoExpiryTTL is the life the store gives, when it reads it, a key that
	// has no Redis expiry (written by a Node store with disableTTL) and whose
	// cookie has no expires: connect-redis's default ttl. The key itself is
	// not changed.
	NoExpiryTTL = 24 * time.Hour
)

// Options configures a Store. The zero value gives the defaults.
type Options struct {
	// Prefix is put before the session id to make the key. Default
	// "sess:", connect-redis's default; use the same prefix as the Node
	// app's RedisStore (including a prefix its client adds). A prefix with a
	// hash tag ("{sess}:") would put every session in one cluster slot.
	Prefix string

	// MaxSize is the largest session (bytes of JSON) the store writes;
	// larger ones fail with store.ErrTooLarge and nothing is written.
	// Default 1 MiB; negative: no limit (Redis's own is 512 MB).
	MaxSize int

	// MaxUpdateAttempts bounds the compare-and-set attempts of one Update
	// or UpdateFrom when other writers keep changing the session; after
	// that the update fails with an error wrapping store.ErrUnavailable
	// that says so. Default 1000 (with StoreTimeout's deadline usually
	// ending the retries first).
	MaxUpdateAttempts int

	// Now returns the current time; expiry is judged against it. Default
	// time.Now.
	Now func() time.Time

	// Logger receives warnings: a maxmemory-policy that evicts sessions,
	// a client without ContextTimeoutEnabled, corrupt values. Never an id
	// or a key. Default slog.Default().
	Logger *slog.Logger
}

// Store keeps sessions in Redis. Create it with New or Open; all methods are
// safe for concurrent use.
type Store struct {
	client      redis.UniversalClient
	own         bool // built by Open: Close closes it
	prefix      string
	maxSize     int
	maxAttempts int
	now         func() time.Time
	log         *slog.Logger

	clock   clockOffset
	group   groupcommit.Group[pending, carry] // overlapping updates of one session
	sets    lanes[setItem]                    // overlapping sets of different sessions, per node
	reads   lanes[*readItem]                  // overlapping Gets, per node
	closed  atomic.Bool
	closeMu sync.Mutex
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

// probeTimeout bounds the first contact New makes with Redis.
const probeTimeout = time.Second

// New returns a store on client, which it never closes: the caller owns it.
// client may be a *redis.Client (one server, or Sentinel through
// redis.NewFailoverClient), a *redis.ClusterClient or a *redis.Ring.
//
// New contacts Redis once, bounded by a second: it measures the clock
// offset (see the package doc) and logs a warning when maxmemory-policy is
// an allkeys-* policy, which would evict live sessions and sign users out.
// It fails with ErrRedisTooOld when Redis lacks PEXPIRETIME (before 7.0).
// When Redis cannot be reached, New still returns the store (requests get
// store.ErrUnavailable until it can) and logs a warning; the first call
// that reaches Redis does the same work.
func New(client redis.UniversalClient, o Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore: New: nil client; pass a *redis.Client, *redis.ClusterClient or *redis.Ring (or use Open with a URL)")
	}
	s := &Store{
		client:      client,
		prefix:      o.Prefix,
		maxSize:     o.MaxSize,
		maxAttempts: o.MaxUpdateAttempts,
		now:         o.Now,
		log:         o.Logger,
		sets:        newLanes(maxSetBatch, func(i setItem) string { return i.key }),
		reads:       newLanes[*readItem](maxSetBatch, nil),
	}
	s.clock.sem = make(chan struct{}, 1)
	if s.prefix == "" {
		s.prefix = defaultPrefix
	}
	if s.maxSize == 0 {
		s.maxSize = defaultMaxSize
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
	if on, known := contextTimeouts(client); known && !on {
		s.log.Warn("redisstore: the Redis client has ContextTimeoutEnabled off, so a call can outlive the Manager's StoreTimeout by up to the client's ReadTimeout; set ContextTimeoutEnabled: true in its options (Open does)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	if _, err := s.offset(ctx); errors.Is(err, ErrRedisTooOld) {
		return nil, err
	} else if err != nil {
		s.log.Warn("redisstore: cannot reach Redis now; requests will get 503 until it answers", "err", err)
	}
	return s, nil
}

func contextTimeouts(c redis.UniversalClient) (on, known bool) {
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled, true
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled, true
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled, true
	}
	return false, false
}

// Close marks the store closed and, when Open built the client, closes it.
// A client passed to New is left open. Close is safe to call more than
// once.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed.Swap(true) || !s.own {
		return nil
	}
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("redisstore: close the Redis client: %w", err)
	}
	return nil
}

// Client returns the client the store uses.
func (s *Store) Client() redis.UniversalClient { return s.client }

// Prefix returns the key prefix.
func (s *Store) Prefix() string { return s.prefix }

func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: %w", err)
	}
	return nil
}

// key checks the store, ctx and id, and returns the id's key.
func (s *Store) key(ctx context.Context, id string) (string, error) {
	if !store.ValidID(id) {
		return "", fmt.Errorf("redisstore: %w", store.ErrInvalidID)
	}
	if err := s.check(ctx); err != nil {
		return "", err
	}
	return s.prefix + id, nil
}

// state is what a script read under one key: whether the key is live by the
// store's clock, and then its value and PEXPIRETIME (Redis's frame).
type state struct {
	exists bool
	raw    []byte
	pexp   int64 // -1: no expiry
}

// liveAt reports whether the key exists and is not expired by the store's
// clock at nowMS.
func (st state) liveAt(nowMS, off int64) bool {
	return st.exists && (st.pexp == -1 || st.pexp-off > nowMS)
}

// parseState reads a {value, PEXPIRETIME} reply (from getScript or a
// mismatching casScript, whose leading 0 the caller dropped).
func parseState(vals []any) (state, error) {
	if len(vals) != 2 {
		return state{}, fmt.Errorf("redisstore: unexpected script reply of %d elements", len(vals))
	}
	v, ok := vals[0].(string)
	if !ok {
		return state{}, fmt.Errorf("redisstore: unexpected script reply: value is %T", vals[0])
	}
	exp, ok := vals[1].(int64)
	if !ok {
		return state{}, fmt.Errorf("redisstore: unexpected script reply: expiry is %T", vals[1])
	}
	return state{exists: true, raw: []byte(v), pexp: exp}, nil
}

// view turns a state into what the store reports: the record and whether
// there is a live session. A key expired by the store's clock (but not yet
// by Redis's) is no session; so is a corrupt value, which is logged.
func (s *Store) view(st state, nowMS, off int64) (store.Record, bool) {
	if !st.exists {
		return store.Record{}, false
	}
	var exp time.Time
	if st.pexp == -1 {
		exp = noExpiry(st.raw, time.UnixMilli(nowMS))
	} else {
		exp = time.UnixMilli(st.pexp - off)
	}
	if exp.UnixMilli() <= nowMS {
		return store.Record{}, false
	}
	if !isObject(st.raw) {
		s.log.Warn("redisstore: a stored session value is not a JSON object; it is treated as no session (the key is left for Redis to expire)",
			"prefix", s.prefix, "bytes", len(st.raw))
		return store.Record{}, false
	}
	return store.Record{Data: st.raw, Expires: exp}, true
}

// noExpiry is the expiry of a key without a Redis expiry: its cookie's
// expires, else NoExpiryTTL from now.
func noExpiry(raw []byte, now time.Time) time.Time {
	var buf [8]record.Field
	fields, err := record.Fields(raw, buf[:0])
	if err == nil {
		for _, f := range fields {
			if f.Key != record.KeyCookie {
				continue
			}
			if c, err := record.DecodeCookie(f.Raw); err == nil && !c.Expires.IsZero() {
				return c.Expires
			}
		}
	}
	return now.Add(NoExpiryTTL)
}

// isObject reports whether b looks like a JSON object: braces at both
// ends. That is all the store checks on the request path (a full
// json.Valid cost about 5% of a request's CPU); the Manager parses the
// record anyway and starts a new session for one that does not decode.
func isObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) >= 2 && b[0] == '{' && b[len(b)-1] == '}'
}

// read runs getScript on key.
func (s *Store) read(ctx context.Context, key string) (state, error) {
	res, err := getScript.Run(ctx, s.client, []string{key}).Result()
	if errors.Is(err, redis.Nil) {
		return state{}, nil
	}
	if err != nil {
		return state{}, err
	}
	vals, ok := res.([]any)
	if !ok {
		return state{}, fmt.Errorf("redisstore: unexpected script reply %T", res)
	}
	return parseState(vals)
}

// Get returns the live session stored under id, or store.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (store.Record, error) {
	key, err := s.key(ctx, id)
	if err != nil {
		return store.Record{}, err
	}
	off, err := s.offset(ctx)
	if err != nil {
		return store.Record{}, s.fail("get session", err)
	}
	it := &readItem{key: key}
	if err := s.reads.get(s.nodeOf(ctx, key)).Do(ctx, it, s.readMany); err != nil {
		return store.Record{}, s.fail("get session", err)
	}
	rec, ok := s.view(it.st, s.now().UnixMilli(), off)
	if !ok {
		return store.Record{}, store.ErrNotFound
	}
	return rec, nil
}

func (s *Store) tooLarge(n int) error {
	if s.maxSize > 0 && n > s.maxSize {
		return fmt.Errorf("redisstore: session of %d bytes is over MaxSize (%d bytes); nothing was written: %w", n, s.maxSize, store.ErrTooLarge)
	}
	return nil
}

// Set stores rec under id with the expiry rec.Expires (SET ... PXAT). A
// record whose Expires is not after now is not stored, and the key is
// deleted, as connect-redis does with a non-positive TTL.
func (s *Store) Set(ctx context.Context, id string, rec store.Record) error {
	key, err := s.key(ctx, id)
	if err != nil {
		return err
	}
	if err := s.tooLarge(len(rec.Data)); err != nil {
		return err
	}
	off, err := s.offset(ctx)
	if err != nil {
		return s.fail("save session", err)
	}
	exp := rec.Expires.UnixMilli()
	if exp <= s.now().UnixMilli() {
		return s.fail("delete expired session", s.client.Del(ctx, key).Err())
	}
	return s.fail("save session", s.sets.get(s.nodeOf(ctx, key)).Do(ctx, setItem{key, rec.Data, exp + off}, s.writeSets))
}

// Gets that overlap are read together (internal/batch): the Gets that
// arrive while a read runs wait for it, then go in one pipeline, one read
// per key however many Gets want it; on a Cluster or Ring, per node (see
// lanes), so a node that is down holds up only its own keys. Every read
// starts after each of its Gets arrived, so a Get never sees less than
// what was written before it began; the requests of one busy session,
// which all load the same key, share a round trip.

// readItem is one Get's key and, after its read, what the key held.
type readItem struct {
	key string
	st  state
}

// readMany reads the keys of b, once each, and answers every Get.
func (s *Store) readMany(b []*batch.Req[*readItem]) {
	if len(b) == 1 {
		r := b[0]
		r.Item.st, r.Err = s.read(r.Ctx, r.Item.key)
		return
	}
	ctx, cancel := batch.Context(b)
	defer cancel()
	cmds := make(map[string]*redis.Cmd, len(b))
	_, perr := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, r := range b {
			if cmds[r.Item.key] == nil {
				cmds[r.Item.key] = getScript.EvalSha(ctx, p, []string{r.Item.key})
			}
		}
		return nil
	})
	type result struct {
		st  state
		err error
	}
	results := make(map[string]result, len(cmds))
	for key, cmd := range cmds {
		res, err := cmd.Result()
		switch {
		case errors.Is(err, redis.Nil):
			results[key] = result{}
		case err != nil && redis.HasErrorPrefix(err, "NOSCRIPT"):
			// The script cache was flushed: the single read loads it.
			st, err := s.read(ctx, key)
			results[key] = result{st, err}
		case err != nil:
			if perr != nil && res == nil && err == nil {
				err = perr
			}
			results[key] = result{err: err}
		default:
			vals, ok := res.([]any)
			if !ok {
				results[key] = result{err: fmt.Errorf("redisstore: unexpected script reply %T", res)}
				continue
			}
			st, err := parseState(vals)
			results[key] = result{st, err}
		}
	}
	handed := make(map[string]bool, len(results))
	for _, r := range b {
		res := results[r.Item.key]
		if handed[r.Item.key] {
			res.st.raw = bytes.Clone(res.st.raw) // each Get owns its bytes
		}
		handed[r.Item.key] = true
		r.Item.st, r.Err = res.st, res.err
	}
}

// Sets of different sessions (new sessions, mostly) that overlap are sent
// together (internal/batch): one pipeline of SET commands per node, one
// round trip for all of them, each with its own answer.

// maxSetBatch bounds the commands of one pipeline.
const maxSetBatch = 256

// setItem is one SET.
type setItem struct {
	key  string
	data []byte
	pxat int64 // Redis's clock, ms
}

// writeSets sends the SETs of b and sets each one's Err.
func (s *Store) writeSets(b []*batch.Req[setItem]) {
	if len(b) == 1 {
		r := b[0]
		r.Err = s.client.Do(r.Ctx, "SET", r.Item.key, r.Item.data, "PXAT", r.Item.pxat).Err()
		return
	}
	ctx, cancel := batch.Context(b)
	defer cancel()
	cmds := make([]*redis.Cmd, len(b))
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range b {
			cmds[i] = p.Do(ctx, "SET", r.Item.key, r.Item.data, "PXAT", r.Item.pxat)
		}
		return nil
	})
	for i, r := range b {
		if r.Err = cmds[i].Err(); r.Err == nil && err != nil && cmds[i].Val() == nil {
			r.Err = err // no answer of its own
		}
	}
}

// Delete removes id. Deleting a missing id is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	key, err := s.key(ctx, id)
	if err != nil {
		return err
	}
	return s.fail("delete session", s.client.Del(ctx, key).Err())
}

// Touch moves the expiry of the live session under id to expires without
// rewriting its value (PEXPIREAT, as connect-redis's touch uses EXPIRE). It
// returns store.ErrNotFound when no live session has the id and never
// creates a key. An expires not after now deletes the session.
func (s *Store) Touch(ctx context.Context, id string, expires time.Time) error {
	key, err := s.key(ctx, id)
	if err != nil {
		return err
	}
	off, err := s.offset(ctx)
	if err != nil {
		return s.fail("touch session", err)
	}
	now := s.now().UnixMilli()
	exp := expires.UnixMilli()
	del := "0"
	if exp <= now {
		del = "1"
	}
	n, err := touchScript.Run(ctx, s.client, []string{key}, now+off, exp+off, del).Int64()
	if err != nil {
		return s.fail("touch session", err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// Update reads id, calls fn with the live session (found false when there is
// none), and writes fn's result with a compare-and-set: only if the value
// is still the one fn saw, and never re-creating a session that was
// deleted or expired meanwhile. On a conflict fn runs again on the value
// stored then. A written record whose Expires is not after now deletes the
// session. An error from fn is returned unchanged and nothing is written.
//
// Overlapping updates of one session in this process are applied as one
// batch (see runUpdates): each fn sees the result of the one before, and
// one compare-and-set writes them all.
func (s *Store) Update(ctx context.Context, id string, fn store.UpdateFunc) error {
	key, err := s.key(ctx, id)
	if err != nil {
		return err
	}
	return s.group.Do(ctx, key, &groupcommit.Op[pending]{Payload: pending{ctx: ctx, fn: fn}}, groupcommit.Plain(s.runUpdates))
}

// UpdateFrom is Update starting from seen, the record the caller last read
// or wrote: fn runs on seen first, and one script call writes its result if
// the stored value still equals seen.Data (a decision not to write is
// checked the same way). Only when it does not (or the session is gone)
// does fn run again, on the stored state the same reply returned. When
// nobody else wrote, a commit costs one round trip. A seen record without
// Expires or Data gives no shortcut: UpdateFrom then reads first, as
// Update does.
func (s *Store) UpdateFrom(ctx context.Context, id string, seen store.Record, fn store.UpdateFunc) error {
	key, err := s.key(ctx, id)
	if err != nil {
		return err
	}
	p := pending{ctx: ctx, fn: fn}
	if !seen.Expires.IsZero() && len(seen.Data) > 0 {
		p.seen, p.seenExp = seen.Data, seen.Expires.UnixMilli()
	}
	return s.group.Do(ctx, key, &groupcommit.Op[pending]{Payload: p}, groupcommit.Plain(s.runUpdates))
}

// pending is an Update or UpdateFrom waiting in its session's queue.
type pending struct {
	ctx     context.Context
	fn      store.UpdateFunc
	seen    []byte // UpdateFrom's seen record, when it has one
	seenExp int64  // its expiry, unix ms in the store's clock
}

// carry is what a batch leaves for the next batch of the same session
// while overlapping updates keep coming: the state it left in Redis, so
// the next batch starts from it instead of a stale seen record or a read.
type carry struct {
	known state
	ok    bool
}

// runUpdates applies a batch of overlapping updates of one session (see
// internal/groupcommit): every fn runs in order, each on the previous one's
// result, and one compare-and-set writes the outcome if Redis still holds
// the state the batch started from. On a conflict the whole batch runs
// again on the state the reply carries, after a backoff and a fresh read
// from the second conflict on. The batch's calls use the first caller's
// context (each caller's bound is the same StoreTimeout).
func (s *Store) runUpdates(key string, batch []*groupcommit.Op[pending], c *carry) {
	failAll := func(err error) {
		for _, o := range batch {
			if o.Err == nil {
				o.Err = err
			}
		}
	}
	ctx := batch[0].Payload.ctx
	off, err := s.offset(ctx)
	if err != nil {
		failAll(s.fail("update session", err))
		return
	}
	var cur state
	fresh := false
	switch first := batch[0].Payload; {
	case c.ok:
		cur = c.known
	case first.seen != nil && first.seenExp > s.now().UnixMilli():
		cur = state{exists: true, raw: first.seen, pexp: first.seenExp + off}
	default:
		if cur, err = s.read(ctx, key); err != nil {
			failAll(s.fail("update session", err))
			return
		}
		fresh = true
	}
	c.ok = false
	for attempt := 1; ; attempt++ {
		now := s.now().UnixMilli()
		st, changed := cur, false
		for _, o := range batch {
			o.Err = nil
			rec, found := s.view(st, now, off)
			next, write, err := o.Payload.fn(rec, found)
			switch {
			case err != nil:
				o.Err = err
			case !write:
			case next.Expires.UnixMilli() <= now:
				st, changed = state{}, true
			default:
				if err := s.tooLarge(len(next.Data)); err != nil {
					o.Err = err
					continue
				}
				st, changed = state{exists: true, raw: next.Data, pexp: next.Expires.UnixMilli() + off}, true
			}
		}
		if !changed && fresh {
			c.known, c.ok = cur, true
			return
		}
		act, exp, data := "c", int64(0), []byte(nil)
		if changed {
			if st.exists {
				act, exp, data = "s", st.pexp, st.raw
			} else {
				act = "d"
			}
		}
		// Expect exactly the state the batch started from: a live key with
		// this value (even one shown as no session because it is corrupt),
		// or no live key.
		mode, expect := "0", []byte(nil)
		if cur.liveAt(now, off) {
			mode, expect = "1", cur.raw
		}
		res, err := casScript.Run(ctx, s.client, []string{key}, mode, expect, now+off, act, data, exp).Slice()
		if err != nil {
			failAll(s.fail("update session", err))
			return
		}
		if len(res) == 0 {
			failAll(s.fail("update session", errors.New("redisstore: empty script reply")))
			return
		}
		if ok, _ := res[0].(int64); ok == 1 {
			if changed {
				c.known = st
			} else {
				c.known = cur
			}
			c.ok = true
			return
		}
		if len(res) == 1 {
			cur = state{}
		} else if cur, err = parseState(res[1:]); err != nil {
			failAll(s.fail("update session", err))
			return
		}
		fresh = true
		if attempt >= s.maxAttempts {
			failAll(fmt.Errorf("redisstore: update session: gave up after %d attempts because another writer changed the session before every write (heavy contention on one session); nothing was written, try again: %w",
				attempt, store.ErrUnavailable))
			return
		}
		if attempt > 1 {
			// Writers keep colliding: wait a random, growing time, then
			// read again (the state in the reply is stale by then).
			if err := backoff(ctx, attempt); err != nil {
				failAll(s.fail("update session", err))
				return
			}
			if cur, err = s.read(ctx, key); err != nil {
				failAll(s.fail("update session", err))
				return
			}
		}
	}
}

// backoff waits a random time that grows with the attempt (at most about
// 20 ms), so writers that keep colliding on one session spread out.
func backoff(ctx context.Context, attempt int) error {
	limit := 250 * time.Microsecond << min(attempt-2, 6)
	t := time.NewTimer(rand.N(limit) + 50*time.Microsecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
