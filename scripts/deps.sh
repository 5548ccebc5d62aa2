#!/bin/sh
# Installs the Debian 12 packages projstore needs.
#   scripts/deps.sh          build dependencies
#   scripts/deps.sh --test   also everything the test suite starts or uses
set -eu
pkgs="build-essential pkg-config libzstd-dev liblz4-dev libssl-dev libjansson-dev fuse3 libfuse3-dev libglusterfs-dev libsqlite3-dev libpq-dev libmicrohttpd-dev libbtrfsutil-dev libseccomp-dev"
if [ "${1:-}" = "--test" ]; then
	pkgs="$pkgs perl attr clang python3 util-linux procps strace glusterfs-server iproute2 postgresql"
	# serve: API tests (curl, jq), dashboard test in a headless browser
	pkgs="$pkgs curl jq chromium nodejs"
	# hosting: btrfs images with quota groups, project users, veth + NAT; modprobe
	# loads btrfs (a module on Debian's kernels) before the tests look for it
	pkgs="$pkgs btrfs-progs passwd iproute2 iptables kmod"
	command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
	# sync over ssh: a real sshd on loopback, started by the tests
	pkgs="$pkgs openssh-server openssh-client"
	# a PostgreSQL catalog behind a connection pooler
	pkgs="$pkgs pgbouncer"
fi
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
