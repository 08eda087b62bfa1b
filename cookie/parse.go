package cookie

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxCookies is the number of name=value pairs of a Cookie header that
// Parse and Get examine. Later pairs are ignored, so a Parsed never holds
// more than MaxCookies cookies. RFC 6265 asks browsers to keep at least
// 3000 cookies in total; net/http applies the same limit
// (GODEBUG httpcookiemaxnum), though it then drops all cookies.
const MaxCookies = 3000

// MaxCookieSize is the largest name+value, in bytes, that Parse and Get
// accept and that Serialize produces (RFC 6265bis: browsers ignore larger
// cookies). In a request header the raw value (after quote removal, before
// percent-decoding) is measured; a larger cookie is skipped as if absent,
// so a later cookie of the same name can be used instead.
const MaxCookieSize = 4096

// ErrNotFound is returned (wrapped) by Parsed.DecodeJSON when there is no
// usable JSON cookie of that name.
var ErrNotFound = errors.New("cookie: not found")

// Kind tells how cookie-parser would interpret a cookie value.
type Kind int

const (
	// KindPlain is an ordinary value.
	KindPlain Kind = iota
	// KindSigned is a value that started with "s:" (after decoding) while
	// secrets were given.
	KindSigned
	// KindJSON is a value that started with "j:" followed by valid JSON
	// that is truthy in JavaScript (not null, false, 0 or ""); otherwise
	// the value stays KindPlain.
	KindJSON
)

