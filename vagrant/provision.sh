#!/usr/bin/env bash
# Provisions berth's conformance box (vagrant/Vagrantfile runs it as root inside the VM):
#
#   provision.sh [--repo DIR]                   packages + Rust toolchain, build, install,
#                                               `scripts/test`, quickstart and --down, summary
#   provision.sh [--repo DIR] --prebuilt DIR    binaries built elsewhere: no toolchain, no build
#                                               and no suite (it builds from source); install,
#                                               quickstart and --down, summary
#   --demo-netns   run the quickstart demo in a network namespace of its own (the test suite
#                  uses this in its debootstrap root, so the demo never touches the host's
#                  network)
#
# Every step is checked; the first failure stops the run with a non-zero exit, and the summary
# says what passed. The suite's test (tests/tests/provision_debootstrap.rs) runs the --prebuilt
# mode inside a Debian 12 root made with debootstrap, so a change that breaks the box breaks
# the suite.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
prebuilt="" demo_netns=no
while [ $# -gt 0 ]; do
  case $1 in
    --repo) repo=$(cd "$2" && pwd); shift ;;
    --prebuilt) prebuilt=$(cd "$2" && pwd) || { echo "provision: --prebuilt $2: no such directory" >&2; exit 2; }; shift ;;
    --demo-netns) demo_netns=yes ;;
    *) echo "provision: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "provision: run as root" >&2; exit 1; }
cd "$repo"
. scripts/lib.sh
export DEBIAN_FRONTEND=noninteractive

summary=()
step_start=$SECONDS
step() { say "provision: $*"; step_start=$SECONDS; }
ok() { summary+=("ok      $* [$((SECONDS - step_start)) s]"); }
failed() { summary+=("FAILED  $*"); }
print_summary() {
  printf '\n== berth box summary (%s)\n' "$(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r), cgroup $(stat -fc %T /sys/fs/cgroup 2>/dev/null)"
  printf '   %s\n' "${summary[@]}"
}
trap 'rc=$?; [ $rc = 0 ] || failed "step exited with $rc (see above)"; print_summary; exit $rc' EXIT

# 1. Packages: the whole suite's with a toolchain; only what the daemons need with --prebuilt.
step "system packages"
if [ -n "$prebuilt" ]; then
  apt_install ca-certificates curl jq iproute2 nftables busybox-static kmod util-linux procps \
    libseccomp2 systemd
else
  apt_install "${BERTH_PACKAGES[@]}"
  install_qemu
fi
ok "system packages"

# 2. Toolchain and build (not with --prebuilt).
if [ -n "$prebuilt" ]; then
  bin=$prebuilt
else
  step "Rust toolchain and release build"
  need_cargo
  cargo --version
  cargo build --release --workspace --bins
  bin=${CARGO_TARGET_DIR:-$repo/target}/release
  ok "toolchain ($(cargo --version | cut -d' ' -f2)) and build"
fi

# 3. Install: binaries, default configuration, systemd units (enabled, started by systemd on
# a booted box). These belong to the box, so the quickstart's --down leaves them.
step "install binaries, configuration and systemd units"
for b in berth berth-agent berth-netd berth-runtime; do
  install -m 0755 "$bin/$b" "/usr/local/bin/$b"
  "/usr/local/bin/$b" --version >/dev/null
done
install -d -m 0755 /etc/berth
for f in netd agent; do
  [ -e "/etc/berth/$f.toml" ] || install -m 0644 "packaging/config/$f.toml" "/etc/berth/$f.toml"
done
for u in berth-netd berth-agent; do
  install -m 0644 "packaging/systemd/$u.service" "/etc/systemd/system/$u.service"
done
systemctl enable berth-netd.service berth-agent.service 2>&1 | sed 's/^/   /'
[ "$(systemctl is-enabled berth-agent.service)" = enabled ] || { echo "berth-agent.service is not enabled" >&2; exit 1; }
verify=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify /etc/systemd/system/berth-netd.service /etc/systemd/system/berth-agent.service 2>&1) ||
  { echo "$verify" >&2; exit 1; }
[ -z "$verify" ] || { echo "systemd-analyze verify: $verify" >&2; exit 1; }
ok "installed: /usr/local/bin/berth{,-agent,-netd,-runtime}, /etc/berth/{netd,agent}.toml, units enabled and verified"

# 4. The suite (not with --prebuilt: it builds from source).
if [ -z "$prebuilt" ]; then
  step "the test suite (./scripts/test)"
  log=/var/log/berth-box-test.log
  rc=0
  ./scripts/test 2>&1 | tee "$log" || rc=$?
  passed=$(awk '/^test result:/ {for (i = 1; i < NF; i++) if ($(i + 1) ~ /^passed/) p += $i} END {print p + 0}' "$log")
  nfailed=$(awk '/^test result:/ {for (i = 1; i < NF; i++) if ($(i + 1) ~ /^failed/) f += $i} END {print f + 0}' "$log")
  if [ "$rc" = 0 ]; then ok "test suite: ${passed:-0} passed, ${nfailed:-0} failed"; else failed "test suite: ${passed:-0} passed, ${nfailed:-0} failed (exit $rc, log $log)"; exit "$rc"; fi
fi

# 5. The quickstart and --down. On a booted box with systemd the daemons run as the units
# installed above; elsewhere as daemons.
step "quickstart"
qs=(./scripts/quickstart)
[ -n "$prebuilt" ] && qs+=(--prebuilt "$prebuilt")
demo_ns=""
if [ "$demo_netns" = yes ]; then
  # One named netns for up and --down alike (nsenter: the mount namespace stays shared, so
  # the cgroup mounts and the agent's rootfs mounts are where the quickstart looks for them).
  demo_ns=berthdemo$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
  ip netns add "$demo_ns"
  ip -n "$demo_ns" link set lo up
  trap 'rc=$?; ip netns del "$demo_ns" 2>/dev/null || true; [ $rc = 0 ] || failed "step exited with $rc (see above)"; print_summary; exit $rc' EXIT
fi
demo() {
  if [ -n "$demo_ns" ]; then nsenter --net="/run/netns/$demo_ns" -- "$@"; else "$@"; fi
}
qlog=$(mktemp)
demo "${qs[@]}" 2>&1 | tee "$qlog"
grep -q 'hello from berth httpd' "$qlog" || { echo "the demo page was not fetched" >&2; exit 1; }
grep -q 'no answer: the security group dropped it' "$qlog" || { echo "the blocked port was not shown" >&2; exit 1; }
task=$(sed -n 's/^task \([0-9a-f]*\) is RUNNING with IP \(.*\)$/\1 \2/p' "$qlog")
ok "quickstart: task ${task% *} RUNNING at ${task#* }, page fetched from the host, port 9000 blocked"
step "quickstart --down"
demo ./scripts/quickstart --down 2>&1 | tee "$qlog"
grep -q '^nothing left' "$qlog" || { echo "quickstart --down left something" >&2; exit 1; }
rm -f "$qlog"
ok "quickstart --down: nothing left (no berth process, netns, veth, cgroup, mount or nft table)"
