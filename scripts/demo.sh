#!/bin/sh
# The main job on the embedded defaults: a local directory store, a sample
# project saved twice, its snapshots and stats listed, and a restore checked;
# then the SQLite catalog inside the store, two hosts with their agents, and
# the project opened, saved, moved and closed through them.
set -eu
P=${PROJSTORE_BIN:-$(dirname "$0")/../build/projstore}
W=${DEMO_DIR:-$(mktemp -d /tmp/projstore-demo.XXXXXX)}
export PROJSTORE_STORE="$W/store" PROJSTORE_CACHE_DIR="$W/cache"
echo "== demo in $W"
mkdir -p "$W/home/notes" "$W/home/data"
cp -a /usr/share/doc/libzstd-dev "$W/home/notes/" 2>/dev/null || true
seq 1 300000 > "$W/home/data/series.csv"
head -c 4000000 /dev/urandom > "$W/home/data/blob.bin"
ln -s data/series.csv "$W/home/latest.csv"
printf 'hello\n' > "$W/home/notes/readme.txt"
"$P" init
echo "== first save"
"$P" save demo-project "$W/home"
echo "== edit one file, save again"
printf 'a new line\n' >> "$W/home/notes/readme.txt"
"$P" save demo-project "$W/home"
echo "== snapshots"
"$P" snapshots demo-project
echo "== what changed"
first=$("$P" snapshots demo-project --json | sed -n 's/.*"name": "\(.*\)",/\1/p' | head -n 1)
"$P" diff "demo-project@$first" demo-project@latest
echo "== stats"
"$P" stats demo-project
echo "== restore and compare"
"$P" restore demo-project "$W/restored"
diff -r "$W/home" "$W/restored" && echo "restored tree is identical"
"$P" check --read-data

echo
echo "== the catalog (SQLite, catalog.db inside the store) and two hosts with their agents"
"$P" host add host-a --root "$W/hosts/a"
"$P" host add host-b --root "$W/hosts/b"
mkdir -p "$W/hosts/a" "$W/hosts/b"
"$P" agent --host host-a --autosave-interval 1m --log "$W/agent-a.log" &
AGENT_A=$!
"$P" agent --host host-b --autosave-interval 1m --log "$W/agent-b.log" &
AGENT_B=$!
trap 'kill $AGENT_A $AGENT_B 2>/dev/null; wait $AGENT_A $AGENT_B 2>/dev/null || true' EXIT
echo "== open demo-project on host-a (the agent restores the newest snapshot)"
"$P" open demo-project --host host-a --wait --timeout 60
echo "where: $("$P" where demo-project)"
"$P" hosts
echo "== the user works in $W/hosts/a/demo-project; save now"
printf 'written on host-a\n' > "$W/hosts/a/demo-project/notes/today.txt"
"$P" save demo-project --wait --timeout 60
echo "== move it to host-b (saved on host-a, restored on host-b)"
"$P" move demo-project --to host-b --wait --timeout 60
echo "where: $("$P" where demo-project)"
cat "$W/hosts/b/demo-project/notes/today.txt"
echo "== close it (saved, working copy removed)"
"$P" close demo-project --wait --timeout 60
echo "where: '$("$P" where demo-project)' (empty: not deployed)"
"$P" projects
"$P" events demo-project
echo "== done; everything is in $W"
