#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'migrate: project ids from directory names and from info.json; invalid, hostile and
duplicate ids fail that directory only, with a clear reason; bad arguments; a project saved by someone
else since its migration is left alone'

mkhome () {
	mkdir -p "$1/sub" && echo "file of $1" >"$1/sub/f.txt"
}

test_expect_success 'setup' '
	ps init &&
	mkdir src &&
	mkhome src/good-1 &&
	mkhome src/good.2_x &&
	mkhome src/Upper &&
	mkhome "src/with space" &&
	mkhome "src/new
line" &&
	mkhome "$(printf "src/bad-\\377")" &&
	mkhome src/-dash &&
	mkhome src/.hidden &&
	mkhome src/lost+found &&
	mkhome "src/$(printf "a%.0s" $(seq 65))" &&
	mkdir outside && mkhome outside/linked &&
	ln -s ../outside/linked src/symlinked &&
	echo file >src/plain-file
'

test_expect_success 'dirname: valid names imported, every invalid one fails with the reason' '
	test_expect_code 3 ps migrate src --json >m.json 2>err &&
	test_json m.json ".projects == 10 and .imported == 2 and .failed == 8 and .ignored == 2" &&
	test_json m.json "[.results[] | select(.status == \"imported\") | .project] | sort ==
		[\"good-1\", \"good.2_x\"]" &&
	test_json m.json "all(.failures[]; (.reason | test(\"not a valid project id\")) and .project == null)" &&
	test_json m.json "[.failures[].dir] | index(\"new\\nline\") != null and index(\"bad-\\\\xff\") != null" &&
	test_json m.json ".ignored_entries | sort == [\"plain-file\", \"symlinked\"]" &&
	test "$(ls "$PROJSTORE_STORE/projects" | sort | tr "\n" " ")" = "good-1 good.2_x "
'

test_expect_success 'text summary: names escaped, one line per failure' '
	rm -rf "$PROJSTORE_CACHE_DIR/migrate" &&
	test_expect_code 3 ps migrate src >out 2>err &&
	test_grep "^failed (8):" out &&
	test_grep "new\\\\x0aline" out &&
	test "$(grep -c "^  .bad-" out)" = 1 &&
	test_grep "2 entries of src are not directories and were ignored" out &&
	test "$(grep -c "not a valid project id" out)" = 8
'

test_expect_success 'setup: homes named by info.json, good and bad' '
	mkdir info &&
	for d in a b c d e f g h i j; do mkhome info/$d || return 1; done &&
	echo "{\"project_id\": \"11111111-2222-3333-4444-555555555555\", \"title\": \"x\"}" >info/a/info.json &&
	echo "{\"project_id\": \"proj-b\"}" >info/b/info.json &&
	: no info.json in c &&
	echo "{\"project_id\": \"proj-d\"" >info/d/info.json &&
	echo "{\"title\": \"no id\"}" >info/e/info.json &&
	echo "{\"project_id\": 42}" >info/f/info.json &&
	echo "{\"project_id\": \"UPPER-Case\"}" >info/g/info.json &&
	echo "{\"project_id\": \"proj-b\"}" >info/h/info.json &&
	ln -s ../a/info.json info/i/info.json &&
	{ printf "{\"project_id\": \"proj-j\", \"pad\": \"" && head -c 1100000 /dev/zero | tr "\0" x &&
	  printf "\"}"; } >info/j/info.json &&
	echo "[1, 2]" >info/zz-not-a-dir-entry &&
	mkhome info/k && echo "{\"project_id\": \"proj-k\", \"project_id\": \"proj-k2\"}" >info/k/info.json
'

reason_of () {
	jq -r --arg d "$1" ".results[] | select(.dir == \$d) | .reason" mi.json
}

test_expect_success '--id-from info.json: good ids imported, each bad info.json explained' '
	test_expect_code 3 ps migrate info --id-from info.json -j 3 --json >mi.json &&
	test_json mi.json ".imported == 1 and .failed == 10" &&
	test_json mi.json "[.results[] | select(.status == \"imported\") | .project] ==
		[\"11111111-2222-3333-4444-555555555555\"]" &&
	reason_of c | grep "cannot read info.json: No such file" &&
	reason_of d | grep "info.json is not valid JSON" &&
	reason_of e | grep "no string \"project_id\"" &&
	reason_of f | grep "no string \"project_id\"" &&
	reason_of g | grep "invalid project id .UPPER-Case. in info.json" &&
	reason_of b | grep "duplicate project id .proj-b. (also claimed by .h.)" &&
	reason_of h | grep "duplicate project id .proj-b. (also claimed by .b.)" &&
	reason_of i | grep "cannot read info.json: Too many levels of symbolic links" &&
	reason_of j | grep "info.json is larger than" &&
	reason_of k | grep "not valid JSON.*duplicate" &&
	test_path_is_missing "$PROJSTORE_STORE/projects/proj-b" &&
	ps snapshots 11111111-2222-3333-4444-555555555555 --json >s.json &&
	test_json s.json ".snapshots | length == 1"
'

test_expect_success 'bad arguments: usage errors, a missing SRC_ROOT or store, nothing written' '
	test_expect_code 2 ps migrate &&
	test_expect_code 2 ps migrate src other &&
	test_expect_code 2 ps migrate src --id-from uuid &&
	test_expect_code 2 ps migrate src -j 0 &&
	test_expect_code 2 ps migrate src --quota lots &&
	test_expect_code 2 ps migrate src --uid -1 &&
	test_expect_code 1 ps migrate nonexistent 2>err &&
	test_grep "cannot open .nonexistent." err &&
	test_expect_code 1 ps --store "$TRASH/no-store" migrate src 2>err &&
	test_path_is_missing "$TRASH/no-store"
'

test_expect_success 'a project with a pending open is left alone, the catalog unchanged' '
	ps host add h1 --root "$TRASH/h1-root" &&
	ps open good.2_x --host h1 2>/dev/null &&
	echo change >>src/good.2_x/sub/f.txt &&
	test_expect_code 3 ps migrate src --json >mo.json &&
	test_json mo.json "(.results[] | select(.dir == \"good.2_x\")) | .status == \"failed\" and
		(.reason | test(\"operation [0-9]+ \\\\(open\\\\) is pending\"))" &&
	test "$(snap_count good.2_x)" = 1 &&
	ps projects --json >p.json &&
	test_json p.json "(.[] | select(.id == \"good.2_x\")) | (.maintenance | not) and .lease == null"
'

test_expect_success 'a project saved by someone else since its migration is not overwritten' '
	mkhome elsewhere &&
	echo "newer work" >elsewhere/newer.txt &&
	ps save good-1 elsewhere &&
	echo change >>src/good-1/sub/f.txt &&
	test_expect_code 3 ps migrate src --json >m2.json &&
	test_json m2.json "(.results[] | select(.dir == \"good-1\")) | .status == \"failed\" and
		(.reason | test(\"saved since it was migrated\"))" &&
	test_json m2.json "(.results[] | select(.dir == \"good.2_x\")) | .reason | test(\"pending\")" &&
	ps cat good-1 newer.txt >got &&
	echo "newer work" >expect &&
	test_cmp expect got &&
	ps events good-1 --json >ev.json &&
	test_json ev.json ".[0].kind == \"migrate-failed\" and .[0].error"
'

test_done
