#!/bin/bash
# bench/gluster.sh - save and restore throughput of a store on GlusterFS: through libgfapi (gluster://, no
# mount), through a FUSE mount of the same volume (mount -t glusterfs) and, for scale, on the local disk.
#
#   bench/gluster.sh            (as root; results also go to bench/results/DATE-gluster.txt)
#
# Data: a SIZE_MB (300) slice of the reference corpus ($CORPUS, default /var/tmp/projstore-bench/corpus,
# made by ../shared/bench/corpus-gen.sh; see bench/README.md): files no larger than SIZE_MB/8 taken in a
# fixed pseudo-random order until the slice holds SIZE_MB, so it mixes the corpus' small source files,
# documents and large data files. Without the corpus, tests/tools/mktree.sh plus random and text files of
# the same total size are used instead. The slice is made once in $BENCH_DIR and kept.
#
# GlusterFS: one glusterd with a replica 3 volume, started by tests/e2e/lib-gluster.sh in network and
# mount namespaces of its own (its bricks are directories in $BENCH_DIR/gluster on the same disk as the
# local store), stopped by PID at the end. Everything runs on this one machine: the "network" is
# loopback, and the three bricks write three copies to one disk. The figures show what the client path
# (libgfapi vs FUSE) costs, not what a real network of servers would do.
#
# Each run: a new, empty store; `projstore save` of the slice (timed); `projstore restore --no-cache` of
# it into an empty directory in tmpfs (timed; $OUT_DIR, default /dev/shm/...): writing 30,000 files to the
# disk would cost the same for every store and, on a shared machine, vary more than the differences
# between the stores. Source files and the
# store's files are in the page cache as they would be on a busy host; no cache is dropped (the machine is
# shared). The first restore of each kind is compared with the slice (treecmp, else diff -r). Median of
# REPS (3) runs.
# MB/s = slice bytes (apparent size) / seconds; ratios are against the local disk of the same run set.
#
# Environment: BENCH_DIR (/var/tmp/projstore-bench-gluster), CORPUS, SIZE_MB (300), REPS (3),
# OUT_DIR (restore target, /dev/shm/projstore-bench-gluster-out), PROJSTORE (the binary; default the work
# tree's build/projstore).
set -eu
export LC_ALL=C TZ=UTC
SRC=$(cd "$(dirname "$0")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/var/tmp/projstore-bench-gluster}
CORPUS=${CORPUS:-/var/tmp/projstore-bench/corpus}
SIZE_MB=${SIZE_MB:-300}
REPS=${REPS:-3}
PROJSTORE=${PROJSTORE:-$SRC/build/projstore}
RESULT=$SRC/bench/results/$(date +%Y-%m-%d)-gluster.txt
VOL=psbench
OUT_DIR=${OUT_DIR:-/dev/shm/projstore-bench-gluster-out}
export PROJSTORE_NO_PROGRESS=1

[ "$(id -u)" = 0 ] || { echo "bench/gluster.sh: run as root (glusterd, mounts, namespaces)" >&2; exit 1; }
[ -x "$PROJSTORE" ] || { echo "bench/gluster.sh: $PROJSTORE missing: make -j2 first" >&2; exit 1; }
for p in glusterfs-server iproute2; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p"
done
mkdir -p "$BENCH_DIR" "$SRC/bench/results"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd -P)

# shellcheck source=../tests/e2e/lib-gluster.sh
. "$SRC/tests/e2e/lib-gluster.sh"

