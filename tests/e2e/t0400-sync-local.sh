#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'sync between two local stores: only what DST lacks, nothing overwritten, settings merged, dry runs, --every, a long history'

# PS_SYNC_SNAPSHOTS: length of the long history (default 1000)
NSNAP=${PS_SYNC_SNAPSHOTS:-1000}
helper () { "$TOOLS/ps-synchelper" "$@"; }

# name and root of every snapshot of a project, oldest first
snaps_of () {
	ps --store "$1" snapshots "$2" --json | jq -c '[.snapshots[] | {name, root}]'
}

test_expect_success 'setup: store A with two projects, empty store B' '
	test -x "$TOOLS/ps-synchelper" &&
	ps init A && ps init B &&
	mkdir -p p1/sub p2 &&
	random_file p1/big.bin 3000 &&
	seq 1 20000 >p1/sub/seq.txt &&
	echo hello >p1/hello.txt &&
	ps --store A save proj1 p1 &&
	echo more >>p1/hello.txt &&
	ps --store A save proj1 p1 &&
	echo other >p2/o.txt &&
	ps --store A save proj2 p2 &&
	ps --store A quota proj1 4G &&
	ps --store A exclude proj1 "*.tmp" "cache/"
'

test_expect_success 'sync A B copies every snapshot; B checks clean; contents equal' '
	ps sync A B --json >sync.json 2>err &&
	test_json sync.json ".ok == true and .snapshots_copied == 3 and .objects_sent > 0" &&
	test_json sync.json "[.projects[] | .status] == [\"ok\", \"ok\"]" &&
	test_cmp <(snaps_of A proj1) <(snaps_of B proj1) &&
	test_cmp <(snaps_of A proj2) <(snaps_of B proj2) &&
	ps --store B check --read-data &&
	ps --store B restore proj1 out1 &&
	treecmp --no-atime p1 out1
'

test_expect_success 'objects travel as stored: bytes sent = the compressed size of what B lacked' '
	sent=$(jq .bytes_sent sync.json) &&
	stored=$(ps --store B stats --json | jq .stored_bytes) &&
	test "$sent" -eq "$stored"
'

test_expect_success 'settings the destination lacked were taken (quota, excludes)' '
	ps --store B quota proj1 --json | jq -e ".quota_bytes == 4294967296" &&
	ps --store B exclude proj1 >ex &&
	test_grep -F "*.tmp" ex &&
	test_json sync.json "[.projects[] | select(.project == \"proj1\") | .settings_changed] == [true]"
'

test_expect_success 'a second sync copies nothing and sends nothing' '
	ps sync A B --json >again.json &&
	test_json again.json ".snapshots_copied == 0 and .objects_sent == 0 and .bytes_sent == 0"
'

test_expect_success 'a small change sends only the new objects, and asks little' '
	echo changed >>p1/hello.txt &&
	ps --store A save proj1 p1 --json >save.json &&
	ps sync A B --json >inc.json &&
	test_json inc.json ".snapshots_copied == 1" &&
	new=$(jq .snapshot.new_bytes save.json) &&
	sent=$(jq .bytes_sent inc.json) &&
	test "$sent" -eq "$new" &&
	# the unchanged subtree and the big file are known from the base snapshot
	test_json inc.json ".objects_queried <= 3"
'

test_expect_success 'a change deep in the tree: only the new objects are asked about and sent' '
	mkdir -p p1/d1/d2/d3/d4 &&
	for i in 1 2 3 4 5 6 7 8; do echo "file $i" >p1/d1/d2/d3/d4/f$i; echo "side $i" >p1/d1/s$i; done &&
	ps --store A save proj1 p1 && ps sync A B &&
	echo changed >>p1/d1/d2/d3/d4/f5 &&
	ps --store A save proj1 p1 --json >deep.json &&
	ps sync A B --json >deep-sync.json &&
	# the file chunk and the trees of d4, d3, d2, d1 and the root
	test_json deep.json ".snapshot.new_objects == 6" &&
	test_json deep-sync.json ".objects_sent == 6 and .objects_queried == 6" &&
	test_json deep-sync.json ".trees_read <= 10"
'

test_expect_success 'nothing on the destination is overwritten: its own settings stay, differences reported' '
	ps --store B quota proj1 8G &&
	ps --store A quota proj1 2G &&
	ps sync A B --json >q.json &&
	ps --store B quota proj1 --json | jq -e ".quota_bytes == 8589934592" &&
	test_json q.json "[.projects[] | select(.project == \"proj1\") | .settings_notes[] | test(\"quota differs\")] | any"
'

