#!/bin/bash
# bench/compare.sh [CORPUS_DIR] - projstore against restic, borg (lz4, zstd,3) and tar|zstd on the same data.
#
# Without CORPUS_DIR the reference corpus is built (once) with /work/shared/bench/corpus-gen.sh into
# $BENCH_DIR (default /var/tmp/projstore-bench). Everything else (scratch copy of the tree, repositories,
# caches, restores) lives in $BENCH_DIR/work and is deleted tool by tool.
#
# Per tool, on one scratch path $BENCH_DIR/work/src (the path never changes, so every tool's file cache
# applies): initial save of the corpus; no-change save; save after the corpus2 change set
# (corpus-gen.sh mutate applied in place); full restore of the newest snapshot into an empty directory;
# restore of one ~1 MB file; stored size (du -sb of the repository); peak RSS of the initial save.
# Warm cache: the tree is read once before a tool starts. A phase that takes < QUICK seconds (30) is
# repeated to RUNS (3) runs and the median is printed; slower phases are run once.
#
# env: BENCH_DIR, RUNS (3), QUICK (30), TOOLS ("projstore restic borg-lz4 borg-zstd tar-zstd"),
#      VERIFY (1: compare the full restore with the source once per tool), PROJSTORE (binary to use),
#      PROJSTORE_REV (benchmark a clean export of that commit), NICE (e.g. -10: run the timed commands at
#      that nice level, to shield them from other work on a shared machine)
# Prints one table on stdout; progress goes to stderr.
set -euo pipefail
export LC_ALL=C

REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPUS_GEN=${CORPUS_GEN:-$REPO_ROOT/../shared/bench/corpus-gen.sh}
[ -f "$CORPUS_GEN" ] || CORPUS_GEN=/work/shared/bench/corpus-gen.sh
BENCH_DIR=${BENCH_DIR:-/var/tmp/projstore-bench}
RUNS=${RUNS:-3}
QUICK=${QUICK:-30}
VERIFY=${VERIFY:-1}
TOOLS=${TOOLS:-"projstore restic borg-lz4 borg-zstd tar-zstd"}
W=$BENCH_DIR/work
SRC=$W/src
SCRIPT_START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

