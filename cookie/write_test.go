package cookie_test

import (
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/galleta-go/galleta/cookie"
)

var fixed = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func clock() time.Time { return fixed }

func TestSerialize(t *testing.T) {
	tests := []struct {
		name, value string
		o           cookie.Options
		want        string
	}{
		{"a", "b", cookie.Options{}, "a=b; Path=/"},
		{"all", "v", cookie.Options{MaxAge: time.Hour, Domain: "example.com", Path: "/app", HTTPOnly: true, Secure: true, Partitioned: true, SameSite: http.SameSiteStrictMode, Now: clock},
			"all=v; Max-Age=3600; Domain=example.com; Path=/app; Expires=Wed, 02 Jan 2030 04:04:05 GMT; HttpOnly; Secure; Partitioned; SameSite=Strict"},
		// 1500ms: Max-Age floors to 1, Expires = now+1.5s, shown to the second.
		{"m", "v", cookie.Options{MaxAge: 1500 * time.Millisecond, Now: clock}, "m=v; Max-Age=1; Path=/; Expires=Wed, 02 Jan 2030 03:04:06 GMT"},
		// Below a second: Max-Age=0, as Express (floor(999/1000)).
		{"m", "v", cookie.Options{MaxAge: 999 * time.Millisecond, Now: clock}, "m=v; Max-Age=0; Path=/; Expires=Wed, 02 Jan 2030 03:04:05 GMT"},
		// Negative: delete now.
		{"m", "v", cookie.Options{MaxAge: -time.Second, Now: clock}, "m=v; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"},
		// MaxAge wins over Expires.
		{"m", "v", cookie.Options{MaxAge: 2 * time.Second, Expires: fixed.Add(48 * time.Hour), Now: clock}, "m=v; Max-Age=2; Path=/; Expires=Wed, 02 Jan 2030 03:04:07 GMT"},
		// Expires alone, given in another zone: formatted in GMT.
		{"e", "v", cookie.Options{Expires: fixed.In(time.FixedZone("X", 3600))}, "e=v; Path=/; Expires=Wed, 02 Jan 2030 03:04:05 GMT"},
		// No clamping of long lifetimes.
		{"l", "v", cookie.Options{MaxAge: 1000 * 24 * time.Hour, Now: clock}, "l=v; Max-Age=86400000; Path=/; Expires=Tue, 28 Sep 2032 03:04:05 GMT"},
		{"s", "v", cookie.Options{SameSite: http.SameSiteDefaultMode}, "s=v; Path=/"},
		{"s", "v", cookie.Options{SameSite: http.SameSiteLaxMode}, "s=v; Path=/; SameSite=Lax"},
		{"__Host-id", "v", cookie.Options{Secure: true, Path: "/"}, "__Host-id=v; Path=/; Secure"},
		{"__Secure-id", "v", cookie.Options{Secure: true, Domain: "example.com"}, "__Secure-id=v; Domain=example.com; Path=/; Secure"},
		{"u", "a b;c\"é\r\n", cookie.Options{}, "u=a%20b%3Bc%22%C3%A9%0D%0A; Path=/"},
		{"x", strings.Repeat("a", 4095), cookie.Options{}, "x=" + strings.Repeat("a", 4095) + "; Path=/"},
	}
	for _, tt := range tests {
		got, err := cookie.Serialize(tt.name, tt.value, tt.o)
		if err != nil || got != tt.want {
			t.Errorf("Serialize(%q, %q) =\n %q, %v\nwant\n %q", tt.name, tt.value, got, err, tt.want)
		}
	}
}

