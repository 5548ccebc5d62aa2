#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'fidelity: a messy tree restores identical (types, modes, owners, times, xattrs,
hardlinks, holes, devices); restore targets; owner mapping; partial restore'

test_expect_success 'setup: store and fixture tree' '
	ps init &&
	mktree src &&
	test -d src/deep &&
	test -p src/special/fifo
'

test_expect_success 'save the fixture' '
	ps save fid src --json >save.json 2>err &&
	test_json save.json ".snapshot.errors == 0" &&
	test_json save.json "(.skipped // []) | length == 0" &&
	test_json save.json ".snapshot.files > 140" &&
	test_json save.json ".snapshot.apparent_bytes > .snapshot.logical_bytes" &&
	S1=$(jq -r .snapshot.name save.json)
'

test_expect_success 'restore into a new directory gives an identical tree' '
	ps restore fid out &&
	treecmp --no-atime src out
'

test_expect_success 'restore into an existing empty directory gives an identical tree' '
	mkdir out-empty &&
	ps restore fid@latest out-empty &&
	treecmp --no-atime --no-root src out-empty
'

test_expect_success 'restore by full snapshot name and with --no-cache' '
	ps restore "fid@$S1" out-named --no-cache &&
	treecmp --no-atime src out-named
'

test_expect_success 'restore into a non-empty directory fails and writes nothing' '
	mkdir -p dest/full &&
	echo keep >dest/full/keep &&
	touch -d "2000-01-01 00:00:00.5" dest/full/keep dest/full &&
	(cd dest && find . -printf "%p %y %s %T@ %m\n" | sort) >before &&
	test_must_fail ps restore fid dest/full 2>err &&
	test -s err &&
	(cd dest && find . -printf "%p %y %s %T@ %m\n" | sort) >after &&
	test_cmp before after
'

test_expect_success 'restore onto an existing file fails and leaves it alone' '
	echo precious >dest/file &&
	cp dest/file expect &&
	test_must_fail ps restore fid dest/file &&
	test_cmp expect dest/file &&
	test "$(ls -A dest | sort | tr "\n" " ")" = "file full "
'

test_expect_success 'a missing snapshot or project gives exit 7 and no target' '
	test_expect_code 7 ps restore fid@1999 out-none &&
	test_expect_code 7 ps restore nosuchproject out-none &&
	test_path_is_missing out-none
'

test_expect_success 'save with --uid/--gid stores every owner as given' '
	ps save fid-owned src --uid 1001 --gid 1001 &&
	ps ls fid-owned --json >ls.json &&
	test_json ls.json "[.entries[] | .uid == 1001 and .gid == 1001] | all" &&
	ps ls fid-owned own --json >ls.json &&
	test_json ls.json "[.entries[] | .uid == 1001 and .gid == 1001] | all"
'

test_expect_success ROOT 'restore of a --uid/--gid snapshot gives those owners' '
	ps restore fid-owned out-owned &&
	(cd out-owned && find . -mindepth 1 \( ! -uid 1001 -o ! -gid 1001 \) -printf "%p %U:%G\n") >wrong &&
	test_must_be_empty wrong &&
	treecmp --no-atime --no-owner src out-owned
'

test_expect_success ROOT 'restore --uid/--gid maps every owner' '
	ps restore fid out-mapped --uid 2000 --gid 2000 &&
	(cd out-mapped && find . -mindepth 1 \( ! -uid 2000 -o ! -gid 2000 \) -printf "%p %U:%G\n") >wrong &&
	test_must_be_empty wrong &&
	treecmp --no-atime --no-owner src out-mapped
'

test_expect_success ROOT 'setuid/setgid bits survive owner mapping' '
	test "$(stat -c %a out-mapped/modes/m4755)" = 4755 &&
	test "$(stat -c %a out-mapped/modes/m2755)" = 2755 &&
	test "$(stat -c %a out-mapped/own/setuid-1001)" = 4755
'

test_expect_success 'partial restore of paths into an existing directory' '
	mkdir -p part/a &&
	echo other >part/other &&
	echo stale >part/text.txt &&
	echo "not in the snapshot" >part/a/mine &&
	ps restore fid part text.txt a/b names hard &&
	echo other >expect && test_cmp expect part/other &&
	echo "not in the snapshot" >expect && test_cmp expect part/a/mine &&
	cmp src/text.txt part/text.txt &&
	test "$(stat -c %Y.%y src/text.txt)" = "$(stat -c %Y.%y part/text.txt)" &&
	treecmp --no-atime src/a/b part/a/b &&
	treecmp --no-atime src/names part/names &&
	treecmp --no-atime src/hard part/hard &&
	test_path_is_missing part/a/file &&
	test_path_is_missing part/big.random &&
	test_path_is_missing part/deep
'

test_expect_success 'partial restore of a single file and of a symlink' '
	mkdir part-file &&
	ps restore fid part-file big.random links/relative &&
	cmp src/big.random part-file/big.random &&
	test "$(readlink part-file/links/relative)" = ../text.txt &&
	test_path_is_missing part-file/links/dangling
'

test_expect_success 'partial restore of a nested path whose parents are missing' '
	mkdir part-nested &&
	ps restore fid part-nested deep/level-01/level-02 &&
	treecmp --no-atime src/deep/level-01/level-02 part-nested/deep/level-01/level-02
'

test_expect_success 'partial restore of a missing path exits 7 and changes nothing' '
	mkdir part-missing &&
	echo x >part-missing/x &&
	test_expect_code 7 ps restore fid part-missing no/such/path &&
	test "$(ls -A part-missing)" = x
'

test_expect_success 'a file rewritten with the same size and mtime is saved anew' '
	cp -a src src2 &&
	ps save fid2 src2 &&
	old_mtime=$(stat -c %y src2/small.bin) &&
	head -c 3000 /dev/urandom >new.bin &&
	cat new.bin >src2/small.bin &&
	touch -d "$old_mtime" src2/small.bin &&
	ps save fid2 src2 &&
	ps cat fid2 small.bin >actual &&
	cmp new.bin actual
'

test_expect_success 'a second save of a modified tree restores identical' '
	echo appended >>src2/text.txt &&
	rm src2/hard/a-same-dir &&
	mkdir src2/newdir && echo new >src2/newdir/new &&
	chmod 0700 src2/a &&
	ps save fid2 src2 &&
	ps restore fid2 out2 &&
	treecmp --no-atime src2 out2
'

test_expect_success 'the first snapshot still restores identical after later saves' '
	ps restore "fid@$S1" out-again &&
	treecmp --no-atime src out-again
'

test_expect_success 'check --read-data finds nothing wrong' '
	ps check --read-data
'

test_done
