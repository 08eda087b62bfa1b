// Package testenv holds the one rule the test harnesses (testredis,
// testpg, nodecheck) apply when a backend a test needs is missing: outside
// CI the test is skipped with a message that says what is missing and how
// to provide it; with CI=true it fails, so a CI run cannot pass by
// skipping what it was meant to check.
package testenv

import (
	"os"
	"testing"
)

// Missing ends a test whose backend is missing: a skip outside CI, a
// failure with CI=true. what says what is missing and how to provide it.
func Missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and a test backend is missing: %s", what)
	}
	t.Skipf("skipped, a test backend is missing: %s", what)
}
