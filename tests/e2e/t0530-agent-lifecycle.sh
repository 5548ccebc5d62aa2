#!/bin/bash
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-agent.sh"

test_description 'host agents (SQLite catalog): open, autosave, save, move, close, a stopped agent'

. "$TEST_DIRECTORY/lib-agent-lifecycle.sh"

test_done
