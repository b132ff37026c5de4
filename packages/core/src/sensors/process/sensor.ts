/**
 * The built-in process sensor: exec, exit and fork events from the bundled
 * CO-RE object (tracepoints only, so no kprobes are needed), enriched in user
 * space with a /proc-seeded process table and ancestry.
 * Needs: kernel 5.8+ with BTF (ring buffer, tp_btf), CAP_BPF + CAP_PERFMON.
 */
import { EventEmitter } from 'eventemitter3'
import { hostname } from 'node:os'
import type { Btf } from '../../btf/index.js'
import type { Codec } from '../../codec.js'
import { Collection } from '../../collection.js'
import type { Link } from '../../link.js'
import { bundledObject } from '../../probes.js'
import type { RingBuffer } from '../../ringbuf.js'
import { CollectionSpec } from '../../spec.js'
import { CgroupPaths } from '../../cgroup-mounts.js'
import { InvalidArgumentError } from '../../errors.js'
import { checkRingBytes } from '../capture/config.js'
import { bootToIso, monoToIso } from './clock.js'
import type { EventBase, ProcessEvent, ProcessInfo } from './events.js'
import { splitArgs } from './procfs.js'
import { executableName, ProcessTable, type ProcessEntry } from './table.js'

/** Raw record layout of struct process_event (bpf/src/process.bpf.c), decoded through BTF. */
interface RawProcessEvent {
  kind: number
  pid: number
  tid: number
  ppid: number
  uid: number
  gid: number
  cgroup_id: bigint
  ktime: bigint
  start_ktime: bigint
  start_boottime: bigint
  pidns: number
  child_pid: number
  exit_code: number
  exit_signal: number
  path_len: number
  args_len: number
  args_truncated: number
  path_truncated: number
  comm: Uint8Array
  path: Uint8Array
  args: Uint8Array
}

const KIND_EXEC = 1
const KIND_EXIT = 2
const KIND_FORK = 3

export interface ProcessFilter {
  /** never report this process (default: the agent itself) */
  excludePid?: number
  /** only processes in this pid namespace (inode of /proc/PID/ns/pid); 0 = all */
  pidNamespace?: number
  /** only processes in these cgroup v2 ids; empty or undefined = all */
  cgroupIds?: bigint[]
}

export interface ProcessSensorOptions {
  /** host name in events and exec ids (default os.hostname()) */
  host?: string
  /** attach `ancestors` to every event (default true) */
  ancestors?: boolean
  /** in-kernel filter, changeable later with setFilter() */
  filter?: ProcessFilter
  /** exited processes stay resolvable this long, ms (default 30 s) */
  graceMs?: number
  /** ring size in bytes (power of two, default 16 MiB) */
  ringBytes?: number
  /** replace credentials in command lines with [REDACTED] (API keys, Authorization headers, --password x, URL passwords; default true) */
  redactArgs?: boolean
}

export interface ProcessSensorEvents {
  event: [ProcessEvent]
  lost: [{ count: number; total: number }]
  error: [Error]
}

export class ProcessSensor extends EventEmitter<ProcessSensorEvents> {
  readonly host: string
  readonly table: ProcessTable
  readonly stats = { events: 0, lost: 0 }
  readonly #collection: Collection
  readonly #links: Link[]
  readonly #ring: RingBuffer<RawProcessEvent>
  readonly #ancestors: boolean
  #closed = false

