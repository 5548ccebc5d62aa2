#!/bin/bash
# The host agent with --hosting (docs/HOSTING.md): open deploys the project
# as its own user into a btrfs subvolume under a quota-group limit, with every
# restored owner mapped to the project's uid; the agent records usage in the
# catalog; close stops the project's processes before the save and leaves
# nothing behind (processes, cgroups, mounts, users, subvolume).
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-agent.sh"
test_description 'hosting through the agent: open, run, usage, close, move'

# what this file needs; btrfs is a module on Debian's kernels, listed in
# /proc/filesystems only once loaded
hosting_missing () {
	local c m=
	prereq_ROOT || m="$m root"
	for c in mkfs.btrfs btrfs useradd python3; do
		command -v "$c" >/dev/null || m="$m $c"
	done
	[ -d /sys/fs/cgroup ] || m="$m cgroups"
	command -v modprobe >/dev/null && modprobe btrfs >/dev/null 2>&1
	grep -qw btrfs /proc/filesystems || m="$m btrfs(kernel)"
	prereq_FUSE >/dev/null 2>&1 || m="$m fuse"
	printf '%s' "$m"
}
missing_=$(hosting_missing)
[ -z "$missing_" ] || test_skip_all "hosting needs:$missing_ (scripts/deps.sh --test)"

