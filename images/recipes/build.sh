#!/usr/bin/env bash
# Builds, offline, the images the tests and the quickstart use, as OCI image layouts:
#
#   images/recipes/build.sh OUT_DIR
#
#   OUT_DIR/busybox   tag "latest": one layer, Debian's busybox-static with an applet link per
#                     command, /etc/passwd and /etc/group (root, user 1000, nobody); Cmd ["/bin/sh"]
#   OUT_DIR/httpd     tag "latest": the busybox layer plus a layer with /www/index.html;
#                     Entrypoint busybox httpd in the foreground on port 8080, ExposedPorts 8080/tcp,
#                     StopSignal SIGTERM, User "user"
#
# Load with `berth image load OUT_DIR/busybox` (name localhost/busybox:latest) or push with
# `skopeo copy oci:OUT_DIR/busybox:latest docker://HOST/busybox:latest`. Deterministic: the same
# busybox gives the same digests (fixed mtime SOURCE_DATE_EPOCH, owners 0, sorted entries).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

[[ $# -eq 1 && $1 != -* ]] || { echo "usage: $0 OUT_DIR" >&2; exit 2; }
out=$1
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

busybox_stage "$work/base"

layout_init "$out/busybox"
layers_json='[]' diffids_json='[]'
add_layer "$out/busybox" "$work/base"
finish_image "$out/busybox" latest '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"],"WorkingDir":"/"}' >/dev/null

layout_init "$out/httpd"
layers_json='[]' diffids_json='[]'
add_layer "$out/httpd" "$work/base"
mkdir -p "$work/www/www"
printf '<html><body>hello from berth httpd</body></html>\n' > "$work/www/www/index.html"
add_layer "$out/httpd" "$work/www"
finish_image "$out/httpd" latest '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Entrypoint":["/bin/httpd","-f","-v","-p","8080","-h","/www"],"ExposedPorts":{"8080/tcp":{}},"StopSignal":"SIGTERM","User":"user","WorkingDir":"/www","Labels":{"org.opencontainers.image.title":"berth httpd"}}' >/dev/null
echo "$out/busybox $out/httpd"
