# lib-pg.sh - starts a throwaway PostgreSQL server for a test file.
#
#   . "$TEST_DIRECTORY/lib-pg.sh"
#   pg_start || skip_all ...      # sets PG_URL (postgresql://...) and PG_PID
#
# initdb (as the postgres user, which PostgreSQL requires) into a directory
# of its own under /tmp (postgres must be able to reach it), a server on a
# free 127.0.0.1 port and a Unix socket in that directory, trust
# authentication for loopback only.  The server is stopped by its PID when
# the test file ends (test_atexit), and the directory removed.

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

prereq_POSTGRES () {
	prereq_ROOT && [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] && id postgres
}

pg_free_port_ () {
	local p
	for _ in $(seq 1 50); do
		p=$(( 20000 + RANDOM % 20000 ))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# pg_start [DBNAME]: starts the server, creates DBNAME (default projstore).
pg_start () {
	local db=${1:-projstore} try
	PG_DIR=$(mktemp -d /tmp/projstore-pg.XXXXXX) || return 1
	chmod 755 "$PG_DIR" && mkdir "$PG_DIR/data" && chown postgres: "$PG_DIR" "$PG_DIR/data" || return 1
	test_atexit pg_stop
	runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres \
		--no-sync >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&4; return 1; }
	for try in 1 2 3 4 5; do
		PG_PORT=$(pg_free_port_) || return 1
		if runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -w -t 60 \
			-l "$PG_DIR/server.log" \
			-o "-k $PG_DIR -h 127.0.0.1 -p $PG_PORT -c fsync=off -c max_connections=200" \
			start >"$PG_DIR/pg_ctl.log" 2>&1; then
			break
		fi
		PG_PORT=
	done
	[ -n "$PG_PORT" ] || { cat "$PG_DIR/server.log" >&4 2>/dev/null; return 1; }
	PG_PID=$(head -n 1 "$PG_DIR/data/postmaster.pid") || return 1
	(cd / && runuser -u postgres -- "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$db") || return 1
	PG_URL="postgresql://postgres@127.0.0.1:$PG_PORT/$db"
	export PG_URL PG_PID PG_PORT
}

# pg_newdb NAME: another empty database on the same server; prints its URL.
pg_newdb () {
	(cd / && runuser -u postgres -- "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$1") &&
	echo "postgresql://postgres@127.0.0.1:$PG_PORT/$1"
}

pg_stop () {
	if [ -n "${PG_PID:-}" ] && kill -0 "$PG_PID" 2>/dev/null; then
		kill -INT "$PG_PID" 2>/dev/null
		for _ in $(seq 1 100); do
			kill -0 "$PG_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$PG_PID" 2>/dev/null
	fi
	PG_PID=
	[ -n "${PG_DIR:-}" ] && rm -rf "$PG_DIR"
	PG_DIR=
}
