#!/bin/bash
# bench/history.sh - restore over a long history versus restore from a fresh store.
#
# A tree is saved 30 times (SAVES); before each save after the first, ~1% of its files (EDIT_PCT) are
# edited and 5 MB (ADD_MB) of new data is added (3/5 incompressible, 2/5 text). Then the newest
# snapshot is restored into an empty directory (median of RESTORES=3: history_time). The same final
# tree is then saved into a fresh store that holds only it and restored the same way (fresh_time).
# Printed: fresh_time/history_time per tool (1.0 = history costs nothing; target >= 0.95).
#
# The tree: the reference corpus ($BENCH_DIR/corpus, built with corpus-gen.sh when missing), or with
# SIZE=200M (K/M/G suffix) a synthetic tree of that size: small text files, some binaries, a few large files.
#
# env: BENCH_DIR (/var/tmp/projstore-bench), SIZE, SAVES (30), EDIT_PCT (1), ADD_MB (5), RESTORES (3),
#      TOOLS ("projstore restic borg"; borg uses zstd,3), DROP_CACHES (0; 1 = drop the page cache before each
#      restore), VERIFY (1), PROJSTORE (binary), PROJSTORE_REV (build a clean export of that commit)
set -euo pipefail
export LC_ALL=C

REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPUS_GEN=${CORPUS_GEN:-$REPO_ROOT/../shared/bench/corpus-gen.sh}
[ -f "$CORPUS_GEN" ] || CORPUS_GEN=/work/shared/bench/corpus-gen.sh
BENCH_DIR=${BENCH_DIR:-/var/tmp/projstore-bench}
SAVES=${SAVES:-30}
EDIT_PCT=${EDIT_PCT:-1}
ADD_MB=${ADD_MB:-5}
RESTORES=${RESTORES:-3}
TOOLS=${TOOLS:-"projstore restic borg"}
DROP_CACHES=${DROP_CACHES:-0}
VERIFY=${VERIFY:-1}
SIZE=${SIZE:-}
H=$BENCH_DIR/history
SRC=$H/src
START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need=()
for t in $TOOLS; do
	case $t in
	restic) command -v restic >/dev/null || need+=(restic) ;;
	borg) command -v borg >/dev/null || need+=(borgbackup) ;;
	esac
done
command -v rsync >/dev/null || need+=(rsync)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
	log "installing ${need[*]}"
	apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
mkdir -p "$BENCH_DIR"

# ---------------------------------------------------------------- projstore binary (as compare.sh)
PROJSTORE_BUILT="work tree $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$REPO_ROOT" diff --quiet HEAD -- src include Makefile 2>/dev/null || echo +uncommitted)"
build_rev() {
	local sha d
	sha=$(git -C "$REPO_ROOT" rev-parse --short "$1") || die "no commit $1"
	d=$BENCH_DIR/projstore-$sha
	if [ ! -x "$d/build/projstore" ]; then
		rm -rf "$d" && mkdir -p "$d"
		git -C "$REPO_ROOT" archive "$sha" | tar -xf - -C "$d"
		make -C "$d" -j2 build/projstore >&2 || die "make of commit $sha failed"
	fi
	PROJSTORE=$d/build/projstore
	PROJSTORE_BUILT="commit $sha (clean export)"
}
if [ -z "${PROJSTORE:-}" ]; then
	if [ -n "${PROJSTORE_REV:-}" ]; then
		build_rev "$PROJSTORE_REV"
	elif make -C "$REPO_ROOT" -j2 build/projstore >"$BENCH_DIR/make.log" 2>&1; then
		PROJSTORE=$REPO_ROOT/build/projstore
	else
		log "the work tree does not build ($BENCH_DIR/make.log); using a clean export of HEAD"
		build_rev HEAD
	fi
else
	PROJSTORE_BUILT="given binary $PROJSTORE"
fi

# ---------------------------------------------------------------- the tree
rm -rf "$H"
mkdir -p "$H"
if [ -n "$SIZE" ]; then
	TREE_NOTE="synthetic tree of $SIZE"
	python3 - "$SRC" "$SIZE" <<'EOF'
