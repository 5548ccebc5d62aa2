#!/bin/bash
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-agent.sh"

test_description 'host agents: concurrent moves, lease expiry, a host that dies, damaged snapshots, bad requests'

# flip_byte FILE OFFSET: inverts the bits of one byte.
flip_byte () {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ') &&
	printf "$(printf '\\%03o' $((b ^ 255)))" |
	dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

packs () { find "$PROJSTORE_STORE/packs" -name "*.pack" | sort; }

test_expect_success 'setup: hosts a, b and c with their agents' '
	ps init --compression none >/dev/null &&
	agent_host a && agent_host b && agent_host c &&
	agent_start a --autosave-interval 0 &&
	agent_start b --autosave-interval 0 &&
	agent_start c --autosave-interval 0 &&
	mkdir src && echo one >src/f &&
	ps save m src >/dev/null &&
	ps open m --host a --wait >/dev/null
'

# both requests start at the same moment (a barrier file), and the old host
# pauses a second before its save, so that the first move is surely still
# active when the second request arrives
test_expect_success 'two concurrent moves of one project: exactly one wins, the other exits 9' '
	for h in a b c; do
		agent_stop $h &&
		PROJSTORE_AGENT_PAUSE=move-saving:1 agent_start $h --autosave-interval 0 || return 1
	done &&
	for round in 1 2 3 4; do
		from=$(where_is m) || return 1
		case $from in a) t1=b t2=c ;; b) t1=c t2=a ;; *) t1=a t2=b ;; esac
		rm -f go
		{ while ! test -e go; do sleep 0.01; done; ps move m --to $t1 >out1 2>err1; echo $? >rc1; } &
		m1=$!
		{ while ! test -e go; do sleep 0.01; done; ps move m --to $t2 >out2 2>err2; echo $? >rc2; } &
		m2=$!
		sleep 0.2 && touch go &&
		wait $m1 $m2 &&
		r1=$(cat rc1) && r2=$(cat rc2) &&
		echo "round $round: $from -> $t1 ($r1) / $t2 ($r2)" &&
		case "$r1 $r2" in
		"0 9") win=$t1; grep "in progress" err2 ;;
		"9 0") win=$t2; grep "in progress" err1 ;;
		*) echo >&4 "round $round: exit codes $r1 and $r2"; cat err1 err2 >&4; false ;;
		esac &&
		wait_where m $win 30 &&
		test "$(copies_of m)" = $win || return 1
	done &&
	for h in a b c; do
		agent_stop $h && agent_start $h --autosave-interval 0 || return 1
	done
'

test_expect_success 'a move of a project that is being moved exits 9 and names the operation' '
	agent_stop c &&
	from=$(where_is m) &&
	if [ "$from" = c ]; then ps move m --to a --wait >/dev/null && from=a; fi &&
	ps move m --to c >/dev/null &&
	wait_where m "" 30 &&
	test_expect_code 9 ps move m --to b 2>err &&
	grep "operation [0-9]* (move to c" err &&
	test_expect_code 9 ps open m --host b 2>err &&
	test_expect_code 7 ps close m 2>err && grep "not deployed" err &&
	agent_start c --autosave-interval 0 &&
	wait_where m c 30
'

test_expect_success 'a host that dies holding a lease: its project is moved elsewhere once the lease expires' '
	ps move m --to a --wait >/dev/null &&
	agent_stop a &&
	PROJSTORE_AGENT_PAUSE=save:60 agent_start a --autosave-interval 0 &&
	ps save m >/dev/null &&
	wait_log a "pausing.*at save (" 20 &&
	ps projects --search m --json >p.json &&
	test "$(jq -r ".[0].lease.owner" p.json)" = a &&
	agent_kill a &&
	ps projects --search m --json >p.json &&
	expires=$(jq -r ".[0].lease.expires" p.json) &&
	wait_for "[ \"\$(host_state a)\" = down ]" 10 &&
	test_expect_code 10 ps open m 2>err &&
	grep "not running or not answering" err && grep "projstore move m --to" err &&
	log_mark b &&
	ps move m --to b --wait --timeout 60 >mv.out &&
	grep "deployed on b" mv.out &&
	ps events m --json >ev.json &&
	jq -r ".[].kind" ev.json | grep -x move-takeover &&
	deployed=$(jq -r "[.[] | select(.kind == \"deployed\")][0].time" ev.json) &&
	echo "lease of a expired $expires, deployed on b $deployed" &&
	test "$deployed" \> "$expires"
