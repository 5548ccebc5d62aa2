#!/bin/bash
# bench/mount.sh - `projstore mount` against `projstore restore`.
#
#   bench/mount.sh            (as root: FUSE mounts; results also go to bench/results/DATE-mount.txt)
#
# 1. Sequential read of one big file: `cat MOUNT/latest/big.bin >/dev/null` through a fresh mount (empty
#    caches, new process, the kernel's page cache of the file gone with the previous mount) against
#    `projstore restore PROJECT OUT big.bin --no-cache` of the same file, into $BENCH_DIR (restore ends
#    with syncfs: the disk write is part of its time) and into tmpfs (/dev/shm: CPU only). The store's packs
#    are in the page cache for all (read once before), so reading the store costs no disk. Two kinds of data:
#    random (stored uncompressed) and text (base64 of random data, zstd-compressed to about 3/4).
#    The mount is also timed with --readahead 0 (no background fetching) and re-reading from the page cache.
# 2. Metadata walk of ~100,000 files (100 x 10 directories x 100 files): `find MOUNT/latest | wc -l` on a
#    fresh mount (cold: every tree is read from the store) and again (warm: kernel and tree caches), and
#    `find -printf %s` (a stat of every entry) warm.
#
# Each figure is the median of REPS (3) runs. Environment: BENCH_DIR (/var/tmp/projstore-bench-mount; the
# data is generated once and kept), SIZE_MB (1024), NFILES (100000), REPS, PROJSTORE (the binary; default
# the work tree's build/projstore).
set -eu
export LC_ALL=C TZ=UTC
SRC=$(cd "$(dirname "$0")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/var/tmp/projstore-bench-mount}
SIZE_MB=${SIZE_MB:-1024}
NFILES=${NFILES:-100000}
REPS=${REPS:-3}
PROJSTORE=${PROJSTORE:-$SRC/build/projstore}
RESULT=$SRC/bench/results/$(date +%Y-%m-%d)-mount.txt
MNT=$BENCH_DIR/mnt
SHM_OUT=/dev/shm/projstore-bench-mount-out
export PROJSTORE_STORE=$BENCH_DIR/store PROJSTORE_CACHE_DIR=$BENCH_DIR/cache PROJSTORE_NO_PROGRESS=1

[ "$(id -u)" = 0 ] || { echo "bench/mount.sh: run as root (FUSE mounts)" >&2; exit 1; }
[ -x "$PROJSTORE" ] || { echo "bench/mount.sh: $PROJSTORE missing: make -j2 first" >&2; exit 1; }
mkdir -p "$BENCH_DIR" "$MNT" "$SRC/bench/results"

MOUNT_PID=
cleanup () {
	if [ -n "$MOUNT_PID" ]; then
		fusermount3 -u "$MNT" 2>/dev/null || true
		wait "$MOUNT_PID" 2>/dev/null || true
	fi
}

now () { echo "$EPOCHREALTIME"; }
elapsed () { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
median () { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
mbps () { awk -v mb="$1" -v s="$2" 'BEGIN { printf "%.0f", mb / s }'; }

mount_up () {   # mount_up PROJECT [options]
	local p=$1
	shift
	"$PROJSTORE" mount "$p" "$MNT" --foreground "$@" 2>>"$BENCH_DIR/mount.log" &
	MOUNT_PID=$!
	for _ in $(seq 1 200); do
		mountpoint -q "$MNT" && return 0
		sleep 0.05
	done
	echo "bench/mount.sh: the mount did not come up" >&2
	exit 1
}

mount_down () {
	fusermount3 -u "$MNT"
	wait "$MOUNT_PID"
	MOUNT_PID=
}

warm_store () { find "$PROJSTORE_STORE/packs" -type f -exec cat {} + >/dev/null; }

# ------------------------------------------------------------------ data
gen_data () {
	local d=$BENCH_DIR/data
	if [ ! -e "$d/.done-$SIZE_MB-$NFILES" ]; then
		rm -rf "$d"
		mkdir -p "$d/random" "$d/text" "$d/many"
		head -c $((SIZE_MB << 20)) /dev/urandom >"$d/random/big.bin"
		head -c $((SIZE_MB * 3 << 18)) /dev/urandom | base64 -w 76 | head -c $((SIZE_MB << 20)) >"$d/text/big.bin"
		python3 - "$d/many" "$NFILES" <<-'EOF'
		import os, sys
		root, n = sys.argv[1], int(sys.argv[2])
		per, sub = 100, 10
		top = max(1, n // (per * sub))
		k = 0
		for i in range(top):
		    for j in range(sub):
		        p = os.path.join(root, "d%03d" % i, "s%02d" % j)
		        os.makedirs(p)
		        for f in range(per):
		            with open(os.path.join(p, "f%03d.txt" % f), "w") as fh:
		                fh.write("file %d\n" % k)
		            k += 1
		EOF
		touch "$d/.done-$SIZE_MB-$NFILES"
	fi
}

{
trap cleanup EXIT
echo "bench/mount.sh $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM; kernel $(uname -r); libfuse $(pkg-config --modversion fuse3 2>/dev/null || echo ?)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "projstore: $PROJSTORE ($(cd "$SRC" && git describe --always --dirty 2>/dev/null || echo ?))"
echo "file: $SIZE_MB MiB; tree: $NFILES files; median of $REPS runs"
echo
gen_data
rm -rf "$PROJSTORE_STORE" "$PROJSTORE_CACHE_DIR" "$BENCH_DIR/out"
"$PROJSTORE" init >/dev/null
for kind in random text; do
	t0=$(now)
	"$PROJSTORE" save "$kind" "$BENCH_DIR/data/$kind" >/dev/null
	echo "save $kind: $(elapsed "$t0" "$(now)") s"
done
t0=$(now)
"$PROJSTORE" save many "$BENCH_DIR/data/many" >/dev/null
echo "save many ($NFILES files): $(elapsed "$t0" "$(now)") s"
echo

printf '%-8s %-34s %10s %10s\n' data method seconds MB/s
for kind in random text; do
	warm_store
	for method in restore restore-tmpfs mount mount-no-readahead mount-page-cache; do
		times=()
		for _ in $(seq 1 "$REPS"); do
			case $method in
			restore)
				rm -rf "$BENCH_DIR/out"
				t0=$(now)
				"$PROJSTORE" restore "$kind" "$BENCH_DIR/out" big.bin --no-cache >/dev/null
				t1=$(now)
				rm -rf "$BENCH_DIR/out"
				;;
			restore-tmpfs)
				rm -rf "$SHM_OUT"
				t0=$(now)
				"$PROJSTORE" restore "$kind" "$SHM_OUT" big.bin --no-cache >/dev/null
				t1=$(now)
				rm -rf "$SHM_OUT"
				;;
			mount|mount-no-readahead)
				if [ $method = mount ]; then mount_up "$kind"; else mount_up "$kind" --readahead 0; fi
				t0=$(now)
				cat "$MNT/latest/big.bin" >/dev/null
				t1=$(now)
				mount_down
				;;
			mount-page-cache)
				mount_up "$kind"
				cat "$MNT/latest/big.bin" >/dev/null
				t0=$(now)
				cat "$MNT/latest/big.bin" >/dev/null
				t1=$(now)
				mount_down
				;;
			esac
			times+=("$(elapsed "$t0" "$t1")")
		done
		s=$(printf '%s\n' "${times[@]}" | median)
		label=$method
		case $method in
		restore) label="restore PATH --no-cache" ;;
		restore-tmpfs) label="restore ... to tmpfs" ;;
		mount) label="mount: cat >/dev/null (fresh)" ;;
		mount-no-readahead) label="mount --readahead 0: cat (fresh)" ;;
		mount-page-cache) label="mount: cat again (page cache)" ;;
		esac
		printf '%-8s %-34s %10s %10s\n' "$kind" "$label" "$s" "$(mbps "$SIZE_MB" "$s")"
	done
done
echo

warm_store
cold=() warm=() statw=()
for _ in $(seq 1 "$REPS"); do
	mount_up many
	t0=$(now)
	n=$(find "$MNT/latest/" | wc -l)
	t1=$(now)
	cold+=("$(elapsed "$t0" "$t1")")
	t0=$(now)
	find "$MNT/latest/" | wc -l >/dev/null
	t1=$(now)
	warm+=("$(elapsed "$t0" "$t1")")
	t0=$(now)
	find "$MNT/latest/" -printf '%s\n' | wc -l >/dev/null
	t1=$(now)
	statw+=("$(elapsed "$t0" "$t1")")
	mount_down
done
echo "find MOUNT/latest | wc -l: $n entries"
echo "  cold (fresh mount):          $(printf '%s\n' "${cold[@]}" | median) s"
echo "  warm (same mount again):     $(printf '%s\n' "${warm[@]}" | median) s"
echo "  warm, find -printf %s (stat): $(printf '%s\n' "${statw[@]}" | median) s"
t0=$(now)
find "$BENCH_DIR/data/many" | wc -l >/dev/null
echo "  for scale, find on the source tree (ext4, warm): $(elapsed "$t0" "$(now)") s"
} 2>&1 | tee "$RESULT"
