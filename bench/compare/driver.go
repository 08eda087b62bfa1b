package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// results is a whole run, saved as JSON by -save and read by -report.
type results struct {
	Date     string             `json:"date"`
	Command  string             `json:"command"`
	Machine  map[string]string  `json:"machine"`
	Versions map[string]string  `json:"versions"`
	Rounds   int                `json:"rounds"`
	Duration string             `json:"duration"`
	Conns    int                `json:"conns"`
	Burst    int                `json:"burst"`
	HeapN    int                `json:"heap_n"`
	Rows     []row              `json:"rows"`
	Runs     []runResult        `json:"runs"`
	Checks   []checkResult      `json:"checks"`
	Heap     map[string]float64 `json:"heap_per_session"`
}

// runResult is one load of one row in one round.
type runResult struct {
	Row      string  `json:"row"`
	Round    int     `json:"round"`
	Workload string  `json:"workload"` // inc or new
	RPS      float64 `json:"rps"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	P50US    float64 `json:"p50_us"`
	P99US    float64 `json:"p99_us"`
	Seconds  float64 `json:"seconds"`
	// CPU seconds over the run: the server process, the database engines,
	// the load generator, and the whole machine (busy time of all CPUs).
	ServerCPU  float64 `json:"server_cpu"`
	EngineCPU  float64 `json:"engine_cpu"`
	LoaderCPU  float64 `json:"loader_cpu"`
	MachineCPU float64 `json:"machine_cpu"`
}

// otherShare is the share of the machine's CPU capacity that neither the
// server, the engines nor the load generator used during the run: what
// else was running.
func (r runResult) otherShare(cpus int) float64 {
	if r.Seconds <= 0 || cpus <= 0 {
		return 0
	}
	other := r.MachineCPU - r.ServerCPU - r.EngineCPU - r.LoaderCPU
	return max(0, other) / (r.Seconds * float64(cpus))
}

// checkResult is the lost-update check of one row in one round.
type checkResult struct {
	Row      string `json:"row"`
	Round    int    `json:"round"`
	Answered int    `json:"answered"`
	Lost     int    `json:"lost"`
}

type driver struct {
	f      flags
	root   string
	rows   []row
	load   *loader
	tmp    string
	runID  string
	rdb    *redis.Client
	pg     *pgx.Conn
	self   string
	prof   *regexp.Regexp
	ownTmp bool
}

func newDriver(ctx context.Context, f flags, root string, picked []row) (*driver, error) {
	d := &driver{f: f, root: root, rows: picked, runID: fmt.Sprintf("%d", os.Getpid())}
	var err error
	if d.self, err = os.Executable(); err != nil {
		return nil, err
	}
	if f.dir == "" {
		if d.tmp, err = os.MkdirTemp("", "galleta-compare-"); err != nil {
			return nil, err
		}
		d.ownTmp = true
	} else {
		d.tmp = f.dir
		if err := os.MkdirAll(d.tmp, 0o700); err != nil {
			return nil, err
		}
	}
	if d.load, err = newLoader(f.loader, d.tmp, f.threads); err != nil {
		d.close()
		return nil, err
	}
	for _, r := range picked {
		switch {
		case r.node() && d.nodeMissing() != "":
			d.close()
			return nil, fmt.Errorf("%s: %s (or leave the Express rows out with -only)", r.Name, d.nodeMissing())
		case r.Engine == "redis" && d.rdb == nil:
			opt, err := redis.ParseURL(f.redisURL)
			if err != nil {
				d.close()
				return nil, fmt.Errorf("-redis: %w", err)
			}
			d.rdb = redis.NewClient(opt)
			if err := d.rdb.Ping(ctx).Err(); err != nil {
				d.close()
				return nil, fmt.Errorf("%s: no Redis at %s (%v): start it, set REDIS_URL, or leave the Redis rows out with -only", r.Name, f.redisURL, err)
			}
		case r.Engine == "postgres" && d.pg == nil:
			if d.pg, err = pgx.Connect(ctx, f.pgURL); err != nil {
				d.close()
				return nil, fmt.Errorf("%s: no PostgreSQL at %s (%v): start it, set DATABASE_URL, or leave the PostgreSQL rows out with -only", r.Name, f.pgURL, err)
			}
		}
	}
	return d, nil
}

func (d *driver) close() {
	if d.rdb != nil {
		d.rdb.Close()
	}
	if d.pg != nil {
		d.pg.Close(context.Background())
	}
	if d.ownTmp {
		os.RemoveAll(d.tmp)
	}
}

func (d *driver) nodeDir() string { return filepath.Join(d.root, "bench", "compare", "node") }

func (d *driver) nodeMissing() string {
	if _, err := exec.LookPath("node"); err != nil {
		return "node is not installed"
	}
	if _, err := os.Stat(filepath.Join(d.nodeDir(), "node_modules", "express-session")); err != nil {
		return "the Node packages are missing: npm ci --prefix bench/compare/node"
	}
	return ""
}

func (d *driver) runAll(ctx context.Context) (*results, error) {
	res := &results{
		Date:     time.Now().UTC().Format("2006-01-02 15:04 MST"),
		Command:  "cd bench && go run ./compare " + strings.Join(os.Args[1:], " "),
		Machine:  machineInfo(ctx, d),
		Versions: versions(d),
		Rounds:   d.f.rounds,
		Duration: d.f.duration.String(),
		Conns:    d.f.conns,
		Burst:    d.f.burst,
		HeapN:    d.f.heapN,
		Rows:     d.rows,
		Heap:     map[string]float64{},
	}
	res.Command = strings.TrimSpace(res.Command)
	fmt.Printf("== %s, %s, %d rounds of %s per server and workload, %d connections, load: %s\n",
		res.Date, res.Machine["cpu"], d.f.rounds, d.f.duration, d.f.conns, d.load.name())
	for round := 1; round <= d.f.rounds; round++ {
		order := slices.Clone(d.rows)
		if round%2 == 0 {
			for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
				order[i], order[j] = order[j], order[i]
			}
		}
		fmt.Printf("== round %d of %d\n", round, d.f.rounds)
		for _, r := range order {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if err := d.runRow(ctx, res, r, round); err != nil {
				return nil, fmt.Errorf("%s, round %d: %w", r.Name, round, err)
			}
		}
	}
	return res, nil
}

// runRow runs one row's loads in one round.
func (d *driver) runRow(ctx context.Context, res *results, r row, round int) error {
	dir := ""
	if strings.HasPrefix(r.Engine, "file") {
		var err error
		if dir, err = os.MkdirTemp(d.tmp, r.Name+"-"); err != nil {
			return err
		}
		// The files of a row are removed, and the disk is given the
		// writes of the rows before, outside the measured time: the
		// discards and write-back of one row must not land in the next.
		syscall.Sync()
		defer func() {
			os.RemoveAll(dir)
			syscall.Sync()
		}()
	}
	if r.floor() {
		for _, w := range []string{"new"} {
			before, err := snap(os.Getpid())
			if err != nil {
				return err
			}
			t0 := time.Now()
			ops, err := fileFloor(ctx, dir, d.f.conns, d.f.duration, r.Engine == "file")
			if err != nil {
				return err
			}
			after, _ := snap(os.Getpid())
			rr := runResult{Row: r.Name, Round: round, Workload: w, RPS: ops, Seconds: time.Since(t0).Seconds(),
				ServerCPU: after.server - before.server, EngineCPU: after.engine - before.engine, MachineCPU: after.machine - before.machine}
			rr.Requests = int64(ops * rr.Seconds)
			res.Runs = append(res.Runs, rr)
			fmt.Printf("   %-22s %-4s %9.0f ops/s\n", r.Name, w, ops)
		}
		return nil
	}
	prefix := fmt.Sprintf("galleta-compare:%s:%s:%d:", d.runID, r.Name, round)
	schema := fmt.Sprintf("compare_%s_%s_%d", d.runID, strings.ReplaceAll(r.Name, "-", "_"), round)
	switch r.Engine {
	case "redis":
		defer d.unlinkPrefix(context.WithoutCancel(ctx), prefix)
	case "postgres":
		if _, err := d.pg.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
		defer d.pg.Exec(context.WithoutCancel(ctx), "DROP SCHEMA "+schema+" CASCADE")
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	var cmd *exec.Cmd
	if r.node() {
		cmd = exec.CommandContext(ctx, "node", "--expose-gc", filepath.Join(d.nodeDir(), "server.js"))
		store := r.Engine
		if strings.HasPrefix(store, "file") {
			store = "file"
		}
		cmd.Env = append(os.Environ(), "ADDR="+addr, "STORE="+store, "SECRET="+secret, "SESSION_DIR="+dir,
			"REDIS_URL="+d.f.redisURL, "REDIS_PREFIX="+prefix, "DATABASE_URL="+d.f.pgURL, "PG_SCHEMA="+schema)
	} else {
		cmd = exec.CommandContext(ctx, d.self, "-serve", r.Name, "-addr", addr, "-store-dir", dir,
			"-prefix", prefix, "-schema", schema, "-redis", d.f.redisURL, "-postgres", d.f.pgURL)
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	p, err := startProc(cmd, addr)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			p.stop()
		}
	}()
	if err := p.waitReady(ctx); err != nil {
		return err
	}
	cookie, err := newCookie(ctx, p.base)
	if err != nil {
		return err
	}
	if d.f.warmup > 0 {
		if _, err := d.load.run(ctx, p.base+"/inc", cookie, d.f.conns, d.f.warmup); err != nil {
			return err
		}
	}
	for _, w := range []string{"inc", "new"} {
		c := cookie
		if w == "new" {
			c = ""
		}
		var profDone chan error
		if d.prof != nil && d.prof.MatchString(r.Name) && !r.node() {
			profDone = make(chan error, 1)
			out := filepath.Join(d.tmp, fmt.Sprintf("%s-%s-r%d.pprof", r.Name, w, round))
			go func() { profDone <- fetchProfile(ctx, p.base, out, d.f.duration) }()
		}
		before, err := snap(p.cmd.Process.Pid)
		if err != nil {
			return err
		}
		t0 := time.Now()
		lr, err := d.load.run(ctx, p.base+"/"+w, c, d.f.conns, d.f.duration)
		if err != nil {
			return err
		}
		after, err := snap(p.cmd.Process.Pid)
		if err != nil {
			return err
		}
		rr := runResult{Row: r.Name, Round: round, Workload: w, RPS: lr.rps(), Requests: lr.Requests, Errors: lr.Errors,
			P50US: lr.P50US, P99US: lr.P99US, Seconds: time.Since(t0).Seconds(),
			ServerCPU: after.server - before.server, EngineCPU: after.engine - before.engine,
			LoaderCPU: lr.CPUSeconds, MachineCPU: after.machine - before.machine}
		res.Runs = append(res.Runs, rr)
		fmt.Printf("   %-22s %-4s %9.0f req/s  p50 %7.0f µs  p99 %7.0f µs  server %.3f CPU s/1k  errors %d  other CPU %.0f%%\n",
			r.Name, w, rr.RPS, rr.P50US, rr.P99US, perK(rr.ServerCPU, rr.Requests), rr.Errors, 100*rr.otherShare(runtime.NumCPU()))
		if profDone != nil {
			if err := <-profDone; err != nil {
				return fmt.Errorf("profile: %w", err)
			}
		}
	}
	if r.Lib != "plain" { // no session: nothing to lose
		answered, lost, err := lostUpdates(ctx, p.base, d.f.burst)
		if err != nil {
			return fmt.Errorf("lost-update check: %w", err)
		}
		res.Checks = append(res.Checks, checkResult{Row: r.Name, Round: round, Answered: answered, Lost: lost})
		fmt.Printf("   %-22s lost %d of %d increments answered 200\n", r.Name, lost, answered)
	}
	if round == 1 && r.Engine == "memory" && d.f.heapN > 0 {
		h, err := heapPerSession(ctx, p.base, d.f.heapN)
		if err != nil {
			return fmt.Errorf("heap per session: %w", err)
		}
		res.Heap[r.Name] = h
		fmt.Printf("   %-22s heap %.0f bytes per session at %d sessions\n", r.Name, h, d.f.heapN)
	}
	stopped = true
	return p.stop()
}

func perK(cpu float64, reqs int64) float64 {
	if reqs <= 0 {
		return 0
	}
	return cpu / float64(reqs) * 1000
}

// fetchProfile saves the server's CPU profile over d (the load's time).
func fetchProfile(ctx context.Context, base, out string, d time.Duration) error {
	secs := max(1, int(d/time.Second))
	code, body, _, err := get(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, secs), "")
	if err != nil {
		return err
	}
	if code != 200 {
		return fmt.Errorf("status %d: %s", code, body)
	}
	fmt.Printf("   CPU profile: go tool pprof -top %s\n", out)
	return os.WriteFile(out, []byte(body), 0o644)
}

// unlinkPrefix removes a row's Redis keys.
func (d *driver) unlinkPrefix(ctx context.Context, prefix string) {
	iter := d.rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 1000 {
			d.rdb.Unlink(ctx, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		d.rdb.Unlink(ctx, batch...)
	}
}

// machineInfo names what the figures were measured on.
func machineInfo(ctx context.Context, d *driver) map[string]string {
	m := map[string]string{"cpus": fmt.Sprint(runtime.NumCPU()), "os": runtime.GOOS + "/" + runtime.GOARCH, "go": runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m["kernel"] = strings.TrimSpace(string(b))
	}
	if out, err := exec.CommandContext(ctx, "node", "--version").Output(); err == nil {
		m["node"] = strings.TrimSpace(string(out))
	}
	if d.load.useWrk {
		out, _ := exec.CommandContext(ctx, "wrk", "--version").CombinedOutput()
		m["wrk"] = strings.Fields(string(out) + " ? ?")[1]
	}
	if d.rdb != nil {
		if info, err := d.rdb.Info(ctx, "server").Result(); err == nil {
			for _, l := range strings.Split(info, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(l), "redis_version:"); ok {
					m["redis"] = v
				}
			}
		}
	}
	if d.pg != nil {
		var v string
		if d.pg.QueryRow(ctx, "SHOW server_version").Scan(&v) == nil {
			m["postgres"] = v
		}
	}
	return m
}

// versions are the libraries' versions: the Go modules compiled into this
// binary and the Node packages pinned in node/package-lock.json.
func versions(d *driver) map[string]string {
	v := map[string]string{}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			switch m.Path {
			case "github.com/alexedwards/scs/v2", "github.com/alexedwards/scs/goredisstore", "github.com/alexedwards/scs/pgxstore",
				"github.com/gorilla/sessions", "github.com/redis/go-redis/v9", "github.com/jackc/pgx/v5":
				v[m.Path] = m.Version
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(d.nodeDir(), "package-lock.json"))
	if err == nil {
		var lock struct {
			Packages map[string]struct {
				Version string `json:"version"`
			} `json:"packages"`
		}
		if json.Unmarshal(b, &lock) == nil {
			for _, p := range []string{"express", "express-session", "session-file-store", "connect-redis", "redis", "connect-pg-simple", "pg"} {
				if e, ok := lock.Packages["node_modules/"+p]; ok {
					v["npm:"+p] = e.Version
				}
			}
		}
	}
	return v
}
