package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// adminLoginFrom posts the admin sign-in form from a client address.
func adminLoginFrom(h http.Handler, ip, pw string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/admin/login", strings.NewReader(url.Values{"password": {pw}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = ip + ":40000"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

const (
	attacker = "203.0.113.7"
	realUser = "198.51.100.9"
)

// Guessing the admin password is slowed down per client, without locking
// out the real admin, who signs in from elsewhere.
func TestAdminLoginThrottle(t *testing.T) {
	clock := newFakeClock()
	_, a := testAppOn(t, newMemStore(), clock.Now, "right", discardLog())
	h := a.handler()
	evaluated, retryAfter := 0, 0
	for i := range 300 {
		rec := adminLoginFrom(h, attacker, fmt.Sprintf("guess%d", i))
		switch rec.Code {
		case 401:
			evaluated++
		case 429:
			ra, err := strconv.Atoi(rec.Header().Get("Retry-After"))
			if err != nil || ra < 1 || !strings.Contains(rec.Body.String(), "Too many wrong passwords") {
				t.Fatalf("guess %d: 429 with Retry-After %q: %s", i, rec.Header().Get("Retry-After"), rec.Body)
			}
			retryAfter = ra
		default:
			t.Fatalf("guess %d: %d", i, rec.Code)
		}
	}
	if evaluated < 1 || evaluated > 6 {
		t.Fatalf("300 fast wrong guesses: %d evaluated (401), want a handful", evaluated)
	}
	// While backing off, even the right password is not checked.
	if rec := adminLoginFrom(h, attacker, "right"); rec.Code != 429 {
		t.Fatalf("the right password during the back-off: %d, want 429", rec.Code)
	}
	// Another client gets in at once during the attack.
	if rec := adminLoginFrom(h, realUser, "right"); rec.Code != http.StatusSeeOther {
		t.Fatalf("the real admin during the attack: %d, want 303", rec.Code)
	}
	// After the back-off the attacker may try again: one try, then a
	// longer wait.
	clock.Advance(time.Duration(retryAfter) * time.Second)
	if rec := adminLoginFrom(h, attacker, "wrong"); rec.Code != 401 {
		t.Fatalf("after the back-off: %d, want 401", rec.Code)
	}
	rec := adminLoginFrom(h, attacker, "wrong")
	next, _ := strconv.Atoi(rec.Header().Get("Retry-After"))
	if rec.Code != 429 || next <= retryAfter {
		t.Fatalf("right after another failure: %d, Retry-After %d; want 429 and more than %d", rec.Code, next, retryAfter)
	}
	// Success resets: the free failures are back.
	clock.Advance(time.Duration(next) * time.Second)
	if rec := adminLoginFrom(h, attacker, "right"); rec.Code != http.StatusSeeOther {
		t.Fatalf("the right password after the back-off: %d, want 303", rec.Code)
	}
	for i := range freeFailures {
		if rec := adminLoginFrom(h, attacker, "wrong"); rec.Code != 401 {
			t.Fatalf("failure %d after a success: %d, want 401", i+1, rec.Code)
		}
	}
}

// Concurrent guesses count too: each is a failure until it succeeds.
func TestAdminLoginThrottleConcurrent(t *testing.T) {
	_, a := testAppOn(t, newMemStore(), newFakeClock().Now, "right", discardLog())
	h := a.handler()
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Go(func() {
			c := adminLoginFrom(h, attacker, fmt.Sprint(i)).Code
			mu.Lock()
			codes[c]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes[401] > freeFailures+1 || codes[401]+codes[429] != 300 {
		t.Fatalf("300 concurrent wrong guesses: %v, want at most %d evaluated and the rest 429", codes, freeFailures+1)
	}
}

// Above an overall failure rate (many addresses guessing), every failure
// backs off at once, for longer; a client without failures is still
// checked at once.
func TestAdminLoginThrottleUnderPressure(t *testing.T) {
	clock := newFakeClock()
	_, a := testAppOn(t, newMemStore(), clock.Now, "right", discardLog())
	h := a.handler()
	for i := range pressureFailures + 10 {
		if rec := adminLoginFrom(h, fmt.Sprintf("192.0.2.%d", i), "wrong"); rec.Code != 401 {
			t.Fatalf("client %d: %d", i, rec.Code)
		}
	}
	if rec := adminLoginFrom(h, realUser, "right"); rec.Code != http.StatusSeeOther {
		t.Fatalf("a client without failures under pressure: %d, want 303", rec.Code)
	}
	if rec := adminLoginFrom(h, "198.51.100.20", "wrong"); rec.Code != 401 {
		t.Fatalf("a new client's first failure: %d, want 401", rec.Code)
	}
	rec := adminLoginFrom(h, "198.51.100.20", "wrong")
	if ra, _ := strconv.Atoi(rec.Header().Get("Retry-After")); rec.Code != 429 || ra < int(pressureBackoff/time.Second) {
		t.Fatalf("a second failure under pressure: %d, Retry-After %s; want 429 and at least %v", rec.Code, rec.Header().Get("Retry-After"), pressureBackoff)
	}
	// Once the rate falls, new clients have their free failures again.
	clock.Advance(3 * failureWindow)
	for i := range freeFailures {
		if rec := adminLoginFrom(h, "198.51.100.30", "wrong"); rec.Code != 401 {
			t.Fatalf("failure %d after the attack: %d, want 401", i+1, rec.Code)
		}
	}
}

// The per-client records are capped, old ones dropped first.
func TestThrottleMemoryIsBounded(t *testing.T) {
	clock := newFakeClock()
	th := newThrottle(clock.Now)
	for i := range 3 * maxClients {
		c := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		if th.begin(c) == 0 {
			th.failed(c)
		}
		if i%1000 == 0 {
			clock.Advance(time.Minute)
		}
	}
	if n := th.size(); n > maxClients {
		t.Fatalf("%d client records, want at most %d", n, maxClients)
	}
	// A record is forgotten once its ban is long over.
	clock.Advance(forgetAfter + maxBackoff + time.Second)
	th.begin("192.0.2.1")
	if n := th.size(); n != 1 {
		t.Fatalf("%d records after the others went stale, want 1", n)
	}
}

func TestClientKey(t *testing.T) {
	for _, tc := range []struct {
		remote, xff string
		trust       bool
		want        string
	}{
		{"203.0.113.7:1234", "", false, "203.0.113.7"},
		{"203.0.113.7:1234", "198.51.100.1", false, "203.0.113.7"},
		{"127.0.0.1:1234", "198.51.100.1, 192.0.2.9", true, "192.0.2.9"},
		{"127.0.0.1:1234", "", true, "127.0.0.1"},
		{"[2001:db8:1:2:3:4:5:6]:443", "", false, "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", "", false, "2001:db8:1:2::/64"},
		{"[::ffff:203.0.113.7]:1", "", false, "203.0.113.7"},
		{"garbage", "", false, "garbage"},
	} {
		r := httptest.NewRequest("POST", "/admin/login", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := clientKey(r, tc.trust); got != tc.want {
			t.Errorf("clientKey(%s, XFF %q, trust %v) = %q, want %q", tc.remote, tc.xff, tc.trust, got, tc.want)
		}
	}
}
