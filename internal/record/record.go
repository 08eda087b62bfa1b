// Package record reads and writes the stored session: a JSON object in
// express-session's layout, the session's own keys at top level plus a
// "cookie" object, and galleta's bookkeeping under "__galleta".
//
// Stores that need a field of the record (the file store's "__lastAccess",
// the expiry derived from "cookie") use this package too, so there is one
// reader of the format.
package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Reserved top-level keys that are not session values.
const (
	KeyCookie  = "cookie"
	KeyMeta    = "__galleta"
	KeyLastAcc = "__lastAccess" // written by session-file-store (Node) and the file store
)

// ErrMalformed is returned for data that is not a JSON object of the
// expected shape.
var ErrMalformed = errors.New("stored session is not a JSON object in express-session's layout")

// Field is one top-level key of the object with its raw JSON value. Raw
// aliases the decoded input; it must not be modified.
type Field struct {
	Key string
	Raw []byte
}

// Fields splits a JSON object into its top-level fields, in order, without
// decoding the values. Duplicate keys are kept as they appear (the caller
// decides; encoding/json lets the last one win). The input must be valid
// JSON: Fields checks it.
func Fields(data []byte, dst []Field) ([]Field, error) {
	if !json.Valid(data) {
		return dst, ErrMalformed
	}
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' {
		return dst, ErrMalformed
	}
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == '}' {
		return dst, nil
	}
	for i < len(data) {
		// key
		ks := i
		ke := skipString(data, i)
		key, err := stringValue(data[ks:ke])
		if err != nil {
			return dst, ErrMalformed
		}
		i = skipWS(data, ke)
		i = skipWS(data, i+1) // ':'
		vs := i
		ve := skipValue(data, i)
		dst = append(dst, Field{Key: key, Raw: data[vs:ve:ve]})
		i = skipWS(data, ve)
		if i < len(data) && data[i] == ',' {
			i = skipWS(data, i+1)
			continue
		}
		break
	}
	return dst, nil
}

// The skip helpers run only on input json.Valid accepted, so they need not
// report syntax errors.

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	i++
	for i < len(b) {
		switch b[i] {
		case '\\':
			i += 2
		case '"':
			return i + 1
		default:
			i++
		}
	}
	return i
}

func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // number, true, false, null
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// stringValue decodes a JSON string literal, quickly when it has no escapes.
func stringValue(lit []byte) (string, error) {
	if len(lit) < 2 || lit[0] != '"' {
		return "", ErrMalformed
	}
	inner := lit[1 : len(lit)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), nil
	}
	var s string
	err := json.Unmarshal(lit, &s)
	return s, err
}

// Cookie is the "cookie" object express-session stores with a session.
type Cookie struct {
	// OriginalMaxAge is the cookie's max age in milliseconds, or -1 for
	// none (JSON null: a browser-session cookie).
	OriginalMaxAge int64
	// Expires is when the cookie expires; zero for a browser-session cookie.
	Expires     time.Time
	Secure      bool
	HTTPOnly    bool
	Domain      string
	Path        string
	SameSite    string // "lax", "strict", "none" or ""
	Partitioned bool
	Priority    string
}

// cookieJSON mirrors express-session's Cookie.data for decoding.
type cookieJSON struct {
	OriginalMaxAge *float64 `json:"originalMaxAge"`
	Expires        *string  `json:"expires"`
	Secure         *bool    `json:"secure"`
	HTTPOnly       *bool    `json:"httpOnly"`
	Domain         string   `json:"domain"`
	Path           string   `json:"path"`
	SameSite       any      `json:"sameSite"`
	Partitioned    bool     `json:"partitioned"`
	Priority       string   `json:"priority"`
}

// DecodeCookie reads express-session's cookie object. raw must be valid
// JSON (a Field's Raw).
func DecodeCookie(raw []byte) (Cookie, error) {
	c, expires, ok := fastCookie(raw)
	if !ok {
		return decodeCookieSlow(raw)
	}
	if expires != "" {
		t, err := time.Parse(time.RFC3339Nano, expires)
		if err != nil {
			return Cookie{}, fmt.Errorf("%w: cookie.expires: %v", ErrMalformed, err)
		}
		c.Expires = t
	}
	return c, nil
}

