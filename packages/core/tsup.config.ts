import { defineConfig } from 'tsup'

export default defineConfig([
  {
    entry: { index: 'src/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    shims: true, // import.meta.url in the CJS build (native loader, bundled objects)
    target: 'node20',
    external: ['@bpfkit/native', '@bpfkit/llm'],
  },
  {
    entry: { cli: 'src/cli/main.ts' },
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
    banner: { js: '#!/usr/bin/env node' },
    external: ['@bpfkit/native', '@bpfkit/llm'],
  },
])
