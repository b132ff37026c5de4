/**
 * Shared benchmark plumbing: building the reference peers from ../shared/peers
 * (same run, same machine, so ratios are meaningful) and small statistics.
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findSharedDir } from '../scripts/shared-dir.js'

/** The checkout's root: the closest directory up from this file with pnpm-workspace.yaml (bench/run.mjs moves the file into bench/build/). */
export const repoRoot = findUp(dirname(fileURLToPath(import.meta.url)))
export const sharedPeers = join(findSharedDir(repoRoot), 'peers')

function findUp(dir: string): string {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'pnpm-workspace.yaml'))) return d
    if (dirname(d) === d) throw new Error(`no pnpm-workspace.yaml above ${dir}`)
  }
}

/** Builds the shared reference peers (if needed) and returns their directory. */
export function buildPeers(): string {
  const out = process.env.PEERS_OUT ?? join(tmpdir(), 'bpfkit-peers')
  if (!existsSync(join(out, 'drain-c')) || !existsSync(join(out, 'producer.bpf.o'))) {
    execFileSync('bash', [join(sharedPeers, 'build.sh')], { env: { ...process.env, PEERS_OUT: out }, stdio: ['ignore', 'ignore', 'inherit'] })
  }
  return out
}

/** Parses `key=value` pairs from a peer's output line. */
export function parseKv(line: string): Record<string, string> {
  return Object.fromEntries(line.trim().split(/\s+/).map((kv) => kv.split('=') as [string, string]))
}

/** The value at fraction `p` (0..1) of the sorted values: the nearest-rank quantile, no interpolation. */
export function quantile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!
}

export function median(xs: number[]): number {
  return quantile(xs, 0.5)
}

export const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d
