#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'basics: init, save, snapshots, --help, project id validation, usage errors'

commands='init save snapshots ls cat diff restore stats quota check exclude'

test_expect_success '--help of every command exits 0 without a store' '
	for c in $commands; do
		ps $c --help >out 2>err || { echo "$c --help failed"; cat err; return 1; }
		cat out err >both &&
		test -s both || { echo "$c --help printed nothing"; return 1; }
	done &&
	test_path_is_missing "$PROJSTORE_STORE" &&
	test_path_is_missing projstore-data
'

test_expect_success 'init creates a store' '
	ps init >out 2>err &&
	test_path_is_dir "$PROJSTORE_STORE" &&
	test -n "$(ls -A "$PROJSTORE_STORE")"
'

test_expect_success 'init takes the store as argument or --store' '
	ps init "$TRASH/store-arg" &&
	test_path_is_dir "$TRASH/store-arg" &&
	ps --store "$TRASH/store-opt" init &&
	test_path_is_dir "$TRASH/store-opt" &&
	for c in zstd zstd:1 zstd:19 lz4 none; do
		ps init --compression $c "$TRASH/store-$c" || return 1
	done
'

test_expect_success 'init with an invalid compression fails and creates nothing' '
	test_must_fail ps init --compression nosuch "$TRASH/store-bad" &&
	test_path_is_missing "$TRASH/store-bad" &&
	test_must_fail ps init --compression zstd:abc "$TRASH/store-bad2" &&
	test_path_is_missing "$TRASH/store-bad2"
'

test_expect_success 'setup a small project' '
	mkdir -p proj/sub/deeper proj/empty &&
	printf "hello\n" >proj/hello.txt &&
	printf "nested\n" >proj/sub/deeper/nested.txt &&
	random_file proj/sub/random.bin 300 &&
	ln -s hello.txt proj/link
'

test_expect_success 'save writes a snapshot' '
	ps save p1 proj >out 2>err &&
	ps snapshots p1 --json >snaps.json &&
	test_json snaps.json ".project == \"p1\"" &&
	test_json snaps.json ".snapshots | length == 1"
'

test_expect_success 'save --json describes the snapshot' '
	echo more >proj/more.txt &&
	ps save p1 proj --json >save.json &&
	test_json save.json ".snapshot.project == \"p1\"" &&
	test_json save.json ".snapshot.name | test(\"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\\\.[0-9]{6}Z-[0-9a-f]{8}$\")" &&
	test_json save.json ".snapshot.files == 4" &&
	test_json save.json ".snapshot.dirs == 4" &&
	test_json save.json ".snapshot.others == 1" &&
	test_json save.json ".snapshot.errors == 0" &&
	test_json save.json ".snapshot.logical_bytes == (6 + 7 + 300*1024 + 5)" &&
	test_json save.json ".snapshot.root | test(\"^[0-9a-f]{64}$\")" &&
	test_json save.json ".snapshot.over_quota == false" &&
	test_json save.json ".snapshot.quota_bytes == null" &&
	test_json save.json "(.skipped // []) == []"
'

test_expect_success 'snapshots lists both saves, oldest first, linked by parent' '
	ps snapshots p1 --json >snaps.json &&
	test_json snaps.json ".snapshots | length == 2" &&
	first=$(jq -r ".snapshots[0].name" snaps.json) &&
	second=$(jq -r ".snapshots[1].name" snaps.json) &&
	test "$second" = "$(jq -r .snapshot.name save.json)" &&
	test_json snaps.json ".snapshots[0].parent == null" &&
	test_json snaps.json ".snapshots[1].parent == \"$first\"" &&
	test_json snaps.json ".snapshots[0].time_ns < .snapshots[1].time_ns" &&
	test_json snaps.json "[.snapshots[].age | type == \"string\" and length > 0] | all" &&
	test_json snaps.json "[.snapshots[].origin] | all(. == \"$(uname -n)\")" &&
	ps snapshots p1 >human &&
	test_grep -F "$first" human &&
	test_grep -F "$second" human
'

test_expect_success 'a 64-character project id is valid' '
	id64=$(printf "a%.0s" $(seq 1 64)) &&
	ps save "$id64" proj &&
	test "$(snap_count "$id64")" = 1 &&
	ps save a.b_c-9 proj &&
	ps save 0 proj
'

invalid_ids () {
	printf "%s\n" UPPER Abc p1X .. . -abc _abc .abc "a/b" "/abc" "a b" "" \
		"$(printf "a%.0s" $(seq 1 65))" "a\\b" "a:b" "caf$(printf "\\351")"
}

