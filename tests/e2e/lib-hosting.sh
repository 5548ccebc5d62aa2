# lib-hosting.sh - helpers of the hosting tests (t0800, t0810).
#
#   cgdir CONTROLLER USER        the project's cgroup directory (v1: of that
#                                controller; v2: the one directory)
#   sandbox_init USER            pid of the sandbox init in the project's cgroup
#                                (NSpid "<pid> 1", uid 0); fails if none
#   ns_inode PID KIND            inode of its namespace KIND (pid, mnt, ...)
#   procs_in_ns KIND INODE       host pids whose namespace KIND is INODE
#   procs_in_cgroup USER         host pids whose cgroup, in any hierarchy, is
#                                the project's ($PROJSTORE_CGROUP_BASE/USER)
#   remove_project_leftovers USER
#                                a failed test's cleanup: kills what is in
#                                the project's cgroups, removes them, and the
#                                project's user and group (only a user that
#                                projstore made)
#   sandbox_gone USER INIT PIDNS MNTNS
#                                nothing of a stopped sandbox is left: no
#                                process in the project's cgroup, the init
#                                gone, no process in its PID or mount
#                                namespace, no bind mount keeping either
#
# The host's mountinfo cannot show a sandbox's mounts (they live in its own
# mount namespace), and the init runs as root (pgrep -u misses it): what is
# checked instead is that the namespaces holding the mounts are gone.

cgdir () {
	if [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw pids /sys/fs/cgroup/cgroup.controllers; then
		echo "/sys/fs/cgroup/$PROJSTORE_CGROUP_BASE/$2"
	else
		echo "/sys/fs/cgroup/$1/$PROJSTORE_CGROUP_BASE/$2"
	fi
}

sandbox_init () {
	local f p
	f=$(cgdir pids "$1")/cgroup.procs
	[ -r "$f" ] || return 1
	while read -r p; do
		if awk '/^NSpid:/ { n = (NF == 3 && $3 == 1) } /^Uid:/ { u = ($2 == 0) }
			END { exit !(n && u) }' "/proc/$p/status" 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done <"$f"
	return 1
}

ns_inode () { stat -L -c %i "/proc/$1/ns/$2" 2>/dev/null; }

procs_in_ns () {
	stat -L -c '%n %i' /proc/[0-9]*/ns/"$1" 2>/dev/null |
		awk -v i="$2" '$2 == i { split($1, a, "/"); print a[3] }'
}

procs_in_cgroup () {
	grep -lE ":/$PROJSTORE_CGROUP_BASE/$1(/|\$)" /proc/[0-9]*/cgroup 2>/dev/null | cut -d/ -f3
}

sandbox_gone () {
	local user=$1 init=$2 pidns=$3 mntns=$4 left p
	[ -n "$init" ] && [ -n "$pidns" ] && [ -n "$mntns" ] || {
		echo >&4 "sandbox_gone: nothing recorded (init '$init', pid ns '$pidns', mnt ns '$mntns')"
		return 1
	}
	left="$(procs_in_cgroup "$user") $(procs_in_ns pid "$pidns") $(procs_in_ns mnt "$mntns")"
	if [ "$(ns_inode "$init" pid)" = "$pidns" ]; then
		left="$left $init"
	fi
	if [ -n "${left// /}" ]; then
		echo >&4 "sandbox of $user: processes left:"
		for p in $left; do
			printf '%s: %s\n' "$p" "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" >&4
		done
		return 1
	fi
	if grep -E "(pid|mnt):\[($pidns|$mntns)\]" /proc/self/mountinfo >&4; then
		echo >&4 "sandbox of $user: a bind mount keeps its namespace"
		return 1
	fi
	return 0
}

remove_project_leftovers () {
	local u=$1 c
	for c in /sys/fs/cgroup/*/"$PROJSTORE_CGROUP_BASE"/"$u" /sys/fs/cgroup/"$PROJSTORE_CGROUP_BASE"/"$u"; do
		[ -d "$c" ] || continue
		while read -r pid; do kill -9 "$pid"; done <"$c/cgroup.procs"
		sleep 0.2
		rmdir "$c"
	done
	getent passwd "$u" | grep -q 'projstore project' && userdel "$u"
	getent group "$u" >/dev/null && groupdel "$u"
	return 0
}
