#!/usr/bin/env bash
# Builds the N-API addon into prebuilds/linux-x64/ with prebuildify (offline: node-gyp compiles against the
# locally installed Node headers, it never downloads them), then checks what the .node needs at run time.
#
#   bash build.sh            (pnpm --filter @bpfkit/native run build)
#
# Environment: npm_config_nodedir  directory holding include/node/node_api.h (auto-detected otherwise)
#              BPFKIT_ALLOW_HEADER_DOWNLOAD=1  let node-gyp download headers when none are installed
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

die() { echo "native/build.sh: $*" >&2; exit 1; }

# 1. libbpf (static, PIC) must be there.
if [ ! -f deps/libbpf/lib/libbpf.a ] || [ ! -f deps/libbpf/include/bpf/libbpf.h ]; then
  die "native/deps/libbpf is missing (need deps/libbpf/lib/libbpf.a and deps/libbpf/include/bpf/*.h); run scripts/build-libbpf.sh first"
fi

# 2. Build tools from devDependencies.
[ -x node_modules/.bin/prebuildify ] || die "node_modules/.bin/prebuildify not found; run 'pnpm install' at the repository root"
[ -d node_modules/node-addon-api ] || die "node-addon-api not installed; run 'pnpm install' at the repository root"

# 3. Node headers: node-gyp takes --nodedir from npm_config_nodedir (prebuildify passes the environment
#    through). With a nodedir, node-gyp skips its header download entirely.
nodedir="${npm_config_nodedir:-}"
if [ -z "$nodedir" ] || [ ! -f "$nodedir/include/node/node_api.h" ]; then
  nodedir=""
  node_prefix=$(node -p 'require("path").resolve(process.execPath, "..", "..")')
  for cand in "$node_prefix" /usr /usr/local; do
    if [ -f "$cand/include/node/node_api.h" ]; then nodedir=$cand; break; fi
  done
fi
if [ -n "$nodedir" ]; then
  export npm_config_nodedir="$nodedir"
  echo "[native] using Node headers in $nodedir/include/node" >&2
elif [ "${BPFKIT_ALLOW_HEADER_DOWNLOAD:-0}" != 1 ]; then
  die "no Node headers found (looked for include/node/node_api.h under the node prefix, /usr, /usr/local). Install them (Debian: apt-get install libnode-dev / nodejs headers) or set npm_config_nodedir, or BPFKIT_ALLOW_HEADER_DOWNLOAD=1 to let node-gyp download them"
fi
# Never let a stray config send node-gyp to the network for headers.
unset npm_config_disturl npm_config_dist_url || true

# 4. Build. --napi: one binary for every Node with N-API 8; -t pins node-gyp's target to this Node.
#    The previous prebuild stays in place until prebuildify replaces it (other checkouts may be using it).
stamp=$(mktemp)
trap 'rm -f "$stamp"' EXIT
node_version=$(node -p 'process.versions.node')
node_modules/.bin/prebuildify --napi --strip -t "$node_version" || die "the native build failed (see the compiler output above)"

out=$(find prebuilds/linux-x64 -maxdepth 1 -name '*.node' -newer "$stamp" 2>/dev/null | head -n1)
[ -n "$out" ] || die "prebuildify finished but produced no new prebuilds/linux-x64/*.node"

# 5. Run-time dependencies: glibc, libelf and zlib only (libstdc++/libgcc are linked statically).
bad=$(ldd "$out" | awk '{print $1}' | grep -Ev '^(linux-vdso\.so\.1|libc\.so\.6|libm\.so\.6|libelf\.so\.1|libz\.so\.1|/lib64/ld-linux-x86-64\.so\.2|ld-linux-x86-64\.so\.2|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1)$' || true)
if [ -n "$bad" ]; then
  ldd "$out" >&2
  die "$out needs unexpected shared libraries: $bad"
fi

# 6. It must load through index.js (node-gyp-build).
node -e "const b = require('./'); if (typeof b.NativeObject !== 'function') process.exit(1); console.error('[native] built ' + require('path').relative(process.cwd(), require('node-gyp-build').path('.')) + ' (libbpf ' + b.libbpfVersion() + ')')"
