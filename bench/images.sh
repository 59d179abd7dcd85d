#!/usr/bin/env bash
# Benchmark of issue 4: pull + unpack of a 5-layer image (~130 MiB of tar, images/recipes/big.sh)
# from a loopback registry, berth against `skopeo copy` + `umoci unpack` (its peer), interleaved
# in one run (alternating which goes first); then the time to create a further rootfs of an
# already pulled image (`berth image rootfs create`, a whole CLI process, so an upper bound).
#
#   sudo bench/images.sh [RUNS]            (RUNS defaults to 5; prints a markdown section)
#
# Both sides write to a fresh journaled ext4 loop image mounted in a private mount namespace:
# on this host's journal-less ext4 the kernel slows file creation after deletes (see
# research/host-facts.md), which would penalise whichever side runs second.
# Needs: docker-registry, skopeo, umoci, curl, jq, openssl, e2fsprogs; berth built in release
# (BERTH_BIN overrides target/release/berth).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
berth=${BERTH_BIN:-$repo/target/release/berth}
[[ $(id -u) -eq 0 ]] || { echo "run as root" >&2; exit 1; }
[[ -x $berth ]] || { echo "$berth missing: cargo build --release -p berth-agent" >&2; exit 1; }
for t in docker-registry skopeo umoci curl mkfs.ext4 unshare; do
    command -v "$t" >/dev/null || { echo "$t not found" >&2; exit 1; }
done

if [[ -z ${BERTH_BENCH_INNER:-} ]]; then
    exec unshare --mount --propagation private env BERTH_BENCH_INNER=1 "$0" "$@"
fi

