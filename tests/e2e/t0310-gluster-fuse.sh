#!/bin/bash
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-gluster.sh"

test_description 'a store in a directory of a FUSE-mounted GlusterFS replica 3 volume works as any
directory does; the same store is also reachable as gluster:// (both ways round)'

prereq_GLUSTERD () { false; }   # set by the setup test once the volume is mounted

gps () { gns timeout -k 10 "$PS_TEST_TIMEOUT" "$PROJSTORE" "$@"; }

test_expect_success GLUSTER 'setup: glusterd, a replica 3 volume, mounted with mount -t glusterfs' '
	test_atexit gluster_stop &&
	gluster_start "$TRASH/gluster" &&
	gluster_volume_create psv replica3 &&
	gluster_mount psv "$TRASH/gmnt" &&
	gluster_mounts >mounts &&
	test_grep " $TRASH/gmnt fuse.glusterfs " mounts &&
	export PROJSTORE_STORE="$TRASH/gmnt/store" &&
	U="gluster://$GL_HOST/psv/store" &&
	test_set_prereq GLUSTERD
'

test_expect_success GLUSTERD 'init on the mount: the store is on every brick' '
	gps init &&
	for b in 1 2 3; do
		test_path_is_file "$GL_DIR/bricks/psv-$b/store/config" || return 1
	done
'

test_expect_success GLUSTERD 'save, a second save, restore both byte-identical' '
	mktree src &&
	gps save proj src --json >s1.json &&
	S1=$(jq -r .snapshot.name s1.json) &&
	gps restore proj r1 &&
	treecmp --no-atime src r1 &&
	head -c 200000 /dev/urandom >src/added &&
	gps save proj src &&
	test "$(gps snapshots proj --json | jq ".snapshots | length")" = 2 &&
	gps restore proj r2 &&
	treecmp --no-atime src r2 &&
	gps restore "proj@$S1" r1b &&
	treecmp --no-atime r1 r1b
'

test_expect_success GLUSTERD 'ls, cat, diff, check --read-data' '
	gps ls proj@latest >ls.out && test_grep added ls.out &&
	gps cat proj@latest added | cmp - src/added &&
	gps diff "proj@$S1" proj@latest >diff.out && test_grep added diff.out &&
	gps check --read-data >check.out &&
	test_grep "no problems found" check.out
'

test_expect_success GLUSTERD 'the same store through libgfapi, both ways round' '
	gps snapshots proj --store "$U" --json >via-gfapi.json &&
	test_json via-gfapi.json ".snapshots | length == 2" &&
	echo via-gfapi >src/via-gfapi &&
	gps save proj src --store "$U" &&
	gps restore proj r3 &&
	treecmp --no-atime src r3 &&
	gps check --read-data --store "$U"
'

test_expect_success GLUSTERD 'prune and gc on the mount' '
	gps prune proj --keep-last 1 &&
	gps gc --grace 0 &&
	test "$(gps snapshots proj --json | jq ".snapshots | length")" = 1 &&
	gps check --read-data &&
	gps restore proj r4 &&
	treecmp --no-atime src r4
'

test_expect_success GLUSTERD,FUSE 'projstore mount of a store on the glusterfs mount' '
	mkdir -p mnt &&
	gps mount proj mnt &&
	wait_for "gns mountpoint -q mnt" 10 &&
	gns "$TOOLS/treecmp" --no-atime src mnt/latest/ &&
	gns fusermount3 -u mnt
'

test_expect_success GLUSTERD 'teardown: the mount, the volume and glusterd are gone' '
	ns=$GL_NETNS && gpid=$GL_PID &&
	gluster_stop &&
	! kill -0 "$gpid" 2>/dev/null &&
	GL_NETNS=$ns && test -z "$(gl_ns_pids_)" && GL_NETNS= &&
	! grep -q glusterfs /proc/mounts
'

test_done
