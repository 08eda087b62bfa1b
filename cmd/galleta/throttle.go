package main

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// The admin sign-in throttle: repeated wrong passwords are slowed down per
// client (address) and, when many clients fail, overall, while a client
// without failures always has its password checked at once, so an
// attacker cannot lock the real admin out.
//
//   - A client has freeFailures failures; each failure after them bans it
//     for baseBackoff, doubling with each further failure up to
//     maxBackoff. While banned its attempts get 429 and Retry-After, and
//     the password is not checked.
//   - Above pressureFailures failures per failureWindow (all clients
//     together), there are no free failures and bans start at
//     pressureBackoff.
//   - A success clears the client's record.
//
// Every attempt counts as a failure from the moment it is let through, so
// concurrent guesses cannot slip in before the first ones are judged.
const (
	freeFailures     = 5
	baseBackoff      = time.Second
	maxBackoff       = 15 * time.Minute
	pressureFailures = 30
	pressureBackoff  = time.Minute
	failureWindow    = time.Minute
	maxClients       = 10000     // records kept at most
	forgetAfter      = time.Hour // a record idle this long after its ban is dropped
)

type throttle struct {
	now func() time.Time

	mu        sync.Mutex
	clients   map[string]*attempts
	lastPrune time.Time
	// failures of all clients in the current and previous window
	winStart  time.Time
	cur, prev int
}

type attempts struct {
	failures int
	until    time.Time // banned until
	last     time.Time // last attempt
}

func newThrottle(now func() time.Time) *throttle {
	return &throttle{now: now, clients: map[string]*attempts{}}
}

// begin is called before a password is checked. It returns how long the
// client is still banned (the password must then not be checked), or 0
// after counting the attempt as a failure until succeeded says otherwise.
func (t *throttle) begin(client string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	a := t.clients[client]
	if a != nil && now.Before(a.until) {
		return a.until.Sub(now)
	}
	if a == nil {
		t.makeRoomLocked(now)
		a = &attempts{}
		t.clients[client] = a
	}
	a.failures++
	a.last = now
	free, base := freeFailures, baseBackoff
	if t.rateLocked(now) >= pressureFailures {
		free, base = 0, pressureBackoff
	}
	if n := a.failures - free; n > 0 {
		d := base << min(n-1, 20)
		a.until = now.Add(min(d, maxBackoff))
	}
	return 0
}

// succeeded clears the client's record.
func (t *throttle) succeeded(client string) {
	t.mu.Lock()
	delete(t.clients, client)
	t.mu.Unlock()
}

// failed records a wrong password in the overall rate and returns how long
// the client is banned now.
func (t *throttle) failed(client string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.rateLocked(now)
	t.cur++
	if a := t.clients[client]; a != nil && now.Before(a.until) {
		return a.until.Sub(now)
	}
	return 0
}

// rateLocked estimates the failures of the last failureWindow: the
// current window's count plus the previous one's, weighted by how much of
// it still overlaps.
func (t *throttle) rateLocked(now time.Time) int {
	if el := now.Sub(t.winStart); el >= failureWindow || el < 0 {
		if el < 2*failureWindow && el >= 0 {
			t.prev = t.cur
			t.winStart = t.winStart.Add(failureWindow)
		} else {
			t.prev = 0
			t.winStart = now
		}
		t.cur = 0
	}
	frac := 1 - float64(now.Sub(t.winStart))/float64(failureWindow)
	return t.cur + int(float64(t.prev)*frac)
}

// makeRoomLocked drops records whose ban ended forgetAfter ago (at most
// once a minute, or when full), and when still full a tenth of the others:
// memory stays bounded whatever the number of addresses.
func (t *throttle) makeRoomLocked(now time.Time) {
	if len(t.clients) < maxClients && now.Sub(t.lastPrune) < time.Minute {
		return
	}
	t.lastPrune = now
	for c, a := range t.clients {
		if now.Sub(a.until) > forgetAfter && now.Sub(a.last) > forgetAfter {
			delete(t.clients, c)
		}
	}
	for c := range t.clients { // random order
		if len(t.clients) < maxClients-maxClients/10 {
			break
		}
		delete(t.clients, c)
	}
}

func (t *throttle) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.clients)
}

// clientKey names the client of a request for the throttle: its address,
// or with trustProxy the last address of X-Forwarded-For (the one the
// proxy in front of us added). An IPv6 client is its /64, which one host
// usually has whole.
func clientKey(r *http.Request, trustProxy bool) string {
	addr := r.RemoteAddr
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	if trustProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			list := xff[len(xff)-1]
			if i := strings.LastIndexByte(list, ','); i >= 0 {
				list = list[i+1:]
			}
			if a := strings.TrimSpace(list); a != "" {
				addr = a
			}
		}
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