import os, random, sys
root, size = sys.argv[1], sys.argv[2]
mult = {'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30}
total = int(float(size[:-1]) * mult[size[-1].upper()]) if size[-1].upper() in mult else int(size)
r = random.Random(20260101)
words = [''.join(r.choice('abcdefghijklmnopqrstuvwxyz_') for _ in range(r.randint(2, 10))) for _ in range(5000)]
def text(n):
    out, k = [], 0
    while k < n:
        line = ' '.join(r.choice(words) for _ in range(r.randint(3, 12))) + '\n'
        out.append(line); k += len(line)
    return ''.join(out)[:n].encode()
made, i = 0, 0
while made < total:
    d = os.path.join(root, 'd%02d' % (i % 37), 's%03d' % (i % 211))
    os.makedirs(d, exist_ok=True)
    kind = r.random()
    if kind < 0.80:            # small source-like text file, 200 B .. 40 KB
        n = int(200 * (200 ** r.random())); data = text(n); name = 'f%06d.txt' % i
    elif kind < 0.97:          # binary 10 KB .. 2 MB, half compressible
        n = int(10240 * (200 ** r.random()))
        data = r.randbytes(n // 2) + text(n - n // 2); name = 'b%06d.bin' % i
    else:                      # large 4 .. 40 MB, incompressible
        n = int(4 * 1048576 * (10 ** r.random())); data = r.randbytes(n); name = 'L%06d.dat' % i
    n = min(n, max(total - made, 1))
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data[:n])
    made += n; i += 1
EOF
else
	CORPUS=$BENCH_DIR/corpus
	if [ ! -f "$BENCH_DIR/.corpus-done" ]; then
		log "building the reference corpus (a few minutes)"
		rm -rf "$BENCH_DIR/corpus" "$BENCH_DIR/corpus2"
		# no detached `git gc --auto` racing corpus-gen's touch of the sim repository (see compare.sh)
		GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=gc.auto GIT_CONFIG_VALUE_0=0 \
			bash "$CORPUS_GEN" "$BENCH_DIR" >"$BENCH_DIR/corpus-gen.log" 2>&1 || die "corpus-gen.sh failed"
		touch "$BENCH_DIR/.corpus-done"
	fi
	TREE_NOTE="reference corpus $CORPUS"
	rsync -aH --sparse "$CORPUS"/ "$SRC"/
fi

# one step of history: edit EDIT_PCT% of the files (append a line to small files, overwrite 64 KiB in
# place in files over 1 MiB), add ADD_MB of new data. Deterministic for a given step number.
edit_step() {
	python3 - "$SRC" "$1" "$EDIT_PCT" "$ADD_MB" <<'EOF'
import os, random, sys
root, step, pct, add_mb = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
r = random.Random(1000 + step)
files = []
for dp, dns, fns in os.walk(root):
    dns.sort()
    for fn in sorted(fns):
        p = os.path.join(dp, fn)
        if os.path.isfile(p) and not os.path.islink(p) and '/.git/' not in p:
            files.append(p)
k = max(1, int(len(files) * pct / 100))
for p in r.sample(files, k):
    st = os.stat(p)
    if st.st_nlink > 1 or not os.access(p, os.W_OK):
        continue
    if st.st_size > 1048576:
        with open(p, 'r+b') as f:
            f.seek(r.randrange(0, st.st_size - 65536)); f.write(r.randbytes(65536))
    else:
        with open(p, 'ab') as f:
            f.write(b'\n# history step %d edit %d\n' % (step, r.randrange(1 << 30)))
d = os.path.join(root, 'history-new', 'step%03d' % step)
os.makedirs(d, exist_ok=True)
n = int(add_mb * 1048576)
with open(os.path.join(d, 'raw.bin'), 'wb') as f:
    f.write(r.randbytes(n * 3 // 5))
with open(os.path.join(d, 'table.csv'), 'w') as f:
    left, i = n - n * 3 // 5, 0
    while left > 0:
        line = '%d,%d,%.6f,%.3f\n' % (step, i, r.random(), r.random() * 1000)
        f.write(line[:left]); left -= len(line); i += 1
EOF
}

# ---------------------------------------------------------------- tools
# tool_env TOOL STATE_DIR
tool_env() {
	local T=$2
	export PROJSTORE_CACHE_DIR=$T/cache
	export RESTIC_REPOSITORY=$T/repo RESTIC_CACHE_DIR=$T/cache RESTIC_PASSWORD=bench-password-not-secret
	export BORG_REPO=$T/repo BORG_BASE_DIR=$T/base BORG_CACHE_DIR=$T/cache BORG_CONFIG_DIR=$T/config \
		BORG_SECURITY_DIR=$T/security BORG_KEYS_DIR=$T/keys BORG_PASSPHRASE= \
		BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
}
RESTIC_NOPW=0
restic init --help 2>/dev/null | grep -q -- --insecure-no-password && RESTIC_NOPW=1
t_init() { # TOOL STATE
	tool_env "$1" "$2"
	rm -rf "$2" && mkdir -p "$2"
	case $1 in
	projstore) "$PROJSTORE" init "$2/repo" >/dev/null ;;
	restic) if ((RESTIC_NOPW)); then RESTIC_PASSWORD= restic init --insecure-no-password >/dev/null; else restic init >/dev/null; fi ;;
	borg) borg init -e none >/dev/null 2>&1 ;;
	esac
}
t_save() { # TOOL STATE
	tool_env "$1" "$2"
	case $1 in
	projstore) "$PROJSTORE" --store "$2/repo" save bench "$SRC" --cache-dir "$2/cache" ;;
	restic)
		if ((RESTIC_NOPW)); then restic backup -q --insecure-no-password "$SRC"; else restic backup -q "$SRC"; fi ;;
	borg) borg create --compression zstd,3 "::s$(date +%s%N)" "$SRC" ;;
	esac
}
t_restore() { # TOOL STATE TARGET
	tool_env "$1" "$2"
	case $1 in
	projstore) "$PROJSTORE" --store "$2/repo" restore bench "$3" ;;
	restic)
		if ((RESTIC_NOPW)); then restic restore latest -q --insecure-no-password --target "$3"
		else restic restore latest -q --target "$3"; fi ;;
	borg) (cd "$3" && borg extract "::$(borg list --short --last 1)") ;;
	esac
}
restored_root() { case $1 in restic | borg) echo "$2$SRC" ;; *) echo "$2" ;; esac; }
now_ns() { date +%s%N; }
PROBLEMS=$H/problems
: >"$PROBLEMS"
run_or_note() { # DESC CMD...: runs CMD with output in $H/.out; notes a failure
	local d=$1 rc=0
	shift
	"$@" >"$H/.out" 2>&1 || rc=$?
	if ((rc)); then
		log "FAILED (exit $rc): $d: $*"
		printf '%s: FAILED (exit %s): %s\n%s\n' "$d" "$rc" "$*" "$(tail -20 "$H/.out" | sed 's/^/    /')" >>"$PROBLEMS"
	fi
	return $rc
}
# restore_median TOOL STATE LABEL: prints the median wall seconds of RESTORES restores
restore_median() {
	local tool=$1 T=$2 label=$3 i t0 t1 R=$H/restore
	: >"$H/.times"
	for ((i = 1; i <= RESTORES; i++)); do
		rm -rf "$R" && mkdir -p "$R"
		if ((DROP_CACHES)); then sync && echo 3 >/proc/sys/vm/drop_caches; fi
		t0=$(now_ns)
		run_or_note "$tool $label restore" t_restore "$tool" "$T" "$R" || { echo NA; return; }
		t1=$(now_ns)
		awk -v ns=$((t1 - t0)) 'BEGIN{printf "%.3f\n", ns/1e9}' >>"$H/.times"
		log "  $tool $label restore $i: $(tail -1 "$H/.times") s"
		if ((VERIFY)) && ((i == 1)); then
			diff -rq --no-dereference "$SRC" "$(restored_root "$tool" "$R")" >"$H/.diff" 2>&1 ||
				printf '%s %s restore differs from the tree:\n%s\n' "$tool" "$label" "$(head -10 "$H/.diff")" >>"$PROBLEMS"
		fi
	done
	rm -rf "$R"
	sort -g "$H/.times" | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'
}

