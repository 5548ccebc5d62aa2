# lib-serve.sh - helpers for the tests of `projstore serve` (sourced after
# test-lib.sh).
#
#   serve_tokens FILE            writes a token file (mode 0600) with the
#                                admin token $ADMIN and the read token $READ
#   serve_start [ARGS...]        starts `projstore serve --listen 127.0.0.1:0
#                                ARGS` in the background; sets SERVE_URL,
#                                SERVE_PID, SERVE_LOG; stopped (by PID) when the
#                                test file ends
#   serve_stop                   SIGTERM, waits; fails unless it exited 0 without
#                                sanitizer reports
#   req TOKEN METHOD PATH [CURL ARGS...]
#                                one request; the body goes to ./body, the
#                                headers to ./headers, the status is printed
#   expect_status CODE TOKEN METHOD PATH [CURL ARGS...]
#                                the same, failing unless the status is CODE
#                                (and, for JSON answers, unless an error has
#                                the {"error": {"code", "message"}} shape)

ADMIN=admin-$(printf '%s' "$TRASH" | sha256sum | cut -c1-40)
READ=read-$(printf '%s' "$TRASH" | sha256sum | cut -c41-64)aaaa

prereq_CURL () { command -v curl; }

serve_tokens () {
	(umask 077 && printf '# test tokens\nadmin %s ops\nread %s\n' "$ADMIN" "$READ" >"$1")
}

serve_start () {
	SERVE_LOG=$TRASH/serve.$$.$RANDOM.log
	"$PROJSTORE" serve --listen 127.0.0.1:0 "$@" >"$SERVE_LOG" 2>&1 &
	SERVE_PID=$!
	test_atexit "kill $SERVE_PID"
	wait_for "grep -q 'listening on' '$SERVE_LOG' || ! kill -0 $SERVE_PID 2>/dev/null" 30 || return 1
	SERVE_URL=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$SERVE_LOG")
	if [ -z "$SERVE_URL" ]; then
		cat "$SERVE_LOG" >&4
		return 1
	fi
	export SERVE_URL SERVE_PID
}

serve_stop () {
	local rc
	kill -TERM "$SERVE_PID" 2>/dev/null
	wait "$SERVE_PID"
	rc=$?
	test_no_sanitizer_report "$SERVE_LOG" || return 1
	[ $rc = 0 ] || { echo >&4 "serve exited with $rc:"; tail -n 20 "$SERVE_LOG" >&4; return 1; }
}

req () {
	local tok=$1 method=$2 path=$3
	shift 3
	if [ "$method" = HEAD ]; then
		set -- --head "$@"
		method=GET
	fi
	if [ -n "$tok" ]; then
		curl -sS -o body -D headers -w '%{http_code}' -X "$method" \
			-H "Authorization: Bearer $tok" "$@" "$SERVE_URL${path#/}"
	else
		curl -sS -o body -D headers -w '%{http_code}' -X "$method" "$@" "$SERVE_URL${path#/}"
	fi
}

expect_status () {
	local want=$1 got
	shift
	got=$(req "$@") || { echo >&4 "curl failed: $*"; return 1; }
	if [ "$got" != "$want" ]; then
		echo >&4 "expected HTTP $want, got $got for: $*"
		head -c 2000 body >&4
		echo >&4
		return 1
	fi
	if [ "$want" -ge 400 ] && grep -qi '^content-type: application/json' headers; then
		jq -e '.error.code | type == "string"' body >/dev/null &&
		jq -e '.error.message | type == "string" and length > 0' body >/dev/null || {
			echo >&4 "error body without {error: {code, message}}:"
			cat body >&4
			return 1
		}
	fi
	return 0
}
