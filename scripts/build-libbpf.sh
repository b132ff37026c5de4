#!/usr/bin/env bash
# Builds a position-independent static libbpf from Debian's source package into
# native/deps/libbpf (never committed). Debian's own libbpf.a is not PIC, so it
# cannot be linked into a shared object such as a Node addon.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/native/deps/libbpf"
[ -f "$out/lib/libbpf.a" ] && [ -f "$out/include/bpf/libbpf.h" ] && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "[setup] fetching Debian's libbpf source package" >&2
(cd "$work" && apt-get source -qq libbpf >/dev/null 2>&1) || {
  echo "build-libbpf: 'apt-get source libbpf' failed; is a deb-src entry configured? (scripts/setup.sh adds one)" >&2
  exit 1
}
src=$(find "$work" -maxdepth 1 -type d -name 'libbpf-*' | head -n1)
echo "[setup] building libbpf $(basename "$src") with -fPIC" >&2
mkdir -p "$work/obj"
make -s -C "$src/src" -j"$(nproc)" BUILD_STATIC_ONLY=y OBJDIR="$work/obj" DESTDIR="$work/dest" \
  PREFIX=/ LIBDIR=/lib INCLUDEDIR=/include CFLAGS="-g -O2 -fPIC -Wall" install >/dev/null
mkdir -p "$out"
rm -rf "$out/lib" "$out/include"
cp -r "$work/dest/lib" "$work/dest/include" "$out/"
echo "[setup] libbpf ready in native/deps/libbpf" >&2
