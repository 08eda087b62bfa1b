package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// harness builds the galleta binary once and starts it as a child process,
// keeping every run's log so a failing test can show it.
type harness struct {
	bin string // the built galleta binary
	dir string // working directory of the server processes

	mu   sync.Mutex
	logs []*serverLog
}

// serverLog is the combined stdout and stderr of one server process.
type serverLog struct {
	name string
	mu   sync.Mutex
	buf  bytes.Buffer
}

func (l *serverLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *serverLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// newHarness builds ./cmd/galleta from the repository root (the parent of
// this module) into a temporary directory. On failure, every server log is
// written to the test log.
func newHarness(t *testing.T) *harness {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	h := &harness{bin: filepath.Join(tmp, "galleta"), dir: filepath.Join(tmp, "work")}
	if err := os.Mkdir(h.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", h.bin, "./cmd/galleta")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/galleta in %s: %v\n%s", root, err, out)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, l := range h.logs {
			t.Logf("---- server log: %s ----\n%s", l.name, l.String())
		}
	})
	return h
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startServer runs `galleta serve --addr addr args...` in the harness's
// working directory and waits until /healthz answers 200. The returned func
// stops the server with SIGTERM and asserts a graceful exit (code 0); it
// kills the process when it does not exit in time. The stop func is also
// registered as a cleanup, and does nothing the second time.
func (h *harness) startServer(t *testing.T, addr string, args ...string) (stop func()) {
	t.Helper()
	h.mu.Lock()
	log := &serverLog{name: fmt.Sprintf("#%d serve --addr %s %v", len(h.logs)+1, addr, args)}
	h.logs = append(h.logs, log)
	h.mu.Unlock()

	cmd := exec.Command(h.bin, append([]string{"serve", "--addr", addr}, args...)...)
	cmd.Dir = h.dir
	// TZ=UTC makes the times the pages show predictable to parse.
	cmd.Env = append(os.Environ(), "TZ=UTC")
	cmd.Stdout = log
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start galleta: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()

	var once sync.Once
	stop = func() {
		once.Do(func() {
			t.Helper()
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
				t.Errorf("send SIGTERM to galleta (%s): %v", log.name, err)
			}
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				<-exited
				t.Errorf("galleta (%s) did not exit within 15s of SIGTERM; killed it", log.name)
				return
			}
			if code := cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("galleta (%s) exited with code %d after SIGTERM (%v), want 0: no graceful shutdown", log.name, code, waitErr)
			}
		})
	}
	t.Cleanup(stop)

	// Poll /healthz until it answers 200, the process dies, or the deadline.
	client := &http.Client{Timeout: time.Second}
	url := "http://" + addr + "/healthz"
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for {
		select {
		case <-exited:
			t.Fatalf("galleta (%s) exited before answering /healthz: %v\n%s", log.name, waitErr, log.String())
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return stop
			}
			last = strconv.Itoa(resp.StatusCode) + " " + string(body)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("galleta (%s) did not answer %s with 200 within 20s; last: %s", log.name, url, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitPortFree waits until addr accepts a new listener again, for a restart
// on the same port.
func waitPortFree(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %s still busy after the server stopped: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