work=$(mktemp -d /tmp/berth-bench-images.XXXXXX)
reg_pid=""
cleanup() {
    set +e # every step runs, whatever the one before returned
    if [[ -n $reg_pid ]]; then
        kill "$reg_pid" 2>/dev/null
        wait "$reg_pid" 2>/dev/null
    fi
    for m in "$work"/mnt/*/images/rootfs/*/merged; do umount -l "$m" 2>/dev/null || true; done
    umount -l "$work/mnt" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "building the image ..." >&2
"$repo/images/recipes/big.sh" "$work/big" >/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
addr=127.0.0.1:$port
mkdir -p "$work/reg"
cat > "$work/reg/config.yml" <<CFG
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/reg/storage
http:
  addr: $addr
  secret: bench
CFG
docker-registry serve "$work/reg/config.yml" >"$work/reg/log" 2>&1 &
reg_pid=$!
for _ in $(seq 1 200); do
    curl -fs -o /dev/null "http://$addr/v2/" && break
    sleep 0.05
done
skopeo copy -q --dest-tls-verify=false "oci:$work/big:latest" "docker://$addr/big:latest"
image=$addr/big:latest

truncate -s 4G "$work/scratch.img"
mkfs.ext4 -q -F "$work/scratch.img"
mkdir -p "$work/mnt"
mount -o loop "$work/scratch.img" "$work/mnt"
mnt=$work/mnt

ms() { echo $(( $(date +%s%N) / 1000000 )); }
run_berth() {
    local t0 t1
    t0=$(ms)
    "$berth" --root "$mnt/berth-$1" image pull -q "$image" >/dev/null || exit 1
    t1=$(ms)
    echo $((t1 - t0))
}
run_peer() {
    local t0 t1
    mkdir -p "$mnt/peer-$1"
    t0=$(ms)
    skopeo copy -q --src-tls-verify=false "docker://$image" "oci:$mnt/peer-$1/oci:latest" || exit 1
    umoci unpack --image "$mnt/peer-$1/oci:latest" "$mnt/peer-$1/bundle" >/dev/null 2>&1 || exit 1
    t1=$(ms)
    echo $((t1 - t0))
}
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

berth_times=() peer_times=()
for i in $(seq 1 "$runs"); do
    if (( i % 2 )); then
        berth_times+=("$(run_berth "$i")"); sync
        peer_times+=("$(run_peer "$i")"); sync
    else
        peer_times+=("$(run_peer "$i")"); sync
        berth_times+=("$(run_berth "$i")"); sync
    fi
    echo "run $i: berth ${berth_times[-1]} ms, skopeo+umoci ${peer_times[-1]} ms" >&2
    if (( i < runs )); then
        rm -rf "$mnt/berth-$i" "$mnt/peer-$i"
        sync
    fi
done

root=$mnt/berth-$runs
"$berth" --root "$root" image rootfs create "$image" warm >/dev/null
rootfs_times=()
for j in $(seq 1 20); do
    t0=$(date +%s%N)
    "$berth" --root "$root" image rootfs create "$image" "c$j" >/dev/null
    t1=$(date +%s%N)
    rootfs_times+=("$(( (t1 - t0) / 1000 ))")
done
for j in $(seq 1 20); do "$berth" --root "$root" image rootfs rm "c$j"; done
"$berth" --root "$root" image rootfs rm warm
# In-process (Store::create_rootfs timed inside one process), 50 rootfs.
timing_bin=${BERTH_ROOTFS_TIMING:-$repo/target/release/examples/rootfs_timing}
if [[ ! -x $timing_bin ]]; then
    (cd "$repo" && cargo build --release -q -p images --example rootfs_timing)
fi
read -r lib_median lib_max < <("$timing_bin" "$root" "$image" 50)
# The same CLI process doing no image work: what of the above is process start.
version_times=()
for j in $(seq 1 20); do
    t0=$(date +%s%N)
    "$berth" --version >/dev/null
    t1=$(date +%s%N)
    version_times+=("$(( (t1 - t0) / 1000 ))")
done

b=$(printf '%s\n' "${berth_times[@]}" | median)
p=$(printf '%s\n' "${peer_times[@]}" | median)
r=$(printf '%s\n' "${rootfs_times[@]}" | median)
v=$(printf '%s\n' "${version_times[@]}" | median)
tar_bytes=$(jq '[.layers[].size] | add' < <("$berth" --root "$root" image inspect "$image" | jq '.image'))
size_mib=$("$berth" --root "$root" image ls -o json | jq '.[0].size_bytes / 1048576 | floor')
cat <<MD
## images

\`bench/images.sh $runs\` on $(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r): pull and unpack
of the 5-layer image from \`images/recipes/big.sh\` (${size_mib} MiB of tar, $((tar_bytes / 1048576)) MiB
compressed) from a \`docker-registry\` on 127.0.0.1, onto a fresh journaled ext4 loop image, the two
sides interleaved (alternating which goes first), $runs runs each. Medians:

| work | berth | peer | ratio |
|---|---|---|---|
| pull + unpack (berth \`image pull\` vs \`skopeo copy\` + \`umoci unpack\`) | ${b} ms | ${p} ms | $(awk -v b="$b" -v p="$p" 'BEGIN { printf "%.2fx faster", p / b }') |
| a further rootfs of a pulled image (\`berth image rootfs create\`, whole CLI process, 20 runs) | $(awk -v r="$r" 'BEGIN { printf "%.1f ms", r / 1000 }') | | |
| a further rootfs, in-process (\`Store::create_rootfs\`, examples/rootfs_timing, 50 runs; max $(awk -v m="$lib_max" 'BEGIN { printf "%.1f ms", m / 1000 }')) | $(awk -v m="$lib_median" 'BEGIN { printf "%.2f ms", m / 1000 }') | | |
| the same CLI process doing no image work (\`berth --version\`, 20 runs) | $(awk -v v="$v" 'BEGIN { printf "%.1f ms", v / 1000 }') | | |

Per run (ms), berth: ${berth_times[*]}; skopeo+umoci: ${peer_times[*]}.
berth syncs each layer (syncfs) before committing it; umoci does not sync.
MD
