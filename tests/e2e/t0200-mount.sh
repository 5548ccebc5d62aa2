#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'mount: every snapshot of a project as a read-only FUSE file system; identical
content and metadata, hardlinks as one inode, new snapshots without remounting, damaged data as
EIO for the affected file only, clean unmount'

# mount_start PROJECT DIR [options]: serves the mount from a background job of
# this shell (in the foreground mode, so that its PID is known) and waits until
# it is mounted. Sets MOUNT_PID.
mount_start () {
	local proj=$1 mnt=$TRASH/$2
	shift 2
	mkdir -p "$mnt" || return 1
	"$PROJSTORE" mount "$proj" "$mnt" --foreground "$@" 2>>"$TRASH/mount-$proj.log" &
	MOUNT_PID=$!
	test_atexit "kill $MOUNT_PID; fusermount3 -u -z '$mnt'"
	wait_for "mountpoint -q '$mnt' || ! kill -0 $MOUNT_PID 2>/dev/null" 10 &&
	mountpoint -q "$mnt"
}

# mount_stop DIR: unmounts with fusermount3 -u; the server must exit with 0.
# (a mount a moment ago in use - a finished find or treecmp - can still be
# busy for the kernel on a loaded machine: the unmount is retried then)
mount_stop () {
	local i
	for i in $(seq 1 50); do
		fusermount3 -u "$TRASH/$1" 2>"$TRASH/.umount.err" && break
		if ! grep -qi busy "$TRASH/.umount.err"; then
			cat "$TRASH/.umount.err" >&4
			return 1
		fi
		sleep 0.2
	done
	wait_for "! kill -0 $MOUNT_PID 2>/dev/null" 30 || { echo >&4 "mount server still running"; return 1; }
	wait "$MOUNT_PID" || { echo >&4 "mount server exited with $?"; return 1; }
	! mountpoint -q "$TRASH/$1"
}

largest_pack () {
	find "${1:-$PROJSTORE_STORE}/packs" -type f -name '*.pack' -printf '%s %p\n' |
	sort -n | tail -n 1 | cut -d' ' -f2-
}

