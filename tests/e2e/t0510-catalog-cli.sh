#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'catalog commands: hosts, where, projects, events, rescan; save and quota keep the catalog current'

test_expect_success 'setup: a store and three projects saved without a catalog' '
	ps init &&
	for p in alpha beta gamma-1; do
		mkdir -p src/$p && seq 1 1000 >src/$p/f && echo $p >src/$p/name &&
		ps save $p src/$p >/dev/null || return 1
	done &&
	test_path_is_missing "$PROJSTORE_STORE/catalog.db"
'

test_expect_success 'a save without a configured catalog creates none' '
	ps save alpha src/alpha >/dev/null &&
	test_path_is_missing "$PROJSTORE_STORE/catalog.db"
'

test_expect_success 'rescan brings projects saved without a catalog in' '
	ps rescan --json >rescan.json &&
	test "$(jq .projects rescan.json)" = 3 &&
	test_path_is_file "$PROJSTORE_STORE/catalog.db" &&
	ps projects --json >p.json &&
	test "$(jq length p.json)" = 3 &&
	test "$(jq -r ".[0].id" p.json)" = alpha &&
	test "$(jq ".[0].snapshots" p.json)" = 2 &&
	test "$(jq ".[0].logical_bytes" p.json)" -gt 3000 &&
	test "$(jq ".[0].host" p.json)" = null &&
	test "$(jq -r ".[0].status" p.json)" = stored
'

test_expect_success 'the store check ignores the catalog file inside it' '
	ps check >check.out &&
	grep "no problems found" check.out
'

test_expect_success 'with the catalog present, save updates it and records an event' '
	echo more >>src/beta/f &&
	ps save beta src/beta >/dev/null &&
	ps projects --search beta --json >b.json &&
	test "$(jq ".[0].snapshots" b.json)" = 2 &&
	test "$(jq -r ".[0].last_save.result" b.json)" = ok &&
	ps events beta --json >ev.json &&
	test "$(jq -r ".[0].kind" ev.json)" = saved
'

test_expect_success 'a failed save is recorded as such' '
	test_must_fail ps save beta src/nonexistent 2>err &&
	ps projects --search beta --json >b.json &&
	jq -r ".[0].last_save.result" b.json | grep "^failed: " &&
	ps events beta --json >ev.json &&
	test "$(jq -r ".[0].kind" ev.json)" = save-failed &&
	test "$(jq ".[0].error" ev.json)" = true
'

test_expect_success 'quota set updates the catalog' '
	ps quota gamma-1 2M >/dev/null &&
	ps projects --search GAMMA --json >g.json &&
	test "$(jq ".[0].quota_bytes" g.json)" = 2097152
'

test_expect_success 'search, status and paging' '
	ps projects --search a --json >s.json &&
	test "$(jq -r "map(.id) | join(\",\")" s.json)" = "alpha,beta,gamma-1" &&
	ps projects --search "_" --json >u.json &&
	test "$(jq length u.json)" = 0 &&
	ps projects --limit 2 --json >p1.json &&
	test "$(jq -r "map(.id) | join(\",\")" p1.json)" = "alpha,beta" &&
	ps projects --limit 2 --after beta --json >p2.json &&
	test "$(jq -r "map(.id) | join(\",\")" p2.json)" = "gamma-1" &&
	ps projects --status deployed --json >d.json &&
	test "$(jq length d.json)" = 0 &&
	ps projects >table &&
	grep "^alpha " table && grep "^gamma-1 " table
'

test_expect_success 'hostile search text finds nothing and breaks nothing' '
	ps projects --search "%'"'"' OR 1=1; DROP TABLE projects; --" --json >h.json &&
	test "$(jq length h.json)" = 0 &&
	ps projects --json >all.json &&
	test "$(jq length all.json)" = 3
'

test_expect_success 'host add: validation and listing' '
	test_expect_code 2 ps host add "bad name" --root /srv/x 2>err &&
	grep "invalid host name" err &&
	test_expect_code 2 ps host add h1 --root relative 2>err &&
	grep "absolute" err &&
	test_expect_code 2 ps host add h1 2>err &&
	grep "root" err &&
	ps host add h1 --root /srv/h1 --datacenter dc1 --capacity 50 >/dev/null &&
	ps host add h2 --root /srv/h2 --store "$PROJSTORE_STORE" >/dev/null &&
	ps hosts --json >hosts.json &&
	test "$(jq length hosts.json)" = 2 &&
	test "$(jq -r ".[0].name" hosts.json)" = h1 &&
	test "$(jq -r ".[0].state" hosts.json)" = down &&
	ps host state h2 draining >/dev/null &&
	ps hosts >hosts.txt &&
	grep "^h2 .*draining" hosts.txt &&
	test_expect_code 2 ps host state h2 sideways &&
	test_expect_code 7 ps host state h9 up
'

test_expect_success 'where: empty for a project that is not deployed, or unknown' '
	ps where alpha >w &&
	printf "\n" >expect &&
	test_cmp expect w &&
	ps where never-heard-of >w &&
	test_cmp expect w &&
	ps where never-heard-of --json >w.json &&
	test "$(jq -r .status w.json)" = unknown &&
	test_expect_code 2 ps where "../etc"
'

test_expect_success 'PROJSTORE_CATALOG and --catalog choose another catalog' '
	PROJSTORE_CATALOG=sqlite:$TRASH/other.db ps projects --json >o.json &&
	test "$(jq length o.json)" = 0 &&
	test_path_is_file other.db &&
	ps --catalog "$TRASH/other.db" hosts --json >oh.json &&
	test "$(jq length oh.json)" = 0 &&
	ps projects --catalog "$TRASH/other.db" --json >o2.json &&
	test "$(jq length o2.json)" = 0
'

test_expect_success 'a damaged catalog: commands fail clearly, saves still work and warn' '
	dd if=/dev/urandom of=bad.db bs=4096 count=4 2>/dev/null &&
	test_expect_code 1 ps --catalog "$TRASH/bad.db" projects 2>err &&
	grep -i "catalog" err &&
	echo change >>src/alpha/f &&
	ps --catalog "$TRASH/bad.db" save alpha src/alpha >out 2>err &&
	grep "^saved alpha@" out &&
	grep "warning: catalog not updated" err
'

test_expect_success 'a remote store has no default catalog' '
	test_expect_code 1 ps --store gluster://nohost.invalid/vol/path projects 2>err &&
	grep -i "unsafe" err
'

test_expect_success 'a catalog from a newer projstore is refused, not changed' '
	cp "$PROJSTORE_STORE/catalog.db" newer.db &&
	sqlite3 newer.db "UPDATE schema_version SET version = 999" 2>/dev/null ||
	python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE schema_version SET version = 999\"); c.commit()" newer.db &&
	test_expect_code 1 ps --catalog "$TRASH/newer.db" projects 2>err &&
	grep "newer than this projstore" err
'

test_done
