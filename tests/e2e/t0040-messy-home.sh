#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'messy home directories: excludes, stored exclude lists, one filesystem,
unreadable entries, dead mounts, sockets, huge sparse files'

# Sorted list of every path below a directory.
listing () { (cd "$1" && find . -mindepth 1 -printf '%P\n' | sort); }

test_expect_success 'setup' '
	ps init &&
	mkdir -p home/node_modules/pkg home/src/app/node_modules/dep home/deep/x/y \
		home/build home/src/build home/docs/private home/logs home/tmp home/src/tmp &&
	echo a >home/a.txt &&
	echo js >home/node_modules/pkg/index.js &&
	echo js >home/src/app/node_modules/dep/x.js &&
	echo c >home/src/main.c &&
	echo o >home/src/main.o &&
	echo o >home/deep/x/y/z.o &&
	echo bin >home/build/out.bin &&
	echo keep >home/src/build/keep.txt &&
	echo secret >home/docs/private/secret.txt &&
	echo public >home/docs/public.txt &&
	echo log >home/logs/app.log &&
	echo log >home/top.log &&
	echo tmp >home/tmp/t &&
	echo tmp >home/src/tmp/t
'

test_expect_success 'save --exclude: names at any depth and anchored paths' '
	ps save ex home --exclude node_modules --exclude "*.o" --exclude /build \
		--exclude docs/private &&
	ps restore ex out1 &&
	listing out1 >actual &&
	cat >expect <<-\EOF &&
	a.txt
	deep
	deep/x
	deep/x/y
	docs
	docs/public.txt
	logs
	logs/app.log
	src
	src/app
	src/build
	src/build/keep.txt
	src/main.c
	src/tmp
	src/tmp/t
	tmp
	tmp/t
	top.log
	EOF
	test_cmp expect actual
'

test_expect_success 'excluded entries do not show in ls' '
	ps ls ex --json >ls.json &&
	! jq -e "[.entries[].name] | index(\"node_modules\")" ls.json &&
	! jq -e "[.entries[].name] | index(\"build\")" ls.json &&
	ps ls ex src --json >ls.json &&
	jq -e "[.entries[].name] | index(\"build\")" ls.json
'

test_expect_success 'the stored exclude list is shown and used by save' '
	ps exclude ex "*.log" tmp &&
	ps exclude ex >shown &&
	test_grep -x -F "*.log" shown &&
	test_grep -x -F tmp shown &&
	test_line_count = 2 shown &&
	ps save ex home &&
	ps restore ex out2 &&
	listing out2 >actual &&
	cat >expect <<-\EOF &&
	a.txt
	build
	build/out.bin
	deep
	deep/x
	deep/x/y
	deep/x/y/z.o
	docs
	docs/private
	docs/private/secret.txt
	docs/public.txt
	logs
	node_modules
	node_modules/pkg
	node_modules/pkg/index.js
	src
	src/app
	src/app/node_modules
	src/app/node_modules/dep
	src/app/node_modules/dep/x.js
	src/build
	src/build/keep.txt
	src/main.c
	src/main.o
	EOF
	test_cmp expect actual
'

test_expect_success 'stored and command line excludes add up' '
	ps save ex home --exclude node_modules &&
	ps restore ex out3 &&
	listing out3 >actual &&
	! grep -E "node_modules|\\.log$|(^|/)tmp(/|$)" actual &&
	grep -x src/main.o actual
'

test_expect_success 'exclude --clear empties the stored list' '
	ps exclude ex --clear &&
	ps exclude ex >shown &&
	test_must_be_empty shown &&
	ps save ex home &&
	ps restore ex out4 &&
	listing out4 >actual &&
	listing home >expect &&
	test_cmp expect actual
'

test_expect_success 'exclude with an invalid project exits 2' '
	test_expect_code 2 ps exclude Bad "*.o"
'

