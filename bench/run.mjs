#!/usr/bin/env node
/**
 * Runs a benchmark compiled to plain JavaScript, the way an agent runs in
 * production:
 *
 *   node run.mjs ringbuf/drain.ts [args...]
 *
 * Why not tsx for these: tsx's ESM loader runs on its own thread and talks to
 * it with transferred ArrayBuffers. The first transfer clears V8's "no
 * ArrayBuffer was ever detached" protector for the whole process, and from then
 * on every DataView and typed-array read in optimised code carries an extra
 * detached-buffer check (about 10 % more time per decoded ring record). Plain
 * node with the SDK never clears it (check with --trace-protector-invalidation).
 *
 * The script is bundled with tsup (esbuild) into bench/build/, packages left
 * external. Bundling moves `import.meta.url`, so it suits scripts whose own
 * imports are @bpfkit packages and bench/ helpers (used for ringbuf/drain.ts;
 * exec/run.ts, tls/percall.ts and plain/overhead.ts also run this way); k8s
 * and llm import other packages' sources and data files by path: run them with tsx.
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'tsup'

const here = dirname(fileURLToPath(import.meta.url))
const [script, ...rest] = process.argv.slice(2)
if (!script || !script.endsWith('.ts') || !existsSync(resolve(here, script))) {
  console.error('usage: node run.mjs <benchmark.ts under bench/> [args...]')
  process.exit(2)
}
const name = script.replace(/\.ts$/, '').replace(/[/\\]/g, '__')
const outDir = join(here, 'build')
await build({
  entry: { [name]: resolve(here, script) },
  outDir,
  format: ['esm'],
  outExtension: () => ({ js: '.mjs' }),
  platform: 'node',
  target: 'node20',
  config: false,
  dts: false,
  sourcemap: false,
  splitting: false,
  clean: false,
  silent: true,
})
const run = spawnSync(process.execPath, [...process.execArgv, join(outDir, `${name}.mjs`), ...rest], { stdio: 'inherit' })
process.exit(run.status ?? 1)
