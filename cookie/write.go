package cookie

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Validation errors returned (wrapped, test with errors.Is) by Serialize
// and the functions built on it. When one is returned nothing is written.
var (
	ErrInvalidName     = errors.New("cookie: invalid name")
	ErrInvalidValue    = errors.New("cookie: invalid value")
	ErrInvalidDomain   = errors.New("cookie: invalid domain")
	ErrInvalidPath     = errors.New("cookie: invalid path")
	ErrTooLarge        = errors.New("cookie: name and value too large")
	ErrPrefix          = errors.New("cookie: prefix rules not met")
	ErrPartitioned     = errors.New("cookie: Partitioned requires Secure")
	ErrInvalidSameSite = errors.New("cookie: invalid SameSite")
	ErrNoSecret        = errors.New("cookie: empty signing secret")
)

// Options are the attributes of a Set-Cookie header, with Express
// res.cookie's meaning.
type Options struct {
	// MaxAge > 0 sets Expires = Now()+MaxAge and Max-Age =
	// floor(MaxAge / 1s) (so below one second gives Max-Age=0, as in
	// Express). MaxAge < 0 deletes the cookie: Max-Age=0 and an Expires
	// in 1970. 0 leaves both unset unless Expires is set. It is not
	// clamped (browsers cap lifetimes at 400 days themselves).
	MaxAge time.Duration
	// Expires is an explicit expiry, ignored when MaxAge != 0 (Express:
	// maxAge wins). The zero time means unset.
	Expires time.Time
	// Path defaults to "/" (Express res.cookie) when empty.
	Path string
	// Domain is omitted when empty.
	Domain   string
	Secure   bool
	HTTPOnly bool
	// SameSite: 0 or http.SameSiteDefaultMode omits the attribute.
	SameSite http.SameSite
	// Partitioned (CHIPS) requires Secure.
	Partitioned bool
	// Now is the clock used for Expires; time.Now when nil.
	Now func() time.Time
}

// deleteExpires is Express clearCookie's new Date(1), as formatted.
var deleteExpires = time.UnixMilli(1).UTC()

// EncodeValue returns s escaped like JavaScript's encodeURIComponent:
// every byte except A-Z a-z 0-9 - _ . ! ~ * ' ( ) is written as %XX
// (upper-case hex). s should be valid UTF-8; Serialize rejects invalid
// UTF-8 instead of encoding it (encodeURIComponent would throw).
func EncodeValue(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(b)
}

func unreserved(c byte) bool { return unreservedSet[c] }

// unreservedSet is encodeURIComponent's set: letters, digits, -_.!~*'().
var unreservedSet = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("-_.!~*'()", byte(c)) >= 0
	}
	return t
}()

// validName: ^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$ (cookie 0.7.2, RFC 7230 token).
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validValue: ^("?)[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*\1$ (cookie-octets).
func validValue(s string) bool {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == ',' || c == ';' || c == '\\' {
			return false
		}
	}
	return true
}

// validPath: ^[\x20-\x3A\x3D-\x7E]*$ (no controls, ';', '<', non-ASCII).
func validPath(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == ';' || c == '<' {
			return false
		}
	}
	return true
}

