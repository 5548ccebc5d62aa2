#!/bin/bash
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-agent.sh"
. "$TEST_DIRECTORY/lib-sshd.sh"

test_description 'a move between hosts of two datacenters (two stores, one catalog): the snapshots are synced to the new store first, under the lease; failures leave the project where it was'

# Hosts h1 (dc1, store A) and h2 (dc2, store B) share the catalog cat.db.
# h3 (dc3, store C) is the target whose store fails; h4 (dc4) has store D,
# registered as ssh://localhost/... (its agent uses the local path).

export PROJSTORE_CATALOG=$TRASH/cat.db

names_in () { ps --store "$1" snapshots "$2" --json | jq -r '.snapshots[].name'; }
roots_in () { ps --store "$1" snapshots "$2" --json | jq -c '[.snapshots[] | {name, root}]'; }
kinds () { ps events "$1" --json | jq -r '.[].kind'; }
syncs_rows () {
	python3 -c 'import sqlite3, sys
for r in sqlite3.connect(sys.argv[1]).execute("select source, destination, result, snapshots from syncs order by id"):
    print("|".join(str(x) for x in r))' "$PROJSTORE_CATALOG"
}

test_expect_success SSHD 'sshd on loopback (for the ssh:// store)' '
	sshd_start &&
	test_set_prereq SSH_OK
'

test_expect_success 'setup: stores A and B, hosts h1 (dc1, A) and h2 (dc2, B), a project saved twice in A' '
	ps init A >/dev/null && ps init B >/dev/null &&
	agent_host h1 --store "$TRASH/A" --datacenter dc1 &&
	agent_host h2 --store "$TRASH/B" --datacenter dc2 &&
	agent_start h1 --autosave-interval 0 &&
	agent_start h2 --autosave-interval 0 &&
	mkdir -p src/sub && echo one >src/f && head -c 300000 /dev/urandom >src/sub/blob &&
	ps --store A save p src >/dev/null &&
	echo two >>src/f &&
	ps --store A save p src >/dev/null &&
	test "$(names_in A p | wc -l)" = 2 &&
	test -z "$(names_in B p)" &&
	ps open p --host h1 --wait --timeout 30 >/dev/null &&
	test "$(where_is p)" = h1 &&
	treecmp --no-atime src hosts/h1/p
'

