#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'incremental saves: the file cache never hides a change (content, metadata,
xattrs, symlinks, deep changes under unchanged directories, changed save options)'

# save_and_compare: saves proj and restores the new snapshot, which must be
# identical to proj.
save_and_compare () {
	ps save inc proj "$@" &&
	rm -rf out &&
	ps restore inc out &&
	treecmp --no-atime proj out
}

test_expect_success 'setup: a tree saved once' '
	ps init &&
	mkdir -p proj/a/b/c proj/d proj/objs/sub &&
	echo one >proj/a/b/c/deep.txt &&
	echo two >proj/a/b/file.txt &&
	echo three >proj/d/file.txt &&
	random_file proj/d/big.bin 3000 &&
	echo obj >proj/objs/x.o &&
	echo obj >proj/objs/sub/y.o &&
	echo src >proj/objs/x.c &&
	ln -s d/file.txt proj/link &&
	save_and_compare
'

test_expect_success 'a deep file rewritten in place (parent directories unchanged)' '
	before=$(stat -c %Y.%y proj/a/b proj/a proj) &&
	echo ONE >proj/a/b/c/deep.txt &&
	test "$(stat -c %Y.%y proj/a/b proj/a proj)" = "$before" &&
	save_and_compare &&
	ps cat inc a/b/c/deep.txt >actual &&
	echo ONE >expect &&
	test_cmp expect actual
'

test_expect_success 'same size, same mtime, new content' '
	t=$(stat -c %y proj/a/b/c/deep.txt) &&
	echo TWO >proj/a/b/c/deep.txt &&
	touch -d "$t" proj/a/b/c/deep.txt &&
	save_and_compare &&
	ps cat inc a/b/c/deep.txt >actual &&
	echo TWO >expect &&
	test_cmp expect actual
'

test_expect_success 'a few bytes changed inside a big file, mtime restored' '
	t=$(stat -c %y proj/d/big.bin) &&
	printf "CHANGED" | dd of=proj/d/big.bin bs=1 seek=1500000 conv=notrunc status=none &&
	touch -d "$t" proj/d/big.bin &&
	save_and_compare
'

test_expect_success 'mode change only' '
	chmod 0600 proj/a/b/file.txt &&
	chmod 0700 proj/a/b/c &&
	save_and_compare
'

test_expect_success XATTR 'xattr change only, on a file and on a directory' '
	t=$(stat -c %y proj/d/file.txt) &&
	setfattr -n user.note -v first proj/d/file.txt &&
	setfattr -n user.dirnote -v first proj/a/b/c &&
	save_and_compare &&
	setfattr -n user.note -v second proj/d/file.txt &&
	setfattr -n user.dirnote -v second proj/a/b/c &&
	test "$(stat -c %y proj/d/file.txt)" = "$t" &&
	save_and_compare &&
	setfattr -x user.note proj/d/file.txt &&
	save_and_compare
'

test_expect_success 'symlink retargeted with the old mtime' '
	t=$(stat -c %y proj/link) &&
	rm proj/link &&
	ln -s a/b/file.txt proj/link &&
	touch -h -d "$t" proj/link &&
	save_and_compare &&
	ps ls inc --json >ls.json &&
	test_json ls.json "(.entries[] | select(.name == \"link\")) | .target == \"a/b/file.txt\""
'

test_expect_success 'a file replaced by another inode with the same size and mtime' '
	t=$(stat -c %y proj/d/file.txt) &&
	echo THREE >proj/d/new &&
	touch -d "$t" proj/d/new &&
	mv -f proj/d/new proj/d/file.txt &&
	save_and_compare
'

test_expect_success 'a directory mtime put back after adding an entry' '
	t=$(stat -c %y proj/a/b/c) &&
	echo added >proj/a/b/c/added.txt &&
	touch -d "$t" proj/a/b/c &&
	save_and_compare
'

test_expect_success 'a new hardlink in another directory' '
	ln proj/a/b/file.txt proj/d/file-link &&
	save_and_compare &&
	rm proj/d/file-link &&
	save_and_compare
'

test_expect_success ROOT 'owner change only' '
	chown 1234:4321 proj/a/b/c/deep.txt proj/a/b &&
	save_and_compare
'

test_expect_success 'an unchanged tree saved with a new exclude pattern' '
	ps save inc proj &&
	ps save inc proj --exclude "*.o" &&
	ps ls inc objs --json >ls.json &&
	test "$(jq -r "[.entries[].name] | sort | join(\",\")" ls.json)" = "sub,x.c" &&
	ps ls inc objs/sub --json >ls.json &&
	test_json ls.json ".entries == []"
'

test_expect_success 'an unchanged tree saved without the exclude pattern again' '
	save_and_compare
'

test_expect_success 'an unchanged tree saved with the stored exclude list changed' '
	ps exclude inc "sub" &&
	ps save inc proj &&
	test_expect_code 7 ps ls inc objs/sub &&
	ps exclude inc --clear &&
	save_and_compare
'

test_expect_success 'an unchanged tree saved with --uid/--gid, then without' '
	ps save inc proj --uid 777 --gid 888 &&
	ps ls inc a/b/c --json >ls.json &&
	test_json ls.json "[.entries[] | .uid == 777 and .gid == 888] | all" &&
	save_and_compare
'

test_expect_success 'a file growing while unchanged otherwise' '
	echo more >>proj/a/b/c/deep.txt &&
	save_and_compare
'

test_expect_success 'a file truncated to zero and a directory emptied' '
	: >proj/d/big.bin &&
	rm -f proj/objs/sub/* &&
	save_and_compare
'

test_expect_success 'every snapshot still restores (check --read-data)' '
	ps check --read-data
'

test_done
