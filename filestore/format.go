package filestore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/galleta-go/galleta/internal/record"
)

// A file galleta writes starts with __lastAccess so that a touch can patch
// the 13 digits in place, and Node's session-file-store (which reads the
// key wherever it is, and keeps key order when it rewrites) reads it:
//
//	{"__lastAccess":1795648796836,"cookie":{...},...}
const (
	lastAccessPrefix = `{"__lastAccess":`
	lastAccessDigits = 13 // unix milliseconds from 2001 to 2286
)

// errCorrupt marks a file that is not a session: empty, truncated, not a
// JSON object, the wrong shape, or not decryptable with any key.
var errCorrupt = errors.New("not a valid session file")

// encodeFile builds the file content for data, whose Node expiry
// (__lastAccess + window) is expires.
func encodeFile(data []byte, expires time.Time, ttl time.Duration) ([]byte, error) {
	data, err := withoutLastAccess(data)
	if err != nil {
		return nil, err
	}
	window, err := nodeWindow(data, ttl)
	if err != nil {
		return nil, err
	}
	last := expires.Add(-window).UnixMilli()
	out := make([]byte, 0, len(lastAccessPrefix)+lastAccessDigits+len(data)+1)
	out = append(out, lastAccessPrefix...)
	out = strconv.AppendInt(out, last, 10)
	rest := bytes.TrimLeft(data[1:], " \t\r\n")
	if len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, rest...), nil
}

// withoutLastAccess checks that data is a JSON object and drops a
// "__lastAccess" key it carries (a record read from a Node-written file),
// so the file never holds two.
func withoutLastAccess(data []byte) ([]byte, error) {
	d := bytes.TrimLeft(data, " \t\r\n")
	if len(d) < 2 || d[0] != '{' {
		return nil, fmt.Errorf("record data is not a JSON object")
	}
	if !bytes.Contains(d, []byte(`"__lastAccess"`)) {
		return d, nil
	}
	fields, err := record.Fields(d, nil)
	if err != nil {
		return nil, fmt.Errorf("record data: %w", err)
	}
	out := []byte{'{'}
	for _, f := range fields {
		if f.Key == record.KeyLastAcc {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = record.AppendKey(out, f.Key)
		out = append(out, f.Raw...)
	}
	return append(out, '}'), nil
}

// nodeWindow is what session-file-store adds to __lastAccess to decide
// expiry: cookie.originalMaxAge when it is a positive number, else ttl.
func nodeWindow(data []byte, ttl time.Duration) (time.Duration, error) {
	// Fast path: the layout galleta's Manager writes.
	const p = `{"cookie":{"originalMaxAge":`
	if bytes.HasPrefix(data, []byte(p)) {
		rest := data[len(p):]
		if bytes.HasPrefix(rest, []byte("null")) {
			return ttl, nil
		}
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i > 0 && i < len(rest) && (rest[i] == ',' || rest[i] == '}') {
			if ms, err := strconv.ParseInt(string(rest[:i]), 10, 64); err == nil {
				if ms > 0 {
					return time.Duration(ms) * time.Millisecond, nil
				}
				return ttl, nil
			}
		}
	}
	fields, err := record.Fields(data, nil)
	if err != nil {
		return 0, errCorrupt
	}
	for _, f := range fields {
		if f.Key != record.KeyCookie {
			continue
		}
		var c struct {
			OriginalMaxAge *float64 `json:"originalMaxAge"`
		}
		if json.Unmarshal(f.Raw, &c) != nil {
			return 0, errCorrupt
		}
		if c.OriginalMaxAge != nil && *c.OriginalMaxAge > 0 {
			return time.Duration(*c.OriginalMaxAge * float64(time.Millisecond)), nil
		}
	}
	return ttl, nil
}

// decoded is a file's session.
type decoded struct {
	data       []byte    // the record Data: the JSON object without a leading __lastAccess
	lastAccess time.Time // zero when absent
	patchable  bool      // __lastAccess leads the file with 13 digits: touch can patch it
}

// decodeFile reads a plain (unencrypted) file. It checks that the file is a
// JSON object of the session shape and splits off a leading __lastAccess.
// buf is modified (the returned data aliases it).
func decodeFile(buf []byte) (decoded, error) {
	var d decoded
	if bytes.HasPrefix(buf, []byte(lastAccessPrefix)) {
		digits := buf[len(lastAccessPrefix):]
		i := 0
		for i < len(digits) && digits[i] >= '0' && digits[i] <= '9' {
			i++
		}
		if i > 0 && i < len(digits) && (digits[i] == ',' || digits[i] == '}') {
			if ms, err := strconv.ParseInt(string(digits[:i]), 10, 64); err == nil {
				d.lastAccess = time.UnixMilli(ms)
				d.patchable = i == lastAccessDigits
				start := len(lastAccessPrefix) + i // index of ',' or '}'
				if digits[i] == ',' {
					buf[start] = '{'
					d.data = buf[start:]
				} else {
					d.data = []byte("{}")
				}
			}
		}
	}
	if d.data == nil {
		d.data = buf
	}
	var fb [16]record.Field
	fields, err := record.Fields(d.data, fb[:0])
	if err != nil {
		return decoded{}, errCorrupt
	}
	for _, f := range fields {
		switch f.Key {
		case record.KeyCookie:
			if len(f.Raw) == 0 || f.Raw[0] != '{' {
				return decoded{}, errCorrupt
			}
		case record.KeyLastAcc:
			ms, err := strconv.ParseFloat(string(f.Raw), 64)
			if err != nil {
				return decoded{}, errCorrupt
			}
			d.lastAccess = time.UnixMilli(int64(ms))
		}
	}
	return d, nil
}

// Encryption at rest: AES-256-GCM. File layout:
//
//	"GLTAES1" | key id (4 bytes: SHA-256 of the key) | nonce (12) | sealed data
//
// The session id is the additional data, so a file copied under another
// id's name does not decrypt.
var encMagic = []byte("GLTAES1")

type cipherKey struct {
	id   [4]byte
	aead cipher.AEAD
}

func newCipherKeys(keys [][]byte) ([]cipherKey, error) {
	out := make([]cipherKey, 0, len(keys))
	for i, k := range keys {
		if len(k) != 32 {
			return nil, fmt.Errorf("filestore: Options.EncryptionKeys[%d] is %d bytes; AES-256 needs exactly 32 random bytes", i, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(k)
		var ck cipherKey
		copy(ck.id[:], sum[:4])
		ck.aead = aead
		out = append(out, ck)
	}
	return out, nil
}

func seal(k cipherKey, id string, data []byte) []byte {
	out := make([]byte, 0, len(encMagic)+4+12+len(data)+k.aead.Overhead())
	out = append(out, encMagic...)
	out = append(out, k.id[:]...)
	var nonce [12]byte
	rand.Read(nonce[:])
	out = append(out, nonce[:]...)
	return k.aead.Seal(out, nonce[:], data, []byte(id))
}

func open(keys []cipherKey, id string, buf []byte) ([]byte, error) {
	h := len(encMagic) + 4 + 12
	if len(buf) < h || !bytes.HasPrefix(buf, encMagic) {
		return nil, errCorrupt
	}
	kid := buf[len(encMagic) : len(encMagic)+4]
	nonce := buf[len(encMagic)+4 : h]
	for _, k := range keys {
		if !bytes.Equal(k.id[:], kid) {
			continue
		}
		plain, err := k.aead.Open(nil, nonce, buf[h:], []byte(id))
		if err != nil {
			return nil, errCorrupt
		}
		return plain, nil
	}
	return nil, errCorrupt
}
