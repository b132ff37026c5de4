/**
 * PlainSocketSensor: the bytes of cleartext HTTP/1 and HTTP/2 connections
 * over TCP (Ollama, in-cluster model servers, service-to-service HTTP),
 * captured at the read/write-family syscalls with tracepoints
 * (bpf/src/sockdata.bpf.c). It complements TlsSensor: TLS connections are
 * recognised in the kernel and left to it.
 *
 * Only connections whose first bytes look like HTTP reach user space; the
 * verdict is taken once per socket in the kernel. Records have the same shape
 * and semantics as TlsSensor's (seq, offset, gap, chunking), so they feed
 * HttpPipeline as they are:
 *
 *     const sensor = new PlainSocketSensor()
 *     const pipeline = new HttpPipeline({ scheme: 'http' })
 *     sensor.on('record', (r) => pipeline.push(r))
 *     sensor.on('close', (c) => pipeline.closeConnection(c.conn, c.lostBytes))
 *
 * Costs: every read/write/send/recv(msg)/readv/writev on the machine runs two
 * small BPF programs (enter: pid filter and fd -> socket lookup; exit: one
 * hash lookup); calls on recognised HTTP sockets also copy their bytes.
 * bench/plain/overhead.ts measures it.
 */
import { codecForType } from '../../btf/index.js'
import type { Codec } from '../../codec.js'
import { Collection } from '../../collection.js'
import { InvalidArgumentError } from '../../errors.js'
import type { Link } from '../../link.js'
import { bundledObject } from '../../probes.js'
import { CollectionSpec } from '../../spec.js'
import { captureLimits, configureCapture, fillPidFilter } from '../capture/config.js'
import { CAPTURE_COUNTER_NAMES, newCaptureStats, type CaptureKernelCounters, type CaptureStats } from '../capture/counters.js'
import { CaptureReader, type CaptureEvents, type CaptureGapEvent } from '../capture/reader.js'
import { CaptureSensor } from '../capture/sensor.js'
import { PlainRecordDecoder, type PlainCloseEvent, type PlainRecord, type RawSockEvent } from './record.js'

export interface PlainSocketSensorOptions {
  /** capture only these processes (default: all but the agent itself) */
  pids?: number[]
  /** capture only processes whose main thread's comm (15 bytes) is exactly this (Node 24 names its main thread, so its processes are "MainThread", not "node") */
  comm?: string
  /** capture only sockets whose local or remote port is one of these (default: any port) */
  ports?: number[]
  /** more processes never to capture (the agent itself never is) */
  excludePids?: number[]
  /** bytes captured per syscall; the rest is counted and reported as a gap (default 1 MiB, min 4 KiB) */
  maxBytesPerCall?: number
  /** ring buffer size in bytes, a power of two (default 32 MiB) */
  ringBytes?: number
  /**
   * The BPF side wakes the reader only when this many unread bytes pile up
   * (default min(1 MiB, ringBytes / 4); 0 = on every record). Records below
   * the threshold are read by a timer every flushIntervalMs.
   */
  wakeupBytes?: number
  /** read the ring at least this often, ms (default 20): the latency bound for light traffic */
  flushIntervalMs?: number
}

/** Per-reason counters kept by the BPF program (summed over CPUs). */
export interface PlainKernelCounters extends CaptureKernelCounters {
  /** sockets whose state could not be stored (not captured) */
  connFull: number
  /** syscalls whose per-thread state could not be stored (not captured) */
  callFull: number
  /** connections recognised as HTTP/1 */
  http1Connections: number
  /** connections recognised as HTTP/2 (prior-knowledge preface) */
  http2Connections: number
  /** connections left alone because they carry TLS */
  tlsConnections: number
  /** connections given up as not HTTP */
  otherConnections: number
  /** bytes of recognised connections that went by before recognition (joined mid-stream; reported as gaps) */
  joinedBytes: number
  /** MSG_PEEK reads skipped (their bytes are captured when read for real) */
  peeks: number
  /** close records emitted */
  closes: number
}

const COUNTER_NAMES: (keyof PlainKernelCounters)[] = [
  ...CAPTURE_COUNTER_NAMES,
  'connFull',
  'callFull',
  'http1Connections',
  'http2Connections',
  'tlsConnections',
  'otherConnections',
  'joinedBytes',
  'peeks',
  'closes',
]

export interface PlainStats extends CaptureStats<PlainKernelCounters> {
  /**
   * connections whose kernel state was lost (LRU eviction under more than 65 536 active TCP
   * sockets) and restarted at seq 0: continued under a new connection key
   */
  restarts: number
}

