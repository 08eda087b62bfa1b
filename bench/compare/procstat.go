package main

// CPU time from /proc (Linux): of the server process, of the database
// engines (every redis-server and postgres process), and of the whole
// machine, so a run can say what else used the CPU while it ran.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ticks is the kernel's USER_HZ, the unit of /proc's CPU times. It is 100
// on every Linux this runs on (sysconf(_SC_CLK_TCK) without cgo).
const ticks = 100.0

// procCPU is the user+system CPU seconds of process pid (all its threads).
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return statCPU(b)
}

// statCPU reads utime and stime (fields 14 and 15) from a /proc/<pid>/stat
// line; the command name in field 2 may hold spaces and parentheses, so
// fields are counted from its closing parenthesis.
func statCPU(b []byte) (float64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("unreadable /proc stat line %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc stat line %q", b)
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	s, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unreadable /proc stat line %q", b)
	}
	return (u + s) / ticks, nil
}

// engineCPU sums the CPU seconds of every process named redis-server or
// postgres on this machine (0 when they run elsewhere).
func engineCPU() float64 {
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	total := 0.0
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the process ended
		}
		open, closing := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || closing < open {
			continue
		}
		switch string(b[open+1 : closing]) {
		case "redis-server", "postgres":
			if c, err := statCPU(b); err == nil {
				total += c
			}
		}
	}
	return total
}

// machineCPU is the busy CPU seconds of the whole machine since boot
// (every CPU's user, nice, system, irq, softirq and steal time).
func machineCPU() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("unreadable /proc/stat first line %q", line)
	}
	busy := 0.0
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system irq softirq steal
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return 0, fmt.Errorf("unreadable /proc/stat first line %q", line)
		}
		busy += v
	}
	return busy / ticks, nil
}

// cpuSnap is the three readings at one moment.
type cpuSnap struct{ server, engine, machine float64 }

func snap(pid int) (cpuSnap, error) {
	s, err := procCPU(pid)
	if err != nil {
		return cpuSnap{}, fmt.Errorf("server's CPU time: %w", err)
	}
	m, err := machineCPU()
	if err != nil {
		return cpuSnap{}, err
	}
	return cpuSnap{server: s, engine: engineCPU(), machine: m}, nil
}
