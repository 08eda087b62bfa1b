#!/usr/bin/env bash
# The Redis benchmarks next to their ceiling, in one run: redis-benchmark
# (GET and SET, 32 connections, no pipelining) before and after the Go
# benchmarks, then each library's requests/s as a share of what Redis
# allows for the round trips a request needs (2 for a change: a load and a
# save, which for galleta is a compare-and-set; 1 for an unchanged
# request: a load), and galleta's throughput over scs's.
#
#   bench/redis.sh                        # -benchtime=2s, once
#   BENCHTIME=5s COUNT=3 bench/redis.sh   # averages of three alternating runs
#   SCALE=1000000 bench/redis.sh          # also BenchmarkRedisScale (about 300 MB in Redis for a minute)
#
# Uses $REDIS_URL (default redis://127.0.0.1:6379/0). Figures from a busy
# machine mislead: the load average is printed before and after.
set -euo pipefail
cd "$(dirname "$0")"
url=${REDIS_URL:-redis://127.0.0.1:6379/0}
benchtime=${BENCHTIME:-2s}
count=${COUNT:-1}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
ceiling() {
	redis-benchmark -u "$url" -t get,set -n 200000 -c 32 -P 1 -q 2>&1 | tr '\r' '\n' | grep -E '^(GET|SET): [0-9.]+ requests per second'
	redis-cli -u "$url" del key:__rand_int__ >/dev/null # the one key redis-benchmark's SET leaves
}

echo "== $(date -u +%FT%TZ), $(uname -sm), $(nproc) CPUs, $(go version | cut -d' ' -f3), Redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')"
echo "== load average before: $(loadavg)"
echo "== ceiling: redis-benchmark -t get,set -n 200000 -c 32 -P 1 -q"
ceiling | tee "$out/ceiling"
# COUNT runs of go test -count=1 rather than one -count=COUNT, so that
# galleta and scs alternate and a change in the machine's load hits both.
go test -c -o "$out/bench.test" .
for i in $(seq "$count"); do
	echo "== run $i of $count: go test -run='^\$' -bench='^BenchmarkRedis(Request|LostUpdates)\$' -benchmem -benchtime=$benchtime -count=1 ."
	"$out/bench.test" -test.run='^$' -test.bench='^BenchmarkRedis(Request|LostUpdates)$' -test.benchmem -test.benchtime="$benchtime" -test.count=1 | tee -a "$out/bench"
done
if [ -n "${SCALE:-}" ]; then
	echo "== go test -run='^\$' -bench='^BenchmarkRedisScale\$' -v -timeout=30m . -redis.scale=$SCALE"
	go test -run='^$' -bench='^BenchmarkRedisScale$' -v -timeout=30m . -redis.scale="$SCALE" | grep -v '^=== ' | tee "$out/scale"
fi
echo "== ceiling again"
ceiling | tee -a "$out/ceiling"
echo "== load average after: $(loadavg)"

awk '
FNR == 1 { file++ }
file == 1 { ops += $2; nops++; next }   # "GET: 123.45 requests per second, ..."
/^BenchmarkRedisRequest\// {
	name = $1; sub(/^BenchmarkRedisRequest\//, "", name); sub(/-[0-9]+$/, "", name)
	for (i = 3; i < NF; i += 2) v[name, $(i + 1)] += $i
	n[name]++
	if (!(name in seen)) { seen[name] = 1; order[++k] = name }
}
/^BenchmarkRedisLostUpdates\// {
	name = $1; sub(/^BenchmarkRedisLostUpdates\//, "", name); sub(/-[0-9]+$/, "", name)
	for (i = 3; i < NF; i += 2) if ($(i + 1) == "lost/op") { lost[name] += $i; nl[name]++ }
}
END {
	c = ops / nops
	printf "\nRedis ceiling (mean of GET and SET, before and after): %.0f round trips/s\n\n", c
	printf "%-18s %10s %8s %14s %9s %9s %10s\n", "shape/library", "req/s", "rtt/op", "Redis allows", "share", "lost/op", "stored/s"
	for (j = 1; j <= k; j++) {
		s = order[j]; m = n[s]
		rps = v[s, "req/s"] / m; rtt = v[s, "rtt/op"] / m
		need = (s ~ /^read/) ? 1 : 2
		stored = ((s, "stored/s") in v) ? sprintf("%.0f", v[s, "stored/s"] / m) : "-"
		lo = ((s, "lost/op") in v) ? sprintf("%.4f", v[s, "lost/op"] / m) : "-"
		printf "%-18s %10.0f %8.3f %14.0f %8.1f%% %9s %10s\n", s, rps, rtt, c / need, 100 * rps * need / c, lo, stored
		split(s, p, "/"); r[p[1], p[2]] = rps
	}
	print ""
	for (j = 1; j <= k; j++) {
		split(order[j], p, "/")
		if (p[2] == "galleta" && r[p[1], "scs"] > 0)
			printf "%-10s galleta / scs throughput: %.2fx\n", p[1], r[p[1], "galleta"] / r[p[1], "scs"]
	}
	for (s in lost) printf "burst of 100 concurrent increments on one session, %s: %.1f%% of the acknowledged increments lost\n", s, 100 * lost[s] / nl[s]
}' "$out/ceiling" "$out/bench"
