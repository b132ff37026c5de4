/**
 * User-space process table. Seeded from /proc at start so existing processes
 * are known, kept current by exec/fork/exit events, and used to give every
 * event its ancestry. Exited processes stay for a grace period so that late
 * events (and children reporting their parent) still resolve; eviction is
 * amortised over incoming events, so no timer is needed.
 */
import { basename } from 'node:path'
import type { CgroupPaths } from '../../cgroup-mounts.js'
import { listPids, readProc, type ProcSnapshot } from './procfs.js'
import { bootToIso } from './clock.js'
import { execId, type AncestorInfo } from './events.js'
import { redactCommandArgs } from '../../redact.js'
import { InvalidArgumentError } from '../../errors.js'

export interface ProcessEntry {
  pid: number
  ppid: number
  execId: string
  path: string
  args: string[]
  argsTruncated: boolean
  comm: string
  uid: number
  gid: number
  startBoottimeNs: bigint
  cgroupId: bigint
  /** Date.now() when the process exited, or 0 while alive */
  exitedAt: number
}

export interface ProcessTableOptions {
  host: string
  /** how long exited processes stay resolvable, ms (default 30 s) */
  graceMs?: number
  /** ancestry depth limit (default 16) */
  maxAncestors?: number
  /** entries kept at most; the oldest exited go first, then the oldest (default 65536) */
  maxEntries?: number
  /** replace credentials in command lines (see redact.ts; default true) */
  redactArgs?: boolean
  /** computes the cgroup ids of processes seeded from /proc (default: none, ids 0; the process sensor passes one) */
  cgroupPaths?: CgroupPaths
}

export class ProcessTable {
  readonly #entries = new Map<number, ProcessEntry>()
  /** pids in exit order, for amortised eviction */
  #exited: number[] = []
  readonly #graceMs: number
  readonly #maxAncestors: number
  readonly #maxEntries: number
  readonly #host: string
  readonly #cgroupPaths: CgroupPaths | undefined
  readonly #redactArgs: boolean
  /** entries dropped because the table was full (reported, never silent) */
  evictedEarly = 0

