package main

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Text that anyone can store (a user name written by a Node app, a request
// path, a cookie) must not reach a terminal or a page as is: an escape
// sequence can rewrite the admin's terminal, and a bidi override or an
// invisible character makes one name look like another. What reaches a
// terminal, a page or a log is passed through visible (or escapeJSON for
// JSON), and checkUser refuses these characters in new user names.

// invisible reports whether r must be shown escaped: C0 controls, DEL, C1
// controls (U+0080-U+009F), format characters (Unicode Cf: bidi marks,
// embeddings, overrides and isolates, U+061C, zero-width characters, tag
// characters, the BOM, soft hyphen) and the line and paragraph separators.
func invisible(r rune) bool {
	if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
		return true
	}
	return r > 0x9f && unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

// visible returns s with every invisible rune written as a visible escape
// (\t, \n, \r, \x1b for C0 and DEL, \u202e, \U000e0041 above U+FFFF) and
// every byte that is not UTF-8 as \xNN. Other text is unchanged.
func visible(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case invisible(r) && r > 0xffff:
			fmt.Fprintf(&b, `\U%08x`, r)
		case invisible(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || invisible(r) {
			return true
		}
		i += size
	}
	return false
}

// escapeJSON rewrites JSON text so that the invisible runes inside its
// strings become \uXXXX escapes (a surrogate pair above U+FFFF) and bytes
// that are not UTF-8 become \ufffd. The JSON decodes to the same values.
// Space, tab, newline and carriage return are kept: in valid JSON they
// only occur between tokens, where they are layout.
func escapeJSON(js []byte) []byte {
	if !needsEscape(string(js)) {
		return js
	}
	out := make([]byte, 0, len(js)+16)
	for i := 0; i < len(js); {
		r, size := utf8.DecodeRune(js[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out = append(out, `\ufffd`...)
		case r == '\t' || r == '\n' || r == '\r':
			out = append(out, byte(r))
		case invisible(r) && r > 0xffff:
			hi, lo := utf16.EncodeRune(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, hi, lo)
		case invisible(r):
			out = fmt.Appendf(out, `\u%04x`, r)
		default:
			out = append(out, js[i:i+size]...)
		}
		i += size
	}
	return out
}
