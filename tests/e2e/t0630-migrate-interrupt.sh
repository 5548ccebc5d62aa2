#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'migrate interrupted: kill -9 of the command (its workers die with it) and SIGINT
(the projects in work are finished), then a rerun imports the rest; no project is left in maintenance,
none gets a duplicate snapshot, the ones in work at the kill restore equal to their source; a kill between
the save and the catalog (the state set by hand) and a snapshot saved by someone else. Size knob:
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

test_expect_success 'killed after its save published, before the catalog: the rerun adds no snapshot' '
	echo "changed before the kill" >>src/home-0002/.bashrc &&
	ps save home-0002 src/home-0002 >/dev/null &&
	owner="migrate.$(hostname | cut -c1-50 | sed "s/[^A-Za-z0-9._-]/_/g")" &&
	python3 -c "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE projects SET maintenance = 1, lease_owner = ?, lease_expires = 9e15 WHERE id = ?\", (sys.argv[2], \"home-0002\")); c.commit()" \
		"$PROJSTORE_STORE/catalog.db" "$owner" &&
	ps migrate "$TRASH/src" -j 3 --json >k3.json &&
	test_json k3.json "(.results[] | select(.project == \"home-0002\")) | .status == \"unchanged\"" &&
	test "$(snap_count home-0002)" = 2 &&
	ps projects --json >p4.json &&
	test_json p4.json "(.[] | select(.id == \"home-0002\")) | (.maintenance | not) and .lease == null and .snapshots == 2" &&
	ps events home-0002 --json >ev.json &&
	test_json ev.json ".[0].kind == \"migrated\" and (.[0].detail | test(\"unchanged since\"))"
'

test_expect_success 'the same newer snapshot without maintenance: someone else saved it, refused' '
	echo "changed by a user" >>src/home-0004/.bashrc &&
	ps save home-0004 src/home-0004 >/dev/null &&
	echo "and more" >>src/home-0004/.bashrc &&
	test_expect_code 3 ps migrate "$TRASH/src" -j 3 --json >k4.json &&
	test_json k4.json "(.results[] | select(.project == \"home-0004\")) | .status == \"failed\" and
		(.reason | test(\"saved since it was migrated\"))" &&
	test "$(snap_count home-0004)" = 2
'

test_expect_success 'SIGINT: the projects in work are finished, then it stops with 130' '
	"$TOOLS_SRC/mkhomes.sh" --homes "$N" --kb 200 --prefix more- src || return 1
	"$PROJSTORE" migrate "$TRASH/src" -j 2 --json >i1.json 2>i1.err &
	pid=$! &&
	wait_for "[ \$(markers) -ge $((N + 5)) ]" 120 &&
	kill -INT $pid &&
	{ wait $pid; rc=$?; } &&
	test "$rc" = 130 &&
	test_json i1.json ".interrupted == true and .failed <= 1 and .done < .projects" &&
	test_json i1.json "[.results[] | select(.status == \"not-done\")] | length > 0" &&
	test -z "$(leftovers)" &&
	ps projects --json >p3.json &&
	test_json p3.json "all(.[]; (.maintenance | not) and .lease == null)" &&
	test "$(find "$PROJSTORE_STORE/projects" -name "*.snap" | wc -l)" = "$(($(markers) + 2))"
'

test_expect_success 'the rerun finishes (all but the refused one)' '
	test_expect_code 3 ps migrate "$TRASH/src" -j 2 --json >i2.json &&
	test_json i2.json ".done == $((2 * N)) and .failed == 1 and .imported + .unchanged == $((2 * N - 1))" &&
	test "$(find "$PROJSTORE_STORE/projects" -name "*.snap" | wc -l)" = $((2 * N + 2)) &&
	ps check
'

test_done
