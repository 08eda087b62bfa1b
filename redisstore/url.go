package redisstore

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Open builds a go-redis client from rawURL (with ContextTimeoutEnabled, so
// every call honours its context's deadline) and returns a store on it that
// owns it: Close closes the client.
//
// The URL forms:
//
//	redis://[user:password@]host:port[/db][?options]     one server
//	rediss://...                                          the same over TLS
//	unix://[user:password@]/path/to/redis.sock[?db=N]     one server on a Unix socket
//	redis+cluster://[user:password@]host:port,host:port[/][?options]
//	rediss+cluster://...                                  a cluster over TLS
//	redis://host:port?addr=host:port&addr=host:port       a cluster (go-redis's ParseClusterURL form)
//
// The cluster forms list seed nodes (any of its nodes; the client discovers
// the rest). options are go-redis's URL options (dial_timeout, read_timeout,
// pool_size, ...: see redis.ParseURL and redis.ParseClusterURL). Errors
// never repeat the password.
func Open(rawURL string, o Options) (*Store, error) {
	client, err := NewClient(rawURL)
	if err != nil {
		return nil, err
	}
	s, err := New(client, o)
	if err != nil {
		client.Close()
		return nil, err
	}
	s.own = true
	return s, nil
}

// NewClient builds the go-redis client Open uses, for callers that want to
// share it or set more options: a *redis.Client or a *redis.ClusterClient,
// with ContextTimeoutEnabled.
func NewClient(rawURL string) (redis.UniversalClient, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, fmt.Errorf("redisstore: store URL %q has no scheme: want redis://host:port/db, rediss://..., unix://..., or redis+cluster://host:port,host:port/", redactURL(rawURL))
	}
	switch strings.ToLower(scheme) {
	case "redis+cluster", "rediss+cluster":
		u, err := clusterURL(strings.TrimSuffix(strings.ToLower(scheme), "+cluster"), rest)
		if err != nil {
			return nil, fmt.Errorf("redisstore: cluster URL %q: %w", redactURL(rawURL), err)
		}
		return newCluster(u, rawURL)
	case "redis", "rediss":
		if u, err := url.Parse(rawURL); err == nil && u.Query().Has("addr") {
			return newCluster(rawURL, rawURL)
		}
		fallthrough
	case "unix":
		opt, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redisstore: Redis URL %q: %s", redactURL(rawURL), redactErr(err, rawURL))
		}
		opt.ContextTimeoutEnabled = true
		return redis.NewClient(opt), nil
	}
	return nil, fmt.Errorf("redisstore: store URL %q: unknown scheme %q: want redis, rediss, unix, redis+cluster or rediss+cluster", redactURL(rawURL), scheme)
}

func newCluster(u, rawURL string) (redis.UniversalClient, error) {
	opt, err := redis.ParseClusterURL(u)
	if err != nil {
		return nil, fmt.Errorf("redisstore: cluster URL %q: %s", redactURL(rawURL), redactErr(err, u))
	}
	opt.ContextTimeoutEnabled = true
	return redis.NewClusterClient(opt), nil
}

// clusterURL rewrites the authority and tail of a redis+cluster URL into
// go-redis's form: the first seed as the host, the others as addr=
// parameters.
func clusterURL(scheme, rest string) (string, error) {
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	user := ""
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		user, authority = authority[:i+1], authority[i+1:]
	}
	var hosts []string
	for h := range strings.SplitSeq(authority, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		return "", errors.New("no seed nodes: want host:port[,host:port...]")
	}
	path, query, _ := strings.Cut(tail, "?")
	if path != "" && path != "/" && path != "/0" {
		return "", errors.New("a cluster has only database 0: drop the path")
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", fmt.Errorf("bad query: %v", err)
	}
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	out := scheme + "://" + user + hosts[0]
	if len(q) > 0 {
		out += "?" + q.Encode()
	}
	return out, nil
}

// redactURL hides the password of a URL for error messages.
func redactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	end := len(rest)
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		end = i
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at < 0 {
		return raw
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return raw
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

// redactErr is err's text with the URL's password hidden (url.Parse's
// errors quote the whole URL).
func redactErr(err error, raw string) string {
	msg := err.Error()
	if r := redactURL(raw); r != raw {
		msg = strings.ReplaceAll(msg, raw, r)
		if u, perr := url.Parse(raw); perr == nil {
			if p, ok := u.User.Password(); ok && p != "" {
				msg = strings.ReplaceAll(msg, p, "xxxxx")
			}
		}
	}
	return msg
}
