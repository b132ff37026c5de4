/**
 * TlsSensor: plaintext of TLS connections, captured with uprobes on the TLS
 * libraries (bpf/src/tls.bpf.c), for OpenSSL 1.1/3.x (shared libssl and
 * executables that export it, such as node), BoringSSL, GnuTLS and Go
 * crypto/tls.
 *
 * How processes are covered:
 *  - at start, every process is scanned (/proc/PID/maps) and each TLS file
 *    it maps is attached once per (device, inode) (attach-registry.ts);
 *  - the usual TLS libraries (libssl.so.3, libgnutls.so.30, ...) are
 *    attached ahead of time by path with pid -1 (`preattach`, default on): a
 *    uprobe belongs to the file, so it fires in every process that maps it
 *    later. A process started after the sensor is therefore captured from its
 *    first TLS call, with no race against its start-up (at exec time its
 *    libraries are not even mapped yet);
 *  - exec events (ProcessSensor) trigger a scan of the new image right away
 *    (executables with TLS inside: node, Go programs) and again a few times
 *    during its start-up (libraries loaded after exec or by dlopen). The
 *    exec event reaches JS 1-12 ms after the exec, and a Go client can finish
 *    a whole HTTPS request in ~10 ms: an executable seen for the first time
 *    can race past its attach (calls made before it are missed, and counted
 *    nowhere since no probe saw them). `holdNewExecutables` closes that race
 *    by stopping such a process at exec until it is attached;
 *  - files stay attached while a process that mapped them lives (exit
 *    events release them; fork children inherit), plus `detachDelayMs`.
 *
 * Costs: two probe hits per TLS call (entry + return), whatever the process;
 * filtered processes (pids/comm options, the agent itself) are dropped in BPF
 * after the first hit but still pay the traps, because a uprobe on a file is
 * global (their verdict is cached per thread, so the second hit is cheap).
 * BPF time per call, measured with kernel.bpf_stats_enabled on a loaded VM
 * (docs/benchmarks.md): entry ~0.3 us, return ~1.0 us (64 B) to ~1.4 us
 * (4 KiB), on top of the traps. Socket-fd correlation adds one task-storage
 * lookup (~0.15 us, no hashing) per read/write/send/recv syscall on the
 * machine (option correlateFds: false removes it). Detaching a file costs
 * ~0.1 s per probe of blocked event loop (kernel RCU sync per uprobe), so
 * close() of a sensor with many files attached takes seconds.
 */
import { closeSync, openSync, readdirSync } from 'node:fs'
import { codecForType } from '../../btf/index.js'
import type { Codec } from '../../codec.js'
import { Collection } from '../../collection.js'
import { BpfError, InvalidArgumentError } from '../../errors.js'
import type { Link } from '../../link.js'
import { bundledObject } from '../../probes.js'
import { CollectionSpec } from '../../spec.js'
import { captureLimits, configureCapture, fillPidFilter } from '../capture/config.js'
import { CAPTURE_COUNTER_NAMES, newCaptureStats, type CaptureKernelCounters, type CaptureStats } from '../capture/counters.js'
import { CaptureReader, type CaptureEvents, type CaptureGapEvent } from '../capture/reader.js'
import { CaptureSensor } from '../capture/sensor.js'
import { ProcessSensor } from '../process/sensor.js'
import type { ProcessEvent } from '../process/events.js'
import { AttachRegistry } from './attach-registry.js'
import {
  discoverProcess,
  fileKey,
  InspectCache,
  kernelDev,
  preattachTargets,
  processComm,
  type SkippedFile,
  type TlsFunction,
  type TlsLibrary,
  type TlsTarget,
} from './discovery.js'
import { preloadDecoder } from './go-ret.js'
import { LIBRARY_CODES, RecordDecoder, TLS_F_HOLD, type RawTlsEvent, type TlsCloseEvent, type TlsRecord } from './record.js'