export type PlainGapEvent = CaptureGapEvent

export type PlainSocketSensorEvents = CaptureEvents<PlainRecord, PlainCloseEvent>

/** The syscalls hooked: each has an enter program of its own; one exit program serves all. */
const SYSCALLS = ['write', 'read', 'sendto', 'recvfrom', 'writev', 'readv', 'sendmsg', 'recvmsg'] as const
export const DEFAULT_PLAIN_MAX_BYTES_PER_CALL = 1 << 20
export const MIN_PLAIN_MAX_BYTES_PER_CALL = 4096
export const DEFAULT_PLAIN_RING_BYTES = 32 << 20

export class PlainSocketSensor extends CaptureSensor<PlainSocketSensorEvents, PlainKernelCounters> {
  readonly stats: PlainStats
  readonly #collection: Collection
  readonly #links: Link[] = []

  constructor(options: PlainSocketSensorOptions = {}) {
    super()
    const limits = captureLimits(options, {
      maxBytesPerCall: DEFAULT_PLAIN_MAX_BYTES_PER_CALL,
      minMaxBytesPerCall: MIN_PLAIN_MAX_BYTES_PER_CALL,
      ringBytes: DEFAULT_PLAIN_RING_BYTES,
    })
    for (const p of [...(options.pids ?? []), ...(options.excludePids ?? [])]) {
      if (!Number.isInteger(p) || p <= 0 || p > 0xffffffff) throw new InvalidArgumentError(`invalid pid ${p}`)
    }
    for (const p of options.ports ?? []) {
      if (!Number.isInteger(p) || p <= 0 || p > 65535) throw new InvalidArgumentError(`invalid port ${p}`)
    }
    if (options.ports && options.ports.length > 1024) throw new InvalidArgumentError('at most 1024 ports')
    if (options.pids && options.pids.length > 16000) throw new InvalidArgumentError('at most 16000 pids')
    const flushMs = options.flushIntervalMs ?? 20
    if (!Number.isFinite(flushMs) || flushMs <= 0) throw new InvalidArgumentError(`flushIntervalMs must be > 0, got ${flushMs}`)

    this.stats = newCaptureStats(COUNTER_NAMES, { restarts: 0 })

    const spec = CollectionSpec.fromFile(bundledObject('sockdata.bpf.o'))
    configureCapture(spec, 'sock_events', limits, { onlyListedPids: options.pids !== undefined, comm: options.comm })
    spec.variables.must('ports_filter_on').set(options.ports ? 1 : 0)
    this.#collection = new Collection(spec)
    try {
      fillPidFilter(this.#collection.map<number, number>('sock_pids'), options.pids, options.excludePids)
      const portMap = this.#collection.map<number, number>('sock_ports')
      for (const p of options.ports ?? []) portMap.update(p, 1)

      const codec = codecForType<RawSockEvent>(spec.btf!, 'sock_event') as Codec<RawSockEvent>
      const decoder = new PlainRecordDecoder(codec)
      this.reader = new CaptureReader<RawSockEvent, PlainRecord, PlainCloseEvent, PlainKernelCounters>({
        collection: this.#collection,
        ring: 'sock_events',
        counters: 'sock_counters',
        counterNames: COUNTER_NAMES,
        stats: this.stats,
        sink: this,
        decoding: {
          codec,
          close: (raw) => decoder.close(raw),
          connKey: (raw) => {
            const key = decoder.keyFor(raw)
            this.stats.restarts = decoder.restarts
            return key
          },
          record: (raw, data, conn) => decoder.record(raw, data, conn),
        },
      })

      // exits and the close hook first: an enter never saves state that no exit would consume
      const exit = this.#collection.program('sd_exit')
      for (const s of SYSCALLS) this.#links.push(exit.attachTracepoint('syscalls', `sys_exit_${s}`))
      this.#links.push(this.#collection.program('sd_state').attachTracepoint('sock', 'inet_sock_set_state'))
      this.#links.push(this.#collection.program('sd_thread_exit').attachTracepoint('sched', 'sched_process_exit'))
      for (const s of SYSCALLS) this.#links.push(this.#collection.program(`sd_enter_${s}`).attachTracepoint('syscalls', `sys_enter_${s}`))
    } catch (err) {
      this.teardown()
      throw err
    }
    this.reader.start(flushMs)
  }

  protected teardown(): void {
    this.closed = true
    for (const l of this.#links) l.close()
    this.#links.length = 0
    this.reader?.close()
    this.#collection.close()
  }
}