  constructor(options: ProcessSensorOptions = {}) {
    super()
    this.host = options.host ?? hostname()
    this.#ancestors = options.ancestors !== false
    this.table = new ProcessTable({ host: this.host, graceMs: options.graceMs, cgroupPaths: new CgroupPaths(), redactArgs: options.redactArgs })
    const spec = CollectionSpec.fromFile(bundledObject('process.bpf.o'))
    if (options.ringBytes !== undefined) spec.maps.must('process_events').maxEntries = checkRingBytes(options.ringBytes)
    this.#collection = new Collection(spec)
    try {
      this.setFilter({ excludePid: process.pid, ...options.filter })
      const codec = processEventCodec(spec.btf!)
      this.#ring = this.#collection.ringBuffer<RawProcessEvent>('process_events', { codec })
      this.#ring.on('lost', (l) => {
        this.stats.lost = l.total
        this.emit('lost', l)
      })
      this.#ring.on('error', (e) => this.emit('error', e))
      // Seed before attaching would miss processes started in between; attach first, then seed.
      this.#links = this.#collection.attachAll()
      this.table.seedFromProc()
      this.#ring.on('data', (raw) => this.#handle(raw))
    } catch (err) {
      this.#collection.close()
      throw err
    }
  }

  /** Updates the in-kernel filter while running. */
  setFilter(filter: ProcessFilter): void {
    const cgroups = filter.cgroupIds ?? []
    const count = (what: string, v: number | undefined) => {
      if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 0xffffffff)) {
        throw new InvalidArgumentError(`filter.${what} must be an integer from 0 to 2^32-1, got ${String(v)}`)
      }
    }
    count('excludePid', filter.excludePid)
    count('pidNamespace', filter.pidNamespace)
    if (!Array.isArray(cgroups) || cgroups.some((id) => typeof id !== 'bigint' || id < 0n)) {
      throw new InvalidArgumentError('filter.cgroupIds must be an array of cgroup ids (non-negative bigints)')
    }
    const set = this.#collection.map<bigint, number>('process_cgroups')
    for (const k of [...set.keys()]) set.delete(k)
    for (const id of cgroups) set.update(id, 1)
    this.#collection.map('process_filter').update(0, {
      exclude_tgid: filter.excludePid ?? 0,
      pidns: filter.pidNamespace ?? 0,
      cgroup_filter: cgroups.length ? 1 : 0,
      _pad: 0,
    })
  }

  /** Keeps the process alive while the sensor runs (it is unref'd by default). */
  ref(): this {
    this.#ring.ref()
    return this
  }

  /** Delivers whatever is in the ring now (synchronously). */
  flush(): void {
    if (!this.#closed) this.#ring.consume()
  }

  /** Detaches everything; pending events are delivered first. */
  close(): void {
    if (this.#closed) return
    this.flush()
    this.#closed = true
    for (const l of this.#links) l.close()
    this.#ring.close()
    this.#collection.close()
  }

  [Symbol.dispose](): void {
    this.close()
  }

  #handle(raw: RawProcessEvent): void {
    let ev: ProcessEvent
    if (raw.kind === KIND_EXEC) {
      const path = cString(raw.path, raw.path_len)
      const entry = this.table.exec({
        pid: raw.pid,
        ppid: raw.ppid,
        path,
        args: splitArgs(raw.args.subarray(0, raw.args_len)),
        argsTruncated: raw.args_truncated !== 0,
        comm: cString(raw.comm),
        uid: raw.uid,
        gid: raw.gid,
        startBoottimeNs: raw.start_boottime,
        cgroupId: raw.cgroup_id,
      })
      ev = { ...this.#base('process.exec', raw, entry), type: 'process.exec' }
    } else if (raw.kind === KIND_FORK) {
      const child = this.table.fork(raw.pid, raw.child_pid, raw.start_boottime, raw.cgroup_id)
      const parent = this.table.lookupOrRead(raw.pid) ?? child
      ev = { ...this.#base('process.fork', raw, parent), type: 'process.fork', child: { pid: child.pid, exec_id: child.execId } }
    } else if (raw.kind === KIND_EXIT) {
      const entry = this.table.get(raw.pid) ?? this.#unknownEntry(raw)
      const duration = raw.ktime - raw.start_ktime
      ev = {
        ...this.#base('process.exit', raw, entry),
        type: 'process.exit',
        exit: {
          code: raw.exit_signal ? null : raw.exit_code,
          signal: raw.exit_signal ? raw.exit_signal : null,
          time: monoToIso(raw.ktime),
          duration_ns: (duration > 0n ? duration : 0n).toString(),
        },
      }
      this.table.exit(raw.pid)
    } else {
      this.emit('error', new Error(`process sensor: unknown event kind ${raw.kind}`))
      return
    }
    this.stats.events++
    this.emit('event', ev)
  }

  #base(type: string, raw: RawProcessEvent, entry: ProcessEntry): EventBase {
    const parent = this.table.get(entry.ppid)
    const process: ProcessInfo = {
      pid: entry.pid,
      parent_pid: entry.ppid,
      exec_id: entry.execId,
      executable: { path: entry.path, name: executableName(entry.path) },
      command_args: entry.args,
      args_truncated: entry.argsTruncated,
      command: cString(raw.comm),
      user: { id: raw.uid },
      group: { id: raw.gid },
      creation: { time: bootToIso(entry.startBoottimeNs), ktime: raw.start_ktime.toString() },
    }
    if (parent) process.parent_exec_id = parent.execId
    if (raw.tid !== raw.pid) process.thread = { id: raw.tid }
    const ev: EventBase = {
      type,
      time: monoToIso(raw.ktime),
      ktime: raw.ktime.toString(),
      host: { name: this.host },
      process,
      cgroup: { id: raw.cgroup_id.toString() },
    }
    if (this.#ancestors) ev.ancestors = this.table.ancestors(entry.pid)
    return ev
  }

  /** Exit of a process we never saw (exited during seeding): describe it from the event alone. */
  #unknownEntry(raw: RawProcessEvent): ProcessEntry {
    return this.table.lookupOrRead(raw.pid) ?? {
      pid: raw.pid,
      ppid: raw.ppid,
      execId: '',
      path: '',
      args: [],
      argsTruncated: false,
      comm: cString(raw.comm),
      uid: raw.uid,
      gid: raw.gid,
      startBoottimeNs: raw.start_boottime,
      cgroupId: raw.cgroup_id,
      exitedAt: 0,
    }
  }
}

/**
 * Decoder for struct process_event with offsets taken from the object's BTF.
 * Hand-rolled rather than the generic BTF codec because this is the sensor's
 * hot path: the byte arrays (comm, path, args) are returned as views into the
 * ring batch, not copies, and path/args are only looked at for exec events.
 * The views are valid only during the ring callback; #handle turns them into
 * strings synchronously.
 */
function processEventCodec(btf: Btf): Codec<RawProcessEvent> {
  const struct = btf.findByName('process_event', 'struct')
  const at: Record<string, number> = {}
  for (const m of struct.members) at[m.name] = m.bitOffset / 8
  const need = ['kind', 'pid', 'tid', 'ppid', 'uid', 'gid', 'cgroup_id', 'ktime', 'start_ktime', 'start_boottime', 'pidns',
    'child_pid', 'exit_code', 'exit_signal', 'path_len', 'args_len', 'args_truncated', 'path_truncated', 'comm', 'path', 'args']
  for (const n of need) if (at[n] === undefined) throw new Error(`process.bpf.o: struct process_event has no field '${n}'`)
  const o = at as Record<(typeof need)[number], number>
  const size = btf.sizeOf(struct.id)
  const empty = new Uint8Array(0)
  return {
    size,
    decode(v, base) {
      const kind = v.getUint32(base + o.kind!, true)
      const bytes = new Uint8Array(v.buffer, v.byteOffset + base, size)
      const exec = kind === KIND_EXEC
      return {
        kind,
        pid: v.getUint32(base + o.pid!, true),
        tid: v.getUint32(base + o.tid!, true),
        ppid: v.getUint32(base + o.ppid!, true),
        uid: v.getUint32(base + o.uid!, true),
        gid: v.getUint32(base + o.gid!, true),
        cgroup_id: v.getBigUint64(base + o.cgroup_id!, true),
        ktime: v.getBigUint64(base + o.ktime!, true),
        start_ktime: v.getBigUint64(base + o.start_ktime!, true),
        start_boottime: v.getBigUint64(base + o.start_boottime!, true),
        pidns: v.getUint32(base + o.pidns!, true),
        child_pid: v.getUint32(base + o.child_pid!, true),
        exit_code: v.getInt32(base + o.exit_code!, true),
        exit_signal: v.getUint32(base + o.exit_signal!, true),
        path_len: v.getUint16(base + o.path_len!, true),
        args_len: v.getUint16(base + o.args_len!, true),
        args_truncated: v.getUint8(base + o.args_truncated!),
        path_truncated: v.getUint8(base + o.path_truncated!),
        comm: bytes.subarray(o.comm!, o.comm! + 16),
        path: exec ? bytes.subarray(o.path!, o.args!) : empty,
        args: exec ? bytes.subarray(o.args!, size) : empty,
      }
    },
    encode() {
      throw new Error('process events are read-only')
    },
  }
}

/** Bytes up to `len` (or the first NUL) as UTF-8. */
function cString(bytes: Uint8Array, len = bytes.length): string {
  let end = Math.min(len, bytes.length)
  const nul = bytes.indexOf(0)
  if (nul >= 0 && nul < end) end = nul
  return Buffer.from(bytes.buffer, bytes.byteOffset, end).toString('utf8')
}
