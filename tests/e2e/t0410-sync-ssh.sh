#!/bin/bash
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-sshd.sh"

test_description 'sync to and from ssh://localhost through a real sshd on loopback; the protocol against hostile input'

helper () { "$TOOLS/ps-synchelper" "$@"; }
snaps_of () {
	ps --store "$1" snapshots "$2" --json | jq -c '[.snapshots[] | {name, root}]'
}

test_expect_success SSHD 'start sshd on a loopback port with generated keys' '
	sshd_start &&
	kill -0 "$SSHD_PID"
'

test_expect_success SSHD 'setup: a local store with a project' '
	ps init A &&
	mkdir -p p/sub &&
	random_file p/big.bin 2048 &&
	seq 1 30000 >p/sub/seq.txt &&
	ps --store A save proj p &&
	echo two >p/two.txt &&
	ps --store A save proj p &&
	ps init R
'

test_expect_success SSHD 'sync to ssh://localhost: snapshots there, verified, bytes close to the stored size' '
	ps sync A "ssh://localhost$TRASH/R" --json >to.json &&
	test_json to.json ".ok == true and .snapshots_copied == 2 and .connect_ms > 0" &&
	test_cmp <(snaps_of A proj) <(snaps_of R proj) &&
	ps --store R check --read-data &&
	sent=$(jq .bytes_sent to.json) && wire=$(jq ".wire_bytes_out + .wire_bytes_in" to.json) &&
	echo "stored bytes sent $sent, protocol bytes $wire" >&4 &&
	test "$wire" -le $((sent + sent / 10 + 20000))
'

test_expect_success SSHD 'sync from ssh://localhost to a local store' '
	ps init L &&
	ps sync "ssh://localhost$TRASH/R" L --json >from.json &&
	test_json from.json ".snapshots_copied == 2" &&
	test_cmp <(snaps_of A proj) <(snaps_of L proj) &&
	ps --store L check --read-data &&
	ps --store L restore proj out &&
	treecmp --no-atime p out
'

test_expect_success SSHD 'ssh to ssh, and user@host:port in the URL' '
	ps init R2 &&
	ps sync "ssh://localhost$TRASH/R" "ssh://root@localhost:$SSHD_PORT$TRASH/R2" --json >both.json &&
	test_json both.json ".snapshots_copied == 2" &&
	ps --store R2 check --read-data
'

test_expect_success SSHD 'an incremental change over ssh sends little more than its compressed size' '
	echo changed >>p/sub/seq.txt &&
	ps --store A save proj p --json >save.json &&
	ps sync A "ssh://localhost$TRASH/R" --json >inc.json &&
	new=$(jq .snapshot.new_bytes save.json) &&
	test "$(jq .bytes_sent inc.json)" -eq "$new" &&
	wire=$(jq ".wire_bytes_out + .wire_bytes_in" inc.json) &&
	echo "new objects $new bytes, protocol $wire bytes" >&4 &&
	test "$wire" -le $((new + new / 10 + 4096))
'

test_expect_success SSHD 'a history of 200 snapshots over ssh' '
	ps init H && ps init HR &&
	helper history H long 200 &&
	ps sync H "ssh://localhost$TRASH/HR" --json >long.json &&
	test_json long.json ".snapshots_copied == 200" &&
	test_cmp <(snaps_of H long) <(snaps_of HR long)
'

test_expect_success SSHD 'a store that is not there: a clear error, exit 1' '
	test_expect_code 1 ps sync A "ssh://localhost$TRASH/nothing" 2>err &&
	test_grep -E "does not exist|not a projstore store" err
'

test_expect_success SSHD 'the far end without projstore: a clear error' '
	test_expect_code 1 ps sync --remote-bin /nonexistent/projstore A "ssh://localhost$TRASH/R" 2>err &&
	test_grep -i "closed the connection\|not found" err
'

test_expect_success SSHD 'ssh refusing the key: a clear error, exit 1' '
	test_expect_code 1 ps sync --ssh "ssh -F $SSHD_DIR/ssh_config -i /dev/null -o IdentityFile=none" \
		A "ssh://nobody-here@localhost$TRASH/R" 2>err &&
	test_grep -i "closed the connection\|denied" err
'

test_expect_success 'a far end that prints text instead of the protocol is named as such' '
	cat >banner-ssh <<-\EOF &&
	#!/bin/sh
	echo "Welcome to the machine"
	exec cat >/dev/null
	EOF
	chmod +x banner-ssh &&
	test_expect_code 1 ps sync --ssh "$PWD/banner-ssh" A ssh://somewhere/srv/store 2>err &&
	test_grep "does not speak the sync protocol" err &&
	test_grep "Welcome to the machine" err
'

test_expect_success 'a far end that sends an oversized or truncated frame: a clear error, exit 1' '
	cat >huge-ssh <<-\EOF &&
	#!/bin/sh
	printf "\377\377\377\177"
	exec cat >/dev/null
	EOF
	cat >short-ssh <<-\EOF &&
	#!/bin/sh
	printf "\100\000\000\000\202PSSYNC"
	EOF
	chmod +x huge-ssh short-ssh &&
	test_expect_code 1 ps sync --ssh "$PWD/huge-ssh" A ssh://somewhere/srv/store 2>err &&
	test_grep "exceeds the limit" err &&
	test_expect_code 1 ps sync --ssh "$PWD/short-ssh" A ssh://somewhere/srv/store 2>err &&
	test_grep "middle of a frame" err
'

# serve-stdio fed hostile streams directly: every case is a clear message and
# exit 1, the store untouched
for kind in truncated oversized zero garbage badhello badput early; do
	test_expect_success "serve-stdio refuses a $kind stream" '
		helper frames in.'$kind' '$kind' &&
		store_listing R >before &&
		test_expect_code 1 ps serve-stdio "$TRASH/R" <in.'$kind' >sout 2>err &&
		test_grep -E "protocol|truncated|closed the connection|exceeds|HELLO|magic" err &&
		store_listing R >after &&
		test_cmp before after
	'
done

test_expect_success 'serve-stdio answers a hostile frame with an ERROR frame the client can read' '
	helper frames in.oversized oversized &&
	ps serve-stdio "$TRASH/R" <in.oversized >sout 2>err;
	# HELLO_OK first, then an ERROR frame (type 0x81) saying why
	od -An -tx1 sout | tr -d " \n" >hex &&
	test_grep "81" hex &&
	test_grep -a "exceeds" sout
'

test_expect_success 'serve-stdio: a client that goes away is not an error' '
	helper frames in.hello zero &&
	head -c 15 in.hello >in.justhello &&
	ps serve-stdio "$TRASH/R" <in.justhello >sout 2>err
'

test_expect_success SSHD 'stop sshd by its pid' '
	sshd_stop &&
	test -z "$SSHD_PID"
'

test_done
