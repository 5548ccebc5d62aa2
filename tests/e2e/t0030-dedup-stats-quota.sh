#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'deduplication, compression, stats and quotas'

packs_du () { du -sb "$PROJSTORE_STORE/packs" | cut -f1; }
pack_sum () { find "$PROJSTORE_STORE/packs" -type f -name '*.pack' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }

test_expect_success 'setup: store and a tree of text and random data' '
	ps init &&
	mkdir -p data/text data/bin &&
	seq -f "%g: all work and no play makes jack a dull boy" 1 40000 >data/text/a.txt &&
	seq -f "%g: the quick brown fox jumps over the lazy dog" 1 40000 >data/text/b.txt &&
	random_file data/bin/r1 1024 &&
	random_file data/bin/r2 1024 &&
	ps save one data --json >one.json &&
	test_json one.json ".snapshot.new_objects > 0" &&
	test_json one.json ".snapshot.new_bytes < .snapshot.new_raw_bytes"
'

test_expect_success 'the same tree as a second project adds almost nothing' '
	before=$(packs_du) &&
	ps save two data --json >two.json &&
	after=$(packs_du) &&
	logical=$(jq .snapshot.logical_bytes two.json) &&
	test "$logical" -gt 4000000 &&
	allowed=$((logical / 100 + 65536)) &&
	echo "packs grew by $((after - before)), allowed $allowed" &&
	test $((after - before)) -le $allowed &&
	test "$(jq .snapshot.new_raw_bytes two.json)" -le $allowed
'

test_expect_success 'saving an unchanged tree again adds almost nothing' '
	ps save one data --json >again.json &&
	test "$(jq .snapshot.new_raw_bytes again.json)" -le 65536
'

test_expect_success 'stats --json has every field' '
	ps stats one --json >stats.json &&
	for k in project snapshots files logical_bytes stored_bytes unique_raw_bytes \
		 unique_stored_bytes chunks compressratio dedupratio quota_bytes over_quota; do
		test_json stats.json "has(\"$k\")" || return 1
	done &&
	ps stats --json >all.json &&
	for k in projects pack_bytes snapshots logical_bytes stored_bytes; do
		test_json all.json "has(\"$k\")" || return 1
	done
'

test_expect_success 'compressible data gives compressratio > 1' '
	ps stats one --json >stats.json &&
	test_json stats.json ".project == \"one\" and .snapshots == 2 and .files == 4" &&
	test_json stats.json ".logical_bytes == $(cat data/text/* data/bin/* | wc -c)" &&
	test_json stats.json ".compressratio > 1.2" &&
	test_json stats.json ".unique_stored_bytes < .unique_raw_bytes" &&
	test_json stats.json ".chunks > 0"
'

test_expect_success 'store-wide stats count projects and pack bytes' '
	ps stats --json >all.json &&
	test_json all.json ".project == null and .projects == 2" &&
	test_json all.json ".pack_bytes == $(pack_sum)"
'

test_expect_success 'a duplicated file set gives dedupratio >= 2' '
	mkdir -p dup/set1 &&
	random_file dup/set1/x 700 &&
	random_file dup/set1/y 300 &&
	cp -a dup/set1 dup/set2 &&
	cp -a dup/set1 dup/set3 &&
	ps save dup dup --json >dup.json &&
	test "$(jq .snapshot.new_raw_bytes dup.json)" -le $((1024 * 1024 + 65536)) &&
	ps stats dup --json >stats.json &&
	test_json stats.json ".logical_bytes == 3 * 1000 * 1024" &&
	test_json stats.json ".dedupratio >= 2" &&
	test_json stats.json ".unique_raw_bytes <= 1024 * 1024 + 65536"
'

