#!/bin/bash
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-serve.sh"

test_description 'serve: every /v1 endpoint, auth, limits, validation, metrics, dashboard files (SQLite catalog)'

P1=3f1c0000-0000-4000-8000-000000000001
P2=3f1c0000-0000-4000-8000-000000000002
P3=aa550000-0000-4000-8000-000000000003

test_have_prereq CURL || test_skip_all "curl is not installed (scripts/deps.sh --test)"

test_expect_success 'setup: a store with three projects, two hosts, tokens' '
	ps init &&
	ps host add h1 --root "$TRASH/h1" --capacity 10 >/dev/null &&
	ps host add h2 --root "$TRASH/h2" >/dev/null &&
	mkdir -p data/a && echo one >data/a/f && seq 1 20000 >data/big &&
	ps save $P1 data >/dev/null && echo two >data/a/g && ps save $P1 data >/dev/null &&
	ps save $P2 data >/dev/null &&
	ps save $P3 data >/dev/null &&
	ps quota $P2 1K >/dev/null &&
	ps projects --json >projects.json &&
	test_json projects.json "length == 3" &&
	serve_tokens tokens
'

test_expect_success 'serve starts on a free port and says where its tokens are' '
	serve_start --token-file tokens --rate-limit 0 &&
	test_grep "tokens from .*tokens" "$SERVE_LOG" &&
	test_grep "catalog sqlite:" "$SERVE_LOG"
'

test_expect_success 'GET /healthz is open and JSON' '
	expect_status 200 "" GET /healthz &&
	test_json body ".status == \"ok\" and .catalog == \"sqlite\"" &&
	test_grep -i "^content-type: application/json" headers
'

test_expect_success 'GET /metrics: Prometheus text, aggregate figures only' '
	expect_status 200 "" GET /metrics &&
	test_grep -i "^content-type: text/plain; version=0.0.4" headers &&
	test_grep "^projstore_projects 3$" body &&
	test_grep "^# TYPE projstore_http_request_duration_seconds histogram" body &&
	test_grep "^projstore_host_projects{host=\"h1\"} 0$" body &&
	test_grep "^projstore_queue_depth 0$" body &&
	test_grep "^projstore_catalog_up 1$" body &&
	! grep -e "$P1" -e "$P2" -e "$P3" body &&
	# every sample line is NAME{LABELS} VALUE or NAME VALUE
	! grep -v "^#" body | grep -Ev "^[a-z_]+(\{[a-z_]+=\"[^\"]*\"(,[a-z_]+=\"[^\"]*\")*\})? [0-9.e+-]+$"
'

test_expect_success 'the dashboard is built in: page, script, style; nothing from other sites' '
	expect_status 200 "" GET / &&
	test_grep -i "^content-type: text/html" headers &&
	test_grep -i "^content-security-policy: default-src .self." headers &&
	cp body page.html &&
	test_grep "/app.js" page.html &&
	expect_status 200 "" GET /app.js && cp body app.js &&
	test_grep -i "^content-type: text/javascript" headers &&
	expect_status 200 "" GET /app.css && cp body app.css &&
	! grep -E "(src|href)=\"(https?:)?//" page.html &&
	! grep -E "https?://" app.js app.css &&
	etag=$(sed -n "s/^[Ee][Tt]ag: \(.*\)\r$/\1/p" headers) &&
	test -n "$etag" &&
	expect_status 304 "" GET /app.css -H "If-None-Match: $etag" &&
	expect_status 404 "" GET /nope.js &&
	expect_status 405 "" POST /app.js
'