test_expect_success MOUNT 'setup: a tmpfs mounted inside the project' '
	mkdir -p fs/mnt/below fs/sub &&
	echo outside >fs/sub/outside.txt &&
	mount -t tmpfs -o size=16m,mode=0755 projstore-test fs/mnt &&
	test_atexit "umount -l \"$TRASH/fs/mnt\"" &&
	mkdir fs/mnt/d &&
	echo inside >fs/mnt/file &&
	echo deeper >fs/mnt/d/deeper
'

test_expect_success MOUNT 'save stays on one filesystem; the mount point is an empty dir' '
	ps save onefs fs &&
	ps ls onefs --json >ls.json &&
	test_json ls.json "(.entries[] | select(.name == \"mnt\")) | .type == \"dir\"" &&
	ps ls onefs mnt --json >ls.json &&
	test_json ls.json ".entries == []" &&
	ps restore onefs out-onefs &&
	test_path_is_dir out-onefs/mnt &&
	test_dir_is_empty out-onefs/mnt &&
	echo outside >expect &&
	test_cmp expect out-onefs/sub/outside.txt
'

test_expect_success MOUNT 'save --cross-filesystems descends into the mount' '
	ps save onefs fs --cross-filesystems &&
	ps cat onefs mnt/file >actual &&
	echo inside >expect &&
	test_cmp expect actual &&
	ps restore onefs out-cross &&
	echo deeper >expect &&
	test_cmp expect out-cross/mnt/d/deeper
'

test_expect_success MOUNT 'cleanup: unmount the tmpfs' '
	umount fs/mnt
'

test_expect_success 'a unix socket is recorded and does not fail the save' '
	mkdir -p sockdir &&
	echo x >sockdir/file &&
	python3 -c "import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" sockdir/sock &&
	test -S sockdir/sock &&
	ps save sock sockdir &&
	ps ls sock --json >ls.json &&
	test_json ls.json "(.entries[] | select(.name == \"sock\")) | .type == \"socket\""
'

test_expect_success 'a huge sparse file is saved and restored quickly' '
	mkdir -p sparse &&
	truncate -s 64G sparse/huge &&
	printf "data in the middle" | dd of=sparse/huge bs=1 seek=$((32 * 1024 * 1024 * 1024)) conv=notrunc status=none &&
	PS_TEST_TIMEOUT=30 ps save sparse sparse --json >s.json &&
	test_json s.json ".snapshot.apparent_bytes == 64 * 1024 * 1024 * 1024" &&
	test_json s.json ".snapshot.logical_bytes < 1024 * 1024" &&
	PS_TEST_TIMEOUT=30 ps restore sparse out-sparse &&
	treecmp --no-atime sparse out-sparse &&
	test "$(du -k out-sparse/huge | cut -f1)" -lt 1024
'

# ---------------------------------------------------- unreadable entries

U=$TRASH/nobody

# Runs projstore as an unprivileged user (nobody when we are root), with a
# store of its own.
ps_nobody () {
	if test_have_prereq ROOT; then
		as_nobody env HOME="$U" PROJSTORE_STORE="$U/store" PROJSTORE_CACHE_DIR="$U/cache" \
			timeout -k 10 "$PS_TEST_TIMEOUT" "$PROJSTORE" "$@"
	else
		env HOME="$U" PROJSTORE_STORE="$U/store" PROJSTORE_CACHE_DIR="$U/cache" \
			timeout -k 10 "$PS_TEST_TIMEOUT" "$PROJSTORE" "$@"
	fi
}

prereq_UNPRIV () { ! prereq_ROOT || prereq_SETPRIV; }

test_expect_success UNPRIV 'setup: a project with unreadable entries, saved by an unprivileged user' '
	chmod 0755 "$TRASH" &&
	mkdir -p "$U/proj/sub" "$U/proj/lockeddir" &&
	echo ok >"$U/proj/ok.txt" &&
	echo ok2 >"$U/proj/sub/ok2.txt" &&
	echo secret >"$U/proj/secret" &&
	echo hidden >"$U/proj/lockeddir/hidden" &&
	if test_have_prereq ROOT; then chown -R nobody "$U"; fi &&
	chmod 0000 "$U/proj/secret" "$U/proj/lockeddir" &&
	if test_have_prereq ROOT; then
		! as_nobody cat "$U/proj/secret" 2>/dev/null
	else
		! cat "$U/proj/secret" 2>/dev/null
	fi &&
	ps_nobody init
