package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/galleta-go/galleta/internal/record"
	"github.com/galleta-go/galleta/store"
)

// sessionInfo is what the admin page and `galleta sessions` show of a
// stored session. It never carries the session's values beyond the user.
type sessionInfo struct {
	ID       string    `json:"id"`
	User     string    `json:"user,omitempty"`
	Created  time.Time `json:"created,omitzero"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	Expires  time.Time `json:"expires"`
	Size     int       `json:"size"`
}

// Suffix is the last characters of the id: enough to tell sessions apart
// on screen, not enough to use one.
func (i sessionInfo) Suffix() string {
	if len(i.ID) <= 6 {
		return i.ID
	}
	return "…" + i.ID[len(i.ID)-6:]
}

// describe reads the bookkeeping of a stored record. idle is the idle
// window of sessions without their own max age, to tell when the session
// was last used.
func describe(id string, rec store.Record, idle time.Duration) sessionInfo {
	info := sessionInfo{ID: id, Expires: rec.Expires, Size: len(rec.Data)}
	fields, err := record.Fields(rec.Data, nil)
	if err != nil {
		return info
	}
	window := idle
	for _, f := range fields {
		switch f.Key {
		case "user":
			var u string
			if json.Unmarshal(f.Raw, &u) == nil {
				info.User = u
			}
		case record.KeyMeta:
			if m, err := record.DecodeMeta(f.Raw); err == nil {
				info.Created = m.Created
			}
		case record.KeyCookie:
			if c, err := record.DecodeCookie(f.Raw); err == nil && c.OriginalMaxAge > 0 {
				window = time.Duration(c.OriginalMaxAge) * time.Millisecond
			}
		}
	}
	if !rec.Expires.IsZero() {
		info.LastSeen = rec.Expires.Add(-window)
		if !info.Created.IsZero() && info.LastSeen.Before(info.Created) {
			info.LastSeen = info.Created // capped by the absolute deadline
		}
	}
	return info
}

// listSessions walks the store's live sessions, newest first.
func listSessions(ctx context.Context, st store.Store, idle time.Duration) ([]sessionInfo, error) {
	l, ok := st.(store.Lister)
	if !ok {
		return nil, fmt.Errorf("this store cannot list its sessions")
	}
	var out []sessionInfo
	err := l.List(ctx, func(id string, rec store.Record) bool {
		out = append(out, describe(id, rec, idle))
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].LastSeen.After(out[j].LastSeen) })
	return out, err
}

// errNoUserName is revokeUser's answer to an empty or blank name, which
// would match every anonymous session.
var errNoUserName = errors.New("no user name given")

// revokeUser deletes every live session whose user is name. A blank name
// is an error: it names nobody.
func revokeUser(ctx context.Context, st store.Store, name string, idle time.Duration) (int, error) {
	if strings.TrimSpace(name) == "" {
		return 0, errNoUserName
	}
	all, err := listSessions(ctx, st, idle)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range all {
		if s.User != name {
			continue
		}
		if err := st.Delete(ctx, s.ID); err != nil {
			return n, fmt.Errorf("delete a session of %q (%d deleted before): %w", visible(name), n, scrub(err, s.ID))
		}
		n++
	}
	return n, nil
}
