#!/usr/bin/env bash
# The suite's check of the conformance box (issue 11), without a VM: runs
# `vagrant/provision.sh --prebuilt` inside a Debian 12 root made with debootstrap.
#
#   vagrant/test-in-debootstrap.sh BIN_DIR WORK_DIR [PROVISION_SCRIPT]
#
# The root (debootstrap --variant=minbase bookworm, from the Debian mirror this host uses) is
# cached as a tarball under $BERTH_DEBOOTSTRAP_CACHE (default /var/cache/berth-tests/debootstrap),
# with the .debs apt downloads inside it, and unpacked afresh into WORK_DIR/root each run.
# The provisioning runs there for real: apt installs packages into the root, the binaries from
# BIN_DIR, the configs and the systemd units are installed and enabled and checked with
# systemd-analyze verify, and the quickstart runs its demo and --down.
#
# What touches the kernel is fenced: everything runs in a private mount namespace (proc, sys,
# dev and a tmpfs /run mounted for the chroot vanish with it) and a private pid namespace (no
# process outlives the run), and the quickstart's demo gets a network namespace of its own
# (--demo-netns), so its veths, routes and nft table never reach the host's network. Task
# cgroups do live in the host's cgroup tree; the quickstart's --down removes them.
# PROVISION_SCRIPT replaces vagrant/provision.sh inside the root (the suite runs a broken copy
# to prove that a broken box fails). Exit status: the provisioning's.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 BIN_DIR WORK_DIR [PROVISION_SCRIPT]" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "$1" && pwd) work=$2 script=${3:-$repo/vagrant/provision.sh}
cache=${BERTH_DEBOOTSTRAP_CACHE:-/var/cache/berth-tests/debootstrap}
tarball=$cache/bookworm-minbase.tar.gz
root=$work/root

# The Debian mirror this host's apt uses (deb822 or one-line sources), else deb.debian.org.
mirror() {
  local m
  m=$(sed -n 's/^URIs:[[:space:]]*\(http[^ ]*\/debian\/\{0,1\}\)[[:space:]]*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
  [ -n "$m" ] || m=$(awk '$1 == "deb" && $2 ~ /^http/ && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  echo "${m:-http://deb.debian.org/debian}"
}

mkdir -p "$cache/archives/partial" "$work"
if [ ! -s "$tarball" ]; then
  echo "== building the Debian 12 root (debootstrap, $(mirror)); cached in $tarball" >&2
  tmp=$(mktemp -d "$cache/build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  # In a private mount namespace: the /proc it mounts inside the root goes with it.
  unshare --mount --propagation private -- \
    debootstrap --variant=minbase bookworm "$tmp" "$(mirror)" >"$cache/debootstrap.log" 2>&1 ||
    { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  rm -f "$tmp"/var/cache/apt/archives/*.deb
  tar -C "$tmp" -czf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
  rm -rf "$tmp"
  trap - EXIT
fi

# BERTH_DEBOOTSTRAP_REUSE=1: run again in the root the previous run left (the suite's second,
# deliberately broken, run), else unpack a fresh one.
if [ "${BERTH_DEBOOTSTRAP_REUSE:-}" != 1 ] || [ ! -d "$root/berth" ]; then
  rm -rf "$root"
  mkdir -p "$root"
  tar -C "$root" -xzf "$tarball"
fi
rm -rf "$root/berth" "$root/opt/berth-bin"
# What provision.sh needs from the repository, and the binaries under test.
mkdir -p "$root/berth/images" "$root/opt/berth-bin"
cp -a "$repo/scripts" "$repo/packaging" "$repo/vagrant" "$root/berth/"
cp -a "$repo/images/recipes" "$root/berth/images/"
install -m 0755 "$script" "$root/berth/vagrant/provision.sh"
for b in berth berth-agent berth-netd berth-runtime; do install -m 0755 "$bin/$b" "$root/opt/berth-bin/$b"; done
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
# No service starts from package scripts inside the root (the usual chroot policy).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"

export root cache
exec unshare --mount --pid --fork --propagation private -- bash -c '
  set -e
  # The root as a mount point of its own, as a real system'"'"'s / is (ip netns needs it).
  mount --bind "$root" "$root"
  mount -t proc proc "$root/proc"
  mount --rbind /sys "$root/sys"
  mount --rbind /dev "$root/dev"
  mount -t tmpfs -o mode=0755 tmpfs "$root/run"
  mount --bind "$cache/archives" "$root/var/cache/apt/archives"
  exec chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 /berth/vagrant/provision.sh --repo /berth --prebuilt /opt/berth-bin --demo-netns
'
