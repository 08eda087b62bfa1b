package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Servers starting together with a new secret file all end up with the
// one secret that was written, and none sees a partial file.
func TestLoadSecretConcurrentCreation(t *testing.T) {
	dir := t.TempDir()
	for round := range 100 {
		path := filepath.Join(dir, fmt.Sprintf("round%d", round), "s.secret")
		var wg sync.WaitGroup
		var mu sync.Mutex
		secrets := map[string]int{}
		created := 0
		for range 8 {
			wg.Go(func() {
				s, c, err := loadSecret(path)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("round %d: %v", round, err)
					return
				}
				secrets[s]++
				if c {
					created++
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		if len(secrets) != 1 || created != 1 {
			t.Fatalf("round %d: %d distinct secrets, %d creators; want 1 and 1", round, len(secrets), created)
		}
		entries, _ := os.ReadDir(filepath.Dir(path))
		if len(entries) != 1 {
			t.Fatalf("round %d: the directory holds %d files, want only the secret (temporary files left?)", round, len(entries))
		}
	}
}

// The same across processes: the test binary re-runs itself as children
// that each load the secret and print it.
func TestLoadSecretConcurrentProcesses(t *testing.T) {
	if path := os.Getenv("GALLETA_TEST_SECRET_CHILD"); path != "" {
		s, _, err := loadSecret(path)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("secret:", s)
		return
	}
	dir := t.TempDir()
	if testing.Short() {
		t.Skip("starts a dozen processes")
	}
	for round := range 2 {
		path := filepath.Join(dir, fmt.Sprint(round), "s.secret")
		var wg sync.WaitGroup
		outs := make([]string, 6)
		for i := range outs {
			wg.Go(func() {
				cmd := exec.Command(os.Args[0], "-test.run=^TestLoadSecretConcurrentProcesses$", "-test.count=1")
				cmd.Env = append(os.Environ(), "GALLETA_TEST_SECRET_CHILD="+path)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Errorf("child: %v\n%s", err, out)
				}
				outs[i] = string(out)
			})
		}
		wg.Wait()
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, out := range outs {
			if !strings.Contains(out, "secret: "+strings.TrimSpace(string(want))+"\n") {
				t.Fatalf("round %d: a child did not load the file's secret %q:\n%s", round, want, out)
			}
		}
	}
}

// A secret file left empty (by a crash of an older version between create
// and write) is an error that says what to do.
func TestLoadSecretEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.secret")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := loadSecret(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "is empty") || !strings.Contains(err.Error(), "delete it") {
		t.Fatalf("empty secret file: %v", err)
	}
	os.Remove(path)
	s, created, err := loadSecret(path)
	if err != nil || !created || len(s) < 32 {
		t.Fatalf("after deleting it: %q %v %v", s, created, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file mode: %v %v", fi, err)
	}
}
