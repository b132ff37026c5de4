/** Where the kernel file systems bpfkit uses are mounted, from /proc/mounts. */
import { readFileSync } from 'node:fs'
import { findCgroup2Mount } from './cgroup-mounts.js'

export interface MountInfo {
  source: string
  target: string
  type: string
}

export function mounts(): MountInfo[] {
  try {
    return readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [source = '', target = '', type = ''] = line.split(' ')
        return { source, target: target.replace(/\\040/g, ' '), type }
      })
  } catch {
    return []
  }
}

/** First mount point of a file system type, or null. */
export function mountOf(type: string): string | null {
  return mounts().find((m) => m.type === type)?.target ?? null
}

/** The cgroup2 mount that shows the most of the hierarchy (see cgroup-mounts.ts), or null. */
export const cgroup2Mount = (): string | null => findCgroup2Mount() ?? mountOf('cgroup2')
export const bpffsMount = (): string | null => mountOf('bpf')
export const tracefsMount = (): string | null => mountOf('tracefs')
