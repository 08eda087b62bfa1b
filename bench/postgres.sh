#!/usr/bin/env bash
# The PostgreSQL benchmarks next to their ceiling, in one run: pgbench
# running the statements a request needs (a load: SELECT of one session
# by sid; a change: that SELECT and an UPDATE of the row) on a table like
# connect-pg-simple's, 16 clients, prepared statements, before and after
# the Go benchmarks; then each library's requests/s as a share of that,
# and galleta's throughput over scs's.
#
#   bench/postgres.sh                        # -benchtime=2s, once
#   BENCHTIME=5s COUNT=3 bench/postgres.sh   # means of three alternating runs
#   SCALE=1000000 bench/postgres.sh          # also pgstore's BenchmarkScale (1,000 vs N rows; minutes)
#
# A CPU profile of galleta's request, by hand:
#
#   cd bench && go test -run='^$' -bench='^BenchmarkPostgresRequest/incr-many/galleta$' -benchtime=10s -cpuprofile=/tmp/pg.prof .
#   go tool pprof -top -cum bench.test /tmp/pg.prof
#
# Uses $DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test?sslmode=disable),
# in schemas of its own that it drops. Figures from a busy machine mislead:
# the load average is printed before, between and after the runs.
set -euo pipefail
cd "$(dirname "$0")"
url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
benchtime=${BENCHTIME:-2s}
count=${COUNT:-1}
clients=16 # the benchmarks' goroutines and pool size: 8 per CPU on 2 CPUs
out=$(mktemp -d)
schema=galleta_ceiling_$$
cleanup() {
	[ -s "$out/pgbench.err" ] && tail -3 "$out/pgbench.err" >&2
	psql -q "$url" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
	rm -rf "$out"
}
trap cleanup EXIT

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

psql -q -v ON_ERROR_STOP=1 "$url" >/dev/null <<SQL
CREATE SCHEMA $schema;
CREATE TABLE $schema.session (sid varchar NOT NULL COLLATE "default" PRIMARY KEY, sess json NOT NULL, expire timestamp(6) NOT NULL);
CREATE INDEX ON $schema.session (expire);
INSERT INTO $schema.session SELECT 'c' || i, '{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"__galleta":{"created":1},"user":"alice","n":1}', now() + interval '1 hour' FROM generate_series(1, 1000) i;
VACUUM ANALYZE $schema.session;
SQL
cat >"$out/load.sql" <<SQL
\set id random(1, 1000)
SELECT sess, expire FROM $schema.session WHERE sid = 'c' || :id AND expire > now();
SQL
# (no colon directly before a letter in the SQL: pgbench reads :name as a variable)
cat >"$out/change.sql" <<SQL
\set id random(1, 1000)
SELECT sess, expire FROM $schema.session WHERE sid = 'c' || :id AND expire > now();
UPDATE $schema.session SET sess = '{"cookie": {"originalMaxAge": null, "expires": null, "httpOnly": true, "path": "/"}, "__galleta": {"created": 1}, "user": "alice", "n": 2}', expire = now() + interval '1 hour' WHERE sid = 'c' || :id;
SQL
ceiling() {
	for s in load change; do
		printf '%s: ' "$s"
		pgbench -n -M prepared -c "$clients" -j 2 -T 5 -f "$out/$s.sql" "$url" 2>"$out/pgbench.err" | sed -n 's/^tps = \([0-9.]*\) .*/\1 requests per second/p'
	done
}

echo "== $(date -u +%FT%TZ), $(uname -sm), $(nproc) CPUs, $(go version | cut -d' ' -f3), $(psql -At "$url" -c 'SHOW server_version' | cut -d' ' -f1 | sed 's/^/PostgreSQL /')"
echo "== load average before: $(loadavg)"
echo "== ceiling: pgbench -M prepared -c $clients -j 2 -T 5 (load: 1 statement; change: 2)"
ceiling | tee "$out/ceiling"
# COUNT runs of -count=1 rather than one -count=COUNT, so that galleta and
# scs alternate and a change in the machine's load hits both.
go test -c -o "$out/bench.test" .
for i in $(seq "$count"); do
	echo "== run $i of $count (load average $(loadavg)): go test -run='^\$' -bench='^BenchmarkPostgres(Request|LostUpdates)\$' -benchmem -benchtime=$benchtime -count=1 ."
	"$out/bench.test" -test.run='^$' -test.bench='^BenchmarkPostgres(Request|LostUpdates)$' -test.benchmem -test.benchtime="$benchtime" -test.count=1 | tee -a "$out/bench"
