package cookie

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseExpressRules(t *testing.T) {
	tests := []struct {
		name   string
		header string
		want   map[string]string // name -> Value; nil value map means empty jar
		order  []string
	}{
		{"express example", `a="q"; b = x ; c; d=%ZZ; a=2`, map[string]string{"a": "q", "b": "x", "d": "%ZZ"}, []string{"a", "b", "d"}},
		{"duplicate: first wins", "sid=forged; sid=real", map[string]string{"sid": "forged"}, []string{"sid"}},
		{"tabs trimmed", "l=\t m \t;\tk\t=v", map[string]string{"l": "m", "k": "v"}, []string{"l", "k"}},
		{"only one pair of quotes", `q=""x""`, map[string]string{"q": `"x"`}, nil},
		{"lone quote", `i="`, map[string]string{"i": ""}, nil},
		{"empty quotes", `h=""`, map[string]string{"h": ""}, nil},
		{"unbalanced quote kept", `u="abc`, map[string]string{"u": `"abc`}, nil},
		{"quotes inside kept", `u=a"b"`, map[string]string{"u": `a"b"`}, nil},
		{"value with =", "j=a=b", map[string]string{"j": "a=b"}, nil},
		{"empty name", "=k; x=1", map[string]string{"": "k", "x": "1"}, nil},
		{"empty value", "a=; b=1", map[string]string{"a": "", "b": "1"}, nil},
		{"too short", "=", map[string]string{}, nil},
		{"empty", "", map[string]string{}, nil},
		{"no pairs", "a; b; c", map[string]string{}, nil},
		{"trailing semicolons", "a=1;;;", map[string]string{"a": "1"}, nil},
		{"euro", "e=%E2%82%AC", map[string]string{"e": "€"}, nil},
		{"quoted then decoded", `g="%E2%82%AC"`, map[string]string{"g": "€"}, nil},
		{"invalid utf-8 escape kept raw", "f=%C3", map[string]string{"f": "%C3"}, nil},
		{"surrogate escape kept raw", "x=%ED%A0%80", map[string]string{"x": "%ED%A0%80"}, nil},
		{"overlong escape kept raw", "x=%C0%AF", map[string]string{"x": "%C0%AF"}, nil},
		{"split sequence kept raw", "x=%E2%82x%AC", map[string]string{"x": "%E2%82x%AC"}, nil},
		{"short escape kept raw", "y=%2", map[string]string{"y": "%2"}, nil},
		{"ascii escapes", "z=%41%42", map[string]string{"z": "AB"}, nil},
		{"lower-case hex", "z=%c3%a9", map[string]string{"z": "é"}, nil},
		{"raw non-ascii passes through", "z=é%20", map[string]string{"z": "é "}, nil},
		{"s: without secrets stays plain", "s=s:abc.def", map[string]string{"s": "s:abc.def"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := Parse(tt.header)
			if j.Len() != len(tt.want) {
				t.Errorf("Len = %d, want %d (%+v)", j.Len(), len(tt.want), j.All())
			}
			for k, v := range tt.want {
				c, ok := j.Lookup(k)
				if !ok || c.Value != v {
					t.Errorf("Lookup(%q) = %q, %v; want %q", k, c.Value, ok, v)
				}
				if g, ok := Get(tt.header, k); !ok || g != v {
					t.Errorf("Get(%q) = %q, %v; want %q", k, g, ok, v)
				}
			}
			for i, c := range j.All() {
				if tt.order != nil && c.Name != tt.order[i] {
					t.Errorf("All()[%d] = %q, want %q", i, c.Name, tt.order[i])
				}
			}
			if _, ok := Get(tt.header, "absent"); ok {
				t.Error("Get(absent) found something")
			}
		})
	}
}