flip_byte () {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ') &&
	printf "$(printf '\\%03o' $((b ^ 255)))" |
	dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

test_expect_success 'setup: a store with the fixture tree saved' '
	ps init &&
	mktree src &&
	ps save proj src --json >save.json &&
	S1=$(jq -r .snapshot.name save.json)
'

test_expect_success 'mount of a missing project exits 7 and mounts nothing' '
	mkdir -p none &&
	test_expect_code 7 ps mount nosuchproject none --foreground 2>err &&
	test_grep nosuchproject err &&
	! mountpoint -q none &&
	test_expect_code 1 ps mount proj no/such/dir 2>err &&
	test_expect_code 2 ps mount proj 2>err
'

test_expect_success FUSE 'mount shows one directory per snapshot and latest' '
	mount_start proj mnt &&
	ls mnt >actual &&
	printf "%s\n" "$S1" latest >expect &&
	test_cmp expect actual &&
	test "$(readlink mnt/latest)" = "$S1" &&
	test -d mnt/latest/ &&
	grep -q " $TRASH/mnt fuse.projstore ro," /proc/mounts
'

test_expect_success FUSE 'latest is identical to the saved tree (content, metadata, xattrs, holes)' '
	treecmp --no-atime src mnt/latest/ &&
	treecmp --no-atime src "mnt/$S1" &&
	cmp src/big.random mnt/latest/big.random &&
	cmp src/sparse/islands mnt/latest/sparse/islands
'

test_expect_success FUSE 'hardlinks are one inode with the right link count; directories count subdirectories' '
	i1=$(stat -c %i mnt/latest/hard/a) &&
	test "$(stat -c %i mnt/latest/hard/a-same-dir)" = "$i1" &&
	test "$(stat -c %i mnt/latest/hard/sub/a-other-dir)" = "$i1" &&
	test "$(stat -c %h mnt/latest/hard/a)" = 3 &&
	test "$(stat -c %h mnt/latest/hard2/y)" = 2 &&
	test "$(stat -c %i mnt/latest/hard/x)" = "$(stat -c %i mnt/latest/hard2/y)" &&
	test "$(stat -c %i mnt/latest/dup/one/data)" != "$(stat -c %i mnt/latest/dup/two/data)" &&
	test "$(stat -c %h mnt/latest/a)" = "$(stat -c %h src/a)" &&
	test "$(stat -c %h mnt/latest/)" = "$(stat -c %h src)" &&
	test "$(stat -c %F mnt/latest/special/fifo)" = fifo &&
	INO=$(stat -c %i "mnt/$S1/few-kb.bin")
'

test_expect_success FUSE 'the mount is read-only' '
	test_must_fail touch mnt/latest/new-file 2>err &&
	test_must_fail sh -c "echo x >>mnt/latest/text.txt" 2>err &&
	test_grep -i "read-only" err &&
	test_must_fail rm mnt/latest/one-byte 2>err &&
	test_must_fail mkdir mnt/new-dir 2>err &&
	cmp src/one-byte mnt/latest/one-byte
'

test_expect_success FUSE 'a new save appears without remounting' '
	echo "second version" >src/added.txt &&
	ps save proj src --json >save2.json &&
	S2=$(jq -r .snapshot.name save2.json) &&
	test -d "mnt/$S2" &&
	echo "second version" >expect &&
	test_cmp expect "mnt/$S2/added.txt" &&
	wait_for "test \"\$(readlink mnt/latest)\" = $S2" 5 &&
	test_cmp expect mnt/latest/added.txt &&
	wait_for "ls mnt | grep -qx $S2" 5 &&
	printf "%s\n" "$S1" "$S2" latest >expect &&
	ls mnt >actual &&
	test_cmp expect actual &&
	test_path_is_missing "mnt/$S1/added.txt" &&
	treecmp --no-atime src "mnt/$S2"
'

test_expect_success FUSE 'unmount with fusermount3 -u: the server exits with 0' '
	mount_stop mnt
'

test_expect_success FUSE '--uid/--gid show every entry as owned by them; inode numbers survive a remount; SIGTERM unmounts' '
	mount_start proj mnt-owned --uid 1234 --gid 4321 &&
	(cd mnt-owned/latest/ && find . \( ! -uid 1234 -o ! -gid 4321 \) -printf "%p %U:%G\n") >wrong &&
	test_must_be_empty wrong &&
	treecmp --no-atime --no-owner src mnt-owned/latest/ &&
	test "$(stat -c %i "mnt-owned/$S1/few-kb.bin")" = "$INO" &&
	kill -TERM $MOUNT_PID &&
	wait_for "! kill -0 $MOUNT_PID 2>/dev/null" 10 &&
	wait $MOUNT_PID &&
	! mountpoint -q mnt-owned
'

test_expect_success FUSE 'without --foreground the mount goes into the background' '
	mkdir -p mnt-bg &&
	ps mount proj mnt-bg 2>err &&
	test_atexit "fusermount3 -u -z $TRASH/mnt-bg" &&
	mountpoint -q mnt-bg &&
	cmp src/text.txt mnt-bg/latest/text.txt &&
	fusermount3 -u mnt-bg &&
	! mountpoint -q mnt-bg
'

test_expect_success FUSE 'a damaged pack: EIO for the affected file only, everything else reads' '
	export PROJSTORE_STORE=$TRASH/store-damaged &&
	ps init --compression none &&
	mkdir -p victim/sub &&
	random_file victim/big.bin 4096 &&
	echo small >victim/small.txt &&
	echo "in sub" >victim/sub/file.txt &&
	ps save victim victim &&
	pack=$(largest_pack) &&
	size=$(stat -c %s "$pack") &&
	test "$size" -gt 4000000 &&
	chmod u+w "$pack" &&
	flip_byte "$pack" $((size / 2)) &&
	mount_start victim mnt-damaged &&
	test_must_fail cat mnt-damaged/latest/big.bin >/dev/null 2>err &&
	test_grep "Input/output error" err &&
	test "$(stat -c %s mnt-damaged/latest/big.bin)" = 4194304 &&
	cmp victim/small.txt mnt-damaged/latest/small.txt &&
	cmp victim/sub/file.txt mnt-damaged/latest/sub/file.txt &&
	ls mnt-damaged/latest >actual &&
	printf "%s\n" big.bin small.txt sub >expect &&
	test_cmp expect actual &&
	test_must_fail cat mnt-damaged/latest/big.bin >/dev/null 2>err &&
	test_grep -i "damaged\|checksum\|corrupt\|verif" "$TRASH/mount-victim.log" &&
	mount_stop mnt-damaged
'

test_done
