#!/bin/bash
# (Executable only so that `prove tests/e2e/t*.sh` ignores it; it is a library.)
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	echo "1..0 # SKIP lib-sshd.sh is a test library, not a test"
	exit 0
fi

# lib-sshd.sh - a real OpenSSH server on loopback for the ssh:// tests.
#
#   . "$TEST_DIRECTORY/lib-sshd.sh"        (after test-lib.sh)
#   test_expect_success SSHD 'start sshd' 'sshd_start'
#   ... ssh://localhost/$TRASH/store ...   (PROJSTORE_SSH and PROJSTORE_REMOTE_BIN set)
#   sshd_stop                              (also run at exit)
#
# sshd_start generates a host key and a client key in $TRASH/sshd, writes an
# sshd_config that listens on 127.0.0.1 only, on a free port, accepting only
# that client key, and starts /usr/sbin/sshd -D in the background; the PID is
# in SSHD_PID and it is stopped by that PID (never by name: the machine's own
# sshd, if any, is not ours). The client side is an ssh_config naming the
# port, the key and a known_hosts file holding the generated host key, so
# nothing in ~/.ssh is used or changed.

prereq_SSHD () {
	prereq_ROOT && [ -x /usr/sbin/sshd ] && command -v ssh && command -v ssh-keygen
}

SSHD_DIR=$TRASH/sshd
SSHD_PID=

sshd_start () {
	local port try
	mkdir -p "$SSHD_DIR" && chmod 700 "$SSHD_DIR" || return 1
	# sshd's privilege separation needs this directory (created by the
	# package's service normally; empty, root-owned)
	[ -d /run/sshd ] || { mkdir -p /run/sshd && chmod 755 /run/sshd; } || return 1
	ssh-keygen -q -t ed25519 -N '' -f "$SSHD_DIR/host_key" </dev/null >/dev/null &&
	ssh-keygen -q -t ed25519 -N '' -f "$SSHD_DIR/client_key" </dev/null >/dev/null &&
	cp "$SSHD_DIR/client_key.pub" "$SSHD_DIR/authorized_keys" || return 1
	for try in 1 2 3 4 5 6 7 8; do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		cat >"$SSHD_DIR/sshd_config" <<-EOF
		ListenAddress 127.0.0.1
		Port $port
		HostKey $SSHD_DIR/host_key
		PidFile $SSHD_DIR/sshd.pid
		AuthorizedKeysFile $SSHD_DIR/authorized_keys
		PermitRootLogin prohibit-password
		PubkeyAuthentication yes
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		UsePAM no
		StrictModes no
		PrintMotd no
		PrintLastLog no
		Banner none
		MaxStartups 50
		MaxSessions 50
		LogLevel ERROR
		EOF
		: >"$SSHD_DIR/sshd.log"
		/usr/sbin/sshd -D -e -f "$SSHD_DIR/sshd_config" 2>>"$SSHD_DIR/sshd.log" &
		SSHD_PID=$!
		# listening, or dead (port taken: try another)
		local i
		for i in $(seq 1 100); do
			if ! kill -0 "$SSHD_PID" 2>/dev/null; then
				break
			fi
			if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
				SSHD_PORT=$port
				break 2
			fi
			sleep 0.05
		done
		kill "$SSHD_PID" 2>/dev/null
		wait "$SSHD_PID" 2>/dev/null
		SSHD_PID=
	done
	if [ -z "$SSHD_PID" ]; then
		echo >&4 "sshd_start: sshd did not start:"
		cat >&4 "$SSHD_DIR/sshd.log"
		return 1
	fi
	test_atexit "sshd_stop"
	printf '[localhost]:%s %s\n' "$SSHD_PORT" "$(cut -d' ' -f1-2 "$SSHD_DIR/host_key.pub")" \
		>"$SSHD_DIR/known_hosts"
	cat >"$SSHD_DIR/ssh_config" <<-EOF
	Host localhost
	    HostName 127.0.0.1
	    Port $SSHD_PORT
	    User root
	    IdentityFile $SSHD_DIR/client_key
	    IdentitiesOnly yes
	    UserKnownHostsFile $SSHD_DIR/known_hosts
	    StrictHostKeyChecking yes
	    HostKeyAlias [localhost]:$SSHD_PORT
	    LogLevel ERROR
	EOF
	export PROJSTORE_SSH="ssh -F $SSHD_DIR/ssh_config"
	export PROJSTORE_REMOTE_BIN=$PROJSTORE
	# the far end answers
	ssh -F "$SSHD_DIR/ssh_config" localhost true </dev/null
}

sshd_stop () {
	local i
	if [ -n "$SSHD_PID" ]; then
		kill "$SSHD_PID" 2>/dev/null
		# (at exit this runs in a subshell, where wait cannot reap it)
		for i in $(seq 1 50); do
			kill -0 "$SSHD_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$SSHD_PID" 2>/dev/null
		wait "$SSHD_PID" 2>/dev/null
		SSHD_PID=
	fi
	return 0
}