test_expect_success 'auth: 401 without a token, 403 with a wrong one or read-only for writes' '
	expect_status 401 "" GET /v1/projects &&
	test_grep -i "^www-authenticate: Bearer" headers &&
	test_json body ".error.code == \"unauthorized\"" &&
	expect_status 401 "" GET /v1/projects -H "Authorization: Basic YWRtaW46eA==" &&
	expect_status 401 "" GET /v1/nothing-here &&
	expect_status 403 wrong-token-0123456789 GET /v1/projects &&
	test_json body ".error.code == \"forbidden\"" &&
	expect_status 403 "${ADMIN}x" GET /v1/projects &&
	expect_status 403 "${ADMIN%?}" GET /v1/projects &&
	expect_status 200 "$READ" GET /v1/projects &&
	expect_status 403 "$READ" POST /v1/projects/$P1/open &&
	test_json body ".error.message | test(\"read-only\")" &&
	expect_status 401 "" POST /v1/projects/$P1/open &&
	expect_status 200 "$ADMIN" GET /v1/summary &&
	test_json body ".role == \"admin\" and .projects == 3" &&
	expect_status 200 "$READ" GET /v1/summary &&
	test_json body ".role == \"read\""
'

test_expect_success 'GET /v1/projects: the CLI shapes, total, filters' '
	expect_status 200 "$READ" GET /v1/projects &&
	test_json body ".total == 3 and (.projects | length) == 3 and .next_cursor == null" &&
	jq ".projects" body >api.json &&
	ps projects --json >cli.json &&
	jq -S "map(del(.last_snapshot.age, .last_save.age))" api.json >a &&
	jq -S "map(del(.last_snapshot.age, .last_save.age))" cli.json >b &&
	test_cmp b a &&
	expect_status 200 "$READ" GET "/v1/projects?search=AA55" &&
	test_json body ".total == 1 and .projects[0].id == \"$P3\"" &&
	expect_status 200 "$READ" GET "/v1/projects?search=3f1c" &&
	test_json body ".total == 2" &&
	expect_status 200 "$READ" GET "/v1/projects?search=%25" &&
	test_json body ".total == 0" &&
	expect_status 200 "$READ" GET "/v1/projects?status=stored" &&
	test_json body ".total == 3" &&
	expect_status 200 "$READ" GET "/v1/projects?status=deployed" &&
	test_json body ".total == 0 and .projects == []" &&
	expect_status 200 "$READ" GET "/v1/projects?host=h1" &&
	test_json body ".total == 0"
'

test_expect_success 'GET /v1/projects pages with a cursor' '
	expect_status 200 "$READ" GET "/v1/projects?limit=2" &&
	test_json body "(.projects | length) == 2 and .next_cursor == \"$P2\" and .total == 3" &&
	expect_status 200 "$READ" GET "/v1/projects?limit=2&cursor=$P2" &&
	test_json body "(.projects | length) == 1 and .projects[0].id == \"$P3\" and .next_cursor == null" &&
	expect_status 200 "$READ" GET "/v1/projects?limit=1&cursor=$P3" &&
	test_json body ".projects == [] and .next_cursor == null"
'

test_expect_success 'GET /v1/projects rejects bad parameters before the catalog' '
	expect_status 400 "$READ" GET "/v1/projects?limit=0" &&
	expect_status 400 "$READ" GET "/v1/projects?limit=1001" &&
	expect_status 400 "$READ" GET "/v1/projects?limit=ten" &&
	expect_status 400 "$READ" GET "/v1/projects?colour=red" &&
	test_json body ".error.message | test(\"colour\")" &&
	expect_status 400 "$READ" GET "/v1/projects?limit=1&limit=2" &&
	expect_status 400 "$READ" GET "/v1/projects?status=lost" &&
	expect_status 400 "$READ" GET "/v1/projects?host=a%2Fb" &&
	expect_status 400 "$READ" GET "/v1/projects?cursor=NOT%20AN%20ID" &&
	expect_status 400 "$READ" GET "/v1/projects?search=$(printf "x%.0s" $(seq 1 65))" &&
	expect_status 400 "$READ" GET "/v1/projects?search=a%0Ab"
'