export interface TlsSensorOptions {
  /** capture only these processes (default: all but the agent itself) */
  pids?: number[]
  /** capture only processes whose main thread's comm (15 bytes) is exactly this (Node 24 names its main thread, so its processes are "MainThread", not "node") */
  comm?: string
  /** bytes captured per TLS call; the rest is counted and reported as a gap (default 1 MiB, min 256 KiB) */
  maxBytesPerCall?: number
  /** ring buffer size in bytes, a power of two (default 64 MiB) */
  ringBytes?: number
  /** process events to follow new processes; default: a ProcessSensor of its own */
  processSensor?: ProcessSensor
  /** attach the well-known TLS libraries ahead of time (default true; see the module doc) */
  preattach?: boolean
  /** library names attached ahead of time (default WELL_KNOWN_LIBRARIES) */
  preattachLibraries?: string[]
  /** resolve socket fds through the syscalls made inside each TLS call (default true) */
  correlateFds?: boolean
  /** more processes never to capture (the agent itself never is) */
  excludePids?: number[]
  /** rescans of a new process's mappings after its exec, in ms (default [30, 200, 1000, 3000]) */
  rescanAfterExecMs?: number[]
  /**
   * Stop (SIGSTOP, from BPF at sched_process_exec) every process whose
   * executable has not been inspected yet, inspect and attach it, then
   * resume it (SIGCONT). Makes capture of executables with TLS inside (node,
   * Go) deterministic from their first instruction; each distinct executable
   * is held once (~1-40 ms), until its probes are detached again.
   * Descendants of the agent are never held (it may wait for them with
   * spawnSync). Default false because a held process waits for the agent's
   * event loop: while the loop is blocked, first execs of new executables
   * wait too, and a process held when the agent dies stays stopped until it
   * gets SIGCONT.
   */
  holdNewExecutables?: boolean
  /**
   * With holdNewExecutables: hold the agent's own descendants too (default
   * false). Only safe when the agent never waits for a child synchronously
   * (spawnSync/execSync of a program not seen before would deadlock).
   */
  holdAgentDescendants?: boolean
  /**
   * With holdNewExecutables: hold only descendants of this pid (default: any
   * process). Tests and scoped agents use it so unrelated programs on the
   * machine are never stopped.
   */
  holdOnlyDescendantsOf?: number
  /**
   * Keep a file's probes this long after the last process using it exited
   * (default 30 s). Detaching costs ~0.1 s of blocked event loop per probe
   * (an RCU grace period per uprobe in the kernel), and a program run again
   * soon is captured with no start-up race.
   */
  detachDelayMs?: number
  /**
   * The BPF side wakes the reader only when this many unread bytes pile up
   * (default 1 MiB; 0 = on every record). A wake-up costs ~11 us of BPF time
   * per record on a VM, more than the capture itself; records below the
   * threshold are read by a timer every flushIntervalMs.
   */
  wakeupBytes?: number
  /** read the ring at least this often, ms (default 20): the latency bound for light traffic */
  flushIntervalMs?: number
}

/** Per-reason counters kept by the BPF program (summed over CPUs). */
export interface TlsKernelCounters extends CaptureKernelCounters {
  /** returns seen without their entry (call state evicted, or attached mid-call) */
  noEntry: number
  noEntryBytes: number
  /** call state that could not be stored */
  stateFull: number
  /** calls whose syscalls used more than one fd (fd reported as the connection's last known) */
  fdConflicts: number
  /** connections whose stream state could not be stored */
  connFull: number
  /** processes stopped at exec for inspection (holdNewExecutables) */
  holds: number
  /** execs that should have been held and were not (ring full or signal failed) */
  holdFailed: number
}

const COUNTER_NAMES: (keyof TlsKernelCounters)[] = [
  ...CAPTURE_COUNTER_NAMES,
  'noEntry',
  'noEntryBytes',
  'stateFull',
  'fdConflicts',
  'connFull',
  'holds',
  'holdFailed',
]

export interface TlsStats extends CaptureStats<TlsKernelCounters> {
  /** files with probes attached */
  attachedFiles: number
}

export interface TlsAttachEvent {
  key: string
  library: TlsLibrary
  path: string
  /** pid whose scan found it, or 'preattach' */
  holder: number | string
  probes: number
  version?: string
}

export type TlsGapEvent = CaptureGapEvent

export interface TlsSensorEvents extends CaptureEvents<TlsRecord, TlsCloseEvent> {
  attach: [TlsAttachEvent]
  detach: [{ key: string; library: TlsLibrary; path: string }]
  /** a file with TLS functions that could not be attached, once per file */
  'attach-error': [{ key: string; path: string; error: Error }]
}

