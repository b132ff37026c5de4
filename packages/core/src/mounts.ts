/** Where the kernel file systems bpfkit uses are mounted (from /proc/mounts), and whether a pin path is on bpffs. */
import { existsSync, readFileSync, statfsSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
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

const BPF_FS_MAGIC = 0xcafe4a11

/**
 * Why `path` cannot be a pin, or '' when it may be: pins live on a BPF file
 * system, and the kernel answers a path elsewhere (or a directory) with a bare
 * EPERM or EACCES, which reads like a privilege problem.
 */
export function pinPathProblem(path: string): string {
  try {
    const exists = existsSync(path)
    if (Number(statfsSync(exists ? path : dirname(path)).type) !== BPF_FS_MAGIC) {
      return `${path} is not on a BPF file system (bpffs); pins live under ${bpffsMount() ?? '/sys/fs/bpf'} (mount one with: mount -t bpf bpf /sys/fs/bpf)`
    }
    if (exists && statSync(path).isDirectory()) return `${path} is a directory, not a pinned object`
  } catch {
    // the parent directory is missing too: the kernel's ENOENT says it
  }
  return ''
}
