/**
 * Turns the kernel's cgroup key into a cgroup path: a cgroup id (what
 * bpf_get_current_cgroup_id() returns) or a pid (via /proc/PID/cgroup).
 *
 * On cgroup v2 the id of a cgroup is the inode number of its directory in the
 * cgroup2 file system, so the only way from id to path without extra kernel
 * help is to walk the mount and stat every directory. The resolver keeps the
 * result as a cache and walks again on a miss, but at most once per
 * `minWalkIntervalMs`: a flood of unknown ids (a hostile workload creating
 * cgroups, or events for ids that no longer exist) costs one walk per
 * interval, and every miss is counted. Cgroups that disappear stay resolvable
 * for `tombstoneMs`, because the last events of a short-lived container often
 * arrive after its cgroup was removed.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { findCgroup2Mount } from '@bpfkit/core'
import { checkNumber } from '../options.js'
import { parseCgroupPath } from './path.js'
import type { CgroupContainerRef } from './types.js'

export interface CgroupResolverOptions {
  /** where cgroup2 is mounted; default: found in /proc/self/mountinfo */
  cgroup2Mount?: string
  /** most cgroups indexed by one walk and kept in the cache (default 65536) */
  maxEntries?: number
  /** procfs to read /PID/cgroup from (default /proc; e.g. /host/proc) */
  procRoot?: string
  /** least time between two full walks triggered by misses (default 1000 ms) */
  minWalkIntervalMs?: number
  /** how long a removed cgroup stays resolvable (default 30000 ms) */
  tombstoneMs?: number
  /** deepest directory level walked below the mount (default 32) */
  maxDepth?: number
}

export interface CgroupResolverStats {
  /** cgroup2 mount in use, undefined if none was found */
  mount: string | undefined
  /** ids in the cache, tombstones included */
  cacheSize: number
  /** ids in the cache whose cgroup was gone at the last walk */
  tombstones: number
  /** full walks of the mount */
  walks: number
  /** pathForId calls answered from the cache (after a walk if one ran) */
  hits: number
  /** pathForId calls that found no cgroup */
  misses: number
  /** misses that did not walk because the last walk was too recent */
  rateLimitedMisses: number
  /** walks stopped at maxEntries (the cache is then incomplete) */
  truncatedWalks: number
  /** walks that failed at the mount root (mount missing or unreadable) */
  walkErrors: number
  /** duration of the last walk in milliseconds */
  lastWalkMs: number
}

interface Entry {
  path: string
  /** set once a walk no longer finds it */
  goneAt?: number
  /** parsed lazily, undefined = not parsed yet, null = not a container path */
  ref?: CgroupContainerRef | null
}

export class CgroupResolver {
  /** cgroup2 mount point in use, or undefined when this process sees none */
  readonly mount: string | undefined
  private readonly maxEntries: number
  private readonly procRoot: string
  private readonly minWalkIntervalMs: number
  private readonly tombstoneMs: number
  private readonly maxDepth: number
  private entries = new Map<bigint, Entry>()
  private lastWalkAt = Number.NEGATIVE_INFINITY
  private closed = false
  private readonly counters = {
    walks: 0,
    hits: 0,
    misses: 0,
    rateLimitedMisses: 0,
    truncatedWalks: 0,
    walkErrors: 0,
    lastWalkMs: 0,
  }

  constructor(options: CgroupResolverOptions = {}) {
    this.mount = options.cgroup2Mount ?? findCgroup2Mount()
    this.maxEntries = positiveInt(options.maxEntries, 65_536)
    this.procRoot = options.procRoot ?? '/proc'
    this.minWalkIntervalMs = checkNumber('minWalkIntervalMs', options.minWalkIntervalMs, 0) ?? 1000
    this.tombstoneMs = checkNumber('tombstoneMs', options.tombstoneMs, 0) ?? 30_000
    this.maxDepth = positiveInt(options.maxDepth, 32)
  }

  /** Path of the cgroup with this id, relative to the cgroup2 mount ('/' is the root). */
  pathForId(id: bigint): string | undefined {
    if (this.closed || typeof id !== 'bigint') return undefined
    const cached = this.entries.get(id)
    if (cached) {
      this.counters.hits++
      return cached.path
    }
    if (Date.now() - this.lastWalkAt < this.minWalkIntervalMs) {
      this.counters.misses++
      this.counters.rateLimitedMisses++
      return undefined
    }
    this.refresh()
    const walked = this.entries.get(id)
    if (walked) this.counters.hits++
    else this.counters.misses++
    return walked?.path
  }

