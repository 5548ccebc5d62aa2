#!/bin/bash
# mkhomes.sh - generate many small home directories for the migrate tests and benchmark.
#
#   mkhomes.sh [--homes N] [--kb N] [--seed S] [--prefix P] DIR
#
# Creates DIR/<P>NNNN (P default "home-", NNNN from 0001) for N homes (default $MKHOMES_N or
# 200), each about --kb KiB (default 64) of data: a shared .bashrc and a shared 16 KiB library
# file (the same in every home: dedup across projects), a few nested work directories with
# files of pseudo-random content and sizes (text and binary, empty files included), a
# symlink, a hardlink pair, an empty directory, a 0600 file, a FIFO, times with nanoseconds,
# and in every tenth home a name with a space, a newline and invalid UTF-8. As root, entries
# get various owners (the tests rewrite them with --uid/--gid). Deterministic for a given seed
# (except inode numbers and ctimes). Written in Perl because one fork per file would take
# longer than the tests themselves.
set -eu
n=${MKHOMES_N:-200} kb=64 seed=1 prefix=home-
while [ $# -gt 1 ]; do
	case $1 in
	--homes) n=$2; shift ;;
	--kb) kb=$2; shift ;;
	--seed) seed=$2; shift ;;
	--prefix) prefix=$2; shift ;;
	*) echo "usage: mkhomes.sh [--homes N] [--kb N] [--seed S] [--prefix P] DIR" >&2; exit 2 ;;
	esac
	shift
done
[ $# -eq 1 ] || { echo "usage: mkhomes.sh [--homes N] [--kb N] [--seed S] [--prefix P] DIR" >&2; exit 2; }
mkdir -p -- "$1"
exec perl -e '
use strict; use warnings;
use POSIX qw(mkfifo);
use Time::HiRes qw(utime);
my ($dir, $n, $kb, $seed, $prefix) = @ARGV;
my $root = $< == 0;
srand($seed);
my $bashrc = join("", map { "alias l$_=\"ls -l --color=auto $_\"\n" } 1 .. 60);
my $lib = join("", map { chr(($_ * 131 + 7) % 251) } 1 .. 16384);
sub put { my ($p, $data, $mode) = @_;
	open(my $f, ">", $p) or die "$p: $!"; binmode $f; print $f $data; close $f or die "$p: $!";
	chmod($mode // 0644, $p) or die "chmod $p: $!"; }
sub rnd_bytes { my $len = shift; my $s = "";
	$s .= pack("N", int(rand(4294967296))) while length($s) < $len; substr($s, 0, $len) }
sub rnd_text { my $len = shift; my @w = qw(alpha beta gamma delta notebook import data plot result);
	my $s = ""; $s .= $w[int(rand(@w))] . (rand() < 0.1 ? "\n" : " ") while length($s) < $len;
	substr($s, 0, $len) }
for my $i (1 .. $n) {
	my $h = sprintf("%s/%s%04d", $dir, $prefix, $i);
	mkdir $h or die "$h: $!";
	put("$h/.bashrc", $bashrc);
	mkdir "$h/lib"; put("$h/lib/shared.so", $lib, 0755);
	mkdir "$h/empty";
	my $budget = $kb * 1024 - 16384;
	my $nd = 1 + int(rand(4));
	for my $d (1 .. $nd) {
		my $wd = "$h/work$d"; mkdir $wd; mkdir "$wd/sub"; mkdir "$wd/sub/deeper";
		my $nf = 2 + int(rand(6));
		for my $k (1 .. $nf) {
			my $len = $budget > 0 ? int(rand($budget / ($nd * 2) + 1)) : 0;
			$len = 0 if rand() < 0.08;
			$budget -= $len;
			my $where = (rand() < 0.3) ? "$wd/sub" : (rand() < 0.2 ? "$wd/sub/deeper" : $wd);
			if (rand() < 0.5) { put("$where/notes$k.txt", rnd_text($len)); }
			else { put("$where/data$k.bin", rnd_bytes($len)); }
		}
	}
	put("$h/secret.txt", "home $i\n", 0600);
	symlink("work1", "$h/link-to-work") or die;
	symlink("/nonexistent/target", "$h/dangling") or die;
	put("$h/hard-a", rnd_text(100 + $i)); link("$h/hard-a", "$h/work1/hard-b") or die;
	mkfifo("$h/fifo", 0644) or die "mkfifo: $!";
	if ($i % 10 == 0) {
		put("$h/with space", "x"); put("$h/new\nline", "y"); put("$h/bad-\xff\xfe-utf8", "z");
	}
	if ($root) {
		chown(1000 + $i % 7, 1000 + $i % 5, "$h/work1", "$h/secret.txt");
		chown(0, 0, "$h/.bashrc");
		chown(2000 + $i, 2000 + $i, $h);
	}
	my $t = 1600000000 + $i * 1000;
	utime($t + 0.123456789, $t + 0.987654321, "$h/.bashrc");
	utime($t, $t + 0.5, "$h/empty", "$h/work1/sub");
}
' "$1" "$n" "$kb" "$seed" "$prefix"
