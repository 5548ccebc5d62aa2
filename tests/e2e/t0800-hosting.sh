#!/bin/bash
# Hosting with the kernel's own mechanisms (docs/HOSTING.md): each project as
# its own user, in its own namespaces, under cgroup limits and a btrfs
# quota-group limit.  Real kernel features: a loop-mounted btrfs image with
# quotas enabled (made here), cgroups, namespaces, a veth pair with NAT.
# Everything this file makes (mount, loop device, cgroups, users, links,
# iptables rules, network namespace) is removed at the end, also on failure.
#
# Knob: PS_HOSTING_IMAGE_MB (btrfs image size, default 256).
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-hosting.sh"
test_description 'hosting: sandbox, limits, quota, volumes, network, teardown'

# what this file needs; btrfs is a module on Debian's kernels, listed in
# /proc/filesystems only once loaded (mount -o loop would load it, but the
# check comes first)
hosting_missing () {
	local c m=
	prereq_ROOT || m="$m root"
	for c in mkfs.btrfs btrfs useradd ip iptables python3 ipcs; do
		command -v "$c" >/dev/null || m="$m $c"
	done
	[ -d /sys/fs/cgroup ] || m="$m cgroups"
	command -v modprobe >/dev/null && modprobe btrfs >/dev/null 2>&1
	grep -qw btrfs /proc/filesystems || m="$m btrfs(kernel)"
	printf '%s' "$m"
}
missing_=$(hosting_missing)
[ -z "$missing_" ] || test_skip_all "hosting needs:$missing_ (scripts/deps.sh --test)"

