#!/bin/bash
# The host agent with --hosting (docs/HOSTING.md): open deploys the project
# as its own user into a btrfs subvolume under a quota-group limit, with every
# restored owner mapped to the project's uid; the agent records usage in the
# catalog; an out-of-memory kill in one project leaves the agent and the other
# projects alive; close and move stop the project's processes before the save
# (what they write when stopped is in it), refuse `run` meanwhile, fail when
# the processes cannot be stopped, and leave nothing behind (processes,
# cgroups, namespaces, users, subvolume).
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-agent.sh"
. "$TEST_DIRECTORY/lib-hosting.sh"
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
# D: a second project on h1 (the memory hog's neighbour; the one that cannot be stopped)
D=0e1b2c3d-0000-4000-8000-$(printf '%012d' $$)
UD=${D//-/}

cleanup () {
	local p u c
	for p in "$A" "$D"; do
		"$PROJSTORE" hosting teardown "$p" --host h1 --grace 0 >/dev/null 2>&1
		"$PROJSTORE" hosting teardown "$p" --host h2 --grace 0 >/dev/null 2>&1
	done
	for u in "$UA" "$UD"; do
		remove_project_leftovers "$u"
	done
	rmdir /sys/fs/cgroup/*/"$PROJSTORE_CGROUP_BASE" /sys/fs/cgroup/"$PROJSTORE_CGROUP_BASE" 2>/dev/null
	mountpoint -q "$MNT/$D/fuse" && umount -l "$MNT/$D/fuse"
	mountpoint -q "$MNT" && umount "$MNT"
	mountpoint -q "$MNT2" && umount "$MNT2"
	return 0
}
test_atexit cleanup

heartbeat () { ps hosts --json | jq -r --arg h "$1" '.[] | select(.name == $h) | .last_heartbeat'; }

# h1's agent pauses 1 s after a close's or a move's stop, before the save
# (PROJSTORE_AGENT_PAUSE): `run` must be refused then
test_expect_success 'a host whose root is a btrfs image with quotas; an agent with --hosting' '
	truncate -s 256M "$TRASH/btrfs.img" && mkfs.btrfs -q "$TRASH/btrfs.img" &&
	mkdir -p "$MNT" && mount -o loop "$TRASH/btrfs.img" "$MNT" &&
	btrfs quota enable "$MNT" &&
	ps init >/dev/null &&
	agent_host h1 &&
	mkdir src && echo data >src/f && mkdir src/d && echo more >src/d/g &&
	ps save "$A" src >/dev/null &&
	ps save "$D" src >/dev/null &&
	ps quota "$A" 32M >/dev/null &&
	PROJSTORE_AGENT_PAUSE=stopped:1 agent_start h1 --hosting --autosave-interval 0
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

test_expect_success 'a memory hog in one project is killed; the agent and another project live on' '
	ps open "$D" --host h1 --wait --timeout 60 >/dev/null &&
	mkdir "$MNT/$D/fuse" &&
	deadfs_start "$MNT/$D/fuse" --slow 120 --allow-other &&
	ps limits "$A" --memory 64M >lim &&
	test_grep "state *applied" lim || return 1
	"$PROJSTORE" run "$D" -- sleep 60 &
	dp=$! &&
	test_when_finished "kill $dp 2>/dev/null; wait $dp; true" &&
	wait_for "pgrep -u $UD -x sleep >/dev/null" &&
	hb=$(heartbeat h1) &&
	{ ps run "$A" -- python3 -c "
a=[]
while True: a.append(bytearray(8 << 20))"; rc=$?; } ;
	test $rc = 137 &&
	ps hosting usage "$A" --json >ua.json &&
	test_json ua.json ".oom_kills >= 1" &&
	ps hosting usage "$D" --json >ud.json &&
	test_json ud.json ".oom_kills == 0 and .processes >= 2" &&
	kill -0 "${AGENT_PID[h1]}" &&
	kill -0 $dp && pgrep -u "$UD" -x sleep >/dev/null &&
	wait_for "[ \"\$(heartbeat h1)\" != \"$hb\" ]" 5 &&
	ps limits "$A" --memory none >/dev/null
'

test_expect_success 'close: run refused once it began; the processes stopped first, what they wrote then is saved; nothing left' '
	rm -f "$MNT/$A/ready.txt" || return 1
	"$PROJSTORE" run "$A" -- bash -c "trap \"echo written-when-stopped >marker.txt; exit 0\" TERM
		echo ready >ready.txt; while :; do sleep 0.1; done" &
	rp=$! &&
	wait_for "[ -s \"$MNT/$A/ready.txt\" ]" &&
	init=$(sandbox_init "$UA") &&
	pidns=$(ns_inode "$init" pid) && mntns=$(ns_inode "$init" mnt) &&
	test_path_is_missing "$MNT/$A/marker.txt" &&
	log_mark h1 || return 1
	ps close "$A" --wait --timeout 60 >close.out &
	cp=$! &&
	wait_log h1 "pausing .* at stopped" 20 &&
	test_expect_code 125 ps run "$A" -- true 2>err &&
	test_grep "is being closed (status closing).*run refused" err &&
	test -z "$(procs_in_cgroup "$UA")" &&
	{ wait $cp; rc=$?; } &&
	test $rc = 0 &&
	{ wait $rp; rc=$?; } &&
	test $rc = 0 &&
	test "$(ps cat "$A" marker.txt)" = written-when-stopped &&
	sandbox_gone "$UA" "$init" "$pidns" "$mntns" &&
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
	"$PROJSTORE" run "$A" -- bash -c "trap \"echo moved-when-stopped >moved.txt; exit 0\" TERM
		echo ready >ready2.txt; while :; do sleep 0.1; done" &
	rp=$! &&
	wait_for "[ -s \"$MNT/$A/ready2.txt\" ]" &&
	init=$(sandbox_init "$UA") &&
	pidns=$(ns_inode "$init" pid) && mntns=$(ns_inode "$init" mnt) &&
	ps move "$A" --to h2 --wait --timeout 90 >/dev/null &&
	{ wait $rp; rc=$?; } &&
	test "$rc" = 0 &&
	test "$(ps where "$A")" = h2 &&
	sandbox_gone "$UA" "$init" "$pidns" "$mntns" &&
	test_path_is_missing "$MNT/$A" &&
	test -z "$(btrfs subvolume list "$MNT" | grep "$A")" &&
	! grep -q "$MNT/$A" /proc/self/mountinfo &&
	btrfs subvolume show "$MNT2/$A" >/dev/null &&
	test "$(cat "$MNT2/$A/moved.txt")" = moved-when-stopped &&
	test "$(id -u "$UA")" = "$uid1" &&
	test "$(stat -c %u "$MNT2/$A/moved.txt")" = "$uid1" &&
	btrfs qgroup show -re "$MNT2" >qg2 &&
	test_grep "32.00MiB" qg2 &&
	test "$(ps run "$A" -- cat moved.txt)" = moved-when-stopped &&
	test_expect_code 125 ps run "$A" --host h1 -- true 2>err &&
	test_grep "deployed on h2, not on h1" err
'

test_expect_success 'close on the new host leaves nothing behind there either' '
	ps close "$A" --wait --timeout 60 >/dev/null &&
	! pgrep -u "$uid1" >/dev/null &&
	! getent passwd "$UA" &&
	test_path_is_missing "$MNT2/$A" &&
	test -z "$(btrfs subvolume list "$MNT2" | grep "$A")" &&
	agent_stop h2
'

# A reader of a FUSE file whose server holds the request cannot be killed
# (the kernel waits out a request already in userspace): the stop fails.
test_expect_success 'a close whose processes cannot be stopped fails: an event, nothing saved, still deployed' '
	snaps=$(snap_count "$D") || return 1
	"$PROJSTORE" run "$D" -- cat fuse/file >/dev/null 2>&1 &
	rp=$! &&
	test_when_finished "kill $rp 2>/dev/null; wait $rp; true" &&
	wait_for "pgrep -u $UD -x cat >/dev/null" &&
	catpid=$(pgrep -u "$UD" -x cat) &&
	sleep 1 &&
	test_expect_code 1 ps close "$D" --wait --timeout 60 >out 2>&1 &&
	test_grep "processes could not be stopped" out &&
	ps events "$D" --json >ev.json &&
	test_json ev.json "[.[] | select(.kind == \"stop-failed\" and .error == true)] | length == 1" &&
	ps where "$D" --json >w.json &&
	test_json w.json ".host == \"h1\" and .status == \"deployed\"" &&
	test "$(snap_count "$D")" = "$snaps" &&
	test_path_is_dir "$MNT/$D/d" && getent passwd "$UD" >/dev/null &&
	kill -0 "$catpid" &&
	deadfs_stop "$MNT/$D/fuse" &&
	wait_for "! kill -0 $catpid 2>/dev/null" 10 &&
	ps close "$D" --wait --timeout 60 >/dev/null &&
	test -z "$(procs_in_cgroup "$UD")" &&
	! getent passwd "$UD" &&
	test_path_is_missing "$MNT/$D" &&
	agent_stop h1
'

test_done
