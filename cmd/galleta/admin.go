package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/galleta-go/galleta"
)

type adminRow struct {
	sessionInfo
	Short  string // the id's last characters, taken before the id is dropped
	Handle string
	Mine   bool
}

const adminOff = "The admin page is off: start the server with --admin-password (or GALLETA_ADMIN_PASSWORD)."

func (a *app) isAdmin(r *http.Request) bool {
	ok, _ := galleta.FromRequest(r).GetBool("admin")
	return ok && a.cfg.adminPassword != ""
}

func (a *app) admin(w http.ResponseWriter, r *http.Request) {
	if a.cfg.adminPassword == "" {
		a.render(w, r, http.StatusForbidden, "admin.html", page{Title: "Admin", Errors: []string{adminOff}})
		return
	}
	if !a.isAdmin(r) {
		a.render(w, r, http.StatusOK, "admin.html", page{Title: "Admin"})
		return
	}
	a.renderAdmin(w, r, http.StatusOK, nil)
}

// renderAdmin shows the signed-in admin the live sessions, with errs above
// them.
func (a *app) renderAdmin(w http.ResponseWriter, r *http.Request, status int, errs []string) {
	all, err := listSessions(r.Context(), a.st, a.cfg.idle)
	if err != nil {
		a.storeFailed(w, r, "list sessions", err)
		return
	}
	mine := galleta.FromRequest(r).ID()
	rows := make([]adminRow, len(all))
	for i, s := range all {
		rows[i] = adminRow{sessionInfo: s, Short: s.Suffix(), Handle: a.handle(s.ID), Mine: s.ID == mine}
		rows[i].ID = "" // the page never carries ids
	}
	a.render(w, r, status, "admin.html", page{Title: "Admin", Errors: errs, Data: map[string]any{"Sessions": rows, "Count": len(rows)}})
}

func (a *app) adminLogin(w http.ResponseWriter, r *http.Request) {
	pw, ok := formValue(w, r, "password")
	if !ok {
		return
	}
	if a.cfg.adminPassword == "" {
		a.render(w, r, http.StatusForbidden, "admin.html", page{Title: "Admin", Errors: []string{adminOff}})
		return
	}
	client := clientKey(r, a.cfg.trustProxy)
	if wait := a.throttle.begin(client); wait > 0 {
		secs := int((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		a.render(w, r, http.StatusTooManyRequests, "admin.html", page{Title: "Admin", Errors: []string{fmt.Sprintf("Too many wrong passwords from your address: try again in %s.", time.Duration(secs)*time.Second)}})
		return
	}
	if !a.adminOK(pw) {
		msg := "Wrong password."
		if ban := a.throttle.failed(client); ban > 0 {
			ban = ban.Round(time.Second)
			a.log.Warn("galleta: wrong admin password; the client must wait before its next try", "client", client, "wait", ban.String())
			msg += fmt.Sprintf(" The next try from your address is possible in %s.", ban)
		}
		a.render(w, r, http.StatusUnauthorized, "admin.html", page{Title: "Admin", Errors: []string{msg}})
		return
	}
	a.throttle.succeeded(client)
	s := galleta.FromRequest(r)
	if err := s.Regenerate(r.Context()); err != nil {
		a.storeFailed(w, r, "admin sign-in", err)
		return
	}
	s.Set("admin", true)
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

func (a *app) adminLogout(w http.ResponseWriter, r *http.Request) {
	galleta.FromRequest(r).Delete("admin")
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

func (a *app) requireAdmin(w http.ResponseWriter, r *http.Request) bool {
	if !a.isAdmin(r) {
		a.render(w, r, http.StatusUnauthorized, "admin.html", page{Title: "Admin", Errors: []string{"Sign in as admin first."}})
		return false
	}
	return true
}

// adminRevoke deletes the session whose handle the form names.
func (a *app) adminRevoke(w http.ResponseWriter, r *http.Request) {
	h, ok := formValue(w, r, "handle")
	if !ok || !a.requireAdmin(w, r) {
		return
	}
	all, err := listSessions(r.Context(), a.st, a.cfg.idle)
	if err != nil {
		a.storeFailed(w, r, "list sessions", err)
		return
	}
	s := galleta.FromRequest(r)
	for _, info := range all {
		if a.handle(info.ID) != h {
			continue
		}
		if err := a.st.Delete(r.Context(), info.ID); err != nil {
			a.storeFailed(w, r, "revoke a session", scrub(err, info.ID))
			return
		}
		s.AddFlash("info", fmt.Sprintf("Revoked session %s of %s.", info.Suffix(), orAnon(info.User)))
		http.Redirect(w, r, "/admin", http.StatusSeeOther)
		return
	}
	s.AddFlash("info", "That session is already gone.")
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

func (a *app) adminRevokeUser(w http.ResponseWriter, r *http.Request) {
	u, ok := formValue(w, r, "user")
	if !ok || !a.requireAdmin(w, r) {
		return
	}
	u = strings.TrimSpace(u)
	if u == "" {
		a.renderAdmin(w, r, http.StatusBadRequest, []string{"Enter the user name whose sessions to revoke (anonymous sessions have none: revoke them one by one)."})
		return
	}
	n, err := revokeUser(r.Context(), a.st, u, a.cfg.idle)
	if err != nil {
		a.storeFailed(w, r, "revoke the sessions of a user", err)
		return
	}
	galleta.FromRequest(r).AddFlash("info", fmt.Sprintf("Revoked %d session(s) of %s.", n, orAnon(u)))
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

// orAnon names a user in a message, escaped (see visible).
func orAnon(u string) string {
	if u == "" {
		return "an anonymous visitor"
	}
	return visible(u)
}