func TestSerializeErrors(t *testing.T) {
	tests := []struct {
		label, name, value string
		o                  cookie.Options
		want               error
	}{
		{"attribute injection in name", "a;Max-Age=9", "v", cookie.Options{}, cookie.ErrInvalidName},
		{"space in name", "a b", "v", cookie.Options{}, cookie.ErrInvalidName},
		{"empty name", "", "v", cookie.Options{}, cookie.ErrInvalidName},
		{"= in name", "a=b", "v", cookie.Options{}, cookie.ErrInvalidName},
		{"non-ascii name", "é", "v", cookie.Options{}, cookie.ErrInvalidName},
		{"invalid utf-8 value", "n", "ok\xffok", cookie.Options{}, cookie.ErrInvalidValue},
		{"domain with space", "n", "v", cookie.Options{Domain: "exa mple.com"}, cookie.ErrInvalidDomain},
		{"domain with ;", "n", "v", cookie.Options{Domain: "a.com; Secure"}, cookie.ErrInvalidDomain},
		{"path with ;", "n", "v", cookie.Options{Path: "/a;b"}, cookie.ErrInvalidPath},
		{"path with CR", "n", "v", cookie.Options{Path: "/a\rb"}, cookie.ErrInvalidPath},
		{"path non-ascii", "n", "v", cookie.Options{Path: "/é"}, cookie.ErrInvalidPath},
		{"__Host- with domain", "__Host-x", "v", cookie.Options{Secure: true, Domain: "example.com"}, cookie.ErrPrefix},
		{"__Host- without Secure", "__Host-x", "v", cookie.Options{}, cookie.ErrPrefix},
		{"__Host- with Path /x", "__Host-x", "v", cookie.Options{Secure: true, Path: "/x"}, cookie.ErrPrefix},
		{"__host- lower case", "__host-x", "v", cookie.Options{}, cookie.ErrPrefix},
		{"__Secure- without Secure", "__Secure-x", "v", cookie.Options{}, cookie.ErrPrefix},
		{"Partitioned without Secure", "n", "v", cookie.Options{Partitioned: true}, cookie.ErrPartitioned},
		{"bad SameSite", "n", "v", cookie.Options{SameSite: http.SameSite(9)}, cookie.ErrInvalidSameSite},
		{"name+value 4097", "x", strings.Repeat("a", 4096), cookie.Options{}, cookie.ErrTooLarge},
		{"encoding makes it too large", "x", strings.Repeat(" ", 1400), cookie.Options{}, cookie.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.label, func(t *testing.T) {
			s, err := cookie.Serialize(tt.name, tt.value, tt.o)
			if !errors.Is(err, tt.want) || s != "" {
				t.Fatalf("Serialize = %q, %v; want %v", s, err, tt.want)
			}
			if len(err.Error()) > 400 {
				t.Errorf("error message too long (%d bytes): echoes input?", len(err.Error()))
			}
			for _, f := range []func(w http.ResponseWriter) error{
				func(w http.ResponseWriter) error { return cookie.Set(w.Header(), tt.name, tt.value, tt.o) },
				func(w http.ResponseWriter) error { return cookie.SetSigned(w.Header(), tt.name, tt.value, "k", tt.o) },
				func(w http.ResponseWriter) error { return cookie.SetJSON(w.Header(), tt.name, tt.value, tt.o) },
			} {
				w := httptest.NewRecorder()
				err := f(w)
				if err == nil {
					// Signing/JSON changes the value; only value errors may vanish.
					if tt.want == cookie.ErrInvalidValue || tt.want == cookie.ErrTooLarge {
						continue
					}
					t.Errorf("Set* accepted: %v", w.Header())
				}
				if got := w.Header().Values("Set-Cookie"); len(got) != 0 {
					t.Errorf("header written despite error %v: %q", err, got)
				}
			}
		})
	}
	// A huge bad name is not echoed in full.
	_, err := cookie.Serialize(strings.Repeat(";", 100000), "v", cookie.Options{})
	if !errors.Is(err, cookie.ErrInvalidName) || len(err.Error()) > 400 {
		t.Errorf("huge name: %d-byte error %v", len(err.Error()), errors.Unwrap(err))
	}
}

