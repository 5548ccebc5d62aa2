#!/bin/bash
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-gluster.sh"

test_description 'a store on a GlusterFS replica 3 volume through libgfapi (gluster://, no mount):
every command works, the data is on every brick, no glusterfs mount appears; errors name the URL;
a dead first server is skipped for a backup volfile server; an arbiter volume works the same'

prereq_GLUSTERD () { false; }   # set by the setup test once the volume runs

# gps ARGS...: projstore inside glusterd's namespaces, with the usual time limit
gps () { gns timeout -k 10 "$PS_TEST_TIMEOUT" "$PROJSTORE" "$@"; }

no_glusterfs_mount () {
	! grep -E "glusterfs" /proc/mounts >&4 &&
	test -z "$(gluster_mounts)"
}

test_expect_success GLUSTER 'setup: glusterd and a replica 3 volume' '
	test_atexit gluster_stop &&
	gluster_start "$TRASH/gluster" &&
	gluster_volume_create psv replica3 &&
	U="gluster://$GL_HOST/psv/store" &&
	export PROJSTORE_STORE="$U" &&
	test_set_prereq GLUSTERD
'

# A client that starts while its connection to one brick is still being made
# writes to the others (client quorum: 2 of 3); GlusterFS heals the third
# copy. So every brick must hold the store, once healing had its chance.
on_every_brick () {
	local b
	for b in 1 2 3; do
		[ -f "$GL_DIR/bricks/psv-$b/store/config" ] || return 1
	done
}

test_expect_success GLUSTERD 'init creates the store on the volume, on every brick' '
	gps init >out &&
	test_grep "$U" out &&
	test_expect_code 1 gps init 2>err &&
	test_grep "already a projstore store" err &&
	if ! on_every_brick; then
		gl volume heal psv >/dev/null 2>&1
		wait_for on_every_brick 60
	fi &&
	no_glusterfs_mount
'

test_expect_success GLUSTERD 'save and restore: byte-identical, metadata included' '
	mktree src &&
	gps save proj src --json >s1.json &&
	S1=$(jq -r .snapshot.name s1.json) &&
	gps restore proj r1 &&
	treecmp --no-atime src r1 &&
	no_glusterfs_mount
'

test_expect_success GLUSTERD 'a second save stores only the change; both snapshots restore' '
	head -c 300000 /dev/urandom >src/new-file &&
	echo changed >src/new-text &&
	gps save proj src --json >s2.json &&
	S2=$(jq -r .snapshot.name s2.json) &&
	test "$S1" != "$S2" &&
	test "$(gps snapshots proj --json | jq ".snapshots | length")" = 2 &&
	gps restore proj@latest r2 &&
	treecmp --no-atime src r2 &&
	gps restore "proj@$S1" r1b &&
	treecmp --no-atime r1 r1b
'

test_expect_success GLUSTERD 'ls, cat, diff, stats and check --read-data' '
	gps ls proj@latest >ls.out &&
	test_grep new-file ls.out &&
	gps cat proj@latest new-file >cat.out &&
	cmp src/new-file cat.out &&
	gps diff "proj@$S1" proj@latest >diff.out &&
	test_grep new-file diff.out &&
	gps stats proj --json >stats.json &&
	jq . stats.json >/dev/null &&
	gps check --read-data >check.out &&
	test_grep "no problems found" check.out
'

test_expect_success GLUSTERD 'quota, policy, prune and gc on the volume' '
	gps quota proj 1G &&
	gps policy proj --keep-last 1 &&
	gps prune proj >prune.out &&
	test "$(gps snapshots proj --json | jq ".snapshots | length")" = 1 &&
	gps gc --grace 0 --json >gc.json &&
	gps check --read-data &&
	gps restore proj r3 &&
	treecmp --no-atime src r3
'

test_expect_success GLUSTERD,FUSE 'projstore mount of a gluster:// store (daemonized: a child reconnects)' '
	mkdir -p mnt &&
	gps mount proj mnt 2>mount.err &&
	test_atexit "gns fusermount3 -u -z \"$TRASH/mnt\"" &&
	wait_for "gns mountpoint -q mnt" 10 &&
	gns "$TOOLS/treecmp" --no-atime src mnt/latest/ &&
	gns fusermount3 -u mnt &&
	! gns mountpoint -q mnt &&
	no_glusterfs_mount
'

