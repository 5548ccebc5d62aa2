#!/bin/bash
# (Executable only so that `prove tests/e2e/t*.sh`, whose glob also matches
# this file, runs it as a skipped test file instead of as Perl.)
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	echo "1..0 # SKIP test-lib.sh is the test library, not a test"
	exit 0
fi

# test-lib.sh - a small git-style TAP library for the projstore end-to-end tests.
#
# A test file looks like this:
#
#   #!/bin/bash
#   . "$(dirname "$0")/test-lib.sh"
#   test_description 'what this file covers'
#   test_expect_success 'title' '
#           ps init && ...
#   '
#   test_expect_success ROOT 'needs root' '...'     # optional prerequisites
#   test_done
#
# Each file runs in its own scratch directory $TRASH (under ${TMPDIR:-/tmp}),
# which is the working directory of every test.  The scratch directory is
# removed at the end, unless a test failed and $PS_KEEP_TRASH is set (or -d).
#
# Environment:
#   PROJSTORE_BIN      projstore binary to test (default: build/projstore)
#   PROJSTORE_TOOLS    directory with treecmp and deadfs (default: $PS_TOOLS,
#                      else build/tools); missing or stale tools are
#                      compiled there on demand
#   PS_KEEP_TRASH      keep $TRASH of a file with a failing test
#   PS_TEST_VERBOSE    like -v
#   PS_TEST_TIMEOUT    seconds before a single `ps` call is killed (0 = never)
#   PS_REQUIRE_ALL     1: when running as root, a missing prerequisite fails
#                      the test (or, for test_skip_all, the file) instead of
#                      skipping it, so that a machine without some tool or
#                      kernel feature cannot pass by skipping (`make check`
#                      sets it).  A test skipped for a negated prerequisite
#                      (!ROOT) is still skipped: that skip is its purpose.
#
# Options of a test file: -v/--verbose (show the output of the tests),
# -x (trace the tests), -i/--immediate (stop at the first failure),
# -d/--debug (keep $TRASH).
#
# Tests are bodies of shell code evaluated in the test file's shell (so
# variables set by one test are seen by later ones); chain commands with &&.

export LC_ALL=C TZ=UTC
unset CDPATH GREP_OPTIONS

# -------------------------------------------------------------- locations

TEST_DIRECTORY=$(cd "$(dirname "$0")" && pwd -P) || exit 1
SRCDIR=$(cd "$TEST_DIRECTORY/../.." && pwd -P) || exit 1
TEST_NAME=$(basename "$0" .sh)
TOOLS_SRC=$SRCDIR/tests/tools

