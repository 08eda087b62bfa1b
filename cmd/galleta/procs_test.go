package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// galletaBinary builds the program once per test binary, into a directory
// TestMain removes, and returns its path.
func galletaBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			built.err = fmt.Errorf("building the program needs the go command on PATH: %w", err)
			return
		}
		if built.dir, err = os.MkdirTemp("", "galleta-bin-"); err != nil {
			built.err = err
			return
		}
		bin := filepath.Join(built.dir, "galleta")
		if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %w\n%s", err, out)
			return
		}
		built.bin = bin
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// removeBinary removes what galletaBinary built (TestMain).
func removeBinary() {
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}

// server is a `galleta serve` process.
type server struct {
	cmd  *exec.Cmd
	url  string // http://127.0.0.1:port
	logs *logBuffer
	done chan struct{} // closed when the process has exited
}

// startServer starts `bin serve args...` on a port the kernel picks
// (--addr 127.0.0.1:0) and waits for the log line that says where it
// listens. The process is killed when the test ends if it still runs.
func startServer(t *testing.T, bin string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GALLETA_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = childAttr()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, logs: &logBuffer{}, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	up := make(chan string, 1)
	go func() { // ends when the process closes its stderr
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(s.logs, line)
			var rec struct{ Msg, URL string }
			if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec.Msg, "galleta: serving") {
				select {
				case up <- strings.TrimSuffix(rec.URL, "/"):
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			cmd.Process.Kill()
			<-s.done
		}
	})
	select {
	case s.url = <-up:
		return s
	case <-s.done:
		t.Fatalf("galleta serve exited at start:\n%s", s.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("galleta serve did not say where it listens in 30 s:\n%s", s.logs)
	}
	return nil
}

// stop sends SIGTERM and returns the exit code (-1: it did not exit in
// 30 s and was killed).
func (s *server) stop(t *testing.T) int {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return s.cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		return -1
	}
}

// Two `galleta serve` processes on one Redis (one server, then a
// three-primary cluster), same secret file and key prefix: see
// twoProcesses.
func TestTwoProcessesOnRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the program and starts processes: not in -short")
	}
	bin := galletaBinary(t)
	for _, name := range []string{"server", "cluster"} {
		t.Run(name, func(t *testing.T) {
			r := map[string]func(*testing.T) redisTarget{"server": redisServer, "cluster": redisCluster}[name](t)
			twoProcesses(t, bin, r.url, r.keys)
		})
	}
}

// twoProcesses starts two `galleta serve` processes on storeURL with the
// same secret file: a session created through one is read and updated
// through the other; 200 concurrent visits alternating between them on
// one cookie raise visits by exactly 200, and, since each answers the
// count it stored, the 200 answers are 200 distinct values; SIGTERM stops
// both with exit 0, and neither logged the session id. sessions counts
// what the store holds (keys or rows): one session at the end.
func twoProcesses(t *testing.T, bin, storeURL string, sessions func(*testing.T) int) {
	secret := filepath.Join(t.TempDir(), "galleta.secret")
	var srv [2]*server
	var wg sync.WaitGroup
	for i := range srv {
		wg.Go(func() { srv[i] = startServer(t, bin, "--store", storeURL, "--secret-file", secret) })
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	t0 := time.Now()
	c := client(t)
	if code, m := call(t, c, "POST", srv[0].url+"/api/login", `{"user":"ann"}`); code != 200 || m["user"] != "ann" {
		t.Fatalf("login through the first: %d %v", code, m)
	}
	if code, me := call(t, c, "GET", srv[1].url+"/api/me", ""); code != 200 || me["user"] != "ann" || me["visits"] != float64(0) {
		t.Fatalf("the second reads the session: %d %v", code, me)
	}
	if code, m := call(t, c, "POST", srv[1].url+"/api/visits", ""); code != 200 || m["visits"] != float64(1) {
		t.Fatalf("the second updates it: %d %v", code, m)
	}
	if code, me := call(t, c, "GET", srv[0].url+"/api/me", ""); code != 200 || me["visits"] != float64(1) {
		t.Fatalf("the first reads the update: %d %v", code, me)
	}
	id := cookieID(t, c, srv[0].url)
	cookie := "sid=" + jarValue(t, c, srv[0].url)

	const n = 200
	plain := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	defer plain.CloseIdleConnections()
	var (
		mu   sync.Mutex
		seen = map[int]int{}
		bad  []string
	)
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", srv[i%2].url+"/api/visits", nil)
			req.Header.Set("Cookie", cookie)
			resp, err := plain.Do(req)
			if err != nil {
				mu.Lock()
				bad = append(bad, err.Error())
				mu.Unlock()
				return
			}
			var m struct{ Visits int }
			err = json.NewDecoder(resp.Body).Decode(&m)
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			if resp.StatusCode != 200 || err != nil {
				bad = append(bad, fmt.Sprintf("server %d: %d %v", i%2, resp.StatusCode, err))
				return
			}
			seen[m.Visits]++
		})
	}
	wg.Wait()
	burst := time.Since(t0)
	for _, b := range bad {
		t.Error(b)
	}
	for v := 2; v <= n+1; v++ {
		if seen[v] != 1 {
			t.Errorf("%d answers carry visits=%d, want 1 (%d distinct values in %d answers)", seen[v], v, len(seen), n)
		}
	}
	for i := range srv {
		if code, me := call(t, c, "GET", srv[i].url+"/api/me", ""); code != 200 || me["visits"] != float64(n+1) {
			t.Errorf("server %d after %d concurrent visits: %d %v, want visits %d", i, n, code, me, n+1)
		}
	}
	if k := sessions(t); k != 1 {
		t.Errorf("the store holds %d sessions, want the one", k)
	}
	// Connections the burst opened but never used would hold the
	// shutdown for net/http's 5 seconds.
	plain.CloseIdleConnections()
	t1 := time.Now()
	for i := range srv {
		if code := srv[i].stop(t); code != 0 {
			t.Errorf("server %d exited %d on SIGTERM:\n%s", i, code, srv[i].logs)
		}
		l := srv[i].logs.String()
		if strings.Contains(l, id) {
			t.Errorf("server %d logged the session id", i)
		}
		if !strings.Contains(l, `"msg":"galleta: stopped"`) {
			t.Errorf("server %d did not log its clean stop:\n%s", i, l)
		}
	}
	t.Logf("%d concurrent visits over two processes in %v; both stopped in %v", n, burst.Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
}

// jarValue is the raw value of the client's sid cookie for rawURL.
func jarValue(t *testing.T, c *http.Client, rawURL string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", rawURL, nil)
	for _, ck := range c.Jar.Cookies(req.URL) {
		if ck.Name == "sid" {
			return ck.Value
		}
	}
	t.Fatal("no sid cookie")
	return ""
}
