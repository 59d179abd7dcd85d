#!/usr/bin/env bash
# Benchmark: create + start + wait + delete of a busybox `/bin/true` bundle, N sequential runs
# each of berth-runtime, crun and runc, interleaved in one run (the order rotates every
# round). Prints median, p95 and peak RSS of the runtime process, and the ratios against crun
# and runc.
#
# All three run inside one private mount namespace where the cgroup2 mount's
# cgroup.controllers reads empty: crun 1.8 refuses this host's hybrid cgroups otherwise
# (docs/benchmarks.md says more). Usage: sudo bench/runtime.sh [RUNS] [BERTH_RUNTIME]
set -euo pipefail
if [ "$(id -u)" != 0 ]; then exec sudo -E "$0" "$@"; fi
cd "$(dirname "$0")/.."
runs=${1:-100}
berth=${2:-target/release/berth-runtime}
[ -x "$berth" ] || { echo "build it first: cargo build --release -p berth-runtime" >&2; exit 1; }
for tool in crun runc busybox python3 unshare; do
  command -v "$tool" >/dev/null || { echo "missing $tool (Debian packages crun runc busybox-static python3 util-linux)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/berth-bench-runtime.XXXXXX)
cleanup() {
  for d in /sys/fs/cgroup/*/berth-bench /sys/fs/cgroup/berth-bench; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/bundle/rootfs/bin"
cp "$(command -v busybox)" "$work/bundle/rootfs/bin/busybox"
ln -s busybox "$work/bundle/rootfs/bin/true"
ln -s busybox "$work/bundle/rootfs/bin/sh"
"$berth" spec --bundle "$work/bundle"
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
s = json.load(open(p))
s["ociVersion"] = "1.0.2"  # crun 1.8 knows no later version
s["process"]["terminal"] = False
s["process"]["args"] = ["/bin/true"]
s["root"]["readonly"] = True
json.dump(s, open(p, "w"))
PY
: > "$work/empty"
unshare -m --propagation private sh -c '
  if [ -e /sys/fs/cgroup/unified/cgroup.controllers ]; then
    mount --bind "$1/empty" /sys/fs/cgroup/unified/cgroup.controllers
  fi
  exec python3 "$2" "$1" "$3" "$4"' bench "$work" bench/runtime_bench.py "$runs" "$berth"
