#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'migrate: many generated homes with -j 4, a second pass after changes (only the changed
projects get a snapshot), then every project restored and compared with its source. Size knob:
MIGRATE_HOMES (default 200 homes of about 64 KiB, plus one messy home from mktree.sh).'

N=${MIGRATE_HOMES:-200}
TOTAL=$((N + 1))

# Number of snapshot refs in the store (docs/FORMAT.md: projects/ID/snaps/NAME.snap).
all_snaps () {
	find "$PROJSTORE_STORE/projects" -name '*.snap' | wc -l
}

test_expect_success 'setup: a store, its catalog and the homes' '
	ps init &&
	"$TOOLS_SRC/mkhomes.sh" --homes "$N" src &&
	mktree --mb 1 src/messy-home >/dev/null &&
	echo "not a project" >src/README &&
	test "$(ls src | wc -l)" = $((TOTAL + 1))
'

test_expect_success 'first pass: every home imported, owners rewritten, quota set' '
	SECONDS=0 &&
	test_expect_code_in "0 4" ps migrate src -j 4 --uid 1001 --gid 1001 --quota 80K --json >m1.json &&
	echo "# first pass of $TOTAL homes: $SECONDS s" >&4 &&
	test_json m1.json ".projects == $TOTAL and .imported == $TOTAL and .failed == 0 and
		.unchanged == 0 and .done == $TOTAL and .interrupted == false" &&
	test_json m1.json ".ignored == 1 and .ignored_entries == [\"README\"]" &&
	test_json m1.json "[.results[] | select(.status == \"imported\" and (.snapshot | length) > 0)] |
		length == $TOTAL" &&
	test_json m1.json ".logical_bytes > 0 and .new_bytes > 0 and .files > 0" &&
	test "$(all_snaps)" = $TOTAL
'

test_expect_success 'over-quota projects are listed with their sizes' '
	test_json m1.json ".over_quota > 0 and (.over_quota_projects | length) == .over_quota" &&
	test_json m1.json "all(.over_quota_projects[]; .logical_bytes > .quota_bytes and
		.quota_bytes == 81920)" &&
	ps quota home-0001 --json >q.json &&
	test_json q.json ".quota_bytes == 81920"
'

test_expect_success 'the catalog: every project migrated, none in maintenance or leased, facts cached' '
	ps projects --json >p.json &&
	test_json p.json "length == $TOTAL" &&
	test_json p.json "all(.[]; .migrated and (.maintenance | not) and .lease == null and
		.snapshots == 1 and .logical_bytes > 0 and .quota_bytes == 81920 and
		.last_save.result != null)" &&
	ps events home-0002 --json >ev.json &&
	test_json ev.json "[.[] | select(.kind == \"migrated\")] | length == 1"
'

test_expect_success 'second pass without changes: every project unchanged, nothing published' '
	before=$(store_listing | grep -c "/snaps/") &&
	SECONDS=0 &&
	test_expect_code_in "0 4" ps migrate src -j 4 --uid 1001 --gid 1001 --quota 80K --json >m2.json &&
	echo "# unchanged pass of $TOTAL homes: $SECONDS s" >&4 &&
	test_json m2.json ".unchanged == $TOTAL and .imported == 0 and .failed == 0 and
		.new_bytes == 0 and .processed_bytes == 0" &&
	test "$(all_snaps)" = $TOTAL &&
	test "$(store_listing | grep -c "/snaps/")" = "$before"
'

test_expect_success 'changes: content, new and removed files, a mode, a rename, a ctime-only change' '
	echo "export EDITOR=vi" >>src/home-0003/.bashrc &&
	echo new >src/home-0005/work1/new-file.txt &&
	rm src/home-0007/secret.txt &&
	chmod 0640 src/home-0009/hard-a &&
	mv src/home-0011/work1 src/home-0011/work-renamed &&
	echo deep >>"$(find src/messy-home -type f -name "*.txt" | head -n 1)" &&
	chown 0:0 src/home-0013/.bashrc &&
	orig=$(stat -c %y src/home-0015) &&
	touch -m -d "2021-01-01 00:00:00" src/home-0015 &&
	touch -m -d "$orig" src/home-0015 &&
	test "$(stat -c %y src/home-0015)" = "$orig"
'

test_expect_success 'second pass: the changed projects get a new snapshot, the others do not' '
	SECONDS=0 &&
	test_expect_code_in "0 4" ps migrate src -j 4 --uid 1001 --gid 1001 --quota 80K --json >m3.json &&
	echo "# pass after changes: $SECONDS s" >&4 &&
	test_json m3.json ".imported == 6 and .unchanged == $((TOTAL - 6)) and .failed == 0" &&
	test_json m3.json "[.results[] | select(.status == \"imported\") | .project] | sort ==
		[\"home-0003\", \"home-0005\", \"home-0007\", \"home-0009\", \"home-0011\", \"messy-home\"]" &&
	test "$(all_snaps)" = $((TOTAL + 6)) &&
	for p in home-0003 home-0005 home-0007 home-0009 home-0011 messy-home; do
		test "$(snap_count $p)" = 2 || return 1
	done &&
	test "$(snap_count home-0013)" = 1 &&
	test "$(snap_count home-0015)" = 1 &&
	test "$(snap_count home-0001)" = 1
'

# Restores project $1 into out/$1 and compares it with src/$1 (a failure is
# recorded in restore-failures).
restore_cmp () {
	if ! ps restore "$1" "out/$1" >"out-$1.log" 2>&1; then
		echo "$1: restore failed" >>restore-failures
	elif ! treecmp --no-atime --no-owner "src/$1" "out/$1" >"cmp-$1.out" 2>&1; then
		echo "$1: differs" >>restore-failures
	fi
}

test_expect_success 'every project restores equal to its source (owners: all 1001)' '
	mkdir out &&
	: >restore-failures &&
	SECONDS=0 &&
	i=0 &&
	for d in src/*/; do
		restore_cmp "$(basename "$d")" &
		i=$((i + 1))
		[ $((i % 4)) != 0 ] || wait
	done
	wait
	echo "# restore and compare of $TOTAL projects (4 at a time): $SECONDS s" >&4 &&
	if test -s restore-failures; then
		cat restore-failures >&4
		for f in $(cut -d: -f1 restore-failures | head -n 3); do
			cat "out-$f.log" "cmp-$f.out" 2>/dev/null | head -n 20 >&4
		done
		false
	fi &&
	test "$(ls out | wc -l)" = $TOTAL &&
	find out -mindepth 1 \( ! -uid 1001 -o ! -gid 1001 \) >bad-owners &&
	test_must_be_empty bad-owners
'

test_expect_success 'the store checks clean' '
	ps check
'

test_expect_success 'a terminal gets a progress line; lost markers add no snapshot' '
	command -v script >/dev/null || return 0
	rm -rf "$PROJSTORE_CACHE_DIR/migrate" &&
	script -qfec "$PROJSTORE migrate src -j 2 --uid 1001 --gid 1001" /dev/null >tty.out 2>&1
	rc=$?
	test "$rc" = 0 || test "$rc" = 4 || { cat tty.out >&4; return 1; }
	tr "\r" "\n" <tty.out >tty.lines &&
	test_grep "migrate: [0-9]*/[0-9]* projects ([0-9]* imported, [0-9]* unchanged, [0-9]* failed), [0-9]* running, .* processed, .*/s, ETA" tty.lines &&
	test "$(all_snaps)" = $((TOTAL + 6))
'

test_done
