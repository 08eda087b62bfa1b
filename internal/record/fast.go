package record

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// Fast paths for the two small objects every load decodes. A profile of a
// request on the Redis store showed encoding/json's reflection-driven
// Unmarshal of "cookie" and "__galleta" at about 5% of the request's CPU.
// These read the shapes galleta and express-session write (exact key
// names, the expected JSON types) without reflection or a second
// validation pass; anything else (an unknown or escaped key, a value of
// another type) goes to encoding/json, so the result is always what
// json.Unmarshal into the mirror structs gives (FuzzFastDecode checks it).
// The input must be valid JSON: a Field's Raw from Fields.

// eachRawField calls fn with the raw key text (between the quotes) and raw
// value of each field of the object obj, in order. It reports false, having
// stopped, when obj is not an object, a key holds an escape, or fn returns
// false.
func eachRawField(obj []byte, fn func(key, raw []byte) bool) bool {
	i := skipWS(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return false
	}
	i = skipWS(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return true
	}
	for i < len(obj) {
		ke := skipString(obj, i)
		if ke-i < 2 {
			return false
		}
		key := obj[i+1 : ke-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			return false
		}
		i = skipWS(obj, ke)
		i = skipWS(obj, i+1) // ':'
		vs := i
		ve := skipValue(obj, i)
		if !fn(key, obj[vs:ve]) {
			return false
		}
		i = skipWS(obj, ve)
		if i < len(obj) && obj[i] == ',' {
			i = skipWS(obj, i+1)
			continue
		}
		break
	}
	return true
}

// plainString returns the text of a JSON string literal without escapes
// (those go to the slow path).
func plainString(lit []byte) (string, bool) {
	if len(lit) < 2 || lit[0] != '"' {
		return "", false
	}
	inner := lit[1 : len(lit)-1]
	switch string(inner) { // the usual values, without an allocation
	case "/":
		return "/", true
	case "lax":
		return "lax", true
	case "strict":
		return "strict", true
	case "none":
		return "none", true
	}
	if bytes.IndexByte(inner, '\\') >= 0 || !utf8.Valid(inner) {
		return "", false
	}
	return string(inner), true
}

func isNull(raw []byte) bool { return string(raw) == "null" }

// fastCookie decodes a cookie object the way DecodeCookie's slow path
// does, except for parsing expires (returned as text); ok is false when the
// slow path must decide.
func fastCookie(raw []byte) (c Cookie, expires string, ok bool) {
	c = Cookie{OriginalMaxAge: -1, HTTPOnly: true}
	ok = eachRawField(raw, func(key, v []byte) bool {
		null := isNull(v)
		switch string(key) {
		case "originalMaxAge":
			c.OriginalMaxAge = -1
			if null {
				return true
			}
			if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
				return false
			}
			f, err := strconv.ParseFloat(string(v), 64)
			if err != nil {
				return false
			}
			if f >= 0 {
				c.OriginalMaxAge = int64(f)
			}
		case "expires":
			expires = ""
			if null {
				return true
			}
			s, isStr := plainString(v)
			if !isStr {
				return false
			}
			expires = s
		case "secure", "httpOnly", "partitioned":
			var b, def bool
			switch string(v) {
			case "true":
				b = true
			case "false":
			case "null":
				if string(key) == "partitioned" {
					return true // a null into a bool leaves it as it was
				}
				def = true
			default:
				return false
			}
			switch string(key) {
			case "secure":
				c.Secure = b // null: the default, false
			case "httpOnly":
				c.HTTPOnly = b || def // null: the default, true
			default:
				c.Partitioned = b
			}
		case "domain", "path", "priority":
			if null {
				return true // a null into a string leaves it as it was
			}
			s, isStr := plainString(v)
			if !isStr {
				return false
			}
			switch string(key) {
			case "domain":
				c.Domain = s
			case "path":
				c.Path = s
			default:
				c.Priority = s
			}
		case "sameSite":
			switch string(v) {
			case "null", "false":
				c.SameSite = ""
			case "true":
				c.SameSite = "strict"
			default:
				s, isStr := plainString(v)
				if !isStr {
					return false
				}
				c.SameSite = s
			}
		default:
			return false // unknown: encoding/json matches names case-insensitively
		}
		return true
	})
	return c, expires, ok
}

// fastMeta decodes the "__galleta" object as json.Unmarshal into its
// mirror would; ok is false when the slow path must decide.
func fastMeta(raw []byte) (created, deadline int64, ok bool) {
	ok = eachRawField(raw, func(key, v []byte) bool {
		var p *int64
		switch string(key) {
		case "created":
			p = &created
		case "deadline":
			p = &deadline
		default:
			return false
		}
		if isNull(v) {
			return true
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return false
		}
		*p = n
		return true
	})
	return created, deadline, ok
}
