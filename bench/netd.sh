#!/usr/bin/env bash
# ENI attach/detach latency (and a security group rule change): berth-netd against the same steps done with `ip` and `nft`
# commands, with 1, 100 and 1000 ENIs alive, in one run. A benchmark, not a test.
#
# Each side gets its own throwaway "host" network namespace (nothing touches the real
# host's links, routes or firewall). berth-netd is timed per API call (curl's time_total on
# the unix socket: the request, not curl's start-up). The peer does what netd does, as
# commands: `ip netns add`, a veth created with its peer already inside the netns (the
# fast way; host-facts.md), lo and eth0 up, the address without a prefix route, a route to
# the gateway and the default route, the gateway /32 and the task /32 route on the host
# side, and one `nft -f` with the ENI's set and map elements in a table shaped like netd's.
#
# Usage: sudo bench/netd.sh [SAMPLES]   (default 50 attach+detach cycles per level)
# Env: BERTH_NETD (binary; default target/release/berth-netd), LEVELS (default "1 100 1000").
set -euo pipefail
if [ "$(id -u)" != 0 ]; then exec sudo -E "$0" "$@"; fi
# Both sides keep their namespace pins and records under /run, which every systemd host
# mounts as a tmpfs. Where /run is not one (this machine's is on the root ext4, where
# creating a file costs more the more files the directory has seen), the benchmark runs in
# a private mount namespace with a tmpfs /run, as on a real host; nothing of it is visible
# outside, and it goes when the benchmark ends.
if [ "$(findmnt -n -o FSTYPE /run 2>/dev/null)" != tmpfs ] && [ -z "${BERTH_BENCH_PRIVATE_RUN:-}" ]; then
  exec env BERTH_BENCH_PRIVATE_RUN=1 unshare --mount --propagation private -- \
    bash -c 'mount -t tmpfs -o mode=0755 tmpfs /run && exec "$@"' bash "$0" "$@"
fi
cd "$(dirname "$0")/.."
SAMPLES=${1:-50}
LEVELS=${LEVELS:-"1 100 1000"}
NETD=${BERTH_NETD:-$PWD/target/release/berth-netd}
[ -x "$NETD" ] || { echo "build it first: cargo build --release -p netd" >&2; exit 1; }

id=bt$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
dir=/tmp/${id}d
rundir=/run/${id}r   # ENI records, as with the default /run/berth/netd
nsdir=/run/${id}n    # namespace pins, as with the default /run/berth/netns
HN=${id}h   # netd's host
PN=${id}p   # the peer's host
mkdir -p "$dir" "$nsdir"
netd_pid=
cleanup() {
  # SIGTERM first: netd then removes the namespaces it made ahead of time.
  if [ -n "$netd_pid" ] && kill "$netd_pid" 2>/dev/null; then
    for _ in $(seq 100); do kill -0 "$netd_pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$netd_pid" 2>/dev/null || true
    wait "$netd_pid" 2>/dev/null || true
  fi
  for f in $(awk -v d="$dir/" -v r="$rundir/" -v n="$nsdir/" 'index($5, d) == 1 || index($5, r) == 1 || index($5, n) == 1 {print $5}' /proc/self/mountinfo); do
    umount -l "$f" 2>/dev/null || true
  done
  for n in $(ip netns list | awk '{print $1}' | grep "^${id}"); do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$dir" "$rundir" "$nsdir"
}
trap cleanup EXIT

ip netns add "$HN"; ip netns add "$PN"
ip -n "$HN" link set lo up; ip -n "$PN" link set lo up

printf 'netns_dir = "%s"\n' "$nsdir" > "$dir/netd.toml"
nsenter --net="/run/netns/$HN" "$NETD" --config "$dir/netd.toml" --socket "$dir/netd.sock" \
  --state-dir "$dir/state" --run-dir "$rundir" 2>"$dir/netd.log" &
netd_pid=$!
S=$dir/netd.sock
for _ in $(seq 200); do curl -sf --unix-socket "$S" http://netd/subnets >/dev/null && break; sleep 0.05; done

# The peer's table: the same shape as netd's (sets, maps, group and combination chains),
# copied without elements after one probe attach has made the combination's set and chains.
curl -sf --unix-socket "$S" -XPOST http://netd/enis -d '{"task":"probe"}' >/dev/null
ip netns exec "$HN" nft list table inet berth | sed '/elements = /d' > "$dir/table.nft"
curl -sf --unix-socket "$S" -XDELETE http://netd/enis/probe >/dev/null
ip netns exec "$PN" nft -f "$dir/table.nft"
COMBO=$( (grep -o 'chain c_[0-9a-f]*_in' "$dir/table.nft" || true) | head -1 | sed 's/chain //; s/_in$//')
[ -n "$COMBO" ] || { echo "no combination chain in netd's table" >&2; exit 1; }

