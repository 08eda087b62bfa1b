package main

// The load: wrk when it is installed (a separate process, written in C, so
// the load costs the machine little), else this binary re-run as
// `compare -loadgen` (also a separate process). Both print one JSON line,
// loadResult, which the driver reads.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// loadResult is what one load run reports.
type loadResult struct {
	Requests   int64   `json:"requests"`
	DurationUS int64   `json:"duration_us"`
	Errors     int64   `json:"errors"` // socket errors, timeouts and non-2xx answers
	P50US      float64 `json:"p50_us"`
	P99US      float64 `json:"p99_us"`
	// CPUSeconds is the load generator's own CPU time (user+system).
	CPUSeconds float64 `json:"-"`
}

func (r loadResult) rps() float64 {
	if r.DurationUS <= 0 {
		return 0
	}
	return float64(r.Requests-r.Errors) / (float64(r.DurationUS) / 1e6)
}

// wrkScript sets the cookie (if any) and prints the result as JSON.
const wrkScript = `
local cookie = os.getenv("COMPARE_COOKIE")
if cookie ~= nil and cookie ~= "" then wrk.headers["Cookie"] = cookie end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
`

// loader runs one load against url for d with conns connections.
type loader struct {
	useWrk  bool
	self    string // this binary, for -loadgen
	threads int
	script  string // the wrk script's path
}

