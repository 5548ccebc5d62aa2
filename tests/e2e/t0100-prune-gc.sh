#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'retention (prune, policy, delete) on synthetic snapshot times; gc reclaims space, condemned packs are not deduplicated against, gc waits for older saves'

# Knob: PS_GC_MB (MiB of data the reclaim test frees, default 20).
GC_MB=${PS_GC_MB:-20}

LOCKS=$PROJSTORE_STORE/locks

# epoch TIME: seconds since the epoch of a UTC time "2026-01-01T10:00:00".
epoch () { date -u -d "$1Z" +%s; }

# save_at TIME PROJECT DIR: a save that records TIME as its time; prints the name.
save_at () {
	PROJSTORE_FAKE_TIME=$(epoch "$1") ps save "$2" "$3" --json | jq -r .snapshot.name
}

# letters OPTIONS...: the labels of the snapshots of project r that prune
# with OPTIONS would keep, newest first ("JIH").
letters () {
	ps prune r "$@" --dry-run --json >letters.json &&
	jq -r '.projects[0].keep[].name' letters.json >letters.names &&
	while read -r n; do grep -F " $n" labels | cut -c1; done <letters.names | tr -d '\n'
}

expect_letters () {
	local want=$1 got
	shift
	got=$(letters "$@") || return 1
	if [ "$got" != "$want" ]; then
		echo >&4 "prune $*: kept '$got', expected '$want'"
		return 1
	fi
}

store_bytes () { du -sb "$PROJSTORE_STORE" | cut -f1; }

# Makes N MiB of random data in DIR as 4 files.
random_tree () {
	mkdir -p "$1" &&
	for i in 1 2 3 4; do
		head -c $(($2 * 1024 * 1024 / 4)) /dev/urandom >"$1/data$i" || return 1
	done
}

test_expect_success 'setup: ten snapshots at chosen times' '
	ps init &&
	mkdir src &&
	echo content >src/f &&
	# Thursday 2026-01-01 .. Sunday 2026-03-15 (ISO week 2 starts on Monday 01-05)
	while read -r label time; do
		name=$(save_at "$time" r src) &&
		test -n "$name" &&
		echo "$label $name" >>labels || return 1
	done <<-EOF &&
	A 2026-01-01T10:00:00
	B 2026-01-01T12:00:00
	C 2026-01-01T23:59:00
	D 2026-01-02T08:00:00
	E 2026-01-02T09:00:00
	F 2026-01-05T00:00:00
	G 2026-01-05T00:10:00
	H 2026-01-05T00:20:00
	I 2026-02-01T00:00:00
	J 2026-03-15T06:30:00
	EOF
	test "$(snap_count r)" = 10 &&
	snap_names r >names &&
	cut -d" " -f2 labels >expected-names &&
	test_cmp expected-names names
'

test_expect_success 'keep rules: last, buckets, within, unlimited counts' '
	expect_letters JIH --keep-last 3 &&
	expect_letters JIHGFEDCBA --keep-last -1 &&
	expect_letters JIHE --keep-daily 4 &&
	expect_letters JIHEC --keep-daily -1 &&
	expect_letters JI --keep-hourly 2 &&
	expect_letters JIHEDCBA --keep-hourly -1 &&
	expect_letters JIHGE --keep-15min 5 &&
	expect_letters JIH --keep-weekly 3 &&
	expect_letters JIHE --keep-weekly -1 &&
	expect_letters JI --keep-monthly 2 &&
	expect_letters JIH --keep-monthly -1 &&
	expect_letters J --keep-within 2d &&
	expect_letters JI --keep-within 45d &&
	expect_letters J --keep-within 1m2w &&
	expect_letters JI --keep-within 1m2w7h
'

