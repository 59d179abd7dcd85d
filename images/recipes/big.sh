#!/usr/bin/env bash
# Builds, offline, a realistic 5-layer image (about 130 MiB of tar) as an OCI layout, for the
# pull/unpack benchmark:
#
#   images/recipes/big.sh OUT_DIR        (tag "latest")
#
#   1 busybox-static base with an applet link per command, passwd, group
#   2 ~40 MiB of small files (< 256 KiB) from /usr/share (docs, perl, locales, zoneinfo ...)
#   3 ~20 MiB of ELF binaries and shared libraries from /usr/bin and /usr/lib
#   4 ~34 MiB of the Python standard library (many small .py/.pyc files)
#   5 32 MiB of incompressible bytes (AES-CTR keystream with a fixed key), two config files, and
#     a whiteout deleting one file of layer 2
# Fails when the host trees yield less than 100 MiB. Deterministic for a given host.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

[[ $# -eq 1 && $1 != -* ]] || { echo "usage: $0 OUT_DIR" >&2; exit 2; }
out=$1
for t in tar gzip jq sha256sum openssl find; do command -v "$t" >/dev/null || { echo "$t not found" >&2; exit 1; }; done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
MiB=$((1 << 20))

# take STAGE BUDGET MAXFILE TREE...: copy files below MAXFILE bytes, in path order, up to BUDGET.
take() {
    local stage=$1 budget=$2 maxfile=$3 trees=() t
    shift 3
    for t in "$@"; do [[ -d $t ]] && trees+=("$t"); done
    [[ ${#trees[@]} -gt 0 ]] || return 0
    find "${trees[@]}" -xdev -type f -size -"$((maxfile / 1024))"k -printf '%s %p\n' 2>/dev/null |
        LC_ALL=C sort -k2 |
        awk -v b="$budget" '{ if (s + $1 <= b) { s += $1; sub(/^[0-9]+ \//, ""); print } }' > "$work/take.list"
    tar -C / --no-recursion -cf - -T "$work/take.list" | tar -C "$stage" -xpf -
}

layout_init "$out"
layers_json='[]' diffids_json='[]'
total=0

busybox_stage "$work/l1"
mkdir -p "$work/l2" "$work/l3" "$work/l4" "$work/l5/srv/blobs" "$work/l5/etc/app"
take "$work/l2" $((40 * MiB)) $((256 * 1024)) /usr/share/doc /usr/share/perl /usr/share/i18n /usr/share/zoneinfo /usr/share/common-licenses /usr/share/misc
find /usr/bin /usr/lib/x86_64-linux-gnu -maxdepth 1 -type f \( -path '/usr/bin/*' -o -name '*.so.*' \) -printf '%s %p\n' |
    LC_ALL=C sort -k2 | awk -v b=$((20 * MiB)) '$1 < 4194304 { if (s + $1 <= b) { s += $1; sub(/^[0-9]+ \//, ""); print } }' > "$work/bins.list"
tar -C / --no-recursion -cf - -T "$work/bins.list" | tar -C "$work/l3" -xpf -
take "$work/l4" $((34 * MiB)) $((1024 * 1024)) /usr/lib/python3*
for i in 1 2 3 4; do
    head -c $((8 * MiB)) /dev/zero | openssl enc -aes-256-ctr -nosalt -pbkdf2 -iter 1 -pass "pass:berth-big-$i" > "$work/l5/srv/blobs/part$i.bin"
done
printf 'port = 8080\n' > "$work/l5/etc/app/app.conf"
printf 'MODE=bench\n' > "$work/l5/etc/app/env"
victim=$(cd "$work/l2" && find . -type f -printf '%P\n' | LC_ALL=C sort | sed -n 1p)
if [[ -n $victim ]]; then
    mkdir -p "$work/l5/$(dirname "$victim")"
    : > "$work/l5/$(dirname "$victim")/.wh.$(basename "$victim")"
fi
for i in 1 2 3 4 5; do
    total=$((total + $(du -sb "$work/l$i" | cut -f1)))
    add_layer "$out" "$work/l$i"
done
(( total >= 100 * MiB )) || { echo "only $total bytes of content; want >= 100 MiB" >&2; exit 1; }
finish_image "$out" latest '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"]}'