test_expect_success 'GET /v1/projects/{id}: location, sizes, ratios, last snapshot with its age' '
	expect_status 200 "$READ" GET /v1/projects/$P2 &&
	test_json body ".id == \"$P2\" and .host == null and .status == \"stored\"" &&
	test_json body ".quota_bytes == 1024 and .over_quota == true" &&
	test_json body ".logical_bytes > 100000 and .stored_bytes > 0" &&
	test_json body "(.compressratio | type) == \"number\" and (.dedupratio | type) == \"number\"" &&
	test_json body "(.last_snapshot.age | test(\"just now|seconds? ago\")) and (.last_snapshot.time | test(\"Z$\"))" &&
	expect_status 200 "$READ" HEAD /v1/projects/$P2
'

test_expect_success 'GET /v1/projects/{id}/location is `where --json`; where --api asks it' '
	expect_status 200 "$READ" GET /v1/projects/$P2/location &&
	test_json body ". == {project: \"$P2\", host: null, status: \"stored\", path: null}" &&
	expect_status 200 "$READ" GET /v1/projects/00000000-0000-4000-8000-00000000dead/location &&
	test_json body ".status == \"unknown\" and .host == null" &&
	expect_status 400 "$READ" GET /v1/projects/Not-Lower/location &&
	expect_status 405 "$ADMIN" POST /v1/projects/$P2/location &&
	for id in $P1 $P2 00000000-0000-4000-8000-00000000dead; do
		ps where $id --json >direct.json &&
		PROJSTORE_API_TOKEN=$READ ps where $id --json --api "$SERVE_URL" >api.json &&
		test_cmp direct.json api.json &&
		ps where $id >direct.txt &&
		PROJSTORE_API_TOKEN_FILE=$TRASH/tokens ps where $id --api "$SERVE_URL" >api.txt &&
		test_cmp direct.txt api.txt || return 1
	done &&
	# $PROJSTORE_API, and the global --store before the command
	ps where $P1 --json >direct.json &&
	PROJSTORE_API=$SERVE_URL PROJSTORE_API_TOKEN=$READ ps --store "$TRASH/nowhere" where $P1 --json >api2.json &&
	test_cmp direct.json api2.json
'

test_expect_success 'where --api: errors say what went wrong; --catalog wins over $PROJSTORE_API' '
	test_expect_code 1 env PROJSTORE_API_TOKEN=wrong-token-0123456789 "$PROJSTORE" where $P1 --api "$SERVE_URL" 2>err &&
	test_grep "token is not valid (HTTP 403)" err &&
	test_expect_code 1 env -u PROJSTORE_API_TOKEN -u PROJSTORE_API_TOKEN_FILE "$PROJSTORE" where $P1 --api "$SERVE_URL" 2>err &&
	test_grep "needs a token" err &&
	test_expect_code 1 env PROJSTORE_API_TOKEN_FILE=$TRASH/none "$PROJSTORE" where $P1 --api "$SERVE_URL" 2>err &&
	test_grep "cannot read the API token file" err &&
	test_expect_code 1 env PROJSTORE_API_TOKEN=$READ "$PROJSTORE" where $P1 --api http://127.0.0.1:1 2>err &&
	test_grep "cannot connect to 127.0.0.1:1" err &&
	for url in https://127.0.0.1:1 http://127.0.0.1 http://:80 "http://127.0.0.1:80/v1" "http://[::1:80"; do
		test_expect_code 1 env PROJSTORE_API_TOKEN=$READ "$PROJSTORE" where $P1 --api "$url" 2>err &&
		test_grep "invalid API URL" err || return 1
	done &&
	# an id the server would refuse never leaves the command
	test_expect_code 2 env PROJSTORE_API_TOKEN=$READ "$PROJSTORE" where Bad.Id --api "$SERVE_URL" 2>err &&
	test_grep "invalid project id" err &&
	# --catalog names the catalog to read, even with $PROJSTORE_API set to something dead
	PROJSTORE_API=http://127.0.0.1:1 ps --catalog "$TRASH/catalog-none.db" where $P1 >out &&
	test "$(cat out)" = ""
'

