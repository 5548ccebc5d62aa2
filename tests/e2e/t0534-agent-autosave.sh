#!/bin/bash
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-agent.sh"

test_description 'host agent: autosave of several projects, failures and backoff, bounded log and quarantine, leftovers, --once'

test_expect_success 'setup: host a, four projects deployed on it' '
	ps init >/dev/null &&
	agent_host a &&
	agent_start a --autosave-interval 1s --autosave-jitter 20% --max-parallel 2 &&
	for p in p1 p2 p3 p4; do
		mkdir -p src/$p && echo $p >src/$p/name && ps save $p src/$p >/dev/null &&
		ps open $p --host a --wait >/dev/null || return 1
	done &&
	test "$(ps projects --host a --json | jq length)" = 4
'

test_expect_success 'autosave saves every changed project, and only those' '
	for p in p1 p2 p3; do echo more >>hosts/a/$p/name || return 1; done &&
	wait_for "[ \$(snap_count p1) = 2 ] && [ \$(snap_count p2) = 2 ] && [ \$(snap_count p3) = 2 ]" 20 &&
	sleep 2 &&
	test "$(snap_count p4)" = 1 &&
	for p in p1 p2 p3; do
		ps cat $p@latest name >got && test_cmp hosts/a/$p/name got || return 1
	done
'

test_expect_success 'a failing autosave is recorded, retried with growing delays, and recovers' '
	log_mark a &&
	mv hosts/a/p4 p4-aside &&
	wait_for "log_since a | grep -c \"p4: autosave failed\" | grep -q [3-9]" 30 &&
	log_since a | sed -n "s/.*p4: autosave failed (\([0-9]*\) in a row), next try in \([0-9]*\) s.*/\1 \2/p" >delays &&
	cat delays >&4 &&
	test "$(sed -n 1p delays | cut -d" " -f2)" -le "$(sed -n 3p delays | cut -d" " -f2)" &&
	test "$(sed -n 3p delays | cut -d" " -f2)" -ge 2 &&
	ps events p4 --json >ev.json &&
	jq -r ".[] | select(.kind == \"save-failed\") | .detail" ev.json | grep "is missing" &&
	ps projects --search p4 --json >p.json &&
	jq -r ".[0].last_save.result" p.json | grep "^failed" &&
	mv p4-aside hosts/a/p4 &&
	wait_for "ps events p4 --json | jq -r \".[0].detail\" | grep -q \"works again\"" 30 &&
	wait_for "[ \"\$(ps projects --search p4 --json | jq -r \".[0].last_save.result\")\" = ok ]" 10
'

test_expect_success 'copies the catalog does not place here go into a bounded quarantine' '
	agent_stop a &&
	for i in 1 2 3 4; do mkdir -p hosts/a/stray$i && echo $i >hosts/a/stray$i/f || return 1; done &&
	mkdir hosts/a/Not-A-Project && echo keep >hosts/a/README &&
	mkdir -p hosts/a/.projstore/trash/old-leftover/sub &&
	mkdir hosts/a/.p1.projstore-tmp-1234abcd &&
	agent_start a --autosave-interval 1s --quarantine-keep 2 &&
	wait_log a "quarantine: removed stray" 20 &&
	for i in 1 2 3 4; do test_path_is_missing hosts/a/stray$i || return 1; done &&
	test "$(ls hosts/a/.projstore/quarantine | wc -l)" = 2 &&
	test_path_is_dir hosts/a/Not-A-Project &&
	test_path_is_file hosts/a/README &&
	test_dir_is_empty hosts/a/.projstore/trash &&
	test_path_is_missing hosts/a/.p1.projstore-tmp-1234abcd &&
	for p in p1 p2 p3 p4; do test_path_is_dir hosts/a/$p || return 1; done &&
	ps events stray1 --json | jq -r ".[0].kind" | grep -x quarantined
'

test_expect_success 'the log is rotated by size and stays bounded' '
	agent_stop a &&
	mv a.log before.log &&
	agent_start a --autosave-interval 200ms --verbose --log-max-size 4K --log-keep 2 &&
	wait_for "test -f a.log.2" 30 &&
	sum2=$(cksum <a.log.2) &&
	wait_for "[ \"\$(cksum <a.log.2)\" != \"$sum2\" ]" 30 &&
	test_path_is_missing a.log.3 &&
	for f in a.log a.log.1 a.log.2; do
		test "$(stat -c %s $f)" -le 4096 || return 1
	done &&
	cat a.log.2 a.log.1 a.log | grep -c "autosave: unchanged since" >n &&
	test "$(cat n)" -gt 10
'

test_expect_success 'agent --once carries out what is pending, saves what changed, and exits 0' '
	agent_stop a &&
	ps close p1 >/dev/null &&
	echo once >>hosts/a/p2/name &&
	n=$(snap_count p2) &&
	ps agent --host a --once --log once.log &&
	test "$(where_is p1)" = "" &&
	test_path_is_missing hosts/a/p1 &&
	test "$(snap_count p2)" -gt "$n" &&
	grep "agent a stopped" once.log
'

test_done
