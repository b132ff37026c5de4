/**
 * Shared benchmark plumbing: building the reference peers from ../shared/peers
 * (same run, same machine, so ratios are meaningful) and small statistics.
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findSharedDir } from '../scripts/shared-dir.js'

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const sharedPeers = join(findSharedDir(repoRoot), 'peers')


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

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[s.length >> 1]!
}

export const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d
