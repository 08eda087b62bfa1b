package cookie_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/galleta-go/galleta/cookie"
)

// Vectors observed with Node v20.20.2 and npm cookie-signature@1.0.7,
// cookie@0.7.2 and cookie-parser@1.4.7 (probe script: sign, encodeURIComponent,
// cookie.parse, cookieParser(secrets) and cookie.serialize).

func TestNodeSignVectors(t *testing.T) {
	// cookie-signature@1.0.7 sign(value, secret)
	tests := []struct{ value, secret, want string }{
		{"abc", "secret", "abc.mUba1OAOkT/Ivo5dP34RCkqegy+D+wnDRShdeGONig4"},
		{"", "k", ".i7mQxAp9YcuXWXqUISUCW+UKyL63RDbjc1uYiTp/ZiA"},
		{"a.b.c", "k1", "a.b.c.IUHLpEa5NPiHBg9KnAbpzPXwA8z69AqFy8d/oRha9Zk"},
		{"héllo €", "sëcret", "héllo €.k/tTy4UVm4nuDVOfzDf9EzZKE1EuRAcPgPE9DWSbYFk"},
		{"NliONGT-j0K42qnn8ZTsQFxAzwiaoKLm", "k1", "NliONGT-j0K42qnn8ZTsQFxAzwiaoKLm.oztZx3yMp++DXqz6H/yUspWCS5r+H8mtYj8xa13aOtI"},
		{"x", "", "x.TLyWCZpkZ84AJGHxBUm0iYJl6+YYi0XvrMRCk1FuYsQ"},
		{"hello", "k1", "hello.lYqR0IV2ir5xmCiMXlsuGTmEmO0z4g2DU+ws9cvTNyk"},
		{`j:{"u":2}`, "k1", `j:{"u":2}.WPhuUdF931b//C9K3k8ijhqaNN2pRD2QO9B6xrzueIg`},
	}
	for _, tt := range tests {
		if got := cookie.Sign(tt.value, tt.secret); got != tt.want {
			t.Errorf("Sign(%q, %q) = %q, want %q", tt.value, tt.secret, got, tt.want)
		}
	}
}