test_expect_success GLUSTERD 'two saves at once share the volume' '
	{ gps save p2 src >p2.out 2>&1 & a=$!; } &&
	{ gps save p3 src/hard >p3.out 2>&1 & b=$!; } &&
	wait $a && wait $b &&
	gps restore p2 r4 && treecmp --no-atime src r4 &&
	gps restore p3 r5 && treecmp --no-atime src/hard r5 &&
	gps check --read-data
'

test_expect_success GLUSTERD 'exclude, delete and stats of the whole store' '
	gps exclude p3 "*.tmp" &&
	gps exclude p3 >excl.out && test_grep "[*].tmp" excl.out &&
	gps delete p3 --purge &&
	test "$(gps snapshots p3 --json | jq ".snapshots | length")" = 0 &&
	gps stats --json >all.json &&
	jq . all.json >/dev/null
'

test_expect_success GLUSTERD 'no glusterfs mount exists anywhere after all this' '
	no_glusterfs_mount
'

test_expect_success GLUSTERD 'errors name the URL: missing volume, unreachable server, missing path' '
	test_expect_code 1 gps snapshots proj --store "gluster://$GL_HOST/nosuchvol/store" 2>err1 &&
	test_grep "volume .nosuchvol. does not exist" err1 &&
	test_grep "gluster://$GL_HOST/nosuchvol/store" err1 &&
	test_expect_code 1 gps snapshots proj --store "gluster://127.0.0.1:1/psv/store" 2>err2 &&
	test_grep "cannot connect to GlusterFS volume .psv. through 127.0.0.1:1" err2 &&
	test_grep "gluster://127.0.0.1:1/psv/store" err2 &&
	test_expect_code 1 gps snapshots proj --store "gluster://$GL_HOST/psv/nosuchdir" 2>err3 &&
	test_grep "store .gluster://$GL_HOST/psv/nosuchdir. does not exist" err3 &&
	test_expect_code 1 gps init "gluster://$GL_HOST/psv/no/parent" 2>err4 &&
	test_grep "parent of ./no/parent. does not exist" err4
'

test_expect_success GLUSTERD 'invalid URLs are usage errors and touch nothing' '
	for u in "gluster://$GL_HOST/psv/../x" "gluster://$GL_HOST" "gluster://u@$GL_HOST/psv" \
		 "gluster://$GL_HOST:99999/psv" "gluster://$GL_HOST/psv/a%2fb" "nosuch://x/y"; do
		test_expect_code 2 gps snapshots proj --store "$u" 2>err || return 1
		grep -q "invalid GlusterFS location\|unknown store location scheme" err || {
			cat err; return 1; }
	done
'

test_expect_success GLUSTERD 'a dead or unknown first server: the backup volfile server is used' '
	echo more >src/backup-server &&
	gps save proj src --store "gluster://nosuch-server.invalid,$GL_HOST/psv/store" &&
	gps restore proj r6 --store "gluster://127.0.0.1:1,$GL_HOST/psv/store" &&
	treecmp --no-atime src r6
'

test_expect_success GLUSTERD 'one connection per volume per process (gc opens the store twice)' '
	PROJSTORE_GLUSTER_LOG="$TRASH/gc.log" gps gc --grace 0 >/dev/null &&
	test "$(grep -c "switched to graph" "$TRASH/gc.log")" = 1
'

test_expect_success GLUSTERD 'glfs_fini runs to the end when waited for' '
	PROJSTORE_GLUSTER_FINI_WAIT=-1 PROJSTORE_GLUSTER_LOG="$TRASH/gfapi.log" \
		gps snapshots proj >/dev/null &&
	test_grep "translator unloaded" "$TRASH/gfapi.log"
'

test_expect_success GLUSTERD 'an arbiter volume (replica 2 + arbiter) works the same' '
	gluster_volume_create psa arbiter &&
	UA="gluster://$GL_HOST/psa" &&
	gps init "$UA" &&
	gps save proj src --store "$UA" &&
	gps restore proj r7 --store "$UA" &&
	treecmp --no-atime src r7 &&
	test_path_is_file "$GL_DIR/bricks/psa-1/config" &&
	test_path_is_file "$GL_DIR/bricks/psa-3/config" &&
	test "$(stat -c %s "$GL_DIR/bricks/psa-3/config")" = 0 &&
	no_glusterfs_mount
'

test_expect_success GLUSTERD 'teardown: volumes, glusterd and its processes are gone' '
	ns=$GL_NETNS && gpid=$GL_PID &&
	gluster_stop &&
	! kill -0 "$gpid" 2>/dev/null &&
	GL_NETNS=$ns && test -z "$(gl_ns_pids_)" && GL_NETNS=
'

test_done
