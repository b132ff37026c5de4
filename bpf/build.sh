#!/usr/bin/env bash
# Compiles the CO-RE eBPF programs with clang against a vmlinux.h generated
# from this machine's kernel BTF. Shipped objects (src/) go into
# packages/core/bpf/ so users of @bpfkit/core never need a compiler; test
# objects (test/) go into bpf/build/test/.
set -euo pipefail
shopt -s nullglob
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
gen="$here/build"
ship="$root/packages/core/bpf"
mkdir -p "$gen/test" "$ship"
if [ ! -s "$gen/vmlinux.h" ]; then
  [ -r /sys/kernel/btf/vmlinux ] || { echo "bpf/build.sh: /sys/kernel/btf/vmlinux is missing (kernel built without CONFIG_DEBUG_INFO_BTF)" >&2; exit 1; }
  bpftool btf dump file /sys/kernel/btf/vmlinux format c > "$gen/vmlinux.h.tmp"
  mv "$gen/vmlinux.h.tmp" "$gen/vmlinux.h"
fi
arch=$(uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
# an object is fresh when newer than its source and every shared header
fresh() { # out src
  [ "$1" -nt "$2" ] || return 1
  for h in "$here"/include/*.h; do [ "$1" -nt "$h" ] || return 1; done
}

compile() { # src out
  clang -O2 -g -Wall -Wno-unused-function -target bpf -D__TARGET_ARCH_"$arch" \
    -I"$gen" -I"$here/include" -c "$1" -o "$2.tmp"
  llvm-strip -g "$2.tmp" # keep .BTF/.BTF.ext, drop DWARF
  mv "$2.tmp" "$2"
}
for f in "$here"/src/*.bpf.c; do
  out="$ship/$(basename "${f%.c}").o"
  fresh "$out" "$f" || compile "$f" "$out"
done
for f in "$here"/test/*.bpf.c; do
  out="$gen/test/$(basename "${f%.c}").o"
  fresh "$out" "$f" || compile "$f" "$out"
done
