# lib-agent.sh - host agents for the end-to-end tests.
#
#   . "$TEST_DIRECTORY/lib-agent.sh"
#   agent_host a                 # registers host a, root $TRASH/hosts/a
#   agent_start a [OPTIONS]      # its agent, a separate process (log $TRASH/a.log)
#   wait_where PROJECT a         # until the catalog places PROJECT on a
#   agent_kill a                 # kill -9; agent_stop a: SIGTERM, waits
#
# Every agent is its own process with its own host name and root; they share
# the test's catalog ($PROJSTORE_CATALOG, else catalog.db in the store) and
# store.  Short times make the crash cases quick:
#   PROJSTORE_HOST_DEAD_SECONDS  a host without heartbeat for this long is down (2)
#   PROJSTORE_LEASE_SECONDS      lease length of the agents (3)
#   AGENT_POLL                   heartbeat and polling interval (200ms)
# Agents still running when the test file ends are killed by PID.

export PROJSTORE_HOST_DEAD_SECONDS=${PROJSTORE_HOST_DEAD_SECONDS:-2}
export PROJSTORE_LEASE_SECONDS=${PROJSTORE_LEASE_SECONDS:-3}
AGENT_POLL=${AGENT_POLL:-200ms}
declare -A AGENT_PID

# agent_host NAME [host add options]
agent_host () {
	local name=$1
	shift
	ps host add "$name" --root "$TRASH/hosts/$name" "$@" >/dev/null
}

# agent_start NAME [agent options]: starts the agent and waits until it runs
# (log_mark NAME first: later wait_log NAME look at this run only).
agent_start () {
	local name=$1 pid
	shift
	log_mark "$name"
	"$PROJSTORE" agent --host "$name" --poll "$AGENT_POLL" --log "$TRASH/$name.log" "$@" \
		2>>"$TRASH/$name.err" &
	pid=$!
	AGENT_PID[$name]=$pid
	test_atexit "kill -9 $pid 2>/dev/null"
	wait_for "grep -q 'agent $name started (pid $pid)' '$TRASH/$name.log' 2>/dev/null ||
		! kill -0 $pid 2>/dev/null" 20 &&
	kill -0 "$pid" 2>/dev/null || { cat "$TRASH/$name.err" >&4; return 1; }
}

# agent_kill NAME: kill -9, as a crash would.
agent_kill () {
	kill -9 "${AGENT_PID[$1]}" 2>/dev/null
	wait "${AGENT_PID[$1]}" 2>/dev/null
	return 0
}

# agent_stop NAME: SIGTERM; the agent must exit 0.
agent_stop () {
	local rc
	kill -TERM "${AGENT_PID[$1]}" || return 1
	wait "${AGENT_PID[$1]}"
	rc=$?
	[ "$rc" = 0 ] || { echo >&4 "agent $1 exited with $rc"; return 1; }
}

# where_is PROJECT: the host the catalog places it on ("" = none).
where_is () { ps where "$1"; }

# wait_where PROJECT HOST [SECONDS]: until the catalog places PROJECT on HOST.
wait_where () {
	wait_for "[ \"\$(ps where $1)\" = '$2' ]" "${3:-30}"
}

# log_mark NAME: later log_since/wait_log only look at the lines after this point.
declare -A LOG_MARK
log_mark () {
	LOG_MARK[$1]=$(cat "$TRASH/$1.log" 2>/dev/null | wc -l)
}

# log_since NAME: the agent's log lines since its last log_mark.
log_since () {
	tail -n +$((${LOG_MARK[$1]:-0} + 1)) "$TRASH/$1.log" 2>/dev/null
}

# wait_log NAME PATTERN [SECONDS]: until a log line since the mark matches PATTERN.
wait_log () {
	wait_for "log_since $1 | grep -q -e '$2'" "${3:-30}"
}

# copies_of PROJECT: the hosts whose root holds a working copy of it.
copies_of () {
	local h
	for h in "$TRASH"/hosts/*; do
		[ -d "$h/$1" ] && basename "$h"
	done
	return 0
}

# quarantined HOST PROJECT: the quarantined copies of PROJECT on HOST.
quarantined () {
	ls -d "$TRASH/hosts/$1/.projstore/quarantine/$2".* 2>/dev/null
}

# host_state NAME: up, down, draining or disabled, as the catalog sees it.
host_state () {
	ps hosts --json | jq -r --arg h "$1" '.[] | select(.name == $h) | .state'
}