PROJSTORE=${PROJSTORE_BIN:-$SRCDIR/build/projstore}
case $PROJSTORE in /*) ;; *) PROJSTORE=$SRCDIR/$PROJSTORE ;; esac
TOOLS=${PROJSTORE_TOOLS:-${PS_TOOLS:-$SRCDIR/build/tools}}
case $TOOLS in /*) ;; *) TOOLS=$SRCDIR/$TOOLS ;; esac
export PROJSTORE TOOLS

# ---------------------------------------------------------------- options

verbose=${PS_TEST_VERBOSE:+t}
trace=
immediate=
keep_trash=${PS_KEEP_TRASH:+t}
while [ $# -gt 0 ]; do
	case $1 in
	-v|--verbose) verbose=t ;;
	-x) trace=t; verbose=t ;;
	-i|--immediate) immediate=t ;;
	-d|--debug) keep_trash=t ;;
	*) echo "Bail out! unknown option $1 to $0"; exit 1 ;;
	esac
	shift
done

# ---------------------------------------------------------------- output

test_count=0
test_success=0
test_failure=0
test_fixed=0
test_broken=0
test_skipped=0
test_start_=$EPOCHREALTIME
test_done_called_=

say () { printf '%s\n' "$*"; }
# Prints each line of its input as a TAP comment.
say_comment_ () { sed -e 's/^/# /'; }

BUG () {
	say "Bail out! bug in the test script: $*"
	exit 1
}

# test_description 'text': prints the description as a comment.
test_description () {
	printf '%s\n' "$*" | say_comment_
}

# ---------------------------------------------------------- prerequisites

declare -A test_prereq_cache_

# test_have_prereq 'A,B,!C': true when all are satisfied.
test_have_prereq () {
	local list=$1 p neg ok
	local IFS=,
	for p in $list; do
		[ -n "$p" ] || continue
		neg=
		case $p in !*) neg=t; p=${p#!} ;; esac
		if [ -z "${test_prereq_cache_[$p]+set}" ]; then
			if declare -F "prereq_$p" >/dev/null; then
				if ( "prereq_$p" ) >/dev/null 2>&1 </dev/null; then
					test_prereq_cache_[$p]=t
				else
					test_prereq_cache_[$p]=f
				fi
			else
				BUG "unknown prerequisite $p"
			fi
		fi
		ok=${test_prereq_cache_[$p]}
		if [ -n "$neg" ]; then
			[ "$ok" = f ] || return 1
		else
			[ "$ok" = t ] || return 1
		fi
	done
	return 0
}

test_set_prereq () { test_prereq_cache_[$1]=t; }

# test_require_all_: true when a missing prerequisite must fail instead of
# skip (PS_REQUIRE_ALL=1 and running as root).
test_require_all_ () {
	[ "${PS_REQUIRE_ALL:-}" = 1 ] && [ "$(id -u)" = 0 ]
}

# test_missing_prereqs_ 'A,B,!C': the positive prerequisites of the list that
# are not satisfied (a failed negated one is a deliberate skip, not listed).
test_missing_prereqs_ () {
	local p out=
	local IFS=,
	for p in $1; do
		case $p in ''|!*) continue ;; esac
		test_have_prereq "$p" || out=${out:+$out,}$p
	done
	printf '%s' "$out"
}

# test_skip_all REASON: skips the whole test file (a plan of 0 tests), for a
# file whose tests all need something this machine lacks.  With
# PS_REQUIRE_ALL=1 as root the file fails instead, naming the reason.
test_skip_all () {
	test_done_called_=t
	if test_require_all_; then
		say "not ok 1 - $* (PS_REQUIRE_ALL=1: a missing prerequisite is a failure)"
		say "1..1"
		test_cleanup_trash_
		exit 1
	fi
	say "1..0 # SKIP $*"
	test_cleanup_trash_
	exit 0
}

prereq_ROOT () { [ "$(id -u)" = 0 ]; }
prereq_XATTR () {
	command -v setfattr && command -v getfattr &&
	: >"$TRASH/.xattr-probe" &&
	setfattr -n user.probe -v 1 "$TRASH/.xattr-probe" &&
	rm -f "$TRASH/.xattr-probe"
}
prereq_MOUNT () {
	prereq_ROOT && mkdir -p "$TRASH/.mount-probe" &&
	mount -t tmpfs -o size=1m probe "$TRASH/.mount-probe" &&
	umount "$TRASH/.mount-probe" && rmdir "$TRASH/.mount-probe"
}
prereq_FUSE () {
	prereq_ROOT && [ -c /dev/fuse ] && command -v fusermount3 &&
	test_build_tool_ deadfs
}
prereq_SETPRIV () {
	prereq_ROOT && command -v setpriv && id nobody &&
	setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups -- true
}

# ------------------------------------------------------------------ tools

# test_build_tool_ NAME: builds tests/tools/NAME.c into $TOOLS/NAME unless an
# up-to-date binary is there, with the same command line as the top-level
# Makefile.
test_build_tool_ () {
	local name=$1 src=$TOOLS_SRC/$1.c out=$TOOLS/$1 extra=
	if [ -x "$out" ] && ! [ "$src" -nt "$out" ]; then
		return 0
	fi
	[ -f "$src" ] || return 1
	if [ "$name" = deadfs ]; then
		extra=$(pkg-config --cflags --libs fuse3) || return 1
	fi
	mkdir -p "$TOOLS" || return 1
	# shellcheck disable=SC2086
	cc -O2 -Wall -Wextra -Werror -o "$out.tmp.$$" "$src" $extra &&
	mv -f "$out.tmp.$$" "$out" || { rm -f "$out.tmp.$$"; return 1; }
}

treecmp () { "$TOOLS/treecmp" "$@"; }
deadfs () { "$TOOLS/deadfs" "$@"; }
mktree () { "$TOOLS_SRC/mktree.sh" "$@"; }

# -------------------------------------------------------------- assertions
#
# Diagnostics of the helpers go to fd 4: the test's log (or stderr with -v),
# even when the command under test has its stderr redirected.

# Runs a command that must fail in a controlled way: it fails the test when
# the command succeeds, was killed by a signal, timed out or was not found.
test_must_fail () {
	"$@"
	local rc=$?
	if [ $rc -eq 0 ]; then
		echo >&4 "test_must_fail: command succeeded: $*"
		return 1
	elif [ $rc -gt 128 ] && [ $rc -le 192 ]; then
		echo >&4 "test_must_fail: died by signal $((rc - 128)): $*"
		return 1
	elif [ $rc -eq 124 ]; then
		echo >&4 "test_must_fail: timed out: $*"
		return 1
	elif [ $rc -eq 126 ] || [ $rc -eq 127 ]; then
		echo >&4 "test_must_fail: command not found or not executable: $*"
		return 1
	fi
	return 0
}

# test_expect_code N cmd...: the command must exit with code N.
test_expect_code () {
	local want=$1
	shift
	"$@"
	local rc=$?
	if [ "$rc" -ne "$want" ]; then
		echo >&4 "test_expect_code: expected exit code $want, got $rc: $*"
		return 1
	fi
	return 0
}

# test_expect_code_in "N M ..." cmd...: the exit code must be one of the list.
test_expect_code_in () {
	local want=" $1 "
	shift
	"$@"
	local rc=$?
	case $want in
	*" $rc "*) return 0 ;;
	esac
	echo >&4 "test_expect_code_in: expected exit code in [$want], got $rc: $*"
	return 1
}

test_cmp () {
	[ $# -eq 2 ] || BUG "test_cmp needs two arguments"
	diff -u -- "$1" "$2"
}

test_path_is_file () {
	[ -f "$1" ] || { echo >&4 "not a file: $1"; return 1; }
}
test_path_is_dir () {
	[ -d "$1" ] || { echo >&4 "not a directory: $1"; return 1; }
}
test_path_is_missing () {
	if [ -e "$1" ] || [ -L "$1" ]; then
		echo >&4 "path exists: $1"
		ls -la "$1" >&4
		return 1
	fi
}
test_dir_is_empty () {
	if [ -n "$(ls -A1 -- "$1")" ]; then
		echo >&4 "directory not empty: $1"
		ls -la -- "$1" >&4
		return 1
	fi
}

test_must_be_empty () {
	if [ -s "$1" ]; then
		echo >&4 "not empty: $1"
		cat >&4 "$1"
		return 1
	fi
}

# test_line_count OP N FILE
test_line_count () {
	local n
	n=$(wc -l <"$3") || return 1
	if ! test "$n" "$1" "$2"; then
		echo >&4 "test_line_count: expected $1 $2 lines, got $n in $3:"
		cat >&4 "$3"
		return 1
	fi
}

# test_json FILE FILTER: the jq filter must yield true.
test_json () {
	if ! jq -e "$2" "$1" >/dev/null; then
		echo >&4 "test_json: '$2' is not true for $1:"
		head -c 4000 "$1" >&4
		echo >&4
		return 1
	fi
}

# test_grep [grep options] PATTERN FILE: like grep, but shows the file when it
# does not match.
test_grep () {
	if ! grep "$@" >/dev/null; then
		eval "local file=\${$#}"
		echo >&4 "test_grep: no match for '$*' in:"
		cat >&4 "$file"
		return 1
	fi
}

# Fails the test when the file contains sanitizer reports or core dump notes.
test_no_sanitizer_report () {
	if grep -E 'ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:' "$1" >&4; then
		return 1
	fi
}

# test_when_finished CMD: runs CMD after the current test, pass or fail.
test_when_finished () {
	test_cleanups_+=("$*")
}

# test_atexit CMD: runs CMD when the test file ends.
test_atexit () {
	test_atexit_cmds_+=("$*")
}

# ------------------------------------------------------------- the runner

test_cleanups_=()
test_atexit_cmds_=()

test_eval_ () {
	if [ -n "$trace" ]; then
		set -x
	fi
	eval "$1"
	{ local rc=$?; set +x; } 2>/dev/null
	return $rc
}

test_run_ () {
	local body=$1 rc i
	test_cleanups_=()
	if [ -n "$verbose" ]; then
		test_eval_ "$body" </dev/null >&2 4>&2
	else
		test_eval_ "$body" </dev/null >"$TRASH/.test-output" 2>&1 4>&2
	fi
	rc=$?
	for ((i = ${#test_cleanups_[@]} - 1; i >= 0; i--)); do
		if [ -n "$verbose" ]; then
			test_eval_ "${test_cleanups_[i]}" </dev/null >&2 4>&2 || rc=1
		else
			test_eval_ "${test_cleanups_[i]}" </dev/null >>"$TRASH/.test-output" 2>&1 4>&2 || rc=1
		fi
	done
	test_cleanups_=()
	cd "$TRASH" || exit 1
	return $rc
}

test_show_output_ () {
	if [ -z "$verbose" ] && [ -s "$TRASH/.test-output" ]; then
		tail -n 60 "$TRASH/.test-output" | say_comment_
	fi
}

test_expect_ () {
	local kind=$1 prereq=
	shift
	if [ $# -eq 3 ]; then
		prereq=$1
		shift
	fi
	[ $# -eq 2 ] || BUG "$kind takes [PREREQ] TITLE BODY, got $# arguments"
	test_count=$((test_count + 1))
	if [ -n "$prereq" ] && ! test_have_prereq "$prereq"; then
		local missing
		missing=$(test_missing_prereqs_ "$prereq")
		if [ -n "$missing" ] && test_require_all_; then
			test_failure=$((test_failure + 1))
			say "not ok $test_count - $1 (missing $missing; PS_REQUIRE_ALL=1 makes that a failure)"
			return 0
		fi
		test_skipped=$((test_skipped + 1))
		say "ok $test_count # skip $1 (missing $prereq)"
		return 0
	fi
	if [ "$kind" = success ]; then
		if test_run_ "$2"; then
			test_success=$((test_success + 1))
			say "ok $test_count - $1"
		else
			test_failure=$((test_failure + 1))
			say "not ok $test_count - $1"
			printf '%s\n' "$2" | say_comment_
			test_show_output_
			if [ -n "$immediate" ]; then
				say "# stopping at the first failure (-i); trash kept: $TRASH"
				keep_trash=t
				test_done
			fi
		fi
	else
		if test_run_ "$2"; then
			test_fixed=$((test_fixed + 1))
			say "ok $test_count - $1 # TODO known breakage vanished"
		else
			test_broken=$((test_broken + 1))
			say "not ok $test_count - $1 # TODO known breakage"
		fi
	fi
	return 0
}

test_expect_success () { test_expect_ success "$@"; }
test_expect_failure () { test_expect_ failure "$@"; }

# Unmounts whatever is still mounted below $TRASH, innermost first.
test_umount_trash_ () {
	local m
	[ -r /proc/self/mountinfo ] || return 0
	awk -v t="$TRASH/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo |
	sort -r | while read -r m; do
		m=$(printf '%b' "$m")
		umount -l "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null
	done
}

test_cleanup_trash_ () {
	local i
	for ((i = ${#test_atexit_cmds_[@]} - 1; i >= 0; i--)); do
		( eval "${test_atexit_cmds_[i]}" ) >/dev/null 2>&1 </dev/null
	done
	test_atexit_cmds_=()
	cd / || return
	test_umount_trash_
	if [ -n "$TRASH" ] && [ -d "$TRASH" ]; then
		if [ "$test_failure" -ne 0 ] && [ -n "$keep_trash" ]; then
			say "# trash kept: $TRASH"
		else
			chmod -R u+rwx "$TRASH" 2>/dev/null
			rm -rf "$TRASH"
		fi
	fi
}

test_done () {
	local now elapsed
	test_done_called_=t
	now=$EPOCHREALTIME
	elapsed=$(awk -v a="$test_start_" -v b="$now" 'BEGIN { printf "%.2f", b - a }')
	if [ $test_broken -ne 0 ]; then
		say "# still have $test_broken known breakage(s)"
	fi
	if [ $test_fixed -ne 0 ]; then
		say "# $test_fixed known breakage(s) vanished; please update test(s)"
	fi
	if [ $test_failure -ne 0 ]; then
		say "# failed $test_failure among $test_count test(s)"
	else
		say "# passed all $test_count test(s)"
	fi
	say "1..$test_count"
	say "# time: $elapsed s"
	test_cleanup_trash_
	trap - EXIT
	[ $test_failure -eq 0 ] || exit 1
	exit 0
}

test_exit_trap_ () {
	local rc=$?
	if [ -z "$test_done_called_" ]; then
		say "Bail out! $TEST_NAME: unexpected exit with code $rc"
		test_failure=$((test_failure + 1))
		test_cleanup_trash_
		exit 1
	fi
}

# ----------------------------------------------------------------- set-up

if [ ! -x "$PROJSTORE" ]; then
	say "Bail out! projstore binary not found: $PROJSTORE (run make, or set PROJSTORE_BIN)"
	exit 1
fi
for tool_ in jq cmp diff awk; do
	if ! command -v "$tool_" >/dev/null; then
		say "Bail out! $tool_ is needed by the tests"
		exit 1
	fi
done

TRASH=$(mktemp -d "${TMPDIR:-/tmp}/projstore-test.$TEST_NAME.XXXXXX") || {
	say "Bail out! cannot create a scratch directory"
	exit 1
}
TRASH=$(cd "$TRASH" && pwd -P)
export TRASH
trap test_exit_trap_ EXIT
exec 4>&2
trap 'exit 130' INT TERM HUP

export HOME=$TRASH/home
export XDG_CACHE_HOME=$TRASH/home/.cache
export PROJSTORE_STORE=$TRASH/store
export PROJSTORE_CACHE_DIR=$TRASH/cache
unset PROJSTORE_CONFIG
mkdir -p "$HOME"
# Sanitizer builds: make every report fatal and visible as a crash.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:abort_on_error=1}
PS_TEST_TIMEOUT=${PS_TEST_TIMEOUT:-300}

for tool_ in treecmp; do
	if ! test_build_tool_ "$tool_" >"$TRASH/.build-log" 2>&1; then
		say "Bail out! cannot build $TOOLS/$tool_:"
		say_comment_ <"$TRASH/.build-log"
		exit 1
	fi
done
unset tool_

cd "$TRASH" || exit 1

# ps ARGS...: runs the projstore under test (killed after $PS_TEST_TIMEOUT s).
ps () {
	if [ "$PS_TEST_TIMEOUT" = 0 ]; then
		"$PROJSTORE" "$@"
	else
		timeout -k 10 "$PS_TEST_TIMEOUT" "$PROJSTORE" "$@"
	fi
}

# ---------------------------------------------------------------- helpers

# Names of the snapshots of a project, oldest first.
snap_names () {
	ps snapshots "$1" --json | jq -r '.snapshots[].name'
}

snap_count () {
	ps snapshots "$1" --json | jq '.snapshots | length'
}

# A sorted listing of every path in the store with its size (to prove that a
# command touched nothing).
store_listing () {
	if [ -d "${1:-$PROJSTORE_STORE}" ]; then
		(cd "${1:-$PROJSTORE_STORE}" && find . -printf '%y %s %P\n' | sort)
	fi
}

# now_ns: nanoseconds since the epoch.
now_ns () { date +%s%N; }

# Makes a file of N KiB of random data.
random_file () {
	head -c "$(($2 * 1024))" /dev/urandom >"$1"
}

# Runs a command as user nobody.
as_nobody () {
	setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups -- "$@"
}

# Waits (up to $2 seconds, default 10) until the shell condition $1 is true.
wait_for () {
	local cond=$1 limit=${2:-10} start=$SECONDS
	until eval "$cond"; do
		if [ $((SECONDS - start)) -ge "$limit" ]; then
			echo >&4 "wait_for: timed out after ${limit}s: $cond"
			return 1
		fi
		sleep 0.05
	done
}

# deadfs_start MOUNTPOINT [deadfs options]: mounts the test FUSE filesystem
# (served by a background job of this shell) and sets DEADFS_PID.
deadfs_start () {
	local mnt=$1 pidf
	shift
	case $mnt in /*) ;; *) mnt=$PWD/$mnt ;; esac
	pidf=$TRASH/.deadfs-pid.$RANDOM$RANDOM
	test_build_tool_ deadfs || return 1
	"$TOOLS/deadfs" -f "$@" "$mnt" "$pidf" &
	DEADFS_PID=$!
	test_atexit "kill -9 $DEADFS_PID; umount -l '$mnt'"
	wait_for "[ -s '$pidf' ] || ! kill -0 $DEADFS_PID 2>/dev/null" 10 &&
	[ -s "$pidf" ] &&
	mountpoint -q "$mnt"
}

# deadfs_kill: kills the server of the last deadfs_start (SIGKILL), so that its
# mount point fails with ENOTCONN.
deadfs_kill () {
	kill -9 "$DEADFS_PID" 2>/dev/null
	wait "$DEADFS_PID" 2>/dev/null
	return 0
}

# deadfs_stop MOUNTPOINT: unmounts it (lazily) and reaps the server.
deadfs_stop () {
	umount -l "$1" 2>/dev/null || fusermount3 -u -z "$1" 2>/dev/null
	kill -9 "$DEADFS_PID" 2>/dev/null
	wait "$DEADFS_PID" 2>/dev/null
	return 0
}