'

test_expect_success 'the dead host comes back: the stale save fails, its copy is put aside' '
	agent_start a --autosave-interval 0 &&
	wait_for "test -n \"\$(quarantined a m)\"" 20 &&
	test "$(copies_of m)" = b &&
	test "$(where_is m)" = b &&
	wait_log a "operation [0-9]* (save) failed: project m is not deployed on a" 20
'

test_expect_success 'a damaged newest snapshot: open falls back to the next older one and says which' '
	mkdir d && echo first >d/f && head -c 100000 /dev/urandom >d/a &&
	ps save dmg d --json >s1.json &&
	s1=$(jq -r .snapshot.name s1.json) &&
	packs >before &&
	head -c 1048576 /dev/urandom >d/big && echo second >d/f &&
	ps save dmg d --json >s2.json &&
	s2=$(jq -r .snapshot.name s2.json) &&
	packs >after &&
	pack=$(comm -13 before after | xargs ls -S | head -n 1) &&
	test -n "$pack" &&
	size=$(stat -c %s "$pack") &&
	chmod u+w "$pack" && flip_byte "$pack" $((size / 2)) &&
	ps open dmg --host c --wait --timeout 60 >o.out &&
	grep "from snapshot $s1" o.out && grep "$s2 are damaged" o.out &&
	echo first >want && test_cmp want hosts/c/dmg/f &&
	test_path_is_missing hosts/c/dmg/big &&
	ps events dmg --json >ev.json &&
	jq -r ".[] | select(.kind == \"restore-failed\") | .detail" ev.json | grep "snapshot $s2 does not restore" &&
	jq -r ".[] | select(.kind == \"restore-fallback\") | .detail" ev.json | grep "from snapshot $s1" &&
	! ls -a hosts/c | grep projstore-tmp
'

test_expect_success 'every snapshot damaged: open fails (exit 1), nothing is deployed' '
	mkdir e && head -c 1048576 /dev/urandom >e/only &&
	packs >before &&
	ps save bad e >/dev/null &&
	packs >after &&
	pack=$(comm -13 before after | xargs ls -S | head -n 1) &&
	size=$(stat -c %s "$pack") &&
	chmod u+w "$pack" && flip_byte "$pack" $((size / 2)) &&
	test_expect_code 1 ps open bad --host b --wait --timeout 60 2>err &&
	grep "none of the 1 snapshots of bad restores cleanly" err &&
	test "$(where_is bad)" = "" &&
	test -z "$(copies_of bad)" &&
	ps projects --search bad --json >p.json &&
	test "$(jq -r ".[0].status" p.json)" = stored
'

test_expect_success 'bad requests: unknown host (7), invalid id or missing --to (2), --timeout without --wait (2)' '
	test_expect_code 7 ps open m2 --host nosuch 2>err && grep nosuch err &&
	test_expect_code 7 ps move m --to nosuch 2>err &&
	test_expect_code 2 ps open BAD 2>err &&
	test_expect_code 2 ps move m 2>err && grep -- "--to" err &&
	test_expect_code 2 ps open m --timeout 5 2>err &&
	test_expect_code 2 ps close 2>err &&
	test_expect_code 2 ps agent 2>err && grep -- "--host" err &&
	test_expect_code 2 ps agent --host a --autosave-interval 5x 2>err &&
	test_expect_code 7 ps agent --host nosuch 2>err
'

test_expect_success 'stop the agents' '
	agent_stop a && agent_stop b && agent_stop c
'

test_done
