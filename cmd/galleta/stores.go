package main

import (
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/galleta-go/galleta/filestore"
	"github.com/galleta-go/galleta/memstore"
	"github.com/galleta-go/galleta/store"
)

// storeSpec is a parsed --store value.
type storeSpec struct {
	kind string // "memory" or "file"
	dir  string // for "file"
}

func (s storeSpec) String() string {
	if s.kind == "file" {
		return "file:" + s.dir
	}
	return s.kind
}

const defaultStore = "file:./sessions"

// parseStore reads a store URL: memory, file:DIR, file (./sessions). The
// URLs of planned stores (redis://, postgres://) get a usage error that
// says they are not built yet.
func parseStore(v string) (storeSpec, error) {
	var spec storeSpec
	switch {
	case v == "memory" || v == "mem":
		spec.kind = "memory"
	case v == "file":
		spec.kind, spec.dir = "file", "./sessions"
	case strings.HasPrefix(v, "file://"):
		u, err := url.Parse(v)
		if err != nil || u.Path == "" {
			return spec, usagef("store %q: want file:DIR or file:///abs/dir", v)
		}
		spec.kind, spec.dir = "file", u.Path
	case strings.HasPrefix(v, "file:"):
		spec.kind, spec.dir = "file", strings.TrimPrefix(v, "file:")
		if spec.dir == "" {
			return spec, usagef("store %q: the directory is empty; want file:DIR", v)
		}
	case strings.HasPrefix(v, "redis://"), strings.HasPrefix(v, "rediss://"):
		return spec, usagef("store %q: the Redis store is not built yet; use memory or file:DIR", v)
	case strings.HasPrefix(v, "postgres://"), strings.HasPrefix(v, "postgresql://"):
		return spec, usagef("store %q: the PostgreSQL store is not built yet; use memory or file:DIR", v)
	default:
		return spec, usagef("store %q: unknown kind; want memory or file:DIR", v)
	}
	if spec.kind == "file" {
		spec.dir = filepath.Clean(spec.dir)
	}
	return spec, nil
}

// openMode says what opening a store may do.
type openMode int

const (
	openServe    openMode = iota // create it if missing, clean up in the background (a server)
	openCreate                   // create it if missing (migrate --to)
	openExisting                 // it must exist; changes allowed (delete, revoke-user, gc)
	openReadOnly                 // it must exist; nothing is written (list, show, count, migrate --from)
)

// openStore opens the store a spec names. idle is the Manager's idle
// timeout, which the file store needs for Node's expiry rule (its TTL).
// Only a server (openServe) starts the store's background cleanup; only
// openServe and openCreate may create a store, so a typo in a command's
// --store is an error instead of a new, empty store.
func openStore(spec storeSpec, idle time.Duration, log *slog.Logger, mode openMode) (store.Store, func() error, error) {
	switch spec.kind {
	case "memory":
		var o memstore.Options
		if mode != openServe {
			o.SweepInterval = -1
		}
		s := memstore.New(o)
		return s, s.Close, nil
	case "file":
		o := filestore.Options{Dir: spec.dir, TTL: idle, Logger: log,
			NoCreate: mode == openExisting, ReadOnly: mode == openReadOnly}
		if mode != openServe {
			o.ReapInterval = -1
		}
		s, err := filestore.New(o)
		if err != nil {
			return nil, nil, err
		}
		return s, s.Close, nil
	}
	return nil, nil, fmt.Errorf("store %s cannot be opened", spec)
}