func TestParseRawAndKinds(t *testing.T) {
	const k1 = "k1"
	good := EncodeValue("s:" + Sign("hello", k1))
	goodJSON := EncodeValue("s:" + Sign(`j:{"u":2}`, k1))
	goodNullJSON := EncodeValue("s:" + Sign(`j:null`, k1))
	h := `p=plain; s1=` + good + `; s2=s:bad.sig; s3=s:nodot; j1=j:{"a":1}; j2=j:null; j3=j:0; j4=j:false; j5=j:""; j6=j:{bad; j7=j:-0.0e1; j8=j: 1 ; j9=j:"x"; ja=j:[]; jb=j:1e-400; sj=` + goodJSON + `; sn=` + goodNullJSON + `; q="%41"`
	type want struct {
		value      string
		kind       Kind
		valid      bool
		signedJSON bool
	}
	tests := map[string]want{
		"p":  {"plain", KindPlain, true, false},
		"s1": {"hello", KindSigned, true, false},
		"s2": {"", KindSigned, false, false},
		"s3": {"", KindSigned, false, false},
		"j1": {`{"a":1}`, KindJSON, true, false},
		"j2": {"j:null", KindPlain, true, false},
		"j3": {"j:0", KindPlain, true, false},
		"j4": {"j:false", KindPlain, true, false},
		"j5": {`j:""`, KindPlain, true, false},
		"j6": {"j:{bad", KindPlain, true, false},
		"j7": {"j:-0.0e1", KindPlain, true, false},
		"j8": {" 1", KindJSON, true, false}, // value trimmed to "j: 1"
		"j9": {`"x"`, KindJSON, true, false},
		"ja": {`[]`, KindJSON, true, false}, // [] is truthy in JavaScript
		"jb": {"j:1e-400", KindPlain, true, false},
		"sj": {`{"u":2}`, KindSigned, true, true},
		"sn": {`j:null`, KindSigned, true, false},
		"q":  {"A", KindPlain, true, false},
	}
	j := Parse(h, "k0", k1)
	for name, w := range tests {
		c, ok := j.Lookup(name)
		if !ok {
			t.Errorf("%s: missing", name)
			continue
		}
		if c.Value != w.value || c.Kind != w.kind || c.Valid != w.valid || c.SignedJSON != w.signedJSON {
			t.Errorf("%s: got %+v, want %+v", name, c, w)
		}
	}
	if c, _ := j.Lookup("q"); c.Raw != "%41" {
		t.Errorf("Raw = %q, want %%41 (quotes removed, not decoded)", c.Raw)
	}
	if c, _ := j.Lookup("s1"); c.Raw != good {
		t.Errorf("Raw = %q, want %q", c.Raw, good)
	}
	if v, ok := j.Signed("s1"); !ok || v != "hello" {
		t.Errorf("Signed(s1) = %q, %v", v, ok)
	}
	for _, n := range []string{"s2", "p", "j1", "absent"} {
		if v, ok := j.Signed(n); ok {
			t.Errorf("Signed(%s) = %q, true; want false", n, v)
		}
	}
	if v, ok := j.Plain("p"); !ok || v != "plain" {
		t.Errorf("Plain(p) = %q, %v", v, ok)
	}
	for _, n := range []string{"s1", "s2", "j1", "absent"} {
		if v, ok := j.Plain(n); ok {
			t.Errorf("Plain(%s) = %q, true; want false", n, v)
		}
	}

	// Without secrets, s: values are KindPlain, like cookie-parser.
	np := Parse(h)
	if c, _ := np.Lookup("s1"); c.Kind != KindPlain || c.Value != "s:"+Sign("hello", k1) {
		t.Errorf("no secrets: s1 = %+v", c)
	}
	if c, _ := Parse(h, "").Lookup("s1"); c.Kind != KindPlain {
		t.Errorf("empty secret: s1 = %+v, want Plain", c)
	}
}

func TestDecodeJSON(t *testing.T) {
	h := `j1=j:{"a":1}; p=plain; s2=s:bad.sig; sj=` + EncodeValue("s:"+Sign(`j:{"a":2}`, "k")) + `; bad=j:{"a":"x"}`
	j := Parse(h, "k")
	var v struct{ A int }
	if err := j.DecodeJSON("j1", &v); err != nil || v.A != 1 {
		t.Errorf("j1: %v %+v", err, v)
	}
	if err := j.DecodeJSON("sj", &v); err != nil || v.A != 2 {
		t.Errorf("sj: %v %+v", err, v)
	}
	for _, n := range []string{"absent", "p", "s2"} {
		if err := j.DecodeJSON(n, &v); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", n, err)
		}
	}
	if err := j.DecodeJSON("bad", &v); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("type mismatch: err = %v, want an unmarshal error", err)
	}
}

func TestParseLimits(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 5000; i++ {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString("c" + strconv.Itoa(i) + "=v")
	}
	h := b.String()
	j := Parse(h)
	if j.Len() != MaxCookies {
		t.Errorf("Len = %d, want %d", j.Len(), MaxCookies)
	}
	if _, ok := j.Lookup("c2999"); !ok {
		t.Error("c2999 missing")
	}
	if _, ok := j.Lookup("c3000"); ok {
		t.Error("c3000 kept beyond the cap")
	}
	if _, ok := Get(h, "c3000"); ok {
		t.Error("Get sees c3000 beyond the cap")
	}
	if v, ok := Get(h, "c2999"); !ok || v != "v" {
		t.Errorf("Get(c2999) = %q, %v", v, ok)
	}

	// Duplicates count towards the cap but the jar keeps first occurrences.
	dup := strings.Repeat("a=1; ", 4000) + "b=2"
	if j := Parse(dup); j.Len() != 1 {
		t.Errorf("dup Len = %d", j.Len())
	}

	// Oversized cookies are skipped as if absent.
	big := strings.Repeat("x", MaxCookieSize) // name "a" + this = 4097
	h = "a=" + big + "; b=1; a=small; c=" + big[:MaxCookieSize-1]
	j = Parse(h)
	if c, ok := j.Lookup("a"); !ok || c.Value != "small" {
		t.Errorf("a = %q, %v; want the later small one", short(c.Value), ok)
	}
	if c, ok := j.Lookup("c"); !ok || len(c.Value) != MaxCookieSize-1 {
		t.Errorf("c (exactly 4096 bytes) missing: %v", ok)
	}
	if v, _ := Get(h, "a"); v != "small" {
		t.Errorf("Get(a) = %q", short(v))
	}
}

