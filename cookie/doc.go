// Package cookie reads and writes cookies in the formats Express uses, so
// a Go service can share cookies with Node applications built on
// express-session, cookie-parser and res.cookie.
//
// # Signed values (cookie-signature)
//
// Sign(value, secret) is value + "." + the HMAC-SHA256 of value keyed with
// secret, in standard base64 with the "=" padding removed (43
// characters; "+" and "/" do occur). Express stores it in a cookie as
// "s:" + Sign(value, secret), percent-encoded like encodeURIComponent:
//
//	Sign("abc", "secret") == "abc.mUba1OAOkT/Ivo5dP34RCkqegy+D+wnDRShdeGONig4"
//
// Unsign takes the value before the LAST dot, recomputes the signature
// for each secret and compares in constant time. Passing several secrets
// allows key rotation: sign with the newest, verify with [newest, older...].
//
// # Reading the Cookie header (cookie 0.7.2 parse + cookie-parser)
//
// The header is split on ';' and each piece at its first '='; pieces
// without '=' are skipped; spaces and tabs are trimmed; one pair of
// surrounding double quotes is removed; the value is percent-decoded
// (decodeURIComponent) only when it contains '%', keeping the raw text if
// decoding fails. The FIRST occurrence of a name wins and later ones are
// ignored: this is Express's rule, and browsers send the cookie with the
// most specific Path first.
//
// cookie-parser then interprets the values: with secrets, a value starting
// with "s:" is a signed cookie (Kind Signed, Valid only if a secret
// verifies it; an invalid one yields Value ""); without secrets such a
// value stays Plain. A value "j:"+JSON is a JSON cookie when the JSON
// parses and is truthy in JavaScript (not null, false, 0 or ""); otherwise
// it stays Plain. A verified signed value that is itself "j:"+JSON is
// decoded too (SignedJSON).
//
// Limits: at most MaxCookies (3000) name=value pairs of a header are
// examined, and a cookie whose name+value exceeds MaxCookieSize (4096)
// bytes is skipped as if absent. Parsing is linear in the header length
// and never panics on arbitrary bytes. Get finds one cookie without
// building a Jar and without allocating when no decoding is needed.
//
// # Writing cookies (cookie 0.7.2 serialize + Express res.cookie)
//
// Serialize builds a Set-Cookie value with the attributes in cookie
// 0.7.2's order:
//
//	name=value; Max-Age=N; Domain=D; Path=P; Expires=T; HttpOnly; Secure; Partitioned; SameSite=S
//
// Path defaults to "/", a positive MaxAge sets both Max-Age (whole
// seconds, floored) and Expires, as Express does. Unlike net/http's
// Cookie.String, nothing is ever silently dropped: an invalid name,
// value, domain, path or SameSite, a cookie over MaxCookieSize, a
// __Host-/__Secure- prefix whose rules are not met or Partitioned without
// Secure is an error (see ErrInvalidName and the other Err variables),
// and Set/SetSigned/SetJSON/Clear then add no header.
package cookie
