#!/bin/bash
. "$(dirname "$0")/test-lib.sh"

test_description 'corruption: damaged packs and snapshot refs are detected and reported, never served'

# The largest pack file of a store.
largest_pack () {
	find "${1:-$PROJSTORE_STORE}/packs" -type f -name '*.pack' -printf '%s %p\n' |
	sort -n | tail -n 1 | cut -d' ' -f2-
}

# flip_byte FILE OFFSET: inverts the bits of one byte.
flip_byte () {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ') &&
	printf "$(printf '\\%03o' $((b ^ 255)))" |
	dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

test_expect_success 'setup: a project with one big file and small ones, another project' '
	ps init --compression none &&
	mkdir -p proj/sub other &&
	random_file proj/big.bin 4096 &&
	echo small >proj/small.txt &&
	echo "in sub" >proj/sub/file.txt &&
	ps save victim proj --json >save.json &&
	SNAP=$(jq -r .snapshot.name save.json) &&
	echo "other project" >other/o.txt &&
	random_file other/o.bin 64 &&
	ps save bystander other &&
	cp -a "$PROJSTORE_STORE" store-clean
'

test_expect_success 'check without --read-data on an undamaged store exits 0' '
	ps check &&
	ps check --json >check.json &&
	test_json check.json ".ok == true and .problems == [] and .packs >= 1 and .snapshots == 2"
'

test_expect_success 'check --read-data on an undamaged store exits 0' '
	ps check --read-data --json >check.json &&
	test_json check.json ".ok == true and .damaged_objects == 0 and .damaged_files == 0 and .damaged_snapshots == 0"
'

test_expect_success 'damage: flip one byte in the middle of the biggest pack' '
	pack=$(largest_pack) &&
	test -n "$pack" &&
	size=$(stat -c %s "$pack") &&
	test "$size" -gt 4000000 &&
	chmod u+w "$pack" &&
	flip_byte "$pack" $((size / 2)) &&
	! cmp -s "$pack" "store-clean/${pack#$PROJSTORE_STORE/}"
'

test_expect_success 'check --read-data exits 8 and names object, file and snapshot' '
	test_expect_code 8 ps check --read-data >out 2>err &&
	cat out err >all &&
	test_grep -E "[0-9a-f]{16}" all &&
	test_grep -F big.bin all &&
	test_grep -F "$SNAP" all &&
	! grep -F small.txt all &&
	test_expect_code 8 ps check --read-data --json >check.json &&
	test_json check.json ".ok == false" &&
	test_json check.json ".damaged_objects >= 1 and .damaged_files >= 1 and .damaged_snapshots == 1" &&
	test_json check.json "(.problems | length) >= 1" &&
	test_json check.json "[.problems[] | select(.object) | .object | test(\"^[0-9a-f]{64}$\")] | any" &&
	test_json check.json "[.problems[] | select(.path) | .path | sub(\"^/\"; \"\")] | index(\"big.bin\") != null" &&
	test_json check.json "[.problems[] | .message | type == \"string\" and length > 0] | all"
'

test_expect_success 'check --read-data of the other project alone exits 0' '
	ps check --read-data bystander
'

test_expect_success 'cat of the damaged file exits 8' '
	test_expect_code 8 ps cat victim big.bin >out 2>err &&
	test -s err
'

test_expect_success 'undamaged files still cat fine' '
	ps cat victim small.txt >actual &&
	test_cmp proj/small.txt actual &&
	ps cat victim sub/file.txt >actual &&
	test_cmp proj/sub/file.txt actual &&
	ps cat bystander o.bin >actual &&
	cmp other/o.bin actual
'

test_expect_success 'a full restore exits 8 and does not create the target' '
	test_expect_code 8 ps restore victim out-full 2>err &&
	test -s err &&
	test_path_is_missing out-full
'

test_expect_success 'a full restore into an empty directory exits 8 and leaves it without a wrong file' '
	mkdir out-empty &&
	test_expect_code 8 ps restore victim out-empty &&
	if test -e out-empty/big.bin; then
		echo "a damaged file was restored"; return 1
	fi
'

test_expect_success 'a partial restore of the damaged file exits 8 and writes no wrong file' '
	mkdir out-part &&
	echo mine >out-part/big.bin &&
	test_expect_code 8 ps restore victim out-part big.bin &&
	echo mine >expect &&
	test_cmp expect out-part/big.bin &&
	mkdir out-part2 &&
	test_expect_code 8 ps restore victim out-part2 big.bin &&
	test_path_is_missing out-part2/big.bin
'

test_expect_success 'a partial restore of undamaged files works' '
	mkdir out-ok &&
	ps restore victim out-ok small.txt sub &&
	test_cmp proj/small.txt out-ok/small.txt &&
	test_cmp proj/sub/file.txt out-ok/sub/file.txt
'

test_expect_success 'the other project restores fine' '
	ps restore bystander out-other &&
	treecmp --no-atime --no-root other out-other
'

test_expect_success 'a truncated pack: check --read-data exits 8' '
	cp -a store-clean store-trunc &&
	pack=$(largest_pack store-trunc) &&
	size=$(stat -c %s "$pack") &&
	chmod u+w "$pack" &&
	truncate -s $((size / 2)) "$pack" &&
	test_expect_code 8 ps --store "$TRASH/store-trunc" check --read-data >out 2>&1 &&
	test_expect_code 8 ps --store "$TRASH/store-trunc" cat victim big.bin >/dev/null &&
	test_expect_code 8 ps --store "$TRASH/store-trunc" restore victim out-trunc &&
	test_path_is_missing out-trunc
'

test_expect_success 'a pack replaced by garbage of the same size: check exits 8' '
	cp -a store-clean store-garbage &&
	pack=$(largest_pack store-garbage) &&
	size=$(stat -c %s "$pack") &&
	chmod u+w "$pack" &&
	head -c "$size" /dev/urandom >"$pack" &&
	test_expect_code 8 ps --store "$TRASH/store-garbage" check --read-data >out 2>&1
'

test_expect_success 'a missing pack: check exits 8 even without --read-data' '
	cp -a store-clean store-missing &&
	pack=$(largest_pack store-missing) &&
	rm -f "$pack" &&
	test_expect_code 8 ps --store "$TRASH/store-missing" check >out 2>&1 &&
	test_expect_code 8 ps --store "$TRASH/store-missing" cat victim big.bin >/dev/null
'

# ------------------------------------------------------- snapshot refs

# damage_refs STORE MODE [FIND-ARGS]: damages every file under
# STORE/projects/victim (or those matching FIND-ARGS), MODE: empty, half, garble.
damage_refs () {
	local f size st=$1 mode=$2
	shift 2
	find "$st/projects/victim" -type f "$@" >ref-files &&
	test -s ref-files &&
	while IFS= read -r f; do
		size=$(stat -c %s "$f")
		chmod u+w "$f"
		case $mode in
		empty) : >"$f" ;;
		half) truncate -s $((size / 2)) "$f" ;;
		garble)
			{ head -c $((size / 3)) "$f"; printf "\\377\\000{garbage]]\\n\\001"; head -c 50 /dev/urandom; } >"$f.tmp" &&
			mv "$f.tmp" "$f" ;;
		esac
	done <ref-files
}

