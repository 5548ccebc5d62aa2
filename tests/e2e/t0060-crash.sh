#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'crash safety: saves killed with SIGKILL at random points leave a consistent store'

# Knobs: PS_CRASH_MB (size of the tree, MiB), PS_CRASH_ITERATIONS (kills),
# PS_CRASH_THOROUGH=1 (restore every snapshot after every kill, not only the
# new ones), PS_CRASH_SEED (seed of $RANDOM, to replay a run).
CRASH_MB=${PS_CRASH_MB:-16}
ITERATIONS=${PS_CRASH_ITERATIONS:-10}
RANDOM=${PS_CRASH_SEED:-$$}
say "# crash: ${CRASH_MB} MiB tree, $ITERATIONS kills, seed ${PS_CRASH_SEED:-$$}"

NFILES=8

# Replaces a file with fresh random data (a new inode: copies made with
# cp -al stay as they were).
refill () {
	head -c "$2" /dev/urandom >"$1.new" && mv -f "$1.new" "$1"
}

# Changes the tree: new content for two of the big files, one new small
# file, one removed.
mutate () {
	local i=$1 a b
	a=$((RANDOM % NFILES))
	b=$(((a + 1 + RANDOM % (NFILES - 1)) % NFILES))
	refill "src/big/f$a" $((CRASH_MB * 1024 * 1024 / NFILES)) &&
	refill "src/big/f$b" $((CRASH_MB * 1024 * 1024 / NFILES)) &&
	printf 'iteration %s\n' "$i" >"src/small/new-$i" &&
	rm -f "src/small/new-$((i - 2))"
}

# keep_copy NAME: remembers the current tree as the content of snapshot NAME.
keep_copy () {
	mkdir -p keep &&
	cp -al src "keep/$1"
}

# verify_snapshot NAME: restores it and compares with the kept copy.
verify_snapshot () {
	rm -rf "restored/$1" &&
	mkdir -p restored &&
	ps restore "crash@$1" "restored/$1" &&
	treecmp --no-atime "keep/$1" "restored/$1" &&
	rm -rf "restored/$1"
}

ms_sleep () {
	sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"
}

test_expect_success 'setup: a tree of random data and a first snapshot' '
	ps init &&
	mkdir -p src/big src/small src/dir/sub &&
	for i in $(seq 0 $((NFILES - 1))); do
		refill "src/big/f$i" $((CRASH_MB * 1024 * 1024 / NFILES)) || return 1
	done &&
	for i in $(seq 1 50); do
		echo "small $i" >"src/small/s$i" || return 1
	done &&
	echo deep >src/dir/sub/deep &&
	start=$(now_ns) &&
	ps save crash src --json --cache-dir "$TRASH/cache-first" >first.json &&
	D=$((($(now_ns) - start) / 1000000)) &&
	say "# a full save takes $D ms" >&3 &&
	keep_copy "$(jq -r .snapshot.name first.json)"
' 3>&1

# The kill points are spread over 0..1.1 times the duration of a full save
# (some kills land after the save finished: those saves must be complete).
test_expect_success 'kill -9 saves at random points' '
	for i in $(seq 1 $ITERATIONS); do
		mutate $i || return 1
		before=$(snap_count crash) || return 1
		"$PROJSTORE" save crash src --cache-dir "$TRASH/cache-$i" >save.$i.out 2>&1 &
		pid=$!
		delay=$((D * (RANDOM % 1100) / 1000))
		ms_sleep $delay
		kill -9 $pid 2>/dev/null
		wait $pid
		rc=$?
		echo "iteration $i: killed after $delay ms, exit $rc"
		case $rc in
		0|137) ;;
		*) echo "save exited $rc"; cat save.$i.out; return 1 ;;
		esac

		# a snapshot is there completely or not at all
		after=$(snap_count crash) || return 1
		if [ $rc = 0 ] && [ "$after" != $((before + 1)) ]; then
			echo "save succeeded but snapshots went from $before to $after"; return 1
		fi
		if [ "$after" != "$before" ] && [ "$after" != $((before + 1)) ]; then
			echo "snapshots went from $before to $after"; return 1
		fi
		if [ "$after" = $((before + 1)) ]; then
			keep_copy "$(snap_names crash | tail -n 1)" || return 1
			verify_snapshot "$(snap_names crash | tail -n 1)" || return 1
		fi

		ps check --read-data >check.$i.out 2>&1 || {
			echo "check failed after kill $i"; cat check.$i.out; return 1; }

		if [ -n "$PS_CRASH_THOROUGH" ]; then
			for s in $(snap_names crash); do
				verify_snapshot "$s" || return 1
			done
		else
			# (check --read-data above verified every object of every
			# snapshot; restore one earlier snapshot at random, all of
			# them at the end)
			set -- $(snap_names crash)
			shift $((RANDOM % $#))
			verify_snapshot "$1" || return 1
		fi

		# the next save succeeds (and breaks the dead process lock)
		PS_TEST_TIMEOUT=60 ps save crash src --json >next.json || {
			echo "save after kill $i failed"; return 1; }
		keep_copy "$(jq -r .snapshot.name next.json)" || return 1
	done
'

test_expect_success 'every snapshot restores identical to its tree' '
	test "$(snap_count crash)" = "$(ls keep | wc -l)" &&
	for s in $(snap_names crash); do
		test -d "keep/$s" || { echo "unexpected snapshot $s"; return 1; }
		verify_snapshot "$s" || return 1
	done
'

test_expect_success 'the store is clean' '
	ps check --read-data --json >check.json &&
	test_json check.json ".ok == true"
'

test_expect_success 'kill -9 restores at random points: the target is absent or complete' '
	name=$(snap_names crash | tail -n 1) &&
	for i in 1 2 3 4 5; do
		"$PROJSTORE" restore crash "rtarget$i" &
		pid=$!
		ms_sleep $((D * (RANDOM % 1000) / 1000))
		kill -9 $pid 2>/dev/null
		wait $pid
		if [ -e "rtarget$i" ]; then
			treecmp --no-atime "keep/$name" "rtarget$i" || return 1
		fi
	done &&
	ps check --read-data
'

test_done
