#!/usr/bin/env bash
# RunTask → RUNNING latency of berth-agent for a one-container busybox task with an ENI and a
# security group (image already present), against two peers, interleaved in one run:
#
#   berth   RunTask over the agent's unix socket, then DescribeTasks every POLL_MS (default 1)
#           until lastStatus is RUNNING (bench/agent_client.py; the time runs from sending
#           RunTask to the first DescribeTasks answer saying RUNNING).
#   hand    the same steps done by hand: `ip netns add`, a veth created with its peer already
#           in the netns, lo/eth0 up, address, default route, the host side's address and /32
#           route, one `nft -f` adding the ENI to a security group's set and a rule for it,
#           then `runc run -d` of a prepared bundle (rootfs unpacked beforehand, config.json
#           joining that netns); timed until `runc run -d` returns (the process is running).
#   podman  `podman run -d` of the same image on podman's default bridge network (netavark),
#           with a private --root/--runroot/config (nothing touches the host's podman), runc
#           as its runtime; timed until it returns (podman has started the container).
#
# Each side has its own throwaway "host" network namespace: nothing touches the real host's
# links, routes or firewall. Each sample's task/container is stopped and removed (untimed)
# before the next, so every sample starts from the same idle state. A benchmark, not a test.
#
# Usage: sudo bench/agent.sh [SAMPLES]   (default 50 of each)
# Env: BERTH_BIN_DIR (default target/release), POLL_MS, RUST_LOG (the agent's, e.g.
#      berth_agent=debug for its per-step timings in $KEEP/agent.log), KEEP (a directory to
#      copy the logs to).
set -euo pipefail
if [ "$(id -u)" != 0 ]; then exec sudo -E "$0" "$@"; fi
cd "$(dirname "$0")/.."
SAMPLES=${1:-50}
BIN=${BERTH_BIN_DIR:-$PWD/target/release}
for b in berth berth-agent berth-netd berth-runtime; do
  [ -x "$BIN/$b" ] || { echo "build it first: cargo build --release -p berth-agent -p netd -p berth-runtime ($BIN/$b)" >&2; exit 1; }
done
for tool in runc podman conmon python3 nft ip curl jq nsenter unshare busybox; do
  command -v "$tool" >/dev/null || { echo "missing $tool (Debian packages runc podman conmon python3 nftables iproute2 curl jq util-linux busybox-static)" >&2; exit 1; }
done

id=bt$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
dir=/tmp/${id}g
HN=${id}h   # berth's host
PN=${id}p   # the by-hand peer's host
QN=${id}q   # podman's host
TN=${id}t   # the by-hand task's netns
VETH=${id:2:8}hv
CID=${id}c
agent_pid= netd_pid=
mkdir -p "$dir"

log() { echo "agent.sh: $*" >&2; }

pm() {  # podman with every file private to $dir
  CONTAINERS_CONF=$dir/pm/containers.conf CONTAINERS_STORAGE_CONF=$dir/pm/storage.conf \
  CONTAINERS_REGISTRIES_CONF=$dir/pm/registries.conf TMPDIR=$dir/pm/vartmp \
  XDG_CONFIG_HOME=$dir/pm/xdg XDG_DATA_HOME=$dir/pm/xdg \
    nsenter --net="/run/netns/$QN" podman --root "$dir/pm/root" --runroot "$dir/pm/runroot" \
    --tmpdir "$dir/pm/tmp" --cgroup-manager cgroupfs --events-backend file \
    --network-config-dir "$dir/pm/net" --runtime runc "$@"
}

