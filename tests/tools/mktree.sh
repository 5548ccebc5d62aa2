#!/bin/bash
# mktree.sh - build a messy fixture tree for the projstore tests.
#
#   mktree.sh [--mb N] [--no-owners] [--no-devices] [--no-xattrs] DIR
#
# DIR is created if needed and filled with: regular files of various sizes
# (empty, 1 byte, a few KB, N MB of random data, compressible text), empty
# directories, a 60-level deep tree, a path longer than 1024 bytes, names with
# newline, tab, spaces, invalid UTF-8, 255 bytes and a leading dash, symlinks
# (relative, absolute, dangling, pointing outside, to a directory, a loop, a
# long target), hardlinks (same directory, across directories, a group of
# three), sparse files (hole at the start, middle, end, all hole), a FIFO,
# special modes (0000, 0600, 0755, 4755, 2755, 1777, read-only directory),
# files, directories and a symlink owned by other users (root only), times
# with nanoseconds (also on directories and symlinks, before 1970 and after
# 2038), user.* xattrs on files and directories (needs setfattr), and a
# character and a block device (root only).
#
# N (the size of the big random file in MiB) defaults to $MKTREE_MB or 3; the
# whole tree is then about N + 2 MiB of data.
set -eu
export LC_ALL=C TZ=UTC

mb=${MKTREE_MB:-3}
owners=auto devices=auto xattrs=auto
while [ $# -gt 1 ]; do
	case $1 in
	--mb) mb=$2; shift ;;
	--no-owners) owners=no ;;
	--no-devices) devices=no ;;
	--no-xattrs) xattrs=no ;;
	*) echo "usage: mktree.sh [--mb N] [--no-owners] [--no-devices] [--no-xattrs] DIR" >&2; exit 2 ;;
	esac
	shift
