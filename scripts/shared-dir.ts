/**
 * Where ../shared (reference peers, research notes) is for a checkout: BPFKIT_SHARED_DIR when
 * set, else beside the checkout, else beside the local repository it was cloned from (a CI
 * clone made in a temporary directory). Used by the tests and the benchmarks.
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'

export function findSharedDir(root: string): string {
  if (process.env.BPFKIT_SHARED_DIR) return resolve(process.env.BPFKIT_SHARED_DIR)
  const beside = resolve(root, '..', 'shared')
  if (existsSync(beside)) return beside
  try {
    const origin = execFileSync('git', ['-C', root, 'config', '--get', 'remote.origin.url'], { encoding: 'utf8' }).trim()
    const fromOrigin = resolve(origin, '..', 'shared')
    if (origin && !origin.includes('://') && existsSync(fromOrigin)) return fromOrigin
  } catch {
    // not a git checkout
  }
  return beside
}