test_expect_success 'rules are a union; reasons are reported' '
	expect_letters JIH --keep-last 1 --keep-daily 1 --keep-monthly 3 &&
	expect_letters JIHE --keep-hourly 1 --keep-weekly 4 &&
	ps prune r --keep-last 2 --keep-monthly -1 --dry-run --json >u.json &&
	test_json u.json ".dry_run == true and .removed == 7 and .kept == 3" &&
	test_json u.json ".projects[0].keep[0].reasons == [\"newest\", \"last\", \"monthly\"]" &&
	test_json u.json ".projects[0].keep[1].reasons == [\"last\", \"monthly\"]" &&
	test_json u.json ".projects[0].keep[2].reasons == [\"monthly\"]" &&
	test_json u.json ".projects[0].remove | length == 7" &&
	test_json u.json ".projects[0].policy.last == 2 and .projects[0].policy.monthly == -1 and .projects[0].policy.daily == null"
'

test_expect_success 'the newest snapshot is always kept' '
	expect_letters J --keep-within 0s &&
	expect_letters J --keep-hourly 1 &&
	expect_letters J --keep-last 1
'

test_expect_success 'a dry run prints what would go and changes nothing' '
	store_listing >before &&
	ps prune r --keep-daily 4 --dry-run >out &&
	store_listing >after &&
	test_cmp before after &&
	test_grep "would remove 6 of 10" out &&
	for l in A B C D F G; do
		n=$(grep "^$l " labels | cut -d" " -f2) &&
		grep "remove?  $n" out || return 1
	done &&
	test "$(snap_count r)" = 10
'

test_expect_success 'invalid options and a missing policy change nothing' '
	store_listing >before &&
	test_expect_code 2 ps prune r --keep-daily 0 &&
	test_expect_code 2 ps prune r --keep-daily x &&
	test_expect_code 2 ps prune r --keep-within 5x &&
	test_expect_code 2 ps prune r --all --keep-last 1 &&
	test_expect_code 2 ps prune --keep-last 1 &&
	test_expect_code 2 ps prune Bad --keep-last 1 &&
	test_expect_code 2 ps prune r 2>err &&
	test_grep "no retention policy" err &&
	store_listing >after &&
	test_cmp before after
'

test_expect_success 'prune removes the refs and rewrites the list' '
	ps prune r --keep-daily 4 >out &&
	test_grep "removed 6 of 10" out &&
	snap_names r >names &&
	for l in E H I J; do grep "^$l " labels | cut -d" " -f2; done >expected &&
	test_cmp expected names &&
	ls "$PROJSTORE_STORE/projects/r/snaps" | sed "s/\.snap$//" >refs &&
	test_cmp expected refs &&
	test "$(grep -c "^projstore-snapshot 1" "$PROJSTORE_STORE/projects/r/snapshots")" = 4 &&
	ps cat r f >got &&
	test_cmp src/f got &&
	ps check
'

test_expect_success 'stored policies: per project, store default, kept next to other settings' '
	ps quota r 1G &&
	ps exclude r "*.tmp" &&
	ps policy r >out &&
	test_grep "none" out &&
	ps policy r --keep-last 3 --keep-within 1d &&
	ps policy r --json >p.json &&
	test_json p.json ".source == \"project\" and .policy.last == 3 and .policy.within == \"1d\"" &&
	ps quota r --json >q.json &&
	test_json q.json ".quota_bytes == 1073741824" &&
	ps exclude r >ex &&
	test_grep -F "*.tmp" ex &&
	ps quota r 2G &&
	ps policy r --json >p.json &&
	test_json p.json ".policy.last == 3" &&
	ps policy --default --keep-daily 1 &&
	ps policy --default --json >d.json &&
	test_json d.json ".project == null and .source == \"default\" and .policy.daily == 1" &&
	test_expect_code 2 ps policy r --keep-last 1 --clear &&
	test_expect_code 2 ps policy r --keep-weekly 0
'

