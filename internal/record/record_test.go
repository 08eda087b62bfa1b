package record

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
)

func TestFields(t *testing.T) {
	cases := []struct {
		in   string
		want []Field
		err  bool
	}{
		{`{}`, nil, false},
		{` { "a" : 1 , "b":"x,}" ,"c":{"d":[1,{"e":"]"}]},"\u0066":null} `, []Field{
			{"a", []byte("1")}, {"b", []byte(`"x,}"`)}, {"c", []byte(`{"d":[1,{"e":"]"}]}`)}, {"f", []byte("null")},
		}, false},
		{`{"q\"k":true}`, []Field{{`q"k`, []byte("true")}}, false},
		{`[1]`, nil, true},
		{`"str"`, nil, true},
		{`{"a":1`, nil, true},
		{``, nil, true},
		{"\xff", nil, true},
	}
	for _, c := range cases {
		got, err := Fields([]byte(c.in), nil)
		if (err != nil) != c.err {
			t.Fatalf("%q: err %v", c.in, err)
		}
		if c.err {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("%q: error %v does not wrap ErrMalformed", c.in, err)
			}
			continue
		}
		if len(got) != len(c.want) {
			t.Fatalf("%q: %d fields, want %d", c.in, len(got), len(c.want))
		}
		for i := range got {
			if got[i].Key != c.want[i].Key || string(got[i].Raw) != string(c.want[i].Raw) {
				t.Fatalf("%q field %d: %q=%s, want %q=%s", c.in, i, got[i].Key, got[i].Raw, c.want[i].Key, c.want[i].Raw)
			}
		}
	}
}

