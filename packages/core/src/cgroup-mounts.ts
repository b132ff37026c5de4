/**
 * Where the cgroup v2 hierarchy is mounted, and which directory a
 * /proc/PID/cgroup path names.
 *
 * Reads /proc/self/mountinfo (not /proc/mounts) because it also says which
 * part of the hierarchy a mount shows. Both a mount's root and a process's
 * cgroup path are written relative to the reader's cgroup namespace root:
 * inside a container with its own cgroup namespace, the runtime's mount has
 * root '/' (the container's cgroup), a host /sys/fs/cgroup mounted into the
 * container has root '/../../..', and a process of another pod shows as
 * '0::/../../../kubepods/…'. Joining a mount point and a path is only right
 * when both start from the same place, which CgroupPaths checks.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'

export interface Cgroup2MountInfo {
  /** mount point, e.g. /sys/fs/cgroup */
  mountPoint: string
  /** the cgroup this mount shows as its root, relative to our cgroup namespace ('/' = its root) */
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
 * The cgroup2 mounts, the one that shows the most of the hierarchy first (a
 * root above ours, then our root, then sub-trees). Ties go to the later mount:
 * it shadows an earlier one on the same mount point.
 */
export function rankCgroup2Mounts(mounts: readonly Cgroup2MountInfo[]): Cgroup2MountInfo[] {
  return mounts
    .map((mount, index) => ({ mount, index, scope: scopeOf(mount.root) }))
    .sort((a, b) => b.scope - a.scope || b.index - a.index)
    .map((m) => m.mount)
}

/** The mount point that shows the most of the hierarchy, or undefined. */
export function pickCgroup2Mount(mounts: readonly Cgroup2MountInfo[]): string | undefined {
  return rankCgroup2Mounts(mounts)[0]?.mountPoint
}

/** This process's cgroup2 mounts, ranked (see rankCgroup2Mounts); [] when there are none. */
export function cgroup2Mounts(mountinfoPath = '/proc/self/mountinfo'): Cgroup2MountInfo[] {
  try {
    return rankCgroup2Mounts(parseCgroup2Mounts(readFileSync(mountinfoPath, 'utf8')))
  } catch {
    return []
  }
}

/** This process's best cgroup2 mount point (see pickCgroup2Mount), or undefined. */
export function findCgroup2Mount(mountinfoPath = '/proc/self/mountinfo'): string | undefined {
  return cgroup2Mounts(mountinfoPath)[0]?.mountPoint
}

/**
 * Maps /proc/PID/cgroup paths ("0::" lines) to cgroup directories and ids.
 *
 * The kernel writes such a path from our namespace root up to the closest
 * common ancestor, then down: a process of another pod reads
 * '/../../burstable/pod1/c1'. The names of the directories above our root are
 * not in it, and a host mount with root '/../../../..' does not give them
 * either. So when we are in a cgroup namespace under a mount that shows more
 * than it, the host path of our root is found once, by looking for the
 * directory with the inode of our own namespace's mount (a walk of the host
 * mount down to our root's depth). Without both mounts, only paths that climb
 * exactly to a mount's root resolve; the rest are unknown (id 0), never wrong.
 */
export class CgroupPaths {
  readonly mounts: readonly Cgroup2MountInfo[]
  #namespaceRoot: string[] | null | undefined

  /** `mounts`: default, this process's (cgroup2Mounts()) */
  constructor(mounts: readonly Cgroup2MountInfo[] = cgroup2Mounts()) {
    this.mounts = rankCgroup2Mounts(mounts)
  }

  /** The directory of the cgroup a /proc/PID/cgroup path names, under the first mount that shows it. */
  directoryOf(path: string): string | undefined {
    const target = splitCgroupPath(path)
    if (!target) return undefined
    for (const mount of this.mounts) {
      const root = splitCgroupPath(mount.root)
      if (!root) continue
      const rest = this.#below(root, target)
      if (rest) return rest.length ? `${mount.mountPoint.replace(/\/$/, '')}/${rest.join('/')}` : mount.mountPoint
    }
    return undefined
  }

