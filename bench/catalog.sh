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
# the floor of any command.
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
cleanup() {
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
		kill -INT "$PG_PID"
		while kill -0 "$PG_PID" 2>/dev/null; do sleep 0.1; done
		PG_PID=
	fi
}

mkdir -p "$(dirname "$OUT")"
{
	echo "# bench/catalog.sh $(date -u +%FT%TZ) $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null)"
	echo "# $(nproc) cores, load at start $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT"
for e in $ENGINES; do run_engine "$e"; done
echo "# load at end $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT"
