// Package cookie reads and writes cookies in the formats Express uses, so
// a Go service can share cookies with Node applications built on
// express-session, cookie-parser and res.cookie.
//
// Three groups of functions, each documented where it is defined:
//
//   - Signing, as cookie-signature does it: Sign and Unsign (HMAC-SHA256,
//     several secrets for key rotation, constant-time comparison).
//   - Reading a Cookie header by cookie 0.7.2's and cookie-parser's rules:
//     Get finds one cookie without allocating; Parse and ParseRequest
//     return a Parsed, which tells plain, signed ("s:") and JSON ("j:")
//     values apart and verifies signatures.
//   - Writing Set-Cookie headers with cookie 0.7.2's attribute order and
//     Express's maxAge rule: Serialize, SerializeSigned and SerializeJSON
//     return the header value; Set, SetSigned, SetJSON and Clear add it to
//     an http.Header.
//
// Unlike net/http's Cookie.String, which drops invalid bytes with only a
// log line, every writer returns an error for a cookie a browser would not
// keep as written (see the Err variables), and then writes nothing.
//
//	Sign("abc", "secret") == "abc.mUba1OAOkT/Ivo5dP34RCkqegy+D+wnDRShdeGONig4"
package cookie
