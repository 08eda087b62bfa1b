package cookie

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// sigLen is the length of a cookie-signature MAC: 32 bytes of HMAC-SHA256
// in unpadded standard base64.
const sigLen = 43

// MaxSignedLen is the longest input Unsign examines. Longer inputs are
// rejected before any HMAC work. It equals MaxCookieSize: no browser sends
// a longer cookie.
const MaxSignedLen = 4096

// Sign returns value + "." + the unpadded standard-base64 HMAC-SHA256 of
// value keyed with secret, byte-for-byte what Node's cookie-signature
// sign(value, secret) returns. Express stores a signed cookie as
// "s:" + Sign(value, secret) (see SerializeSigned).
func Sign(value, secret string) string {
	var sig [sigLen]byte
	macB64(&sig, value, secret)
	var b strings.Builder
	b.Grow(len(value) + 1 + sigLen)
	b.WriteString(value)
	b.WriteByte('.')
	b.Write(sig[:])
	return b.String()
}

// Unsign verifies a string produced by Sign and returns the value before
// its LAST dot (so values may contain dots). It succeeds when the
// signature was made with any of secrets, so keys can be rotated: sign
// with the new key, verify with [new, old].
//
// It returns "", false when there are no secrets, when the input has no
// dot, when the signature is not exactly the 43-character MAC (empty,
// truncated, trailing bytes, other alphabet), when no secret matches, or
// when the input is longer than MaxSignedLen (checked before any HMAC
// work). Empty secrets are skipped: anybody can compute a MAC with an
// empty key (Express itself refuses to sign with one).
//
// The comparison is constant-time (hmac.Equal). It compares the
// recomputed signature with the input's signature part; the value part
// of the recomputed string is the input's own value part, so this equals
// comparing the full recomputed string, as cookie-signature does.
func Unsign(signed string, secrets ...string) (string, bool) {
	if len(signed) > MaxSignedLen || len(secrets) == 0 {
		return "", false
	}
	dot := strings.LastIndexByte(signed, '.')
	if dot < 0 || len(signed)-dot-1 != sigLen {
		return "", false
	}
	value := signed[:dot]
	var got, want [sigLen]byte
	copy(got[:], signed[dot+1:])
	ok := false
	for _, s := range secrets {
		if s == "" {
			continue
		}
		macB64(&want, value, s)
		// Check every secret (no early exit) so the time taken does not
		// reveal which key matched.
		if hmac.Equal(got[:], want[:]) {
			ok = true
		}
	}
	if !ok {
		return "", false
	}
	return value, true
}

// macB64 writes base64std-nopad(HMAC-SHA256(secret, value)) into out.
// For inputs up to MaxSignedLen it works on stack buffers with
// sha256.Sum256 and does not allocate; it is the textbook HMAC
// construction (RFC 2104) and is checked against crypto/hmac in tests.
func macB64(out *[sigLen]byte, value, secret string) {
	var sum [sha256.Size]byte
	if len(value) > MaxSignedLen {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(value))
		copy(sum[:], m.Sum(nil))
	} else {
		const block = sha256.BlockSize
		var key [block]byte
		if len(secret) > block {
			k := sha256.Sum256([]byte(secret))
			copy(key[:], k[:])
		} else {
			copy(key[:], secret)
		}
		var inner [block + MaxSignedLen]byte
		for i := range key {
			inner[i] = key[i] ^ 0x36
		}
		n := block + copy(inner[block:], value)
		ih := sha256.Sum256(inner[:n])
		var outer [block + sha256.Size]byte
		for i := range key {
			outer[i] = key[i] ^ 0x5c
		}
		copy(outer[block:], ih[:])
		sum = sha256.Sum256(outer[:])
	}
	base64.RawStdEncoding.Encode(out[:], sum[:])
}
