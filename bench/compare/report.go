package main

// The report: a Markdown section for BENCHMARKS.md (between its
// <!-- compare:begin --> and <!-- compare:end --> lines), an SVG chart for
// the README, and the checks of -smoke.

import (
	"errors"
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const (
	beginMarker = "<!-- compare:begin -->"
	endMarker   = "<!-- compare:end -->"
)

// goal is one of the targets: num's figure over den's, both from
// the same round, at least min (in the median of the rounds, or in every
// round when every is set).
type goal struct {
	num, den string
	workload string
	min      float64
	every    bool
	denFloor bool
}

var goals = []goal{
	{num: "galleta-memory", den: "scs-memory", workload: "inc", min: 1.5},
	{num: "galleta-memory", den: "plain", workload: "inc", min: 0.6},
	{num: "galleta-memory", den: "scs-memory", workload: "new", min: 1.3},
	{num: "galleta-file", den: "gorilla-file", workload: "inc", min: 3, every: true},
	{num: "galleta-file", den: "floor-file", workload: "new", min: 0.6, denFloor: true},
	{num: "galleta-file-nofsync", den: "floor-file-nofsync", workload: "new", min: 0.6, denFloor: true},
	{num: "galleta-file-nofsync", den: "gorilla-file", workload: "new", min: 1},
	{num: "galleta-redis", den: "scs-redis", workload: "inc", min: 1.3},
	{num: "galleta-redis", den: "scs-redis", workload: "new", min: 1.3},
	{num: "galleta-redis", den: "express-redis", workload: "inc", min: 3},
	{num: "galleta-redis", den: "express-redis", workload: "new", min: 3},
	{num: "galleta-postgres", den: "scs-postgres", workload: "inc", min: 1.3},
	{num: "galleta-postgres", den: "scs-postgres", workload: "new", min: 1.3},
	{num: "galleta-postgres", den: "express-postgres", workload: "inc", min: 3},
	{num: "galleta-postgres", den: "express-postgres", workload: "new", min: 3},
}

// find returns the run of row/workload in round.
func (res *results) find(rowName, workload string, round int) (runResult, bool) {
	for _, r := range res.Runs {
		if r.Row == rowName && r.Workload == workload && r.Round == round {
			return r, true
		}
	}
	return runResult{}, false
}

// series is a figure of row/workload in every round (rounds it lacks are
// left out).
func (res *results) series(rowName, workload string, f func(runResult) float64) []float64 {
	var v []float64
	for round := 1; round <= res.Rounds; round++ {
		if r, ok := res.find(rowName, workload, round); ok {
			v = append(v, f(r))
		}
	}
	return v
}

// ratios is num/den of the same round, for every round that has both.
func (res *results) ratios(num, den, workload string) []float64 {
	var v []float64
	for round := 1; round <= res.Rounds; round++ {
		a, ok1 := res.find(num, workload, round)
		b, ok2 := res.find(den, workload, round)
		if ok1 && ok2 && b.RPS > 0 {
			v = append(v, a.RPS/b.RPS)
		}
	}
	return v
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// lost is the row's lost increments per round.
func (res *results) lost(rowName string) []checkResult {
	var v []checkResult
	for _, c := range res.Checks {
		if c.Row == rowName {
			v = append(v, c)
		}
	}
	return v
}

func (res *results) rowByName(name string) (row, bool) {
	for _, r := range res.Rows {
		if r.Name == name {
			return r, true
		}
	}
	return row{}, false
}

// thousands formats n with comma separators, no decimals.
func thousands(n float64) string {
	if math.IsNaN(n) {
		return "–"
	}
	s := strconv.FormatInt(int64(math.Round(n)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func ms(us float64) string {
	if math.IsNaN(us) {
		return "–"
	}
	return strconv.FormatFloat(us/1000, 'f', 2, 64)
}

func joinF(v []float64, f func(float64) string) string {
	var s []string
	for _, x := range v {
		s = append(s, f(x))
	}
	return strings.Join(s, " / ")
}

func x2(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + "x" }

func pct(v float64) string { return strconv.FormatFloat(100*v, 'f', 0, 64) + "%" }

// goalLines evaluates the goals; each line is a Markdown table row.
func (res *results) goalLines() []string {
	var out []string
	for _, g := range goals {
		v := res.ratios(g.num, g.den, g.workload)
		if len(v) == 0 {
			continue
		}
		judged := median(v)
		how := "median"
		if g.every {
			judged, how = slices.Min(v), "every round"
		}
		verdict := "met"
		if judged < g.min {
			verdict = fmt.Sprintf("**not met** (%s of the goal)", pct(judged/g.min))
		}
		what := fmt.Sprintf("%s `/%s` ≥ %s %s", g.num, g.workload, x2(g.min), g.den)
		if g.denFloor {
			what = fmt.Sprintf("%s `/%s` ≥ %s of the bare floor (%s)", g.num, g.workload, pct(g.min), g.den)
		}
		out = append(out, fmt.Sprintf("| %s | %s | %s (%s) | %s |", what, joinF(v, x2), x2(judged), how, verdict))
	}
	// Zero lost updates by galleta in every row and round.
	var bad []string
	n := 0
	for _, c := range res.Checks {
		if r, ok := res.rowByName(c.Row); ok && r.Lib == "galleta" {
			n++
			if c.Lost != 0 {
				bad = append(bad, fmt.Sprintf("%s round %d: %d", c.Row, c.Round, c.Lost))
			}
		}
	}
	if n > 0 {
		verdict := "met"
		if len(bad) > 0 {
			verdict = "**not met**: " + strings.Join(bad, "; ")
		}
		out = append(out, fmt.Sprintf("| galleta loses no update (%d concurrent increments of one session) | %d checks | | %s |", res.Burst, n, verdict))
	}
	return out
}

func lostCell(cs []checkResult) string {
	if len(cs) == 0 {
		return "–"
	}
	var parts []string
	for _, c := range cs {
		s := fmt.Sprintf("%d/%d", c.Lost, c.Answered)
		if c.Lost > 0 {
			s = "**" + s + "**"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// markdown is the BENCHMARKS.md section, markers included.
func markdown(res *results) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	m := res.Machine
	p("%s\n", beginMarker)
	p("<!-- Generated by bench/compare: edit the program, not this section. -->\n\n")
	p("Measured %s with `%s`: %s rounds of %s per server and workload, servers in\n", res.Date, res.Command, strconv.Itoa(res.Rounds), res.Duration)
	p("alternating order, %d keep-alive connections from %s, each server a process of its own on loopback.\n\n", res.Conns, loaderName(m))
	p("Machine: %s, %s CPUs, Linux %s, %s", m["cpu"], m["cpus"], m["kernel"], m["go"])
	for _, k := range []string{"node", "redis", "postgres"} {
		if m[k] != "" {
			p(", %s %s", map[string]string{"node": "Node.js", "redis": "Redis", "postgres": "PostgreSQL"}[k], m[k])
		}
	}
	p(".\nVersions:")
	keys := make([]string, 0, len(res.Versions))
	for k := range res.Versions {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		sep := ","
		if i == 0 {
			sep = ""
		}
		p("%s %s %s", sep, strings.TrimPrefix(k, "npm:"), res.Versions[k])
	}
	p(".\n\n")
	p("Every ratio is taken within one round (so a slow moment of the machine hits both sides) and\n")
	p("the median over the rounds is reported with each round's value. `/inc` sends one cookie\n")
	p("from every connection: one busy session. Lost: of %d concurrent increments of one new\n", res.Burst)
	p("session answered 200, how many are missing from its counter (per round). CPU: the\n")
	p("server process's CPU seconds per 1,000 requests, and the Redis or PostgreSQL server's.\n\n")

	p("### Goals\n\n| goal | per round | judged | verdict |\n|---|---|---|---|\n")
	for _, l := range res.goalLines() {
		p("%s\n", l)
	}
	for _, w := range []struct{ name, title string }{
		{"inc", "Read and increment one busy session (`/inc`)"},
		{"new", "New session (`/new`)"},
	} {
		p("\n### %s\n\n", w.title)
		p("| server | req/s | req/s per round | vs ceiling | p50 ms | p99 ms | server CPU s/1k | engine CPU s/1k | errors | lost |")
		if w.name == "new" {
			p(" heap/session |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
		} else {
			p("\n|---|---|---|---|---|---|---|---|---|---|\n")
		}
		for _, r := range res.Rows {
			rps := res.series(r.Name, w.name, func(x runResult) float64 { return x.RPS })
			if len(rps) == 0 {
				continue
			}
			if r.floor() {
				p("| %s (%s, no HTTP) | %s ops/s | %s | | | | | | | |", r.Name, floorLabel(r), thousands(median(rps)), joinF(rps, thousands))
				if w.name == "new" {
					p(" |")
				}
				p("\n")
				continue
			}
			f := func(fn func(runResult) float64) float64 { return median(res.series(r.Name, w.name, fn)) }
			vsCeil := "–"
			if c := res.ratios(r.Name, "plain", w.name); len(c) > 0 && r.Lib != "plain" {
				vsCeil = pct(median(c))
			}
			engine := "–"
			if r.Engine == "redis" || r.Engine == "postgres" {
				engine = strconv.FormatFloat(f(func(x runResult) float64 { return perK(x.EngineCPU, x.Requests) }), 'f', 3, 64)
			}
			errs := 0.0
			for _, e := range res.series(r.Name, w.name, func(x runResult) float64 { return float64(x.Errors) }) {
				errs += e
			}
			name := r.Name
			if r.Lib == "galleta" {
				name = "**" + name + "**"
			}
			lost := "–"
			if w.name == "inc" {
				lost = lostCell(res.lost(r.Name))
			}
			p("| %s | %s | %s | %s | %s | %s | %.3f | %s | %s | %s |", name, thousands(median(rps)), joinF(rps, thousands), vsCeil,
				ms(f(func(x runResult) float64 { return x.P50US })), ms(f(func(x runResult) float64 { return x.P99US })),
				f(func(x runResult) float64 { return perK(x.ServerCPU, x.Requests) }), engine, thousands(errs), lost)
			if w.name == "new" {
				h, ok := res.Heap[r.Name]
				if ok {
					p(" %s B |", thousands(h))
				} else {
					p(" – |")
				}
			}
			p("\n")
		}
	}
	p("\nHeap per session: the server's live heap after 2 GCs, grown by creating %s sessions through `/new`, per session (memory stores).\n", thousands(float64(res.HeapN)))
	p("\n### What else used the CPU\n\nThe machine's busy CPU time during each load that was neither the server, the load generator\n")
	p("nor Redis/PostgreSQL, as a share of all CPUs (the driver and anything else on the machine), per round: ")
	cpus, _ := strconv.Atoi(m["cpus"])
	for round := 1; round <= res.Rounds; round++ {
		var v []float64
		for _, r := range res.Runs {
			if r.Round == round && !strings.HasPrefix(r.Row, "floor") {
				v = append(v, r.otherShare(cpus))
			}
		}
		if len(v) > 0 {
			p("round %d median %s, max %s; ", round, pct(median(v)), pct(slices.Max(v)))
		}
	}
	p("\n\n%s\n", endMarker)
	return b.String()
}

func floorLabel(r row) string {
	if r.Engine == "file" {
		return "bare loop: O_TMPFILE, write, fsync, linkat, fsync dir"
	}
	return "bare loop: O_TMPFILE, write, linkat"
}

func loaderName(m map[string]string) string {
	if v := m["wrk"]; v != "" {
		return "wrk " + v
	}
	return "the Go load generator (compare -loadgen)"
}

// svg draws requests per second per server for both workloads; servers
// that lost updates carry a red mark.
func svg(res *results) string {
	type bar struct {
		label string
		v     float64
		lib   string
		lost  int
	}
	panel := func(w string) ([]bar, float64) {
		var bars []bar
		top := 0.0
		for _, r := range res.Rows {
			v := median(res.series(r.Name, w, func(x runResult) float64 { return x.RPS }))
			if math.IsNaN(v) {
				continue
			}
			lost := 0
			if w == "inc" {
				for _, c := range res.lost(r.Name) {
					lost = max(lost, c.Lost)
				}
			}
			bars = append(bars, bar{r.Name, v, r.Lib, lost})
			top = max(top, v)
		}
		return bars, top
	}
	color := map[string]string{"galleta": "#2e7d32", "plain": "#9e9e9e", "floor": "#bdbdbd", "scs": "#1565c0", "gorilla": "#6a1b9a", "express": "#ef6c00"}
	const width, labelW, barH, gap = 880, 190, 16, 4
	var b strings.Builder
	incBars, incTop := panel("inc")
	newBars, newTop := panel("new")
	height := 60 + (len(incBars)+len(newBars))*(barH+gap) + 90
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="15" font-weight="bold">Requests per second over HTTP, median of %d rounds (%s, %s CPUs)</text>`+"\n",
		res.Rounds, html.EscapeString(res.Date), html.EscapeString(res.Machine["cpus"]))
	y := 40
	for _, pnl := range []struct {
		title string
		bars  []bar
		top   float64
	}{
		{"/inc: read and increment one busy session (red: updates lost of " + strconv.Itoa(res.Burst) + " concurrent)", incBars, incTop},
		{"/new: store a new session (grey: the bare file-system floor, no HTTP)", newBars, newTop},
	} {
		fmt.Fprintf(&b, `<text x="10" y="%d" font-weight="bold">%s</text>`+"\n", y+12, html.EscapeString(pnl.title))
		y += 22
		for _, br := range pnl.bars {
			wpx := 0.0
			if pnl.top > 0 {
				wpx = br.v / pnl.top * float64(width-labelW-150)
			}
			weight := "normal"
			if br.lib == "galleta" {
				weight = "bold"
			}
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" font-weight="%s">%s</text>`, labelW-8, y+12, weight, html.EscapeString(br.label))
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`, labelW, y, wpx, barH, color[br.lib])
			txt := thousands(br.v)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`, float64(labelW)+wpx+6, y+12, txt)
			if br.lost > 0 {
				fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#c62828" font-weight="bold">lost up to %d/%d</text>`, float64(labelW)+wpx+12+7*float64(len(txt)), y+12, br.lost, res.Burst)
			}
			b.WriteString("\n")
			y += barH + gap
		}
		y += 16
	}
	fmt.Fprintf(&b, `<text x="10" y="%d" fill="#555">%s</text>`+"\n", y+8, html.EscapeString("Generated by: "+res.Command+" (BENCHMARKS.md has every round, latency and CPU)"))
	b.WriteString("</svg>\n")
	return b.String()
}

// replaceSection puts section (markers included) in place of the text
// between the markers of doc, or appends it when doc has none.
func replaceSection(doc, section string) (string, error) {
	i := strings.Index(doc, beginMarker)
	j := strings.Index(doc, endMarker)
	switch {
	case i < 0 && j < 0:
		return strings.TrimRight(doc, "\n") + "\n\n" + section, nil
	case i < 0 || j < i:
		return "", errors.New("BENCHMARKS.md has one compare marker without the other, or them in the wrong order: fix it by hand")
	}
	return doc[:i] + strings.TrimRight(section, "\n") + doc[j+len(endMarker):], nil
}

// publish prints the report and, with write, puts it into BENCHMARKS.md
// and docs/compare.svg.
func publish(root string, res *results, write bool) error {
	md := markdown(res)
	fmt.Println(md)
	if !write {
		return nil
	}
	path := filepath.Join(root, "BENCHMARKS.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := replaceSection(string(doc), md)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "docs", "compare.svg"), []byte(svg(res)), 0o644); err != nil {
		return err
	}
	fmt.Println("wrote BENCHMARKS.md (between the compare markers) and docs/compare.svg")
	return nil
}

// smokeCheck is CI's verdict on a -smoke run: every row answered, and
// galleta's rows failed no request and lost no update.
func smokeCheck(res *results) error {
	var bad []string
	for _, r := range res.Rows {
		workloads := []string{"inc", "new"}
		if r.floor() {
			workloads = []string{"new"}
		}
		for _, w := range workloads {
			run, ok := res.find(r.Name, w, 1)
			switch {
			case !ok || run.RPS <= 0:
				bad = append(bad, fmt.Sprintf("%s /%s served nothing", r.Name, w))
			case r.Lib == "galleta" && run.Errors > 0:
				bad = append(bad, fmt.Sprintf("%s /%s: %d of %d requests failed", r.Name, w, run.Errors, run.Requests))
			}
		}
		if r.floor() {
			continue
		}
		for _, c := range res.lost(r.Name) {
			if c.Answered == 0 {
				bad = append(bad, fmt.Sprintf("%s answered none of the %d concurrent increments", r.Name, res.Burst))
			}
			if r.Lib == "galleta" && c.Lost != 0 {
				bad = append(bad, fmt.Sprintf("%s lost %d of %d increments", r.Name, c.Lost, c.Answered))
			}
		}
	}
	if len(bad) > 0 {
		return errors.New("smoke check failed:\n  " + strings.Join(bad, "\n  "))
	}
	fmt.Printf("smoke check passed: %d rows answered; galleta failed no request and lost no update\n", len(res.Rows))
	return nil
}
