#!/bin/bash
# bench/gc-large.sh - gc on a large store: time and peak memory.
#
# usage: [PACK_MB=4] [SEGMENT_DIRS=100] bench/gc-large.sh [NOBJECTS] [WORKDIR]
#
# Builds a store of NOBJECTS (default 1000000) small unique objects with
# bench/gc-gen.c (two snapshots; see there), prunes the older snapshot so that
# a tenth of the objects becomes garbage in whole packs and another tenth in
# packs a third reachable, then times `gc --dry-run`, `gc --grace 0` and a
# second, idle `gc` with /usr/bin/time -v (elapsed seconds, peak RSS), and
# checks the store.  PACK_MB sets the store's pack size (default 4 MiB:
# about 25000 of these objects per pack); SEGMENT_DIRS the directories (of
# 1000 objects) per index segment (1000000: one segment, as after a
# compaction; the worst case for memory).  Targets at 1M objects: gc < 60 s, peak RSS < 200 MB.
# WORKDIR (default /var/tmp/projstore-gcbench) is removed and recreated.
# The report is printed and written to bench/results/<date>-gc-large.txt.
set -eu
N=${1:-1000000}
PACK_MB=${PACK_MB:-4}
SEGMENT_DIRS=${SEGMENT_DIRS:-100}
WORK=${2:-/var/tmp/projstore-gcbench}
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
make -s -j2 "$BUILD/projstore" "$BUILD/bench/gc-gen" >/dev/null
P=$PWD/$BUILD/projstore
OUT=bench/results/$(date -u +%Y-%m-%d)-gc-large.txt
mkdir -p bench/results
rm -rf "$WORK"
mkdir -p "$WORK"
export PROJSTORE_STORE=$WORK/store PROJSTORE_NO_PROGRESS=1

# measure LABEL CMD...: runs CMD under /usr/bin/time -v; prints one line
measure () {
	local label=$1
	shift
	/usr/bin/time -v "$@" >"$WORK/$label.out" 2>"$WORK/$label.time"
	printf '%-22s %8.2f s  peak RSS %7.1f MB\n' "$label" \
		"$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, a, ":"); s = 0;
			for (i = 1; i <= n; i++) s = s * 60 + a[i]; print s }' "$WORK/$label.time")" \
		"$(awk -F': ' '/Maximum resident/ { print $2 / 1024 }' "$WORK/$label.time")"
}

{
	echo "gc-large: $N objects, pack size $PACK_MB MiB, $SEGMENT_DIRS directories per index segment, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "work dir: $WORK ($(df -T "$WORK" | awk 'NR == 2 { print $2 }'))"
	measure generate "$PWD/$BUILD/bench/gc-gen" "$PROJSTORE_STORE" "$N" $((PACK_MB * 1024 * 1024)) "$SEGMENT_DIRS"
	echo "store: $(du -sb "$PROJSTORE_STORE" | cut -f1) bytes, $(find "$PROJSTORE_STORE/packs" -name '*.pack' | wc -l) packs, $(ls "$PROJSTORE_STORE/index" | wc -l) index segments"
	"$P" prune gcbench --keep-last 1 >/dev/null
	measure "gc --dry-run" "$P" gc --dry-run --json
	jq -c '{projects, snapshots, packs, objects, live_objects, stored_bytes, live_bytes, condemned_packs, condemned_bytes}' "$WORK/gc --dry-run.out"
	measure "gc --grace 0" "$P" gc --grace 0 --json
	jq -c '{deleted_packs, repacked_packs, kept_packs, copied_objects, copied_bytes, freed_bytes, pending_lists}' "$WORK/gc --grace 0.out"
	echo "store: $(du -sb "$PROJSTORE_STORE" | cut -f1) bytes, $(find "$PROJSTORE_STORE/packs" -name '*.pack' | wc -l) packs, $(ls "$PROJSTORE_STORE/index" | wc -l) index segments"
	measure "gc (nothing to do)" "$P" gc --grace 0 --json
	measure "check" "$P" check --json
	jq -c '{ok, packs, objects, snapshots, trees, leftovers}' "$WORK/check.out"
} | tee "$OUT"
echo "written to $OUT"
