#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'browsing: snapshots with ages, ls, ls --json, cat, diff, snapshot prefixes and latest'

# Normalizes the changes of a diff --json document to "change path type"
# lines (leading "/" or "./" of paths removed), sorted.
diff_lines () {
	jq -r '.changes[] | "\(.change) \(.path | sub("^\\./"; "") | sub("^/"; "")) \(.type)"' "$1" | sort
}

test_expect_success 'setup: two snapshots with changes between them' '
	ps init &&
	mkdir -p proj/sub proj/olddir/inner proj/keep &&
	printf "alpha\n" >proj/a.txt &&
	random_file proj/big.bin 3072 &&
	printf "b version 1\n" >proj/sub/b.txt &&
	printf "c\n" >proj/sub/c.txt &&
	printf "old\n" >proj/olddir/inner/old.txt &&
	printf "same\n" >proj/keep/same.txt &&
	ln -s a.txt proj/link &&
	touch -d "2001-02-03 04:05:06.123456789" proj/a.txt &&
	chmod 0640 proj/a.txt &&
	ps save browse proj --json >s1.json &&
	S1=$(jq -r .snapshot.name s1.json) &&
	cp -a proj proj-v1 &&

	sleep 0.01 &&
	printf "b version 2\n" >proj/sub/b.txt &&
	rm proj/sub/c.txt &&
	rm -r proj/olddir &&
	printf "new\n" >proj/new.txt &&
	mkdir proj/newdir &&
	chmod 0600 proj/keep/same.txt &&
	ps save browse proj --json >s2.json &&
	S2=$(jq -r .snapshot.name s2.json) &&
	test "$S1" != "$S2"
'

test_expect_success 'snapshots lists both with their ages' '
	ps snapshots browse --json >snaps.json &&
	test_json snaps.json ".snapshots | length == 2" &&
	test_json snaps.json ".snapshots[0].name == \"$S1\" and .snapshots[1].name == \"$S2\"" &&
	test_json snaps.json "[.snapshots[] | .age | test(\"ago|now|second\")] | all" &&
	test_json snaps.json "[.snapshots[] | .time | test(\"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2})$\")] | all" &&
	ps snapshots browse >human &&
	test_grep -F "$S1" human &&
	test_grep -F "$S2" human &&
	test_grep -E "ago|now" human
'

test_expect_success 'ls shows the entries of the root' '
	ps ls browse >human &&
	for n in a.txt big.bin sub keep link new.txt newdir; do
		test_grep -F "$n" human || return 1
	done &&
	! grep -F olddir human
'