test_expect_success 'projects --api lists what projects does (filters, --limit, --after, table and JSON)' '
	noage="walk(if type == \"object\" then del(.age, .updated) else . end)" &&
	for args in "" "--search 3F1C" "--search 0003" "--status stored" "--host h1" "--limit 2" "--limit 1 --after $P1"; do
		ps projects $args --json | jq "$noage" >direct.json &&
		PROJSTORE_API_TOKEN=$READ ps projects $args --json --api "$SERVE_URL" | jq "$noage" >api.json &&
		test_cmp direct.json api.json &&
		# the table without its last column (the age of the newest snapshot, which
		# moves on between the two commands)
		ps projects $args | sed -E "s/(just now|[0-9]+ [a-z]+ ago|in the future)\$/AGE/" >direct.txt &&
		PROJSTORE_API=$SERVE_URL PROJSTORE_API_TOKEN=$READ ps projects $args |
			sed -E "s/(just now|[0-9]+ [a-z]+ ago|in the future)\$/AGE/" >api.txt &&
		test_cmp direct.txt api.txt || return 1
	done &&
	test_json api.json "length == 1 and .[0].id == \"$P2\"" &&
	test_expect_code 2 env PROJSTORE_API_TOKEN=$READ "$PROJSTORE" projects --status nonsense --api "$SERVE_URL" 2>err &&
	test_grep "HTTP 400" err
'

test_expect_success 'the launcher: --version and where --api without the core; a missing core is named' '
	PROJSTORE_CORE=$TRASH/no-core.so ps --version >out &&
	test_grep "^projstore " out &&
	ps where $P1 --json >direct.json &&
	PROJSTORE_CORE=$TRASH/no-core.so PROJSTORE_API_TOKEN=$READ ps where $P1 --json --api "$SERVE_URL" >api.json &&
	test_cmp direct.json api.json &&
	test_expect_code 1 env PROJSTORE_CORE=$TRASH/no-core.so "$PROJSTORE" snapshots $P1 2>err &&
	test_grep "cannot load .*no-core.so" err
'

test_expect_success 'unknown and invalid project ids' '
	expect_status 404 "$READ" GET /v1/projects/00000000-0000-4000-8000-00000000dead &&
	test_json body ".error.code == \"not_found\"" &&
	expect_status 400 "$READ" GET /v1/projects/Not-Lower &&
	expect_status 400 "$READ" GET /v1/projects/.hidden &&
	expect_status 400 "$READ" GET "/v1/projects/a%20b" &&
	expect_status 400 "$READ" GET "/v1/projects/$(printf "a%.0s" $(seq 1 65))" &&
	expect_status 400 "$READ" GET "/v1/projects/$(printf "a%.0s" $(seq 1 300))/events" &&
	expect_status 404 "$READ" GET /v1/projects/00000000-0000-4000-8000-00000000dead/snapshots &&
	expect_status 404 "$READ" GET /v1/projects/00000000-0000-4000-8000-00000000dead/events &&
	expect_status 404 "$ADMIN" POST /v1/projects/00000000-0000-4000-8000-00000000dead/save &&
	expect_status 404 "$READ" GET /v1/projects/$P1/other &&
	expect_status 404 "$READ" GET /v1/projects/$P1/events/x &&
	expect_status 404 "$READ" GET /v1/projects/ &&
	expect_status 404 "$READ" GET /v1/nothing
'

test_expect_success 'GET /v1/projects/{id}/snapshots lists the store like `snapshots --json`' '
	expect_status 200 "$READ" GET /v1/projects/$P1/snapshots &&
	test_json body ".project == \"$P1\" and .source == \"store\" and .count == 2" &&
	jq -r ".snapshots[].name" body >api-names &&
	snap_names $P1 >cli-names &&
	test_cmp cli-names api-names &&
	test_json body ".snapshots[0] | has(\"files\") and has(\"logical_bytes\") and has(\"new_bytes\") and has(\"age\")"