# our own names, so that concurrent runs and other tests never meet
export PROJSTORE_CGROUP_BASE=pst$$
export PROJSTORE_RUN_DIR=$TRASH/run
export PROJSTORE_UID_MIN=$((30000000 + ($$ % 20000) * 100))
export PROJSTORE_UID_MAX=$((PROJSTORE_UID_MIN + 99))
export PROJSTORE_NET_PREFIX=100.$((72 + $$ % 8))
NETP=$PROJSTORE_NET_PREFIX
MNT=$TRASH/btrfs
ROOT=$MNT/root
A=0a1b2c3d-0000-4000-8000-$(printf '%012d' $$)
B=0b1b2c3d-0000-4000-8000-$(printf '%012d' $$)
UA=${A//-/}
UB=${B//-/}
# C: a project whose user name, uid or gid someone else has (never prepared)
C=0d1b2c3d-0000-4000-8000-$(printf '%012d' $$)
UC=${C//-/}
FOREIGN=psf$$
EXT=psx$$
FWD_BEFORE=$(cat /proc/sys/net/ipv4/ip_forward)

cleanup_hosting () {
	local p u
	for p in "$A" "$B" "$C"; do
		"$PROJSTORE" hosting teardown "$p" --host h1 --grace 0 >/dev/null 2>&1
	done
	userdel "$FOREIGN" 2>/dev/null; groupdel "$FOREIGN" 2>/dev/null
	getent passwd "$UC" | grep -q "foreign account" && userdel "$UC"
	for u in "$UA" "$UB" "$UC"; do
		remove_project_leftovers "$u"
	done
	rmdir /sys/fs/cgroup/*/"$PROJSTORE_CGROUP_BASE" /sys/fs/cgroup/"$PROJSTORE_CGROUP_BASE" 2>/dev/null
	ip netns del "$EXT" 2>/dev/null
	ip link del "${EXT}h" 2>/dev/null
	iptables -w -S 2>/dev/null | grep -q "projstore:" && {
		iptables -w -S | grep -e "projstore:$UA" -e "projstore:$UB" | sed 's/^-A/-D/' |
		while read -r rule; do eval "iptables -w $rule"; done
		iptables -w -t nat -S | grep -e "projstore:$UA" -e "projstore:$UB" | sed 's/^-A/-D/' |
		while read -r rule; do eval "iptables -w -t nat $rule"; done
	}
	echo "$FWD_BEFORE" >/proc/sys/net/ipv4/ip_forward
	mountpoint -q "$MNT" && umount "$MNT"
	return 0
}
test_atexit cleanup_hosting

run_a () { ps run "$A" --host h1 -- "$@"; }
run_b () { ps run "$B" --host h1 -- "$@"; }

test_expect_success 'a btrfs image with quotas, a host, two projects' '
	truncate -s "${PS_HOSTING_IMAGE_MB:-256}M" "$TRASH/btrfs.img" &&
	mkfs.btrfs -q "$TRASH/btrfs.img" &&
	mkdir -p "$MNT" && mount -o loop "$TRASH/btrfs.img" "$MNT" &&
	btrfs quota enable "$MNT" &&
	mkdir "$ROOT" &&
	ps init >/dev/null &&
	ps host add h1 --root "$ROOT" >/dev/null &&
	mkdir src && echo "secret of A" >src/a.txt &&
	ps save "$A" src >/dev/null && ps save "$B" src >/dev/null
'

test_expect_success 'prepare: user with the 32 hex digits, subvolume with a quota group, cgroup' '
	ps hosting prepare "$A" --host h1 --json >prep.json &&
	test_json prep.json ".user == \"$UA\" and .quota_enforced == true" &&
	ps hosting prepare "$B" --host h1 >/dev/null 2>&1 &&
	getent passwd "$UA" | grep -q "projstore project $A" &&
	test "$(stat -c %u "$ROOT/$A")" = "$(id -u "$UA")" &&
	btrfs subvolume show "$ROOT/$A" >/dev/null &&
	test -d "$(cgdir pids "$UA")" &&
	ps hosting prepare "$A" --host h1 >/dev/null 2>&1 &&
	test "$(id -u "$UA")" = "$PROJSTORE_UID_MIN"
'

test_expect_success 'a host root inside a directory every sandbox sees (/usr, /etc, /lib*, /opt) is refused' '
	test_expect_code 2 ps host add bad --root /usr/local/pst$$ 2>err &&
	test_grep "inside /usr, which every sandbox gets read-only" err &&
	ps hosts --json >hosts.json &&
	test_json hosts.json "[.[].name] | index(\"bad\") == null" &&
	test_must_fail ps hosting prepare "$A" --root /opt/pst$$ 2>err &&
	test_grep "inside /opt" err &&
	test_path_is_missing /opt/pst$$ &&
	test_must_fail ps hosting prepare "$A" --root /lib/pst$$ 2>err &&
	test_grep "inside /" err
'

# what prepare changes on the host: users, groups, the home, the cgroup
host_state () {
	cat /etc/passwd /etc/group /etc/shadow /etc/gshadow | md5sum
	ls -a "$ROOT"
	ls -d "$(cgdir pids "$UC")" 2>/dev/null
	return 0
}
# prepare_c_refused PATTERN: prepare C fails, says PATTERN, and changes nothing
prepare_c_refused () {
	host_state >before &&
	test_must_fail ps hosting prepare "$C" --host h1 2>err &&
	cat err >&4 &&
	test_grep "$1" err &&
	test_grep "refusing to give it to project $C" err &&
	host_state >after &&
	test_cmp before after &&
	test_path_is_missing "$ROOT/$C"
}

test_expect_success 'a user name, uid or gid that belongs to someone else is refused, saying who has it; nothing changes' '
	test_when_finished "userdel $UC 2>/dev/null; groupdel $UC 2>/dev/null; userdel $FOREIGN 2>/dev/null; groupdel $FOREIGN 2>/dev/null; true" &&
	other=$((PROJSTORE_UID_MAX - 1)) &&
	ps save "$C" src >/dev/null &&
	groupadd -r -g "$other" "$UC" &&
	prepare_c_refused "group name $UC is taken (gid $other)" &&
	useradd -r -M -N -u "$other" -g "$other" -c "foreign account" "$UC" &&
	prepare_c_refused "user name $UC is taken (uid $other, .foreign account.)" &&
	! getent passwd "$UC" | grep -q "projstore project" &&
	userdel "$UC" && { ! getent group "$UC" || groupdel "$UC"; } &&
	uc=$(ps projects --search "$C" --json | jq ".[0].uid") &&
	test "$uc" -ge "$PROJSTORE_UID_MIN" && test "$uc" -le "$PROJSTORE_UID_MAX" &&
	groupadd -r -g "$other" "$FOREIGN" &&
	useradd -r -M -N -u "$uc" -g "$other" -c "someone else" "$FOREIGN" &&
	prepare_c_refused "uid $uc belongs to user $FOREIGN" &&
	userdel "$FOREIGN" && { ! getent group "$FOREIGN" || groupdel "$FOREIGN"; } &&
	groupadd -r -g "$uc" "$FOREIGN" &&
	prepare_c_refused "gid $uc belongs to group $FOREIGN" &&
	groupdel "$FOREIGN" &&
	ps hosting prepare "$C" --host h1 >/dev/null 2>&1 &&
	test "$(id -u "$UC")" = "$uc" &&
	ps hosting teardown "$C" --host h1 --grace 0 --remove-home >/dev/null &&
	! getent passwd "$UC" && ! getent group "$UC"
'

test_expect_success 'run: own user, home, PID namespace, exit status passes through' '
	run_a sh -c "id -un; pwd; echo \$HOME; ls /proc | grep -c ^[0-9]" >out &&
	test "$(sed -n 1p out)" = "$UA" &&
	test "$(sed -n 2p out)" = /home/project &&
	test "$(sed -n 4p out)" -le 4 &&
	test_expect_code 42 run_a sh -c "exit 42" &&
	test_expect_code 127 run_a no-such-command-here 2>err &&
	test_grep "cannot run" err
'

# (run started as "$PROJSTORE" ... &: $! must be run itself, not a shell around it)
test_expect_success 'signals sent to run reach the command itself; its exit or its death comes back' '
	rm -f "$ROOT/$A/sig.out" "$ROOT/$A/sig.ready" || return 1
	"$PROJSTORE" run "$A" --host h1 -- bash -c "trap \"echo USR1 >>sig.out\" USR1
		trap \"echo TERM >>sig.out; exit 7\" TERM
		echo \$\$ >sig.ready; while :; do sleep 0.1; done" &
	pid=$! &&
	wait_for "[ -s \"$ROOT/$A/sig.ready\" ]" &&
	kill -USR1 $pid &&
	wait_for "grep -q USR1 \"$ROOT/$A/sig.out\"" &&
	kill -TERM $pid &&
	{ wait $pid; rc=$?; } &&
	test $rc = 7 &&
	printf "USR1\nTERM\n" >expect && test_cmp expect "$ROOT/$A/sig.out" || return 1
	"$PROJSTORE" run "$A" --host h1 -- sleep 31 &
	pid=$! &&
	wait_for "pgrep -u $UA -fx \"sleep 31\" >/dev/null" &&
	kill -TERM $pid &&
	{ wait $pid; rc=$?; } &&
	test $rc = 143 &&
	wait_for "! pgrep -u $UA -fx \"sleep 31\" >/dev/null" 2 &&
	{ run_a sh -c "kill -KILL \$\$"; rc=$?; } ;
	test $rc = 137 &&
	rm -f "$ROOT/$A/sig.out" "$ROOT/$A/sig.ready"
'

test_expect_success 'UTS and IPC namespaces: the host name is the project id inside only; no SysV IPC object crosses' '
	before=$(hostname) &&
	test "$(run_a hostname)" = "$A" &&
	test "$(run_b cat /proc/sys/kernel/hostname)" = "$B" &&
	test "$(hostname)" = "$before" &&
	shm=$(ipcmk -M 4096 | grep -o "[0-9]*\$") &&
	test_when_finished "ipcrm -m $shm" &&
	awk -v id="$shm" "\$2 == id { f = 1 } END { exit !f }" /proc/sysvipc/shm &&
	run_b ipcmk -Q >/dev/null &&
	run_b ipcmk -M 4096 >/dev/null &&
	test "$(run_b cat /proc/sysvipc/msg | wc -l)" = 2 &&
	test "$(run_b cat /proc/sysvipc/shm | wc -l)" = 2 &&
	for f in shm msg sem; do
		run_a cat /proc/sysvipc/$f >a.$f && test_line_count = 1 a.$f || return 1
	done &&
	run_a ipcs >ipcs.a &&
	! grep -q "^0x" ipcs.a
'

test_expect_success 'project A cannot connect to a port the host listens on at 127.0.0.1' '
	python3 -c "
import socket,sys
s=socket.socket(); s.bind((\"127.0.0.1\",0)); s.listen(8)
open(\"port\",\"w\").write(str(s.getsockname()[1])); sys.stdout.flush()
s.settimeout(20)
try:
    while True: s.accept()[0].close()
except Exception: pass
" &
	lp=$! &&
	test_when_finished "kill $lp" &&
	wait_for "[ -s port ]" &&
	port=$(cat port) &&
	bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" &&
	test_must_fail run_a bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>err &&
	test_grep -i "refused" err &&
	run_a python3 -c "
import socket
s=socket.socket(); s.bind((\"127.0.0.1\",0)); s.listen(1)
c=socket.create_connection(s.getsockname()); print(\"own loopback ok\")"
'

test_expect_success 'project A cannot list, read or signal project B' '
	ps run "$B" --host h1 -- sleep 30 &
	bpid=$! &&
	test_when_finished "kill $bpid 2>/dev/null; wait $bpid; true" &&
	wait_for "pgrep -u $UB -x sleep >/dev/null" &&
	bsleep=$(pgrep -u "$UB" -x sleep) &&
	test_must_fail run_a ls "$ROOT" &&
	test_must_fail run_a cat "$ROOT/$B/a.txt" &&
	run_a ls /home >homes && test "$(cat homes)" = project &&
	test_must_fail run_a kill -0 "$bsleep" &&
	run_a ps -eo user= >users && ! grep -q "$UB" users &&
	kill -0 "$bsleep"
'

test_expect_success 'a fork bomb stays under its pids limit (and stop ends it)' '
	ps limits "$A" --pids 40 >/dev/null &&
	cat "$(cgdir pids "$UA")/pids.max" >max && test "$(cat max)" = 40 &&
	pev=$(cgdir pids "$UA")/pids.events &&
	refused0=$(awk "/^max / { print \$2 }" "$pev") &&
	(ps run "$A" --host h1 -- bash -c "b(){ b | b & }; b; sleep 20" >/dev/null 2>&1 &) &&
	most=0 &&
	for i in $(seq 50); do
		sleep 0.1
		cur=$(cat "$(cgdir pids "$UA")/pids.current") || return 1
		test "$cur" -le 40 || { echo "pids.current=$cur" >&4; return 1; }
		if [ "$cur" -gt "$most" ]; then most=$cur; fi
		refused=$(awk "/^max / { print \$2 }" "$pev")
		# the lower bound: the bomb ran in the cgroup, up to its limit
		if [ "$i" -ge 10 ] && [ "$most" -ge 30 ] && [ "$refused" -gt "$refused0" ]; then break; fi
	done &&
	echo "pids.current at most $most; forks refused by pids.max: $refused (before: $refused0)" &&
	test "$most" -ge 30 &&
	test "$refused" -gt "$refused0" &&
	if [ -f "$(cgdir pids "$UA")/pids.peak" ]; then
		test "$(cat "$(cgdir pids "$UA")/pids.peak")" -le 40
	fi &&
	ps hosting stop "$A" --host h1 --grace 0 >/dev/null &&
	test "$(cat "$(cgdir pids "$UA")/pids.current")" = 0 &&
	ps limits "$A" --pids none >/dev/null
'

test_expect_success 'a memory hog is killed; the other project and projstore live on' '
	ps limits "$B" --memory 64M >/dev/null || return 1
	ps run "$A" --host h1 -- sleep 30 &
	apid=$! &&
	test_when_finished "kill $apid 2>/dev/null; wait $apid; true" &&
	{ run_b python3 -c "
a=[]
while True: a.append(bytearray(8 << 20))"; rc=$?; } ;
	test $rc = 137 &&
	kill -0 $apid &&
	ps hosting usage "$B" --host h1 --json >u.json &&
	test_json u.json ".oom_kills >= 1" &&
	ps limits "$B" --memory none >/dev/null
'

test_expect_success 'limits changed while running take effect' '
	ps run "$B" --host h1 -- sleep 30 &
	bpid=$! &&
	test_when_finished "kill $bpid 2>/dev/null; wait $bpid; true" &&
	wait_for "pgrep -u $UB -x sleep >/dev/null" &&
	ps limits "$B" --memory 48M --cpu 0.5 --pids 20 >lim &&
	test_grep "state *applied" lim &&
	mem=$(cgdir memory "$UB") &&
	if [ -f "$mem/memory.limit_in_bytes" ]; then
		test "$(cat "$mem/memory.limit_in_bytes")" = $((48 << 20)) &&
		test "$(cat "$(cgdir cpu "$UB")/cpu.cfs_quota_us")" = 50000
	else
		test "$(cat "$mem/memory.max")" = $((48 << 20))
	fi &&
	{ run_b python3 -c "
a=[]
while True: a.append(bytearray(8 << 20))"; rc=$?; } ;
	test $rc = 137 &&
	test_must_fail run_b bash -c "for i in \$(seq 30); do sleep 5 & done; wait" 2>err &&
	test_grep -i "resource temporarily unavailable\|retry" err &&
	kill -0 $bpid &&
	ps limits "$B" --memory none --cpu none --pids none >/dev/null
'

test_expect_success 'writing past the quota fails with EDQUOT; raising it lets it go on' '
	ps quota "$A" 24M >/dev/null &&
	ps hosting apply "$A" --host h1 >/dev/null &&
	test_must_fail run_a dd if=/dev/zero of=big bs=1M count=64 2>err &&
	test_grep "Disk quota exceeded" err &&
	run_a rm -f big && sync &&
	ps quota "$A" 160M >/dev/null &&
	ps hosting apply "$A" --host h1 >/dev/null &&
	run_a dd if=/dev/zero of=big bs=1M count=64 2>err &&
	test "$(stat -c %s "$ROOT/$A/big")" = $((64 << 20)) &&
	run_a rm -f big
'

test_expect_success 'a project cannot escape its quota with a subvolume or a snapshot of its own' '
	test_must_fail run_a btrfs subvolume create sub 2>err &&
	test_grep -i "operation not permitted" err &&
	test_path_is_missing "$ROOT/$A/sub" &&
	test_must_fail run_a btrfs subvolume snapshot . snap 2>err &&
	test_grep -i "operation not permitted" err &&
	test_path_is_missing "$ROOT/$A/snap" &&
	run_a sh -c "echo still works >ok.txt" &&
	test "$(cat "$ROOT/$A/ok.txt")" = "still works" &&
	rm -f "$ROOT/$A/ok.txt"
'

test_expect_success 'data is read-only at /data, scratch read-write at /scratch' '
	mkdir -p "$TRASH/data" "$TRASH/scratch" &&
	echo shared >"$TRASH/data/f" && chmod 1777 "$TRASH/scratch" &&
	ps volume add data "$TRASH/data" &&
	ps volume add scratch "$TRASH/scratch" &&
	ps volume --json >vol.json &&
	test_json vol.json ".volumes | length == 2" &&
	ps hosting stop "$A" --host h1 --grace 0 >/dev/null &&
	test "$(run_a cat /data/f)" = shared &&
	test_must_fail run_a touch /data/x 2>err &&
	test_grep -i "read-only" err &&
	run_a touch /scratch/y &&
	test "$(stat -c %U "$TRASH/scratch/y")" = "$UA" &&
	ps volume rm data && ps volume rm scratch
'

test_expect_success 'outbound network: NAT to the outside, never to the host itself' '
	ip netns add "$EXT" &&
	ip link add "${EXT}h" type veth peer name eth0 netns "$EXT" &&
	ip addr add "$NETP.255.249/30" dev "${EXT}h" && ip link set "${EXT}h" up &&
	ip -n "$EXT" addr add "$NETP.255.250/30" dev eth0 &&
	ip -n "$EXT" link set eth0 up && ip -n "$EXT" link set lo up &&
	ip -n "$EXT" route add default via "$NETP.255.249" &&
	ip netns exec "$EXT" python3 -c "
import socket
s=socket.socket(); s.bind((\"0.0.0.0\",8099)); s.listen(8); s.settimeout(20)
try:
    while True:
        c,a=s.accept(); c.sendall(a[0].encode()); c.close()
except Exception: pass
" &
	ep=$! &&
	test_when_finished "kill $ep" &&
	python3 -c "
import socket
s=socket.socket(); s.bind((\"$NETP.255.249\",8098)); s.listen(8); s.settimeout(20)
try:
    while True: s.accept()[0].close()
except Exception: pass
" &
	hp=$! &&
	test_when_finished "kill $hp" &&
	wait_for "ip netns exec $EXT ss -ltn | grep -q :8099 && ss -ltn | grep -q :8098" &&
	test_must_fail run_a bash -c "exec 3<>/dev/tcp/$NETP.255.250/8099" 2>/dev/null &&
	ps limits "$A" --network outbound >/dev/null &&
	run_a python3 -c "
import socket
c=socket.create_connection((\"$NETP.255.250\",8099), timeout=5); print(c.recv(64).decode())" >seen &&
	test "$(cat seen)" = "$NETP.255.249" &&
	test_must_fail run_a python3 -c "
import socket
socket.create_connection((\"$NETP.255.249\",8098), timeout=2)" 2>/dev/null &&
	test_must_fail run_b bash -c "exec 3<>/dev/tcp/$NETP.255.250/8099" 2>/dev/null &&
	ps limits "$A" --network none >/dev/null &&
	! ip link show "psv$(printf %x "$(id -u "$UA")")" 2>/dev/null &&
	test_must_fail run_a bash -c "exec 3<>/dev/tcp/$NETP.255.250/8099" 2>/dev/null
'

test_expect_success 'top shows both projects from the cgroup counters' '
	ps top --interval 0.2 --json >top.json &&
	test_json top.json "[.projects[].project] | index(\"$A\") != null" &&
	test_json top.json "[.projects[].project] | index(\"$B\") != null"
'

test_expect_success 'teardown leaves nothing behind' '
	ps limits "$A" --network outbound >/dev/null || return 1
	ps run "$A" --host h1 -- sleep 60 &
	ps run "$B" --host h1 -- sleep 60 &
	wait_for "pgrep -u $UA -x sleep >/dev/null && pgrep -u $UB -x sleep >/dev/null" &&
	ia=$(sandbox_init "$UA") && ib=$(sandbox_init "$UB") &&
	pa=$(ns_inode "$ia" pid) && ma=$(ns_inode "$ia" mnt) &&
	pb=$(ns_inode "$ib" pid) && mb=$(ns_inode "$ib" mnt) &&
	test "$ma" != "$(ns_inode $$ mnt)" && test "$pa" != "$(ns_inode $$ pid)" &&
	test -n "$(procs_in_cgroup "$UA")" && test -n "$(procs_in_ns mnt "$mb")" &&
	ps hosting teardown "$A" --host h1 --grace 1 --remove-home >/dev/null &&
	ps hosting teardown "$B" --host h1 --grace 1 --remove-home >/dev/null &&
	wait &&
	sandbox_gone "$UA" "$ia" "$pa" "$ma" &&
	sandbox_gone "$UB" "$ib" "$pb" "$mb" &&
	! pgrep -u "$PROJSTORE_UID_MIN" >/dev/null &&
	! pgrep -u "$((PROJSTORE_UID_MIN + 1))" >/dev/null &&
	! getent passwd "$UA" && ! getent passwd "$UB" &&
	! getent group "$UA" && ! getent group "$UB" &&
	! test -e "$(cgdir pids "$UA")" && ! test -e "$(cgdir memory "$UB")" &&
	! ip link show "psv$(printf %x "$PROJSTORE_UID_MIN")" 2>/dev/null &&
	! iptables -w -S | grep -q "projstore:$UA" &&
	! iptables -w -t nat -S | grep -q "projstore:$UA" &&
	! grep -q "$ROOT/" /proc/self/mountinfo &&
	test -z "$(btrfs subvolume list -o "$MNT" | grep "$A\|$B")" &&
	test_path_is_missing "$ROOT/$A" &&
	ps limits "$A" --json >l.json && test_json l.json ".state == \"not deployed\""
'

test_expect_success 'a host root that is not btrfs works without quota enforcement, and says so' '
	mkdir -p plain && ps host add h2 --root "$TRASH/plain" >/dev/null &&
	ps hosting prepare "$A" --host h2 2>err >/dev/null &&
	test_grep "not enforced" err &&
	test "$(ps run "$A" --host h2 -- echo ok)" = ok &&
	ps hosting teardown "$A" --host h2 --grace 0 --remove-home >/dev/null &&
	test_path_is_missing "$TRASH/plain/$A" &&
	! getent passwd "$UA"
'

test_done
