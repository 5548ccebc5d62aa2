#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'saves, prunes, gc and restores running at the same time lose nothing'

# Knobs: PS_GC_CONCURRENT_SECS (how long the loops run, default 20; 60 for a
# longer run), PS_GC_CONCURRENT_SEED (seed of $RANDOM).
SECS=${PS_GC_CONCURRENT_SECS:-20}
RANDOM=${PS_GC_CONCURRENT_SEED:-$$}
NFILES=8
FILE_KB=128
say "# concurrent: $SECS s, seed ${PS_GC_CONCURRENT_SEED:-$$}"

refill () {
	head -c $((FILE_KB * 1024)) /dev/urandom >"$1.new" && mv -f "$1.new" "$1"
}

# saver PROJECT: until the deadline, changes the tree of PROJECT and saves
# it, keeping a copy of what each snapshot holds in keep/PROJECT/NAME. Some
# changes bring back the content of an older snapshot's file, which a save
# deduplicates against objects gc may have condemned.
saver () {
	local p=$1 n=0 name old f
	while [ "$(date +%s)" -lt "$DEADLINE" ]; do
		n=$((n + 1))
		f=$((RANDOM % NFILES))
		old=$(ls "keep/$p" 2>/dev/null | head -n 1)
		if [ -n "$old" ] && [ $((RANDOM % 3)) = 0 ] && [ -f "keep/$p/$old/f$f" ]; then
			cp "keep/$p/$old/f$f" "t-$p/f$f.new" && mv -f "t-$p/f$f.new" "t-$p/f$f"
		else
			refill "t-$p/f$f"
		fi || { echo "$p: cannot change the tree" >>errors; return; }
		refill "t-$p/f$(((f + 1) % NFILES))"
		echo "$n" >"t-$p/counter.new" && mv -f "t-$p/counter.new" "t-$p/counter"
		if ! "$PROJSTORE" save "$p" "t-$p" --lock-timeout 60 --json >"save-$p.json" \
			2>>"saver-$p.err" || ! name=$(jq -er .snapshot.name "save-$p.json"); then
			echo "$p: save $n failed" >>errors
			continue
		fi
		mkdir -p "keep/$p" && cp -al "t-$p" "keep/$p/$name.tmp" &&
		mv "keep/$p/$name.tmp" "keep/$p/$name" || echo "$p: cannot keep $name" >>errors
		echo "save $p $name" >>log
	done
}

pruner () {
	while [ "$(date +%s)" -lt "$DEADLINE" ]; do
		for p in c1 c2; do
			"$PROJSTORE" prune "$p" --keep-last 3 >/dev/null 2>>pruner.err ||
				echo "prune $p failed" >>errors
		done
		sleep 0.$((RANDOM % 5))
	done
}

gcloop () {
	local rc
	while [ "$(date +%s)" -lt "$DEADLINE" ]; do
		"$PROJSTORE" gc --grace "$((RANDOM % 2))" --json >gc.json 2>>gc.err
		rc=$?
		[ $rc = 0 ] || echo "gc exited $rc" >>errors
		echo "gc $(jq -c "{deleted_packs, repacked_packs, kept_packs, freed_bytes, pending_lists}" gc.json)" >>log
	done
}

# reader: restores the newest snapshot of c1 and compares it with its copy;
# a restore may fail only because its snapshot was pruned meanwhile.
reader () {
	local name k=0
	while [ "$(date +%s)" -lt "$DEADLINE" ]; do
		k=$((k + 1))
		name=$("$PROJSTORE" snapshots c1 --json | jq -r ".snapshots[-1].name // empty")
		[ -n "$name" ] && [ -d "keep/c1/$name" ] || { sleep 0.2; continue; }
		rm -rf "r-$k"
		if "$PROJSTORE" restore "c1@$name" "r-$k" >/dev/null 2>"reader.err"; then
			treecmp --no-atime "keep/c1/$name" "r-$k" >>reader.diff 2>&1 ||
				echo "restore of c1@$name differs" >>errors
		elif "$PROJSTORE" snapshots c1 --json | jq -e ".snapshots[] | select(.name == \"$name\")" >/dev/null; then
			echo "restore of c1@$name failed: $(cat reader.err)" >>errors
		fi
		rm -rf "r-$k"
	done
}

test_expect_success 'setup' '
	ps init &&
	sed -i "s/^pack-size .*/pack-size 1048576/" "$PROJSTORE_STORE/config" &&
	for p in c1 c2; do
		mkdir -p "t-$p" &&
		for i in $(seq 0 $((NFILES - 1))); do refill "t-$p/f$i" || return 1; done
	done &&
	: >errors && : >log
'

test_expect_success "save, prune, gc and restore loops for $SECS s" '
	DEADLINE=$(( $(date +%s) + SECS ))
	saver c1 & s1=$!
	saver c2 & s2=$!
	pruner & pr=$!
	gcloop & g=$!
	reader & rd=$!
	wait $s1 $s2 $pr $g $rd
	echo "saves: $(grep -c "^save" log), gc runs: $(grep -c "^gc" log)" &&
	grep "^gc" log &&
	test_must_be_empty errors
'

test_expect_success 'a final gc; the store is clean' '
	ps gc --grace 0 --json >final.json &&
	test_json final.json ".pending_lists == 0" &&
	ps check --read-data --json >check.json &&
	test_json check.json ".ok == true and .leftovers == 0" &&
	! ls "$PROJSTORE_STORE"/gc/condemned-* 2>/dev/null
'

test_expect_success 'every remaining snapshot restores identical' '
	for p in c1 c2; do
		test "$(snap_count $p)" -ge 1 || return 1
		for s in $(snap_names $p); do
			rm -rf out &&
			ps restore "$p@$s" out &&
			treecmp --no-atime "keep/$p/$s" out || return 1
		done
	done
'

test_expect_success 'gc freed what the pruned snapshots held' '
	ps gc --grace 0 --json >again.json &&
	test_json again.json ".condemned_packs == 0" &&
	test_json again.json ".live_bytes * 2 >= .stored_bytes"
'

test_done
