#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'concurrency: project locks (held, waited for, stale, foreign), parallel saves, readers'

LOCKS=$PROJSTORE_STORE/locks
HOST=$(uname -n)
BOOT=$(cat /proc/sys/kernel/random/boot_id)

# write_lock PROJECT HOST PID BOOT_ID EXPIRES_NS
write_lock () {
	mkdir -p "$LOCKS" &&
	printf 'host %s\npid %s\nboot_id %s\ncreated %s\nexpires %s\n' \
		"$2" "$3" "$4" "$(now_ns)" "$5" >"$LOCKS/$1.lock"
}

in_future () { echo $(( $(now_ns) + ${1:-3600} * 1000000000 )); }
in_past () { echo $(( $(now_ns) - ${1:-3600} * 1000000000 )); }

# A pid that is certainly not running: a finished child of this shell.
dead_pid () {
	sh -c 'exit 0' &
	local p=$!
	wait $p
	echo $p
}

# Starts a save that stays busy for about $2 seconds (it reads a file of a slow
# FUSE mount inside the project); sets SLOW_PID.
start_slow_save () {
	local project=$1 secs=$2
	mkdir -p "slow-$project/mnt" &&
	echo data >"slow-$project/file" &&
	deadfs_start "slow-$project/mnt" --slow "$secs" &&
	SLOW_MNT=$TRASH/slow-$project/mnt &&
	test_atexit "umount -l '$SLOW_MNT'" &&
	{ "$PROJSTORE" save "$project" "slow-$project" --cross-filesystems \
		--cache-dir "$TRASH/cache-slow-$RANDOM" >"slow-$project.out" 2>&1 &
	  SLOW_PID=$!; } &&
	test_atexit "kill -9 $SLOW_PID"
}

# Waits until the lock of $1 names the running slow save.
wait_slow_lock () {
	wait_for "grep -qx 'pid $SLOW_PID' '$LOCKS/$1.lock' 2>/dev/null" 10
}

finish_slow_save () {
	local rc
	wait "$SLOW_PID"
	rc=$?
	deadfs_stop "$SLOW_MNT"
	cat "slow-$1.out"
	return $rc
}

test_expect_success 'setup' '
	ps init &&
	mkdir -p proj/sub &&
	echo hello >proj/hello.txt &&
	random_file proj/sub/data 200 &&
	ps save p proj &&
	ps save rd proj &&
	cp -a proj proj-v1
'

test_expect_success FUSE 'a second save while one runs exits 6 and names the holder' '
	start_slow_save busy 1.5 &&
	wait_slow_lock busy &&
	test_expect_code 6 ps save busy proj 2>err &&
	kill -0 $SLOW_PID &&
	test_grep -F "$SLOW_PID" err &&
	test_grep -F "$HOST" err &&
	finish_slow_save busy &&
	test "$(snap_count busy)" = 1
'

test_expect_success FUSE 'a second save with --lock-timeout waits and then succeeds' '
	start_slow_save busy 1 &&
	wait_slow_lock busy &&
	ps save busy proj --lock-timeout 30 &&
	finish_slow_save busy &&
	test "$(snap_count busy)" = 3 &&
	ps cat busy hello.txt >actual &&
	test_cmp proj/hello.txt actual
'

test_expect_success FUSE 'saves of different projects run in parallel' '
	start_slow_save par1 1.5 &&
	wait_slow_lock par1 &&
	ps save par2 proj &&
	kill -0 $SLOW_PID &&
	finish_slow_save par1 &&
	test "$(snap_count par1)" = 1 &&
	test "$(snap_count par2)" = 1
'

test_expect_success FUSE 'readers are not blocked by a running save' '
	start_slow_save rd 2.5 &&
	wait_slow_lock rd &&
	ps snapshots rd >/dev/null &&
	ps ls rd >/dev/null &&
	ps cat rd hello.txt >actual &&
	test_cmp proj/hello.txt actual &&
	ps restore rd out-during &&
	ps stats rd >/dev/null &&
	ps diff rd@latest rd@latest >/dev/null &&
	kill -0 $SLOW_PID &&
	treecmp --no-atime --no-root proj-v1 out-during &&
	finish_slow_save rd &&
	test "$(snap_count rd)" = 2
'

test_expect_success 'a lock held by a live process on this host blocks (exit 6)' '
	write_lock held "$HOST" $$ "$BOOT" "$(in_future)" &&
	cp "$LOCKS/held.lock" lock-before &&
	test_expect_code 6 ps save held proj 2>err &&
	test_grep -F "$$" err &&
	test_cmp lock-before "$LOCKS/held.lock" &&
	start=$(now_ns) &&
	test_expect_code 6 ps save held proj --lock-timeout 1 &&
	elapsed=$((($(now_ns) - start) / 1000000)) &&
	echo "waited $elapsed ms" &&
	test $elapsed -ge 900 &&
	test $elapsed -lt 10000 &&
	test_cmp lock-before "$LOCKS/held.lock" &&
	n=$(ps snapshots held --json 2>/dev/null | jq ".snapshots | length") &&
	test "${n:-0}" = 0