test_expect_success 'move to h2: synced A -> B under the lease, then deployed from B' '
	echo "written on h1" >hosts/h1/p/last &&
	ps move p --to h2 --wait --timeout 60 >m.out &&
	grep "deployed on h2" m.out &&
	test "$(where_is p)" = h2 &&
	test "$(copies_of p)" = h2 &&
	echo "written on h1" >want && test_cmp want hosts/h2/p/last &&
	test "$(names_in A p | wc -l)" = 3 &&
	test_cmp <(roots_in A p) <(roots_in B p) &&
	ps --store B check --read-data >/dev/null &&
	kinds p >k && grep -x synced k && grep -x moved-out k &&
	ps events p --json >ev.json &&
	jq -r ".[] | select(.kind == \"synced\") | .detail" ev.json >d &&
	grep "synced 3 snapshot(s)" d && grep "from store $TRASH/A (dc1) to store $TRASH/B (dc2) before the move" d &&
	test "$(jq -r "[.[] | select(.kind == \"synced\")][0].actor" ev.json)" = h1 &&
	syncs_rows >rows && grep -x "$TRASH/A|$TRASH/B|ok|3" rows &&
	log_since h1 | grep "p: syncing its snapshots from store"
'

test_expect_success 'saves on h2 land in store B, not in A' '
	echo "written on h2" >hosts/h2/p/h2file &&
	ps save p --wait --timeout 30 >s.out &&
	grep "saved as snapshot" s.out &&
	test "$(names_in B p | wc -l)" = 4 &&
	test "$(names_in A p | wc -l)" = 3 &&
	ps --store B cat p@latest h2file >got && echo "written on h2" >want && test_cmp want got
'

test_expect_success 'moving back to h1 syncs B -> A; the history is one in both stores' '
	ps move p --to h1 --wait --timeout 60 >/dev/null &&
	test "$(where_is p)" = h1 &&
	test "$(copies_of p)" = h1 &&
	echo "written on h2" >want && test_cmp want hosts/h1/p/h2file &&
	test "$(names_in A p | wc -l)" = 4 &&
	test_cmp <(roots_in A p) <(roots_in B p) &&
	syncs_rows >rows && grep -x "$TRASH/B|$TRASH/A|ok|1" rows &&
	ps events p --json >ev.json &&
	test "$(jq -r "[.[] | select(.kind == \"synced\")][0].actor" ev.json)" = h2 &&
	ps --store A check --read-data >/dev/null
'

test_expect_success 'destination store gone: the move fails and says why, the project stays on h1, nothing lost' '
	ps init C >/dev/null &&
	agent_host h3 --store "$TRASH/C" --datacenter dc3 &&
	agent_start h3 --autosave-interval 0 &&
	mv C C.away &&
	echo "before the failed move" >hosts/h1/p/keep &&
	n=$(names_in A p | wc -l) &&
	test_expect_code 1 ps move p --to h3 --wait --timeout 60 >out 2>err &&
	cat out err >all &&
	grep "sync from store $TRASH/A (dc1) to store $TRASH/C (dc3) failed" all &&
	grep "stays deployed on h1" all &&
	test "$(where_is p)" = h1 &&
	test "$(copies_of p)" = h1 &&
	echo "before the failed move" >want && test_cmp want hosts/h1/p/keep &&
	ps projects --search p --json >pr.json &&
	test "$(jq -r ".[0].status" pr.json)" = deployed &&
	kinds p | grep -x move-failed &&
	test "$(names_in A p | wc -l)" = $((n + 1)) &&
	ps --store A cat p@latest keep >got && test_cmp want got &&
	syncs_rows >rows && grep "^$TRASH/A|$TRASH/C|failed: " rows &&
	ps save p --wait --timeout 30 >/dev/null
'

test_expect_success 'the store back: the same move again converges' '
	mv C.away C &&
	ps move p --to h3 --wait --timeout 60 >/dev/null &&
	test "$(where_is p)" = h3 &&
	test "$(copies_of p)" = h3 &&
	echo "before the failed move" >want && test_cmp want hosts/h3/p/keep &&
	test_cmp <(roots_in A p) <(roots_in C p)
'

test_expect_success MOUNT 'destination store read-only: the move fails, the project stays' '
	ps move p --to h1 --wait --timeout 60 >/dev/null &&
	test "$(where_is p)" = h1 &&
	echo "newer" >hosts/h1/p/newer &&
	mount --bind C C &&
	test_when_finished "umount C" &&
	mount -o remount,ro,bind C &&
	test_expect_code 1 ps move p --to h3 --wait --timeout 60 >out 2>err &&
	grep "stays deployed on h1" err &&
	test "$(where_is p)" = h1 &&
	test "$(copies_of p)" = h1 &&
	echo newer >want && test_cmp want hosts/h1/p/newer
'

test_expect_success 'old host killed after the sync, before the handoff: restarted, it converges' '
	test "$(where_is p)" = h1 &&
	agent_stop h1 &&
	PROJSTORE_AGENT_PAUSE=move-handoff:30 agent_start h1 --autosave-interval 0 &&
	echo "killed after sync" >hosts/h1/p/k1 &&
	ps move p --to h2 >/dev/null &&
	wait_log h1 "pausing.*move-handoff" 20 &&
	test_cmp <(roots_in A p) <(roots_in B p) &&
	agent_kill h1 &&
	agent_start h1 --autosave-interval 0 &&
	wait_where p h2 30 &&
	test "$(copies_of p)" = h2 &&
	echo "killed after sync" >want && test_cmp want hosts/h2/p/k1 &&
	test_cmp <(roots_in A p) <(roots_in B p)
'

test_expect_success 'old host killed in the middle of the sync (destination store locked): restarted, it converges' '
	agent_stop h2 &&
	PROJSTORE_AGENT_PAUSE=move-syncing:30 agent_start h2 --autosave-interval 0 &&
	echo "killed during sync" >hosts/h2/p/k3 &&
	head -c 200000 /dev/urandom >k3.want && cp k3.want hosts/h2/p/k3.bin &&
	ps move p --to h1 >/dev/null &&
	wait_log h2 "pausing.*move-syncing" 20 &&
	agent_kill h2 &&
	agent_start h2 --autosave-interval 0 &&
	wait_where p h1 40 &&
	test "$(copies_of p)" = h1 &&
	echo "killed during sync" >want && test_cmp want hosts/h1/p/k3 &&
	cmp k3.want hosts/h1/p/k3.bin &&
	log_since h2 | grep "p: synced: synced 1 snapshot" &&
	test_cmp <(roots_in A p) <(roots_in B p) &&
	ps --store A check --read-data >/dev/null
'

test_expect_success 'old host killed before the sync and left down: the new host syncs from its store itself' '
	ps move p --to h2 --wait --timeout 60 >/dev/null &&
	agent_stop h2 &&
	PROJSTORE_AGENT_PAUSE=move-sync:60 agent_start h2 --autosave-interval 0 &&
	echo "saved, not synced" >hosts/h2/p/k2 &&
	ps move p --to h1 >/dev/null &&
	wait_log h2 "pausing.*move-sync" 20 &&
	agent_kill h2 &&
	wait_where p h1 60 &&
	echo "saved, not synced" >want && test_cmp want hosts/h1/p/k2 &&
	test_cmp <(roots_in A p) <(roots_in B p) &&
	ps events p --json >ev.json &&
	jq -r ".[].kind" ev.json | grep -x move-takeover &&
	test "$(jq -r "[.[] | select(.kind == \"synced\")][0].actor" ev.json)" = h1 &&
	agent_start h2 --autosave-interval 0 &&
	wait_for "test -n \"\$(quarantined h2 p)\"" 20
'

test_expect_success 'takeover with the old store unreadable and newer than the new one: refused, the project stays' '
	ps move p --to h2 --wait --timeout 60 >/dev/null &&
	echo "only in B" >hosts/h2/p/onlyb &&
	ps save p --wait --timeout 30 >/dev/null &&
	agent_kill h2 &&
	mv B B.away &&
	test_expect_code 1 ps move p --to h1 --wait --timeout 60 >out 2>err &&
	grep "refused" err &&
	test "$(where_is p)" = h2 &&
	kinds p | grep -x move-refused &&
	mv B.away B &&
	agent_start h2 --autosave-interval 0 &&
	ps move p --to h1 --wait --timeout 60 >/dev/null &&
	echo "only in B" >want && test_cmp want hosts/h1/p/onlyb &&
	test_cmp <(roots_in A p) <(roots_in B p)
'

test_expect_success SSH_OK 'a target whose store is reached over ssh://: synced through serve-stdio' '
	ps init D >/dev/null &&
	agent_host h4 --store "ssh://localhost$TRASH/D" --datacenter dc4 &&
	agent_start h4 --store "$TRASH/D" --autosave-interval 0 &&
	ps move p --to h4 --wait --timeout 60 >/dev/null &&
	test "$(where_is p)" = h4 &&
	echo "only in B" >want && test_cmp want hosts/h4/p/onlyb &&
	test_cmp <(roots_in A p) <(roots_in D p) &&
	syncs_rows >rows && grep -x "$TRASH/A|ssh://localhost$TRASH/D|ok|[0-9]*" rows &&
	echo "on h4" >hosts/h4/p/h4file &&
	ps move p --to h1 --wait --timeout 60 >/dev/null &&
	echo "on h4" >want && test_cmp want hosts/h1/p/h4file &&
	test_cmp <(roots_in A p) <(roots_in D p)
'

test_expect_success 'agents stop cleanly' '
	for h in h1 h2 h3; do agent_stop $h || return 1; done &&
	if test_have_prereq SSH_OK; then agent_stop h4; fi
'

test_done