'

test_expect_success UNPRIV 'unreadable entries: exit 3, listed on stderr, snapshot written' '
	test_expect_code 3 ps_nobody save unread "$U/proj" --json >save.json 2>err &&
	test_grep secret err &&
	test_grep lockeddir err &&
	test_json save.json ".snapshot.errors >= 2" &&
	test_json save.json "[.skipped[].path | sub(\"^/\"; \"\")] | (index(\"secret\") != null)" &&
	test_json save.json "[.skipped[].path | sub(\"^/\"; \"\")] | any(startswith(\"lockeddir\"))" &&
	test_json save.json "[.skipped[].error | type == \"string\" and length > 0] | all" &&
	test "$(ps_nobody snapshots unread --json | jq ".snapshots | length")" = 1
'

test_expect_success UNPRIV 'unreadable entries are recorded as error entries' '
	ps_nobody ls unread --json >ls.json &&
	test_json ls.json "(.entries[] | select(.name == \"secret\")) | .type == \"error\" and (.error | length > 0)" &&
	test_json ls.json "[.entries[] | select(.name == \"ok.txt\" or .name == \"sub\")] | length == 2"
'

test_expect_success UNPRIV 'everything else restores' '
	ps_nobody restore unread "$U/out" &&
	echo ok >expect &&
	test_cmp expect "$U/out/ok.txt" &&
	echo ok2 >expect &&
	test_cmp expect "$U/out/sub/ok2.txt" &&
	ps_nobody cat unread ok.txt >actual &&
	echo ok >expect &&
	test_cmp expect actual
'

test_expect_success UNPRIV 'unreadable entries and over quota: exit 5' '
	ps_nobody quota unread 1 &&
	test_expect_code 5 ps_nobody save unread "$U/proj" --json >save.json 2>err &&
	test_json save.json ".snapshot.over_quota == true and .snapshot.errors >= 2"
'

# ----------------------------------------------------------- dead mounts

test_expect_success FUSE 'setup: a dead FUSE mount inside a project' '
	mkdir -p dead/net dead/sub &&
	echo a >dead/a.txt &&
	echo b >dead/sub/b.txt &&
	deadfs_start dead/net &&
	test_atexit "umount -l \"$TRASH/dead/net\"" &&
	cat dead/net/file >/dev/null &&
	deadfs_kill &&
	! stat dead/net 2>err &&
	test_grep -i "not connected" err
'

test_expect_success FUSE 'a dead mount: save exits 3 and saves the rest' '
	test_expect_code 3 ps save dead dead --json >save.json 2>err &&
	test_grep net err &&
	test_json save.json ".snapshot.errors >= 1" &&
	test_json save.json "[.skipped[].path | sub(\"^/\"; \"\")] | index(\"net\") != null" &&
	ps ls dead --json >ls.json &&
	test_json ls.json "(.entries[] | select(.name == \"net\")) | .type == \"error\"" &&
	ps restore dead out-dead &&
	echo a >expect && test_cmp expect out-dead/a.txt &&
	echo b >expect && test_cmp expect out-dead/sub/b.txt
'

test_expect_success FUSE 'a dead mount with --cross-filesystems: exit 3 as well' '
	test_expect_code 3 ps save dead dead --cross-filesystems 2>err &&
	test_grep net err
'

test_expect_success FUSE 'a dead mount and over quota: exit 5' '
	ps quota dead 1 &&
	test_expect_code 5 ps save dead dead
'

test_expect_success FUSE 'cleanup: unmount the dead mount' '
	deadfs_stop dead/net
'

test_done