test_expect_success 'invalid project ids are refused with exit 2 and touch nothing' '
	store_listing >before &&
	invalid_ids >ids &&
	test_line_count -ge 16 ids &&
	while IFS= read -r id; do
		for cmd in "save" "snapshots" "ls" "cat" "restore" "stats" "quota" "exclude" "check"; do
			case $cmd in
			save) set -- save "$id" proj ;;
			ls|snapshots|stats|exclude|check) set -- $cmd "$id" ;;
			cat) set -- cat "$id" hello.txt ;;
			restore) set -- restore "$id" "$TRASH/never" ;;
			quota) set -- quota "$id" 1G ;;
			esac
			ps "$@" >out 2>err
			rc=$?
			if [ $rc -ne 2 ]; then
				echo "exit $rc (not 2) for: $cmd [$id]"; cat err; return 1
			fi
			test -s err || { echo "no message for: $cmd [$id]"; return 1; }
		done
	done <ids &&
	test_path_is_missing "$TRASH/never" &&
	store_listing >after &&
	test_cmp before after
'

test_expect_success 'a project id with a newline is refused with exit 2' '
	store_listing >before &&
	test_expect_code 2 ps save "p1
x" proj &&
	test_expect_code 2 ps snapshots "p1
" &&
	store_listing >after &&
	test_cmp before after
'

test_expect_success 'PROJECT@SNAPSHOT with an invalid project is refused with exit 2' '
	test_expect_code 2 ps ls "UPPER@latest" &&
	test_expect_code 2 ps cat "../x@latest" hello.txt &&
	test_expect_code 2 ps diff "A@latest" "A@latest"
'

test_expect_success 'unknown options and missing arguments are usage errors (exit 2)' '
	store_listing >before &&
	test_expect_code 2 ps --no-such-option &&
	test_expect_code 2 ps save --no-such-option p1 proj &&
	test_expect_code 2 ps save p1 proj --bogus &&
	test_expect_code 2 ps snapshots p1 --bogus &&
	test_expect_code 2 ps ls p1 --bogus &&
	test_expect_code 2 ps restore p1 "$TRASH/never" --bogus &&
	test_expect_code 2 ps check --bogus &&
	test_expect_code 2 ps save p1 &&
	test_expect_code 2 ps save &&
	test_expect_code 2 ps cat p1 &&
	test_expect_code 2 ps diff p1@latest &&
	test_expect_code 2 ps restore p1 &&
	test_expect_code 2 ps quota &&
	test_expect_code 2 ps save p1 proj --lock-timeout &&
	test_expect_code 2 ps save p1 proj --uid &&
	test_expect_code 2 ps save p1 proj --uid notanumber &&
	test_expect_code 2 ps no-such-command &&
	test_expect_code 2 ps &&
	test_path_is_missing "$TRASH/never" &&
	store_listing >after &&
	test_cmp before after
'

test_expect_success 'invalid sizes are usage errors (exit 2)' '
	for s in abc 12Q -1 1..5G "" 4GG " "; do
		test_expect_code 2 ps quota p1 "$s" || { echo "size [$s]"; return 1; }
	done &&
	ps quota p1 --json >q.json &&
	test_json q.json ".quota_bytes == null"
'

test_expect_success 'commands on a store that does not exist fail without creating it' '
	test_must_fail ps --store "$TRASH/no-store" snapshots p1 &&
	test_must_fail ps --store "$TRASH/no-store" save p1 proj &&
	test_must_fail ps --store "$TRASH/no-store" check &&
	test_path_is_missing "$TRASH/no-store"
'

test_expect_success 'save of a missing directory fails and writes no snapshot' '
	n=$(snap_count p1) &&
	test_must_fail ps save p1 "$TRASH/no-such-dir" &&
	test "$(snap_count p1)" = "$n"
'

test_expect_success 'a second init does not destroy an existing store' '
	n=$(snap_count p1) &&
	ps init >out 2>err
	rc=$? &&
	test $rc -lt 128 &&
	test "$(snap_count p1)" = "$n" &&
	ps cat p1 hello.txt >actual &&
	test_cmp proj/hello.txt actual
'

test_expect_success 'stats and check work on the store' '
	ps stats >out &&
	ps stats --json >stats.json &&
	test_json stats.json ".project == null" &&
	test_json stats.json ".projects >= 4" &&
	ps stats p1 --json >stats.json &&
	test_json stats.json ".project == \"p1\" and .snapshots == 2" &&
	ps check &&
	ps check --read-data --json >check.json &&
	test_json check.json ".ok == true and (.problems | length) == 0"
'

test_done