cleanup() {
  set +e
  # berth: stop what is still running through the agent, then the daemons.
  if [ -n "$agent_pid" ] && [ -s "$dir/tasks" ]; then
    while read -r t; do
      timeout 60 python3 bench/agent_client.py "$dir/agent.sock" stop "$t" 2>/dev/null
    done < "$dir/tasks"
  fi
  for p in $agent_pid $netd_pid; do kill "$p" 2>/dev/null; done
  for p in $agent_pid $netd_pid; do wait "$p" 2>/dev/null; done
  # Anything the agent could not stop: containers, shims, rootfs mounts, task cgroups.
  for c in $("$BIN/berth-runtime" --root "$dir/rt" list -f json 2>/dev/null | jq -r ".[]?.id"); do
    "$BIN/berth-runtime" --root "$dir/rt" delete --force "$c" 2>/dev/null
  done
  # podman and the by-hand peer.
  [ -d "$dir/pm" ] && pm rm -af -t 0 >/dev/null 2>&1
  runc --root "$dir/runc" delete -f "$CID" >/dev/null 2>&1
  for p in $(grep -l "$dir" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
    [ "$p" != $$ ] && kill -9 "$p" 2>/dev/null
  done
  sleep 0.2
  grep " $dir" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do umount -l "$m"; done
  if [ -s "$dir/tasks" ]; then
    while read -r t; do
      for cg in /sys/fs/cgroup/*/berth/"$t"; do
        [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
      done
    done < "$dir/tasks"
  fi
  for cg in /sys/fs/cgroup/*/"${id}"*; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  for n in $(ip netns list | awk '{print $1}' | grep "^${id}"); do ip netns del "$n"; done
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$dir"/*.log "$dir"/*.ms "$KEEP"/ 2>/dev/null; fi
  rm -rf "$dir"
}
trap cleanup EXIT

# --- the image, once for everyone --------------------------------------------------------
images/recipes/build.sh "$dir/images" >/dev/null
IMAGE=localhost/busybox:latest
CMD='trap "exit 0" TERM; sleep 1000000 & wait'

# --- berth: netd + agent in HN, a security group, the task definition --------------------
for n in "$HN" "$PN" "$QN"; do ip netns add "$n"; ip -n "$n" link set lo up; done
"$BIN/berth" --root "$dir/root" image load "$dir/images/busybox" >/dev/null
cat > "$dir/netd.toml" <<EOF
netns_dir = "$dir/netns"
table = "$id"
vpc_cidr = "10.240.0.0/16"
[[subnets]]
name = "private"
cidr = "10.240.0.0/20"
EOF
nsenter --net="/run/netns/$HN" "$BIN/berth-netd" --config "$dir/netd.toml" --socket "$dir/netd.sock" \
  --state-dir "$dir/netd" --run-dir "$dir/netd-run" 2>"$dir/netd.log" &
netd_pid=$!
RUST_LOG=${RUST_LOG:-info} nsenter --net="/run/netns/$HN" "$BIN/berth-agent" --root "$dir/root" \
  --socket "$dir/agent.sock" --netd-socket "$dir/netd.sock" --runtime "$BIN/berth-runtime" \
  --runtime-root "$dir/rt" 2>"$dir/agent.log" &
agent_pid=$!
for _ in $(seq 200); do
  [ -S "$dir/agent.sock" ] && curl -sf --unix-socket "$dir/netd.sock" http://netd/subnets >/dev/null && break
  sleep 0.05
done
curl -sf --unix-socket "$dir/netd.sock" -XPOST http://netd/security-groups \
  -d '{"id":"bench","ingress":[{"protocol":"tcp","fromPort":8080,"group":"bench"}]}' >/dev/null
ecs() { python3 bench/agent_client.py "$dir/agent.sock" call "$@"; }
ecs RegisterTaskDefinition "$(jq -cn --arg image "$IMAGE" --arg cmd "$CMD" '{family: "bench",
  networkMode: "awsvpc", requiresCompatibilities: ["FARGATE"], cpu: "256", memory: "512",
  containerDefinitions: [{name: "app", image: $image, stopTimeout: 5,
    command: ["sh", "-c", $cmd]}]}')" >/dev/null