done
if [ -n "${SCALE:-}" ]; then
	echo "== (cd .. && go test -run='^\$' -bench=Scale -benchtime=3s -timeout=1h ./pgstore -pgstore.scale=$SCALE)"
	(cd .. && go test -run='^$' -bench=Scale -benchtime=3s -timeout=1h ./pgstore -pgstore.scale="$SCALE") | grep -v '^=== ' | tee "$out/scale"
fi
echo "== ceiling again"
ceiling | tee -a "$out/ceiling"
echo "== load average after: $(loadavg)"

awk '
FNR == 1 { file++ }
file == 1 { c[$1] += $2; nc[$1]++; next }   # "load: 1234.5 requests per second"
/^BenchmarkPostgresRequest\// {
	name = $1; sub(/^BenchmarkPostgresRequest\//, "", name); sub(/-[0-9]+$/, "", name)
	for (i = 3; i < NF; i += 2) v[name, $(i + 1)] += $i
	n[name]++
	if (!(name in seen)) { seen[name] = 1; order[++k] = name }
}
/^BenchmarkPostgresLostUpdates\// {
	name = $1; sub(/^BenchmarkPostgresLostUpdates\//, "", name); sub(/-[0-9]+$/, "", name)
	for (i = 3; i < NF; i += 2) if ($(i + 1) == "lost/op") { lost[name] += $i; nl[name]++ }
}
function get(s, m) { return ((s, m) in v) ? v[s, m] / n[s] : -1 }
END {
	load = c["load:"] / nc["load:"]; change = c["change:"] / nc["change:"]
	printf "\nPostgreSQL ceiling (pgbench, mean of before and after): a load %.0f/s, a load and a save %.0f/s\n\n", load, change
	printf "%-18s %9s %7s %9s %9s %8s %9s %9s\n", "shape/library", "req/s", "rtt/op", "go-µs/op", "pg-µs/op", "share", "lost/op", "stored/s"
	for (j = 1; j <= k; j++) {
		s = order[j]
		rps = get(s, "req/s"); ceil = (s ~ /^read/) ? load : change
		lo = get(s, "lost/op"); st = get(s, "stored/s"); pg = get(s, "pg-µs/op")
		printf "%-18s %9.0f %7.3f %9.1f %9s %7.1f%% %9s %9s\n", s, rps, get(s, "rtt/op"), get(s, "go-µs/op"),
			(pg < 0 ? "-" : sprintf("%.1f", pg)), 100 * rps / ceil, (lo < 0 ? "-" : sprintf("%.4f", lo)), (st < 0 ? "-" : sprintf("%.0f", st))
		split(s, p, "/"); r[p[1], p[2]] = rps; sr[p[1], p[2]] = st
		cpu[p[1], p[2]] = get(s, "go-µs/op") + (pg < 0 ? 0 : pg)
	}
	print ""
	for (j = 1; j <= k; j++) {
		split(order[j], p, "/")
		if (p[2] != "galleta" || r[p[1], "scs"] <= 0) continue
		printf "%-10s galleta / scs throughput: %.2fx", p[1], r[p[1], "galleta"] / r[p[1], "scs"]
		if (sr[p[1], "scs"] > 0) printf "; increments stored per second: %.2fx", sr[p[1], "galleta"] / sr[p[1], "scs"]
		# CPU per request moves less with the machine'"'"'s load than req/s does.
		printf "; CPU per request (go + pg): %.0f µs vs %.0f µs, scs / galleta %.2fx\n", cpu[p[1], "galleta"], cpu[p[1], "scs"], cpu[p[1], "scs"] / cpu[p[1], "galleta"]
	}
	for (s in lost) printf "burst of 100 concurrent increments on one session, %s: %.1f%% of the acknowledged increments lost\n", s, 100 * lost[s] / nl[s]
}' "$out/ceiling" "$out/bench"
