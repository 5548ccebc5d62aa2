#!/bin/bash
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-gluster.sh"

test_description 'a brick of a replica 3 volume dies while saves run in a loop (gluster://): every
save succeeds; the brick comes back, the heal finishes, check --read-data is clean, the bricks hold
identical files and every snapshot restores byte-identical to what was saved. A replica 2 volume
that loses quorum fails a save cleanly and works again once the brick is back.'

# size knobs: KiB of new data per save, saves while the brick is down
GL_FAULT_KB=${GL_FAULT_KB:-256}
GL_FAULT_DOWN_SAVES=${GL_FAULT_DOWN_SAVES:-3}

prereq_GLUSTERD () { false; }   # set by the setup test once the volume runs

gps () { gns timeout -k 10 "$PS_TEST_TIMEOUT" "$PROJSTORE" "$@"; }

# save_loop: until $TRASH/stop exists (at most 200 rounds): change the tree,
# keep a copy of it as saved/N, save it; appends "N SNAPSHOT" to saves.txt, or
# "FAIL N CODE" when a save fails.
save_loop () {
	local i=0 rc
	mkdir -p saved
	while [ ! -e stop ] && [ $i -lt 200 ]; do
		i=$((i + 1))
		head -c $((GL_FAULT_KB * 1024)) /dev/urandom >"src/new-$i" &&
		echo "round $i" >>src/log.txt &&
		rm -f "src/new-$((i - 3))" &&
		cp -a src "saved/$i" || { echo "FAIL $i copy" >>saves.txt; continue; }
		gps save proj src --json >"save-$i.json" 2>"save-$i.err"
		rc=$?
		if [ $rc -eq 0 ]; then
			echo "$i $(jq -r .snapshot.name "save-$i.json")" >>saves.txt
		else
			echo "FAIL $i $rc" >>saves.txt
		fi
	done
}

saves_done () {
	local n
	n=$(grep -vc FAIL saves.txt 2>/dev/null)
	echo "${n:-0}"
}

snap_names_g () { gps snapshots proj --json | jq -r ".snapshots[].name"; }

test_expect_success GLUSTER 'setup: glusterd, a replica 3 volume, a store on it' '
	test_atexit gluster_stop &&
	gluster_start "$TRASH/gluster" &&
	gluster_volume_create psv replica3 &&
	export PROJSTORE_STORE="gluster://$GL_HOST/psv/store" &&
	gps init &&
	mkdir src &&
	head -c 1048576 /dev/urandom >src/base &&
	mkdir src/dir && echo text >src/dir/file &&
	test_set_prereq GLUSTERD
'

test_expect_success GLUSTERD "saves keep succeeding while a brick is dead ($GL_FAULT_DOWN_SAVES saves) and after it is back" '
	: >saves.txt &&
	{ save_loop & LOOP_PID=$!; } &&
	test_atexit "touch \"$TRASH/stop\"; kill $LOOP_PID" &&
	wait_for "[ \$(saves_done) -ge 2 ]" 60 &&
	killed=$(gluster_kill_brick psv 1) &&
	k=$(saves_done) &&
	echo "brick 1 (pid $killed) killed after $k saves" &&
	wait_for "! kill -0 $killed 2>/dev/null" 10 &&
	test "$(gluster_brick_pids psv | wc -l)" = 2 &&
	wait_for "[ \$(saves_done) -ge $((k + GL_FAULT_DOWN_SAVES)) ]" 120 &&
	gl volume start psv force >/dev/null &&
	gluster_wait_bricks psv 3 &&
	r=$(saves_done) &&
	echo "brick 1 back after $r saves" &&
	wait_for "[ \$(saves_done) -ge $((r + 2)) ]" 60 &&
	touch stop &&
	wait $LOOP_PID &&
	cat saves.txt &&
	! grep FAIL saves.txt &&
	test "$(saves_done)" -ge $((r + 2))
'

test_expect_success GLUSTERD 'the heal finishes: heal info lists nothing pending (time limit 120 s)' '
	gluster_heal_wait psv 120 &&
	gl volume heal psv info >heal.out &&
	cat heal.out &&
	! grep -E "Number of entries: [1-9]" heal.out
'

test_expect_success GLUSTERD 'every brick holds the same files with the same bytes' '
	for b in 1 2 3; do
		(cd "$GL_DIR/bricks/psv-$b" && find store -type f -print0 | sort -z |
		 xargs -0 sha256sum) >"sums.$b" || return 1
	done &&
	test_line_count -gt 5 sums.1 &&
	test_cmp sums.1 sums.2 &&
	test_cmp sums.1 sums.3
'

test_expect_success GLUSTERD 'check --read-data is clean' '
	gps check --read-data --json >check.json &&
	gps check --read-data >check.out &&
	test_grep "no problems found" check.out
'

test_expect_success GLUSTERD 'every snapshot restores byte-identical to what was saved' '
	n=0 && mkdir out &&
	while read -r i name; do
		gps restore "proj@$name" "out/$i" </dev/null &&
		treecmp --no-atime "saved/$i" "out/$i" || { echo "snapshot $name (round $i) differs"; return 1; }
		n=$((n + 1))
	done <saves.txt &&
	test "$n" = "$(snap_names_g | wc -l)"
'

test_expect_success GLUSTERD 'replica 2 with client quorum: losing the first brick fails a save cleanly' '
	gluster_volume_create ps2 replica2 &&
	gl volume set ps2 cluster.quorum-type auto >/dev/null &&
	U2="gluster://$GL_HOST/ps2/store" &&
	gps init "$U2" &&
	gps save proj src --store "$U2" &&
	gluster_kill_brick ps2 1 &&
	echo more >src/after-kill &&
	test_must_fail gps save proj src --store "$U2" 2>err &&
	test_grep "$U2" err &&
	gl volume start ps2 force >/dev/null &&
	gluster_wait_bricks ps2 2 &&
	wait_for "gps snapshots proj --store \"$U2\" >/dev/null 2>&1" 30 &&
	gps save proj src --store "$U2" &&
	test "$(gps snapshots proj --store "$U2" --json | jq ".snapshots | length")" = 2 &&
	gluster_heal_wait ps2 60 &&
	gps check --read-data --store "$U2" &&
	gps restore proj r2 --store "$U2" &&
	treecmp --no-atime src r2
'

test_expect_success GLUSTERD 'teardown' '
	gluster_stop
'

test_done