now() { date +%s%N; }

netd_attach() { curl -sf -o /dev/null -w '%{time_total}\n' --unix-socket "$S" -XPOST http://netd/enis -d "{\"task\":\"$1\"}"; }
netd_detach() { curl -sf -o /dev/null -w '%{time_total}\n' --unix-socket "$S" -XDELETE "http://netd/enis/$1"; }

# Peer addresses: 172.31.0.0/20 like netd's public subnet, offset n+4.
peer_ip() { local n=$(( $1 + 4 )); echo "172.31.$(( n / 256 )).$(( n % 256 ))"; }
peer_attach() {
  local n=$1 ns=${id}n$1 veth=${id:2:8}v$1 ip gw=172.31.0.1
  ip=$(peer_ip "$n")
  ip netns add "$ns"
  ip -n "$PN" link add "$veth" type veth peer name eth0 netns "$ns"
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 up
  ip -n "$ns" addr add "$ip/20" dev eth0 noprefixroute
  ip -n "$ns" route add "$gw" dev eth0
  ip -n "$ns" route add default via "$gw"
  ip -n "$PN" link set "$veth" up
  ip -n "$PN" addr add "$gw/32" dev "$veth"
  ip -n "$PN" route add "$ip/32" dev "$veth"
  ip netns exec "$PN" nft -f - <<NFT
add element inet berth enis { $ip }
add element inet berth g_default { $ip }
add element inet berth ${COMBO} { $ip }
NFT
}
peer_detach() {
  local n=$1 ns=${id}n$1 veth=${id:2:8}v$1 ip
  ip=$(peer_ip "$n")
  ip netns exec "$PN" nft -f - <<NFT
delete element inet berth enis { $ip }
delete element inet berth g_default { $ip }
delete element inet berth ${COMBO} { $ip }
NFT
  ip -n "$PN" link del "$veth"
  ip netns del "$ns"
}
# A rule change: replace group `default`'s rules (with the same rules) in one transaction.
RULES='{"ingress":[{"protocol":"all","group":"default"}]}'
netd_rule() { curl -sf -o /dev/null -w '%{time_total}\n' --unix-socket "$S" -XPUT http://netd/security-groups/default -d "$RULES"; }
peer_rule() {
  ip netns exec "$PN" nft -f - <<NFT
flush chain inet berth g_default_in
add rule inet berth g_default_in ip saddr @g_default accept
NFT
}
timed() { local t0 t1; t0=$(now); "$@"; t1=$(now); awk -v d=$(( t1 - t0 )) 'BEGIN { printf "%.6f\n", d / 1e9 }'; }

# median and p99 in ms of the numbers (seconds) in a file
stats() { sort -n "$1" | awk '{ v[NR] = $1 * 1000 } END { m = v[int((NR + 1) / 2)]; p = v[int(NR * 0.99 + 0.999)]; printf "%.2f %.2f", m, p }'; }

alive=0
printf '%-6s %-7s %12s %12s %12s %12s %8s\n' alive op "berth med" "berth p99" "ip+nft med" "ip+nft p99" ratio
for level in $LEVELS; do
  # Fill both sides to `level - 1` ENIs alive, so a timed attach makes it `level`.
  while [ "$alive" -lt $(( level - 1 )) ]; do
    netd_attach "fill$alive" >/dev/null
    peer_attach "$alive"
    alive=$(( alive + 1 ))
  done
  : > "$dir/na"; : > "$dir/nd"; : > "$dir/pa"; : > "$dir/pd"; : > "$dir/nr"; : > "$dir/pr"
  for i in $(seq "$SAMPLES"); do
    netd_attach "s$level-$i" >> "$dir/na"
    netd_detach "s$level-$i" >> "$dir/nd"
    timed peer_attach $(( 3000 + i )) >> "$dir/pa"
    timed peer_detach $(( 3000 + i )) >> "$dir/pd"
    netd_rule >> "$dir/nr"
    timed peer_rule >> "$dir/pr"
  done
  for op in attach detach rule; do
    b=$(stats "$dir/n${op:0:1}"); p=$(stats "$dir/p${op:0:1}")
    read -r bm b99 <<<"$b"; read -r pm p99 <<<"$p"
    printf '%-6s %-7s %12s %12s %12s %12s %8s\n' "$level" "$op" "$bm" "$b99" "$pm" "$p99" \
      "$(awk -v a="$bm" -v b="$pm" 'BEGIN { printf "%.2f", a / b }')"
  done
done
echo "(ms; ratio = berth median / ip+nft median; $SAMPLES samples per cell; $(nproc) cores; $(uname -r))"
