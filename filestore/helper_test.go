package filestore

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// childEnv names the child process to run: the test binary re-executes
// itself with GALLETA_FILESTORE_CHILD=<mode> to get a second process that
// opens the same directory (crash loop, cross-process updates).
const childEnv = "GALLETA_FILESTORE_CHILD"

// TestMain runs the tests normally, or, when childEnv is set, one of the
// child programs instead (and exits with its status).
func TestMain(m *testing.M) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		os.Exit(m.Run())
	}
	var err error
	switch mode {
	case "crashwriter":
		err = childCrashWriter()
	case "counter":
		err = childCounter()
	default:
		err = fmt.Errorf("unknown child mode %q", mode)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "child %s: %v\n", mode, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// childLogger discards the store's log lines in children and verifiers.
func childLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// childLine writes one line to stdout in a single write(2), unbuffered, so
// a line the parent reads was complete before the child was killed.
func childLine(format string, args ...any) error {
	_, err := os.Stdout.Write(fmt.Appendf(nil, format+"\n", args...))
	return err
}

// child is a running child process started by startChild.
type child struct {
	mode   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer // read only after exited is closed

	mu      sync.Mutex
	lines   []string      // complete stdout lines so far
	newLine chan struct{} // signalled (cap 1) after each line
	eof     chan struct{} // closed when stdout reached EOF

	exited  chan struct{} // closed when the process was waited for
	waitErr error         // set before exited is closed
}

// startChild re-executes the test binary as child mode with the extra
// environment env. The child is killed and waited for in t.Cleanup.
func startChild(t testing.TB, mode string, env ...string) *child {
	t.Helper()
	c := &child{
		mode:    mode,
		newLine: make(chan struct{}, 1),
		eof:     make(chan struct{}),
		exited:  make(chan struct{}),
	}
	c.cmd = exec.Command(os.Args[0])
	c.cmd.Env = append(append(os.Environ(), childEnv+"="+mode), env...)
	c.cmd.Stderr = &c.stderr
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start child %s: %v", mode, err)
	}
	go func() {
		defer close(c.eof)
		r := bufio.NewReader(stdout)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return // a last line without '\n' is not complete: dropped
			}
			c.mu.Lock()
			c.lines = append(c.lines, strings.TrimSuffix(line, "\n"))
			c.mu.Unlock()
			select {
			case c.newLine <- struct{}{}:
			default:
			}
		}
	}()
	go func() {
		<-c.eof // Wait closes the pipe: read it to the end first
		c.waitErr = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(c.kill)
	return c
}

// kill sends SIGKILL (when the child still runs) and waits for it.
func (c *child) kill() {
	select {
	case <-c.exited:
		return
	default:
	}
	c.cmd.Process.Kill()
	c.stdin.Close()
	<-c.exited
}

// output returns the complete stdout lines read so far.
func (c *child) output() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

// waitLine waits until a stdout line starts with prefix and returns it. ok
// is false when the child ended or the timeout passed first.
func (c *child) waitLine(prefix string, timeout time.Duration) (line string, ok bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		c.mu.Lock()
		for ; seen < len(c.lines); seen++ {
			if strings.HasPrefix(c.lines[seen], prefix) {
				l := c.lines[seen]
				c.mu.Unlock()
				return l, true
			}
		}
		c.mu.Unlock()
		select {
		case <-c.newLine:
		case <-c.eof:
			c.mu.Lock()
			n := len(c.lines)
			c.mu.Unlock()
			if seen == n {
				return "", false
			}
		case <-deadline.C:
			return "", false
		}
	}
}

// describe tells how the child ended, with its stderr, for a failure
// message. Call only after exited is closed.
func (c *child) describe() string {
	return fmt.Sprintf("child %s (pid %d): %v; stderr: %q", c.mode, c.cmd.Process.Pid, c.waitErr, clipString(c.stderr.String(), 2000))
}

func clipString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