// String returns "plain", "signed" or "json".
func (k Kind) String() string {
	switch k {
	case KindPlain:
		return "plain"
	case KindSigned:
		return "signed"
	case KindJSON:
		return "json"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Cookie is one request cookie as Express's cookie-parser sees it.
type Cookie struct {
	Name string
	// Value is the decoded value. For KindSigned it is the verified inner
	// value (without "s:" and signature), "" when the signature does not
	// verify; for KindJSON (and SignedJSON) it is the JSON text after "j:".
	Value string
	// Raw is the value as it appeared in the header, after quote removal
	// and before percent-decoding.
	Raw  string
	Kind Kind
	// Valid is true for KindPlain and KindJSON, and for KindSigned when one of the
	// secrets verified the signature.
	Valid bool
	// SignedJSON is set when a valid signed value is itself a "j:" JSON
	// value (cookie-parser decodes those too); Value then holds the JSON.
	SignedJSON bool
}

// Parsed is the cookies of one request as Parse read them, in header
// order, holding only the first occurrence of each name. The zero Parsed is
// empty. A Parsed is
// read-only and safe for concurrent use.
type Parsed struct {
	list []Cookie
	idx  map[string]int // built once the jar outgrows a linear scan
}

const linearMax = 8

func (j *Parsed) find(name string) int {
	if j.idx != nil {
		if i, ok := j.idx[name]; ok {
			return i
		}
		return -1
	}
	for i := range j.list {
		if j.list[i].Name == name {
			return i
		}
	}
	return -1
}

func (j *Parsed) add(c Cookie) {
	j.list = append(j.list, c)
	if j.idx != nil {
		j.idx[c.Name] = len(j.list) - 1
	} else if len(j.list) > linearMax {
		j.idx = make(map[string]int, 2*len(j.list))
		for i := range j.list {
			j.idx[j.list[i].Name] = i
		}
	}
}

// Parse reads a Cookie header the way Express does (cookie 0.7.2 parse,
// then cookie-parser):
//
//   - the header is split on ';', each piece at its first '='; pieces
//     without '=' are skipped; spaces and tabs around name and value are
//     trimmed; one pair of surrounding double quotes is removed;
//   - the value is percent-decoded with decodeURIComponent semantics only
//     when it contains '%'; a bad escape or a result that is not valid
//     UTF-8 keeps the raw value;
//   - the FIRST occurrence of a name wins. Browsers send the cookie with
//     the longest matching Path first, and this is also Express's choice;
//     later duplicates (which may have been planted by a sibling
//     subdomain) are ignored, never merged;
//   - with secrets, a value starting with "s:" is KindSigned and verified
//     with Unsign against each secret; with no secrets it stays KindPlain
//     (cookie-parser does the same). Empty secrets never verify;
//   - a value "j:"+JSON whose JSON is valid and truthy is KindJSON.
//
// Only the first MaxCookies pairs are examined and pairs whose name+value
// exceed MaxCookieSize bytes are skipped. Parsing is linear in the
// header length and never panics on arbitrary bytes.
func Parse(header string, secrets ...string) Parsed {
	var j Parsed
	signMode := false
	for _, s := range secrets {
		if s != "" {
			signMode = true
			break
		}
	}
	if len(header) >= 2 {
		// Room for the usual handful of cookies in one allocation; a
		// huge header grows the slice as needed.
		j.list = make([]Cookie, 0, min(strings.Count(header, ";")+1, 16))
	}
	p := pairs{h: header}
	for p.next() {
		if j.find(p.key) >= 0 {
			continue
		}
		c := Cookie{Name: p.key, Raw: p.raw, Valid: true}
		c.Value = DecodeValue(p.raw)
		if signMode && strings.HasPrefix(c.Value, "s:") {
			c.Kind = KindSigned
			c.Valid = false
			inner, ok := Unsign(c.Value[2:], secrets...)
			c.Value = ""
			if ok {
				c.Valid = true
				c.Value = inner
				if js, isJSON := jsonText(inner); isJSON {
					c.SignedJSON = true
					c.Value = js
				}
			}
		} else if js, isJSON := jsonText(c.Value); isJSON {
			c.Kind = KindJSON
			c.Value = js
		}
		j.add(c)
	}
	return j
}

// ParseRequest parses all Cookie header lines of r (HTTP/2 and HTTP/3
// clients may send one line per cookie), joined with "; ".
func ParseRequest(r *http.Request, secrets ...string) Parsed {
	lines := r.Header["Cookie"]
	switch len(lines) {
	case 0:
		return Parsed{}
	case 1:
		return Parse(lines[0], secrets...)
	}
	return Parse(strings.Join(lines, "; "), secrets...)
}

// Get returns the decoded value of the first cookie called name, exactly
// as cookie 0.7.2's parse would (no "s:" or "j:" interpretation), with the
// same limits and first-wins rule as Parse. It builds no map and does not
// allocate unless the value has to be percent-decoded.
func Get(header, name string) (value string, ok bool) {
	p := pairs{h: header}
	for p.next() {
		if p.key == name {
			return DecodeValue(p.raw), true
		}
	}
	return "", false
}

// Len returns the number of cookies in the jar.
func (j Parsed) Len() int { return len(j.list) }

// All returns a copy of the cookies, in header order.
func (j Parsed) All() []Cookie {
	out := make([]Cookie, len(j.list))
	copy(out, j.list)
	return out
}

// Lookup returns the cookie called name.
func (j Parsed) Lookup(name string) (Cookie, bool) {
	if i := j.find(name); i >= 0 {
		return j.list[i], true
	}
	return Cookie{}, false
}

// Signed returns the verified inner value of a signed cookie. It reports
// false when the cookie is absent, not signed, or its signature did not
// verify. For a SignedJSON cookie the value is the JSON text.
func (j Parsed) Signed(name string) (string, bool) {
	c, ok := j.Lookup(name)
	if !ok || c.Kind != KindSigned || !c.Valid {
		return "", false
	}
	return c.Value, true
}

// Plain returns the value of a cookie of KindPlain.
func (j Parsed) Plain(name string) (string, bool) {
	c, ok := j.Lookup(name)
	if !ok || c.Kind != KindPlain {
		return "", false
	}
	return c.Value, true
}

// DecodeJSON unmarshals the JSON of a JSON cookie, or of a valid signed
// cookie holding "j:" JSON (SignedJSON), into v. When there is no such
// cookie (absent, another kind, or a signature that does not verify) the
// error wraps ErrNotFound; a json.Unmarshal failure is wrapped as is.
func (j Parsed) DecodeJSON(name string, v any) error {
	c, ok := j.Lookup(name)
	switch {
	case !ok:
		return fmt.Errorf("cookie %q: no such cookie: %w", short(name), ErrNotFound)
	case c.Kind == KindSigned && !c.Valid:
		return fmt.Errorf("cookie %q: signature does not verify with any secret: %w", short(name), ErrNotFound)
	case c.Kind == KindSigned && !c.SignedJSON, c.Kind == KindPlain:
		return fmt.Errorf("cookie %q: value is %s, not a \"j:\" JSON cookie: %w", short(name), c.Kind, ErrNotFound)
	}
	if err := json.Unmarshal([]byte(c.Value), v); err != nil {
		return fmt.Errorf("cookie %q: decoding JSON: %w", short(name), err)
	}
	return nil
}

// pairs walks a Cookie header exactly like cookie 0.7.2's parse loop,
// applying MaxCookies and MaxCookieSize. Each step is amortised O(1) per
// byte, so a whole header is linear.
type pairs struct {
	h     string
	index int
	seen  int
	key   string
	raw   string
}

func (p *pairs) next() bool {
	h := p.h
	if len(h) < 2 { // cookie 0.7.2: too short for "k="
		return false
	}
	for p.index < len(h) && p.seen < MaxCookies {
		start := p.index
		eq := strings.IndexByte(h[start:], '=')
		if eq < 0 {
			p.index = len(h)
			return false
		}
		eq += start
		if strings.IndexByte(h[start:eq], ';') >= 0 {
			// A piece without '=': continue after the last ';' before
			// the '=' (cookie 0.7.2 backtracks the same way).
			p.index = strings.LastIndexByte(h[:eq], ';') + 1
			continue
		}
		end := strings.IndexByte(h[eq:], ';')
		if end < 0 {
			end = len(h)
		} else {
			end += eq
		}
		p.index = end + 1
		p.seen++
		key := trimSP(h[start:eq])
		val := trimSP(h[eq+1 : end])
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
		} else if val == `"` {
			val = "" // cookie 0.7.2 strips the lone quote as both ends
		}
		if len(key)+len(val) > MaxCookieSize {
			continue
		}
		p.key, p.raw = key, val
		return true
	}
	return false
}

// trimSP trims spaces and tabs (only those, like cookie 0.7.2).
func trimSP(s string) string {
	i, j := 0, len(s)
	for i < j && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	for j > i && (s[j-1] == ' ' || s[j-1] == '\t') {
		j--
	}
	return s[i:j]
}

// DecodeValue undoes EncodeValue the way cookie 0.7.2 decodes a value: it
// applies decodeURIComponent when s contains '%'. When that would throw in
// JavaScript (a '%' not followed by two hex digits, or escapes that do not
// form valid UTF-8: stray continuation bytes, truncated sequences,
// overlong forms, surrogates), s is returned as is. Parse and Get already
// decode; this is for a Cookie's Raw text.
func DecodeValue(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	var out strings.Builder // String() does not copy, so runs are checked in place
	out.Grow(len(s))
	run := -1 // start in out of the current run of %XX escapes
	for i := 0; i < len(s); {
		if s[i] == '%' {
			if i+2 >= len(s) {
				return s
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return s
			}
			if run < 0 {
				run = out.Len()
			}
			out.WriteByte(hi<<4 | lo)
			i += 3
			continue
		}
		if run >= 0 {
			if !utf8.ValidString(out.String()[run:]) {
				return s
			}
			run = -1
		}
		out.WriteByte(s[i])
		i++
	}
	if run >= 0 && !utf8.ValidString(out.String()[run:]) {
		return s
	}
	return out.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// jsonText reports whether v is "j:" followed by JSON that cookie-parser's
// JSONCookie would accept: JSON.parse succeeds and the result is truthy
// (not null, false, a zero number or ""). It returns the JSON text.
func jsonText(v string) (string, bool) {
	if !strings.HasPrefix(v, "j:") {
		return "", false
	}
	t := v[2:]
	if !json.Valid([]byte(t)) {
		return "", false
	}
	s := strings.Trim(t, " \t\r\n")
	switch s {
	case "null", "false", `""`:
		return "", false
	}
	if c := s[0]; c == '-' || ('0' <= c && c <= '9') {
		// Any number that JavaScript reads as 0 (0, -0, 0.0e5, 1e-400)
		// is falsy.
		if f, _ := strconv.ParseFloat(s, 64); f == 0 {
			return "", false
		}
	}
	return t, true
}

// short limits how much of a name or value goes into an error message.
func short(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