  /** cgroup v2 id (the directory's inode number) of a /proc/PID/cgroup path, or 0n when unknown. */
  idOf(path: string): bigint {
    const dir = this.directoryOf(path)
    if (dir === undefined) return 0n
    try {
      return statSync(dir, { bigint: true }).ino
    } catch {
      return 0n
    }
  }

  /** Names from the hierarchy root down to our namespace root; null if not needed or not found. */
  get namespaceRoot(): readonly string[] | null {
    if (this.#namespaceRoot === undefined) this.#namespaceRoot = locateNamespaceRoot(this.mounts)
    return this.#namespaceRoot
  }

  /** The components of `target` below `root`, or undefined when `target` is not under it. */
  #below(root: SplitPath, target: SplitPath): string[] | undefined {
    if (root.up !== target.up) {
      // Different climbs can only be compared by their host paths.
      const ns = this.namespaceRoot
      if (!ns || root.up > ns.length || target.up > ns.length) return undefined
      root = { up: -1, down: [...ns.slice(0, ns.length - root.up), ...root.down] }
      target = { up: -1, down: [...ns.slice(0, ns.length - target.up), ...target.down] }
    }
    if (root.down.length > target.down.length || root.down.some((name, i) => target.down[i] !== name)) return undefined
    return target.down.slice(root.down.length)
  }
}

/** Most directories looked at while locating our namespace root. */
const MAX_LOCATE_ENTRIES = 100_000

/**
 * Our namespace root's names under the mount that shows the whole hierarchy
 * (root '/../..' → depth 2): the directory at that depth with the inode of a
 * mount of our own namespace (root '/'). Null when there is no such pair.
 */
function locateNamespaceRoot(mounts: readonly Cgroup2MountInfo[]): string[] | null {
  const whole = mounts.find((m) => {
    const r = splitCgroupPath(m.root)
    return r && r.up > 0 && r.down.length === 0
  })
  const own = mounts.find((m) => m.root === '/')
  if (!whole || !own) return null
  const depth = splitCgroupPath(whole.root)!.up
  let want: bigint
  try {
    want = statSync(own.mountPoint, { bigint: true }).ino
  } catch {
    return null
  }
  let level: string[][] = [[]]
  let looked = 0
  for (let d = 0; d < depth; d++) {
    const next: string[][] = []
    for (const names of level) {
      let children: string[]
      try {
        children = readdirSync(join(whole.mountPoint, ...names), { withFileTypes: true })
          .filter((e) => e.isDirectory())
          .map((e) => e.name)
      } catch {
        continue
      }
      for (const child of children) {
        if (++looked > MAX_LOCATE_ENTRIES) return null
        next.push([...names, child])
      }
    }
    level = next
  }
  for (const names of level) {
    try {
      if (statSync(join(whole.mountPoint, ...names), { bigint: true }).ino === want) return names
    } catch {
      // removed while we looked
    }
  }
  return null
}

interface SplitPath {
  /** leading '..' count; -1 once made absolute (from the hierarchy root) */
  up: number
  down: string[]
}

/** '/../../a/b' → { up: 2, down: ['a', 'b'] }; undefined for anything else ('..' after a name, relative paths). */
function splitCgroupPath(path: string): SplitPath | undefined {
  if (!path.startsWith('/')) return undefined
  const parts = path.split('/').filter((p) => p !== '' && p !== '.')
  let up = 0
  while (parts[up] === '..') up++
  const down = parts.slice(up)
  if (down.includes('..')) return undefined
  return { up, down }
}

/** 1 + number of leading '..' for roots at or above ours, 0 for a mount of a sub-tree. */
function scopeOf(root: string): number {
  const split = splitCgroupPath(root)
  if (!split || split.down.length > 0) return 0
  return split.up + 1
}

/** mountinfo escapes space, tab, newline and backslash as octal (\040 ...). */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))
}