test_expect_success 'ls --json describes names, types, modes, sizes, times and targets' '
	ps ls browse --json >ls.json &&
	jq -r ".entries[].name" ls.json | sort >actual &&
	printf "%s\n" a.txt big.bin keep link new.txt newdir sub | sort >expect &&
	test_cmp expect actual &&
	test_json ls.json "(.entries[] | select(.name == \"a.txt\")) | .type == \"file\" and .size == 6 and .uid == $(id -u) and .gid == $(id -g)" &&
	test_json ls.json "(.entries[] | select(.name == \"a.txt\")) | .mtime | test(\"2001-02-03T04:05:06\\\\.123456789\")" &&
	mode=$(jq -r ".entries[] | select(.name == \"a.txt\") | .mode" ls.json) &&
	test $((8#$mode)) = $((8#640)) &&
	test_json ls.json "(.entries[] | select(.name == \"big.bin\")) | .type == \"file\" and .size == 3145728" &&
	test_json ls.json "(.entries[] | select(.name == \"sub\")) | .type == \"dir\"" &&
	test_json ls.json "(.entries[] | select(.name == \"link\")) | .type == \"symlink\" and .target == \"a.txt\""
'

test_expect_success 'ls of a subdirectory, of an old snapshot, and -l' '
	ps ls browse sub --json >ls.json &&
	test "$(jq -r "[.entries[].name] | join(\",\")" ls.json)" = b.txt &&
	ps ls "browse@$S1" sub --json >ls.json &&
	test "$(jq -r "[.entries[].name] | sort | join(\",\")" ls.json)" = b.txt,c.txt &&
	ps ls "browse@$S1" olddir/inner --json >ls.json &&
	test "$(jq -r "[.entries[].name] | join(\",\")" ls.json)" = old.txt &&
	ps ls -l browse sub >human &&
	test_grep -F b.txt human
'

test_expect_success 'ls of a missing path exits 7' '
	test_expect_code 7 ps ls browse no/such/dir &&
	test_expect_code 7 ps ls browse olddir
'

test_expect_success 'cat gives the bytes of a file, also a multi-MB binary one' '
	ps cat browse a.txt >actual &&
	test_cmp proj/a.txt actual &&
	ps cat browse big.bin >actual &&
	cmp proj/big.bin actual &&
	ps cat "browse@$S1" sub/b.txt >actual &&
	test_cmp proj-v1/sub/b.txt actual &&
	ps cat browse sub/b.txt >actual &&
	test_cmp proj/sub/b.txt actual &&
	ps cat "browse@$S1" olddir/inner/old.txt >actual &&
	test_cmp proj-v1/olddir/inner/old.txt actual
'

test_expect_success 'cat of a missing path exits 7' '
	test_expect_code 7 ps cat browse no-such-file >out &&
	test_must_be_empty out &&
	test_expect_code 7 ps cat browse sub/c.txt &&
	test_expect_code 7 ps cat browse sub/nope/deeper
'

test_expect_success 'cat of a directory fails' '
	test_must_fail ps cat browse sub >out
'

test_expect_success 'diff lists added, removed and modified paths exactly' '
	ps diff "browse@$S1" "browse@$S2" --json >diff.json &&
	test_json diff.json ".a | startswith(\"$S1\") or . == \"browse@$S1\"" &&
	diff_lines diff.json >all &&
	cat >expect <<-\EOF &&
	added new.txt file
	added newdir dir
	modified keep/same.txt file
	modified sub/b.txt file
	removed olddir dir
	removed sub/c.txt file
	EOF
	# entries the contract leaves open: children of added/removed
	# directories and the directories containing changes
	grep -v -E "^(removed olddir/|modified (sub|keep|\\.?) dir$)" all >actual &&
	test_cmp expect actual &&
	# whatever else is listed must be consistent
	! grep -E "^(added|modified) olddir/" all &&
	! grep -E "a\\.txt|big\\.bin|link" all
'

test_expect_success 'diff without --json names the changed paths' '
	ps diff "browse@$S1" "browse@$S2" >human &&
	for p in new.txt newdir keep/same.txt sub/b.txt olddir sub/c.txt; do
		test_grep -F "$p" human || return 1
	done &&
	! grep -F a.txt human
'

test_expect_success 'diff the other way round swaps added and removed' '
	ps diff "browse@$S2" "browse@$S1" --json >diff.json &&
	diff_lines diff.json | grep -E " (new\\.txt|sub/c\\.txt|olddir|newdir) " >actual &&
	cat >expect <<-\EOF &&
	added olddir dir
	added sub/c.txt file
	removed new.txt file
	removed newdir dir
	EOF
	test_cmp expect actual
'

test_expect_success 'diff of a snapshot with itself is empty' '
	ps diff "browse@$S2" "browse@$S2" --json >diff.json &&
	test_json diff.json ".changes == []"
'

test_expect_success 'a unique prefix selects a snapshot' '
	p1=${S1%??????????} &&
	case $S2 in "$p1"*) echo "prefix not unique"; return 1 ;; esac &&
	ps cat "browse@$p1" sub/c.txt >actual &&
	test_cmp proj-v1/sub/c.txt actual &&
	ps ls "browse@$p1" --json >ls.json &&
	jq -e "[.entries[].name] | index(\"olddir\") != null" ls.json &&
	ps diff "browse@$p1" browse@latest --json >diff.json &&
	test_json diff.json "[.changes[].path | sub(\"^/\"; \"\")] | index(\"new.txt\") != null"
'

test_expect_success 'latest is the newest snapshot and the default' '
	ps cat browse@latest sub/b.txt >actual &&
	test_cmp proj/sub/b.txt actual &&
	ps ls browse@latest --json >a.json &&
	ps ls browse --json >b.json &&
	ps ls "browse@$S2" --json >c.json &&
	test_cmp a.json b.json &&
	test_cmp a.json c.json
'

test_expect_success 'an ambiguous prefix fails clearly' '
	common=${S1:0:4} &&
	case $S2 in "$common"*) ;; *) echo "no common prefix"; return 1 ;; esac &&
	test_must_fail ps cat "browse@$common" a.txt >out 2>err &&
	test_must_be_empty out &&
	test_grep -i ambiguous err
'

test_expect_success 'an unknown snapshot exits 7' '
	test_expect_code 7 ps cat browse@1999-01-01 a.txt 2>err &&
	test -s err &&
	test_expect_code 7 ps ls browse@ffffffff &&
	test_expect_code 7 ps diff browse@1999 browse@latest &&
	test_expect_code 7 ps restore browse@1999 never &&
	test_path_is_missing never
'

test_expect_success 'an unknown project exits 7' '
	test_expect_code 7 ps ls nosuch &&
	test_expect_code 7 ps cat nosuch a.txt &&
	test_expect_code 7 ps cat nosuch@latest a.txt
'

test_done
