#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'a full disk: saves and restores fail clearly, publish nothing partial, and lose nothing'

test_expect_success MOUNT 'setup: a store on a 24 MiB tmpfs with one snapshot' '
	mkdir small && mount -t tmpfs -o size=24m tmpfs small &&
	export PROJSTORE_STORE=$TRASH/small/store &&
	ps init --compression none &&
	mkdir proj &&
	random_file proj/first.bin 2048 &&
	ps save p proj &&
	cp -a proj proj-first &&
	ps snapshots p --json >before.json
'

test_expect_success MOUNT 'a save that does not fit fails with a clear error and publishes nothing' '
	export PROJSTORE_STORE=$TRASH/small/store &&
	random_file proj/huge.bin 40960 &&
	test_expect_code 1 ps save p proj 2>err &&
	test_grep -i "no space" err &&
	ps snapshots p --json >after.json &&
	test "$(jq ".snapshots | length" after.json)" = 1 &&
	ps check --read-data &&
	rm -rf out && ps restore p out &&
	"$TOOLS/treecmp" --no-atime proj-first out
'

test_expect_success MOUNT 'after space is freed the next save succeeds and reuses or removes the leftovers' '
	export PROJSTORE_STORE=$TRASH/small/store &&
	rm proj/huge.bin &&
	random_file proj/second.bin 1024 &&
	ps save p proj &&
	ps check --read-data &&
	test -z "$(ls -A "$PROJSTORE_STORE/tmp")" &&
	rm -rf out && ps restore p out && "$TOOLS/treecmp" --no-atime proj out
'

test_expect_success MOUNT 'a restore onto a full filesystem fails and leaves no partial target' '
	export PROJSTORE_STORE=$TRASH/small/store &&
	mkdir tiny && mount -t tmpfs -o size=1m tmpfs tiny &&
	test_when_finished "umount -l \"$TRASH/tiny\"" &&
	test_expect_code 1 ps restore p tiny/out 2>err &&
	test_grep -i "no space" err &&
	test_path_is_missing tiny/out &&
	test -z "$(ls -A tiny)"
'

test_done
