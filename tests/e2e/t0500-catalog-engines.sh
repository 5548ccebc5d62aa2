#!/bin/bash
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-pg.sh"

test_description 'catalog: the same test suite against SQLite and a real PostgreSQL server'

UNIT=${PS_UNIT_BIN:-$(dirname "$PROJSTORE")/tests/test_catalog}

test_expect_success POSTGRES 'start PostgreSQL' '
	pg_start &&
	test_set_prereq PG
'

test_expect_success PG 'catalog suite against SQLite and PostgreSQL' '
	PS_TEST_PG_URL=$PG_URL "$UNIT" >out 2>&1
	rc=$?
	cat out >&4
	test $rc = 0 &&
	grep -q "postgresql: schema at latest" out &&
	! grep -q "^not ok" out
'

test_expect_success PG 'two processes open a new PostgreSQL catalog at once: one schema' '
	url=$(pg_newdb race) || return 1
	"$PROJSTORE" --catalog "$url" hosts >a 2>&1 &
	p1=$!
	"$PROJSTORE" --catalog "$url" hosts >b 2>&1 &
	p2=$!
	wait $p1 && wait $p2 &&
	psql_ver=$(cd / && runuser -u postgres -- psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d race -Atc \
		"SELECT count(*) FROM schema_version") &&
	test "$psql_ver" = 1
'

test_expect_success PG 'a stopped server gives a clear error, not a hang' '
	url=$PG_URL &&
	pg_stop &&
	test_expect_code 1 timeout 60 "$PROJSTORE" --catalog "$url" hosts 2>err &&
	grep "cannot connect to the catalog" err
'

test_done
