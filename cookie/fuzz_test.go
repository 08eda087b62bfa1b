package cookie_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/galleta-go/galleta/cookie"
)

func FuzzUnsign(f *testing.F) {
	f.Add(cookie.Sign("abc", "secret"), "secret")
	f.Add(cookie.Sign("a.b.c", "k1"), "k1")
	f.Add("abc.", "secret")
	f.Add("", "")
	f.Add("no-dot", "k")
	f.Add(cookie.Sign("abc", "secret")+"x", "secret")
	f.Fuzz(func(t *testing.T, in, secret string) {
		v, ok := cookie.Unsign(in, secret)
		if !ok {
			if v != "" {
				t.Fatalf("rejected but returned %q", v)
			}
			return
		}
		if got := cookie.Sign(v, secret); got != in {
			t.Fatalf("Unsign(%q, %q) accepted %q but Sign gives %q", in, secret, v, got)
		}
		if secret == "" || len(in) > cookie.MaxSignedLen {
			t.Fatalf("accepted with secret %q, len %d", secret, len(in))
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add(`a="q"; b = x ; c; d=%ZZ; a=2`, "a")
	f.Add("sid=forged; sid=real", "sid")
	f.Add("e=%E2%82%AC; f=%C3; g=\"; =k", "")
	f.Add("s=s%3A"+cookie.EncodeValue(cookie.Sign("v", "k")), "s")
	f.Add(`j=j:{"a":1}; k=j:0`, "j")
	f.Add("\xff=\x00;\t=\"\"", "\xff")
	f.Fuzz(func(t *testing.T, header, name string) {
		j := cookie.Parse(header)
		signed := cookie.Parse(header, "k")
		if j.Len() > cookie.MaxCookies || j.Len() != signed.Len() {
			t.Fatalf("Len %d / %d", j.Len(), signed.Len())
		}
		check := func(c cookie.Cookie) {
			want := c.Value
			if c.Kind == cookie.KindJSON {
				want = "j:" + c.Value
			}
			v, ok := cookie.Get(header, c.Name)
			if !ok || v != want {
				t.Fatalf("Get(%q) = %q, %v; Parse has %+v", c.Name, v, ok, c)
			}
			if len(c.Name)+len(c.Raw) > cookie.MaxCookieSize {
				t.Fatalf("oversized cookie kept: %d bytes", len(c.Name)+len(c.Raw))
			}
		}
		seen := map[string]bool{}
		for _, c := range j.All() {
			if seen[c.Name] {
				t.Fatalf("duplicate name %q in jar", c.Name)
			}
			seen[c.Name] = true
			check(c)
		}
		c, ok := j.Lookup(name)
		if v, gok := cookie.Get(header, name); gok != ok {
			t.Fatalf("Get(%q) = %q, %v but Lookup found=%v", name, v, gok, ok)
		} else if ok {
			check(c)
		}
		// Nothing unsigned is ever reported as verified.
		for _, c := range signed.All() {
			if c.Kind != cookie.KindSigned {
				continue
			}
			if !c.Valid {
				if c.Value != "" {
					t.Fatalf("invalid signed cookie with value %q", c.Value)
				}
				continue
			}
			inner := c.Value
			if c.SignedJSON {
				inner = "j:" + inner
			}
			plain, _ := j.Lookup(c.Name)
			if plain.Value != "s:"+cookie.Sign(inner, "k") {
				t.Fatalf("cookie %q verified but %q is not s:+Sign(%q)", c.Name, plain.Value, inner)
			}
		}
		// Decoded values are valid UTF-8 whenever decoding happened.
		for _, c := range j.All() {
			if c.Value != c.Raw && c.Kind == cookie.KindPlain && strings.Contains(c.Raw, "%") && !utf8.ValidString(c.Value) && utf8.ValidString(c.Raw) {
				t.Fatalf("decoding produced invalid UTF-8: %q -> %q", c.Raw, c.Value)
			}
		}
	})
}