mkdir -p "$BENCH_DIR"
# ---------------------------------------------------------------- tools
need_pkgs=()
command -v restic >/dev/null || need_pkgs+=(restic)
command -v borg >/dev/null || need_pkgs+=(borgbackup)
command -v zstd >/dev/null || need_pkgs+=(zstd)
[ -x /usr/bin/time ] || need_pkgs+=(time)
command -v rsync >/dev/null || need_pkgs+=(rsync)
command -v git >/dev/null || need_pkgs+=(git)
command -v openssl >/dev/null || need_pkgs+=(openssl)
if ((${#need_pkgs[@]})); then
	log "installing ${need_pkgs[*]}"
	apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >&2
fi

# projstore: the work tree's build, or with PROJSTORE_REV=REV (or when the work tree does not build)
# a clean export of that commit built in $BENCH_DIR/projstore-REV.
PROJSTORE_BUILT="work tree $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$REPO_ROOT" diff --quiet HEAD -- src include Makefile 2>/dev/null || echo +uncommitted)"
build_rev() {
	local rev sha d
	rev=$1
	sha=$(git -C "$REPO_ROOT" rev-parse --short "$rev") || die "no commit $rev"
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
	else
		log "building projstore"
		if make -C "$REPO_ROOT" -j2 build/projstore >"$BENCH_DIR/make.log" 2>&1; then
			PROJSTORE=$REPO_ROOT/build/projstore
		else
			log "the work tree does not build ($BENCH_DIR/make.log); using a clean export of HEAD"
			build_rev HEAD
		fi
	fi
else
	PROJSTORE_BUILT="given binary $PROJSTORE"
fi
[ -x "$PROJSTORE" ] || die "no projstore binary at $PROJSTORE"

# ---------------------------------------------------------------- corpus
if [ $# -ge 1 ]; then
	CORPUS=$(cd "$1" && pwd)
	CORPUS_NOTE="$CORPUS (given)"
else
	CORPUS=$BENCH_DIR/corpus
	if [ ! -f "$BENCH_DIR/.corpus-done" ]; then
		log "building the reference corpus in $BENCH_DIR (a few minutes)"
		rm -rf "$BENCH_DIR/corpus" "$BENCH_DIR/corpus2"
		# corpus-gen's `git commit` of 10,000 files would start a detached `git gc --auto` that packs the
		# loose objects while the script is still touching them (its `find -exec touch` then fails and
		# set -e ends it), and leaves a tree that depends on timing: no auto gc keeps the corpus fixed.
		GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=gc.auto GIT_CONFIG_VALUE_0=0 \
			bash "$CORPUS_GEN" "$BENCH_DIR" >"$BENCH_DIR/corpus-gen.log" 2>&1 ||
			die "corpus-gen.sh failed, see $BENCH_DIR/corpus-gen.log"
		touch "$BENCH_DIR/.corpus-done"
	fi
	CORPUS_NOTE="$CORPUS (corpus-gen.sh)"
fi
[ -d "$CORPUS" ] || die "no corpus at $CORPUS"

rm -rf "$W"
mkdir -p "$W"

# ---------------------------------------------------------------- helpers
# measure NAME CMD...: runs CMD, appends wall seconds to $W/t.NAME, max RSS (KiB) to $W/m.NAME and
# CPU seconds (user+sys of CMD and its children) to $W/c.NAME
measure() {
	local name=$1 t0 t1 rc=0
	shift
	t0=$(date +%s%N)
	/usr/bin/time -f '%M %U %S' -o "$W/.rss" ${NICE:+nice -n "$NICE"} "$@" >"$W/.out" 2>&1 || rc=$?
	t1=$(date +%s%N)
	if ((rc != 0)); then
		log "FAILED (exit $rc): $*"
		sed 's/^/    /' "$W/.out" | tail -20 >&2
		printf '%s %s: FAILED (exit %s) after %s s: %s\n%s\n' "${tool:-}" "$name" "$rc" \
			"$(awk -v ns=$((t1 - t0)) 'BEGIN{printf "%.1f", ns/1e9}')" "$*" "$(tail -20 "$W/.out" | sed 's/^/    /')" >>"$W/problems"
		return 1
	fi
	awk -v ns=$((t1 - t0)) 'BEGIN{printf "%.3f\n", ns/1e9}' >>"$W/t.$name"
	tail -1 "$W/.rss" | awk '{print $1}' >>"$W/m.$name"
	tail -1 "$W/.rss" | awk '{printf "%.2f\n", $2 + $3}' >>"$W/c.$name"
	log "  $name: $(tail -1 "$W/t.$name") s, cpu $(tail -1 "$W/c.$name") s, $(tail -1 "$W/m.$name") KiB"
}
median() { sort -g "$1" | awk '{a[NR]=$1} END{if (NR) print a[int((NR+1)/2)]}'; }
quick() { awk -v t="$1" -v q="$QUICK" 'BEGIN{exit !(t < q)}'; }

warm() { # read the whole tree once
	find "$SRC" -type f -print0 | xargs -0 -r cat >/dev/null
}
reset_src() { # make $SRC hold the corpus again, rewriting only what differs (in place: inodes stay)
	mkdir -p "$SRC"
	rsync -aH --inplace --delete --sparse "$CORPUS"/ "$SRC"/ 2>/dev/null ||
		rsync -aH --inplace --delete "$CORPUS"/ "$SRC"/
}
mutate_src() {
	bash "$CORPUS_GEN" mutate "$SRC" >/dev/null
}

# one file of about 1 MB from the tree (outside data/, the closest to 1 MiB)
ONEFILE=$(cd "$CORPUS" && find . -type f -not -path './data/*' -size +900k -size -1200k -printf '%s %P\n' |
	awk '{d=$1-1048576; if (d<0) d=-d; print d, $2}' | sort -n | head -1 | cut -d' ' -f2-)
[ -n "$ONEFILE" ] || die "no ~1 MB file in the corpus"
ONESIZE=$(stat -c %s "$CORPUS/$ONEFILE")

# ---------------------------------------------------------------- per-tool commands
# Each tool works in $T (repository, caches, config) so its whole state can be copied.
T=$W/state
tool_env() {
	export PROJSTORE_CACHE_DIR=$T/cache
	export RESTIC_REPOSITORY=$T/repo RESTIC_CACHE_DIR=$T/cache RESTIC_PASSWORD=bench-password-not-secret
	export BORG_REPO=$T/repo BORG_BASE_DIR=$T/base BORG_CACHE_DIR=$T/cache BORG_CONFIG_DIR=$T/config \
		BORG_SECURITY_DIR=$T/security BORG_KEYS_DIR=$T/keys BORG_PASSPHRASE= \
		BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes \
		BORG_DISPLAY_PASSPHRASE=no BORG_CHECK_I_KNOW_WHAT_I_AM_DOING=NO BORG_DELETE_I_KNOW_WHAT_I_AM_DOING=NO
}
RESTIC_NOPW=0
if restic init --help 2>/dev/null | grep -q -- --insecure-no-password; then RESTIC_NOPW=1; fi

t_init() {
	rm -rf "$T"
	mkdir -p "$T"
	case $1 in
	projstore) "$PROJSTORE" init "$T/repo" >/dev/null ;;
	restic)
		if ((RESTIC_NOPW)); then
			unset RESTIC_PASSWORD
			restic init --insecure-no-password >/dev/null
		else restic init >/dev/null; fi
		;;
	borg-*) borg init -e none >/dev/null ;;
	tar-zstd) mkdir -p "$T/repo" ;;
	esac
}
t_save() { # the command that saves $SRC
	case $1 in
	projstore) echo "$PROJSTORE" --store "$T/repo" save bench "$SRC" --cache-dir "$T/cache" ;;
	restic) echo restic backup --no-scan -q "$SRC" ;;
	borg-lz4) echo borg create --compression lz4 "::s$(date +%s%N)" "$SRC" ;;
	borg-zstd) echo borg create --compression zstd,3 "::s$(date +%s%N)" "$SRC" ;;
	tar-zstd) echo bash -c "cd '$SRC' && tar -cf - . | zstd -q -1 -T0 -f -o '$T/repo/archive.tar.zst'" ;;
	esac
}
restic_no_scan=1
restic backup --help 2>/dev/null | grep -q -- --no-scan || restic_no_scan=0
t_save_cmd() {
	local c
	c=$(t_save "$1")
	if [ "$1" = restic ] && ((!restic_no_scan)); then c=${c/--no-scan /}; fi
	echo "$c"
}
run_save() { # run_save TOOL PHASE
	local c
	c=$(t_save_cmd "$1")
	# shellcheck disable=SC2086
	if [ "$1" = tar-zstd ]; then
		measure "$2" bash -c "cd '$SRC' && tar -cf - . | zstd -q -1 -T0 -f -o '$T/repo/archive.tar.zst'"
	else
		measure "$2" $c
	fi
}
last_borg() { borg list --short --last 1 ::; }
run_restore() { # run_restore TOOL PHASE TARGET [RELPATH]
	local tool=$1 phase=$2 R=$3 rel=${4:-}
	rm -rf "$R"
	mkdir -p "$R"
	case $tool in
	projstore)
		if [ -n "$rel" ]; then measure "$phase" "$PROJSTORE" --store "$T/repo" restore bench "$R" "$rel"
		else measure "$phase" "$PROJSTORE" --store "$T/repo" restore bench "$R"; fi
		;;
	restic)
		if [ -n "$rel" ]; then measure "$phase" restic restore latest -q --target "$R" --include "$SRC/$rel"
		else measure "$phase" restic restore latest -q --target "$R"; fi
		;;
	borg-*)
		local a
		a=$(last_borg)
		if [ -n "$rel" ]; then measure "$phase" bash -c "cd '$R' && borg extract '::$a' '${SRC#/}/$rel'"
		else measure "$phase" bash -c "cd '$R' && borg extract '::$a'"; fi
		;;
	tar-zstd)
		if [ -n "$rel" ]; then measure "$phase" bash -c "zstd -q -dc '$T/repo/archive.tar.zst' | tar -xf - -C '$R' './$rel'"
		else measure "$phase" bash -c "zstd -q -dc '$T/repo/archive.tar.zst' | tar -xf - -C '$R'"; fi
		;;
	esac
}
restored_root() { # where the tree lands inside a restore target
	case $1 in
	restic | borg-*) echo "$2$SRC" ;;
	*) echo "$2" ;;
	esac
}
tool_version() {
	case $1 in
	projstore) echo "projstore $("$PROJSTORE" --version 2>/dev/null | awk '{print $NF}') ($PROJSTORE_BUILT; store default zstd:3)" ;;
	restic) echo "$(restic version | cut -d' ' -f1-2) (repo v$(restic cat config 2>/dev/null | sed -n 's/.*"version": *\([0-9]*\).*/\1/p'), compression auto)" ;;
	borg-lz4) echo "$(borg --version) -C lz4" ;;
	borg-zstd) echo "$(borg --version) -C zstd,3" ;;
	tar-zstd) echo "$(tar --version | head -1 | awk '{print "tar " $NF}') + zstd $(zstd -V | sed -n 's/.*v\([0-9.]*\).*/\1/p') -1 -T0" ;;
	esac
}

