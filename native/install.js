'use strict'
// npm/pnpm install hook. A published package carries a prebuild for linux-x64
// (N-API: one build serves Node 20, 22 and 24). In a source checkout the addon
// is built by scripts/setup.sh after libbpf, so a missing build is not an error here.
try {
  require('node-gyp-build').path(__dirname)
} catch {
  console.warn('@bpfkit/native: no prebuilt addon yet; scripts/setup.sh builds it')
}
