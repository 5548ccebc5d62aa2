#!/bin/bash
# bench/migrate.sh - throughput of `projstore migrate` over many small homes against one `projstore save`
# of the same bytes (the target: migrate >= 80% of the single save).
#
# A slice of the reference corpus (files of src/ and docs/ in path order, SLICE_MB in all) is cut into
# HOMES homes of about equal size, each a contiguous run of the corpus's files (so a home holds whole
# directories, as a real one does): $W/src/home-NNNN. Then, each in a fresh store and cache:
#   single    projstore save all $W/src               (one project: every home a subdirectory)
#   migrate   projstore migrate $W/src -j J           (one project per home), for each J in JOBS
# and, after the last migrate run, the unchanged second pass and a bare stat walk (find) of the tree.
# The tree is read once before the runs (warm page cache); before each run the store is made afresh and
# `sync` writes back what earlier runs left dirty. Each figure is the median of RUNS runs.
# Throughput = bytes of file data in the tree / wall time; the ratio is to the single save.
#
# env: BENCH_DIR (/var/tmp/projstore-bench), CORPUS ($BENCH_DIR/corpus), SLICE_MB (400), HOMES (100),
#      RUNS (3), JOBS ("2 4"), THREADS (threads per save in migrate; default: migrate's own),
#      PROJSTORE (binary; default the work tree's build/projstore, built with make -j2),
#      NICE (e.g. -10: run the timed commands at that nice level on a shared machine),
#      KEEP (1 = leave the homes in $BENCH_DIR/migrate-work/src after the run, for profiling)
# Prints a report on stdout (save it as bench/results/DATE-migrate.txt); progress on stderr.
set -euo pipefail
export LC_ALL=C

REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/var/tmp/projstore-bench}
CORPUS=${CORPUS:-$BENCH_DIR/corpus}
SLICE_MB=${SLICE_MB:-400}
HOMES=${HOMES:-100}
RUNS=${RUNS:-3}
JOBS=${JOBS:-"2 4"}
THREADS=${THREADS:-}
W=$BENCH_DIR/migrate-work
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ -d "$CORPUS/src" ] && [ -d "$CORPUS/docs" ] ||
	die "no reference corpus at $CORPUS (bench/compare.sh builds it, or set CORPUS)"
command -v rsync >/dev/null || die "rsync is needed (apt-get install rsync)"
command -v jq >/dev/null || die "jq is needed (apt-get install jq)"
if [ -z "${PROJSTORE:-}" ]; then
	log "building projstore"
	make -C "$REPO_ROOT" -j2 build/projstore >&2 || die "make failed"
	PROJSTORE=$REPO_ROOT/build/projstore
fi
NICE_CMD=()
[ -n "${NICE:-}" ] && NICE_CMD=(nice -n "$NICE")

# ----------------------------------------------------------------- the homes
rm -rf "$W"
mkdir -p "$W/lists" "$W/src"
log "cutting ${SLICE_MB} MB of $CORPUS into $HOMES homes"
(cd "$CORPUS" && find src docs -type f -printf '%s\t%p\n' | sort -t "$(printf '\t')" -k2,2) |
	awk -F '\t' -v limit=$((SLICE_MB * 1024 * 1024)) -v homes="$HOMES" -v dir="$W/lists" '
		full || total + $1 > limit { full = 1; next }
		{ total += $1; n++; size[n] = $1; path[n] = $2 }
		END {
			per = total / homes; acc = 0
			for (i = 1; i <= n; i++) {
				h = int(acc / per) + 1; if (h > homes) h = homes
				printf "%s\n", path[i] > sprintf("%s/home-%04d", dir, h)
				acc += size[i]
			}
		}'
for list in "$W"/lists/home-*; do
	h=$(basename "$list")
	rsync -a --files-from="$list" "$CORPUS/" "$W/src/$h/"