# ---------------------------------------------------------------- history
nfiles0=$(find "$SRC" -type f | wc -l)
bytes0=$(du -sb "$SRC" | cut -f1)
log "tree: $TREE_NOTE: $nfiles0 files, $bytes0 bytes; $SAVES saves, ${EDIT_PCT}% edited + ${ADD_MB} MB added per save"
declare -A SAVE_T
for tool in $TOOLS; do t_init "$tool" "$H/$tool.hist"; SAVE_T[$tool]=0; done
for ((step = 1; step <= SAVES; step++)); do
	((step == 1)) || edit_step "$step"
	for tool in $TOOLS; do
		t0=$(now_ns)
		run_or_note "$tool save $step" t_save "$tool" "$H/$tool.hist" || true
		t1=$(now_ns)
		SAVE_T[$tool]=$(awk -v a="${SAVE_T[$tool]}" -v ns=$((t1 - t0)) 'BEGIN{printf "%.3f", a + ns/1e9}')
	done
	log "save $step done (cumulative: $(for t in $TOOLS; do printf '%s %ss ' "$t" "${SAVE_T[$t]}"; done))"
done
nfiles=$(find "$SRC" -type f | wc -l)
bytes=$(du -sb "$SRC" | cut -f1)

declare -A HT FT HS FS
for tool in $TOOLS; do
	log "== $tool: restore of the newest of $SAVES snapshots"
	HT[$tool]=$(restore_median "$tool" "$H/$tool.hist" history)
	HS[$tool]=$(du -sb "$H/$tool.hist/repo" | cut -f1)
	rm -rf "$H/$tool.hist"
	log "== $tool: fresh store holding only the final tree"
	t_init "$tool" "$H/$tool.fresh"
	run_or_note "$tool fresh save" t_save "$tool" "$H/$tool.fresh" || true
	FT[$tool]=$(restore_median "$tool" "$H/$tool.fresh" fresh)
	FS[$tool]=$(du -sb "$H/$tool.fresh/repo" | cut -f1)
	rm -rf "$H/$tool.fresh"