done
[ $# -eq 1 ] || { echo "usage: mktree.sh [--mb N] [--no-owners] [--no-devices] [--no-xattrs] DIR" >&2; exit 2; }

root=no
[ "$(id -u)" = 0 ] && root=yes
[ $owners = auto ] && owners=$root
[ $devices = auto ] && devices=$root
if [ $xattrs = auto ]; then
	xattrs=no
	if command -v setfattr >/dev/null; then
		xattrs=yes
	fi
fi

mkdir -p -- "$1"
cd -- "$1"

# ------------------------------------------------------- regular files
: >empty
printf x >one-byte
head -c 3000 /dev/urandom >small.bin
head -c 5000 /dev/urandom >few-kb.bin
head -c $((mb * 1024 * 1024)) /dev/urandom >big.random
seq -f 'line %g of a very compressible text file, the same words again and again' 1 15000 >text.txt
printf 'no newline at the end' >no-eol.txt
mkdir -p dup/one dup/two
head -c 100000 /dev/urandom >dup/one/data
cp dup/one/data dup/two/data

mkdir many
for i in $(seq -w 1 100); do
	printf 'small file %s\n' "$i" >"many/f$i"
done

# ----------------------------------------------------------- directories
mkdir -p empty-dir a/b/c/empty
printf 'in a\n' >a/file
printf 'in b\n' >a/b/file
mkdir ro-dir
printf 'inside a read-only directory\n' >ro-dir/file

# a 60-level deep tree
p=deep
for i in $(seq -w 1 60); do
	p=$p/level-$i
done
mkdir -p "$p"
printf 'at the bottom\n' >"$p/leaf.txt"

# a path longer than 1024 bytes
p=long
for i in 1 2 3 4 5; do
	p=$p/long-$i-$(printf 'L%.0s' $(seq 1 200))
done
mkdir -p "$p"
printf 'far away\n' >"$p/file"

# ----------------------------------------------------------------- names
mkdir names
printf 'newline\n' >names/$'new\nline'
printf 'tab\n' >names/$'tab\there'
printf 'spaces\n' >'names/ with  spaces '
printf 'latin1\n' >names/$'caf\xe9'
printf 'bad utf8\n' >names/$'\xff\xfe-invalid-\xc3\x28'
printf 'dash\n' >names/-leading-dash
printf 'dashdash\n' >names/--
printf 'quotes\n' >names/"it's \"quoted\""
printf 'glob\n' >'names/*glob?[x]'
printf 'backslash\n' >'names/back\slash'
printf 'escape\n' >names/$'esc\e[1m'
printf 'colon\n' >'names/a: b'
printf 'utf8\n' >names/$'\xe2\x9c\x93-check-\xf0\x9f\x98\x80'
n255=$(printf 'n%.0s' $(seq 1 255))
printf '255\n' >"names/$n255"
mkdir names/$'dir\nwith newline'
printf 'inside\n' >names/$'dir\nwith newline'/$'\x01ctrl'

# -------------------------------------------------------------- symlinks
mkdir links
ln -s ../text.txt links/relative
ln -s ../a/b links/to-dir
ln -s /etc/hostname links/absolute
ln -s does/not/exist links/dangling
ln -s ../../../outside-the-tree links/outside
ln -s loop links/loop
ln -s "$(printf 'x/%.0s' $(seq 1 600))target" links/long-target
ln -s $'target\nwith newline' links/$'weird\tlink'
ln -s ../one-byte a/b/up

# ------------------------------------------------------------- hardlinks
mkdir -p hard/sub hard2
printf 'linked twice\n' >hard/a
ln hard/a hard/a-same-dir
ln hard/a hard/sub/a-other-dir
printf 'linked across\n' >hard/x
ln hard/x hard2/y
: >hard/empty-linked
ln hard/empty-linked hard2/empty-linked

# ---------------------------------------------------------------- sparse
mkdir sparse
# hole at the start
dd if=/dev/urandom of=sparse/hole-start bs=64K count=1 seek=16 status=none
# hole in the middle
dd if=/dev/urandom of=sparse/hole-middle bs=64K count=1 status=none
dd if=/dev/urandom of=sparse/hole-middle bs=64K count=1 seek=32 conv=notrunc status=none
# hole at the end
dd if=/dev/urandom of=sparse/hole-end bs=64K count=1 status=none
truncate -s 3M sparse/hole-end
# all hole
truncate -s 5M sparse/all-hole
# small data islands in a big hole
truncate -s 8M sparse/islands
for off in 1 3 5 7; do
	printf 'island %d' "$off" | dd of=sparse/islands bs=1M seek=$off conv=notrunc status=none
done

# ---------------------------------------------------------------- others
mkdir special
mkfifo special/fifo
if [ $devices = yes ]; then
	mknod special/char c 1 3
	mknod special/block b 7 200
fi

# ------------------------------------------------- owners (before modes)
mkdir -p own/dir-1001
if [ $owners = yes ]; then
	printf 'owned by 1001\n' >own/u1001
	printf 'owned by 12345\n' >own/u12345
	printf 'setuid 1001\n' >own/setuid-1001
	printf 'only group\n' >own/g54321
	ln -s ../text.txt own/symlink-12345
	printf 'x\n' >own/dir-1001/inside
	chown 1001:1001 own/u1001 own/setuid-1001 own/dir-1001 own/dir-1001/inside
	chown 12345:54321 own/u12345
	chown 0:54321 own/g54321
	chown -h 12345:54321 own/symlink-12345
	chmod 4755 own/setuid-1001
fi

# ----------------------------------------------------------------- modes
# (modes that make an entry unreadable to its owner only when root, who can
# still read it: an unprivileged save would have to skip them)
mkdir modes
unreadable=
[ $root = yes ] && unreadable='0000 0311'
for m in 0600 0644 0755 4755 2755 6755 1755 0444 $unreadable; do
	printf 'mode %s\n' "$m" >modes/m$m
	chmod "$m" modes/m$m
done
mkdir modes/d1777 modes/d0700 modes/d2775
chmod 1777 modes/d1777
chmod 0700 modes/d0700
chmod 2775 modes/d2775
if [ $root = yes ]; then
	mkdir modes/d0000
	chmod 0000 modes/d0000
fi

# ---------------------------------------------------------------- xattrs
if [ $xattrs = yes ]; then
	setfattr -n user.comment -v 'hello world' text.txt
	setfattr -n user.binary -v 0x00ff10fe small.bin
	setfattr -n user.empty one-byte
	setfattr -n user.dir -v 'on a directory' a
	setfattr -n user.dir -v 'on an empty directory' empty-dir
	for i in $(seq 1 10); do
		setfattr -n "user.many-$i" -v "value $i" few-kb.bin
	done
	setfattr -n user.big -v "$(printf 'v%.0s' $(seq 1 2000))" no-eol.txt
	setfattr -n user.on-link -v 'shared by all links' hard/a
	[ $root = yes ] && setfattr -n user.mode0000 -v 'x' modes/m0000
fi

# ------------------------------------------------------------------ times
# files and symlinks first, then directories from the deepest up, the root
# last: creating entries changes the times of their directory.
touch -d '2001-02-03 04:05:06.123456789' text.txt small.bin
touch -d '1999-12-31 23:59:59.999999999' big.random
touch -d '1970-01-01 00:00:00' one-byte
touch -d '1960-05-06 07:08:09.5' few-kb.bin
touch -d '2100-01-01 00:00:00.000000001' no-eol.txt
touch -h -d '2002-03-04 05:06:07.000000042' links/relative links/dangling
touch -h -d '2003-04-05 06:07:08.9' links/absolute
touch -d '2004-05-06 07:08:09.010203040' hard/a
touch -d '2005-06-07 08:09:10.111111111' special/fifo
touch -d '2006-07-08 09:10:11.222222222' modes/m4755 modes/m0644
touch -d '2007-08-09 10:11:12.333333333' empty-dir a/b/c/empty modes/d1777
touch -d '2008-09-10 11:12:13.444444444' deep/level-01/level-02
touch -d '2009-10-11 12:13:14.555555555' a/b
touch -d '2010-11-12 13:14:15.666666666' a
touch -d '2011-12-13 14:15:16.777777777' names
chmod 0555 ro-dir
touch -d '2012-01-02 03:04:05.888888888' ro-dir
touch -d '2013-02-03 04:05:06.999999999' .
