#!/bin/bash
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-sshd.sh"

test_description 'sync refuses to spread damage (a flipped bit in SRC is named, never stored); check --repair-from the other side'

helper () { "$TOOLS/ps-synchelper" "$@"; }
snaps_of () {
	ps --store "$1" snapshots "$2" --json | jq -c '[.snapshots[] | {name, root}]'
}

test_expect_success 'setup: datacenter A with a project in sync with datacenter B' '
	ps init A --compression none && ps init B &&
	mkdir -p p/sub &&
	random_file p/old.bin 1024 &&
	echo small >p/sub/small.txt &&
	ps --store A save proj p &&
	ps sync A B &&
	ps --store B check --read-data
'

test_expect_success 'a new file in A whose chunk is then damaged by a flipped bit' '
	random_file p/new.bin 1024 &&
	ps --store A save proj p --json >save.json &&
	SNAP=$(jq -r .snapshot.name save.json) &&
	BAD=$(helper chunk A proj new.bin) &&
	helper flip A "$BAD" &&
	test_expect_code 8 ps --store A check --read-data >/dev/null
'

test_expect_success 'sync refuses it: exit 8, names the object, the file and the snapshot' '
	store_listing B >before.refs &&
	test_expect_code 8 ps sync A B >out 2>err &&
	cat out err >all &&
	test_grep "$BAD" all &&
	test_grep "new.bin" all &&
	test_grep "$SNAP" all &&
	test_grep "NOT COPIED" out
'

test_expect_success 'the damaged snapshot is not in B, the damaged object is not stored, B is clean' '
	! ps --store B snapshots proj --json | jq -e ".snapshots[] | select(.name == \"$SNAP\")" &&
	test_expect_code 1 helper flip B "$BAD" 2>/dev/null &&
	ps --store B check --read-data
'

test_expect_success '--json lists the damage' '
	test_expect_code 8 ps sync A B --json >sync.json &&
	test_json sync.json ".ok == false" &&
	test_json sync.json ".damaged[0].object == \"$BAD\" and .damaged[0].snapshot == \"$SNAP\"" &&
	test_json sync.json ".damaged[0].path == \"new.bin\"" &&
	test_json sync.json "[.projects[0].not_copied[] == \"$SNAP\"] | any"
'

test_expect_success 'damage B lacks cannot be repaired from B: reported, exit 8' '
	test_expect_code 8 ps --store A check --read-data --repair-from B --json >rep.json &&
	test_json rep.json ".repair.unrepaired == 1 and .repair.repaired == 0" &&
	test_json rep.json ".repair.objects[0].object == \"$BAD\" and .repair.objects[0].repaired == false" &&
	test_json rep.json ".repair.after.ok == false"
'

test_expect_success 'damage to an object B has is repaired from B; what B lacks is reported' '
	OLD=$(helper chunk A proj old.bin) &&
	helper flip A "$OLD" &&
	test_expect_code 8 ps --store A check --read-data >/dev/null &&
	test_expect_code 8 ps --store A check --read-data --repair-from B >rep.out 2>rep.err &&
	test_grep "^repaired object $OLD" rep.out &&
	test_grep "NOT REPAIRED object $BAD" rep.out &&
	test_grep "problems remain" rep.out &&
	ps --store A cat proj old.bin | cmp - p/old.bin
'

test_expect_success 'repaired from a third store that has it, sync copies the snapshot' '
	# C saved the same directory: its chunk of new.bin is the good one
	ps init C &&
	ps --store C save proj p &&
	ps --store A check --read-data --repair-from C >rep2.out &&
	test_grep "after the repair: no problems found" rep2.out &&
	ps --store A check --read-data &&
	ps sync A B &&
	test_cmp <(snaps_of A proj) <(snaps_of B proj) &&
	ps --store B check --read-data &&
	ps --store B restore proj rout &&
	treecmp --no-atime p rout
'

test_expect_success 'a damaged snapshot ref in SRC is not copied and said (exit 8); the other snapshots are' '
	ps init E &&
	echo third >p/third.txt &&
	ps --store A save proj p --json >s3.json &&
	S3=$(jq -r .snapshot.name s3.json) &&
	cp "A/projects/proj/snaps/$S3.snap" ref.orig &&
	test_when_finished "cp ref.orig A/projects/proj/snaps/$S3.snap" &&
	sed -i "s/^files .*/files 999/" "A/projects/proj/snaps/$S3.snap" &&
	test_expect_code 8 ps sync A E >out.e 2>err.e &&
	test_grep "$S3" err.e &&
	test_grep "checksum" err.e &&
	! ps --store E snapshots proj --json | jq -e ".snapshots[] | select(.name == \"$S3\")" &&
	test "$(ps --store E snapshots proj --json | jq ".snapshots | length")" -ge 2 &&
	cp ref.orig "A/projects/proj/snaps/$S3.snap" &&
	ps sync A E &&
	test_cmp <(snaps_of A proj) <(snaps_of E proj)
'

test_expect_success 'a missing pack is refilled from the other store' '
	ps sync A B &&
	pack=$(find A/packs -name "*.pack" | head -n 1) &&
	mv "$pack" gone.pack &&
	test_expect_code 8 ps --store A check >/dev/null &&
	ps --store A check --read-data --repair-from B >rep3.out &&
	ps --store A check --read-data &&
	ps --store A restore proj out2 &&
	treecmp --no-atime p out2
'

test_expect_success SSHD 'repair from ssh://localhost' '
	sshd_start &&
	OLD=$(helper chunk A proj sub/small.txt) &&
	helper flip A "$OLD" &&
	test_expect_code 8 ps --store A check --read-data >/dev/null &&
	ps --store A check --read-data --repair-from "ssh://localhost$TRASH/B" --json >rep4.json &&
	test_json rep4.json ".repair.repaired == 1 and .repair.after.ok == true" &&
	ps --store A check --read-data &&
	sshd_stop
'

test_expect_success 'a store that is not another store is refused' '
	BADP=$(helper chunk A proj old.bin) &&
	helper flip A "$BADP" &&
	test_expect_code 2 ps --store A check --read-data --repair-from A >/dev/null 2>err &&
	test_grep "this store" err &&
	ps --store A check --read-data --repair-from B >/dev/null &&
	ps --store A check --read-data
'

test_done