'

test_expect_success 'GET /v1/projects/{id}/events' '
	expect_status 200 "$READ" GET /v1/projects/$P1/events &&
	test_json body ".project == \"$P1\" and (.events | type) == \"array\"" &&
	expect_status 200 "$READ" GET "/v1/projects/$P1/events?limit=1" &&
	test_json body "(.events | length) <= 1" &&
	expect_status 400 "$READ" GET "/v1/projects/$P1/events?limit=-1"
'

test_expect_success 'POST open returns a pending operation; GET /v1/operations/{op} follows it' '
	expect_status 202 "$ADMIN" POST /v1/projects/$P1/open -d "{\"host\": \"h1\"}" &&
	test_json body ".operation.kind == \"open\" and .operation.state == \"pending\" and .operation.target_host == \"h1\"" &&
	test_json body ".operation.requested_by == \"api:ops\" and .operation.active == true" &&
	op=$(jq .operation.id body) &&
	expect_status 200 "$READ" GET /v1/operations/$op &&
	test_json body ".id == $op and .project == \"$P1\" and .phase == \"queued\" and .bytes_done == 0" &&
	expect_status 200 "$READ" GET /v1/projects/$P1/operations &&
	test_json body ".operations[0].id == $op" &&
	expect_status 200 "$READ" GET /v1/projects/$P1 &&
	test_json body ".desired_host == \"h1\" and .host == null" &&
	expect_status 409 "$ADMIN" POST /v1/projects/$P1/move -d "{\"to\": \"h2\"}" &&
	test_json body ".error.code == \"conflict\" and (.error.message | test(\"in progress\"))" &&
	expect_status 409 "$ADMIN" POST /v1/projects/$P1/open &&
	ps events $P1 --json >/dev/null
'

test_expect_success 'POST validation: bodies, fields, hosts, states' '
	expect_status 400 "$ADMIN" POST /v1/projects/$P3/move &&
	test_json body ".error.message | test(\"to\")" &&
	expect_status 400 "$ADMIN" POST /v1/projects/$P3/move -d "{\"to\": 1}" &&
	expect_status 400 "$ADMIN" POST /v1/projects/$P3/move -d "{\"to\": \"h1\", \"x\": 1}" &&
	expect_status 400 "$ADMIN" POST /v1/projects/$P3/move -d "{\"to\": \"../h1\"}" &&
	expect_status 400 "$ADMIN" POST /v1/projects/$P3/move -d "{\"to\": \"h1\"" &&
	test_json body ".error.code == \"bad_json\"" &&
	expect_status 400 "$ADMIN" POST /v1/projects/$P3/move -d "[\"h1\"]" &&
	test_json body ".error.code == \"bad_json\"" &&
	expect_status 400 "$ADMIN" POST /v1/projects/$P3/move -d "{\"to\": \"h1\", \"to\": \"h2\"}" &&
	expect_status 400 "$ADMIN" POST /v1/projects/$P3/save -d "{\"to\": \"h1\"}" &&
	expect_status 400 "$ADMIN" POST "/v1/projects/$P3/save?now=1" &&
	expect_status 404 "$ADMIN" POST /v1/projects/$P3/move -d "{\"to\": \"h9\"}" &&
	test_json body ".error.code == \"unknown_host\"" &&
	expect_status 409 "$ADMIN" POST /v1/projects/$P3/save &&
	test_json body ".error.message | test(\"not deployed\")" &&
	expect_status 409 "$ADMIN" POST /v1/projects/$P3/close &&
	expect_status 405 "$ADMIN" GET /v1/projects/$P3/move &&
	expect_status 405 "$ADMIN" DELETE /v1/projects/$P3 &&
	expect_status 405 "$ADMIN" PUT /v1/projects &&
	expect_status 405 "" POST /healthz &&
	expect_status 405 "" DELETE /metrics &&
	ps projects --json >after.json &&
	test_json after.json "map(select(.id == \"$P3\"))[0].desired_host == null"
