#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'hostile snapshots: crafted names and deep trees are rejected by restore without writing outside the target'

HELPER=$TOOLS/ps-testhelper

test_expect_success 'setup' '
	ps init &&
	mkdir -p victim/inside &&
	echo keep >victim/inside/keep.txt
'

for name in "../escape" ".." "." "a/b" "/abs"; do
	test_expect_success "a tree entry named '$name' is refused with exit 8, nothing written" '
		rm -rf out victim/escape escape &&
		"$HELPER" hostile "$PROJSTORE_STORE" evil "$name" >snap.txt &&
		test_expect_code 8 ps restore evil@$(cat snap.txt) out 2>err &&
		test_grep -i "hostile" err &&
		test_path_is_missing out &&
		test_path_is_missing escape &&
		test_path_is_missing ../escape &&
		test_expect_code 8 ps ls evil@$(cat snap.txt) 2>err &&
		test_expect_code 8 ps check evil >out.txt 2>&1 &&
		test_grep -i "hostile" out.txt
	'
done

test_expect_success 'an entry with control bytes and newlines in its name is fine (it is a valid name)' '
	name=$(printf "new\nline\001ctl") &&
	"$HELPER" hostile "$PROJSTORE_STORE" odd "$name" >snap.txt &&
	ps restore odd out-odd &&
	test -f "out-odd/$name" &&
	ps ls odd >ls.txt &&
	test_grep -F "new\\x0aline\\x01ctl" ls.txt
'

test_expect_success 'restore never follows a symlink planted in an existing target (PATH restore)' '
	mkdir -p proj/dir && echo data >proj/dir/file &&
	ps save good proj &&
	mkdir -p tgt outside &&
	ln -s ../outside tgt/dir &&
	test_must_fail ps restore good tgt dir/file 2>err &&
	test_path_is_missing outside/file
'

test_expect_success 'a snapshot of 3000 nested directories restores, checks and diffs' '
	"$HELPER" deep "$PROJSTORE_STORE" deep 3000 >snap.txt &&
	ps check deep &&
	ps restore deep out-deep &&
	test "$(find out-deep -name f | wc -l)" = 1 &&
	ps stats deep &&
	"$HELPER" deep "$PROJSTORE_STORE" deeper 5000 >snap.txt &&
	test_expect_code 8 ps restore deeper out-deeper 2>err &&
	test_grep "nesting" err &&
	test_path_is_missing out-deeper &&
	test_expect_code 8 ps check deeper
'

test_done
