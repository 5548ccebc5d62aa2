#!/bin/bash
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-pg.sh"

test_description 'migrate with the catalog in PostgreSQL: the catalog_migrate unit tests, import, unchanged
pass, a changed project, a refused one, the catalog rows and events. Size knob: MIGRATE_PG_HOMES (default 30).'

N=${MIGRATE_PG_HOMES:-30}

test_expect_success POSTGRES 'start PostgreSQL; a store and homes' '
	pg_start &&
	test_set_prereq PG &&
	ps init &&
	"$TOOLS_SRC/mkhomes.sh" --homes "$N" --kb 32 src
'

UNIT=${PS_UNIT_BIN_MIGRATE:-$(dirname "$PROJSTORE")/tests/test_catalog_migrate}

test_expect_success PG 'the catalog_migrate unit tests against PostgreSQL too' '
	test -x "$UNIT" || { echo "# $UNIT not built: skipped" >&4; return 0; }
	url=$(pg_newdb unit) &&
	PS_TEST_PG_URL=$url "$UNIT" >unit.out 2>&1
	rc=$?
	cat unit.out >&4
	test $rc = 0 &&
	grep -q "engine postgresql" unit.out &&
	! grep -q "^not ok" unit.out
'

test_expect_success PG 'first pass: every home imported, the catalog rows complete' '
	test_expect_code_in "0 4" ps --store "$PROJSTORE_STORE" migrate src -j 4 --catalog "$PG_URL" \
		--uid 1001 --gid 1001 --quota 40K --json >m1.json &&
	test_json m1.json ".imported == $N and .failed == 0" &&
	ps projects --catalog "$PG_URL" --json >p.json &&
	test_json p.json "length == $N and all(.[]; .migrated and (.maintenance | not) and .lease == null
		and .snapshots == 1 and .quota_bytes == 40960 and .stored_bytes > 0 and
		.last_save.result != null)" &&
	ps events home-0001 --catalog "$PG_URL" --json >ev.json &&
	test_json ev.json ".[0].kind == \"migrated\" and (.[0].error | not)"
'

test_expect_success PG 'second pass: unchanged but one; a pending open is refused' '
	echo more >>src/home-0002/.bashrc &&
	echo more >>src/home-0003/.bashrc &&
	ps host add h1 --root "$TRASH/h1" --catalog "$PG_URL" &&
	ps open home-0003 --host h1 --catalog "$PG_URL" 2>/dev/null &&
	test_expect_code_in "3 5" ps migrate src -j 4 --catalog "$PG_URL" --uid 1001 --gid 1001 \
		--quota 40K --json >m2.json &&
	test_json m2.json ".imported == 1 and .unchanged == $((N - 2)) and .failed == 1" &&
	test_json m2.json "(.failures[0]) | .project == \"home-0003\" and (.reason | test(\"pending\"))" &&
	test "$(snap_count home-0002)" = 2 &&
	test "$(snap_count home-0003)" = 1 &&
	ps projects --catalog "$PG_URL" --json >p2.json &&
	test_json p2.json "(.[] | select(.id == \"home-0002\")) | .snapshots == 2 and (.maintenance | not)" &&
	test_json p2.json "(.[] | select(.id == \"home-0003\")) | (.maintenance | not) and .lease == null"
'

test_done