# expect_clean_failure CMD...: fails with exit 1 or 8 and a message, no crash.
expect_clean_failure () {
	"$@" >cf.out 2>cf.err
	local rc=$?
	case $rc in
	1|8) ;;
	*) echo "exit $rc (want 1 or 8): $*"; cat cf.err; return 1 ;;
	esac
	test -s cf.err || { echo "no message: $*"; return 1; }
	test_no_sanitizer_report cf.err
}

for mode in empty half garble; do
	test_expect_success "snapshot refs damaged ($mode): commands fail cleanly" '
		rm -rf store-ref &&
		cp -a store-clean store-ref &&
		damage_refs store-ref '$mode' &&
		export PROJSTORE_STORE=$TRASH/store-ref &&
		test_when_finished "export PROJSTORE_STORE=$TRASH/store" &&
		expect_clean_failure ps ls victim &&
		expect_clean_failure ps cat victim small.txt &&
		expect_clean_failure ps restore victim out-ref-'$mode' &&
		test_path_is_missing out-ref-'$mode' &&
		expect_clean_failure ps diff victim@latest victim@latest &&
		ps snapshots victim >out 2>err
		rc=$? &&
		test $rc -lt 128 &&
		test_no_sanitizer_report err &&
		test_expect_code 8 ps check >out 2>&1 &&
		test_expect_code 8 ps check --read-data >out 2>&1
	'

	test_expect_success "snapshot refs damaged ($mode): other projects unaffected" '
		export PROJSTORE_STORE=$TRASH/store-ref &&
		test_when_finished "export PROJSTORE_STORE=$TRASH/store" &&
		ps snapshots bystander --json >snaps.json &&
		test_json snaps.json ".snapshots | length == 1" &&
		ps cat bystander o.txt >actual &&
		test_cmp other/o.txt actual &&
		rm -rf out-by &&
		ps restore bystander out-by &&
		treecmp --no-atime --no-root other out-by &&
		ps check --read-data bystander &&
		ps stats bystander >/dev/null &&
		echo more >other/more.txt &&
		ps save bystander other &&
		rm other/more.txt
	'
