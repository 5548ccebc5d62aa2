# lib-agent-lifecycle.sh - the project life cycle through two host agents:
# open, autosave, requested save, move, close, open with the agent stopped,
# clean stop.  Sourced by t0530 (SQLite catalog) and t0531 (PostgreSQL), so
# that both engines run exactly the same steps; the caller sets
# PROJSTORE_CATALOG (or leaves the SQLite default in the store) first.

test_expect_success 'setup: a store, hosts a and b with their agents, a saved project' '
	ps init >/dev/null &&
	agent_host a && agent_host b && agent_host c &&
	agent_start a --autosave-interval 1s --autosave-jitter 0 &&
	agent_start b --autosave-interval 1s --autosave-jitter 0 &&
	mkdir -p src/sub src/empty &&
	echo hello >src/hello &&
	head -c 200000 /dev/urandom >src/sub/data &&
	ln -s hello src/link &&
	chmod 0640 src/hello &&
	ps save p1 src >/dev/null &&
	ps hosts >hosts.out &&
	grep "^a " hosts.out && grep "^b " hosts.out
'

test_expect_success 'open --wait deploys the newest snapshot on the host asked for' '
	ps open p1 --host a --wait --timeout 30 >open.out &&
	grep "deployed on a" open.out &&
	test "$(where_is p1)" = a &&
	treecmp --no-atime src hosts/a/p1 &&
	test "$(copies_of p1)" = a &&
	ps events p1 --json >ev.json &&
	test "$(jq -r ".[0].kind" ev.json)" = deployed
'

test_expect_success 'opening a deployed project again is done at once' '
	ps open p1 --json >o.json &&
	test_json o.json ".operation.state == \"done\" and .project.host == \"a\"" &&
	ps open p1 --host a --wait >o2.out &&
	grep "deployed on a" o2.out
'

test_expect_success 'open of a project without snapshots makes a new empty home' '
	ps open fresh --wait --timeout 30 --json >f.json &&
	test_json f.json ".operation.state == \"done\"" &&
	h=$(where_is fresh) &&
	test -n "$h" &&
	test_path_is_dir "hosts/$h/fresh" &&
	test_dir_is_empty "hosts/$h/fresh"
'

test_expect_success 'autosave saves a changed project within its interval' '
	n=$(snap_count p1) &&
	echo changed >hosts/a/p1/new-file &&
	wait_for "[ \$(snap_count p1) -gt $n ]" 15 &&
	ps cat p1@latest new-file >got &&
	echo changed >want &&
	test_cmp want got &&
	ps projects --search p1 --json >p.json &&
	test "$(jq -r ".[0].last_save.result" p.json)" = ok
'

test_expect_success 'autosave publishes nothing while nothing changes' '
	n=$(snap_count p1) &&
	sleep 3.5 &&
	test "$(snap_count p1)" = "$n" &&
	ps projects --search p1 --json >p.json &&
	test "$(jq -r ".[0].last_save.result" p.json)" = ok
'

test_expect_success 'save PROJECT --wait asks the host for a save' '
	ps save p1 --wait >s1.out &&
	grep "no changes since snapshot" s1.out &&
	echo more >>hosts/a/p1/hello &&
	ps save p1 --wait --timeout 30 >s2.out &&
	grep -E "saved as snapshot|no changes since snapshot" s2.out &&
	ps cat p1@latest hello >got &&
	test_cmp hosts/a/p1/hello got &&
	ps events p1 --json >ev.json &&
	jq -r ".[].kind" ev.json | grep -x saved
'

test_expect_success 'save PROJECT of a project that is not deployed exits 7' '
	test_expect_code 7 ps save nosuch --wait 2>err &&
	grep "not deployed" err
'

test_expect_success 'move --wait: saved on a, deployed on b, gone from a' '
	echo "written on a" >hosts/a/p1/last-words &&
	ps move p1 --to b --wait --timeout 60 >m.out &&
	grep "deployed on b" m.out &&
	test "$(where_is p1)" = b &&
	test "$(copies_of p1)" = b &&
	echo "written on a" >want &&
	test_cmp want hosts/b/p1/last-words &&
	ps events p1 --json >ev.json &&
	jq -r ".[].kind" ev.json >kinds &&
	grep -x moved-out kinds && grep -x deployed kinds
'

test_expect_success 'close --wait saves, removes the copy and empties the location' '
	echo "before close" >hosts/b/p1/bye &&
	ps close p1 --wait --timeout 60 >c.out &&
	grep "closed" c.out &&
	test "$(where_is p1)" = "" &&
	test -z "$(copies_of p1)" &&
	ps cat p1@latest bye >got &&
	echo "before close" >want &&
	test_cmp want got &&
	ps projects --search p1 --json >p.json &&
	test "$(jq -r ".[0].status" p.json)" = stored
'

test_expect_success 'close of a project that is not deployed exits 7' '
	test_expect_code 7 ps close p1 2>err &&
	grep "not deployed" err
'

test_expect_success 'with the agent of the target stopped, open --wait --timeout 5 exits 10 and says so' '
	start=$SECONDS &&
	test_expect_code 10 ps open p1 --host c --wait --timeout 5 2>err &&
	test $((SECONDS - start)) -le 15 &&
	grep "not running or not answering" err &&
	grep "stays queued" err
'

test_expect_success 'the queued open is carried out once the agent runs' '
	agent_start c &&
	wait_where p1 c 30 &&
	test "$(copies_of p1)" = c
'

test_expect_success 'open without --wait only queues' '
	ps close p1 --wait >/dev/null &&
	ps open p1 --host a >q.out &&
	grep "queued for host a" q.out &&
	wait_where p1 a 30
'

test_expect_success 'the agents stop cleanly on SIGTERM' '
	agent_stop a && agent_stop b && agent_stop c &&
	grep "agent a stopped" a.log &&
	grep "agent b stopped" b.log
'
