package store

import (
	"strings"
	"testing"
)

func TestValidID(t *testing.T) {
	good := []string{"a", "NliONGT-j0K42qnn8ZTsQFxAzwiaoKLm", "A_b-9", strings.Repeat("z", MaxIDLen)}
	bad := []string{"", "../x", "a/b", "..", ".", "a\x00b", `a\b`, "/abs", `C:\x`, "a.b", "a b", "é", "sess:*", strings.Repeat("z", MaxIDLen+1)}
	for _, id := range good {
		if !ValidID(id) {
			t.Errorf("ValidID(%q) = false", id)
		}
	}
	for _, id := range bad {
		if ValidID(id) {
			t.Errorf("ValidID(%q) = true", id)
		}
	}
}

func FuzzValidID(f *testing.F) {
	f.Add("NliONGT-j0K42qnn8ZTsQFxAzwiaoKLm")
	f.Add("../etc/passwd")
	f.Fuzz(func(t *testing.T, id string) {
		if !ValidID(id) {
			return
		}
		if strings.ContainsAny(id, "./\\\x00:* ") || len(id) > MaxIDLen || id == "" {
			t.Fatalf("ValidID accepted %q", id)
		}
	})
}