now () { echo "$EPOCHREALTIME"; }
elapsed () { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
median () { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# ------------------------------------------------------------------ data
SLICE=$BENCH_DIR/slice-$SIZE_MB
make_slice () {
	local budget=$((SIZE_MB << 20)) max=$(((SIZE_MB << 20) / 8))
	[ -e "$SLICE/.done" ] && return 0
	rm -rf "$SLICE"
	mkdir -p "$SLICE/tree"
	if [ -d "$CORPUS" ]; then
		# a fixed shuffle of the corpus' files (sort -R with a constant random source)
		(cd "$CORPUS" && find . -type f -size -"$((max + 1))"c -printf '%s %P\0') |
		sort -z -R --random-source=<(yes projstore) |
		awk -v RS='\0' -v ORS='\0' -v b="$budget" '{ s = $1; sub(/^[0-9]+ /, ""); if (t >= b) exit; t += s; print }' \
			>"$SLICE/files"
		tar -C "$CORPUS" --null -T "$SLICE/files" -S -cf - | tar -C "$SLICE/tree" -xf -
		echo "a $SIZE_MB MB slice of $CORPUS ($(tr -cd '\0' <"$SLICE/files" | wc -c) files)" >"$SLICE/what"
	else
		MKTREE_MB=$((SIZE_MB / 4)) "$SRC/tests/tools/mktree.sh" "$SLICE/tree/fixture" >/dev/null
		head -c $((SIZE_MB << 18)) /dev/urandom >"$SLICE/tree/random.bin"
		head -c $((SIZE_MB * 3 << 16)) /dev/urandom | base64 -w 76 >"$SLICE/tree/text.txt"
		echo "tests/tools/mktree.sh + random and text files (no corpus at $CORPUS)" >"$SLICE/what"
	fi
	touch "$SLICE/.done"
}

# ----------------------------------------------------------------- a run
# run_one KIND LOCATION N: a save and a restore of the slice in a new store at LOCATION; appends the
# seconds to $BENCH_DIR/times-KIND-{save,restore}.
run_one () {
	local kind=$1 loc=$2 n=$3 t0 t1 out=$OUT_DIR
	rm -rf "$out" "$BENCH_DIR/cache"
	gns "$PROJSTORE" init "$loc" >/dev/null
	t0=$(now)
	gns "$PROJSTORE" save bench "$SLICE/tree" --store "$loc" --cache-dir "$BENCH_DIR/cache" >/dev/null
	t1=$(now)
	echo "$(elapsed "$t0" "$t1")" >>"$BENCH_DIR/times-$kind-save"
	t0=$(now)
	gns "$PROJSTORE" restore bench "$out" --store "$loc" --no-cache >/dev/null
	t1=$(now)
	echo "$(elapsed "$t0" "$t1")" >>"$BENCH_DIR/times-$kind-restore"
	if [ "$n" = 1 ]; then
		if [ -x "$SRC/build/tools/treecmp" ]; then
			"$SRC/build/tools/treecmp" --no-atime "$SLICE/tree" "$out" >/dev/null
		else
			diff -r --no-dereference "$SLICE/tree" "$out" >/dev/null
		fi || { echo "bench/gluster.sh: $kind restore differs from the slice" >&2; exit 1; }
	fi
	rm -rf "$out"
}

cleanup () {
	gluster_stop
	rm -rf "$OUT_DIR" "$BENCH_DIR/gluster/bricks" "$BENCH_DIR/local" "$BENCH_DIR/cache"
}

{
trap cleanup EXIT
echo "bench/gluster.sh $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM; kernel $(uname -r); GlusterFS $(glusterd --version | awk 'NR == 1 { print $2 }')"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "projstore: $PROJSTORE ($(cd "$SRC" && git describe --always --dirty 2>/dev/null || echo ?))"
make_slice
BYTES=$(du -sb --apparent-size "$SLICE/tree" | cut -f1)
MB=$(awk -v b="$BYTES" 'BEGIN { printf "%.1f", b / 1e6 }')
echo "data: $(cat "$SLICE/what"), $MB MB apparent; median of $REPS runs"
echo "volume: replica 3 on this machine (bricks in $BENCH_DIR/gluster), loopback network; restores into $OUT_DIR ($(stat -f -c %T "$(dirname "$OUT_DIR")"))"
echo

rm -rf "$BENCH_DIR/gluster" "$BENCH_DIR"/times-* "$BENCH_DIR/local" "$BENCH_DIR/gmnt"
gluster_start "$BENCH_DIR/gluster"
gluster_volume_create "$VOL" replica3
gluster_mount "$VOL" "$BENCH_DIR/gmnt"
# the page cache holds the slice for every kind alike
find "$SLICE/tree" -type f -exec cat {} + >/dev/null

for n in $(seq 1 "$REPS"); do
	rm -rf "$BENCH_DIR/local"
	run_one local "$BENCH_DIR/local" "$n"
	rm -rf "$BENCH_DIR/local"
	run_one gfapi "gluster://$GL_HOST/$VOL/store-$n" "$n"
	gns rm -rf "$BENCH_DIR/gmnt/store-$n"
	run_one fuse "$BENCH_DIR/gmnt/fstore-$n" "$n"
	gns rm -rf "$BENCH_DIR/gmnt/fstore-$n"
	echo "run $n done, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
done

printf '%-28s %10s %10s %16s\n' "" seconds MB/s "speed vs local"
for op in save restore; do
	base=$(median <"$BENCH_DIR/times-local-$op")
	for kind in local gfapi fuse; do
		s=$(median <"$BENCH_DIR/times-$kind-$op")
		case $kind in
		local) label="local disk" ;;
		gfapi) label="GlusterFS, libgfapi" ;;
		fuse) label="GlusterFS, FUSE mount" ;;
		esac
		printf '%-28s %10s %10s %15sx\n' "$op, $label" "$s" \
			"$(awk -v b="$BYTES" -v s="$s" 'BEGIN { printf "%.0f", b / 1e6 / s }')" \
			"$(awk -v a="$s" -v b="$base" 'BEGIN { printf "%.2f", b / a }')"
	done
done
echo
for kind in local gfapi fuse; do
	echo "runs $kind: save $(tr '\n' ' ' <"$BENCH_DIR/times-$kind-save")/ restore $(tr '\n' ' ' <"$BENCH_DIR/times-$kind-restore")"
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tee "$RESULT.tmp"
mv "$RESULT.tmp" "$RESULT"