func newLoader(mode, tmp string, threads int) (*loader, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	l := &loader{self: self, threads: threads}
	_, werr := exec.LookPath("wrk")
	switch mode {
	case "wrk":
		if werr != nil {
			return nil, fmt.Errorf("-loader=wrk: wrk is not installed (apt-get install wrk), or use -loader=go")
		}
		l.useWrk = true
	case "auto":
		l.useWrk = werr == nil
	case "go":
	default:
		return nil, fmt.Errorf("-loader=%q: want auto, wrk or go", mode)
	}
	if l.useWrk {
		l.script = tmp + "/compare.lua"
		if err := os.WriteFile(l.script, []byte(wrkScript), 0o600); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func (l *loader) name() string {
	if l.useWrk {
		return "wrk"
	}
	return "compare -loadgen (Go)"
}

// run loads url for d over conns keep-alive connections, sending cookie
// (a "name=value" Cookie header) when it is not empty.
func (l *loader) run(ctx context.Context, url, cookie string, conns int, d time.Duration) (loadResult, error) {
	var cmd *exec.Cmd
	if l.useWrk {
		secs := max(1, int((d+time.Second/2)/time.Second))
		threads := min(l.threads, conns)
		// wrk's -d is whole seconds; shorter runs (the smoke test) use the
		// Go generator.
		if d < time.Second {
			cmd = exec.CommandContext(ctx, l.self, l.goArgs(url, conns, d)...)
		} else {
			cmd = exec.CommandContext(ctx, "wrk", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
				"-d", strconv.Itoa(secs)+"s", "--timeout", "10s", "-s", l.script, url)
		}
	} else {
		cmd = exec.CommandContext(ctx, l.self, l.goArgs(url, conns, d)...)
	}
	cmd.Env = append(os.Environ(), "COMPARE_COOKIE="+cookie)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return loadResult{}, fmt.Errorf("%s: %v: %s", cmd.Args[0], err, strings.TrimSpace(errb.String()))
	}
	var res loadResult
	found := false
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if line := sc.Bytes(); len(line) > 0 && line[0] == '{' {
			if err := json.Unmarshal(line, &res); err != nil {
				return loadResult{}, fmt.Errorf("%s printed %q: %v", cmd.Args[0], line, err)
			}
			found = true
		}
	}
	if !found {
		return loadResult{}, fmt.Errorf("%s printed no result: %s", cmd.Args[0], out.String())
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.CPUSeconds = tv(ru.Utime) + tv(ru.Stime)
	}
	return res, nil
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

func (l *loader) goArgs(url string, conns int, d time.Duration) []string {
	return []string{"-loadgen", "-url", url, "-conns", strconv.Itoa(conns), "-duration", d.String()}
}

// loadgen is `compare -loadgen`: conns goroutines, each with its own
// keep-alive connection, send GET url (with $COMPARE_COOKIE) until d has
// passed, then print the loadResult.
func loadgen(url string, conns int, d time.Duration) error {
	cookie := os.Getenv("COMPARE_COOKIE")
	var (
		reqs, errs atomic.Int64
		mu         sync.Mutex
		lat        []time.Duration
		wg         sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range conns {
		wg.Go(func() {
			tr := &http.Transport{MaxIdleConnsPerHost: 1, DialContext: (&net.Dialer{}).DialContext}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			req, _ := http.NewRequest("GET", url, nil)
			if cookie != "" {
				req.Header.Set("Cookie", cookie)
			}
			mine := make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) {
				t0 := time.Now()
				resp, err := c.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode/100 != 2 {
						err = errors.New(resp.Status)
					}
				}
				mine = append(mine, time.Since(t0))
				reqs.Add(1)
				if err != nil {
					errs.Add(1)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	el := time.Since(start)
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds())
	}
	b, err := json.Marshal(loadResult{Requests: reqs.Load(), DurationUS: el.Microseconds(), Errors: errs.Load(), P50US: pct(0.50), P99US: pct(0.99)})
	if err != nil {
		return err
	}
	fmt.Println(string(b))
	return nil
}

// client is the driver's own HTTP client (the lost-update check, the
// heap fill, /ready, /_heap), many connections per host.
var client = &http.Client{
	Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512},
	Timeout:   30 * time.Second,
}

// get does GET url with cookie and returns the status, the body and the
// "name=value" of the first Set-Cookie.
func get(ctx context.Context, url, cookie string) (int, string, string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, "", "", err
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	set := ""
	if cs := resp.Cookies(); len(cs) > 0 {
		set = cs[0].Name + "=" + cs[0].Value
	}
	return resp.StatusCode, string(body), set, err
}

// newCookie asks base/new for a session and returns its cookie.
func newCookie(ctx context.Context, base string) (string, error) {
	code, body, set, err := get(ctx, base+"/new", "")
	if err != nil {
		return "", err
	}
	if code != 200 || set == "" {
		return "", fmt.Errorf("GET /new: status %d, body %q, no cookie set", code, body)
	}
	return set, nil
}

// lostUpdates sends n concurrent increments on one new session's cookie,
// then one more, and returns how many of the increments answered 200 are
// missing from the counter that last one saw.
func lostUpdates(ctx context.Context, base string, n int) (answered, lost int, err error) {
	cookie, err := newCookie(ctx, base)
	if err != nil {
		return 0, 0, err
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	startGate := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-startGate
			if code, _, _, err := get(ctx, base+"/inc", cookie); err == nil && code == 200 {
				ok.Add(1)
			}
		})
	}
	close(startGate)
	wg.Wait()
	code, body, _, err := get(ctx, base+"/inc", cookie)
	if err != nil {
		return 0, 0, err
	}
	final, perr := strconv.Atoi(strings.TrimSpace(body))
	if code != 200 || perr != nil {
		return 0, 0, fmt.Errorf("GET /inc after the burst: status %d, body %q", code, body)
	}
	answered = int(ok.Load())
	return answered, answered - (final - 1), nil
}

// heapPerSession creates n sessions through base/new from 32 goroutines
// and returns the growth of the server's live heap per session.
func heapPerSession(ctx context.Context, base string, n int) (float64, error) {
	heap := func() (float64, error) {
		code, body, _, err := get(ctx, base+"/_heap", "")
		if err != nil {
			return 0, err
		}
		v, perr := strconv.ParseFloat(strings.TrimSpace(body), 64)
		if code != 200 || perr != nil {
			return 0, fmt.Errorf("GET /_heap: status %d, body %q", code, body)
		}
		return v, nil
	}
	before, err := heap()
	if err != nil {
		return 0, err
	}
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				code, _, _, err := get(ctx, base+"/new", "")
				if err == nil && code != 200 {
					err = fmt.Errorf("GET /new: status %d", code)
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	after, err := heap()
	if err != nil {
		return 0, err
	}
	return (after - before) / float64(n), nil
}