done
NHOMES=$(ls "$W/src" | wc -l)
BYTES=$(find "$W/src" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%d", s }')
FILES=$(find "$W/src" -type f | wc -l)
log "$NHOMES homes, $FILES files, $BYTES bytes"

warm() { find "$W/src" -type f -exec cat {} + >/dev/null; }

# run_timed OUTFILE CMD...: wall seconds of CMD (stdout to OUTFILE) on stdout
run_timed() {
	local out=$1 t0 t1
	shift
	t0=$(date +%s.%N)
	"${NICE_CMD[@]}" "$@" >"$out" 2>>"$W/errors.log" || {
		local rc=$?
		# migrate exits 4 when a project is over its quota: not a failure here (no quota is set)
		[ "$rc" -eq 3 ] || [ "$rc" -eq 4 ] || [ "$rc" -eq 5 ] || die "failed ($rc): $* (see $W/errors.log)"
	}
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Every run gets a store and cache of its own, in a new directory; the old ones are deleted only at the end.
# Deleting the previous run's store (tens of thousands of files) just before a run would make that run pay for
# it: on ext4 without a journal (as on the machines these figures come from) a new inode is never one freed in
# the last minutes, and finding another scans the inode tables (the kernel's recently_deleted(): ~15% of a
# migrate's CPU in perf after such a delete, little of a single save's, which makes few files).
RUN=0
fresh() {
	RUN=$((RUN + 1))
	export PROJSTORE_STORE=$W/runs/$RUN/store PROJSTORE_CACHE_DIR=$W/runs/$RUN/cache
	mkdir -p "$W/runs/$RUN"
	"$PROJSTORE" init >/dev/null
	# the previous run's writeback (hundreds of MiB of packs) must not land in
	# this run's fsyncs: every run starts with nothing dirty
	sync
}

export PROJSTORE_NO_PROGRESS=1
unset PROJSTORE_CATALOG

warm
declare -A T
log "single save x$RUNS"
for r in $(seq "$RUNS"); do
	fresh
	T[single]+="$(run_timed "$W/single.out" "$PROJSTORE" save all "$W/src")"$'\n'
done
for j in $JOBS; do
	log "migrate -j $j x$RUNS"
	for r in $(seq "$RUNS"); do
		fresh
		T[mig$j]+="$(run_timed "$W/migrate-$j.json" "$PROJSTORE" migrate "$W/src" -j "$j" \
			${THREADS:+--threads "$THREADS"} --json)"$'\n'
		jq -e ".failed == 0 and .imported == $NHOMES" "$W/migrate-$j.json" >/dev/null ||
			die "migrate -j $j did not import every home (see $W/migrate-$j.json)"
	done
done
LASTJ=${JOBS##* }
log "unchanged second pass (-j $LASTJ), stat walk, no-change single save x$RUNS"
for r in $(seq "$RUNS"); do
	T[pass2]+="$(run_timed "$W/pass2.json" "$PROJSTORE" migrate "$W/src" -j "$LASTJ" --json)"$'\n'
	jq -e ".unchanged == $NHOMES" "$W/pass2.json" >/dev/null || die "second pass was not all unchanged"
	T[find]+="$(run_timed /dev/null find "$W/src" -printf '%s\n')"$'\n'
done
fresh
run_timed /dev/null "$PROJSTORE" save all "$W/src" >/dev/null
for r in $(seq "$RUNS"); do
	T[nochange]+="$(run_timed /dev/null "$PROJSTORE" save all "$W/src")"$'\n'
done

# ----------------------------------------------------------------- report
med() { printf '%s' "${T[$1]}" | grep . | median; }
mbs() { awk -v b="$BYTES" -v t="$1" 'BEGIN { printf "%.1f", b / 1048576 / t }'; }
single=$(med single)
echo "projstore migrate vs one save of the same bytes ($(date -u +%F))"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -r)"
echo "binary: $PROJSTORE ($(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo ?))"
echo "load average at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "tree: $NHOMES homes cut from $CORPUS (src/ and docs/ in path order), $FILES files,"
echo "      $(awk -v b="$BYTES" 'BEGIN { printf "%.1f MiB", b / 1048576 }') of file data, about $(awk -v b="$BYTES" -v n="$NHOMES" 'BEGIN { printf "%.1f MiB", b / n / 1048576 }') per home"
echo "runs: median of $RUNS, warm page cache, fresh store and cache and sync before each run${NICE:+, nice $NICE}"
echo
printf '%-44s %10s %10s %10s\n' "" "seconds" "MiB/s" "vs single"
printf '%-44s %10s %10s %10s\n' "save all (one project, $(nproc) threads)" "$single" "$(mbs "$single")" "100%"
for j in $JOBS; do
	t=$(med "mig$j")
	printf '%-44s %10s %10s %9s%%\n' "migrate -j $j ($NHOMES projects${THREADS:+, --threads $THREADS})" "$t" "$(mbs "$t")" \
		"$(awk -v a="$single" -v b="$t" 'BEGIN { printf "%.0f", a / b * 100 }')"
done
echo
printf '%-44s %10s\n' "migrate second pass, nothing changed (-j $LASTJ)" "$(med pass2)"
printf '%-44s %10s\n' "no-change save of the single project" "$(med nochange)"
printf '%-44s %10s\n' "find over the tree (bare stat walk)" "$(med find)"
echo
echo "all runs (seconds):"
for k in single $(for j in $JOBS; do echo "mig$j"; done) pass2 nochange find; do
	printf '  %-10s %s\n' "$k" "$(printf '%s' "${T[$k]}" | grep . | tr '\n' ' ')"
done
if [ -s "$W/errors.log" ]; then
	echo
	echo "stderr of the runs (first lines):"
	head -n 20 "$W/errors.log" | sed 's/^/  /'
fi
rm -rf "$W/runs"
[ "${KEEP:-0}" = 1 ] || rm -rf "$W"
