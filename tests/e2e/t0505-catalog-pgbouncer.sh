#!/bin/bash
# A PostgreSQL catalog reached through PgBouncer in session mode
# (docs/CATALOG.md, "Many short commands"): every short-lived command then
# borrows a warm server connection instead of starting a new backend.  The
# catalog's prepared statements must survive connection reuse: PgBouncer's
# DISCARD ALL drops them when a client leaves, and the next client prepares
# its own under the same names.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-pg.sh"

test_description 'catalog: PostgreSQL through PgBouncer (session pooling)'

UNIT=${PS_UNIT_BIN:-$(dirname "$PROJSTORE")/tests/test_catalog}
prereq_PGBOUNCER () { command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ]; }
PGB=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)

# sessions the PostgreSQL server has started for the catalog database so far
# (this query is one of them)
sessions () {
	local n
	n=$(cd / && runuser -u postgres -- psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d projstore -Atc \
		"SELECT sessions FROM pg_stat_database WHERE datname = 'projstore'") &&
	[ -n "$n" ] && echo "$n"
}

pgb_stop () {
	local pid
	pid=$(cat "$PGB_DIR/pgbouncer.pid" 2>/dev/null) || return 0
	kill -INT "$pid" 2>/dev/null
	for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null
	return 0
}

test_expect_success POSTGRES,PGBOUNCER 'PostgreSQL and PgBouncer (session mode, DISCARD ALL) on loopback' '
	pg_start &&
	PGB_DIR=$PG_DIR/pgbouncer && mkdir "$PGB_DIR" &&
	PGB_PORT=$(pg_free_port_) &&
	cat >"$PGB_DIR/pgbouncer.ini" <<-INI &&
	[databases]
	projstore = host=127.0.0.1 port=$PG_PORT dbname=projstore user=postgres
	[pgbouncer]
	listen_addr = 127.0.0.1
	listen_port = $PGB_PORT
	unix_socket_dir =
	auth_type = trust
	auth_file = $PGB_DIR/users.txt
	pool_mode = session
	server_reset_query = DISCARD ALL
	ignore_startup_parameters = options
	default_pool_size = 4
	logfile = $PGB_DIR/pgbouncer.log
	pidfile = $PGB_DIR/pgbouncer.pid
	INI
	echo "\"postgres\" \"\"" >"$PGB_DIR/users.txt" &&
	chown -R postgres: "$PGB_DIR" &&
	test_atexit pgb_stop &&
	(cd / && runuser -u postgres -- "$PGB" -d "$PGB_DIR/pgbouncer.ini") &&
	wait_for "test -s $PGB_DIR/pgbouncer.pid" &&
	BOUNCER=postgresql://postgres@127.0.0.1:$PGB_PORT/projstore &&
	test_set_prereq PGB
'

test_expect_success PGB 'the catalog suite through the pooler' '
	PS_TEST_PG_URL=$BOUNCER "$UNIT" >out 2>&1
	rc=$?
	cat out >&4
	test $rc = 0 &&
	grep -q "postgresql: schema at latest" out &&
	! grep -q "^not ok" out
'

test_expect_success PGB 'short commands one after another reuse server connections; statements are prepared anew' '
	ps init >/dev/null &&
	ps --catalog "$BOUNCER" host add h1 --root "$TRASH/h1" >/dev/null &&
	ps --catalog "$BOUNCER" open p1 --host h1 >/dev/null &&
	before=$(sessions) &&
	for i in $(seq 1 30); do
		ps --catalog "$BOUNCER" projects --json >p.json &&
		ps --catalog "$BOUNCER" where p1 --json >w.json || return 1
	done &&
	test_json p.json "length == 1 and .[0].id == \"p1\"" &&
	test_json w.json ".status == \"opening\" or .status == \"stored\" or .status == \"deploying\"" &&
	after=$(sessions) &&
	echo "sessions started on the server: $before before, $after after 60 commands" &&
	test $((after - before)) -le 5
'

test_expect_success PGB 'concurrent clients through the pooler: one move wins' '
	ps --catalog "$BOUNCER" host add h2 --root "$TRASH/h2" >/dev/null &&
	ps --catalog "$BOUNCER" host add h3 --root "$TRASH/h3" >/dev/null &&
	ps --catalog "$BOUNCER" close p1 >/dev/null 2>&1
	ps --catalog "$BOUNCER" move p2 --to h2 >o2 2>e2 &
	a=$!
	ps --catalog "$BOUNCER" move p2 --to h3 >o3 2>e3 &
	b=$!
	wait $a; ra=$?
	wait $b; rb=$?
	echo "move exits: $ra $rb" &&
	{ [ "$ra" = 0 ] || [ "$rb" = 0 ]; } && [ "$ra" != "$rb" ]
'

test_done