  constructor(options: ProcessTableOptions) {
    this.#host = options.host
    this.#graceMs = options.graceMs ?? 30_000
    if (!(this.#graceMs >= 0)) throw new InvalidArgumentError(`graceMs must be a number of milliseconds >= 0, got ${String(options.graceMs)}`)
    this.#maxAncestors = options.maxAncestors ?? 16
    this.#maxEntries = options.maxEntries ?? 65_536
    this.#cgroupPaths = options.cgroupPaths
    this.#redactArgs = options.redactArgs !== false
  }

  get size(): number {
    return this.#entries.size
  }

  /** Adds every process in /proc. Returns how many were added. */
  seedFromProc(): number {
    let n = 0
    for (const pid of listPids()) {
      const snap = readProc(pid)
      if (!snap || this.#entries.has(pid)) continue
      this.#put(this.#fromSnapshot(snap))
      n++
    }
    return n
  }

  get(pid: number): ProcessEntry | undefined {
    return this.#entries.get(pid)
  }

  /** A process we have no record of (raced with seeding): read it from /proc now. */
  lookupOrRead(pid: number): ProcessEntry | undefined {
    const hit = this.#entries.get(pid)
    if (hit) return hit
    const snap = readProc(pid)
    if (!snap) return undefined
    const entry = this.#fromSnapshot(snap)
    this.#put(entry)
    return entry
  }

  /** Records an exec: same pid, new image, new exec_id. */
  exec(e: Omit<ProcessEntry, 'execId' | 'exitedAt'>): ProcessEntry {
    const entry: ProcessEntry = { ...e, args: this.#args(e.args), execId: execId(this.#host, e.startBoottimeNs, e.pid), exitedAt: 0 }
    this.#put(entry)
    this.#sweep()
    return entry
  }

  /** Records a fork: the child inherits the parent's image until it execs. */
  fork(parentPid: number, childPid: number, startBoottimeNs: bigint, cgroupId: bigint): ProcessEntry {
    const parent = this.lookupOrRead(parentPid)
    const entry: ProcessEntry = {
      pid: childPid,
      ppid: parentPid,
      execId: execId(this.#host, startBoottimeNs, childPid),
      path: parent?.path ?? '',
      args: parent?.args ?? [],
      argsTruncated: parent?.argsTruncated ?? false,
      comm: parent?.comm ?? '',
      uid: parent?.uid ?? 0,
      gid: parent?.gid ?? 0,
      startBoottimeNs,
      cgroupId,
      exitedAt: 0,
    }
    this.#put(entry)
    this.#sweep()
    return entry
  }

  /** Marks an exit; the entry stays resolvable for the grace period. */
  exit(pid: number): ProcessEntry | undefined {
    const entry = this.#entries.get(pid)
    if (entry && !entry.exitedAt) {
      entry.exitedAt = Date.now()
      this.#exited.push(pid)
    }
    this.#sweep()
    return entry
  }

  /** Parent chain, nearest first, up to PID 1 or maxAncestors; safe against cycles. */
  ancestors(pid: number): AncestorInfo[] {
    const out: AncestorInfo[] = []
    const seen = new Set<number>([pid])
    let cur = this.#entries.get(pid)?.ppid ?? 0
    while (cur > 0 && out.length < this.#maxAncestors && !seen.has(cur)) {
      seen.add(cur)
      const e = this.lookupOrRead(cur)
      if (!e) break
      out.push({ pid: e.pid, exec_id: e.execId, executable: { path: e.path }, command: e.comm })
      if (cur === 1) break
      cur = e.ppid
    }
    return out
  }

  /** Drops exited entries past their grace period. */
  #sweep(now = Date.now()): void {
    let i = 0
    while (i < this.#exited.length) {
      const pid = this.#exited[i]!
      const e = this.#entries.get(pid)
      if (e && e.exitedAt && now - e.exitedAt < this.#graceMs) break
      if (e && e.exitedAt) this.#entries.delete(pid)
      i++
    }
    if (i) this.#exited = this.#exited.slice(i)
  }

  #put(entry: ProcessEntry): void {
    if (!this.#entries.has(entry.pid) && this.#entries.size >= this.#maxEntries) this.#makeRoom()
    this.#entries.set(entry.pid, entry)
  }

  #makeRoom(): void {
    const victim = this.#exited.shift() ?? this.#entries.keys().next().value
    if (victim !== undefined) {
      this.#entries.delete(victim)
      this.evictedEarly++
    }
  }

  /** Command lines are stored redacted, so neither events nor ancestry carry a credential. */
  #args(args: string[]): string[] {
    return this.#redactArgs ? redactCommandArgs(args) : args
  }

  #fromSnapshot(s: ProcSnapshot): ProcessEntry {
    return {
      pid: s.pid,
      ppid: s.ppid,
      execId: execId(this.#host, s.startBoottimeNs, s.pid),
      path: s.executable || (s.kernelThread ? `[${s.comm}]` : ''),
      args: this.#args(s.args),
      argsTruncated: s.argsTruncated,
      comm: s.comm,
      uid: s.uid,
      gid: s.gid,
      startBoottimeNs: s.startBoottimeNs,
      cgroupId: this.#cgroupPaths?.idOf(s.cgroupPath) ?? 0n,
      exitedAt: 0,
    }
  }
}

/**
 * Executable name for OTel's process.executable.name. A kernel thread's path is
 * its bracketed comm ("[kworker/u8:2-events_unbound]"): its name is the comm,
 * not what follows the comm's own '/'.
 */
export function executableName(path: string): string {
  if (path.startsWith('[') && path.endsWith(']')) return path.slice(1, -1)
  return basename(path)
}

export { bootToIso }
