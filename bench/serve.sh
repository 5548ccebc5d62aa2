#!/bin/bash
# bench/serve.sh - `projstore serve` under load: wrk on GET /v1/projects/{id}
# (a random one of PROJECTS ids per request) with the catalog in SQLite and in
# PostgreSQL (a throwaway server on loopback, started and stopped by PID by
# this script).  The catalog is filled with one bulk INSERT ... SELECT.
#
# Targets (issue 7, on 2 cores): SQLite >= 20,000 req/s with p99 < 2 ms;
# PostgreSQL >= 5,000 req/s with p99 < 5 ms.
#
# wrk runs on the same machine as the server (and PostgreSQL), so the cores
# are shared by all of them; the load average before and after each run is
# recorded, since other work on the machine lowers the figures.  The CPU time
# each request costs (server, PostgreSQL backends, wrk; from /proc) does not
# depend on that load: "fits" is how many requests per second those costs
# allow on the machine's cores when nothing else runs.  8 connections keep
# both server threads busy; more only queue (Little's law: 32 connections at
# 20,000 req/s wait 1.6 ms on average).
#
# env: PROJECTS (20000), DURATION (20s), CONNECTIONS (8), WRK_THREADS (1),
#      SERVER_THREADS (2), ENGINES ("sqlite postgresql"), PROJSTORE (binary),
#      OUT (bench/results/serve-DATE.txt), NICE (e.g. -10: run the server, PostgreSQL
#      and wrk at that nice level, to shield them from other work on a shared machine)
set -euo pipefail
export LC_ALL=C
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
PROJSTORE=${PROJSTORE:-$REPO_ROOT/build/projstore}
PROJECTS=${PROJECTS:-20000}
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-8}
WRK_THREADS=${WRK_THREADS:-1}
SERVER_THREADS=${SERVER_THREADS:-2}
ENGINES=${ENGINES:-"sqlite postgresql"}
OUT=${OUT:-$REPO_ROOT/bench/results/serve-$(date -u +%Y%m%dT%H%M%SZ).txt}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "needs python3" >&2; exit 1; }
[ -x "$PROJSTORE" ] || { echo "no $PROJSTORE: run make" >&2; exit 1; }

