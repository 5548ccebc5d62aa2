#!/bin/bash
# bench/catalog.sh - catalog lookups with many projects: `projstore where` and
# `projstore projects --search`, SQLite and PostgreSQL (a throwaway server on
# loopback, started and stopped by this script), each timed as a whole
# command (process start, catalog open, query) with hyperfine.
#
# Targets (issue 4): where < 5 ms median with PostgreSQL and 20,000 projects;
# projects --search over 20,000 projects < 50 ms.
#
# Also the in-process cost, without process start-up (bench/catlookup.c: one
# open catalog, 5,000 lookups and 200 searches), and `projstore --version` as
# the floor of any command.  With PostgreSQL, for comparison on the same
# machine: /bin/true (the floor of any process), `psql -c` of the same lookup
# (PostgreSQL's own client: process + libpq + a new server backend), `where`
# through PgBouncer in session mode (when pgbouncer is installed: no new
# backend per command; docs/CATALOG.md), `where --api` through `projstore serve`
# (the launcher alone asks the server's open connection), and the same lookup
# through the server one request at a time (wrk, 1 connection: a front end's view).
#
# env: PROJECTS (20000), RUNS (200 for where, 50 for search), PROJSTORE (binary),
#      ENGINES ("sqlite postgresql"), OUT (bench/results/catalog-DATE.txt)
set -euo pipefail
export LC_ALL=C
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
PROJSTORE=${PROJSTORE:-$REPO_ROOT/build/projstore}
# the in-process cost (no process start): built by `make bench-build`
CATLOOKUP=${CATLOOKUP:-$(dirname "$PROJSTORE")/bench/catlookup}
PROJECTS=${PROJECTS:-20000}
RUNS=${RUNS:-200}
ENGINES=${ENGINES:-"sqlite postgresql"}
OUT=${OUT:-$REPO_ROOT/bench/results/catalog-$(date -u +%Y%m%dT%H%M%SZ).txt}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
W=$(mktemp -d /tmp/projstore-bench-catalog.XXXXXX)
chmod 755 "$W"
PG_PID=
PGB_PID=
SERVE_PID=
cleanup() {
	[ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null
	[ -n "$PGB_PID" ] && kill -INT "$PGB_PID" 2>/dev/null
	if [ -n "$PG_PID" ] && kill -0 "$PG_PID" 2>/dev/null; then
		kill -INT "$PG_PID"
		while kill -0 "$PG_PID" 2>/dev/null; do sleep 0.1; done
	fi
	rm -rf "$W"
}
trap cleanup EXIT
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# the projects: UUID-like ids, a few hosts, realistic facts; one bulk insert
gen_sql() {
	python3 - "$PROJECTS" <<'PY'
import sys, uuid, random
n = int(sys.argv[1]); random.seed(7)
print("BEGIN;")
for i in range(n):
    pid = str(uuid.UUID(int=random.getrandbits(128)))
    host = "host%02d" % (i % 20) if i % 3 else ""
    status = "deployed" if host else "stored"
    print("INSERT INTO projects (id, host, status, logical_bytes, stored_bytes, compressratio,"
          " dedupratio, snapshots, last_snapshot, last_snapshot_at, updated_at) VALUES"
          " ('%s', '%s', '%s', %d, %d, 2.1, 1.3, %d, '2026-11-25T10:00:00.000000Z-00000000',"
          " 1764064800000000, 1764064800000000);"
          % (pid, host, status, random.randint(1, 1 << 32), random.randint(1, 1 << 30),
             random.randint(1, 500)))
print("COMMIT;")
PY
}

run_engine() {
	local engine=$1 spec
	if [ "$engine" = sqlite ]; then
		spec="sqlite:$W/catalog.db"
		"$PROJSTORE" --catalog "$spec" projects --limit 1 >/dev/null
		gen_sql | python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.stdin.read())" "$W/catalog.db"
	else
		mkdir "$W/pg" && chown postgres: "$W/pg"
		(cd / && runuser -u postgres -- "$PG_BIN/initdb" -D "$W/pg/data" -A trust -U postgres --no-sync >/dev/null)
		local port=$((30000 + RANDOM % 20000))
		(cd / && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$W/pg/data" -w -l "$W/pg/log" \
			-o "-k $W/pg -h 127.0.0.1 -p $port" start >/dev/null)
		PG_PID=$(head -n 1 "$W/pg/data/postmaster.pid")
		(cd / && runuser -u postgres -- "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres projstore)
		spec="postgresql://postgres@127.0.0.1:$port/projstore"
		"$PROJSTORE" --catalog "$spec" projects --limit 1 >/dev/null
		gen_sql | (cd / && runuser -u postgres -- psql -q -h 127.0.0.1 -p "$port" -U postgres -d projstore) >/dev/null
	fi
	local n id
	n=$("$PROJSTORE" --catalog "$spec" projects --json | jq length)
	id=$("$PROJSTORE" --catalog "$spec" projects --search 7f --limit 1 --json | jq -r '.[0].id')
	log "$engine: $n projects; where $id"
	hyperfine -N -w 20 -r "$RUNS" --export-json "$W/where-$engine.json" \
		"$PROJSTORE --catalog $spec where $id" >/dev/null
	hyperfine -N -w 5 -r $((RUNS / 4 > 10 ? RUNS / 4 : 10)) --export-json "$W/search-$engine.json" \
		"$PROJSTORE --catalog $spec projects --search 7f3 --json" >/dev/null
	hyperfine -N -w 20 -r "$RUNS" --export-json "$W/version.json" "$PROJSTORE --version" >/dev/null
	local wm sm hits vm
	vm=$(jq '.results[0].median * 1000' "$W/version.json")
	wm=$(jq '.results[0].median * 1000' "$W/where-$engine.json")
	sm=$(jq '.results[0].median * 1000' "$W/search-$engine.json")
	hits=$("$PROJSTORE" --catalog "$spec" projects --search 7f3 --json | jq length)
	printf '%-11s projects=%d  where median %.2f ms  projects --search (%d hits) median %.2f ms  (--version %.2f ms)\n' \
		"$engine" "$n" "$wm" "$hits" "$sm" "$vm" | tee -a "$OUT"
	if [ -x "$CATLOOKUP" ]; then
		"$CATLOOKUP" "$spec" 5000 200 7f3 | sed "s/^/$engine in-process: /" | tee -a "$OUT"
	fi
	if [ "$engine" = postgresql ]; then
		pg_extras "$port" "$spec" "$id"
	fi
	if [ "$engine" = postgresql ]; then
		kill -INT "$PG_PID"
		while kill -0 "$PG_PID" 2>/dev/null; do sleep 0.1; done
		PG_PID=
	fi
}

# median seconds*1000 of a hyperfine export
median_ms() { jq '.results[0].median * 1000' "$1"; }

# pg_extras PORT SPEC ID: the comparisons of the header, for PostgreSQL
pg_extras() {
	local port=$1 spec=$2 id=$3 line
	hyperfine -N -w 10 -r "$RUNS" --export-json "$W/true.json" /bin/true >/dev/null
	hyperfine -N -w 10 -r "$RUNS" --export-json "$W/psql.json" \
		"$PG_BIN/psql -X -A -t -h 127.0.0.1 -p $port -U postgres -d projstore -c \"SELECT host FROM projects WHERE id = '$id'\"" >/dev/null
	line=$(printf 'postgresql  comparisons: /bin/true %.2f ms; psql -c of the same lookup %.2f ms' \
		"$(median_ms "$W/true.json")" "$(median_ms "$W/psql.json")")
	if command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ]; then
		local pgb bport=$((port + 1))
		pgb=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
		mkdir "$W/pgb"
		cat >"$W/pgb/pgb.ini" <<INI
[databases]
projstore = host=127.0.0.1 port=$port dbname=projstore user=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = trust
auth_file = $W/pgb/users.txt
pool_mode = session
server_reset_query = DISCARD ALL
ignore_startup_parameters = options
logfile = $W/pgb/pgb.log
pidfile = $W/pgb/pgb.pid
INI
		echo '"postgres" ""' >"$W/pgb/users.txt"
		chown -R postgres: "$W/pgb"
		(cd / && runuser -u postgres -- "$pgb" -d "$W/pgb/pgb.ini")
		sleep 0.5
		PGB_PID=$(cat "$W/pgb/pgb.pid")
		local bspec="postgresql://postgres@127.0.0.1:$bport/projstore"
		"$PROJSTORE" --catalog "$bspec" where "$id" >/dev/null
		hyperfine -N -w 20 -r "$RUNS" --export-json "$W/where-pgb.json" \
			"$PROJSTORE --catalog $bspec where $id" >/dev/null
		line="$line; where through PgBouncer $(printf '%.2f' "$(median_ms "$W/where-pgb.json")") ms"
		kill -INT "$PGB_PID"
		PGB_PID=
	fi
	# projstore serve on the same catalog: `where --api` as a whole command (the
	# launcher alone: no core, no libpq; one HTTP request to the server's open
	# connection), and the request itself one at a time (wrk, when installed)
	local tok url
	tok=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
	(umask 077 && echo "read $tok" >"$W/tokens")
	"$PROJSTORE" --catalog "$spec" serve --listen 127.0.0.1:0 --token-file "$W/tokens" --rate-limit 0 \
		>"$W/serve.out" 2>&1 &
	SERVE_PID=$!
	for _ in $(seq 1 100); do grep -q listening "$W/serve.out" && break; sleep 0.1; done
	url=$(grep -o 'http://127.0.0.1:[0-9]*' "$W/serve.out" | head -n 1)
	PROJSTORE_API_TOKEN=$tok "$PROJSTORE" where "$id" --api "$url" >/dev/null
	PROJSTORE_API_TOKEN=$tok hyperfine -N -w 20 -r "$RUNS" --export-json "$W/where-api.json" \
		"$PROJSTORE where $id --api $url" >/dev/null
	line="$line; where --api through projstore serve $(printf '%.2f' "$(median_ms "$W/where-api.json")") ms (p90 $(jq '[.results[0].times[]] | sort | .[(length * 9 / 10 | floor)] * 1000 | . * 100 | round / 100' "$W/where-api.json") ms)"
	PROJSTORE_API_TOKEN=$tok hyperfine -N -w 5 -r $((RUNS / 4 > 10 ? RUNS / 4 : 10)) --export-json "$W/search-api.json" \
		"$PROJSTORE projects --search 7f3 --json --api $url" >/dev/null
	line="$line; projects --search --api $(printf '%.2f' "$(median_ms "$W/search-api.json")") ms"
	if command -v wrk >/dev/null; then
		wrk -t1 -c1 -d5s --latency -H "Authorization: Bearer $tok" "$url/v1/projects/$id" >"$W/wrk1.txt"
		line="$line; GET /v1/projects/{id} one at a time: median $(awk '$1 == "50%" { print $2 }' "$W/wrk1.txt"), p99 $(awk '$1 == "99%" { print $2 }' "$W/wrk1.txt")"
	fi
	kill "$SERVE_PID"
	wait "$SERVE_PID" 2>/dev/null || true
	SERVE_PID=
	echo "$line" | tee -a "$OUT"
}

mkdir -p "$(dirname "$OUT")"
{
	echo "# bench/catalog.sh $(date -u +%FT%TZ) $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null)"
	echo "# $(nproc) cores, load at start $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT"
for e in $ENGINES; do run_engine "$e"; done
echo "# load at end $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT"
