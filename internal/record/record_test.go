package record

import (
	"encoding/json"
	"errors"
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
		`{"a\u0000":"\ud800"}`, `[]`, `{`, ``, `{"a":1,"a":2}`,
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
		if len(m) > len(fields) {
			t.Fatalf("Fields found %d keys, encoding/json %d", len(fields), len(m))
		}
	})
}
