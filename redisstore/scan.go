package redisstore

import (
	"context"
	"errors"
	"hash/maphash"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/galleta-go/galleta/store"
)

// scanCount is SCAN's COUNT: keys Redis looks at per page (and so the
// largest pipeline of reads per round trip).
const scanCount = 500

// matchPattern is SCAN's MATCH for the prefix: the prefix with glob
// characters escaped, then "*".
func (s *Store) matchPattern() string {
	var b strings.Builder
	for _, r := range s.prefix {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('*')
	return b.String()
}

// idOf returns the session id of a scanned key, or false for a key under
// the prefix that is not a session of this store.
func (s *Store) idOf(key string) (string, bool) {
	id, ok := strings.CutPrefix(key, s.prefix)
	return id, ok && store.ValidID(id)
}

// dedup drops keys SCAN returns twice (it may, while Redis rehashes).
// It keeps a 64-bit hash per key, not the key.
type dedup struct {
	seed maphash.Seed
	seen map[uint64]struct{}
}

func newDedup() *dedup { return &dedup{seed: maphash.MakeSeed(), seen: map[uint64]struct{}{}} }

func (d *dedup) first(key string) bool {
	h := maphash.String(d.seed, key)
	if _, ok := d.seen[h]; ok {
		return false
	}
	d.seen[h] = struct{}{}
	return true
}

// scan walks every primary, one after the other, and calls page with each
// page of session keys (deduplicated) and the node that holds them. It
// stops when page returns false or an error.
func (s *Store) scan(ctx context.Context, page func(ctx context.Context, node redis.Cmdable, keys []string, ids []string) (bool, error)) error {
	nodes, err := s.nodes(ctx)
	if err != nil {
		return err
	}
	match := s.matchPattern()
	d := newDedup()
	var keys, ids []string
	for _, node := range nodes {
		var cursor uint64
		for {
			got, next, err := node.Scan(ctx, cursor, match, scanCount).Result()
			if err != nil {
				return err
			}
			keys, ids = keys[:0], ids[:0]
			for _, k := range got {
				if id, ok := s.idOf(k); ok && d.first(k) {
					keys, ids = append(keys, k), append(ids, id)
				}
			}
			if len(keys) > 0 {
				more, err := page(ctx, node, keys, ids)
				if err != nil || !more {
					return err
				}
			}
			if next == 0 {
				break
			}
			cursor = next
		}
	}
	return nil
}

// redirected reports whether err is a cluster redirection (the key moved
// to another node during the walk): the key is then read through the
// cluster client.
func redirected(err error) bool {
	if _, ok := redis.IsMovedError(err); ok {
		return true
	}
	_, ok := redis.IsAskError(err)
	return ok
}

// List calls fn with each live session, primary by primary, a page of up to
// 500 keys at a time (SCAN MATCH prefix*, then one pipelined round trip of
// GET and PEXPIRETIME per page), until fn returns false. Expiry is judged
// by the store's clock. Corrupt values are skipped. fn must not call the
// store.
func (s *Store) List(ctx context.Context, fn func(id string, rec store.Record) bool) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	off, err := s.offset(ctx)
	if err != nil {
		return s.fail("list sessions", err)
	}
	err = s.scan(ctx, func(ctx context.Context, node redis.Cmdable, keys, ids []string) (bool, error) {
		pipe := node.Pipeline()
		gets := make([]*redis.StringCmd, len(keys))
		exps := make([]*redis.Cmd, len(keys))
		for i, k := range keys {
			gets[i] = pipe.Get(ctx, k)
			exps[i] = pipe.Do(ctx, "PEXPIRETIME", k)
		}
		_, _ = pipe.Exec(ctx) // errors are read per command
		now := s.now().UnixMilli()
		for i, k := range keys {
			var st state
			v, gerr := gets[i].Bytes()
			exp, eerr := exps[i].Int64()
			switch {
			case redirected(gerr) || redirected(eerr):
				var err error
				if st, err = s.read(ctx, k); err != nil {
					return false, err
				}
			case errors.Is(gerr, redis.Nil):
				continue // gone since SCAN
			case gerr != nil:
				return false, gerr
			case eerr != nil:
				return false, eerr
			case exp == -2:
				continue
			default:
				st = state{exists: true, raw: v, pexp: exp}
			}
			if rec, ok := s.view(st, now, off); ok && !fn(ids[i], rec) {
				return false, nil
			}
		}
		return true, nil
	})
	return s.fail("list sessions", err)
}

