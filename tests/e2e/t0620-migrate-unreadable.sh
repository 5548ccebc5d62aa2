#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'migrate: an unreadable file or directory in one home is skipped and reported, that
project is still saved, the other projects are not disturbed; the catalog records the partial result'

U=$TRASH/nobody

# Runs projstore as an unprivileged user (nobody when we are root), with a store of its own.
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

test_expect_success UNPRIV 'setup: three homes, one with an unreadable file and directory' '
	chmod 0755 "$TRASH" &&
	mkdir -p "$U/src" &&
	for p in alpha beta gamma; do
		mkdir -p "$U/src/$p/sub" && echo "$p" >"$U/src/$p/sub/f.txt" &&
		head -c 20000 /dev/urandom >"$U/src/$p/data.bin" || return 1
	done &&
	echo secret >"$U/src/beta/secret" &&
	mkdir "$U/src/beta/lockeddir" && echo hidden >"$U/src/beta/lockeddir/h" &&
	if test_have_prereq ROOT; then chown -R "nobody:$(id -g nobody)" "$U"; fi &&
	chmod 0000 "$U/src/beta/secret" "$U/src/beta/lockeddir" &&
	ps_nobody init
'

test_expect_success UNPRIV 'the project is saved without them, reported; the others are complete' '
	test_expect_code 3 ps_nobody migrate "$U/src" -j 3 --json >m.json &&
	test_json m.json ".imported == 3 and .failed == 0 and .partial == 1" &&
	test_json m.json "(.results[] | select(.project == \"beta\")) | .errors >= 2 and
		([.skipped[].path] | (index(\"secret\") != null) and any(startswith(\"lockeddir\")))" &&
	test_json m.json "(.partial_projects[0]) | .project == \"beta\" and .errors >= 2" &&
	test_json m.json "[.results[] | select(.project != \"beta\") | .errors] == [0, 0]" &&
	ps_nobody ls beta --json >ls.json &&
	test_json ls.json "(.entries[] | select(.name == \"secret\")) | .type == \"error\"" &&
	ps_nobody cat beta sub/f.txt >got && echo beta >expect && test_cmp expect got &&
	for p in alpha gamma; do
		ps_nobody restore $p "$U/out-$p" &&
		treecmp --no-atime "$U/src/$p" "$U/out-$p" || return 1
	done
'

test_expect_success UNPRIV 'the text summary lists the skipped entries' '
	rm -rf "$U/cache/migrate" &&
	test_expect_code 3 ps_nobody migrate "$U/src" >out 2>err &&
	test_grep "imported with unreadable entries skipped (1):" out &&
	test_grep "^  beta  [0-9]* entries skipped" out &&
	test_grep "^    .secret.: " out
'

test_expect_success UNPRIV 'the catalog: partial save result, an error event, not in maintenance' '
	ps_nobody projects --json >p.json &&
	test_json p.json "(.[] | select(.id == \"beta\")) | (.last_save.result | startswith(\"partial\")) and
		.migrated and (.maintenance | not)" &&
	test_json p.json "(.[] | select(.id == \"alpha\")) | .last_save.result == \"ok\"" &&
	ps_nobody events beta --json >ev.json &&
	test_json ev.json ".[0].kind == \"migrated\" and .[0].error"
'

test_expect_success UNPRIV 'a rerun saves the project with skipped entries again, without a new snapshot' '
	test_expect_code 3 ps_nobody migrate "$U/src" --json >m2.json &&
	test_json m2.json "(.results[] | select(.project == \"beta\")) | .status == \"unchanged\" and .errors >= 2" &&
	test_json m2.json "[.results[] | select(.project != \"beta\") | .status] == [\"unchanged\", \"unchanged\"]" &&
	test "$(ps_nobody snapshots beta --json | jq ".snapshots | length")" = 1
'

test_expect_success UNPRIV 'once readable, the next pass imports it whole' '
	chmod 0644 "$U/src/beta/secret" && chmod 0755 "$U/src/beta/lockeddir" &&
	ps_nobody migrate "$U/src" --json >m3.json &&
	test_json m3.json ".partial == 0 and .imported == 1" &&
	ps_nobody restore beta "$U/out-beta" &&
	treecmp --no-atime "$U/src/beta" "$U/out-beta"
'

test_done