test_expect_success 'only the named projects; an invalid project id is a usage error' '
	ps init C &&
	ps sync A C proj2 --json >one.json &&
	test_json one.json "[.projects[] | .project] == [\"proj2\"]" &&
	test "$(ps --store C snapshots proj1 --json | jq ".snapshots | length")" = 0 &&
	test_expect_code 2 ps sync A C Bad-Project &&
	test_expect_code 2 ps sync A
'

test_expect_success '--dry-run reports what would be copied and changes nothing' '
	ps init D &&
	store_listing D >before &&
	ps sync A D --dry-run --json >dry.json &&
	store_listing D >after &&
	test_cmp before after &&
	n1=$(ps --store A snapshots proj1 --json | jq ".snapshots | length") &&
	n2=$(ps --store A snapshots proj2 --json | jq ".snapshots | length") &&
	test_json dry.json ".dry_run == true and .snapshots_copied == $((n1 + n2)) and .objects_sent > 0" &&
	ps sync A D --json >real.json &&
	test "$(jq .objects_sent dry.json)" -eq "$(jq .objects_sent real.json)" &&
	test "$(jq .bytes_sent dry.json)" -eq "$(jq .bytes_sent real.json)"
'

test_expect_success 'with a catalog for DST the run is recorded and the projects it brought refreshed' '
	ps init K &&
	ps sync --catalog "sqlite:$TRASH/cat.db" A K >/dev/null &&
	ps --catalog "sqlite:$TRASH/cat.db" projects --json >cat.json &&
	n1=$(ps --store A snapshots proj1 --json | jq ".snapshots | length") &&
	test_json cat.json "[.[] | select(.id == \"proj1\") | .snapshots] == [$n1]" &&
	test_json cat.json "[.[] | select(.id == \"proj2\") | .snapshots] == [1]" &&
	if command -v sqlite3 >/dev/null; then
		sqlite3 cat.db "select source, destination, result, snapshots from syncs" >rows &&
		test_grep "^A|K|ok|$((n1 + 1))$" rows
	fi
'

test_expect_success 'a store synced to itself is refused' '
	test_expect_code 2 ps sync A A 2>err &&
	test_grep "same store" err
'

test_expect_success 'other commands refuse ssh:// stores and say what they are for' '
	test_expect_code_in "1 2" ps --store ssh://localhost/srv/store snapshots proj1 2>err &&
	test_grep "sync" err &&
	test_expect_code_in "1 2" ps --store ssh://localhost/srv/store check 2>err &&
	test_grep "repair-from" err
'

test_expect_success 'serve-stdio is plumbing: not in the command list, but documented' '
	ps --help >help &&
	! grep -q serve-stdio help &&
	test_grep "sync SRC DST" help &&
	ps serve-stdio --help >h2 &&
	test_grep "Plumbing" h2
'

test_expect_success '--every keeps syncing and stops cleanly on SIGTERM' '
	ps init E &&
	{ "$PROJSTORE" sync --every 1 A E >every.out 2>every.err & } &&
	pid=$! &&
	test_when_finished "kill -9 $pid 2>/dev/null; true" &&
	wait_for "grep -q \"round done\" every.err" 60 &&
	echo again >>p1/hello.txt &&
	ps --store A save proj1 p1 &&
	wait_for "test \$(grep -c \"round done\" every.err) -ge 3" 60 &&
	kill -TERM $pid &&
	wait $pid &&
	test_grep "stopped by a signal" every.err &&
	test_cmp <(snaps_of A proj1) <(snaps_of E proj1) &&
	ps --store E check --read-data
'

test_expect_success "a history of $NSNAP snapshots is copied whole, in one run" '
	ps init H && ps init H2 &&
	helper history H long "$NSNAP" &&
	start=$(now_ns) &&
	ps sync H H2 --json >long.json &&
	end=$(now_ns) &&
	echo "sync of $NSNAP snapshots: $(( (end - start) / 1000000 )) ms" >&4 &&
	test_json long.json ".snapshots_copied == $NSNAP" &&
	test_cmp <(snaps_of H long) <(snaps_of H2 long) &&
	ps --store H2 check --read-data >check.out &&
	test_grep "$NSNAP snapshots" check.out
'

test_expect_success "the long history was walked incrementally: each snapshot against the one before" '
	# every snapshot adds a file chunk and a root tree (and a log tree and
	# chunk every tenth): the walk asks about nothing it can know from the
	# snapshot before
	total=$(jq .objects_sent long.json) &&
	asked=$(jq .objects_queried long.json) &&
	test "$asked" -le $((total + 10)) &&
	ps sync H H2 --json >long2.json &&
	test_json long2.json ".snapshots_copied == 0 and .objects_queried == 0"
'

test_expect_success 'the latest snapshot is the newest by time on both sides' '
	test "$(ps --store H snapshots long --json | jq -r ".snapshots[-1].name")" = \
	     "$(ps --store H2 snapshots long --json | jq -r ".snapshots[-1].name")"
'

test_done
