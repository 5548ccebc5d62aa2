#!/bin/bash
# bench/sync.sh - projstore sync of a small change against rsync -a of the changed tree, to a local store /
# directory and over ssh to localhost; and the bytes sync sends against the compressed size of the new objects.
#
# The tree is the reference corpus ($BENCH_DIR/corpus) and its changed copy ($BENCH_DIR/corpus2, which
# ../shared/bench/corpus-gen.sh makes as `cp -a corpus corpus2` + `corpus-gen.sh mutate corpus2`: 0.5% of the
# files touched or edited, 0.1% deleted, +50 MB new data, 1 MiB rewritten in a 150 MB file). Both are built
# with corpus-gen.sh when missing.
#
#   1. save corpus into store SRC (project bench); sync SRC to DST_LOCAL and (over ssh://localhost) to
#      DST_SSH: the "old" state; rsync's old state is a copy of corpus, once locally, once for ssh;
#   2. save corpus2 into SRC: the new snapshot, whose new objects' compressed size is `new_bytes`;
#   3. RUNS times (median reported), each from the old state again (reset untimed, with rsync --delete):
#        local:  projstore sync SRC DST_LOCAL            vs  rsync -a corpus2/ OLD_LOCAL/
#        ssh:    projstore sync SRC ssh://localhost/DST  vs  rsync -a -e ssh corpus2/ localhost:OLD_SSH/
#      ssh connection set-up (ssh localhost true) is timed on its own and reported separately: sync's
#      own set-up time is in its JSON (connect_ms), and both totals are given with and without it.
#
# An sshd is started for the run on a loopback port with keys made for it (stopped by its PID at exit; the
# machine's own sshd, if any, is not touched).
#
# env: BENCH_DIR (/var/tmp/projstore-bench), RUNS (3), PROJSTORE (binary; default: the work tree's, built),
#      NICE (nice level for the timed commands, default 0), KEEP (1 = keep the stores after the run),
#      DROP_CACHES (0; 1 = drop the page cache before each timed command: the cold case of a store
#      server, where rsync's stat walk reads every inode from disk; it slows everyone on a shared machine)
# Output: a report on stdout, also written to bench/results/DATE-sync.txt (the log to DATE-sync.log).
set -euo pipefail
export LC_ALL=C

REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPUS_GEN=${CORPUS_GEN:-$REPO_ROOT/../shared/bench/corpus-gen.sh}
[ -f "$CORPUS_GEN" ] || CORPUS_GEN=/work/shared/bench/corpus-gen.sh
BENCH_DIR=${BENCH_DIR:-/var/tmp/projstore-bench}
RUNS=${RUNS:-3}
NICE=${NICE:-0}
KEEP=${KEEP:-0}
DROP_CACHES=${DROP_CACHES:-0}
W=$BENCH_DIR/sync
STAMP=$(date -u +%Y-%m-%dT%H%M)
RESULTS=$REPO_ROOT/bench/results
REPORT=$RESULTS/$(date -u +%Y-%m-%d)-sync.txt
LOGFILE=$RESULTS/$(date -u +%Y-%m-%d)-sync.log
START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need=()
command -v rsync >/dev/null || need+=(rsync)
command -v jq >/dev/null || need+=(jq)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null || need+=(openssh-client)
if ((${#need[@]})); then
	log "installing ${need[*]}"
	apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
mkdir -p "$BENCH_DIR" "$RESULTS"
exec 2> >(tee -a "$LOGFILE" >&2)

# ---------------------------------------------------------------- projstore
if [ -z "${PROJSTORE:-}" ]; then
	make -C "$REPO_ROOT" -j2 all >"$W.make.log" 2>&1 || die "the work tree does not build (see $W.make.log)"
	PROJSTORE=$REPO_ROOT/build/projstore
	BUILT="work tree $(git -C "$REPO_ROOT" rev-parse --short HEAD)$(git -C "$REPO_ROOT" diff --quiet HEAD -- src include 2>/dev/null || echo +uncommitted)"
else
	BUILT="given binary"
fi
P() { nice -n "$NICE" "$PROJSTORE" "$@"; }

# ---------------------------------------------------------------- corpus
CORPUS=$BENCH_DIR/corpus
CORPUS2=$BENCH_DIR/corpus2
if [ ! -f "$BENCH_DIR/.corpus-done" ] || [ ! -d "$CORPUS2" ]; then
	log "building the reference corpus and its changed copy (a few minutes)"
	rm -rf "$CORPUS" "$CORPUS2"
	GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=gc.auto GIT_CONFIG_VALUE_0=0 \
		bash "$CORPUS_GEN" "$BENCH_DIR" >"$BENCH_DIR/corpus-gen.log" 2>&1 || die "corpus-gen.sh failed"
	touch "$BENCH_DIR/.corpus-done"
fi

# ---------------------------------------------------------------- sshd on loopback
rm -rf "$W"
mkdir -p "$W/sshd"
chmod 700 "$W/sshd"
SSHD_PID=
cleanup() {
	[ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null && wait "$SSHD_PID" 2>/dev/null
	[ "$KEEP" = 1 ] || rm -rf "$W"
	return 0
}
trap cleanup EXIT
[ -d /run/sshd ] || { mkdir -p /run/sshd && chmod 755 /run/sshd; }
ssh-keygen -q -t ed25519 -N '' -f "$W/sshd/host_key" </dev/null >/dev/null
ssh-keygen -q -t ed25519 -N '' -f "$W/sshd/client_key" </dev/null >/dev/null
cp "$W/sshd/client_key.pub" "$W/sshd/authorized_keys"
for try in 1 2 3 4 5 6 7 8; do
	PORT=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
	cat >"$W/sshd/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $PORT
HostKey $W/sshd/host_key
PidFile $W/sshd/sshd.pid
AuthorizedKeysFile $W/sshd/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
MaxStartups 50
LogLevel ERROR
EOF
	/usr/sbin/sshd -D -e -f "$W/sshd/sshd_config" 2>>"$W/sshd/log" &
	SSHD_PID=$!
	up=
	for i in $(seq 1 100); do
		kill -0 "$SSHD_PID" 2>/dev/null || break
		if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then up=1; break; fi
		sleep 0.05
	done
	[ -n "$up" ] && break
	kill "$SSHD_PID" 2>/dev/null; wait "$SSHD_PID" 2>/dev/null || true
	SSHD_PID=
done
[ -n "$SSHD_PID" ] || die "sshd did not start ($W/sshd/log)"
printf '[localhost]:%s %s\n' "$PORT" "$(cut -d' ' -f1-2 "$W/sshd/host_key.pub")" >"$W/sshd/known_hosts"
cat >"$W/sshd/ssh_config" <<EOF
Host localhost
    HostName 127.0.0.1
    Port $PORT
    User root
    IdentityFile $W/sshd/client_key
    IdentitiesOnly yes
    UserKnownHostsFile $W/sshd/known_hosts
    StrictHostKeyChecking yes
    HostKeyAlias [localhost]:$PORT
    LogLevel ERROR
EOF
SSH="ssh -F $W/sshd/ssh_config"
export PROJSTORE_SSH=$SSH PROJSTORE_REMOTE_BIN=$PROJSTORE
$SSH localhost true </dev/null || die "ssh to the loopback sshd fails"

# ---------------------------------------------------------------- old state
SRC=$W/src
DL=$W/dst-local
DS=$W/dst-ssh
P init "$SRC" >/dev/null
P init "$DL" >/dev/null
P init "$DS" >/dev/null
log "saving the corpus into SRC"
P --store "$SRC" save bench "$CORPUS" --cache-dir "$W/cache" --json >"$W/save1.json"
log "syncing the old state to the local and the ssh destination"
P sync "$SRC" "$DL" --json >"$W/base-local.json"
P sync "$SRC" "ssh://localhost$DS" --json >"$W/base-ssh.json"
cp -a "$DL" "$W/dst-local.base"
cp -a "$DS" "$W/dst-ssh.base"
log "copying the old tree for rsync (local and ssh targets)"
rsync -aHS "$CORPUS"/ "$W/old-local"/
rsync -aHS "$CORPUS"/ "$W/old-ssh"/
cp -a --sparse=always "$W/old-local" "$W/old.base"
log "saving the changed corpus into SRC"
P --store "$SRC" save bench "$CORPUS2" --cache-dir "$W/cache" --json >"$W/save2.json"
NEW_BYTES=$(jq .snapshot.new_bytes "$W/save2.json")
NEW_OBJECTS=$(jq .snapshot.new_objects "$W/save2.json")

# ---------------------------------------------------------------- timed runs
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
reset_store() { rsync -a --delete "$1"/ "$2"/; }
reset_tree() { rsync -aHS --delete "$W/old.base"/ "$1"/; }
cold() { if [ "$DROP_CACHES" = 1 ]; then sync; echo 3 >/proc/sys/vm/drop_caches; fi; }

: >"$W/t.sync-local"; : >"$W/t.rsync-local"; : >"$W/t.sync-ssh"; : >"$W/t.sync-ssh-noconn"
: >"$W/t.rsync-ssh"; : >"$W/t.ssh-setup"; : >"$W/b.local"; : >"$W/b.ssh-wire"; : >"$W/b.ssh-sock"
for run in $(seq 1 "$RUNS"); do
	log "run $run of $RUNS"
	reset_store "$W/dst-local.base" "$DL"
	reset_store "$W/dst-ssh.base" "$DS"
	reset_tree "$W/old-local"
	reset_tree "$W/old-ssh"
	sync
	cold; t0=$(now); P sync "$SRC" "$DL" --json >"$W/run$run-local.json"; t1=$(now)
	secs "$t0" "$t1" >>"$W/t.sync-local"
	jq .bytes_sent "$W/run$run-local.json" >>"$W/b.local"
	cold; t0=$(now); nice -n "$NICE" rsync -a "$CORPUS2"/ "$W/old-local"/; t1=$(now)
	secs "$t0" "$t1" >>"$W/t.rsync-local"
	t0=$(now); $SSH localhost true </dev/null; t1=$(now)
	secs "$t0" "$t1" >>"$W/t.ssh-setup"
	cold; t0=$(now); P sync "$SRC" "ssh://localhost$DS" --json >"$W/run$run-ssh.json"; t1=$(now)
	secs "$t0" "$t1" >>"$W/t.sync-ssh"
	awk -v a="$t0" -v b="$t1" -v c="$(jq .connect_ms "$W/run$run-ssh.json")" \
		'BEGIN { printf "%.3f\n", b - a - c / 1000 }' >>"$W/t.sync-ssh-noconn"
	jq '.wire_bytes_out + .wire_bytes_in' "$W/run$run-ssh.json" >>"$W/b.ssh-wire"
	jq '.ssh_bytes_out + .ssh_bytes_in' "$W/run$run-ssh.json" >>"$W/b.ssh-sock"
	cold; t0=$(now); nice -n "$NICE" rsync -a -e "$SSH" "$CORPUS2"/ "localhost:$W/old-ssh"/; t1=$(now)
	secs "$t0" "$t1" >>"$W/t.rsync-ssh"
done
P --store "$DL" check --read-data >"$W/check-local.txt" || die "the local destination does not check clean"
P --store "$DS" check --read-data >"$W/check-ssh.txt" || die "the ssh destination does not check clean"
P --store "$DL" restore bench "$W/restored" --no-cache >/dev/null
diff -rq --no-dereference "$CORPUS2" "$W/restored" >/dev/null || die "the synced snapshot does not restore to corpus2"
rm -rf "$W/restored"

# ---------------------------------------------------------------- report
M_SL=$(median <"$W/t.sync-local"); M_RL=$(median <"$W/t.rsync-local")
M_SS=$(median <"$W/t.sync-ssh"); M_SSN=$(median <"$W/t.sync-ssh-noconn"); M_RS=$(median <"$W/t.rsync-ssh")
M_SETUP=$(median <"$W/t.ssh-setup")
B_L=$(median <"$W/b.local"); B_W=$(median <"$W/b.ssh-wire"); B_S=$(median <"$W/b.ssh-sock")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
{
	echo "sync of a small change: $(date -u '+%Y-%m-%d %H:%M') UTC"
	echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//');" \
		"load average at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg) (shared machine)"
	echo "projstore $($PROJSTORE --version | cut -d' ' -f2) ($BUILT); $(rsync --version | head -1);" \
		"$(ssh -V 2>&1)"
	echo "tree: $CORPUS -> $CORPUS2 (corpus-gen.sh mutate); medians of $RUNS runs," \
		"$([ "$DROP_CACHES" = 1 ] && echo "page cache dropped before each timed command" || echo "warm page cache")"
	echo "new snapshot: $NEW_OBJECTS new objects, $NEW_BYTES bytes as stored (compressed, record headers included)"
	echo
	printf '%-34s | %12s | %12s | %8s\n' "to" "projstore (s)" "rsync -a (s)" "rsync/ps"
	printf '%-34s | %12s | %12s | %8s\n' "----" "------------" "------------" "--------"
	printf '%-34s | %12s | %12s | %8s\n' "local directory / store" "$M_SL" "$M_RL" "$(ratio "$M_RL" "$M_SL")"
	printf '%-34s | %12s | %12s | %8s\n' "ssh://localhost, whole command" "$M_SS" "$M_RS" "$(ratio "$M_RS" "$M_SS")"
	printf '%-34s | %12s | %12s | %8s\n' "ssh://localhost, set-up excluded" "$M_SSN" "$(minus "$M_RS" "$M_SETUP")" \
		"$(ratio "$(minus "$M_RS" "$M_SETUP")" "$M_SSN")"
	echo
	echo "ssh connection set-up (ssh localhost true): median $M_SETUP s; projstore's own connect_ms per run:" \
		"$(jq -r .connect_ms "$W"/run*-ssh.json | tr '\n' ' ')"
	echo
	echo "bytes sent for the change (target <= 1.1 x the new objects' compressed size $NEW_BYTES):"
	echo "  local:  $B_L bytes of records copied = $(ratio "$B_L" "$NEW_BYTES") x"
	echo "  ssh:    $B_W protocol bytes both ways = $(ratio "$B_W" "$NEW_BYTES") x;" \
		"ssh's socket bytes both ways (ssh process io) $B_S = $(ratio "$B_S" "$NEW_BYTES") x"
	echo
	echo "per run (s): sync local $(tr '\n' ' ' <"$W/t.sync-local")| rsync local $(tr '\n' ' ' <"$W/t.rsync-local")"
	echo "             sync ssh $(tr '\n' ' ' <"$W/t.sync-ssh")| rsync ssh $(tr '\n' ' ' <"$W/t.rsync-ssh")"
	echo "             ssh set-up $(tr '\n' ' ' <"$W/t.ssh-setup")"
	echo "after the runs: both destinations check clean with --read-data; the local one restores identical to corpus2"
	echo "sync JSON of the last runs (local, ssh):"
	jq -c '{duration_ms, connect_ms, snapshots_copied, objects_sent, bytes_sent, objects_queried, trees_read, wire_bytes_out, wire_bytes_in, ssh_bytes_out, ssh_bytes_in}' \
		"$W/run$RUNS-local.json" "$W/run$RUNS-ssh.json"
	echo "total run time of sync.sh: $(( $(date +%s) - START )) s"
} | tee "$REPORT"
log "report: $REPORT"
