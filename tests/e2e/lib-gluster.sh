# lib-gluster.sh - a throwaway GlusterFS server for a test file (or a
# benchmark), sealed off from the rest of the machine.
#
#   . "$TEST_DIRECTORY/lib-gluster.sh"
#   gluster_start DIR            # one glusterd; sets GL_PID, GL_HOST
#   gluster_volume_create VOL replica3|arbiter|replica2
#   gns projstore ...            # runs a command where the server is
#   gluster_stop                 # everything down, by PID
#
# glusterd runs in a network and mount namespace of its own (unshare): its
# loopback interface is its own (so its ports, 24007 and the bricks', never
# meet another glusterd on this machine), and /var/lib/glusterd,
# /var/log/glusterfs and /run are its own directories under DIR, bind-mounted
# there inside the namespace only.  Everything that talks to it - the gluster
# CLI, FUSE mounts of a volume, projstore itself - runs inside the namespace
# through `gns` (nsenter).  Bricks are directories under DIR on the same file
# system; Gluster wants the brick host to resolve to this machine
# ($(hostname), never localhost) and `force` for bricks on one machine or on
# the root file system.  Geo-replication's helper gsyncd (Python) is replaced
# by a stub inside the namespace: glusterd runs it some twenty times as it
# starts, which takes 15 s on a busy machine; the tests use no
# geo-replication.
#
# gluster_stop stops and deletes the volumes, unmounts every glusterfs mount
# made in the namespace, then kills every process of the namespace (glusterd,
# bricks, self-heal daemon, FUSE clients) by PID, and waits for them.  Used by
# test files through test_atexit, it runs even when a test fails.
#
# Nothing here depends on test-lib.sh except that a failing helper prints why
# on fd 4 when it is open; it also works in scripts with set -e (bench/).

GL_PID=
GL_NETNS=
GL_DIR=
GL_HOST=
GL_VOLUMES=
GL_TIMEOUT=${GL_TIMEOUT:-60}

prereq_GLUSTER () {
	[ "$(id -u)" = 0 ] && command -v glusterd && command -v gluster && command -v unshare &&
	command -v nsenter && command -v ip && command -v mount.glusterfs &&
	[ -d /var/lib/glusterd ] && [ -d /var/log/glusterfs ]
}

gl_say_ () {
	if { true >&4; } 2>/dev/null; then
		echo "$*" >&4
	else
		echo "$*" >&2
	fi
}

# gns CMD...: runs CMD in glusterd's namespaces, in the current directory
# (entered from inside, so that mounts made in the namespace are seen).
gns () {
	[ -n "$GL_PID" ] || { gl_say_ "gns: glusterd is not running"; return 1; }
	nsenter -t "$GL_PID" -n -m -- sh -c 'cd "$0" && exec "$@"' "$PWD" "$@"
}

# gl ARGS...: the gluster CLI without prompts, with a time limit.
gl () {
	gns timeout -k 5 "$GL_TIMEOUT" gluster --mode=script "$@"
}