func TestNodeEncodeURIComponent(t *testing.T) {
	tests := []struct{ in, want string }{
		{"s:abc.x+/=", "s%3Aabc.x%2B%2F%3D"},
		{"héllo €;,\"\\ !'()*~-_.", "h%C3%A9llo%20%E2%82%AC%3B%2C%22%5C%20!'()*~-_."},
		{"a b\tc\x00\x7f", "a%20b%09c%00%7F"},
		{"😀", "%F0%9F%98%80"},
		{`j:{"a":1}`, "j%3A%7B%22a%22%3A1%7D"},
		// DESIGN.md: the express-session cookie value.
		{"s:NliONGT-j0K42qnn8ZTsQFxAzwiaoKLm.oztZx3yMp++DXqz6H/yUspWCS5r+H8mtYj8xa13aOtI",
			"s%3ANliONGT-j0K42qnn8ZTsQFxAzwiaoKLm.oztZx3yMp%2B%2BDXqz6H%2FyUspWCS5r%2BH8mtYj8xa13aOtI"},
	}
	for _, tt := range tests {
		if got := cookie.EncodeValue(tt.in); got != tt.want {
			t.Errorf("EncodeValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNodeParseVectors(t *testing.T) {
	// cookie@0.7.2 parse(header)
	tests := []struct {
		header string
		want   map[string]string
	}{
		{`a="q"; b = x ; c; d=%ZZ; a=2`, map[string]string{"a": "q", "b": "x", "d": "%ZZ"}},
		{"sid=forged; sid=real", map[string]string{"sid": "forged"}},
		{"e=%E2%82%AC; f=%C3; g=\"%E2%82%AC\"; h=\"\"; i=\"; j=a=b; =k; l=\t m \t",
			map[string]string{"e": "€", "f": "%C3", "g": "€", "h": "", "i": "", "j": "a=b", "": "k", "l": "m"}},
		{"x=%ED%A0%80; y=%2; z=%41%42", map[string]string{"x": "%ED%A0%80", "y": "%2", "z": "AB"}},
	}
	for _, tt := range tests {
		j := cookie.Parse(tt.header)
		if j.Len() != len(tt.want) {
			t.Errorf("%q: Len = %d, want %d", tt.header, j.Len(), len(tt.want))
		}
		for k, v := range tt.want {
			if got, ok := j.Plain(k); !ok || got != v {
				t.Errorf("%q: %q = %q, %v; want %q", tt.header, k, got, ok, v)
			}
		}
	}
}

func TestNodeCookieParserVectors(t *testing.T) {
	// cookieParser(["k1"]) and cookieParser(["k2","k1"]) gave
	//   req.cookies       = {p:"plain", j1:{a:1}, j2:"j:null", j3:"j:0", j4:"j:false", j5:'j:""', j6:"j:{bad"}
	//   req.signedCookies = {s1:"hello", s2:false, sj:{u:2}}
	// cookieParser() kept s1 and sj as raw "s:..." strings in req.cookies.
	const h = `p=plain; s1=s%3Ahello.lYqR0IV2ir5xmCiMXlsuGTmEmO0z4g2DU%2Bws9cvTNyk; s2=s:bad.sig; j1=j:{"a":1}; j2=j:null; j3=j:0; j4=j:false; j5=j:""; j6=j:{bad; sj=s%3Aj%3A%7B%22u%22%3A2%7D.WPhuUdF931b%2F%2FC9K3k8ijhqaNN2pRD2QO9B6xrzueIg`
	for _, secrets := range [][]string{{"k1"}, {"k2", "k1"}} {
		j := cookie.Parse(h, secrets...)
		for k, v := range map[string]string{"p": "plain", "j2": "j:null", "j3": "j:0", "j4": "j:false", "j5": `j:""`, "j6": "j:{bad"} {
			if got, ok := j.Plain(k); !ok || got != v {
				t.Errorf("%v %s = %q, %v; want %q", secrets, k, got, ok, v)
			}
		}
		var o struct{ A, U int }
		if err := j.DecodeJSON("j1", &o); err != nil || o.A != 1 {
			t.Errorf("%v j1: %v %+v", secrets, err, o)
		}
		if v, ok := j.Signed("s1"); !ok || v != "hello" {
			t.Errorf("%v s1 = %q, %v", secrets, v, ok)
		}
		if c, ok := j.Lookup("s2"); !ok || c.Kind != cookie.KindSigned || c.Valid {
			t.Errorf("%v s2 = %+v, want invalid signed", secrets, c)
		}
		if err := j.DecodeJSON("sj", &o); err != nil || o.U != 2 {
			t.Errorf("%v sj: %v %+v", secrets, err, o)
		}
	}
	j := cookie.Parse(h)
	if v, _ := j.Plain("s1"); v != "s:hello.lYqR0IV2ir5xmCiMXlsuGTmEmO0z4g2DU+ws9cvTNyk" {
		t.Errorf("no secrets: s1 = %q", v)
	}
	if v, _ := j.Plain("sj"); v != `s:j:{"u":2}.WPhuUdF931b//C9K3k8ijhqaNN2pRD2QO9B6xrzueIg` {
		t.Errorf("no secrets: sj = %q", v)
	}
}

func TestNodeSerializeVectors(t *testing.T) {
	// cookie@0.7.2 serialize(name, value, opts). Express res.cookie always
	// passes path "/", and maxAge in seconds (ms/1000), hence the options
	// chosen here.
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	tests := []struct {
		name, value string
		o           cookie.Options
		want        string
	}{
		// {maxAge:1.5, path:'/', domain:'example.com', expires:now+1.5s, httpOnly, secure, partitioned, sameSite:'lax'}
		{"n", "v w;", cookie.Options{MaxAge: 1500 * time.Millisecond, Domain: "example.com", HTTPOnly: true, Secure: true, Partitioned: true, SameSite: http.SameSiteLaxMode, Now: clock},
			"n=v%20w%3B; Max-Age=1; Domain=example.com; Path=/; Expires=Wed, 02 Jan 2030 03:04:06 GMT; HttpOnly; Secure; Partitioned; SameSite=Lax"},
		// {expires:new Date(1), path:'/'}
		{"n", "", cookie.Options{Expires: time.UnixMilli(1)}, "n=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"},
		// {domain:'.Example.COM'} (plus our default Path)
		{"n", "v", cookie.Options{Domain: ".Example.COM", Path: "/"}, "n=v; Domain=.Example.COM; Path=/"},
		// {sameSite:'strict'} / {sameSite:'none', secure:true}, with path '/'
		{"n", "v", cookie.Options{SameSite: http.SameSiteStrictMode}, "n=v; Path=/; SameSite=Strict"},
		{"n", "v", cookie.Options{SameSite: http.SameSiteNoneMode, Secure: true}, "n=v; Path=/; Secure; SameSite=None"},
	}
	for _, tt := range tests {
		got, err := cookie.Serialize(tt.name, tt.value, tt.o)
		if err != nil || got != tt.want {
			t.Errorf("Serialize(%q, %q) =\n %q, %v\nwant\n %q", tt.name, tt.value, got, err, tt.want)
		}
	}
}

func TestNodeDomainRegexp(t *testing.T) {
	// cookie@0.7.2 serialize('n','v',{domain}) accepted (true) or threw.
	tests := map[string]bool{
		"example.com": true, ".example.com": true, "a-b.c": true, "-a.com": false,
		"a..b": false, "a_b.com": false, "localhost": true, "1.2.3.4": true,
		"xn--bcher-kva.de": true, "a.com.": false,
		// Not from the probe; follow from the same (case-insensitive) regexp.
		"EXAMPLE.com": true, "exa mple.com": false, "example.com;x": false,
		"a." + strings.Repeat("b", 63) + ".c": true, "a." + strings.Repeat("b", 64) + ".c": false,
	}
	for d, ok := range tests {
		_, err := cookie.Serialize("n", "v", cookie.Options{Domain: d})
		if (err == nil) != ok {
			t.Errorf("domain %q: err = %v, want accepted=%v", d, err, ok)
		}
	}
}