# repeat PHASE body until RUNS if the first run was quick; "body" is a function name taking the run index
repeat_phase() {
	local phase=$1 fn=$2 i
	"$fn" 1 || return 0
	if quick "$(median "$W/t.$phase")"; then
		for ((i = 2; i <= RUNS; i++)); do "$fn" "$i" || return 0; done
	fi
}

# ---------------------------------------------------------------- run
log "corpus: $CORPUS; scratch: $W; one-file restore: $ONEFILE ($ONESIZE bytes)"
reset_src
warm
: >"$W/t.statwalk"
for i in $(seq "$RUNS"); do measure statwalk find "$SRC" -printf '%s\n'; done
mv "$W/t.statwalk" "$W/statwalk.times"
: >"$W/problems"

declare -A RES VER
for tool in $TOOLS; do
	log "== $tool"
	rm -f "$W"/t.* "$W"/m.* "$W"/c.* 2>/dev/null || true
	tool_env
	reset_src
	warm

	ph_initial() {
		if (($1 > 1)); then
			warm
		fi
		t_init "$tool" >"$W/.init" 2>&1 || {
			printf '%s init FAILED: %s\n' "$tool" "$(tail -5 "$W/.init")" >>"$W/problems"
			return 1
		}
		run_save "$tool" initial
	}
	repeat_phase initial ph_initial

	ph_nochange() { run_save "$tool" nochange; }
	repeat_phase nochange ph_nochange

	# the state before the change set, to repeat the change-set save from it
	rm -rf "$W/state.base"
	cp -a --reflink=auto "$T" "$W/state.base"
	ph_change() {
		if (($1 > 1)); then
			rm -rf "$T"
			cp -a --reflink=auto "$W/state.base" "$T"
			reset_src
		fi
		mutate_src
		warm
		run_save "$tool" change
	}
	repeat_phase change ph_change
	rm -rf "$W/state.base"

	# restores of the newest snapshot (= corpus2 content)
	ph_restore() {
		run_restore "$tool" restore "$W/restore" || return 1
		if ((VERIFY)) && (($1 == 1)); then
			local rr
			rr=$(restored_root "$tool" "$W/restore")
			if ! diff -rq --no-dereference "$SRC" "$rr" >"$W/.diff" 2>&1; then
				log "  restore differs from the source: $(wc -l <"$W/.diff") lines"
				printf '%s: full restore differs from the source:\n%s\n' "$tool" "$(head -20 "$W/.diff")" >>"$W/problems"
			fi
		fi
		rm -rf "$W/restore"
	}
	repeat_phase restore ph_restore
	ph_one() {
		run_restore "$tool" onefile "$W/restore1" "$ONEFILE" || return 1
		if (($1 == 1)); then
			local rr
			rr=$(restored_root "$tool" "$W/restore1")
			cmp -s "$SRC/$ONEFILE" "$rr/$ONEFILE" || {
				log "  one-file restore differs"
				echo "$tool: one-file restore of $ONEFILE differs or is missing" >>"$W/problems"
			}
			local n
			n=$(find "$W/restore1" -type f | wc -l)
			((n == 1)) || echo "$tool: one-file restore wrote $n files" >>"$W/problems"
		fi
		rm -rf "$W/restore1"
	}
	repeat_phase onefile ph_one

	for ph in initial nochange change restore onefile; do
		RES[$tool.$ph]=$( [ -s "$W/t.$ph" ] && median "$W/t.$ph" || echo NA)
		RES[$tool.$ph.n]=$( [ -s "$W/t.$ph" ] && wc -l <"$W/t.$ph" || echo 0)
		RES[$tool.$ph.cpu]=$( [ -s "$W/c.$ph" ] && median "$W/c.$ph" || echo NA)
	done
	RES[$tool.rss]=$(median "$W/m.initial")
	RES[$tool.stored]=$(du -sb "$T/repo" | cut -f1)
	VER[$tool]=$(tool_version "$tool")
	if [ "$tool" = projstore ]; then
		"$PROJSTORE" --store "$T/repo" stats bench >"$W/projstore-stats.txt" 2>&1 || true
		"$PROJSTORE" --store "$T/repo" check >"$W/projstore-check.txt" 2>&1 ||
			printf 'projstore check after the benchmark failed:\n%s\n' "$(tail -20 "$W/projstore-check.txt")" >>"$W/problems"
	fi
	# clean the repository before the next tool
	rm -rf "$T" "$W/restore" "$W/restore1"
