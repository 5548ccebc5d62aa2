#!/bin/bash
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-pg.sh"
. "$TEST_DIRECTORY/lib-serve.sh"

test_description 'serve with a PostgreSQL catalog: reads, requests, conflicts, concurrency, a catalog that goes away'

P1=5e0a0000-0000-4000-8000-000000000001
P2=5e0a0000-0000-4000-8000-000000000002

if ! test_have_prereq POSTGRES,CURL; then
	test_expect_success POSTGRES,CURL 'PostgreSQL and curl are available' 'true'
	test_done
fi

test_expect_success 'start PostgreSQL; a store and two projects in its catalog' '
	pg_start &&
	export PROJSTORE_CATALOG=$PG_URL &&
	ps init &&
	ps host add h1 --root "$TRASH/h1" --capacity 2 >/dev/null &&
	ps host add h2 --root "$TRASH/h2" >/dev/null &&
	mkdir data && seq 1 5000 >data/f &&
	ps save $P1 data >/dev/null &&
	ps save $P2 data >/dev/null &&
	serve_tokens tokens
'
[ -n "${PG_URL:-}" ] || test_done

test_expect_success 'serve on PostgreSQL: health, listing, one project' '
	serve_start --token-file tokens --rate-limit 0 --threads 3 &&
	test_grep "catalog postgresql://postgres@" "$SERVE_LOG" &&
	expect_status 200 "" GET /healthz &&
	test_json body ".catalog == \"postgresql\"" &&
	expect_status 200 "$READ" GET /v1/projects &&
	test_json body ".total == 2" &&
	expect_status 200 "$READ" GET "/v1/projects?search=0002&limit=1" &&
	test_json body ".projects[0].id == \"$P2\" and .total == 1" &&
	expect_status 200 "$READ" GET /v1/projects/$P1 &&
	test_json body ".id == \"$P1\" and .snapshots == 1 and .last_snapshot.name != null" &&
	expect_status 404 "$READ" GET /v1/projects/5e0a0000-0000-4000-8000-00000000ffff &&
	expect_status 200 "$READ" GET /v1/projects/$P1/snapshots &&
	test_json body ".count == 1 and (.snapshots | length) == 1" &&
	expect_status 200 "$READ" GET /v1/hosts &&
	test_json body "(.hosts | length) == 2" &&
	expect_status 200 "$READ" GET /v1/stores &&
	expect_status 200 "" GET /metrics &&
	test_grep "^projstore_projects 2$" body
'

test_expect_success 'where --api on PostgreSQL answers as where does' '
	for id in $P1 $P2 5e0a0000-0000-4000-8000-00000000ffff; do
		ps where $id --json >direct.json &&
		PROJSTORE_API_TOKEN=$READ ps where $id --json --api "$SERVE_URL" >api.json &&
		test_cmp direct.json api.json || return 1
	done &&
	test_json api.json ".status == \"unknown\"" &&
	noage="walk(if type == \"object\" then del(.age, .updated) else . end)" &&
	ps projects --search 0002 --json | jq "$noage" >direct.json &&
	PROJSTORE_API_TOKEN=$READ ps projects --search 0002 --json --api "$SERVE_URL" | jq "$noage" >api.json &&
	test_cmp direct.json api.json &&
	test_json api.json "length == 1"
'

test_expect_success 'requests on PostgreSQL: open, poll, conflict, bad input' '
	expect_status 202 "$ADMIN" POST /v1/projects/$P1/open -d "{\"host\": \"h1\"}" &&
	op=$(jq .operation.id body) &&
	expect_status 200 "$READ" GET /v1/operations/$op &&
	test_json body ".state == \"pending\" and .kind == \"open\"" &&
	expect_status 409 "$ADMIN" POST /v1/projects/$P1/move -d "{\"to\": \"h2\"}" &&
	expect_status 404 "$ADMIN" POST /v1/projects/$P2/move -d "{\"to\": \"nowhere\"}" &&
	expect_status 400 "$ADMIN" POST /v1/projects/$P2/move -d "{to: h2}" &&
	expect_status 409 "$ADMIN" POST /v1/projects/$P2/close
'

test_expect_success 'concurrent: 200 reads over 20 connections, 10 racing moves (one wins)' '
	seq 1 200 | xargs -P 20 -I{} curl -s -o /dev/null -w "%{http_code}\n" \
		-H "Authorization: Bearer $READ" "${SERVE_URL}v1/projects/$P1" >codes &&
	test_line_count = 200 codes &&
	test "$(sort -u codes)" = 200 &&
	seq 1 10 | xargs -P 10 -I{} curl -s -o /dev/null -w "%{http_code}\n" -X POST \
		-H "Authorization: Bearer $ADMIN" -d "{\"to\": \"h2\"}" "${SERVE_URL}v1/projects/$P2/move" >codes &&
	test "$(grep -c "^202$" codes)" = 1 &&
	test "$(grep -c "^409$" codes)" = 9
'

test_expect_success 'the catalog goes away: 503 and a failing health check, not a crash' '
	pg_stop &&
	expect_status 503 "" GET /healthz &&
	test_json body ".status == \"unavailable\"" &&
	code=$(req "$READ" GET /v1/projects/$P1) &&
	test "$code" = 503 &&
	test_json body ".error.code == \"unavailable\"" &&
	expect_status 200 "" GET /metrics &&
	test_grep "^projstore_catalog_up 0$" body &&
	kill -0 $SERVE_PID &&
	serve_stop
'

test_done