done

test_expect_success 'a garbled .snap ref alone (list intact): check exits 8, nothing crashes' '
	rm -rf store-snap &&
	cp -a store-clean store-snap &&
	damage_refs store-snap garble -name "*.snap" &&
	test_line_count = 1 ref-files &&
	export PROJSTORE_STORE=$TRASH/store-snap &&
	test_when_finished "export PROJSTORE_STORE=$TRASH/store" &&
	test_expect_code 8 ps check >out 2>&1 &&
	test_grep -F "$SNAP" out &&
	for cmd in "snapshots victim" "ls victim" "cat victim small.txt" "restore victim out-snap"; do
		ps $cmd >out 2>err
		rc=$?
		case $rc in 0|1|8) ;; *) echo "$cmd: exit $rc"; cat err; return 1 ;; esac
		test_no_sanitizer_report err || return 1
	done
'

test_expect_success 'a damaged snapshot list (refs intact) does not lose the snapshot' '
	rm -rf store-list &&
	cp -a store-clean store-list &&
	damage_refs store-list garble ! -name "*.snap" ! -name "settings" &&
	test_line_count -ge 1 ref-files &&
	export PROJSTORE_STORE=$TRASH/store-list &&
	test_when_finished "export PROJSTORE_STORE=$TRASH/store" &&
	ps snapshots victim --json >snaps.json &&
	test_json snaps.json "[.snapshots[].name] == [\"$SNAP\"]" &&
	ps cat victim small.txt >actual &&
	test_cmp proj/small.txt actual &&
	ps restore victim out-list &&
	treecmp --no-atime --no-root proj out-list
'

test_expect_success 'a damaged store never crashes a command' '
	for st in store store-trunc store-garbage store-missing store-ref store-snap store-list; do
		for cmd in "snapshots victim" "ls victim" "ls victim sub" "stats" "stats victim" \
			   "check" "check --read-data" "cat victim big.bin" "diff victim@latest victim@latest"; do
			ps --store "$TRASH/$st" $cmd >/dev/null 2>err
			rc=$?
			if [ $rc -ge 124 ]; then
				echo "$st: $cmd: exit $rc"; cat err; return 1
			fi
			test_no_sanitizer_report err || return 1
		done
	done
'

test_done