// domainRE is cookie 0.7.2's domainValueRegExp (case-insensitive).
var domainRE = regexp.MustCompile(`^(?i)([.]?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)([.][a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

// Serialize returns the Set-Cookie header value for name=value with the
// attributes of o, in cookie 0.7.2's order:
//
//	name=value; Max-Age=N; Domain=D; Path=P; Expires=T; HttpOnly; Secure; Partitioned; SameSite=S
//
// The value is encoded with EncodeValue (encodeURIComponent). Nothing is
// ever silently dropped or rewritten; instead an error wrapping one of
// ErrInvalidName, ErrInvalidValue (invalid UTF-8), ErrInvalidDomain,
// ErrInvalidPath, ErrTooLarge (name + encoded value > MaxCookieSize),
// ErrPrefix ("__Host-" needs Secure, Path "/" and no Domain; "__Secure-"
// needs Secure; prefixes are matched case-insensitively, as current
// browsers do), ErrPartitioned or ErrInvalidSameSite is returned.
func Serialize(name, value string, o Options) (string, error) {
	return serialize(name, value, o, false)
}

func serialize(name, value string, o Options, clear bool) (string, error) {
	if !validName(name) {
		return "", fmt.Errorf("cookie %q: name must be a non-empty HTTP token (letters, digits and !#$%%&'*+-.^_`|~; no spaces, '=', ';' or quotes): %w", short(name), ErrInvalidName)
	}
	if !utf8.ValidString(value) {
		return "", fmt.Errorf("cookie %q: value is not valid UTF-8 (encode binary data, e.g. base64, before setting it): %w", short(name), ErrInvalidValue)
	}
	enc := EncodeValue(value)
	if !validValue(enc) {
		return "", fmt.Errorf("cookie %q: encoded value holds bytes outside cookie-octet: %w", short(name), ErrInvalidValue)
	}
	if n := len(name) + len(enc); n > MaxCookieSize {
		return "", fmt.Errorf("cookie %q: name+encoded value is %d bytes, over the %d browsers keep; store less in the cookie: %w", short(name), n, MaxCookieSize, ErrTooLarge)
	}
	if o.Domain != "" && !domainRE.MatchString(o.Domain) {
		return "", fmt.Errorf("cookie %q: domain %q is not a host name (labels of letters, digits and '-', optional leading dot): %w", short(name), short(o.Domain), ErrInvalidDomain)
	}
	path := o.Path
	if path == "" {
		path = "/"
	}
	if !validPath(path) {
		return "", fmt.Errorf("cookie %q: path %q holds a control character, ';', '<' or non-ASCII byte (percent-encode it): %w", short(name), short(path), ErrInvalidPath)
	}
	var sameSite string
	switch o.SameSite {
	case 0, http.SameSiteDefaultMode:
	case http.SameSiteLaxMode:
		sameSite = "Lax"
	case http.SameSiteStrictMode:
		sameSite = "Strict"
	case http.SameSiteNoneMode:
		sameSite = "None"
	default:
		return "", fmt.Errorf("cookie %q: SameSite %d is not one of http.SameSiteLaxMode, StrictMode, NoneMode or DefaultMode: %w", short(name), int(o.SameSite), ErrInvalidSameSite)
	}
	if len(name) >= 7 && strings.EqualFold(name[:7], "__Host-") {
		if !o.Secure || path != "/" || o.Domain != "" {
			return "", fmt.Errorf("cookie %q: a __Host- cookie needs Secure=true, Path \"/\" and no Domain (have Secure=%t, Path %q, Domain %q): %w", short(name), o.Secure, short(path), short(o.Domain), ErrPrefix)
		}
	} else if len(name) >= 9 && strings.EqualFold(name[:9], "__Secure-") && !o.Secure {
		return "", fmt.Errorf("cookie %q: a __Secure- cookie needs Secure=true: %w", short(name), ErrPrefix)
	}
	if o.Partitioned && !o.Secure {
		return "", fmt.Errorf("cookie %q: Partitioned needs Secure=true: %w", short(name), ErrPartitioned)
	}

	var maxAge string
	var expires time.Time
	switch {
	case clear || o.MaxAge < 0:
		maxAge, expires = "0", deleteExpires
	case o.MaxAge > 0:
		now := time.Now
		if o.Now != nil {
			now = o.Now
		}
		maxAge = strconv.FormatInt(int64(o.MaxAge/time.Second), 10)
		expires = now().Add(o.MaxAge)
	default:
		expires = o.Expires
	}

	var b strings.Builder
	b.Grow(len(name) + 1 + len(enc) + 128 + len(path) + len(o.Domain))
	b.WriteString(name)
	b.WriteByte('=')
	b.WriteString(enc)
	if maxAge != "" {
		b.WriteString("; Max-Age=")
		b.WriteString(maxAge)
	}
	if o.Domain != "" {
		b.WriteString("; Domain=")
		b.WriteString(o.Domain)
	}
	b.WriteString("; Path=")
	b.WriteString(path)
	if !expires.IsZero() {
		b.WriteString("; Expires=")
		b.WriteString(expires.UTC().Format(http.TimeFormat))
	}
	if o.HTTPOnly {
		b.WriteString("; HttpOnly")
	}
	if o.Secure {
		b.WriteString("; Secure")
	}
	if o.Partitioned {
		b.WriteString("; Partitioned")
	}
	if sameSite != "" {
		b.WriteString("; SameSite=")
		b.WriteString(sameSite)
	}
	return b.String(), nil
}

// SerializeSigned serializes "s:" + Sign(value, secret), the format of
// Express res.cookie(name, value, {signed: true}) and express-session.
// An empty secret is an error (ErrNoSecret), as in Express.
func SerializeSigned(name, value, secret string, o Options) (string, error) {
	if secret == "" {
		return "", fmt.Errorf("cookie %q: signing needs a non-empty secret: %w", short(name), ErrNoSecret)
	}
	return Serialize(name, "s:"+Sign(value, secret), o)
}

// SerializeJSON serializes "j:" + the JSON encoding of v, the format of
// Express res.cookie(name, object). A json.Marshal error is returned.
func SerializeJSON(name string, v any, o Options) (string, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("cookie %q: encoding JSON: %w", short(name), err)
	}
	return Serialize(name, "j:"+string(js), o)
}

// Set serializes the cookie and adds it to h as a Set-Cookie header
// (pass w.Header() before the response is written). On error nothing is
// added.
func Set(h http.Header, name, value string, o Options) error {
	return add(h)(Serialize(name, value, o))
}

// SetSigned is SerializeSigned followed by adding the header.
func SetSigned(h http.Header, name, value, secret string, o Options) error {
	return add(h)(SerializeSigned(name, value, secret, o))
}

// SetJSON is SerializeJSON followed by adding the header.
func SetJSON(h http.Header, name string, v any, o Options) error {
	return add(h)(SerializeJSON(name, v, o))
}

// Clear adds a Set-Cookie header to h that tells the browser to delete the
// cookie, like Express res.clearCookie: an empty value and
// Expires=Thu, 01 Jan 1970 00:00:00 GMT. We also send Max-Age=0 (Express
// does not), which browsers obey first. o.MaxAge and o.Expires are
// ignored; pass the same Path, Domain, Secure, SameSite and Partitioned the
// cookie was set with, or the browser will not match (and so not delete)
// it.
func Clear(h http.Header, name string, o Options) error {
	return add(h)(serialize(name, "", o, true))
}

func add(h http.Header) func(string, error) error {
	return func(v string, err error) error {
		if err != nil {
			return err
		}
		h.Add("Set-Cookie", v)
		return nil
	}
}