// decodeCookieSlow is DecodeCookie through encoding/json, for any shape.
func decodeCookieSlow(raw []byte) (Cookie, error) {
	var cj cookieJSON
	if err := json.Unmarshal(raw, &cj); err != nil {
		return Cookie{}, fmt.Errorf("%w: cookie: %v", ErrMalformed, err)
	}
	c := Cookie{OriginalMaxAge: -1, HTTPOnly: true, Path: cj.Path, Domain: cj.Domain, Partitioned: cj.Partitioned, Priority: cj.Priority}
	if cj.OriginalMaxAge != nil && *cj.OriginalMaxAge >= 0 {
		c.OriginalMaxAge = int64(*cj.OriginalMaxAge)
	}
	if cj.Expires != nil && *cj.Expires != "" {
		t, err := time.Parse(time.RFC3339Nano, *cj.Expires)
		if err != nil {
			return Cookie{}, fmt.Errorf("%w: cookie.expires: %v", ErrMalformed, err)
		}
		c.Expires = t
	}
	if cj.Secure != nil {
		c.Secure = *cj.Secure
	}
	if cj.HTTPOnly != nil {
		c.HTTPOnly = *cj.HTTPOnly
	}
	switch v := cj.SameSite.(type) {
	case string:
		c.SameSite = v
	case bool:
		if v {
			c.SameSite = "strict"
		}
	}
	return c, nil
}

// AppendCookie appends the cookie object in express-session's key order.
func AppendCookie(b []byte, c Cookie) []byte {
	b = append(b, `{"originalMaxAge":`...)
	if c.OriginalMaxAge >= 0 {
		b = strconv.AppendInt(b, c.OriginalMaxAge, 10)
	} else {
		b = append(b, "null"...)
	}
	if c.Partitioned {
		b = append(b, `,"partitioned":true`...)
	}
	if c.Priority != "" {
		b = append(b, `,"priority":`...)
		b = appendJSONString(b, c.Priority)
	}
	b = append(b, `,"expires":`...)
	if c.Expires.IsZero() {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = AppendISO(b, c.Expires)
		b = append(b, '"')
	}
	if c.Secure {
		b = append(b, `,"secure":true`...)
	}
	if c.HTTPOnly {
		b = append(b, `,"httpOnly":true`...)
	} else {
		b = append(b, `,"httpOnly":false`...)
	}
	if c.Domain != "" {
		b = append(b, `,"domain":`...)
		b = appendJSONString(b, c.Domain)
	}
	b = append(b, `,"path":`...)
	b = appendJSONString(b, c.Path)
	if c.SameSite != "" {
		b = append(b, `,"sameSite":`...)
		b = appendJSONString(b, c.SameSite)
	}
	return append(b, '}')
}

// AppendISO appends t the way JavaScript's Date.prototype.toISOString
// writes it: UTC, millisecond precision, "Z".
func AppendISO(b []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
}

// Meta is galleta's bookkeeping, stored under "__galleta" so that a Node
// service sharing the store keeps it (express-session preserves unknown
// top-level keys) and ignores it.
type Meta struct {
	Created  time.Time // when the session was first created
	Deadline time.Time // absolute expiry; zero: created + the Manager's AbsoluteTimeout
}

// DecodeMeta reads the "__galleta" object. raw must be valid JSON (a
// Field's Raw).
func DecodeMeta(raw []byte) (Meta, error) {
	created, deadline, ok := fastMeta(raw)
	if !ok {
		var err error
		if created, deadline, err = decodeMetaSlow(raw); err != nil {
			return Meta{}, err
		}
	}
	var m Meta
	if created > 0 {
		m.Created = time.UnixMilli(created)
	}
	if deadline > 0 {
		m.Deadline = time.UnixMilli(deadline)
	}
	return m, nil
}

// decodeMetaSlow reads the "__galleta" object through encoding/json.
func decodeMetaSlow(raw []byte) (created, deadline int64, err error) {
	var mj struct {
		Created  int64 `json:"created"`
		Deadline int64 `json:"deadline"`
	}
	if err := json.Unmarshal(raw, &mj); err != nil {
		return 0, 0, fmt.Errorf("%w: %s: %v", ErrMalformed, KeyMeta, err)
	}
	return mj.Created, mj.Deadline, nil
}

// AppendMeta appends the "__galleta" object.
func AppendMeta(b []byte, m Meta) []byte {
	b = append(b, `{"created":`...)
	b = strconv.AppendInt(b, m.Created.UnixMilli(), 10)
	if !m.Deadline.IsZero() {
		b = append(b, `,"deadline":`...)
		b = strconv.AppendInt(b, m.Deadline.UnixMilli(), 10)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	simple := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x80 || c == '<' || c == '>' || c == '&' {
			simple = false
			break
		}
	}
	if simple {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	enc, _ := json.Marshal(s) // a string always encodes
	return append(b, enc...)
}

// AppendKey appends a JSON object key followed by ':'.
func AppendKey(b []byte, k string) []byte {
	b = appendJSONString(b, k)
	return append(b, ':')
}
