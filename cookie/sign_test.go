package cookie

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

func TestSignVectors(t *testing.T) {
	tests := []struct{ value, secret, want string }{
		// DESIGN.md
		{"abc", "secret", "abc.mUba1OAOkT/Ivo5dP34RCkqegy+D+wnDRShdeGONig4"},
		{"NliONGT-j0K42qnn8ZTsQFxAzwiaoKLm", "k1", "NliONGT-j0K42qnn8ZTsQFxAzwiaoKLm.oztZx3yMp++DXqz6H/yUspWCS5r+H8mtYj8xa13aOtI"},
	}
	for _, tt := range tests {
		if got := Sign(tt.value, tt.secret); got != tt.want {
			t.Errorf("Sign(%q, %q) = %q, want %q", tt.value, tt.secret, got, tt.want)
		}
		if v, ok := Unsign(tt.want, tt.secret); !ok || v != tt.value {
			t.Errorf("Unsign(%q) = %q, %v", tt.want, v, ok)
		}
	}
}

// The stack-buffer HMAC must equal crypto/hmac for every key and message
// length, including keys longer than the block and values over the limit.
func TestMacMatchesCryptoHMAC(t *testing.T) {
	for _, vl := range []int{0, 1, 55, 56, 63, 64, 65, 119, 120, 4095, 4096, 4097, 10000} {
		for _, kl := range []int{0, 1, 32, 63, 64, 65, 200} {
			value := strings.Repeat("v", vl)
			secret := strings.Repeat("k", kl)
			m := hmac.New(sha256.New, []byte(secret))
			m.Write([]byte(value))
			want := base64.RawStdEncoding.EncodeToString(m.Sum(nil))
			var got [sigLen]byte
			macB64(&got, value, secret)
			if string(got[:]) != want {
				t.Fatalf("value len %d key len %d: got %s want %s", vl, kl, got, want)
			}
		}
	}
}

func TestUnsignTampering(t *testing.T) {
	const secret = "k1"
	good := Sign("NliONGT-j0K42qnn8ZTsQFxAzwiaoKLm", secret)
	if _, ok := Unsign(good, secret); !ok {
		t.Fatal("control: valid signature rejected")
	}
	// Flip every bit of every byte.
	for i := 0; i < len(good); i++ {
		for bit := 0; bit < 8; bit++ {
			b := []byte(good)
			b[i] ^= 1 << bit
			if v, ok := Unsign(string(b), secret); ok {
				t.Fatalf("flipped byte %d bit %d accepted: %q -> %q", i, bit, b, v)
			}
		}
	}
	dot := strings.LastIndexByte(good, '.')
	cases := map[string]string{
		"truncated by 1":      good[:len(good)-1],
		"truncated to dot":    good[:dot+1],
		"truncated to value":  good[:dot],
		"trailing byte":       good + "A",
		"trailing padding":    good + "=",
		"trailing dot":        good + ".",
		"empty MAC":           good[:dot+1],
		"non-base64 MAC":      good[:dot+1] + strings.Repeat("!", sigLen),
		"base64url MAC":       strings.NewReplacer("+", "-", "/", "_").Replace(good),
		"empty":               "",
		"dot only":            ".",
		"no dot":              strings.ReplaceAll(good, ".", ""),
		"MAC of other value":  "other" + good[dot:],
		"value moved to MAC":  good[dot+1:] + "." + good[:dot],
		"too long but signed": Sign(strings.Repeat("x", MaxSignedLen), secret),
	}
	for name, in := range cases {
		if v, ok := Unsign(in, secret); ok || v != "" {
			t.Errorf("%s: Unsign(%q) = %q, %v; want rejected", name, short(in), v, ok)
		}
	}
}

func TestUnsign(t *testing.T) {
	a, b := "key-A-0123456789abcdef0123456789", "key-B-0123456789abcdef0123456789"
	tests := []struct {
		name    string
		in      string
		secrets []string
		want    string
		ok      bool
	}{
		{"dots in value", Sign("a.b.c", a), []string{a}, "a.b.c", true},
		{"empty value", Sign("", a), []string{a}, "", true},
		{"no secrets", Sign("x", a), nil, "", false},
		{"empty secret list element only", Sign("x", ""), []string{""}, "", false},
		{"empty secret skipped, next verifies", Sign("x", a), []string{"", a}, "x", true},
		{"wrong secret", Sign("x", a), []string{b}, "", false},
		{"rotation: signed B, verify [B A]", Sign("x", b), []string{b, a}, "x", true},
		{"rotation: signed A, verify [B A]", Sign("x", a), []string{b, a}, "x", true},
		{"rotation: signed B, verify [A]", Sign("x", b), []string{a}, "", false},
		{"longest accepted", Sign(strings.Repeat("x", MaxSignedLen-sigLen-1), a), []string{a}, strings.Repeat("x", MaxSignedLen-sigLen-1), true},
		{"one byte too long", Sign(strings.Repeat("x", MaxSignedLen-sigLen), a), []string{a}, "", false},
		{"utf-8 value", Sign("héllo €", "sëcret"), []string{"sëcret"}, "héllo €", true},
	}
	for _, tt := range tests {
		got, ok := Unsign(tt.in, tt.secrets...)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: Unsign = %q, %v; want %q, %v", tt.name, short(got), ok, short(tt.want), tt.ok)
		}
	}
}

func TestUnsignAllocs(t *testing.T) {
	s := Sign("NliONGT-j0K42qnn8ZTsQFxAzwiaoKLm", "k1")
	n := testing.AllocsPerRun(100, func() {
		if _, ok := Unsign(s, "k0", "k1"); !ok {
			t.Fatal("rejected")
		}
	})
	if n > 2 {
		t.Errorf("Unsign allocates %v times, want <= 2", n)
	}
}
