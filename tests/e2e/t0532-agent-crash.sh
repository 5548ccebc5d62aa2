#!/bin/bash
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-agent.sh"

test_description 'host agents: kill -9 of the old or the new host during a move, restarts, takeover; never two copies in use, nothing lost'

# Agents are stopped at a named step with PROJSTORE_AGENT_PAUSE=STEP:SECONDS
# (src/daemon/agent_ops.c) and killed there.  Autosave is off on the old
# host so that a change written just before a move is only in its working
# copy until the move saves it.

# no_live_duplicate PROJECT: at most one host has ROOT/PROJECT, and it is the
# catalog's location (or none while nothing is deployed)
no_live_duplicate () {
	local c w
	c=$(copies_of "$1" | tr '\n' ' ')
	w=$(where_is "$1")
	case $c in
	"") [ -z "$w" ] || { echo >&4 "$1 is placed on $w but has no copy"; return 1; } ;;
	"$w ") ;;
	*) echo >&4 "$1: copies on [$c], catalog location '$w'"; return 1 ;;
	esac
}

test_expect_success 'setup: hosts a and b, a project deployed on a' '
	ps init >/dev/null &&
	agent_host a && agent_host b &&
	agent_start a --autosave-interval 0 &&
	agent_start b --autosave-interval 0 &&
	mkdir src && echo v1 >src/f && head -c 300000 /dev/urandom >src/blob &&
	ps save p src >/dev/null &&
	ps open p --host a --wait >/dev/null &&
	test "$(where_is p)" = a
'

test_expect_success 'old host killed after its last save, restarted at once: the move completes' '
	agent_stop a &&
	PROJSTORE_AGENT_PAUSE=move-handoff:30 agent_start a --autosave-interval 0 &&
	echo "change 1" >hosts/a/p/change1 &&
	ps move p --to b >/dev/null &&
	wait_log a "pausing.*move-handoff" 20 &&
	test "$(where_is p)" = "" &&
	agent_kill a &&
	agent_start a --autosave-interval 0 &&
	wait_where p b 30 &&
	no_live_duplicate p &&
	echo "change 1" >want && test_cmp want hosts/b/p/change1 &&
	test -z "$(quarantined a p)" &&
	ps events p --json >ev.json &&
	! jq -r ".[].kind" ev.json | grep -x move-takeover
'

test_expect_success 'old host killed before it saved and left down: the new host takes over from the store' '
	ps move p --to a --wait >/dev/null &&
	test "$(where_is p)" = a &&
	agent_stop a &&
	PROJSTORE_AGENT_PAUSE=move-saving:60 agent_start a --autosave-interval 0 &&
	echo "never saved" >hosts/a/p/unsaved &&
	ps move p --to b >/dev/null &&
	wait_log a "pausing.*move-saving" 20 &&
	agent_kill a &&
	wait_where p b 60 &&
	test_path_is_missing hosts/b/p/unsaved &&
	ps events p --json >ev.json &&
	jq -r ".[].kind" ev.json | grep -x move-takeover &&
	jq -r ".[] | select(.kind == \"move-takeover\") | .detail" ev.json | grep "host a is down"
'

test_expect_success 'the old host comes back: its copy goes to the quarantine, nothing of it is lost' '
	agent_start a --autosave-interval 1s &&
	wait_for "test -n \"\$(quarantined a p)\"" 20 &&
	test_path_is_missing hosts/a/p &&
	no_live_duplicate p &&
	q=$(quarantined a p) &&
	echo "never saved" >want && test_cmp want "$q/unsaved" &&
	test "$(stat -c %a hosts/a/.projstore/quarantine)" = 700 &&
	ps events p --json >ev.json &&
	jq -r ".[].kind" ev.json | grep -x quarantined &&
	sleep 2 &&
	! log_since a | grep "p: saved as" &&
	test "$(where_is p)" = b
'

test_expect_success 'new host killed in the middle of its restore, restarted: leftover removed, deployed' '
	agent_stop b &&
	PROJSTORE_AGENT_PAUSE=restore:60 agent_start b --autosave-interval 0 &&
	ps move p --to a --wait >/dev/null &&
	ps move p --to b >/dev/null &&
	wait_log b "pausing.*at restore" 20 &&
	agent_kill b &&
	ls -a hosts/b | grep "^\.p\.projstore-tmp-" &&
	test "$(where_is p)" = "" &&
	agent_start b --autosave-interval 0 &&
	wait_where p b 30 &&
	! ls -a hosts/b | grep "projstore-tmp" &&
	no_live_duplicate p &&
	test_cmp src/f hosts/b/p/f
'

test_expect_success 'new host killed with a complete copy not yet published: restored again, deployed' '
	agent_stop b &&
	PROJSTORE_AGENT_PAUSE=restored:60 agent_start b --autosave-interval 0 &&
	ps move p --to a --wait >/dev/null &&
	echo "change 2" >hosts/a/p/change2 &&
	ps move p --to b >/dev/null &&
	wait_log b "pausing.*at restored" 20 &&
	agent_kill b &&
	test_path_is_dir hosts/b/p &&
	test "$(where_is p)" = "" &&
	agent_start b --autosave-interval 0 &&
	wait_where p b 30 &&
	log_since b | grep "removing an unpublished copy" &&
	no_live_duplicate p &&
	echo "change 2" >want && test_cmp want hosts/b/p/change2
'

test_expect_success 'new host killed and left down: the project stays safely stored, no host claims it' '
	agent_stop b &&
	PROJSTORE_AGENT_PAUSE=restore:60 agent_start b --autosave-interval 0 &&
	ps move p --to a --wait >/dev/null &&
	echo "change 3" >hosts/a/p/change3 &&
	ps move p --to b >/dev/null &&
	wait_log b "pausing.*at restore" 20 &&
	agent_kill b &&
	sleep 3 &&
	test "$(where_is p)" = "" &&
	test -z "$(copies_of p)" &&
	ps cat p@latest change3 >got &&
	echo "change 3" >want && test_cmp want got &&
	test_expect_code 9 ps move p --to a 2>err &&
	grep "in progress" err &&
	agent_start b --autosave-interval 0 &&
	wait_where p b 30 &&
	test_cmp want hosts/b/p/change3
'

test_expect_success 'SIGTERM during an operation: the agent finishes it, then exits 0' '
	agent_stop b &&
	PROJSTORE_AGENT_PAUSE=restored:2 agent_start b --autosave-interval 0 &&
	ps move p --to a --wait >/dev/null &&
	ps move p --to b >/dev/null &&
	wait_log b "pausing.*at restored" 20 &&
	agent_stop b &&
	test "$(where_is p)" = b &&
	log_since b | grep "stopping: waiting for 1 running job" &&
	no_live_duplicate p
'

test_expect_success 'a second agent for the same host or root is refused (exit 6)' '
	agent_start b --autosave-interval 0 &&
	test_expect_code 6 "$PROJSTORE" agent --host b --once 2>err &&
	grep "another agent already serves root" err &&
	agent_stop a && agent_stop b
'

test_done
