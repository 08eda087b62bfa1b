package faultproxy

import (
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// echo serves an echo server on loopback until the test ends.
func echo(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, msg string, wait time.Duration) (string, error) {
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, len(msg))
	n, err := io.ReadFull(c, buf)
	return string(buf[:n]), err
}

func TestModes(t *testing.T) {
	before := runtime.NumGoroutine()
	p, err := Start(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := roundTrip(c, "pass", time.Second); err != nil || got != "pass" {
		t.Fatalf("Pass: %q, %v", got, err)
	}

	p.Set(Stall)
	if got, err := roundTrip(c, "held", 100*time.Millisecond); err == nil || got != "" {
		t.Fatalf("Stall forwarded: %q, %v", got, err)
	}
	c2, err := net.Dial("tcp", p.Addr()) // accepted while stalled
	if err != nil {
		t.Fatalf("Stall refused a connection: %v", err)
	}
	defer c2.Close()
	p.Set(Pass)
	c.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "held" {
		t.Fatalf("after Stall, Pass delivered %q, %v; want the held bytes", buf, err)
	}
	if got, err := roundTrip(c2, "late", time.Second); err != nil || got != "late" {
		t.Fatalf("connection accepted while stalled, after Pass: %q, %v", got, err)
	}

	p.Set(Cut)
	if _, err := roundTrip(c, "x", time.Second); err == nil {
		t.Fatal("Cut: an open connection still works")
	}
	if c3, err := net.Dial("tcp", p.Addr()); err == nil {
		if _, err := roundTrip(c3, "y", time.Second); err == nil {
			t.Fatal("Cut: a new connection works")
		}
		c3.Close()
	}
	if n := p.Conns(); n != 0 {
		t.Errorf("Cut left %d proxied connections", n)
	}
	p.Set(Pass)
	c4, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := roundTrip(c4, "back", time.Second); err != nil || got != "back" {
		t.Fatalf("Pass after Cut: %q, %v", got, err)
	}
	c4.Close()
	p.Set(Stall)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	// Every goroutine of the proxy has ended (the echo server's end with
	// the test).
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before+1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+1 {
		t.Errorf("%d goroutines after Close, %d before (+1 for the echo server)", n, before)
	}
}
