package main

import (
	"strings"
	"testing"
)

func TestStatCPU(t *testing.T) {
	// A command name with spaces and a parenthesis, as /proc allows.
	line := []byte("4242 (node (x) y) S 1 4242 4242 0 -1 4194560 1 0 0 0 250 150 0 0 20 0 11 0 100 1000 10 18446744073709551615\n")
	got, err := statCPU(line)
	if err != nil {
		t.Fatal(err)
	}
	if got != 4.0 { // (250 + 150) ticks at 100 Hz
		t.Fatalf("statCPU = %v, want 4", got)
	}
	if _, err := statCPU([]byte("4242 (x) S 1 2")); err == nil {
		t.Fatal("a short line gave no error")
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}, {[]float64{7}, 7}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// sample is a two-round run with one goal pair, one floor and a loss.
func sample() *results {
	return &results{
		Rounds: 2, Burst: 200, Machine: map[string]string{"cpus": "2"},
		Rows: []row{{"plain", "plain", "none"}, {"galleta-memory", "galleta", "memory"}, {"scs-memory", "scs", "memory"}},
		Runs: []runResult{
			{Row: "plain", Round: 1, Workload: "inc", RPS: 1000, Requests: 5000, Seconds: 5},
			{Row: "galleta-memory", Round: 1, Workload: "inc", RPS: 700, Requests: 3500, Seconds: 5},
			{Row: "scs-memory", Round: 1, Workload: "inc", RPS: 500, Requests: 2500, Seconds: 5},
			{Row: "plain", Round: 2, Workload: "inc", RPS: 500, Requests: 2500, Seconds: 5},
			{Row: "galleta-memory", Round: 2, Workload: "inc", RPS: 350, Requests: 1750, Seconds: 5},
			{Row: "scs-memory", Round: 2, Workload: "inc", RPS: 200, Requests: 1000, Seconds: 5},
		},
		Checks: []checkResult{
			{Row: "galleta-memory", Round: 1, Answered: 200}, {Row: "scs-memory", Round: 1, Answered: 200, Lost: 150},
			{Row: "galleta-memory", Round: 2, Answered: 200}, {Row: "scs-memory", Round: 2, Answered: 200, Lost: 120},
		},
		Heap: map[string]float64{},
	}
}

func TestRatiosAreTakenWithinARound(t *testing.T) {
	res := sample()
	got := res.ratios("galleta-memory", "scs-memory", "inc")
	if len(got) != 2 || got[0] != 1.4 || got[1] != 1.75 {
		t.Fatalf("ratios = %v, want [1.4 1.75]", got)
	}
	lines := strings.Join(res.goalLines(), "\n")
	// galleta/scs median 1.575 meets 1.5; galleta/plain is 0.7 in both rounds.
	for _, want := range []string{"1.40x / 1.75x | 1.57x (median) | met", "0.70x / 0.70x | 0.70x (median) | met", "galleta loses no update (200 concurrent increments of one session) | 2 checks | | met"} {
		if !strings.Contains(lines, want) {
			t.Errorf("goal lines lack %q:\n%s", want, lines)
		}
	}
	res.Checks[2].Lost = 3
	if lines := strings.Join(res.goalLines(), "\n"); !strings.Contains(lines, "**not met**: galleta-memory round 2: 3") {
		t.Errorf("a galleta loss is not reported:\n%s", lines)
	}
}

func TestMarkdownAndSVG(t *testing.T) {
	res := sample()
	md := markdown(res)
	for _, want := range []string{beginMarker, endMarker, "| **galleta-memory** | 525 | 700 / 350 | 70% |", "**150/200**, **120/200**"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	s := svg(res)
	if !strings.HasPrefix(s, "<svg ") || !strings.Contains(s, "lost up to 150/200") || strings.Contains(s, "lost up to 0") {
		t.Errorf("svg does not mark exactly scs's losses:\n%s", s)
	}
}

func TestReplaceSection(t *testing.T) {
	doc := "# B\n\nintro\n\n" + beginMarker + "\nold\n" + endMarker + "\n\n## After\n"
	got, err := replaceSection(doc, beginMarker+"\nnew\n"+endMarker+"\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := "# B\n\nintro\n\n" + beginMarker + "\nnew\n" + endMarker + "\n\n## After\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got, _ := replaceSection("# B\n", "S\n"); got != "# B\n\nS\n" {
		t.Fatalf("no markers: got %q", got)
	}
	if _, err := replaceSection(endMarker+beginMarker, "S"); err == nil {
		t.Fatal("markers in the wrong order gave no error")
	}
}

func TestSmokeCheck(t *testing.T) {
	res := sample()
	res.Rounds = 1
	res.Runs = append(res.Runs,
		runResult{Row: "plain", Round: 1, Workload: "new", RPS: 1},
		runResult{Row: "galleta-memory", Round: 1, Workload: "new", RPS: 1},
		runResult{Row: "scs-memory", Round: 1, Workload: "new", RPS: 1})
	res.Checks = res.Checks[:2]
	if err := smokeCheck(res); err != nil {
		t.Fatalf("a clean run failed: %v", err)
	}
	res.Checks[0].Lost = 1
	res.Runs[1].Errors = 2
	err := smokeCheck(res)
	if err == nil || !strings.Contains(err.Error(), "galleta-memory lost 1 of 200") || !strings.Contains(err.Error(), "2 of 3500 requests failed") {
		t.Fatalf("smokeCheck = %v", err)
	}
}