W=$(mktemp -d /tmp/projstore-bench-serve.XXXXXX)
chmod 755 "$W"
PG_PID=
SERVE_PID=
stop_pid() {
	local pid=$1 sig=$2
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill "-$sig" "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}
cleanup() {
	stop_pid "$SERVE_PID" TERM
	stop_pid "$PG_PID" INT
	rm -rf "$W"
}
trap cleanup EXIT
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

ADMIN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
(umask 077 && echo "read $ADMIN" >"$W/tokens")

# ids: %08x-0000-4000-8000-%012x of 1..PROJECTS (the wrk script makes the same)
SQL_COLS="id, host, status, quota_bytes, logical_bytes, stored_bytes, compressratio, dedupratio,
	snapshots, last_snapshot, last_snapshot_at, last_save_at, last_save_result, updated_at"
sqlite_fill() {
	python3 - "$1" "$PROJECTS" <<PY
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
INSERT INTO projects ($SQL_COLS)
SELECT printf('%08x-0000-4000-8000-%012x', i, i),
       CASE WHEN i % 3 = 0 THEN '' ELSE printf('host%02d', i % 20) END,
       CASE WHEN i % 3 = 0 THEN 'stored' ELSE 'deployed' END,
       4294967296, 1000000 + i * 997, 400000 + i * 331, 2.1, 1.3, 1 + i % 50,
       '2026-11-25T10:00:00.000000Z-0000abcd', 1764064800000000, 1764064800000000, 'ok',
       1764064800000000 FROM n""", (int(sys.argv[2]),))
c.commit()
PY
}
pg_fill() {
	(cd / && runuser -u postgres -- "$PG_BIN/psql" -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" \
		-U postgres -d projstore) <<SQL
INSERT INTO projects ($SQL_COLS)
SELECT lpad(to_hex(i), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(i), 12, '0'),
       CASE WHEN i % 3 = 0 THEN '' ELSE 'host' || lpad((i % 20)::text, 2, '0') END,
       CASE WHEN i % 3 = 0 THEN 'stored' ELSE 'deployed' END,
       4294967296, 1000000 + i * 997, 400000 + i * 331, 2.1, 1.3, 1 + i % 50,
       '2026-11-25T10:00:00.000000Z-0000abcd', 1764064800000000, 1764064800000000, 'ok',
       1764064800000000 FROM generate_series(1, $PROJECTS) AS i;
ANALYZE projects;
SQL
}

cat >"$W/random-project.lua" <<LUA
local n = $PROJECTS
math.randomseed(os.time())
request = function()
  local i = math.random(1, n)
  return wrk.format("GET", string.format("/v1/projects/%08x-0000-4000-8000-%012x", i, i))
end
LUA

# "SERVER_TICKS POSTGRES_TICKS": CPU time (utime + stime) so far of the
# server and of every PostgreSQL process (backends included)
cpu_ticks() {
	local s p=0 pid
	s=$(awk '{ print $14 + $15 }' "/proc/$SERVE_PID/stat")
	if [ "$1" = postgresql ]; then
		for pid in $PG_PID $(ps -o pid= --ppid "$PG_PID"); do
			p=$((p + $(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
		done
	fi
	echo "$s $p"
}

run_engine() {
	local engine=$1 spec
	if [ "$engine" = sqlite ]; then
		spec="sqlite:$W/catalog.db"
		"$PROJSTORE" --catalog "$spec" projects --limit 1 >/dev/null
		sqlite_fill "$W/catalog.db"
	else
		mkdir "$W/pg" && chown postgres: "$W/pg"
		(cd / && runuser -u postgres -- "$PG_BIN/initdb" -D "$W/pg/data" -A trust -U postgres --no-sync >/dev/null)
		local port=$((30000 + RANDOM % 20000))
		(cd / && ${NICE:+nice -n "$NICE"} runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$W/pg/data" -w -l "$W/pg/log" \
			-o "-k $W/pg -h 127.0.0.1 -p $port" start >/dev/null)
		PG_PID=$(head -n 1 "$W/pg/data/postmaster.pid")
		(cd / && runuser -u postgres -- "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres projstore)
		spec="postgresql://postgres@127.0.0.1:$port/projstore"
		"$PROJSTORE" --catalog "$spec" projects --limit 1 >/dev/null
		pg_fill "$port"
	fi
	local n
	n=$("$PROJSTORE" --catalog "$spec" projects --json | jq length)
	${NICE:+nice -n "$NICE"} "$PROJSTORE" serve --no-store --catalog "$spec" --token-file "$W/tokens" --listen 127.0.0.1:0 \
		--rate-limit 0 --threads "$SERVER_THREADS" >"$W/serve.log" 2>&1 &
	SERVE_PID=$!
	for _ in $(seq 1 100); do grep -q 'listening on' "$W/serve.log" && break; sleep 0.1; done
	local url
	url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$W/serve.log")
	[ -n "$url" ] || { cat "$W/serve.log" >&2; exit 1; }
	curl -sf -H "Authorization: Bearer $ADMIN" "${url}v1/projects/00000001-0000-4000-8000-000000000001" >/dev/null
	log "$engine: $n projects, server at $url"
	# a short warm-up: every worker opens its catalog connection
	${NICE:+nice -n "$NICE"} wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d 3s -s "$W/random-project.lua" \
		-H "Authorization: Bearer $ADMIN" "$url" >/dev/null
	local load0 load1 cpu0 cpu1 wrkcpu
	load0=$(cut -d' ' -f1-3 /proc/loadavg)
	cpu0=$(cpu_ticks "$engine")
	wrkcpu=$( (${NICE:+nice -n "$NICE"} wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "$DURATION" --latency -s "$W/random-project.lua" \
		-H "Authorization: Bearer $ADMIN" "$url" >"$W/wrk-$engine.txt"; times) |
		awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, a, "m"); t += a[1] * 60 + a[2] } print t }')
	cpu1=$(cpu_ticks "$engine")
	load1=$(cut -d' ' -f1-3 /proc/loadavg)
	local rps p50 p99 errs
	rps=$(awk '/^Requests\/sec:/ { print $2 }' "$W/wrk-$engine.txt")
	p50=$(awk '$1 == "50%" { print $2 }' "$W/wrk-$engine.txt")
	p99=$(awk '$1 == "99%" { print $2 }' "$W/wrk-$engine.txt")
	errs=$(grep -E 'Non-2xx|Socket errors' "$W/wrk-$engine.txt" | tr '\n' ' ' || true)
	local reqs cost
	reqs=$(awk '/requests in/ { print $1 }' "$W/wrk-$engine.txt")
	cost=$(awk -v a="${cpu0% *}" -v b="${cpu1% *}" -v pa="${cpu0#* }" -v pb="${cpu1#* }" \
		-v w="$wrkcpu" -v n="$reqs" -v hz="$(getconf CLK_TCK)" -v cores="$(nproc)" 'BEGIN {
		s = (b - a) / hz * 1e6 / n; p = (pb - pa) / hz * 1e6 / n; k = w * 1e6 / n
		printf "CPU per request: server %.1f us, postgresql %.1f us, wrk %.1f us; fits %.0f req/s on %d cores",
			s, p, k, cores * 1e6 / (s + p + k), cores }')
	printf '%-11s projects=%d  %s req/s  p50 %s  p99 %s  (wrk -t%s -c%s -d%s, server threads %s; load %s -> %s)%s\n' \
		"$engine" "$n" "$rps" "$p50" "$p99" "$WRK_THREADS" "$CONNECTIONS" "$DURATION" \
		"$SERVER_THREADS" "$load0" "$load1" "${errs:+  ERRORS: $errs}" | tee -a "$OUT"
	echo "            $cost" | tee -a "$OUT"
	sed 's/^/    /' "$W/wrk-$engine.txt" >>"$OUT"
	stop_pid "$SERVE_PID" TERM
	SERVE_PID=
	if [ "$engine" = postgresql ]; then
		stop_pid "$PG_PID" INT
		PG_PID=
	fi
}

mkdir -p "$(dirname "$OUT")"
{
	echo "# bench/serve.sh $(date -u +%FT%TZ) $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null)"
	echo "# $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), load at start $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# GET /v1/projects/{random id of $PROJECTS}, read token, rate limit off${NICE:+; nice $NICE}"
} | tee "$OUT"
for e in $ENGINES; do run_engine "$e"; done
echo "# load at end $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT"