# --- by hand: a prepared bundle, a table like netd's with one security group -------------
mkdir -p "$dir/hand/rootfs" "$dir/runc"
layer=$(jq -r '.manifests[0].digest' "$dir/images/busybox/index.json" | cut -d: -f2)
layer=$(jq -r '.layers[0].digest' "$dir/images/busybox/blobs/sha256/$layer" | cut -d: -f2)
tar -xzf "$dir/images/busybox/blobs/sha256/$layer" -C "$dir/hand/rootfs"
runc spec --bundle "$dir/hand"
jq --arg ns "/run/netns/$TN" --arg cg "/${id}r/app" --arg cmd "$CMD" '
  .process.terminal = false | .process.args = ["sh", "-c", $cmd] | .root.readonly = true
  | .linux.namespaces |= map(if .type == "network" then .path = $ns else . end) | .linux.cgroupsPath = $cg
  | .process.rlimits = [{type: "RLIMIT_NOFILE", soft: 1024, hard: 4096}]' \
  "$dir/hand/config.json" > "$dir/hand/config.tmp" && mv "$dir/hand/config.tmp" "$dir/hand/config.json"
ip netns exec "$PN" nft -f - <<EOF
table inet $id {
  set g_bench { type ipv4_addr; }
  chain tasks { type filter hook forward priority 0; policy accept; ct state established,related accept; }
}
EOF
hand_up() {
  ip netns add "$TN"
  ip -n "$PN" link add "$VETH" type veth peer name eth0 netns "$TN"
  ip -n "$TN" link set lo up
  ip -n "$TN" link set eth0 up
  ip -n "$TN" addr add 10.241.0.5/20 dev eth0 noprefixroute
  ip -n "$TN" route add 10.241.0.1 dev eth0
  ip -n "$TN" route add default via 10.241.0.1
  ip -n "$PN" link set "$VETH" up
  ip -n "$PN" addr add 10.241.0.1/32 dev "$VETH"
  ip -n "$PN" route add 10.241.0.5/32 dev "$VETH"
  ip netns exec "$PN" nft -f - <<EOF
add element inet $id g_bench { 10.241.0.5 }
add rule inet $id tasks ip daddr 10.241.0.5 ip saddr @g_bench tcp dport 8080 accept
EOF
  runc --root "$dir/runc" run -d --bundle "$dir/hand" --pid-file "$dir/hand.pid" "$CID" \
    </dev/null >/dev/null 2>>"$dir/runc.log"
}
hand_down() {
  runc --root "$dir/runc" delete -f "$CID" >/dev/null
  ip netns exec "$PN" nft -f - <<EOF
flush chain inet $id tasks
add rule inet $id tasks ct state established,related accept
delete element inet $id g_bench { 10.241.0.5 }
EOF
  ip -n "$PN" link del "$VETH"
  ip netns del "$TN"
}

# --- podman: private store and config, the same image ------------------------------------
mkdir -p "$dir/pm"/{net,tmp,vartmp,xdg}
# Without CAP_SYS_RESOURCE podman's default rlimits cannot be set: pin them to ours.
NOFILE=$(ulimit -Hn); NPROC=$(ulimit -Hu)
[ "$NOFILE" = unlimited ] || [ "$NOFILE" -gt 1048576 ] && NOFILE=1048576
[ "$NPROC" = unlimited ] || [ "$NPROC" -gt 32768 ] && NPROC=32768
cat > "$dir/pm/containers.conf" <<EOF
[containers]
log_driver = "k8s-file"
default_ulimits = ["nofile=$NOFILE:$NOFILE", "nproc=$NPROC:$NPROC"]
[network]
network_backend = "netavark"
network_config_dir = "$dir/pm/net"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$dir/pm/events.log"
tmp_dir = "$dir/pm/tmp"
lock_type = "file"
volume_path = "$dir/pm/root/volumes"
runtime = "runc"
EOF
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' "$dir/pm/root" "$dir/pm/runroot" > "$dir/pm/storage.conf"
echo 'unqualified-search-registries = []' > "$dir/pm/registries.conf"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' > "$dir/pm/policy.json"
# podman 4.3 writes a blob-info cache under /var/lib/containers/cache whatever the storage
# config says: copy the image in a private mount namespace where that place is an empty tmpfs.
cache=/var/lib/containers/cache; [ -d $cache ] || cache=/var/lib
export -f pm; export dir QN
unshare -m --propagation private bash -c "mount -n -t tmpfs -o size=16m bt-podman-cache $cache && \
  pm pull --signature-policy $dir/pm/policy.json oci:$dir/images/busybox:latest >/dev/null 2>$dir/podman-pull.log && \
  pm tag \$(pm images -q | head -1) $IMAGE"
