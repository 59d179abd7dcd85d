# Shared by the scripts in this folder: finding cargo, installing packages, printing steps.
# shellcheck shell=bash

# The Debian packages the test suite, the benchmarks and the quickstart need.
BERTH_PACKAGES=(
  sudo ca-certificates curl jq git gcc pkg-config libseccomp-dev
  iproute2 util-linux procps kmod nftables busybox-static
  podman conmon catatonit containerd runc crun
  skopeo umoci docker-registry apache2-utils
  python3-venv hyperfine time
  systemd vagrant vagrant-libvirt debootstrap
  graphviz
)

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Make `cargo` available: the one on PATH, rustup's under a home directory (sudo drops it from
# PATH), or Debian's cargo-web/rustc-web (1.96) on a host with none.
need_cargo() {
  local min_minor=85 dir
  for dir in "" "$HOME/.cargo/bin" /root/.cargo/bin ${SUDO_USER:+"$(getent passwd "$SUDO_USER" | cut -d: -f6)/.cargo/bin"}; do
    if [ -n "$dir" ] && [ -x "$dir/cargo" ]; then export PATH="$dir:$PATH"; fi
    if command -v cargo >/dev/null 2>&1; then
      local minor
      minor=$(cargo --version 2>/dev/null | sed -n 's/^cargo 1\.\([0-9]*\).*/\1/p')
      if [ -n "$minor" ] && [ "$minor" -ge "$min_minor" ]; then return 0; fi
    fi
  done
  if dpkg -s cargo-web >/dev/null 2>&1 || apt_install cargo-web rustc-web; then
    for dir in /usr/lib/rust-web/bin /usr/share/cargo-web/bin; do
      [ -x "$dir/cargo" ] && export PATH="$dir:$PATH"
    done
    command -v cargo >/dev/null 2>&1 && return 0
    local c; c=$(dpkg -L cargo-web | grep -m1 '/bin/cargo$') && export PATH="$(dirname "$c"):$PATH" && return 0
  fi
  die "no cargo 1.$min_minor or newer, and Debian's cargo-web could not be installed"
}

# Install the named Debian packages that are not installed yet (idempotent).
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Build the static probe that tests run inside containers (no musl target here: a static-pie
# gnu binary, `--target` so that the flag does not reach build scripts).
build_probe() {
  RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -p berth-probe \
    --target x86_64-unknown-linux-gnu --target-dir target/probe "$@"
}

# qemu for the cgroup-v2 guest tests (issue 8, tests/vm). On bookworm it must come from
# bookworm-backports (bookworm's qemu-system conflicts with the backports qemu-utils such hosts
# carry); the backports source is added when the host has none. Later releases take their own.
install_qemu() {
  apt_install kmod xz-utils
  command -v qemu-system-x86_64 >/dev/null 2>&1 && return 0
  local codename
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  if [ "$codename" != bookworm ]; then
    apt_install qemu-system-x86
    return
  fi
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    say "adding the bookworm-backports apt source (for qemu-system-x86)"
    printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm-backports' \
      'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' \
      >/etc/apt/sources.list.d/berth-backports.sources
  fi
  say "installing qemu-system-x86 from bookworm-backports"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -t bookworm-backports qemu-system-x86 >/dev/null
}