export PROJSTORE_CGROUP_BASE=psa$$
export PROJSTORE_RUN_DIR=$TRASH/run
export PROJSTORE_UID_MIN=$((40000000 + ($$ % 20000) * 100))
export PROJSTORE_UID_MAX=$((PROJSTORE_UID_MIN + 99))
MNT=$TRASH/hosts/h1
MNT2=$TRASH/hosts/h2
A=0c1b2c3d-0000-4000-8000-$(printf '%012d' $$)
UA=${A//-/}

cleanup () {
	"$PROJSTORE" hosting teardown "$A" --host h1 --grace 0 >/dev/null 2>&1
	"$PROJSTORE" hosting teardown "$A" --host h2 --grace 0 >/dev/null 2>&1
	for c in /sys/fs/cgroup/*/"$PROJSTORE_CGROUP_BASE"/"$UA" /sys/fs/cgroup/"$PROJSTORE_CGROUP_BASE"/"$UA"; do
		[ -d "$c" ] || continue
		while read -r pid; do kill -9 "$pid"; done <"$c/cgroup.procs"
		sleep 0.2
		rmdir "$c"
	done
	rmdir /sys/fs/cgroup/*/"$PROJSTORE_CGROUP_BASE" /sys/fs/cgroup/"$PROJSTORE_CGROUP_BASE" 2>/dev/null
	getent passwd "$UA" | grep -q 'projstore project' && userdel "$UA"
	getent group "$UA" >/dev/null && groupdel "$UA"
	mountpoint -q "$MNT" && umount "$MNT"
	mountpoint -q "$MNT2" && umount "$MNT2"
	return 0
}
test_atexit cleanup

test_expect_success 'a host whose root is a btrfs image with quotas; an agent with --hosting' '
	truncate -s 256M "$TRASH/btrfs.img" && mkfs.btrfs -q "$TRASH/btrfs.img" &&
	mkdir -p "$MNT" && mount -o loop "$TRASH/btrfs.img" "$MNT" &&
	btrfs quota enable "$MNT" &&
	ps init >/dev/null &&
	agent_host h1 &&
	mkdir src && echo data >src/f && mkdir src/d && echo more >src/d/g &&
	ps save "$A" src >/dev/null &&
	ps quota "$A" 32M >/dev/null &&
	agent_start h1 --hosting --autosave-interval 0
'

test_expect_success 'open: own user, subvolume with the quota as limit, owners mapped' '
	ps open "$A" --host h1 --wait --timeout 60 >/dev/null &&
	uid=$(id -u "$UA") &&
	test "$uid" -ge "$PROJSTORE_UID_MIN" &&
	btrfs subvolume show "$MNT/$A" >/dev/null &&
	test "$(stat -c %u "$MNT/$A/d/g")" = "$uid" &&
	test "$(stat -c %g "$MNT/$A/f")" = "$uid" &&
	btrfs qgroup show -re "$MNT" >qg &&
	test_grep "32.00MiB" qg &&
	test "$(ps run "$A" -- cat d/g)" = more
'

test_expect_success 'the agent records usage per project in the catalog' '
	ps run "$A" -- sh -c "head -c 3000000 /dev/urandom >blob; sleep 0.2" &&
	wait_for "ps top --host h1 --json | jq -e \".projects[] | select(.project == \\\"$A\\\")\" >/dev/null" 20 &&
	ps top --host h1 --json >top.json &&
	test_json top.json ".source == \"catalog\" and (.projects[0].cpu_seconds > 0)"
'

test_expect_success 'the usage reaches /metrics, summed per host' '
	printf "admin %s\n" 0123456789abcdef0123 >tokens && chmod 600 tokens || return 1
	"$PROJSTORE" serve --listen 127.0.0.1:0 --token-file tokens >serve.out 2>&1 &
	sp=$! &&
	test_when_finished "kill $sp; wait $sp; true" &&
	wait_for "grep -q listening serve.out" &&
	url=$(grep -o "http://127.0.0.1:[0-9]*" serve.out | head -1) &&
	curl -s "$url/metrics" >metrics &&
	test_grep "^projstore_hosted_cpu_seconds{host=\"h1\"} [0-9.e+-]*[1-9]" metrics &&
	test_grep "^projstore_hosted_disk_bytes{host=\"h1\"}" metrics &&
	! grep -q "$A" metrics
'

test_expect_success 'close stops the processes first, saves, and leaves nothing behind' '
	ps run "$A" -- sh -c "echo last >last.txt; exec sleep 300" &
	rp=$! &&
	wait_for "pgrep -u $UA -x sleep >/dev/null" &&
	ps close "$A" --wait --timeout 60 >/dev/null &&
	{ wait $rp; rc=$?; } ;
	test "$rc" -gt 128 &&
	test "$(ps cat "$A" last.txt)" = last &&
	! pgrep -u "$uid" >/dev/null &&
	! getent passwd "$UA" && ! getent group "$UA" &&
	! ls -d /sys/fs/cgroup/*/"$PROJSTORE_CGROUP_BASE/$UA" /sys/fs/cgroup/"$PROJSTORE_CGROUP_BASE/$UA" 2>/dev/null &&
	! grep -q "$MNT/$A" /proc/self/mountinfo &&
	test_path_is_missing "$MNT/$A" &&
	test -z "$(btrfs subvolume list "$MNT" | grep "$A")"
'

test_expect_success 'move: the old host stops the processes first and keeps nothing; the new one deploys as the same user' '
	truncate -s 256M "$TRASH/btrfs2.img" && mkfs.btrfs -q "$TRASH/btrfs2.img" &&
	mkdir -p "$MNT2" && mount -o loop "$TRASH/btrfs2.img" "$MNT2" &&
	btrfs quota enable "$MNT2" &&
	agent_host h2 &&
	agent_start h2 --hosting --autosave-interval 0 &&
	ps open "$A" --host h1 --wait --timeout 60 >/dev/null &&
	uid1=$(id -u "$UA") || return 1
	ps run "$A" -- sh -c "echo moved >moved.txt; exec sleep 300" &
	rp=$! &&
	wait_for "pgrep -u $UA -x sleep >/dev/null" &&
	ps move "$A" --to h2 --wait --timeout 90 >/dev/null &&
	{ wait $rp; rc=$?; } ;
	test "$rc" -gt 128 &&
	test "$(ps where "$A")" = h2 &&
	test_path_is_missing "$MNT/$A" &&
	test -z "$(btrfs subvolume list "$MNT" | grep "$A")" &&
	! grep -q "$MNT/$A" /proc/self/mountinfo &&
	btrfs subvolume show "$MNT2/$A" >/dev/null &&
	test "$(cat "$MNT2/$A/moved.txt")" = moved &&
	test "$(id -u "$UA")" = "$uid1" &&
	test "$(stat -c %u "$MNT2/$A/moved.txt")" = "$uid1" &&
	btrfs qgroup show -re "$MNT2" >qg2 &&
	test_grep "32.00MiB" qg2 &&
	test "$(ps run "$A" -- cat moved.txt)" = moved
'

test_expect_success 'close on the new host leaves nothing behind there either' '
	ps close "$A" --wait --timeout 60 >/dev/null &&
	! pgrep -u "$uid1" >/dev/null &&
	! getent passwd "$UA" &&
	test_path_is_missing "$MNT2/$A" &&
	test -z "$(btrfs subvolume list "$MNT2" | grep "$A")" &&
	agent_stop h1 && agent_stop h2
'

test_done
