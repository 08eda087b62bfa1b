// Command compare races galleta against Express (express-session and its
// stores) and the Go session libraries (scs, gorilla/sessions) over HTTP,
// on this machine, in one run, with the same two handlers everywhere:
//
//	/new  stores a new session holding one value
//	/inc  reads and increments a counter in the session of the cookie sent
//
// Each server runs in a process of its own on loopback and is driven by
// another process (wrk when installed, else this binary as a load
// generator) with keep-alive connections for a fixed time; the rounds
// alternate the order of the servers (forward, then reverse). For each
// server and workload it reports requests per second, p50 and p99
// latency, the server's CPU seconds per 1,000 requests, the database
// engine's, the updates lost when 200 increments of one session overlap,
// and (memory stores) the heap per stored session. Every galleta figure
// is also a ratio to its peers and to the plain net/http ceiling of the
// same round; the file stores stand beside a bare floor (the same system
// calls by hand in the same directory) of the same round.
//
//	cd bench && go run ./compare                 # 3 rounds of 5 s, writes BENCHMARKS.md and docs/compare.svg
//	cd bench && go run ./compare -smoke          # what CI runs: every server briefly, checks, writes nothing
//	cd bench && go run ./compare -report r.json  # the report again from a saved run
//
// Needs Node.js with `npm ci --prefix bench/compare/node` for the Express
// rows, Redis ($REDIS_URL) and PostgreSQL ($DATABASE_URL) on loopback for
// theirs; -only picks rows.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// row is one server (or floor) of the comparison.
type row struct {
	Name   string `json:"name"`   // galleta-memory, express-file, floor-file ...
	Lib    string `json:"lib"`    // plain, galleta, scs, gorilla, express, floor
	Engine string `json:"engine"` // none, memory, file, file-nofsync, redis, postgres
}

func (r row) node() bool  { return r.Lib == "express" }
func (r row) floor() bool { return r.Lib == "floor" }