const FN_CODES: Record<Exclude<TlsFunction, 'free'>, number> = { write: 1, read: 2, write_ex: 3, read_ex: 4, write_ex2: 5 }
const SYSCALLS = ['sys_enter_write', 'sys_enter_read', 'sys_enter_sendto', 'sys_enter_recvfrom', 'sys_enter_sendmsg', 'sys_enter_recvmsg']
export const DEFAULT_MAX_BYTES_PER_CALL = 1 << 20
export const MIN_MAX_BYTES_PER_CALL = 256 << 10
export const DEFAULT_RING_BYTES = 64 << 20

/** An attach that failed because the file went away before it could be opened: not remembered. */
class TransientAttachError extends BpfError {
  constructor(message: string) {
    super(message, { code: 'ENOENT' })
  }
}

export class TlsSensor extends CaptureSensor<TlsSensorEvents, TlsKernelCounters> {
  readonly stats: TlsStats
  readonly #collection: Collection
  readonly #decoder: RecordDecoder
  readonly #registry: AttachRegistry<TlsTarget>
  readonly #cache = new InspectCache()
  readonly #links: Link[] = []
  readonly #processSensor: ProcessSensor
  readonly #ownsProcessSensor: boolean
  readonly #onProcessEvent: (ev: ProcessEvent) => void
  readonly #pids: Set<number> | undefined
  readonly #comm: string | undefined
  readonly #rescanDelays: number[]
  readonly #timers = new Map<number, NodeJS.Timeout[]>()
  readonly #skipped = new Map<string, SkippedFile>()
  #execLink: Link | undefined
  /** pids stopped by tls_exec and not resumed yet */
  readonly #held = new Set<number>()

