# Helpers for the image recipes: deterministic tar+gzip layers and OCI layout blobs.
# Sourced by the recipe scripts; needs tar, gzip, jq, sha256sum.
set -euo pipefail

epoch=${SOURCE_DATE_EPOCH:-1700000000}

# layout_init OUT: an empty OCI image layout.
layout_init() {
    local out=$1
    if [[ -e $out ]]; then
        [[ -d $out && -z $(ls -A "$out") ]] || { echo "$out exists and is not an empty directory" >&2; return 1; }
    fi
    mkdir -p "$out/blobs/sha256"
    printf '{"imageLayoutVersion":"1.0.0"}' > "$out/oci-layout"
}

# put_blob OUT < data: store stdin as a blob; prints "sha256:HEX SIZE".
put_blob() {
    local out=$1 tmp hex
    tmp=$(mktemp "$out/blobs/.tmp.XXXXXX")
    cat > "$tmp"
    hex=$(sha256sum < "$tmp" | cut -d' ' -f1)
    chmod 644 "$tmp"
    mv "$tmp" "$out/blobs/sha256/$hex"
    echo "sha256:$hex $(stat -c %s "$out/blobs/sha256/$hex")"
}

# add_layer OUT STAGE: tar STAGE (sorted, fixed owners and mtime), gzip it into a blob.
# Appends to the globals layers_json and diffids_json.
add_layer() {
    local out=$1 stage=$2 tarfile diffid digest size
    tarfile=$(mktemp)
    (cd "$stage" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort) |
        tar -C "$stage" --no-recursion -T - --format=posix \
            --pax-option='exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime' \
            --mtime="@$epoch" --owner=0 --group=0 --numeric-owner -cf "$tarfile"
    diffid=sha256:$(sha256sum < "$tarfile" | cut -d' ' -f1)
    read -r digest size < <(gzip -n -6 < "$tarfile" | put_blob "$out")
    rm -f "$tarfile"
    layers_json=$(jq -c --arg d "$digest" --argjson s "$size" \
        '. + [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $d, size: $s}]' <<< "${layers_json:-[]}")
    diffids_json=$(jq -c --arg d "$diffid" '. + [$d]' <<< "${diffids_json:-[]}")
}

# finish_image OUT TAG CONFIG_JSON: write config, manifest and index.json (tag as ref.name).
# CONFIG_JSON is the image config's "config" object. Prints the manifest digest.
finish_image() {
    local out=$1 tag=$2 cfg=$3 created cd cs md ms
    created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
    read -r cd cs < <(jq -cjn --arg c "$created" --argjson cfg "$cfg" --argjson diffids "$diffids_json" \
        '{created: $c, architecture: "amd64", os: "linux", config: $cfg,
          rootfs: {type: "layers", diff_ids: $diffids}}' | put_blob "$out")
    read -r md ms < <(jq -cjn --arg cd "$cd" --argjson cs "$cs" --argjson layers "$layers_json" \
        '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
          config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
          layers: $layers}' | put_blob "$out")
    jq -cjn --arg md "$md" --argjson ms "$ms" --arg tag "$tag" \
        '{schemaVersion: 2, manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json",
          digest: $md, size: $ms, annotations: {"org.opencontainers.image.ref.name": $tag}}]}' \
        > "$out/index.json"
    echo "$md"
}

# busybox_stage DIR: Debian's busybox-static with an applet link per command, passwd, group.
busybox_stage() {
    local s=$1 busybox=${BUSYBOX:-/bin/busybox} applet
    [[ -x $busybox ]] && "$busybox" --list >/dev/null 2>&1 || { echo "$busybox is not busybox (apt-get install busybox-static)" >&2; return 1; }
    mkdir -p "$s"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,proc,sys,dev,run,var/tmp,home/user}
    chmod 1777 "$s/tmp" "$s/var/tmp"
    chmod 700 "$s/root"
    cp "$busybox" "$s/bin/busybox"
    chmod 755 "$s/bin/busybox"
    while read -r applet; do
        [[ $applet == busybox || -e $s/bin/$applet ]] || ln -s busybox "$s/bin/$applet"
    done < <("$busybox" --list | LC_ALL=C sort)
    printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$s/etc/passwd"
    printf 'root:x:0:\nwheel:x:10:user\nuser:x:1000:\nnogroup:x:65534:\n' > "$s/etc/group"
}