done

# ---------------------------------------------------------------- report
statwalk=$(median "$W/statwalk.times")
nfiles=$(find "$SRC" -type f | wc -l)
apparent=$(du -sb "$SRC" | cut -f1)
{
	echo "projstore benchmark: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(awk '/MemTotal/{printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo), $(uname -r)"
	echo "filesystem: $(df -T "$BENCH_DIR" | awk 'NR==2{print $2, $1}')"
	echo "load average (1/5/15 min) at start: $LOAD_START, at end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews times)"
	echo "data: $CORPUS_NOTE -> change set corpus-gen.sh mutate; final tree $nfiles files, $apparent bytes apparent"
	echo "one-file restore: $ONEFILE ($ONESIZE bytes)"
	echo "warm cache; times are wall seconds, median of up to $RUNS runs (phases under ${QUICK}s), [n] = runs"
	echo "stat walk (find DIR -printf '%s\\n' >/dev/null): ${statwalk} s"
	echo "versions:"
	for tool in $TOOLS; do echo "  $tool: ${VER[$tool]}"; done
	echo
	cols=($TOOLS)
	printf '%-26s' "phase"
	for t in "${cols[@]}"; do printf ' | %-24s' "$t"; done
	echo
	printf '%-26s' "--------------------------"
	for t in "${cols[@]}"; do printf ' | %-24s' "------------------------"; done
	echo
	ref=restic
	cell() { # cell VALUE REF FMT: prints "value (ratio)"
		local v=$1 r=$2 f=$3 s
		if [ "$v" = NA ] || [ -z "$v" ]; then printf 'n/a'; return; fi
		s=$(awk -v v="$v" -v f="$f" 'BEGIN{printf f, v}')
		if [ -n "$r" ] && [ "$r" != NA ] && awk -v r="$r" 'BEGIN{exit !(r>0)}'; then
			s="$s ($(awk -v v="$v" -v r="$r" 'BEGIN{printf "%.2fx", v/r}'))"
		fi
		printf '%s' "$s"
	}
	for ph in initial nochange change restore onefile; do
		case $ph in
		initial) label="initial save (s)" ;;
		nochange) label="no-change save (s)" ;;
		change) label="save after change set (s)" ;;
		restore) label="full restore (s)" ;;
		onefile) label="one-file restore (s)" ;;
		esac
		printf '%-26s' "$label"
		for t in "${cols[@]}"; do
			v=${RES[$t.$ph]:-NA}
			n=${RES[$t.$ph.n]:-0}
			printf ' | %-24s' "$(cell "$v" "${RES[$ref.$ph]:-}" '%.2f') [$n]"
		done
		echo
	done
	for ph in initial change restore; do
		case $ph in
		initial) label="  CPU user+sys initial (s)" ;;
		change) label="  CPU user+sys change (s)" ;;
		restore) label="  CPU user+sys restore (s)" ;;
		esac
		printf '%-26s' "$label"
		for t in "${cols[@]}"; do
			printf ' | %-24s' "$(cell "${RES[$t.$ph.cpu]:-NA}" "${RES[$ref.$ph.cpu]:-}" '%.2f')"
		done
		echo
	done
	printf '%-26s' "stored size (bytes)"
	for t in "${cols[@]}"; do printf ' | %-24s' "$(cell "${RES[$t.stored]:-NA}" "${RES[$ref.stored]:-}" '%d')"; done
	echo
	printf '%-26s' "peak RSS initial save(MiB)"
	for t in "${cols[@]}"; do
		v=${RES[$t.rss]:-NA}
		r=${RES[$ref.rss]:-}
		[ "$v" = NA ] || v=$(awk -v v="$v" 'BEGIN{printf "%.1f", v/1024}')
		[ -z "$r" ] || r=$(awk -v v="$r" 'BEGIN{printf "%.1f", v/1024}')
		printf ' | %-24s' "$(cell "$v" "$r" '%.1f')"
	done
	echo
	echo
	echo "(x) = ratio to restic. stored size = du -sb of the repository after all saves (initial, no-change"
	echo "saves, change set); tar-zstd keeps one archive (the newest), and its 'saves' are full re-archives."
	echo "peak RSS of tar-zstd is the larger of tar's and zstd's. borg restores with 'borg extract' (1 thread)."
	echo "CPU user+sys = median CPU seconds of the same runs (all threads and child processes): less"
	echo "sensitive than wall time to other load on the machine."
	if [ -s "$W/problems" ]; then
		echo
		echo "PROBLEMS:"
		sed 's/^/  /' "$W/problems"
	fi
	echo
	echo "total run time of compare.sh: $(($(date +%s) - SCRIPT_START)) s"
} | tee "$W/report.txt"