  constructor(options: TlsSensorOptions = {}) {
    super()
    const limits = captureLimits(options, {
      maxBytesPerCall: DEFAULT_MAX_BYTES_PER_CALL,
      minMaxBytesPerCall: MIN_MAX_BYTES_PER_CALL,
      ringBytes: DEFAULT_RING_BYTES,
    })
    this.#pids = options.pids ? new Set(options.pids) : undefined
    for (const p of this.#pids ?? []) {
      if (!Number.isInteger(p) || p <= 0) throw new InvalidArgumentError(`invalid pid ${p}`)
    }
    this.#comm = options.comm
    this.#rescanDelays = options.rescanAfterExecMs ?? [30, 200, 1000, 3000]
    this.stats = newCaptureStats(COUNTER_NAMES, { attachedFiles: 0 })

    const spec = CollectionSpec.fromFile(bundledObject('tls.bpf.o'))
    configureCapture(spec, 'tls_events', limits, { onlyListedPids: this.#pids !== undefined, comm: this.#comm })
    spec.variables.must('agent_tgid').set(options.holdAgentDescendants ? 0 : process.pid)
    spec.variables.must('hold_root_tgid').set(options.holdOnlyDescendantsOf ?? 0)
    this.#collection = new Collection(spec)
    try {
      fillPidFilter(this.#collection.map<number, number>('tls_pids'), this.#pids, options.excludePids)
      // BPF caches each thread's filter verdict with this generation: bump it after any tls_pids change
      this.#collection.map<number, number>('tls_filter_gen').update(0, 1)

      const codec = codecForType<RawTlsEvent>(spec.btf!, 'tls_event') as Codec<RawTlsEvent>
      const decoder = new RecordDecoder(codec)
      this.#decoder = decoder
      this.reader = new CaptureReader<RawTlsEvent, TlsRecord, TlsCloseEvent, TlsKernelCounters>({
        collection: this.#collection,
        ring: 'tls_events',
        counters: 'tls_counters',
        counterNames: COUNTER_NAMES,
        stats: this.stats,
        sink: this,
        decoding: {
          codec,
          control: (raw) => {
            if (!(raw.flags & TLS_F_HOLD)) return false
            this.#onHold(raw.pid, raw.call_len, raw.conn)
            return true
          },
          close: (raw) => decoder.close(raw),
          connKey: (raw) => decoder.connKey(raw.pid, raw.conn),
          record: (raw, data, conn) => decoder.record(raw, data, conn),
        },
      })

      if (options.correlateFds !== false) {
        const prog = this.#collection.program('tls_sys_enter')
        for (const tp of SYSCALLS) this.#links.push(prog.attachTracepoint('syscalls', tp))
      }

      this.#registry = new AttachRegistry<TlsTarget>({
        attach: (t) => this.#attachTarget(t),
        remember: (err) => !(err instanceof TransientAttachError),
        lingerMs: options.detachDelayMs ?? 30_000,
        onDetach: (e) => {
          this.stats.attachedFiles = this.#registry.size
          this.#forgetExecutable(e.key)
          this.emit('detach', { key: e.key, library: e.target.library, path: e.target.displayPath })
        },
      })

      // Follow processes before scanning, so nothing starting in between is missed.
      this.#ownsProcessSensor = !options.processSensor
      this.#processSensor = options.processSensor ?? new ProcessSensor({ ancestors: false })
      this.#onProcessEvent = (ev) => this.#onProcess(ev)
      this.#processSensor.on('event', this.#onProcessEvent)

      if (options.preattach !== false) {
        for (const t of preattachTargets(undefined, this.#cache, options.preattachLibraries)) this.#acquire(t, 'preattach')
      }
      preloadDecoder() // Go return sites are decoded on the exec path: be ready
      for (const pid of this.#pids ?? allPids()) this.scanPid(pid)
      if (options.holdNewExecutables) this.#execLink = this.#collection.program('tls_exec').attachTracepoint('sched', 'sched_process_exec')
    } catch (err) {
      this.teardown()
      throw err
    }
    this.reader.start(options.flushIntervalMs ?? 20)
  }

  /**
   * Scans process `pid` now and attaches the TLS files it maps. Returns the
   * targets found (attached or already attached). Silent if the process is
   * gone or filtered out.
   */
  scanPid(pid: number): TlsTarget[] {
    if (this.closed || pid === process.pid) return []
    if (this.#pids && !this.#pids.has(pid)) return []
    if (this.#comm !== undefined && processComm(pid) !== this.#comm) return []
    let found
    try {
      found = discoverProcess(pid, this.#cache)
    } catch {
      return [] // exited, or not readable
    }
    for (const s of found.skipped) if (s.key && !this.#skipped.has(s.key)) this.#skipped.set(s.key, s)
    for (const t of found.targets) this.#acquire(t, pid)
    return found.targets
  }

  /** Files with probes attached: library, path, and how many processes hold them. */
  attached(): { key: string; library: TlsLibrary; path: string; holders: (number | string)[]; probes: number }[] {
    return [...this.#registry.entries()].map((e) => ({
      key: e.key,
      library: e.target.library,
      path: e.target.displayPath,
      holders: [...e.holders],
      probes: e.links.length,
    }))
  }

  /** Files that were inspected and not attached, with why (diagnostics). */
  skipped(): SkippedFile[] {
    return [...this.#skipped.values()]
  }

  protected teardown(): void {
    // no new holds; resume the held processes whose records are still queued
    this.#execLink?.close()
    if (this.#execLink) {
      try {
        this.reader?.drain()
      } catch {
        // resumed below anyway
      }
    }
    for (const pid of this.#held) resume(pid)
    this.#held.clear()
    this.closed = true
    for (const timers of this.#timers.values()) for (const t of timers) clearTimeout(t)
    this.#timers.clear()
    const onEvent = this.#onProcessEvent as ((ev: ProcessEvent) => void) | undefined // unset if the constructor failed early
    if (onEvent) this.#processSensor?.off('event', onEvent)
    if (this.#ownsProcessSensor) this.#processSensor?.close()
    this.#registry?.close()
    for (const l of this.#links) l.close()
    this.#links.length = 0
    this.reader?.close()
    this.#collection.close()
  }

  #acquire(t: TlsTarget, holder: number | string): void {
    const r = this.#registry.acquire(t, holder)
    if (r === 'attached') {
      this.stats.attachedFiles = this.#registry.size
      const probes = this.#registry.get(t.key)?.links.length ?? 0
      this.emit('attach', { key: t.key, library: t.library, path: t.displayPath, holder, probes, version: t.version })
    } else if (r === 'failed') {
      const error = this.#registry.failed.get(t.key)
      if (error && !this.#reportedFailures.has(t.key)) {
        this.#reportedFailures.add(t.key)
        this.emit('attach-error', { key: t.key, path: t.displayPath, error })
      }
    }
  }

  readonly #reportedFailures = new Set<string>()

  /**
   * Attaches every probe of `t`. The file is opened first and attached
   * through /proc/self/fd/N, so the path (a map_files link of a process that
   * may exit at any moment) only has to exist for the open; the kernel then
   * holds the inode.
   */
  #attachTarget(t: TlsTarget): Link[] {
    let fd: number
    try {
      fd = openSync(t.path, 'r')
    } catch (e) {
      throw new TransientAttachError(`${t.displayPath}: ${(e as Error).message}`)
    }
    const links: Link[] = []
    try {
      const path = `/proc/self/fd/${fd}`
      if (fileKey(path)?.key !== t.key) throw new TransientAttachError(`${t.displayPath} changed since it was inspected`)
      const lib = LIBRARY_CODES[t.library]
      const cookie = (fn: number) => BigInt(lib | (fn << 8))
      // Go: plain uprobes on every RET (uretprobes crash Go); C libraries: a uretprobe.
      const go = t.library === 'go'
      const enter = this.#collection.program(go ? 'go_enter' : 'tls_enter')
      const ret = this.#collection.program(go ? 'go_return' : 'tls_return')
      const free = this.#collection.program(go ? 'go_free' : 'tls_free')
      for (const p of t.probes) {
        if (p.fn === 'free') {
          links.push(free.attachUprobe({ binary: path, offset: p.address, cookie: cookie(0) }))
          continue
        }
        const c = cookie(FN_CODES[p.fn])
        links.push(enter.attachUprobe({ binary: path, offset: p.address, cookie: c }))
        if (go) for (const r of p.returns ?? []) links.push(ret.attachUprobe({ binary: path, offset: r, cookie: c }))
        else links.push(ret.attachUprobe({ binary: path, offset: p.address, cookie: c, retprobe: true }))
      }
      return links
    } catch (err) {
      for (const l of links) l.close()
      throw err
    } finally {
      closeSync(fd)
    }
  }

  #onProcess(ev: ProcessEvent): void {
    if (this.closed) return
    const pid = ev.process.pid
    try {
      if (ev.type === 'process.exec') {
        if (this.#pids && !this.#pids.has(pid)) return
        if (this.#comm !== undefined && ev.process.command !== this.#comm) return
        this.#clearTimers(pid)
        const before = new Set(this.attachedKeysOf(pid))
        const now = new Set(this.scanPid(pid).map((t) => t.key))
        // the old image's files are no longer mapped by this pid
        for (const key of before) if (!now.has(key)) this.#registry.releaseKey(pid, key)
        const timers = this.#rescanDelays.map((ms) =>
          setTimeout(() => {
            if (!this.closed) this.scanPid(pid)
          }, ms).unref(),
        )
        this.#timers.set(pid, timers)
      } else if (ev.type === 'process.fork') {
        if (!this.#pids) this.#registry.inherit(pid, ev.child.pid)
      } else if (ev.type === 'process.exit') {
        this.#clearTimers(pid)
        this.#registry.release(pid)
        this.#decoder.forgetPid(pid)
      }
    } catch (err) {
      this.emit('error', err as Error)
    }
  }

  /** Keys of the files `pid` holds. */
  attachedKeysOf(pid: number): string[] {
    return [...this.#registry.entries()].filter((e) => e.holders.has(pid)).map((e) => e.key)
  }

  /** A process stopped at exec: attach what it carries, remember its executable, resume it. */
  #onHold(pid: number, dev: bigint, ino: bigint): void {
    this.#held.add(pid)
    try {
      if (!this.closed) this.scanPid(pid)
      this.#collection.map('tls_exe_known').update({ dev, ino }, 1)
    } catch (err) {
      this.emit('error', err as Error)
    } finally {
      resume(pid)
      this.#held.delete(pid)
    }
  }

  /** A file's probes were detached: its next exec must be held (and inspected) again. */
  #forgetExecutable(key: string): void {
    if (!this.#execLink || this.closed) return
    const [dev, ino] = key.split(':')
    try {
      this.#collection.map('tls_exe_known').delete({ dev: kernelDev(BigInt(dev!)), ino: BigInt(ino!) })
    } catch {
      // not there
    }
  }

  #clearTimers(pid: number): void {
    for (const t of this.#timers.get(pid) ?? []) clearTimeout(t)
    this.#timers.delete(pid)
  }
}

function resume(pid: number): void {
  try {
    process.kill(pid, 'SIGCONT')
  } catch {
    // exited meanwhile
  }
}

function allPids(): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (/^[1-9][0-9]*$/.test(name)) out.push(Number(name))
  }
  return out
}
