/**
 * Finds where the cgroup v2 hierarchy is mounted. Reads /proc/self/mountinfo
 * (not /proc/mounts) because it also says which part of the hierarchy a mount
 * shows: a mount whose root is '/' shows every cgroup, so its inode numbers
 * and paths cover the whole node.
 */
import { readFileSync } from 'node:fs'

export interface Cgroup2MountInfo {
  /** mount point, e.g. /sys/fs/cgroup */
  mountPoint: string
  /** the cgroup this mount shows as its root ('/' = the whole hierarchy) */
  root: string
}

/** Every cgroup2 mount listed in a mountinfo text, in file order. */
export function parseCgroup2Mounts(mountinfo: string): Cgroup2MountInfo[] {
  const found: Cgroup2MountInfo[] = []
  for (const line of mountinfo.split('\n')) {
    // "36 35 0:30 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw": optional fields end at " - ".
    const separator = line.indexOf(' - ')
    if (separator < 0) continue
    const fsType = line.slice(separator + 3).split(' ')[0]
    if (fsType !== 'cgroup2') continue
    const fields = line.slice(0, separator).split(' ')
    const root = fields[3]
    const mountPoint = fields[4]
    if (root === undefined || mountPoint === undefined) continue
    found.push({ root: unescapeMountField(root), mountPoint: unescapeMountField(mountPoint) })
  }
  return found
}

/**
 * The cgroup2 mount that shows the most of the hierarchy, or undefined. Inside
 * a container with its own cgroup namespace, the runtime's mount shows only
 * the container ('/'), while the node's /sys/fs/cgroup mounted from the host
 * shows a root above it ('/../../..'): that one sees every pod.
 */
export function pickCgroup2Mount(mounts: readonly Cgroup2MountInfo[]): string | undefined {
  let best: Cgroup2MountInfo | undefined
  let bestScore = -1
  for (const mount of mounts) {
    // Ties go to the later mount: it shadows an earlier one on the same mount point.
    const score = scopeOf(mount.root)
    if (score >= bestScore) {
      best = mount
      bestScore = score
    }
  }
  return best?.mountPoint
}

/** This process's best cgroup2 mount point (see pickCgroup2Mount), or undefined. */
export function findCgroup2Mount(mountinfoPath = '/proc/self/mountinfo'): string | undefined {
  try {
    return pickCgroup2Mount(parseCgroup2Mounts(readFileSync(mountinfoPath, 'utf8')))
  } catch {
    return undefined
  }
}

/** 1 + number of leading '..' for roots at or above ours, 0 for a mount of a sub-tree. */
function scopeOf(root: string): number {
  if (root === '/') return 1
  const parts = root.split('/').filter(Boolean)
  let up = 0
  while (parts[up] === '..') up++
  return up === parts.length ? up + 1 : 0
}

/** mountinfo escapes space, tab, newline and backslash as octal (\040 ...). */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))
}