var rows = []row{
	{"plain", "plain", "none"},
	{"galleta-memory", "galleta", "memory"},
	{"scs-memory", "scs", "memory"},
	{"express-memory", "express", "memory"},
	{"galleta-file", "galleta", "file"},
	{"galleta-file-nofsync", "galleta", "file-nofsync"},
	{"gorilla-file", "gorilla", "file-nofsync"},
	{"express-file", "express", "file"},
	{"floor-file", "floor", "file"},
	{"floor-file-nofsync", "floor", "file-nofsync"},
	{"galleta-redis", "galleta", "redis"},
	{"scs-redis", "scs", "redis"},
	{"express-redis", "express", "redis"},
	{"galleta-postgres", "galleta", "postgres"},
	{"scs-postgres", "scs", "postgres"},
	{"express-postgres", "express", "postgres"},
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

type flags struct {
	rounds   int
	duration time.Duration
	warmup   time.Duration
	conns    int
	threads  int
	burst    int
	heapN    int
	only     string
	loader   string
	dir      string
	redisURL string
	pgURL    string
	smoke    bool
	write    bool
	save     string
	report   string
	profile  string
}

func run() error {
	var f flags
	var sc serverConfig
	var serveKind, url string
	var loadgenMode bool
	flag.IntVar(&f.rounds, "rounds", 3, "rounds; each runs every server once, alternately forward and in reverse")
	flag.DurationVar(&f.duration, "duration", 5*time.Second, "load time per server and workload")
	flag.DurationVar(&f.warmup, "warmup", time.Second, "unmeasured load before each server's runs")
	flag.IntVar(&f.conns, "conns", 32, "keep-alive connections of the load")
	flag.IntVar(&f.threads, "threads", 2, "wrk threads")
	flag.IntVar(&f.burst, "burst", 200, "concurrent increments on one session in the lost-update check")
	flag.IntVar(&f.heapN, "heap", 100000, "sessions created to measure the heap per session (memory stores; 0: skip)")
	flag.StringVar(&f.only, "only", "", "regexp: run only the rows whose name matches (the report needs them all)")
	flag.StringVar(&f.loader, "loader", "auto", "load generator: auto (wrk when installed), wrk or go")
	flag.StringVar(&f.dir, "dir", "", "directory for the file stores' directories (default: a new one in $TMPDIR)")
	flag.StringVar(&f.redisURL, "redis", envOr("REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis for the Redis rows")
	flag.StringVar(&f.pgURL, "postgres", envOr("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"), "PostgreSQL for the PostgreSQL rows")
	flag.BoolVar(&f.smoke, "smoke", false, "CI's check: one short round of every row, galleta must lose nothing and fail no request; writes nothing")
	flag.BoolVar(&f.write, "write", true, "write the report into BENCHMARKS.md (between its compare markers) and docs/compare.svg")
	flag.StringVar(&f.save, "save", "", "also save the run's figures as JSON in this file (for -report)")
	flag.StringVar(&f.report, "report", "", "make the report from this saved JSON instead of running")
	flag.StringVar(&f.profile, "profile", "", "regexp: save a CPU profile of the matching Go servers under the /inc and /new loads (in -dir)")
	// The modes this binary runs in its child processes.
	flag.StringVar(&serveKind, "serve", "", "(child) run this Go server")
	flag.StringVar(&sc.addr, "addr", "", "(child) -serve: listen address")
	flag.StringVar(&sc.dir, "store-dir", "", "(child) -serve: file store directory")
	flag.StringVar(&sc.prefix, "prefix", "", "(child) -serve: Redis key prefix")
	flag.StringVar(&sc.schema, "schema", "", "(child) -serve: PostgreSQL schema")
	flag.BoolVar(&loadgenMode, "loadgen", false, "(child) run the Go load generator")
	flag.StringVar(&url, "url", "", "(child) -loadgen: URL")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags only; see -h)", flag.Arg(0))
	}
	switch {
	case serveKind != "":
		sc.kind, sc.redisURL, sc.pgURL = serveKind, f.redisURL, f.pgURL
		return serve(sc)
	case loadgenMode:
		return loadgen(url, f.conns, f.duration)
	}

	root, err := repoRoot()
	if err != nil {
		return err
	}
	if f.report != "" {
		b, err := os.ReadFile(f.report)
		if err != nil {
			return err
		}
		var res results
		if err := json.Unmarshal(b, &res); err != nil {
			return fmt.Errorf("%s: %w", f.report, err)
		}
		return publish(root, &res, f.write)
	}
	if f.smoke {
		f.rounds, f.duration, f.warmup, f.write = 1, 300*time.Millisecond, 100*time.Millisecond, false
		f.heapN = min(f.heapN, 2000)
	}
	if f.rounds < 1 || f.duration <= 0 || f.conns < 1 || f.burst < 1 {
		return errors.New("-rounds, -duration, -conns and -burst must be positive")
	}
	picked := rows
	if f.only != "" {
		re, err := regexp.Compile(f.only)
		if err != nil {
			return fmt.Errorf("-only: %w", err)
		}
		picked = slices.DeleteFunc(slices.Clone(rows), func(r row) bool { return !re.MatchString(r.Name) })
		if len(picked) == 0 {
			return fmt.Errorf("-only=%q matches no row (rows: %s)", f.only, rowNames())
		}
	}
	var profRe *regexp.Regexp
	if f.profile != "" {
		if profRe, err = regexp.Compile(f.profile); err != nil {
			return fmt.Errorf("-profile: %w", err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, err := newDriver(ctx, f, root, picked)
	if err != nil {
		return err
	}
	defer d.close()
	d.prof = profRe
	res, err := d.runAll(ctx)
	if err != nil {
		return err
	}
	if f.save != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(f.save, b, 0o644); err != nil {
			return err
		}
	}
	if f.smoke {
		return smokeCheck(res)
	}
	if len(picked) != len(rows) {
		fmt.Println(markdown(res))
		fmt.Println("(a partial run: BENCHMARKS.md and docs/compare.svg are left alone)")
		return nil
	}
	return publish(root, res, f.write)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func rowNames() string {
	var s []string
	for _, r := range rows {
		s = append(s, r.Name)
	}
	return strings.Join(s, ", ")
}

// repoRoot is the galleta checkout this runs in: the first directory up
// from the working directory that holds BENCHMARKS.md and bench/compare.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "bench", "compare", "node", "server.js")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run this inside a galleta checkout (cd bench && go run ./compare)")
		}
		dir = parent
	}
}

// freeAddr is a loopback address with a port nothing listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// proc is a running server.
type proc struct {
	cmd    *exec.Cmd
	base   string // http://addr
	stderr *safeBuf
	exited chan struct{}
}

// waitReady polls /ready until it answers 200, the process exits or 60 s
// pass.
func (p *proc) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		code, _, _, err := get(rctx, p.base+"/ready", "")
		cancel()
		if err == nil && code == 200 {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("exited before it was ready: %s", strings.TrimSpace(p.stderr.String()))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after 60 s (last: %v, status %d): %s", err, code, p.stderr.String())
		}
	}
}

// stop sends SIGTERM and waits up to 10 s, then kills.
func (p *proc) stop() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("did not stop within 10 s of SIGTERM")
	}
	if st := p.cmd.ProcessState; st != nil && !st.Success() {
		return fmt.Errorf("exited with %v: %s", st, strings.TrimSpace(p.stderr.String()))
	}
	return nil
}

// safeBuf holds the start of a child's stderr, read while the child runs.
type safeBuf struct {
	mu sync.Mutex
	b  []byte
}

func (s *safeBuf) Write(p []byte) {
	s.mu.Lock()
	s.b = append(s.b, p...)
	s.mu.Unlock()
}

func (s *safeBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

func startProc(cmd *exec.Cmd, addr string) (*proc, error) {
	p := &proc{cmd: cmd, base: "http://" + addr, stderr: &safeBuf{}, exited: make(chan struct{})}
	pr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		// The first 4 KB of stderr explain a failed start; the rest is
		// drained so the child never blocks on a full pipe.
		buf := make([]byte, 4096)
		n, _ := io.ReadFull(pr, buf)
		p.stderr.Write(buf[:n])
		io.Copy(io.Discard, pr)
		cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}
