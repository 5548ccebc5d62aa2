#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'sync killed with SIGKILL at random points, then run again, equals one clean run; gc and saves on DST while syncs run lose nothing'

# PS_SYNC_KILLS: how many times the sync is killed (default 6)
KILLS=${PS_SYNC_KILLS:-6}
helper () { "$TOOLS/ps-synchelper" "$@"; }
snaps_of () {
	ps --store "$1" snapshots "$2" --json | jq -c '[.snapshots[] | {name, root}]'
}

test_expect_success 'setup: a source with three projects, about 40 MiB of history' '
	ps init A &&
	mkdir -p w1 w2 &&
	for i in 1 2 3 4 5 6; do
		random_file w1/f$i 2048 &&
		seq $i 40000 >w1/s$i.txt &&
		ps --store A save alpha w1 || return 1
	done &&
	for i in 1 2 3; do
		random_file w2/g$i 3072 &&
		ps --store A save beta w2 || return 1
	done &&
	helper history A gamma 300 &&
	ps init CLEAN &&
	ps sync A CLEAN --json >clean.json &&
	test_json clean.json ".snapshots_copied == 309"
'

test_expect_success "killed $KILLS times at random points, then run to the end: the same as a clean run" '
	ps init B &&
	kills=0 && runs=0 &&
	while [ $kills -lt '"$KILLS"' ]; do
		{ "$PROJSTORE" sync A B >/dev/null 2>&1 & } &&
		pid=$! &&
		sleep "0.$((RANDOM % 6))$((RANDOM % 10))" &&
		if kill -9 $pid 2>/dev/null; then kills=$((kills + 1)); fi &&
		{ wait $pid 2>/dev/null; true; } &&
		runs=$((runs + 1)) &&
		# whatever a killed run left: whole snapshots only
		ps --store B check >check.$runs.out || { cat check.$runs.out; return 1; }
		[ $runs -lt 60 ] || break
	done &&
	echo "$kills kills in $runs runs" >&4 &&
	ps sync A B --json >last.json &&
	for p in alpha beta gamma; do
		test_cmp <(snaps_of CLEAN $p) <(snaps_of B $p) || return 1
	done &&
	ps --store B check --read-data &&
	ps sync A B --json >again.json &&
	test_json again.json ".snapshots_copied == 0 and .objects_sent == 0"
'

test_expect_success 'every snapshot of the killed-and-resumed store restores identical to the clean one' '
	for s in $(ps --store B snapshots alpha --json | jq -r ".snapshots[].name"); do
		ps --store B restore "alpha@$s" "rb-$s" &&
		ps --store CLEAN restore "alpha@$s" "rc-$s" &&
		treecmp --no-atime "rb-$s" "rc-$s" || return 1
	done
'

test_expect_success 'the resumed runs sent little more than one clean run' '
	total=$(jq .bytes_sent clean.json) &&
	# what the killed runs had flushed was indexed by the next one, not sent again
	test "$(jq .bytes_sent last.json)" -le "$total"
'

test_expect_success 'a second sync into the same store waits for the first (store-wide sync lock)' '
	ps init S &&
	{ "$PROJSTORE" sync A S >s1.out 2>s1.err & } &&
	pid=$! &&
	ps sync --lock-timeout 120 A S >s2.out 2>s2.err &&
	wait $pid &&
	for p in alpha beta gamma; do
		test_cmp <(snaps_of A $p) <(snaps_of S $p) || return 1
	done &&
	ps --store S check --read-data
'

test_expect_success 'syncs, saves and gc --grace 0 on the destination at once lose nothing' '
	ps init G &&
	mkdir -p local &&
	echo "made in G" >local/own.txt &&
	{ ( for i in 1 2 3 4 5; do
		echo $i >>local/own.txt && ps --store G save local-proj local || exit 1
	    done ) >saves.out 2>&1 & } &&
	saves=$! &&
	{ ( for i in 1 2 3; do ps --store G gc --grace 0 || exit 1; done ) >gc.out 2>&1 & } &&
	gcs=$! &&
	for i in 1 2 3; do
		ps sync A G >sync.$i.out 2>&1 || { cat sync.$i.out; return 1; }
	done &&
	wait $saves && wait $gcs &&
	ps --store G gc --grace 0 &&
	ps --store G check --read-data &&
	for p in alpha beta gamma; do
		test_cmp <(snaps_of A $p) <(snaps_of G $p) || return 1
	done &&
	test "$(ps --store G snapshots local-proj --json | jq ".snapshots | length")" = 5 &&
	ps --store G restore beta rg &&
	ps --store A restore beta ra &&
	treecmp --no-atime rg ra
'

test_expect_success 'a project locked in the destination is skipped (exit 6), the others are copied' '
	ps init P &&
	mkdir -p locks-src && echo x >locks-src/x &&
	ps --store P save alpha locks-src &&
	# a save of alpha that holds its lock: a fake holder, alive (this shell)
	printf "host %s\npid %s\nboot_id %s\ncreated %s\nexpires %s\n" "$(hostname)" $$ \
		"$(cat /proc/sys/kernel/random/boot_id)" "$(now_ns)" "$(( $(now_ns) + 600000000000 ))" \
		>P/locks/alpha.lock &&
	test_expect_code 6 ps sync --lock-timeout 1 A P --json >locked.json &&
	test_json locked.json "[.projects[] | select(.project == \"alpha\") | .status] == [\"locked\"]" &&
	test_json locked.json "[.projects[] | select(.project == \"beta\") | .status] == [\"ok\"]" &&
	rm P/locks/alpha.lock &&
	ps sync A P
'

test_done
