#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'gc killed with SIGKILL at random points leaves a clean store in which every snapshot restores'

# Knobs: PS_GC_CRASH_ITERATIONS (kills, default 20), PS_GC_CRASH_MB (size of
# the tree, MiB, default 2), PS_GC_CRASH_SEED (seed of $RANDOM, to replay).
ITERATIONS=${PS_GC_CRASH_ITERATIONS:-20}
CRASH_MB=${PS_GC_CRASH_MB:-2}
RANDOM=${PS_GC_CRASH_SEED:-$$}
NFILES=16
say "# gc crash: ${CRASH_MB} MiB tree, $ITERATIONS kills, seed ${PS_GC_CRASH_SEED:-$$}"

refill () {
	head -c "$2" /dev/urandom >"$1.new" && mv -f "$1.new" "$1"
}

# New content for four files (new inodes: kept copies stay as they were).
mutate () {
	for k in 1 2 3 4; do
		refill "src/f$((RANDOM % NFILES))" $((CRASH_MB * 1024 * 1024 / NFILES)) || return 1
	done
	echo "iteration $1" >"src/small-$1"
}

save_and_keep () {
	local name
	name=$(ps save crash src --json | jq -r .snapshot.name) &&
	test -n "$name" &&
	mkdir -p keep &&
	cp -al src "keep/$name"
}

verify_snapshot () {
	rm -rf restored &&
	ps restore "crash@$1" restored &&
	treecmp --no-atime "keep/$1" restored &&
	rm -rf restored
}

# Removes the kept copies of snapshots that are gone.
forget_pruned () {
	snap_names crash >live &&
	for d in keep/*; do
		grep -qxF "${d#keep/}" live || rm -rf "$d" || return 1
	done
}

ms_sleep () {
	sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"
}

test_expect_success 'setup: small packs, a tree, garbage, and the time of one gc' '
	ps init &&
	sed -i "s/^pack-size .*/pack-size 1048576/" "$PROJSTORE_STORE/config" &&
	mkdir src &&
	for i in $(seq 0 $((NFILES - 1))); do
		refill "src/f$i" $((CRASH_MB * 1024 * 1024 / NFILES)) || return 1
	done &&
	save_and_keep &&
	for i in $(seq 0 $((NFILES - 1))); do
		refill "src/f$i" $((CRASH_MB * 1024 * 1024 / NFILES)) || return 1
	done &&
	save_and_keep &&
	ps prune crash --keep-last 1 >/dev/null &&
	forget_pruned &&
	start=$(now_ns) &&
	ps gc --grace 0 --json >gc0.json &&
	D=$((($(now_ns) - start) / 1000000)) &&
	test_json gc0.json ".deleted_packs >= 2" &&
	say "# one gc takes $D ms" >&3
' 3>&1

test_expect_success 'kill -9 gc at random points' '
	for i in $(seq 1 $ITERATIONS); do
		mutate $i && save_and_keep || return 1
		ps prune crash --keep-last 3 >/dev/null && forget_pruned || return 1
		"$PROJSTORE" gc --grace 0 >gc.$i.out 2>&1 &
		pid=$!
		delay=$(( (D + 20) * (RANDOM % 1000) / 1000 ))
		ms_sleep $delay
		kill -9 $pid 2>/dev/null
		wait $pid
		rc=$?
		echo "iteration $i: killed after $delay ms, exit $rc"
		case $rc in
		0|137) ;;
		*) echo "gc exited $rc"; cat gc.$i.out; return 1 ;;
		esac
		ps check --read-data >check.$i.out 2>&1 || {
			echo "check failed after kill $i"; cat check.$i.out; return 1; }
		# the newest, and every other time one at random (all at the end)
		set -- $(snap_names crash)
		verify_snapshot "${@: -1}" || return 1
		if [ $((i % 2)) = 1 ]; then
			shift $((RANDOM % $#))
			verify_snapshot "$1" || return 1
		fi
	done
'

test_expect_success 'a complete gc afterwards; every snapshot restores identical' '
	ps gc --grace 0 --json >final.json &&
	test_json final.json ".pending_lists == 0" &&
	ps check --read-data --json >check.json &&
	test_json check.json ".ok == true and .leftovers == 0" &&
	! ls "$PROJSTORE_STORE"/gc/condemned-* 2>/dev/null &&
	! ls -a "$PROJSTORE_STORE"/tmp | grep -q "gc-aside" &&
	test "$(snap_count crash)" = "$(ls keep | wc -l)" &&
	for s in $(snap_names crash); do
		verify_snapshot "$s" || return 1
	done
'

test_expect_success 'the store holds about what the live snapshots need' '
	ps gc --grace 0 --json >again.json &&
	test_json again.json ".condemned_packs == 0" &&
	test_json again.json ".live_bytes * 2 >= .stored_bytes"
'

test_done