test_expect_success 'content-defined chunking: a change in a big file stores little' '
	mkdir big &&
	random_file big/f 8192 &&
	ps save big big &&
	printf "X" | dd of=big/f bs=1 seek=4000000 conv=notrunc status=none &&
	ps save big big --json >s.json &&
	test "$(jq .snapshot.new_raw_bytes s.json)" -lt $((3 * 1024 * 1024)) &&
	{ printf "inserted at the start" && cat big/f; } >big/g &&
	rm big/f &&
	ps save big big --json >s.json &&
	test "$(jq .snapshot.new_raw_bytes s.json)" -lt $((3 * 1024 * 1024)) &&
	ps cat big g >actual &&
	cmp big/g actual
'

test_expect_success 'a store without compression stores raw bytes' '
	ps init --compression none "$TRASH/raw-store" &&
	ps --store "$TRASH/raw-store" save t data &&
	ps --store "$TRASH/raw-store" stats t --json >raw.json &&
	test_json raw.json ".compressratio >= 0.99 and .compressratio <= 1.01" &&
	ps --store "$TRASH/raw-store" save t2 data --compression lz4 &&
	ps --store "$TRASH/raw-store" cat t2 text/a.txt >actual &&
	test_cmp data/text/a.txt actual
'

test_expect_success 'quota: setting and showing' '
	ps quota q 1M &&
	ps quota q --json >q.json &&
	test_json q.json ".project == \"q\" and .quota_bytes == 1048576 and .over_quota == false"
'

test_expect_success 'quota: a save over the quota exits 4 but keeps the snapshot' '
	mkdir qdata &&
	random_file qdata/five 5120 &&
	test_expect_code 4 ps save q qdata --json >qs.json 2>err &&
	test_json qs.json ".snapshot.over_quota == true and .snapshot.quota_bytes == 1048576" &&
	test "$(snap_count q)" = 1 &&
	ps restore q qout &&
	treecmp --no-atime qdata qout
'

test_expect_success 'quota: snapshots, stats and quota show the project over quota' '
	ps snapshots q --json >snaps.json &&
	test_json snaps.json ".snapshots[0].over_quota == true" &&
	ps stats q --json >stats.json &&
	test_json stats.json ".over_quota == true and .quota_bytes == 1048576" &&
	ps quota q --json >q.json &&
	test_json q.json ".over_quota == true and .logical_bytes == 5242880" &&
	ps stats q >human &&
	test_grep -i quota human
'

test_expect_success 'quota: raising it is instant and the next save exits 0' '
	start=$(now_ns) &&
	ps quota q 1G &&
	end=$(now_ns) &&
	test $(((end - start) / 1000000)) -lt 1000 &&
	ps quota q --json >q.json &&
	test_json q.json ".quota_bytes == 1073741824 and .over_quota == false" &&
	ps save q qdata --json >qs.json &&
	test_json qs.json ".snapshot.over_quota == false"
'

test_expect_success 'quota: none removes it' '
	ps quota q 1K &&
	ps quota q none &&
	ps quota q --json >q.json &&
	test_json q.json ".quota_bytes == null and .over_quota == false" &&
	ps save q qdata &&
	ps stats q --json >stats.json &&
	test_json stats.json ".quota_bytes == null and .over_quota == false"
'

test_expect_success 'quota: sizes use binary units' '
	for pair in 4G=4294967296 512M=536870912 1.5T=1649267441664 100=100 1K=1024; do
		ps quota sizes "${pair%%=*}" || return 1
		ps quota sizes --json >q.json || return 1
		test_json q.json ".quota_bytes == ${pair#*=}" || { echo "for $pair"; return 1; }
	done
'

test_expect_success 'quota: an invalid size exits 2 and keeps the quota' '
	ps quota sizes 4G &&
	test_expect_code 2 ps quota sizes 4X &&
	test_expect_code 2 ps quota sizes -5M &&
	ps quota sizes --json >q.json &&
	test_json q.json ".quota_bytes == 4294967296"
'

test_expect_success 'check --read-data is clean' '
	ps check --read-data
'

test_done