'

test_expect_success 'oversized bodies are refused with 413, the server goes on' '
	head -c 20000 /dev/zero | tr "\0" "a" >big.json &&
	expect_status 413 "$ADMIN" POST /v1/projects/$P3/move --data-binary @big.json &&
	test_json body ".error.code == \"payload_too_large\"" &&
	expect_status 413 "$ADMIN" POST /v1/projects/$P3/move -H "Transfer-Encoding: chunked" --data-binary @big.json &&
	expect_status 200 "$READ" GET /v1/projects/$P3 &&
	long=$(head -c 40000 /dev/zero | tr "\0" "a") &&
	code=$(req "$READ" GET "/v1/projects?search=$long") &&
	case $code in 400|413|414|431) ;; *) echo >&4 "long URL: $code"; false ;; esac &&
	expect_status 200 "$READ" GET /v1/projects/$P3
'

test_expect_success 'operation ids are checked' '
	expect_status 400 "$READ" GET /v1/operations/abc &&
	expect_status 400 "$READ" GET /v1/operations/0 &&
	expect_status 400 "$READ" GET /v1/operations/-1 &&
	expect_status 400 "$READ" GET /v1/operations/99999999999999999999 &&
	expect_status 404 "$READ" GET /v1/operations/424242 &&
	test_json body ".error.code == \"not_found\""
'

test_expect_success 'GET /v1/hosts and /v1/stores' '
	expect_status 200 "$READ" GET /v1/hosts &&
	test_json body "(.hosts | length) == 2 and .hosts[0].name == \"h1\" and .hosts[0].capacity == 10" &&
	test_json body ".hosts[0] | has(\"load\") and has(\"deployed\") and has(\"state\") and has(\"last_heartbeat\")" &&
	test_json body ".hosts[1].capacity == null and .hosts[1].load == null" &&
	expect_status 200 "$READ" GET /v1/stores &&
	test_json body "(.stores | length) >= 1 and .stores[0].projects == 3 and .stores[0].logical_bytes > 0" &&
	test_json body ".stores[0] | has(\"ratio\") and has(\"last_sync\") and has(\"newest_snapshot\")"
'

test_expect_success 'concurrent requests: 300 reads from 30 clients all answered' '
	seq 1 300 | xargs -P 30 -I{} curl -s -o /dev/null -w "%{http_code}\n" \
		-H "Authorization: Bearer $READ" "${SERVE_URL}v1/projects/$P2" >codes &&
	test_line_count = 300 codes &&
	test "$(sort -u codes)" = 200
'

test_expect_success 'concurrent moves of one project: exactly one is accepted' '
	seq 1 12 | xargs -P 12 -I{} curl -s -o /dev/null -w "%{http_code}\n" -X POST \
		-H "Authorization: Bearer $ADMIN" -d "{\"to\": \"h2\"}" "${SERVE_URL}v1/projects/$P3/move" >codes &&
	test_line_count = 12 codes &&
	test "$(grep -c "^202$" codes)" = 1 &&
	test "$(grep -c "^409$" codes)" = 11
'

test_expect_success '/metrics counts the answers and the queue' '
	expect_status 200 "" GET /metrics &&
	test_grep "^projstore_queue_depth 2$" body &&
	test_grep "^projstore_operations{kind=\"move\",state=\"pending\"} 1$" body &&
	test_grep "^projstore_http_requests_total{code=\"413\"} [1-9]" body &&
	test_grep "^projstore_http_requests_total{code=\"401\"} [1-9]" body
'

test_expect_success 'SIGTERM stops the server cleanly' '
	serve_stop
'

