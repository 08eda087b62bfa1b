package testenv

import (
	"strings"
	"testing"
)

// ending records how Missing ends a test instead of ending it.
type ending struct {
	testing.TB
	how, msg string
}

func (e *ending) Helper() {}
func (e *ending) Fatalf(format string, args ...any) {
	e.how, e.msg = "fail", format
}
func (e *ending) Skipf(format string, args ...any) {
	if e.how == "" {
		e.how, e.msg = "skip", format
	}
}

// Outside CI a missing backend skips; with CI=true it fails.
func TestMissing(t *testing.T) {
	for _, tc := range []struct{ ci, want string }{{"", "skip"}, {"false", "skip"}, {"true", "fail"}} {
		t.Setenv("CI", tc.ci)
		e := &ending{TB: t}
		Missing(e, "Redis")
		if e.how != tc.want || !strings.Contains(e.msg, "backend is missing") {
			t.Errorf("CI=%q: Missing ended the test by %q (%q), want %s", tc.ci, e.how, e.msg, tc.want)
		}
	}
}
