#!/bin/bash
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-pg.sh"
. "$TEST_DIRECTORY/lib-agent.sh"

test_description 'host agents (PostgreSQL catalog): the same life cycle as t0530'

if ! test_have_prereq POSTGRES; then
	test_expect_success POSTGRES 'PostgreSQL is available' 'true'
	test_done
fi
test_expect_success 'start PostgreSQL' '
	pg_start &&
	export PROJSTORE_CATALOG=$PG_URL
'
[ -n "${PG_URL:-}" ] || test_done

. "$TEST_DIRECTORY/lib-agent-lifecycle.sh"

test_done