func TestCookieRoundTrip(t *testing.T) {
	exp := time.Date(2026, 11, 25, 23, 20, 36, 194e6, time.UTC)
	c := Cookie{OriginalMaxAge: 60000, Expires: exp, Secure: true, HTTPOnly: true, Domain: "example.com", Path: "/", SameSite: "lax", Partitioned: true, Priority: "high"}
	b := AppendCookie(nil, c)
	want := `{"originalMaxAge":60000,"partitioned":true,"priority":"high","expires":"2026-11-25T23:20:36.194Z","secure":true,"httpOnly":true,"domain":"example.com","path":"/","sameSite":"lax"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	back, err := DecodeCookie(b)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Expires.Equal(c.Expires) {
		t.Fatalf("expires %v", back.Expires)
	}
	back.Expires = c.Expires
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("round trip %+v, want %+v", back, c)
	}
	// express-session's default cookie, as Node writes it.
	node, err := DecodeCookie([]byte(`{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"}`))
	if err != nil || node.OriginalMaxAge != -1 || !node.Expires.IsZero() || !node.HTTPOnly || node.Path != "/" {
		t.Fatalf("node default cookie: %+v %v", node, err)
	}
	if sameSiteTrue, _ := DecodeCookie([]byte(`{"sameSite":true}`)); sameSiteTrue.SameSite != "strict" {
		t.Fatalf("sameSite:true decodes to %q, want strict (cookie 0.7.2)", sameSiteTrue.SameSite)
	}
	for _, bad := range []string{`"x"`, `{"expires":"tomorrow"}`, `{"originalMaxAge":"1"}`} {
		if _, err := DecodeCookie([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v", bad, err)
		}
	}
}

func TestMetaRoundTrip(t *testing.T) {
	m := Meta{Created: time.UnixMilli(1795648776194), Deadline: time.UnixMilli(1795691976194)}
	b := AppendMeta(nil, m)
	if string(b) != `{"created":1795648776194,"deadline":1795691976194}` {
		t.Fatalf("%s", b)
	}
	back, err := DecodeMeta(b)
	if err != nil || !back.Created.Equal(m.Created) || !back.Deadline.Equal(m.Deadline) {
		t.Fatalf("%+v %v", back, err)
	}
	noDeadline := AppendMeta(nil, Meta{Created: m.Created})
	if back, _ := DecodeMeta(noDeadline); !back.Deadline.IsZero() {
		t.Fatalf("zero deadline came back as %v", back.Deadline)
	}
}

func TestAppendKeyEscapes(t *testing.T) {
	for _, k := range []string{"plain", `q"uote`, "back\\slash", "ctl\x01", "<html>", "ünï"} {
		b := append([]byte{'{'}, AppendKey(nil, k)...)
		b = append(b, "1}"...)
		var m map[string]int
		if err := json.Unmarshal(b, &m); err != nil || m[k] != 1 {
			t.Fatalf("key %q encoded as %s: %v", k, b, err)
		}
	}
}

// FuzzDecode feeds arbitrary bytes to the record readers: no panic, and
// Fields agrees with encoding/json on which keys an object has.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"n":1,"__lastAccess":1795648796836}`,
		`{"cookie":{"originalMaxAge":60000,"expires":"2026-11-25T23:20:36.194Z"},"__galleta":{"created":1,"deadline":2},"a":[1,{"b":"}"}]}`,
		`{"a\u0000":"\ud800"}`, `{"cookie":{"priority":"\u0001"}}`, `[]`, `{`, ``, `{"a":1,"a":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fields, err := Fields(data, nil)
		var m map[string]json.RawMessage
		jerr := json.Unmarshal(data, &m)
		if err == nil && jerr != nil && string(data) != "null" {
			t.Fatalf("Fields accepted what encoding/json rejects (%v): %q", jerr, data)
		}
		if err != nil {
			return
		}
		for _, fl := range fields {
			if _, ok := m[fl.Key]; !ok {
				t.Fatalf("key %q not in encoding/json's view of %q", fl.Key, data)
			}
			if !json.Valid(fl.Raw) {
				t.Fatalf("raw value %q of %q is not valid JSON", fl.Raw, fl.Key)
			}
			switch fl.Key {
			case KeyCookie:
				DecodeCookie(fl.Raw)
			case KeyMeta:
				DecodeMeta(fl.Raw)
			}
		}
		// The record-level readers take the same bytes without panicking,
		// and what Decode accepts encodes back to valid JSON.
		var s Session
		if Decode(data, &s, Cookie{}) == nil {
			if out := Encode(nil, s.Values, s.Cookie, s.Meta); !json.Valid(out) {
				t.Fatalf("Encode of decoded %q is not JSON: %s", data, out)
			}
		}
		Merge(data, []Op{{Kind: OpIncr, Key: "n", Delta: 1}, {Kind: OpDelete, Key: "a"}})
		if len(m) > len(fields) {
			t.Fatalf("Fields found %d keys, encoding/json %d", len(fields), len(m))
		}
	})
}

func TestDecodeEncodeRoundTrip(t *testing.T) {
	in := []byte(`{"__lastAccess":1795648796836,"b":[1,{"x":"}"}],"cookie":{"originalMaxAge":60000,"expires":"2026-11-25T23:20:36.194Z","httpOnly":true,"path":"/","sameSite":"lax"},"a":"x","__galleta":{"created":1000,"deadline":2000}}`)
	var s Session
	if err := Decode(in, &s, Cookie{Path: "/default"}); err != nil {
		t.Fatal(err)
	}
	if len(s.Values) != 2 || string(s.Values["a"]) != `"x"` || string(s.Values["b"]) != `[1,{"x":"}"}]` {
		t.Fatalf("values %q", s.Values)
	}
	if s.Cookie.OriginalMaxAge != 60000 || s.Cookie.Path != "/" || s.Meta.Created.UnixMilli() != 1000 || s.Meta.Deadline.UnixMilli() != 2000 {
		t.Fatalf("cookie %+v meta %+v", s.Cookie, s.Meta)
	}
	out := Encode(nil, s.Values, s.Cookie, s.Meta)
	want := `{"cookie":{"originalMaxAge":60000,"expires":"2026-11-25T23:20:36.194Z","httpOnly":true,"path":"/","sameSite":"lax"},"__galleta":{"created":1000,"deadline":2000},"a":"x","b":[1,{"x":"}"}]}`
	if string(out) != want {
		t.Fatalf("Encode:\n got %s\nwant %s", out, want)
	}

	// A record without a cookie object (or bookkeeping) gets the default
	// cookie and zero bookkeeping; Values is reused.
	if err := Decode([]byte(`{"n":1}`), &s, Cookie{Path: "/default", OriginalMaxAge: -1}); err != nil {
		t.Fatal(err)
	}
	if len(s.Values) != 1 || s.Cookie.Path != "/default" || !s.Meta.Created.IsZero() {
		t.Fatalf("after a second Decode: values %q cookie %+v meta %+v", s.Values, s.Cookie, s.Meta)
	}
	// Strings from a foreign record are written back as JSON, whatever
	// they hold (strconv.Quote's \x01 is not JSON).
	if err := Decode([]byte(`{"cookie":{"priority":"\u0001\u00e9","domain":"a\"b","sameSite":"\u2028"}}`), &s, Cookie{}); err != nil {
		t.Fatal(err)
	}
	if out := Encode(nil, s.Values, s.Cookie, s.Meta); !json.Valid(out) {
		t.Fatalf("a decoded foreign cookie encodes to invalid JSON: %s", out)
	}
	for _, bad := range []string{``, `[]`, `{"cookie":1}`, `{"__galleta":"x"}`, `{"cookie":{"expires":"soon"}}`} {
		if err := Decode([]byte(bad), &s, Cookie{}); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

func TestMerge(t *testing.T) {
	stored := []byte(`{"cookie":{"path":"/"},"__galleta":{"created":1},"__lastAccess":5,"keep":true,"n":40,"gone":1,"s":"text"}`)
	got, err := Merge(stored, []Op{
		{Kind: OpIncr, Key: "n", Delta: 2},
		{Kind: OpDelete, Key: "gone"},
		{Kind: OpSet, Key: "new", Raw: json.RawMessage(`[1]`)},
		{Kind: OpIncr, Key: "s", Delta: 3},       // a non-integer counts as 0
		{Kind: OpIncr, Key: "missing", Delta: 7}, // so does a missing key
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"keep": "true", "n": "42", "new": "[1]", "s": "3", "missing": "7"}
	if len(got) != len(want) {
		t.Fatalf("merged %q, want %q (reserved keys dropped)", got, want)
	}
	for k, v := range want {
		if string(got[k]) != v {
			t.Errorf("merged %s = %s, want %s", k, got[k], v)
		}
	}
	got, err = Merge(stored, []Op{{Kind: OpSet, Key: "a", Raw: json.RawMessage(`1`)}, {Kind: OpClear}, {Kind: OpSet, Key: "b", Raw: json.RawMessage(`2`)}})
	if err != nil || len(got) != 1 || string(got["b"]) != "2" {
		t.Fatalf("clear in the middle: %q, %v", got, err)
	}
	if _, err := Merge([]byte(`{"n":9223372036854775807}`), []Op{{Kind: OpIncr, Key: "n", Delta: 1}}); !errors.Is(err, ErrOverflow) {
		t.Fatalf("overflowing merge = %v, want ErrOverflow", err)
	}
	if _, err := Merge([]byte(`{`), nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("merge onto a bad record = %v, want ErrMalformed", err)
	}
}

func TestIntAndAdd(t *testing.T) {
	for raw, want := range map[string]int64{"1": 1, "-7": -7, "1.0": 1, "1e3": 1000, "9223372036854775807": math.MaxInt64} {
		if n, ok := Int([]byte(raw)); !ok || n != want {
			t.Errorf("Int(%s) = %d, %v; want %d", raw, n, ok, want)
		}
	}
	for _, raw := range []string{"", "1.5", `"1"`, "true", "1e19", "-1e19", "null"} {
		if n, ok := Int([]byte(raw)); ok {
			t.Errorf("Int(%q) = %d, true; want false", raw, n)
		}
	}
	for _, c := range []struct {
		n, d int64
		ok   bool
	}{
		{math.MaxInt64, 0, true}, {math.MaxInt64 - 1, 1, true}, {math.MaxInt64, 1, false},
		{math.MinInt64, -1, false}, {math.MinInt64 + 1, -1, true}, {-1, math.MinInt64, false},
		{math.MaxInt64, math.MinInt64, true}, {0, math.MinInt64, true},
	} {
		if sum, ok := Add(c.n, c.d); ok != c.ok || (ok && sum != c.n+c.d) {
			t.Errorf("Add(%d, %d) = %d, %v; want ok=%v", c.n, c.d, sum, ok, c.ok)
		}
	}
}

// FuzzFastDecode checks that the fast decoders of the cookie and
// bookkeeping objects give exactly what encoding/json gives.
func FuzzFastDecode(f *testing.F) {
	for _, s := range []string{
		`{"originalMaxAge":60000,"partitioned":true,"priority":"high","expires":"2026-11-25T23:20:36.194Z","secure":true,"httpOnly":false,"domain":"example.com","path":"/","sameSite":"lax"}`,
		`{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"}`,
		`{"originalMaxAge":1,"originalMaxAge":null,"secure":true,"secure":null,"httpOnly":false,"httpOnly":null}`,
		`{"domain":"a","domain":null,"partitioned":true,"partitioned":null,"sameSite":true,"sameSite":1}`,
		`{"Path":"/x","path":"/y"}`, `{"pa\u0074h":"/e"}`, `{"originalMaxAge":"60"}`, `{"originalMaxAge":-5}`,
		`{"originalMaxAge":1e400}`, `{"expires":""}`, `{"expires":"soon"}`, `{"path":"\u00e9"}`, `null`, `[]`, `{}`,
		`{"created":1795648796836,"deadline":1795648796837}`, `{"created":null,"deadline":1.5}`, `{"created":1e3}`,
		`{"created":-1,"Created":5}`, `{"created":99999999999999999999}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return
		}
		fast, ferr := DecodeCookie(raw)
		slow, serr := decodeCookieSlow(raw)
		if (ferr == nil) != (serr == nil) || fast != slow {
			t.Fatalf("cookie %s:\nfast %+v, %v\nslow %+v, %v", raw, fast, ferr, slow, serr)
		}
		m, merr := DecodeMeta(raw)
		c, d, serr := decodeMetaSlow(raw)
		var want Meta
		if c > 0 {
			want.Created = time.UnixMilli(c)
		}
		if d > 0 {
			want.Deadline = time.UnixMilli(d)
		}
		if (merr == nil) != (serr == nil) || (merr == nil && (!m.Created.Equal(want.Created) || !m.Deadline.Equal(want.Deadline))) {
			t.Fatalf("meta %s:\nfast %+v, %v\nslow %+v, %v", raw, m, merr, want, serr)
		}
	})
}
