package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestProgressOutput(t *testing.T) {
	var plain bytes.Buffer
	p := newProgress(&plain, 10)
	p.update(1)
	p.done(10)
	lines := strings.Split(strings.TrimSpace(plain.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "migrate: 10/10 sessions") || !strings.Contains(lines[1], "/s, eta") {
		t.Fatalf("plain progress: %q", plain.String())
	}
	var tty bytes.Buffer
	p = newProgress(&tty, 4)
	p.tty = true
	p.update(2)
	p.done(4)
	out := tty.String()
	if !strings.Contains(out, "\r[###############...............] 2/4") || !strings.Contains(out, "\r[##############################] 4/4") || !strings.HasSuffix(out, "\n") || !strings.Contains(out, "eta") {
		t.Fatalf("terminal progress: %q", out)
	}
}