done

# ---------------------------------------------------------------- report
ver() {
	case $1 in
	projstore) echo "projstore $("$PROJSTORE" --version | awk '{print $NF}') ($PROJSTORE_BUILT)" ;;
	restic) restic version | cut -d' ' -f1-2 ;;
	borg) echo "$(borg --version) -C zstd,3" ;;
	esac
}
{
	echo "restore over history: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1); load average at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "tree: $TREE_NOTE; start $nfiles0 files / $bytes0 bytes, final $nfiles files / $bytes bytes"
	echo "history: $SAVES saves, each after editing ${EDIT_PCT}% of the files and adding ${ADD_MB} MB"
	echo "restores: median of $RESTORES into an empty dir, $( ((DROP_CACHES)) && echo 'page cache dropped before each' || echo 'warm page cache')"
	for t in $TOOLS; do echo "  $(ver "$t")"; done
	echo
	printf '%-10s | %12s | %12s | %14s | %16s | %16s | %14s\n' tool "history (s)" "fresh (s)" "fresh/history" "history repo (B)" "fresh repo (B)" "all saves (s)"
	printf '%-10s | %12s | %12s | %14s | %16s | %16s | %14s\n' ---------- ------------ ------------ -------------- ---------------- ---------------- --------------
	for t in $TOOLS; do
		r=$(awk -v f="${FT[$t]}" -v h="${HT[$t]}" 'BEGIN{ if (h+0 > 0 && f+0 > 0) printf "%.3f", f/h; else print "n/a"}')
		printf '%-10s | %12s | %12s | %14s | %16s | %16s | %14s\n' "$t" "${HT[$t]}" "${FT[$t]}" "$r" "${HS[$t]}" "${FS[$t]}" "${SAVE_T[$t]}"
	done
	echo
	echo "fresh/history >= 0.95 is the target: restoring the newest of many incremental snapshots should cost"
	echo "no more than ~5% over restoring the same tree from a store that holds only it."
	if [ -s "$PROBLEMS" ]; then
		echo
		echo "PROBLEMS:"
		sed 's/^/  /' "$PROBLEMS"
	fi
	echo
	echo "total run time of history.sh: $(($(date +%s) - START)) s"
} | tee "$H/report.txt"
rm -rf "$SRC"
