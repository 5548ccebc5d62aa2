#!/bin/bash
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-gluster.sh"

test_description 'sync with a gluster:// store (libgfapi) at either end: local -> gluster, gluster -> local, gluster -> gluster;
check --read-data clean on every side, restores byte-identical, incremental rounds send only the change, errors name the URL'

prereq_GLUSTERD () { false; }   # set by the setup test once the volume runs

# gps ARGS...: projstore inside glusterd's namespaces, with the usual time limit
gps () { gns timeout -k 10 "$PS_TEST_TIMEOUT" "$PROJSTORE" "$@"; }

# name and root of every snapshot of a project, oldest first
snaps_of () {
	gps --store "$1" snapshots "$2" --json | jq -c '[.snapshots[] | {name, root}]'
}

test_expect_success GLUSTER 'setup: glusterd, a replica 3 volume, a local store A with two projects' '
	test_atexit gluster_stop &&
	gluster_start "$TRASH/gluster" &&
	gluster_volume_create psv replica3 &&
	U="gluster://$GL_HOST/psv/dc2" &&
	U2="gluster://$GL_HOST/psv/other" &&
	test_set_prereq GLUSTERD &&
	gps init A >/dev/null &&
	mktree src &&
	head -c 500000 /dev/urandom >src/big.bin &&
	gps --store A save proj1 src >/dev/null &&
	echo more >>src/big.bin &&
	gps --store A save proj1 src >/dev/null &&
	mkdir p2 && echo other >p2/o.txt &&
	gps --store A save proj2 p2 >/dev/null &&
	gps --store A quota proj1 2G >/dev/null &&
	gps --store "$U" init >/dev/null
'

test_expect_success GLUSTERD 'sync local -> gluster://: every snapshot there, on every brick, check --read-data clean' '
	gps sync A "$U" --json >to.json &&
	test_json to.json ".ok == true and .snapshots_copied == 3 and .objects_sent > 0" &&
	test_json to.json "[.projects[] | .status] == [\"ok\", \"ok\"]" &&
	test_cmp <(snaps_of A proj1) <(snaps_of "$U" proj1) &&
	test_cmp <(snaps_of A proj2) <(snaps_of "$U" proj2) &&
	for b in 1 2 3; do
		test_path_is_dir "$GL_DIR/bricks/psv-$b/dc2/projects/proj1" || return 1
	done &&
	gps --store "$U" check --read-data >check.out &&
	test_grep "no problems found" check.out &&
	gps --store "$U" quota proj1 --json | jq -e ".quota_bytes == 2147483648"
'

test_expect_success GLUSTERD 'restores from the gluster store are byte-identical, the older snapshot too' '
	gps --store "$U" restore proj1 r1 &&
	treecmp --no-atime src r1 &&
	old=$(gps --store A snapshots proj1 --json | jq -r ".snapshots[0].name") &&
	gps --store A restore "proj1@$old" ra &&
	gps --store "$U" restore "proj1@$old" rg &&
	treecmp --no-atime ra rg &&
	gps --store "$U" restore proj2 r2 &&
	treecmp --no-atime p2 r2
'

test_expect_success GLUSTERD 'a second round sends nothing; a change sends only its new objects' '
	gps sync A "$U" --json >again.json &&
	test_json again.json ".snapshots_copied == 0 and .objects_sent == 0 and .bytes_sent == 0" &&
	echo changed >src/new-file &&
	gps --store A save proj1 src --json >s.json &&
	gps sync A "$U" --json >inc.json &&
	test_json inc.json ".snapshots_copied == 1" &&
	test "$(jq .bytes_sent inc.json)" -eq "$(jq .snapshot.new_bytes s.json)" &&
	test_cmp <(snaps_of A proj1) <(snaps_of "$U" proj1)
'

test_expect_success GLUSTERD 'sync gluster:// -> another local store: check clean, restores byte-identical' '
	gps init C >/dev/null &&
	gps sync "$U" C --json >from.json &&
	test_json from.json ".ok == true and .snapshots_copied == 4" &&
	test_cmp <(snaps_of A proj1) <(snaps_of C proj1) &&
	test_cmp <(snaps_of A proj2) <(snaps_of C proj2) &&
	gps --store C check --read-data >check.out &&
	test_grep "no problems found" check.out &&
	gps --store C restore proj1 rc &&
	treecmp --no-atime src rc &&
	gps --store C restore "proj1@$old" rco &&
	treecmp --no-atime ra rco &&
	gps --store C stats --json | jq -e ".stored_bytes > 0"
'

test_expect_success GLUSTERD 'gluster:// -> gluster:// (two stores on one volume)' '
	gps --store "$U2" init >/dev/null &&
	gps sync "$U" "$U2" --json >gg.json &&
	test_json gg.json ".ok == true and .snapshots_copied == 4" &&
	test_cmp <(snaps_of "$U" proj1) <(snaps_of "$U2" proj1) &&
	gps --store "$U2" check --read-data >check.out &&
	test_grep "no problems found" check.out &&
	gps --store "$U2" restore proj1 rgg &&
	treecmp --no-atime src rgg
'

test_expect_success GLUSTERD 'gc on the gluster store after the syncs keeps everything check needs' '
	gps --store "$U" gc --grace 0 >/dev/null &&
	gps --store "$U" check --read-data >check.out &&
	test_grep "no problems found" check.out
'

test_expect_success GLUSTERD 'a volume that does not exist or a store not initialised: clear errors, nothing written' '
	before=$(store_listing A) &&
	test_expect_code 1 gps sync A "gluster://$GL_HOST/nosuchvol/x" 2>err1 &&
	test_grep "destination" err1 && test_grep "nosuchvol" err1 &&
	test_expect_code 1 gps sync A "gluster://$GL_HOST/psv/never-initialised" 2>err2 &&
	test_grep "destination" err2 && test_grep "never-initialised" err2 &&
	test_expect_code 1 gps sync "gluster://$GL_HOST/nosuchvol/x" C 2>err3 &&
	test_grep "source" err3 &&
	test "$(store_listing A)" = "$before"
'

test_done