// pexpireTimes reads PEXPIRETIME of keys in one pipelined round trip on
// node: -2 for a key that is gone, -1 for one without expiry.
func (s *Store) pexpireTimes(ctx context.Context, node redis.Cmdable, keys []string) ([]int64, error) {
	pipe := node.Pipeline()
	cmds := make([]*redis.Cmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Do(ctx, "PEXPIRETIME", k)
	}
	_, _ = pipe.Exec(ctx)
	out := make([]int64, len(keys))
	for i, c := range cmds {
		e, err := c.Int64()
		if redirected(err) {
			e, err = s.client.Do(ctx, "PEXPIRETIME", keys[i]).Int64()
		}
		if err != nil {
			return nil, err
		}
		out[i] = e
	}
	return out, nil
}

// Count returns the number of live sessions by the store's clock: SCAN on
// every primary and a pipelined PEXPIRETIME per page (values are not read,
// so a corrupt value counts until it expires).
func (s *Store) Count(ctx context.Context) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	off, err := s.offset(ctx)
	if err != nil {
		return 0, s.fail("count sessions", err)
	}
	n := 0
	err = s.scan(ctx, func(ctx context.Context, node redis.Cmdable, keys, _ []string) (bool, error) {
		exps, err := s.pexpireTimes(ctx, node, keys)
		if err != nil {
			return false, err
		}
		now := s.now().UnixMilli()
		for _, e := range exps {
			if e == -1 || e-off > now {
				n++
			}
		}
		return true, nil
	})
	if err != nil {
		return 0, s.fail("count sessions", err)
	}
	return n, nil
}

// Reap deletes the sessions whose expiry has passed by the store's clock
// (Redis also deletes them itself, by its own clock) and returns how many
// it deleted. Each deletion re-checks the expiry atomically, so a session
// touched or saved during the walk is kept.
func (s *Store) Reap(ctx context.Context) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	off, err := s.offset(ctx)
	if err != nil {
		return 0, s.fail("reap sessions", err)
	}
	n := 0
	var dead []string
	err = s.scan(ctx, func(ctx context.Context, node redis.Cmdable, keys, _ []string) (bool, error) {
		exps, err := s.pexpireTimes(ctx, node, keys)
		if err != nil {
			return false, err
		}
		now := s.now().UnixMilli()
		dead = dead[:0]
		for i, e := range exps {
			if e >= 0 && e-off <= now {
				dead = append(dead, keys[i])
			}
		}
		if len(dead) == 0 {
			return true, nil
		}
		deleted, err := s.reapKeys(ctx, node, dead, now+off)
		n += deleted
		return err == nil, err
	})
	if err != nil {
		return n, s.fail("reap sessions", err)
	}
	return n, nil
}

// reapKeys runs reapScript on keys in one pipeline on node, loading the
// script there first when the node does not have it yet.
func (s *Store) reapKeys(ctx context.Context, node redis.Cmdable, keys []string, nowR int64) (int, error) {
	run := func() []*redis.Cmd {
		pipe := node.Pipeline()
		cmds := make([]*redis.Cmd, len(keys))
		for i, k := range keys {
			cmds[i] = reapScript.EvalSha(ctx, pipe, []string{k}, nowR)
		}
		_, _ = pipe.Exec(ctx) // errors are read per command
		return cmds
	}
	cmds := run()
	if redis.HasErrorPrefix(cmds[0].Err(), "NOSCRIPT") {
		if err := reapScript.Load(ctx, node).Err(); err != nil {
			return 0, err
		}
		cmds = run()
	}
	n := 0
	for i, c := range cmds {
		v, err := c.Int64()
		if redirected(err) || redis.HasErrorPrefix(err, "NOSCRIPT") {
			v, err = reapScript.Run(ctx, s.client, []string{keys[i]}, nowR).Int64()
		}
		if err != nil {
			return n, err
		}
		n += int(v)
	}
	return n, nil
}

// Ping checks that every primary answers PING (and, the first time, that
// the store could measure the clock offset). It returns an error wrapping
// store.ErrUnavailable when one does not.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if _, err := s.offset(ctx); err != nil {
		return s.fail("ping", err)
	}
	nodes, err := s.nodes(ctx)
	if err != nil {
		return s.fail("ping", err)
	}
	return s.fail("ping", eachNode(ctx, nodes, func(ctx context.Context, c redis.Cmdable) error {
		return c.Ping(ctx).Err()
	}))
}
