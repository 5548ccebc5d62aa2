#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'migrate group commit killed at its windows: kill -9 while saves wait in a batch
(nothing of them is published, no pack or segment of theirs is visible), after the batch was published,
before its projects markers and catalog ends (the refs are there, the projects in maintenance), and
after the markers, before the catalog ends; each time a rerun finishes every project without a
duplicate snapshot or a false "saved since it was migrated", nothing left in maintenance, the store
checks clean and the killed projects restore equal to their source. Size knob: MIGRATE_BATCH_HOMES
(default 12 homes).'

N=${MIGRATE_BATCH_HOMES:-12}

markers () {
	find "$PROJSTORE_CACHE_DIR/migrate" -type f ! -name "*.tmp.*" 2>/dev/null | wc -l
}

snaps () {
	find "$PROJSTORE_STORE/projects" -name "*.snap" 2>/dev/null | wc -l
}

leftovers () {
	pgrep -f -- "migrate $TRASH/src" || true
}

# run_and_kill POINT: a migrate with one worker and batches of 4 that pauses at POINT, killed there
run_and_kill () {
	PROJSTORE_MIGRATE_PAUSE="$1:60" "$PROJSTORE" migrate "$TRASH/src" -j 1 --batch 4 --json \
		>"k-$1.json" 2>"k-$1.err" &
	pid=$!
	wait_for "grep -q \"pausing at $1\" k-$1.err" 60 &&
	kill -9 $pid &&
	{ wait $pid; true; } &&
	wait_for "[ -z \"\$(leftovers)\" ]" 10
}

test_expect_success 'setup' '
	ps init &&
	"$TOOLS_SRC/mkhomes.sh" --homes "$N" --kb 100 src
'

test_expect_success 'killed while saves wait in a batch: nothing of them is visible' '
	run_and_kill batched &&
	test "$(snaps)" = 0 &&
	test "$(markers)" = 0 &&
	test -z "$(find "$PROJSTORE_STORE/index" -name "*.idx")" &&
	test -z "$(find "$PROJSTORE_STORE/packs" -name "*.pack")" &&
	ps projects --json >p1.json &&
	test_json p1.json "[.[] | select(.maintenance)] | length == 2"
'

test_expect_success 'the rerun imports everything once' '
	ps migrate "$TRASH/src" -j 2 --json >r1.json &&
	test_json r1.json ".failed == 0 and .imported == $N" &&
	test "$(snaps)" = "$N" &&
	test "$(markers)" = "$N" &&
	ps projects --json >p2.json &&
	test_json p2.json "length == $N and all(.[]; .migrated and (.maintenance | not) and .lease == null)" &&
	ps check
'

test_expect_success 'killed after a batch was published, before its catalog ends and markers' '
	for h in 0001 0002 0003 0004 0005; do
		echo "changed $h" >>"src/home-$h/.bashrc" || return 1
	done
	run_and_kill committed &&
	test "$(snaps)" = $((N + 4)) &&
	test "$(markers)" = "$N" &&
	ps projects --json >p3.json &&
	test_json p3.json "[.[] | select(.maintenance)] | length == 4"
'

test_expect_success 'the rerun adds no duplicate: the published ones are unchanged, the fifth is imported' '
	ps migrate "$TRASH/src" -j 2 --json >r2.json &&
	test_json r2.json ".failed == 0 and .done == $N and .imported == 1 and .unchanged == $((N - 1))" &&
	test "$(snaps)" = $((N + 5)) &&
	ps projects --json >p4.json &&
	test_json p4.json "all(.[]; .migrated and (.maintenance | not) and .lease == null)" &&
	ps check &&
	mkdir out &&
	for h in 0001 0002 0003 0004 0005; do
		ps restore "home-$h" "out/home-$h" &&
		treecmp --no-atime "src/home-$h" "out/home-$h" || return 1
	done
'

test_expect_success 'killed after the markers, before the catalog ends: the rerun only ends them' '
	for h in 0006 0007 0008 0009; do
		echo "changed $h" >>"src/home-$h/.bashrc" || return 1
	done
	run_and_kill marked &&
	test "$(snaps)" = $((N + 9)) &&
	ps projects --json >p5.json &&
	test_json p5.json "[.[] | select(.maintenance)] | length == 4" &&
	ps migrate "$TRASH/src" -j 2 --json >r3.json &&
	test_json r3.json ".failed == 0 and .done == $N and .unchanged == $N" &&
	test "$(snaps)" = $((N + 9)) &&
	ps projects --json >p6.json &&
	test_json p6.json "all(.[]; .migrated and (.maintenance | not) and .lease == null)"
'

test_done