test_expect_success 'rate limit: a burst over the limit gets 429 with Retry-After' '
	serve_start --token-file tokens --rate-limit 0.5 --rate-burst 5 &&
	for i in $(seq 1 12); do req "$READ" GET /v1/summary; echo; done >codes &&
	test "$(grep -c "^200$" codes)" -ge 5 &&
	test "$(grep -c "^429$" codes)" -ge 5 &&
	expect_status 429 "$READ" GET /v1/summary &&
	test_grep -i "^retry-after: 1" headers &&
	test_json body ".error.code == \"rate_limited\"" &&
	sleep 2.2 &&
	expect_status 200 "$READ" GET /v1/summary &&
	serve_stop
'

test_expect_success 'without --token-file: tokens created readable only by the owner, path printed' '
	mkdir state &&
	PROJSTORE_STATE_DIR=$TRASH/state serve_start --rate-limit 0 &&
	test_grep "created tokens .* in $TRASH/state/serve-tokens" "$SERVE_LOG" &&
	test "$(stat -c %a state/serve-tokens)" = 600 &&
	test "$(stat -c %U state/serve-tokens)" = "$(id -un)" &&
	tok=$(awk "\$1 == \"admin\" { print \$2 }" state/serve-tokens) &&
	rtok=$(awk "\$1 == \"read\" { print \$2 }" state/serve-tokens) &&
	test ${#tok} -ge 32 && test "$tok" != "$rtok" &&
	expect_status 200 "$tok" GET /v1/summary &&
	test_json body ".role == \"admin\"" &&
	expect_status 403 "$rtok" POST /v1/projects/$P1/save &&
	serve_stop &&
	PROJSTORE_STATE_DIR=$TRASH/state serve_start --rate-limit 0 &&
	test_grep "tokens from $TRASH/state/serve-tokens" "$SERVE_LOG" &&
	expect_status 200 "$tok" GET /v1/summary &&
	serve_stop
'

test_expect_success 'bad token files, catalogs and addresses fail the start clearly' '
	test_expect_code 1 "$PROJSTORE" serve --listen 127.0.0.1:0 --token-file missing 2>err &&
	test_grep "token file missing does not exist" err &&
	cp tokens open-tokens && chmod 644 open-tokens &&
	test_expect_code 1 "$PROJSTORE" serve --listen 127.0.0.1:0 --token-file open-tokens 2>err &&
	test_grep "can be read by others" err &&
	(umask 077 && echo "root $ADMIN" >bad-tokens) &&
	test_expect_code 1 "$PROJSTORE" serve --listen 127.0.0.1:0 --token-file bad-tokens 2>err &&
	test_grep "role must be" err &&
	(umask 077 && echo "admin short" >bad-tokens) &&
	test_expect_code 1 "$PROJSTORE" serve --listen 127.0.0.1:0 --token-file bad-tokens 2>err &&
	test_expect_code 1 "$PROJSTORE" serve --listen nowhere --token-file tokens 2>err &&
	test_expect_code 1 "$PROJSTORE" serve --listen 127.0.0.1:99999 --token-file tokens 2>err &&
	test_expect_code 2 "$PROJSTORE" serve --threads 0 2>err &&
	test_expect_code 2 "$PROJSTORE" serve --rate-limit fast 2>err &&
	test_expect_code 1 "$PROJSTORE" serve --listen 127.0.0.1:0 --token-file tokens \
		--catalog "postgresql://postgres@127.0.0.1:1/none?connect_timeout=2" 2>err &&
	test_grep -i "catalog" err &&
	serve_start --token-file tokens &&
	port=${SERVE_URL##*:} && port=${port%/} &&
	test_expect_code 1 "$PROJSTORE" serve --listen 127.0.0.1:$port --token-file tokens 2>err &&
	test_grep "cannot listen on 127.0.0.1:$port" err &&
	serve_stop
'

test_expect_success 'the global --catalog option (before the command) reaches serve' '
	test_expect_code 1 env -u PROJSTORE_CATALOG "$PROJSTORE" \
		--catalog "postgresql://postgres@127.0.0.1:1/none?connect_timeout=2" \
		serve --listen 127.0.0.1:0 --token-file tokens 2>err &&
	test_grep "cannot connect to the catalog (postgresql)" err
'

test_done
