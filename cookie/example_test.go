package cookie_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/galleta-go/galleta/cookie"
)

func ExampleSign() {
	fmt.Println(cookie.Sign("abc", "secret"))
	// Output: abc.mUba1OAOkT/Ivo5dP34RCkqegy+D+wnDRShdeGONig4
}

func ExampleUnsign() {
	signed := cookie.Sign("user-42", "old-key")
	// Rotation: new cookies are signed with "new-key", old ones still verify.
	v, ok := cookie.Unsign(signed, "new-key", "old-key")
	fmt.Println(v, ok)
	_, ok = cookie.Unsign(signed+"x", "new-key", "old-key")
	fmt.Println(ok)
	// Output:
	// user-42 true
	// false
}

func ExampleParse() {
	header := `connect.sid=s%3ANliONGT-j0K42qnn8ZTsQFxAzwiaoKLm.oztZx3yMp%2B%2BDXqz6H%2FyUspWCS5r%2BH8mtYj8xa13aOtI; theme="dark"; prefs=j%3A%7B%22lang%22%3A%22fr%22%7D; theme=light`
	jar := cookie.Parse(header, "k1")

	sid, ok := jar.Signed("connect.sid")
	fmt.Println(sid, ok)
	theme, _ := jar.Plain("theme") // the first "theme" wins
	fmt.Println(theme)
	var prefs struct{ Lang string }
	err := jar.DecodeJSON("prefs", &prefs)
	fmt.Println(prefs.Lang, err)
	// Output:
	// NliONGT-j0K42qnn8ZTsQFxAzwiaoKLm true
	// dark
	// fr <nil>
}

func ExampleSerialize() {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s, err := cookie.Serialize("theme", "dark blue", cookie.Options{
		MaxAge:   24 * time.Hour,
		HTTPOnly: true,
		Secure:   true,
		SameSite: http.SameSiteLaxMode,
		Now:      func() time.Time { return now },
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(s)
	_, err = cookie.Serialize("a;Max-Age=9", "x", cookie.Options{})
	fmt.Println(err)
	// Output:
	// theme=dark%20blue; Max-Age=86400; Path=/; Expires=Thu, 03 Jan 2030 03:04:05 GMT; HttpOnly; Secure; SameSite=Lax
	// cookie "a;Max-Age=9": name must be a non-empty HTTP token (letters, digits and !#$%&'*+-.^_`|~; no spaces, '=', ';' or quotes): cookie: invalid name
}

func ExampleSetSigned() {
	w := httptest.NewRecorder()
	err := cookie.SetSigned(w.Header(), "connect.sid", "NliONGT-j0K42qnn8ZTsQFxAzwiaoKLm", "k1", cookie.Options{HTTPOnly: true})
	fmt.Println(err)
	fmt.Println(w.Header().Get("Set-Cookie"))
	// Output:
	// <nil>
	// connect.sid=s%3ANliONGT-j0K42qnn8ZTsQFxAzwiaoKLm.oztZx3yMp%2B%2BDXqz6H%2FyUspWCS5r%2BH8mtYj8xa13aOtI; Path=/; HttpOnly
}
