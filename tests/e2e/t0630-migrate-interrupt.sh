#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'migrate interrupted: kill -9 of the command (its workers die with it) and SIGINT
(the projects in work are finished), then a rerun imports the rest; no project is left in maintenance,
none gets a duplicate snapshot, the ones in work at the kill restore equal to their source. Size knob:
MIGRATE_KILL_HOMES (default 120 homes).'

N=${MIGRATE_KILL_HOMES:-120}

markers () {
	find "$PROJSTORE_CACHE_DIR/migrate" -type f ! -name "*.tmp.*" 2>/dev/null | wc -l
}

# Processes still running with the source tree on their command line (workers are forks of the
# command: same arguments).
leftovers () {
	pgrep -f -- "migrate $TRASH/src" || true
}

test_expect_success 'setup' '
	ps init &&
	"$TOOLS_SRC/mkhomes.sh" --homes "$N" --kb 200 src
'

test_expect_success 'kill -9 in the middle of a run' '
	"$PROJSTORE" migrate "$TRASH/src" -j 3 --json >k1.json 2>k1.err &
	pid=$! &&
	wait_for "[ \$(markers) -ge 10 ]" 120 &&
	kill -9 $pid &&
	{ wait $pid; true; } &&
	wait_for "[ -z \"\$(leftovers)\" ]" 10 &&
	done_before=$(markers) &&
	echo "# killed with $done_before of $N projects done" >&4 &&
	test "$done_before" -lt "$N" &&
	ps projects --json >p1.json &&
	jq -r ".[] | select(.maintenance) | .id" p1.json >in-work &&
	echo "# in maintenance at the kill: $(tr "\n" " " <in-work)" >&4
'

test_expect_success 'the rerun imports the rest; nothing duplicated, nothing left in maintenance' '
	ps migrate "$TRASH/src" -j 3 --json >k2.json &&
	test_json k2.json ".failed == 0 and .done == $N and .imported + .unchanged == $N" &&
	test_json k2.json ".unchanged >= $done_before" &&
	test "$(find "$PROJSTORE_STORE/projects" -name "*.snap" | wc -l)" = "$N" &&
	test "$(markers)" = "$N" &&
	ps projects --json >p2.json &&
	test_json p2.json "length == $N and all(.[]; .migrated and (.maintenance | not) and .lease == null)"
'

test_expect_success 'the projects in work at the kill restore equal to their source' '
	echo home-0001 >>in-work &&
	mkdir out &&
	for p in $(sort -u in-work); do
		ps restore "$p" "out/$p" &&
		treecmp --no-atime "src/$p" "out/$p" || return 1
	done
'

test_expect_success 'SIGINT: the projects in work are finished, then it stops with 130' '
	"$TOOLS_SRC/mkhomes.sh" --homes "$N" --kb 200 --prefix more- src || return 1
	"$PROJSTORE" migrate "$TRASH/src" -j 2 --json >i1.json 2>i1.err &
	pid=$! &&
	wait_for "[ \$(markers) -ge $((N + 5)) ]" 120 &&
	kill -INT $pid &&
	{ wait $pid; rc=$?; } &&
	test "$rc" = 130 &&
	test_json i1.json ".interrupted == true and .failed == 0 and .done < .projects" &&
	test_json i1.json "[.results[] | select(.status == \"not-done\")] | length > 0" &&
	test -z "$(leftovers)" &&
	ps projects --json >p3.json &&
	test_json p3.json "all(.[]; (.maintenance | not) and .lease == null)" &&
	test "$(find "$PROJSTORE_STORE/projects" -name "*.snap" | wc -l)" = "$(markers)"
'

test_expect_success 'the rerun finishes' '
	ps migrate "$TRASH/src" -j 2 --json >i2.json &&
	test_json i2.json ".done == $((2 * N)) and .failed == 0 and .imported + .unchanged == $((2 * N))" &&
	test "$(find "$PROJSTORE_STORE/projects" -name "*.snap" | wc -l)" = $((2 * N)) &&
	ps check
'

test_done