// Parsing must be linear: 16x the input may take at most ~40x the time
// (generous, to stay reliable under -race and on loaded machines).
func TestParseLinear(t *testing.T) {
	shapes := map[string]func(n int) string{
		"pairs":       func(n int) string { return strings.Repeat("ab=cd; ", n) },
		"no equals":   func(n int) string { return strings.Repeat("abcd; ", n) + "x=1" },
		"one big eq":  func(n int) string { return strings.Repeat(";", 4*n) + "=" },
		"semis after": func(n int) string { return "a" + strings.Repeat("=;", 2*n) },
	}
	measure := func(h string) time.Duration {
		best := time.Duration(1 << 62)
		for i := 0; i < 5; i++ {
			start := time.Now()
			Parse(h)
			Get(h, "zz")
			if d := time.Since(start); d < best {
				best = d
			}
		}
		return best
	}
	for name, mk := range shapes {
		small, large := measure(mk(4000)), measure(mk(64000))
		if small < time.Microsecond {
			small = time.Microsecond
		}
		if large > 40*small && large > 20*time.Millisecond {
			t.Errorf("%s: 16x input took %v vs %v", name, large, small)
		}
	}
}

func TestParseHostileBytes(t *testing.T) {
	headers := []string{
		"\xff\xfe=\x00\x01; \x80=%FF%FE; a\x00b=\"\x7f\"",
		"%=%; %%=%%%; ;=;",
		"\"=\"; \t=\t; =",
		strings.Repeat("%", 10000),
		"a=" + strings.Repeat("%E2%82", 2000),
	}
	for _, h := range headers {
		j := Parse(h, "k")
		for _, c := range j.All() {
			if v, ok := Get(h, c.Name); !ok || (c.Kind == KindPlain && v != c.Value) {
				t.Errorf("%q: Get(%q) = %q, %v; Parse has %+v", short(h), c.Name, v, ok, c)
			}
		}
	}
	if c, ok := Parse("\x80=%FF").Lookup("\x80"); !ok || c.Value != "%FF" {
		t.Errorf("invalid byte name: %+v %v", c, ok)
	}
}

func TestParseRequest(t *testing.T) {
	r, _ := http.NewRequest("GET", "/", nil)
	if ParseRequest(r).Len() != 0 {
		t.Error("no header: non-empty jar")
	}
	r.Header.Add("Cookie", "a=1; b=2")
	r.Header.Add("Cookie", "a=3")
	r.Header.Add("Cookie", "s="+EncodeValue("s:"+Sign("v", "k")))
	j := ParseRequest(r, "k")
	if j.Len() != 3 {
		t.Fatalf("Len = %d: %+v", j.Len(), j.All())
	}
	if v, _ := j.Plain("a"); v != "1" {
		t.Errorf("a = %q, want first line's", v)
	}
	if v, ok := j.Signed("s"); !ok || v != "v" {
		t.Errorf("s = %q, %v", v, ok)
	}
}

func TestJarAllIsCopy(t *testing.T) {
	j := Parse("a=1; b=2")
	all := j.All()
	all[0].Value = "changed"
	if v, _ := j.Plain("a"); v != "1" {
		t.Error("All returned the internal slice")
	}
	var zero Parsed
	if zero.Len() != 0 || len(zero.All()) != 0 {
		t.Error("zero Parsed not empty")
	}
	if _, ok := zero.Lookup("a"); ok {
		t.Error("zero Parsed lookup found something")
	}
}

// Larger jars switch to a map index; lookups must keep first-wins.
func TestJarIndex(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 50; i++ {
		b.WriteString("n" + strconv.Itoa(i%20) + "=" + strconv.Itoa(i) + "; ")
	}
	j := Parse(b.String())
	if j.Len() != 20 {
		t.Fatalf("Len = %d", j.Len())
	}
	for i := 0; i < 20; i++ {
		if v, _ := j.Plain("n" + strconv.Itoa(i)); v != strconv.Itoa(i) {
			t.Errorf("n%d = %q", i, v)
		}
	}
}

func TestGetAllocs(t *testing.T) {
	h := "_ga=GA1.2.1234567890.1234567890; theme=dark; connect.sid=s%3ANliONGT-j0K42qnn8ZTsQFxAzwiaoKLm.oztZx3yMp%2B%2BDXqz6H%2FyUspWCS5r%2BH8mtYj8xa13aOtI; lang=en; csrf=abc123"
	if n := testing.AllocsPerRun(100, func() { Get(h, "lang") }); n != 0 {
		t.Errorf("Get without decoding allocates %v times", n)
	}
}
