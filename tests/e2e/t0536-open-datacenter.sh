#!/bin/bash
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-agent.sh"
. "$TEST_DIRECTORY/lib-serve.sh"

test_description 'open on a host of another datacenter (two stores, one catalog): the newest snapshot is synced from the store that has it first; that store unreadable: refused, unless --allow-older'

# Hosts h1 (dc1, store A) and h2 (dc2, store B) share the catalog cat.db.
# Unlike a move, a close in dc1 and an open in dc2 have no old host that
# syncs: the opening host finds the newer snapshot in the catalog's summaries.

export PROJSTORE_CATALOG=$TRASH/cat.db

names_in () { ps --store "$1" snapshots "$2" --json | jq -r '.snapshots[].name'; }
newest_in () { names_in "$1" "$2" | tail -n 1; }
kinds () { ps events "$1" --json | jq -r '.[].kind'; }
detail_of () { ps events "$1" --json | jq -r "[.[] | select(.kind == \"$2\")][0].detail"; }
last_open_options () {
	python3 -c "import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute(\"select options from operations where kind = 'open' order by id desc limit 1\").fetchone()[0])" "$PROJSTORE_CATALOG"
}
status_of () { ps projects --search "$1" --json | jq -r '.[0].status'; }

test_expect_success 'setup: stores A and B, h1 (dc1, A) and h2 (dc2, B), a project opened on h1' '
	ps init A >/dev/null && ps init B >/dev/null &&
	agent_host h1 --store "$TRASH/A" --datacenter dc1 &&
	agent_host h2 --store "$TRASH/B" --datacenter dc2 &&
	agent_start h1 --autosave-interval 0 &&
	agent_start h2 --autosave-interval 0 &&
	mkdir -p src && echo one >src/f && head -c 200000 /dev/urandom >src/blob &&
	ps --store A save p src >/dev/null &&
	ps open p --host h1 --wait --timeout 30 >/dev/null &&
	test "$(where_is p)" = h1
'

test_expect_success 'close on h1 after new data, open on h2: synced A -> B first, h2 has the newest data' '
	echo "written on h1" >hosts/h1/p/new &&
	ps close p --wait --timeout 30 >/dev/null &&
	test -z "$(where_is p)" &&
	test -z "$(names_in B p)" &&
	ps open p --host h2 --wait --timeout 60 >o.out &&
	grep "deployed on h2" o.out &&
	test "$(where_is p)" = h2 &&
	echo "written on h1" >want && test_cmp want hosts/h2/p/new &&
	test "$(newest_in A p)" = "$(newest_in B p)" &&
	ps --store B check --read-data >/dev/null &&
	detail_of p synced >d &&
	grep "from store $TRASH/A (dc1) to store $TRASH/B (dc2) before deploying it" d &&
	test "$(ps events p --json | jq -r "[.[] | select(.kind == \"synced\")][0].actor")" = h2
'

test_expect_success 'back in dc1: close on h2, open on h1 syncs B -> A' '
	echo "written on h2" >hosts/h2/p/h2file &&
	ps close p --wait --timeout 30 >/dev/null &&
	ps open p --host h1 --wait --timeout 60 >/dev/null &&
	echo "written on h2" >want && test_cmp want hosts/h1/p/h2file &&
	test "$(newest_in A p)" = "$(newest_in B p)"
'

test_expect_success 'the same store already newest: an open syncs nothing' '
	ps close p --wait --timeout 30 >/dev/null &&
	n=$(kinds p | grep -cx synced) &&
	ps open p --host h1 --wait --timeout 60 >/dev/null &&
	test "$(kinds p | grep -cx synced)" = "$n"
'

test_expect_success 'store A unreadable after another close in dc1: the open on h2 is refused, the project stays stored' '
	echo "only in A" >hosts/h1/p/onlya &&
	ps close p --wait --timeout 30 >/dev/null &&
	older=$(newest_in B p) && newest=$(newest_in A p) &&
	test "$older" != "$newest" &&
	mv A A.away &&
	test_expect_code 1 ps open p --host h2 --wait --timeout 60 >out 2>err &&
	cat out err >all &&
	grep "open of p refused: its newest snapshot $newest is in store $TRASH/A (dc1), which cannot be read; the project stays stored" all &&
	grep "does not exist" all &&
	test -z "$(where_is p)" &&
	test "$(status_of p)" = stored &&
	test "$(copies_of p)" = "" &&
	kinds p | grep -x open-refused &&
	detail_of p open-refused | grep -- "--allow-older" &&
	test "$(newest_in B p)" = "$older"
'

test_expect_success '--allow-older deploys the older snapshot of B, with a warning event' '
	ps open p --host h2 --allow-older --wait --timeout 60 >out &&
	grep "deployed on h2" out &&
	test "$(where_is p)" = h2 &&
	test ! -e hosts/h2/p/onlya &&
	echo "written on h2" >want && test_cmp want hosts/h2/p/h2file &&
	kinds p | grep -x open-older &&
	detail_of p open-older >d &&
	grep "on request (--allow-older)" d && grep "$TRASH/A (dc1)" d &&
	test "$(last_open_options)" = allow-older
'

test_expect_success 'store A back: nothing was lost there' '
	mv A.away A &&
	ps --store A cat p@latest onlya >got && echo "only in A" >want && test_cmp want got
'

test_expect_success CURL 'API: POST open takes "allow_older" (true or false), kept with the operation' '
	ps close p --wait --timeout 30 >/dev/null &&
	serve_tokens tokens &&
	PROJSTORE_STORE=$TRASH/A serve_start --token-file tokens --rate-limit 0 &&
	expect_status 400 "$ADMIN" POST /v1/projects/p/open -d "{\"host\": \"h1\", \"allow_older\": \"yes\"}" &&
	jq -r .error.message body | grep allow_older &&
	expect_status 400 "$ADMIN" POST /v1/projects/p/open -d "{\"to\": \"h1\"}" &&
	jq -r .error.message body | grep "open takes only \"host\" and \"allow_older\"" &&
	expect_status 202 "$ADMIN" POST /v1/projects/p/open -d "{\"host\": \"h1\", \"allow_older\": true}" &&
	test "$(jq -r .operation.options body)" = allow-older &&
	wait_where p h1 30 &&
	ps --store A cat p@latest onlya >/dev/null &&
	serve_stop
'

test_expect_success 'agents stop cleanly' '
	agent_stop h1 && agent_stop h2
'

test_done
