package main

import (
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCounterServes starts the example the way the README does and checks
// the counter rises for a client with a cookie jar.
func TestCounterServes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	done := make(chan error, 1)
	go func() { done <- run(addr) }()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	var body string
	deadline := time.Now().Add(5 * time.Second)
	for i := 1; i <= 3; i++ {
		resp, err := c.Get("http://" + addr + "/")
		if err != nil {
			if time.Now().Before(deadline) {
				i--
				time.Sleep(20 * time.Millisecond) // waiting for the listener, not an assertion
				continue
			}
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
	}
	if !strings.Contains(body, "visited this page 3 time(s)") {
		t.Fatalf("third visit: %s", body)
	}
	syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop on SIGTERM")
	}
}
