#!/bin/sh
# The main job on the embedded defaults: a local directory store, a sample
# project saved twice, its snapshots and stats listed, and a restore checked.
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