test_expect_success 'prune --all uses each project'"'"'s policy, else the default' '
	save_at 2026-03-01T10:00:00 q src >/dev/null &&
	save_at 2026-03-02T10:00:00 q src >/dev/null &&
	save_at 2026-03-02T11:00:00 q src >/dev/null &&
	save_at 2026-03-01T10:00:00 nopol src >/dev/null &&
	ps policy r --keep-last 3 &&
	ps prune --all --dry-run --json >all.json &&
	test_json all.json "[.projects[] | select(.project == \"r\") | .keep | length] == [3]" &&
	test_json all.json "[.projects[] | select(.project == \"q\") | .keep | length] == [1]" &&
	test_json all.json "[.projects[] | select(.project == \"q\") | .policy.daily] == [1]" &&
	ps prune --all >out &&
	test "$(snap_count r)" = 3 &&
	test "$(snap_count q)" = 1 &&
	test "$(snap_count nopol)" = 1 &&
	ps policy r --clear &&
	ps policy r --json >p.json &&
	test_json p.json ".source == \"default\" and .policy.last == null and .effective.daily == 1" &&
	ps policy --default --clear &&
	ps policy r --json >p.json &&
	test_json p.json ".source == \"none\"" &&
	test_expect_code 2 ps prune r &&
	ps prune --all --json >all.json &&
	test_json all.json "[.projects[] | .skipped] | all(. == \"no retention policy\")" &&
	test "$(snap_count r)" = 3
'

test_expect_success 'delete removes every snapshot; settings stay unless --purge' '
	ps quota q 5G &&
	ps delete q --json >del.json &&
	test_json del.json ".removed == 1 and .purged == false" &&
	test "$(snap_count q)" = 0 &&
	ps quota q --json >q.json &&
	test_json q.json ".quota_bytes == 5368709120" &&
	ps delete q --purge &&
	test_path_is_missing "$PROJSTORE_STORE/projects/q" &&
	test_expect_code 7 ps delete q &&
	test_expect_code 7 ps delete never-existed &&
	test_expect_code 2 ps delete Bad &&
	ps check
'

test_expect_success 'gc: a dry run changes nothing' '
	random_tree big $GC_MB &&
	echo small >big/small &&
	ps save big big >/dev/null &&
	rm big/data* &&
	ps save big big >/dev/null &&
	ps prune big --keep-last 1 >/dev/null &&
	store_listing >before &&
	ps gc --dry-run --json >dry.json &&
	store_listing >after &&
	test_cmp before after &&
	test_json dry.json ".dry_run == true and .condemned_packs >= 1 and .deleted_packs == 0" &&
	test_json dry.json ".condemned_bytes >= $((GC_MB * 1024 * 1024 * 9 / 10))"
'

test_expect_success "gc frees the space of pruned data ($GC_MB MiB)" '
	before=$(store_bytes) &&
	ps gc --grace 0 --json >gc.json &&
	after=$(store_bytes) &&
	say "# store: $before -> $after bytes" >&3 &&
	test $((before - after)) -ge $((GC_MB * 1024 * 1024 * 9 / 10)) &&
	test_json gc.json ".freed_bytes >= $((GC_MB * 1024 * 1024 * 9 / 10)) and .pending_lists == 0" &&
	! ls "$PROJSTORE_STORE"/gc/condemned-* 2>/dev/null &&
	ps check --read-data --json >check.json &&
	test_json check.json ".ok == true and .leftovers == 0" &&
	ps restore big big-restored &&
	treecmp --no-atime big big-restored &&
	ps cat r f >got &&
	test_cmp src/f got
' 3>&1

test_expect_success 'a second gc finds nothing to do' '
	ps gc --grace 0 --json >gc2.json &&
	test_json gc2.json ".condemned_packs == 0 and .deleted_packs == 0 and .freed_bytes == 0"
'

test_expect_success 'a save after the condemnation does not deduplicate against condemned packs' '
	random_tree x1 4 &&
	cp -a x1 x-copy &&
	ps save x x1 >/dev/null &&
	rm x1/data* && echo y >x1/y &&
	ps save x x1 >/dev/null &&
	ps prune x --keep-last 1 >/dev/null &&
	{ ps gc --grace 4 --json >gcx.json 2>gcx.err & gcpid=$!; } &&
	wait_for "ls \"$PROJSTORE_STORE\"/gc/condemned-* >/dev/null 2>&1" 20 &&
	ps check --read-data &&
	cp -a x-copy/data* x1/ &&
	ps save x x1 --json >sx.json &&
	test_json sx.json ".snapshot.new_bytes >= $((4 * 1024 * 1024 * 9 / 10))" &&
	wait $gcpid &&
	test_json gcx.json ".deleted_packs + .repacked_packs >= 1 and .pending_lists == 0" &&
	ps check --read-data &&
	ps restore x x-restored &&
	treecmp --no-atime x1 x-restored