  /** What the cgroup with this id says about its container and pod. */
  refForId(id: bigint): CgroupContainerRef | undefined {
    return this.resolveId(id) ?? undefined
  }

  /** One lookup per event: undefined = unknown id, null = a cgroup that is not a container's, else what its path says. */
  resolveId(id: bigint): CgroupContainerRef | null | undefined {
    if (this.pathForId(id) === undefined) return undefined
    const entry = this.entries.get(id)!
    if (entry.ref === undefined) entry.ref = parseCgroupPath(entry.path) ?? null
    return entry.ref
  }

  /**
   * The cgroup v2 path of a process, as the kernel prints it in
   * /proc/PID/cgroup. Inside a cgroup namespace, paths outside it start
   * with `/..`; parseCgroupPath skips that prefix.
   */
  pathForPid(pid: number): string | undefined {
    if (this.closed || !Number.isSafeInteger(pid) || pid <= 0) return undefined
    let text: string
    try {
      text = readFileSync(join(this.procRoot, String(pid), 'cgroup'), 'utf8')
    } catch {
      return undefined // the process exited or procfs is not readable
    }
    return parseProcCgroup(text)
  }

  refForPid(pid: number): CgroupContainerRef | undefined {
    return this.resolvePid(pid) ?? undefined
  }

  /** Like resolveId, for a pid: one read of /proc/PID/cgroup. */
  resolvePid(pid: number): CgroupContainerRef | null | undefined {
    const path = this.pathForPid(pid)
    return path === undefined ? undefined : (parseCgroupPath(path) ?? null)
  }

  /** Walks the mount now (not rate limited), e.g. after a container start event. */
  refresh(): void {
    if (this.closed) return
    const started = Date.now()
    this.lastWalkAt = started
    this.counters.walks++
    const walked = this.walk()
    this.counters.lastWalkMs = Date.now() - started
    if (!walked) return
    // Keep recently removed cgroups as tombstones while there is room.
    for (const [id, old] of this.entries) {
      if (walked.has(id) || walked.size >= this.maxEntries) continue
      const goneAt = old.goneAt ?? started
      if (started - goneAt < this.tombstoneMs) walked.set(id, { ...old, goneAt })
    }
    this.entries = walked
  }

  stats(): CgroupResolverStats {
    let tombstones = 0
    for (const entry of this.entries.values()) if (entry.goneAt !== undefined) tombstones++
    return { mount: this.mount, cacheSize: this.entries.size, tombstones, ...this.counters }
  }

  close(): void {
    this.closed = true
    this.entries.clear()
  }

  /** Depth-first walk; undefined when the mount itself cannot be read. */
  private walk(): Map<bigint, Entry> | undefined {
    if (this.mount === undefined) {
      this.counters.walkErrors++
      return undefined
    }
    const found = new Map<bigint, Entry>()
    const rootId = inodeOf(this.mount)
    if (rootId === undefined) {
      this.counters.walkErrors++
      return undefined
    }
    found.set(rootId, this.keep(rootId, '/'))
    const stack: Array<{ rel: string; depth: number }> = [{ rel: '', depth: 0 }]
    while (stack.length > 0) {
      const { rel, depth } = stack.pop()!
      let children
      try {
        children = readdirSync(join(this.mount, rel), { withFileTypes: true })
      } catch {
        continue // removed while we walked
      }
      for (const child of children) {
        if (!child.isDirectory()) continue
        const childRel = `${rel}/${child.name}`
        const id = inodeOf(join(this.mount, childRel))
        if (id === undefined) continue
        if (found.size >= this.maxEntries) {
          this.counters.truncatedWalks++
          return found
        }
        found.set(id, this.keep(id, childRel))
        if (depth + 1 < this.maxDepth) stack.push({ rel: childRel, depth: depth + 1 })
      }
    }
    return found
  }

  /** A fresh entry, reusing the parsed ref when the id still names the same path. */
  private keep(id: bigint, path: string): Entry {
    const old = this.entries.get(id)
    return { path, ref: old?.path === path ? old.ref : undefined }
  }
}

/** The cgroup v2 path in a /proc/PID/cgroup text (its `0::` line), or undefined. */
export function parseProcCgroup(text: string): string | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('0::')) {
      const path = line.slice(3)
      return path.startsWith('/') ? path : undefined
    }
  }
  return undefined
}

function inodeOf(path: string): bigint | undefined {
  try {
    return statSync(path, { bigint: true, throwIfNoEntry: false })?.ino
  } catch {
    return undefined
  }
}

function positiveInt(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value >= 1 ? Math.floor(value) : fallback
}