'

test_expect_success 'readers work while a lock is held' '
	write_lock p "$HOST" $$ "$BOOT" "$(in_future)" &&
	test_when_finished "rm -f \"$LOCKS/p.lock\"" &&
	ps snapshots p >/dev/null &&
	ps ls p >/dev/null &&
	ps cat p hello.txt >actual &&
	test_cmp proj/hello.txt actual &&
	ps restore p out-locked &&
	treecmp --no-atime --no-root proj-v1 out-locked &&
	ps check --read-data
'

test_expect_success 'a lock of a dead process on this host is broken at once' '
	write_lock stale "$HOST" "$(dead_pid)" "$BOOT" "$(in_future)" &&
	start=$(now_ns) &&
	ps save stale proj &&
	test $((($(now_ns) - start) / 1000000)) -lt 5000 &&
	test "$(snap_count stale)" = 1
'

test_expect_success 'a lock with --lock-timeout is taken once its holder exits' '
	sleep 1.5 &
	holder=$! &&
	write_lock waited "$HOST" $holder "$BOOT" "$(in_future)" &&
	ps save waited proj --lock-timeout 20 &&
	wait $holder &&
	test "$(snap_count waited)" = 1
'

test_expect_success 'a lock of this host from an earlier boot is stale' '
	write_lock reboot "$HOST" $$ "00000000-1111-2222-3333-444444444444" "$(in_future)" &&
	ps save reboot proj &&
	test "$(snap_count reboot)" = 1
'

test_expect_success 'a lock of another host that has not expired blocks' '
	write_lock foreign other-host-name 12345 "$BOOT" "$(in_future)" &&
	test_expect_code 6 ps save foreign proj 2>err &&
	test_grep -F other-host-name err &&
	test_expect_code 6 ps save foreign proj --lock-timeout 1 &&
	test_path_is_file "$LOCKS/foreign.lock"
'

test_expect_success 'a lock of another host is broken once expired' '
	write_lock foreign other-host-name 12345 "$BOOT" "$(in_past 1)" &&
	ps save foreign proj &&
	test "$(snap_count foreign)" = 1
'

test_expect_success 'a lock expiring while waiting is taken' '
	write_lock expiring other-host-name 12345 "$BOOT" "$(in_future 2)" &&
	ps save expiring proj --lock-timeout 20 &&
	test "$(snap_count expiring)" = 1
'

test_expect_success 'a garbage lock file does not block forever' '
	mkdir -p "$LOCKS" &&
	printf "\\000\\001garbage" >"$LOCKS/garbage.lock" &&
	PS_TEST_TIMEOUT=30 ps save garbage proj --lock-timeout 5 &&
	test "$(snap_count garbage)" = 1
'

test_expect_success 'a lock does not outlive a finished save' '
	ps save after proj &&
	ps save after proj &&
	test "$(snap_count after)" = 2 &&
	if test -f "$LOCKS/after.lock"; then
		! grep -q "^pid " "$LOCKS/after.lock" ||
		! kill -0 "$(sed -n "s/^pid //p" "$LOCKS/after.lock")"
	fi
'

test_expect_success 'many concurrent saves of one project: each exits 0 or 6, none corrupts' '
	for i in 1 2 3 4 5 6; do
		"$PROJSTORE" save crowd proj >crowd.$i.out 2>&1 &
		eval "pid$i=\$!"
	done &&
	ok=0 &&
	for i in 1 2 3 4 5 6; do
		eval "wait \$pid$i"
		rc=$?
		case $rc in
		0) ok=$((ok + 1)) ;;
		6) ;;
		*) echo "save $i exited $rc"; cat crowd.$i.out; return 1 ;;
		esac
	done &&
	test $ok -ge 1 &&
	test "$(snap_count crowd)" = $ok &&
	ps check --read-data
'

test_expect_success 'many concurrent saves with --lock-timeout all succeed' '
	for i in 1 2 3 4; do
		"$PROJSTORE" save queue proj --lock-timeout 60 >queue.$i.out 2>&1 &
		eval "qpid$i=\$!"
	done &&
	for i in 1 2 3 4; do
		eval "wait \$qpid$i" || { cat queue.$i.out; return 1; }
	done &&
	test "$(snap_count queue)" = 4 &&
	ps check --read-data
'

test_done