PCID=${id}pm
pod_up() {
  pm run -d --name "$PCID" --pull never --cgroup-parent "/${id}q" "$IMAGE" sh -c "$CMD" \
    >/dev/null 2>>"$dir/podman.log"
}
pod_down() { pm rm -f -t 0 "$PCID" >/dev/null 2>>"$dir/podman.log"; }

# --- the interleaved samples --------------------------------------------------------------
now() { date +%s%N; }
: > "$dir/berth.ms"; : > "$dir/hand.ms"; : > "$dir/podman.ms"; : > "$dir/tasks"
# One warm-up of each (first-use costs: page cache, podman's network setup).
for side in berth hand podman; do
  case $side in
    berth) read -r _ t < <(python3 bench/agent_client.py "$dir/agent.sock" run bench private bench)
           echo "$t" >> "$dir/tasks"; python3 bench/agent_client.py "$dir/agent.sock" stop "$t" ;;
    hand) hand_up; hand_down ;;
    podman) pod_up; pod_down ;;
  esac
done
for i in $(seq "$SAMPLES"); do
  read -r ms t < <(python3 bench/agent_client.py "$dir/agent.sock" run bench private bench)
  echo "$t" >> "$dir/tasks"
  echo "$ms" >> "$dir/berth.ms"
  python3 bench/agent_client.py "$dir/agent.sock" stop "$t"
  t0=$(now); hand_up; t1=$(now); hand_down
  echo "$(( (t1 - t0) / 1000 ))" | awk '{ printf "%.3f\n", $1 / 1000 }' >> "$dir/hand.ms"
  t0=$(now); pod_up; t1=$(now); pod_down
  echo "$(( (t1 - t0) / 1000 ))" | awk '{ printf "%.3f\n", $1 / 1000 }' >> "$dir/podman.ms"
  [ $(( i % 10 )) = 0 ] && log "$i/$SAMPLES"
done

# median and p99 (ms) of a file of ms values
stats() { sort -n "$1" | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; p = v[int(NR * 0.99 + 0.999)]; printf "%.2f %.2f", m, p }'; }
read -r bm b99 <<<"$(stats "$dir/berth.ms")"
read -r hm h99 <<<"$(stats "$dir/hand.ms")"
read -r pm_ p99 <<<"$(stats "$dir/podman.ms")"
printf '%-30s %10s %10s %14s %14s\n' side median p99 "vs by hand" "vs podman"
for row in "berth (RunTask→RUNNING)|$bm|$b99" "by hand (ip+nft, runc run -d)|$hm|$h99" "podman run -d|$pm_|$p99"; do
  IFS='|' read -r name m p <<<"$row"
  printf '%-30s %10s %10s %14s %14s\n' "$name" "$m" "$p" \
    "$(awk -v a="$m" -v b="$hm" 'BEGIN { printf "%.2f", a / b }')" \
    "$(awk -v a="$m" -v b="$pm_" 'BEGIN { printf "%.2f", a / b }')"
done
echo "(ms; $SAMPLES samples each, interleaved; POLL_MS=${POLL_MS:-1}; $(nproc) cores; $(uname -r); load $(cut -d' ' -f1-3 /proc/loadavg))"
