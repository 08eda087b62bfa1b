package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/galleta-go/galleta"
)

// The JSON API scripts and tests use. Kept stable.

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func jsonError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// POST /api/login {"user": "..."}: regenerates the id and signs in.
func (a *app) apiLogin(w http.ResponseWriter, r *http.Request) {
	var body struct {
		User string `json:"user"`
	}
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			jsonError(w, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		jsonError(w, http.StatusBadRequest, `want a JSON body like {"user": "ann"}`)
		return
	}
	if status, msg := checkUser(body.User); status != 0 {
		jsonError(w, status, msg)
		return
	}
	user := strings.TrimSpace(body.User)
	if err := a.signIn(r, user); err != nil {
		a.storeFailed(w, r, "sign in", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"user": user})
}

// POST /api/logout: deletes the session and expires the cookie.
func (a *app) apiLogout(w http.ResponseWriter, r *http.Request) {
	if err := galleta.FromRequest(r).Destroy(r.Context()); err != nil {
		a.storeFailed(w, r, "sign out", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// GET /api/me: {"user", "visits", "created", "expires"}; user is null when
// signed out.
func (a *app) apiMe(w http.ResponseWriter, r *http.Request) {
	s := galleta.FromRequest(r)
	var user *string
	if u, ok := s.GetString("user"); ok {
		user = &u
	}
	visits, _ := s.GetInt("visits")
	writeJSON(w, http.StatusOK, map[string]any{
		"user":    user,
		"visits":  visits,
		"created": s.CreatedAt().UTC().Format(jsonTime),
		"expires": s.ExpiresAt().UTC().Format(jsonTime),
	})
}

// POST /api/visits: adds one to visits; concurrent calls all count, and
// each answers the count its own increment stored.
func (a *app) apiVisits(w http.ResponseWriter, r *http.Request) {
	n, err := a.countVisit(r)
	if err != nil {
		a.storeFailed(w, r, "count a visit", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{"visits": n})
}

// jsonTime is RFC 3339 with milliseconds, as JavaScript's toISOString.
const jsonTime = "2006-01-02T15:04:05.000Z07:00"
