#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'two datacenters saved the same project since their last sync: both snapshots kept on both sides, the conflict reported; settings merge'

snaps_of () {
	ps --store "$1" snapshots "$2" --json | jq -c '[.snapshots[] | {name, root}]'
}

test_expect_success 'setup: datacenters A and B in sync' '
	ps init A && ps init B &&
	mkdir -p w/src &&
	seq 1 5000 >w/src/data.txt &&
	echo v1 >w/README &&
	ps --store A save proj w &&
	ps sync A B &&
	BASE=$(ps --store A snapshots proj --json | jq -r ".snapshots[-1].name") &&
	test_cmp <(snaps_of A proj) <(snaps_of B proj)
'

test_expect_success 'both datacenters save the project (a split brain)' '
	cp -a w wa && cp -a w wb &&
	echo "edited in A" >>wa/README &&
	ps --store A save proj wa --json >a.json &&
	SA=$(jq -r .snapshot.name a.json) &&
	sleep 0.01 &&
	echo "edited in B" >wb/src/new-in-b.txt &&
	ps --store B save proj wb --json >b.json &&
	SB=$(jq -r .snapshot.name b.json)
'

test_expect_success 'sync A to B keeps both, reports the conflict, latest is the newest by time' '
	ps sync A B --json >s1.json 2>s1.err &&
	test_json s1.json ".ok == true and (.conflicts | length) == 1" &&
	test_json s1.json ".conflicts[0].project == \"proj\" and .conflicts[0].base == \"$BASE\"" &&
	test_json s1.json ".conflicts[0].source_only == [\"$SA\"] and .conflicts[0].destination_only == [\"$SB\"]" &&
	test_json s1.json ".conflicts[0].latest == \"$SB\"" &&
	test_json s1.json ".projects[0].conflict == true" &&
	test_grep "both are kept" s1.err &&
	ps --store B snapshots proj --json >b-snaps.json &&
	test_json b-snaps.json "[.snapshots[].name] | index(\"$SA\") != null and index(\"$SB\") != null" &&
	test_json b-snaps.json ".snapshots[-1].name == \"$SB\""
'

test_expect_success 'sync B to A brings B s snapshot: both sides have both, identical lists' '
	ps sync B A --json >s3.json &&
	test_json s3.json ".snapshots_copied == 1 and .projects[0].copied == [\"$SB\"]" &&
	test_cmp <(snaps_of A proj) <(snaps_of B proj)
'

test_expect_success 'the text output names the conflict too' '
	ps init C && ps init D &&
	ps sync A C >/dev/null 2>&1 && ps sync A D >/dev/null 2>&1 &&
	echo "more in C" >>wa/README &&
	ps --store C save proj wa &&
	echo "more in D" >>wb/README &&
	ps --store D save proj wb &&
	ps sync C D >s2.out 2>/dev/null &&
	test_grep "^conflict: proj" s2.out
'

test_expect_success 'after both directions the stores agree: no more conflicts, nothing to copy' '
	ps sync A B &&
	ps sync B A &&
	test_cmp <(snaps_of A proj) <(snaps_of B proj) &&
	ps sync A B --json >s4.json &&
	test_json s4.json "(.conflicts | length) == 0 and .snapshots_copied == 0" &&
	ps --store A check --read-data &&
	ps --store B check --read-data
'

test_expect_success 'each side s work restores from the other side' '
	ps --store A restore "proj@$SB" rb &&
	test -f rb/src/new-in-b.txt &&
	ps --store B restore "proj@$SA" ra &&
	grep -q "edited in A" ra/README
'

test_expect_success 'settings: the destination keeps what it has, takes what it lacks, reports differences' '
	ps --store A quota proj 10G &&
	ps --store A exclude proj "*.o" &&
	ps --store A policy proj --keep-daily 7 &&
	ps --store B quota proj 20G &&
	ps sync A B --json >set.json &&
	ps --store B quota proj --json | jq -e ".quota_bytes == 21474836480" &&
	ps --store B exclude proj >ex && test_grep -F "*.o" ex &&
	ps --store B policy proj --json | jq -e ".policy.daily == 7" &&
	test_json set.json "[.projects[0].settings_notes[] | select(test(\"quota differs\"))] | length == 1" &&
	test_json set.json "[.projects[0].settings_notes[] | select(test(\"took exclude\"))] | length == 1" &&
	test_json set.json "[.projects[0].settings_notes[] | select(test(\"took policy\"))] | length == 1"
'

test_done