'

test_expect_success 'gc waits for a save that started before its condemnation' '
	sleep 300 &
	holder=$! &&
	test_when_finished "kill $holder 2>/dev/null; rm -f \"$LOCKS/zz.lock\"" &&
	printf "host %s\npid %s\nboot_id %s\ncreated %s\nexpires %s\n" "$(uname -n)" $holder \
		"$(cat /proc/sys/kernel/random/boot_id)" "$(now_ns)" $(( $(now_ns) + 3600000000000 )) \
		>"$LOCKS/zz.lock" &&
	random_tree y1 2 &&
	ps save y y1 >/dev/null &&
	rm y1/data* &&
	ps save y y1 >/dev/null &&
	ps prune y --keep-last 1 >/dev/null &&
	{ ps gc --grace 0 --json >gcy.json 2>gcy.err & gcpid=$!; } &&
	wait_for "ls \"$PROJSTORE_STORE\"/gc/condemned-* >/dev/null 2>&1" 20 &&
	sleep 2 &&
	kill -0 $gcpid &&
	test_grep "waiting for saves" gcy.err &&
	kill $holder && wait $holder;
	wait $gcpid &&
	test_json gcy.json ".freed_bytes >= $((2 * 1024 * 1024 * 9 / 10)) and .pending_lists == 0" &&
	ps check --read-data
'

test_expect_success 'a gc interrupted while it waits leaves a clean store; the next run finishes' '
	random_tree z1 2 &&
	ps save z z1 >/dev/null &&
	rm z1/data* &&
	ps save z z1 >/dev/null &&
	ps prune z --keep-last 1 >/dev/null &&
	{ "$PROJSTORE" gc --grace 600 >/dev/null 2>&1 & gcpid=$!; } &&
	wait_for "ls \"$PROJSTORE_STORE\"/gc/condemned-* >/dev/null 2>&1" 20 &&
	kill -9 $gcpid; wait $gcpid;
	ps check --read-data &&
	ps restore z z-restored &&
	treecmp --no-atime z1 z-restored &&
	ps gc --grace 0 --json >gcz.json &&
	test_json gcz.json ".freed_bytes >= $((2 * 1024 * 1024 * 9 / 10)) and .pending_lists == 0" &&
	ps check --read-data
'

# ------------------------------------------------------------ with FUSE

start_slow_save () {
	local project=$1 dir=$2 secs=$3
	mkdir -p "$dir/mnt" &&
	deadfs_start "$dir/mnt" --slow "$secs" &&
	SLOW_MNT=$TRASH/$dir/mnt &&
	test_atexit "umount -l '$SLOW_MNT'" &&
	{ "$PROJSTORE" save "$project" "$dir" --cross-filesystems \
		--cache-dir "$TRASH/cache-slow-$RANDOM" >"slow-$project.out" 2>&1 &
	  SLOW_PID=$!; } &&
	test_atexit "kill -9 $SLOW_PID"
}

test_expect_success FUSE 'objects a save that started before the condemnation reuses are kept' '
	random_tree w1 3 &&
	cp -a w1 slowdir &&
	ps save w w1 >/dev/null &&
	rm w1/data* && echo w >w1/w &&
	ps save w w1 >/dev/null &&
	ps prune w --keep-last 1 >/dev/null &&
	start_slow_save w2 slowdir 3 &&
	wait_for "grep -qx \"pid $SLOW_PID\" \"$LOCKS/w2.lock\" 2>/dev/null" 10 &&
	ps gc --grace 0 --json >gcw.json 2>gcw.err &&
	wait $SLOW_PID &&
	deadfs_stop "$SLOW_MNT" &&
	test_grep "waiting for saves" gcw.err &&
	test "$(snap_count w2)" = 1 &&
	ps check --read-data &&
	ps restore w2 w2-restored &&
	for i in 1 2 3 4; do
		cmp slowdir/data$i w2-restored/data$i || return 1
	done
'

test_done