# gluster_start DIR: starts glusterd with its state in DIR (created).
gluster_start () {
	local dir=$1 addr i
	GL_DIR=$(mkdir -p "$dir" && cd "$dir" && pwd -P) || return 1
	mkdir -p "$GL_DIR/lib" "$GL_DIR/log" "$GL_DIR/run" "$GL_DIR/bricks" || return 1
	GL_HOST=$(hostname) || return 1
	printf '#!/bin/sh\n[ "$1" != --version ] || echo "gsyncd.py 4.0.0"\n' >"$GL_DIR/gsyncd" &&
	chmod 755 "$GL_DIR/gsyncd" || return 1
	# the brick host must be an address of this machine inside the namespace:
	# if it does not resolve to loopback, that address is added to lo there
	addr=$(getent ahostsv4 "$GL_HOST" | awk 'NR == 1 { print $1 }')
	[ -n "$addr" ] || { gl_say_ "host name '$GL_HOST' does not resolve"; return 1; }
	case $addr in 127.*) addr= ;; esac
	GL_ADDR=$addr unshare --net --mount --propagation private -- sh -c '
		set -e
		ip link set lo up
		[ -z "$GL_ADDR" ] || ip addr add "$GL_ADDR/32" dev lo
		mount -t tmpfs -o mode=755 gluster-run /run
		mkdir -p /run/gluster /run/lock
		mount --bind "$0/lib" /var/lib/glusterd
		mount --bind "$0/log" /var/log/glusterfs
		for g in /usr/lib/*/glusterfs/gsyncd /usr/libexec/glusterfs/gsyncd; do
			[ ! -f "$g" ] || mount --bind "$0/gsyncd" "$g"
		done
		exec glusterd -N --log-file="$0/log/glusterd.log"
	' "$GL_DIR" >"$GL_DIR/glusterd.out" 2>&1 &
	GL_PID=$!
	echo "$GL_PID" >"$GL_DIR/glusterd.pid"
	for i in $(seq 1 50); do
		GL_NETNS=$(readlink "/proc/$GL_PID/ns/net") || break
		[ "$GL_NETNS" != "$(readlink /proc/self/ns/net)" ] && break
		sleep 0.02
	done
	for i in $(seq 1 200); do
		if ! kill -0 "$GL_PID" 2>/dev/null; then
			gl_say_ "glusterd exited:"; cat "$GL_DIR/glusterd.out" >&2
			GL_PID=
			return 1
		fi
		gl peer status >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	gl_say_ "glusterd did not answer within 20 s"
	return 1
}

# gluster_volume_create VOL [replica3|arbiter|replica2]: creates and starts a
# volume with bricks in GL_DIR/bricks/VOL-N and waits until every brick is
# online.
gluster_volume_create () {
	local vol=$1 kind=${2:-replica3} n=3 layout i bricks=
	case $kind in
	replica3) layout="replica 3" ;;
	arbiter) layout="replica 3 arbiter 1" ;;
	replica2) layout="replica 2"; n=2 ;;
	*) gl_say_ "unknown volume kind $kind"; return 1 ;;
	esac
	for i in $(seq 1 $n); do
		bricks="$bricks $GL_HOST:$GL_DIR/bricks/$vol-$i"
	done
	# shellcheck disable=SC2086
	gl volume create "$vol" $layout $bricks force >"$GL_DIR/create-$vol.out" 2>&1 ||
		{ cat "$GL_DIR/create-$vol.out" >&2; return 1; }
	GL_VOLUMES="$GL_VOLUMES $vol"
	gl volume start "$vol" >/dev/null || return 1
	gluster_wait_bricks "$vol" "$n"
}

# gluster_brick_pids VOL: "BRICKPATH PID" for every brick that is online.
gluster_brick_pids () {
	gl volume status "$1" --xml 2>/dev/null |
	sed -n 's/^ *<\(hostname\|path\|status\|pid\)>\(.*\)<\/[a-z]*>$/\1 \2/p; /<\/node>/p' |
	awk '$1 == "hostname" { h = $2 } $1 == "path" { p = $2 } $1 == "status" { s = $2 }
	     $1 == "pid" { pid = $2 }
	     /<\/node>/ { if (h != "Self-heal" && s == 1 && pid > 0) print p, pid; h = p = s = pid = "" }'
}

# gluster_wait_bricks VOL N [SECONDS]: waits until N bricks are online.
gluster_wait_bricks () {
	local vol=$1 n=$2 limit=${3:-30} start=$SECONDS
	until [ "$(gluster_brick_pids "$vol" | wc -l)" -ge "$n" ]; do
		if [ $((SECONDS - start)) -ge "$limit" ]; then
			gl_say_ "bricks of $vol not online after ${limit}s:"
			gl volume status "$vol" >&2
			return 1
		fi
		sleep 0.2
	done
}

# gluster_kill_brick VOL N: kills brick N (1-based, in volume order) by PID
# with SIGKILL, as a crash would, and waits until glusterd reports it offline
# (a `volume start force` before that would not restart it); prints the PID.
gluster_kill_brick () {
	local path=$GL_DIR/bricks/$1-$2 pid start=$SECONDS
	pid=$(gluster_brick_pids "$1" | awk -v p="$path" '$1 == p { print $2 }')
	[ -n "$pid" ] || { gl_say_ "brick $path is not running"; return 1; }
	kill -KILL "$pid" || return 1
	while kill -0 "$pid" 2>/dev/null ||
	      gluster_brick_pids "$1" | awk -v p="$path" '$1 == p { f = 1 } END { exit !f }'; do
		if [ $((SECONDS - start)) -ge 30 ]; then
			gl_say_ "brick $path (pid $pid) still listed as online after 30 s"
			return 1
		fi
		sleep 0.2
	done
	echo "$pid"
}

# gluster_heal_pending VOL: the number of entries `heal info` lists.
gluster_heal_pending () {
	gl volume heal "$1" info 2>/dev/null |
	awk '/^Number of entries:/ { if ($4 == "-") bad = 1; else n += $4 } END { print bad ? -1 : n + 0 }'
}

# gluster_heal_wait VOL [SECONDS]: triggers the heal and waits until no entry
# is pending (and every brick answered), within the time limit.
gluster_heal_wait () {
	local vol=$1 limit=${2:-90} start=$SECONDS p
	gl volume heal "$vol" >/dev/null 2>&1
	while :; do
		p=$(gluster_heal_pending "$vol")
		[ "$p" = 0 ] && return 0
		if [ $((SECONDS - start)) -ge "$limit" ]; then
			gl_say_ "heal of $vol still pending after ${limit}s ($p):"
			gl volume heal "$vol" info >&2
			return 1
		fi
		sleep 1
		gl volume heal "$vol" >/dev/null 2>&1
	done
}

# gluster_mount VOL DIR: a FUSE mount of the volume (inside the namespace).
gluster_mount () {
	mkdir -p "$2" &&
	gns mount -t glusterfs -o log-file="$GL_DIR/log/fuse-$1.log" "$GL_HOST:/$1" "$2"
}

# gluster_mounts: the glusterfs mounts seen in the namespace.
gluster_mounts () {
	gns cat /proc/self/mounts | awk '$3 ~ /glusterfs/'
}

# The processes in glusterd's network namespace (recorded at start: it
# outlives glusterd while bricks run).
gl_ns_pids_ () {
	local ino=${GL_NETNS//[^0-9]/}
	[ -n "$ino" ] && [ "$GL_NETNS" != "$(readlink /proc/self/ns/net)" ] || return 0
	command ps -e -o pid=,netns= | awk -v ns="$ino" '$2 == ns { print $1 }'
}

gluster_stop () {
	local v m pids p i
	local -           # errexit off in here: a script with set -e must not stop halfway
	set +e
	[ -n "$GL_PID" ] || return 0
	if kill -0 "$GL_PID" 2>/dev/null; then
		gluster_mounts | awk '{ print $2 }' | while read -r m; do
			gns umount -l "$(printf '%b' "$m")"
		done
		for v in $GL_VOLUMES; do
			GL_TIMEOUT=20 gl volume stop "$v" force >/dev/null 2>&1
			GL_TIMEOUT=20 gl volume delete "$v" >/dev/null 2>&1
		done
	fi
	# every process left in the namespace, glusterd last
	pids=$(gl_ns_pids_ | grep -vx "$GL_PID")
	for p in $pids; do kill -TERM "$p" 2>/dev/null; done
	kill -TERM "$GL_PID" 2>/dev/null
	for i in $(seq 1 100); do
		pids=$(gl_ns_pids_)
		[ -z "$pids" ] && break
		sleep 0.1
	done
	for p in $(gl_ns_pids_); do kill -KILL "$p" 2>/dev/null; done
	kill -KILL "$GL_PID" 2>/dev/null
	wait "$GL_PID" 2>/dev/null
	GL_PID=
	GL_NETNS=
	GL_VOLUMES=
}