func TestSetSignedAndJSON(t *testing.T) {
	w := httptest.NewRecorder()
	if err := cookie.SetSigned(w.Header(), "connect.sid", "NliONGT-j0K42qnn8ZTsQFxAzwiaoKLm", "k1", cookie.Options{HTTPOnly: true}); err != nil {
		t.Fatal(err)
	}
	want := "connect.sid=s%3ANliONGT-j0K42qnn8ZTsQFxAzwiaoKLm.oztZx3yMp%2B%2BDXqz6H%2FyUspWCS5r%2BH8mtYj8xa13aOtI; Path=/; HttpOnly"
	if got := w.Header().Get("Set-Cookie"); got != want {
		t.Errorf("SetSigned:\n %q\nwant\n %q", got, want)
	}
	// Round trip through the parser.
	v, ok := cookie.Parse("connect.sid=s%3ANliONGT-j0K42qnn8ZTsQFxAzwiaoKLm.oztZx3yMp%2B%2BDXqz6H%2FyUspWCS5r%2BH8mtYj8xa13aOtI", "k1").Signed("connect.sid")
	if !ok || v != "NliONGT-j0K42qnn8ZTsQFxAzwiaoKLm" {
		t.Errorf("round trip: %q %v", v, ok)
	}

	if _, err := cookie.SerializeSigned("n", "v", "", cookie.Options{}); !errors.Is(err, cookie.ErrNoSecret) {
		t.Errorf("empty secret: %v", err)
	}

	s, err := cookie.SerializeJSON("prefs", map[string]any{"a": 1}, cookie.Options{})
	if err != nil || s != "prefs=j%3A%7B%22a%22%3A1%7D; Path=/" {
		t.Errorf("SerializeJSON = %q, %v", s, err)
	}
	if _, err := cookie.SerializeJSON("n", math.Inf(1), cookie.Options{}); err == nil {
		t.Error("json.Marshal error not returned")
	}
	w = httptest.NewRecorder()
	if err := cookie.SetJSON(w.Header(), "n", make(chan int), cookie.Options{}); err == nil || len(w.Header()["Set-Cookie"]) != 0 {
		t.Errorf("SetJSON with unmarshalable value: %v %v", err, w.Header())
	}
	w = httptest.NewRecorder()
	if err := cookie.SetJSON(w.Header(), "prefs", []int{1, 2}, cookie.Options{}); err != nil {
		t.Fatal(err)
	}
	var got []int
	h := strings.SplitN(w.Header().Get("Set-Cookie"), ";", 2)[0]
	if err := cookie.Parse(h).DecodeJSON("prefs", &got); err != nil || len(got) != 2 {
		t.Errorf("JSON round trip: %v %v", got, err)
	}
}

func TestSetAddsHeaders(t *testing.T) {
	w := httptest.NewRecorder()
	if err := cookie.Set(w.Header(), "a", "1", cookie.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := cookie.Set(w.Header(), "b", "2", cookie.Options{}); err != nil {
		t.Fatal(err)
	}
	if got := w.Header().Values("Set-Cookie"); len(got) != 2 || got[0] != "a=1; Path=/" || got[1] != "b=2; Path=/" {
		t.Errorf("Set-Cookie = %q", got)
	}
}

func TestClear(t *testing.T) {
	tests := []struct {
		name string
		o    cookie.Options
		want string
	}{
		{"sid", cookie.Options{}, "sid=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"},
		{"__Host-sid", cookie.Options{Secure: true, HTTPOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: time.Hour, Expires: fixed},
			"__Host-sid=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax"},
		{"sid", cookie.Options{Domain: "example.com", Path: "/app", Secure: true, Partitioned: true},
			"sid=; Max-Age=0; Domain=example.com; Path=/app; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure; Partitioned"},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		if err := cookie.Clear(w.Header(), tt.name, tt.o); err != nil {
			t.Fatal(err)
		}
		if got := w.Header().Values("Set-Cookie"); len(got) != 1 || got[0] != tt.want {
			t.Errorf("Clear(%q) = %q\nwant %q", tt.name, got, tt.want)
		}
	}
	w := httptest.NewRecorder()
	if err := cookie.Clear(w.Header(), "__Host-sid", cookie.Options{}); !errors.Is(err, cookie.ErrPrefix) || len(w.Header()) != 0 {
		t.Errorf("Clear without Secure: %v %v", err, w.Header())
	}
}
