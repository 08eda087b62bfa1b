package cookie_test

import (
	"testing"

	"github.com/galleta-go/galleta/cookie"
)

const benchHeader = "_ga=GA1.2.1234567890.1234567890; theme=dark; connect.sid=s%3ANliONGT-j0K42qnn8ZTsQFxAzwiaoKLm.oztZx3yMp%2B%2BDXqz6H%2FyUspWCS5r%2BH8mtYj8xa13aOtI; lang=en; csrf=abc123"

func BenchmarkSign(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		cookie.Sign("NliONGT-j0K42qnn8ZTsQFxAzwiaoKLm", "k1")
	}
}

func BenchmarkUnsign(b *testing.B) {
	s := cookie.Sign("NliONGT-j0K42qnn8ZTsQFxAzwiaoKLm", "k1")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := cookie.Unsign(s, "k1"); !ok {
			b.Fatal("rejected")
		}
	}
}

func BenchmarkGet(b *testing.B) {
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := cookie.Get(benchHeader, "lang"); !ok {
				b.Fatal("missing")
			}
		}
	})
	b.Run("decoded", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := cookie.Get(benchHeader, "connect.sid"); !ok {
				b.Fatal("missing")
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	b.Run("no-secrets", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			cookie.Parse(benchHeader)
		}
	})
	b.Run("secrets", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			cookie.Parse(benchHeader, "k2", "k1")
		}
	})
}
