#!/bin/bash
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-serve.sh"

test_description 'serve: the dashboard in a real headless Chromium (search, open, move, back with the search kept)'

# playwright-core (npm) drives Debian's chromium; it is installed once into a
# cache outside the source tree.  PS_NODE_CACHE overrides the place.
NODE_CACHE=${PS_NODE_CACHE:-/var/cache/projstore-test/node}
PLAYWRIGHT=$NODE_CACHE/node_modules/playwright-core
ARTIFACTS=${PS_ARTIFACTS:-$SRCDIR/artifacts}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

command -v curl >/dev/null || test_skip_all "curl is not installed (scripts/deps.sh --test)"
[ -x "$CHROMIUM" ] || test_skip_all "no $CHROMIUM (apt-get install chromium; scripts/deps.sh --test)"
command -v node >/dev/null && command -v npm >/dev/null ||
	test_skip_all "node and npm are not installed (scripts/deps.sh --test)"
if ! [ -f "$PLAYWRIGHT/package.json" ]; then
	mkdir -p "$NODE_CACHE" &&
	(cd "$NODE_CACHE" && timeout 300 npm install --no-audit --no-fund --no-save --loglevel=error \
		playwright-core@1 >"$TRASH/npm.log" 2>&1) ||
	test_skip_all "npm could not install playwright-core into $NODE_CACHE (no network?): $(tail -n 1 "$TRASH/npm.log")"
fi

# the agents of the hosts do the move (the server never does)
"$PROJSTORE" agent --help >/dev/null 2>&1 || test_skip_all "this build has no 'projstore agent'"

PROJECTS="course-math-101 course-math-202 lab-bio-7 lab-chem-3 thesis-quantum"
MOVED=lab-bio-7

test_expect_success 'setup: store, catalog, two hosts, five projects, tokens' '
	ps init &&
	ps host add h1 --root "$TRASH/h1" --capacity 4 >/dev/null &&
	ps host add h2 --root "$TRASH/h2" --capacity 8 >/dev/null &&
	mkdir -p "$TRASH/h1" "$TRASH/h2" &&
	for p in $PROJECTS; do
		mkdir -p src/$p/notes && seq 1 3000 >src/$p/notes/data.txt && echo "$p" >src/$p/name &&
		ps save $p src/$p >/dev/null || return 1
	done &&
	ps quota course-math-101 1M >/dev/null &&
	serve_tokens tokens
'

deployed_on () {
	req "$READ" GET /v1/projects/$MOVED >/dev/null &&
	jq -e ".host == \"$1\" and .status == \"deployed\"" body >/dev/null
}
hosts_alive () {
	req "$READ" GET /v1/hosts >/dev/null && jq -e "[.hosts[].alive] == [true, true]" body >/dev/null
}

start_agents () {
	for h in h1 h2; do
		"$PROJSTORE" agent --host $h --poll 200ms --autosave-interval 0 --threads 2 \
			--log "$TRASH/agent-$h.log" &
		test_atexit "kill $!"
	done
}

test_expect_success 'server and agents run; the project to move is deployed on h1' '
	serve_start --token-file tokens --rate-limit 0 &&
	start_agents &&
	expect_status 202 "$ADMIN" POST /v1/projects/$MOVED/open -d "{\"host\": \"h1\"}" &&
	wait_for "deployed_on h1" 90 &&
	wait_for hosts_alive 30
'

test_expect_success 'the dashboard in Chromium: sign in, search, open, move, back with the search kept' '
	mkdir -p "$ARTIFACTS" &&
	shot=$ARTIFACTS/dashboard-move.png &&
	rm -f "$shot" &&
	SERVE_URL=$SERVE_URL TOKEN=$ADMIN PROJECT=$MOVED FROM=h1 TO=h2 SEARCH=bio ALL=5 \
	SHOT=$shot PLAYWRIGHT=$PLAYWRIGHT CHROMIUM=$CHROMIUM \
		timeout 300 node "$SRCDIR/tests/browser/dashboard.mjs" >browser.tap 2>&1;
	rc=$?
	sed "s/^/# /" browser.tap >&3
	test $rc = 0 &&
	test -s "$shot" &&
	echo "# screenshot: $shot" >&3
' 3>&1

test_expect_success 'the catalog agrees: moved to h2, one move done' '
	expect_status 200 "$READ" GET /v1/projects/$MOVED &&
	test_json body ".host == \"h2\" and .status == \"deployed\"" &&
	expect_status 200 "$READ" GET /v1/projects/$MOVED/operations &&
	test_json body "[.operations[] | select(.kind == \"move\" and .state == \"done\")] | length == 1" &&
	ps where $MOVED --json >direct.json &&
	PROJSTORE_API_TOKEN=$READ ps where $MOVED --json --api "$SERVE_URL" >api.json &&
	test_cmp direct.json api.json &&
	test_json api.json ".host == \"h2\" and (.path | endswith(\"/$MOVED\"))"
'

test_done
