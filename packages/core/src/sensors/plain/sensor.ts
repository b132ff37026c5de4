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
import { EventEmitter } from 'eventemitter3'
import { codecForType } from '../../btf/index.js'
import type { Codec } from '../../codec.js'
import { Collection } from '../../collection.js'
import { InvalidArgumentError } from '../../errors.js'
import type { Link } from '../../link.js'
import { bundledObject } from '../../probes.js'
import type { RecordBatch, RingBuffer } from '../../ringbuf.js'
import { CollectionSpec } from '../../spec.js'
import { PlainRecordDecoder, SOCK_F_CLOSE, type PlainCloseEvent, type PlainRecord, type RawSockEvent } from './record.js'

export interface PlainSocketSensorOptions {
  /** capture only these processes (default: all but the agent itself) */
  pids?: number[]
  /** capture only processes whose main thread's comm (15 bytes) is exactly this */
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
export interface PlainKernelCounters {
  /** syscalls on recognised connections that moved data and were emitted */
  calls: number
  /** records submitted */
  records: number
  ringFullRecords: number
  ringFullBytes: number
  /** bytes beyond maxBytesPerCall */
  capBytes: number
  /** chunks whose user memory (or iovec array) could not be read */
  faultRecords: number
  faultBytes: number
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
  'calls',
  'records',
  'ringFullRecords',
  'ringFullBytes',
  'capBytes',
  'faultRecords',
  'faultBytes',
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

export interface PlainStats {
  /** records delivered as 'record' events */
  records: number
  /** bytes delivered */
  bytes: number
  /** records that carried a gap */
  gaps: number
  /** bytes reported missing by those gaps (plus trailing losses reported at close) */
  gapBytes: number
  /** ring reservations that failed (records the kernel could not queue) */
  lostRecords: number
  /** ring records too short to decode */
  malformed: number
  closes: number
  /**
   * connections whose kernel state was lost (LRU eviction under more than 65 536 active TCP
   * sockets) and restarted at seq 0: continued under a new connection key
   */
  restarts: number
  /** counters of the BPF side, as of the last refreshStats()/flush() (refreshed every second) */
  kernel: PlainKernelCounters
}

export interface PlainGapEvent {
  pid: number
  conn: string
  direction: 'egress' | 'ingress'
  /** bytes missing just before the record with this seq */
  bytes: number
  seq: number
  offset: number
}

export interface PlainSocketSensorEvents {
  record: [PlainRecord]
  close: [PlainCloseEvent]
  gap: [PlainGapEvent]
  lost: [{ count: number; total: number }]
  error: [Error]
}

/** The syscalls hooked: each has an enter program of its own; one exit program serves all. */
const SYSCALLS = ['write', 'read', 'sendto', 'recvfrom', 'writev', 'readv', 'sendmsg', 'recvmsg'] as const
export const DEFAULT_PLAIN_MAX_BYTES_PER_CALL = 1 << 20
export const MIN_PLAIN_MAX_BYTES_PER_CALL = 4096
export const DEFAULT_PLAIN_RING_BYTES = 32 << 20

export class PlainSocketSensor extends EventEmitter<PlainSocketSensorEvents> {
  readonly stats: PlainStats
  readonly #collection: Collection
  readonly #ring: RingBuffer<Uint8Array>
  readonly #decoder: PlainRecordDecoder
  readonly #links: Link[] = []
  readonly #statsTimer: NodeJS.Timeout
  readonly #flushTimer: NodeJS.Timeout
  #closed = false

  constructor(options: PlainSocketSensorOptions = {}) {
    super()
    const maxBytes = options.maxBytesPerCall ?? DEFAULT_PLAIN_MAX_BYTES_PER_CALL
    if (!Number.isInteger(maxBytes) || maxBytes < MIN_PLAIN_MAX_BYTES_PER_CALL || maxBytes > 0xffffffff) {
      throw new InvalidArgumentError(`maxBytesPerCall must be an integer from ${MIN_PLAIN_MAX_BYTES_PER_CALL} to 2^32-1, got ${maxBytes}`)
    }
    const ringBytes = options.ringBytes ?? DEFAULT_PLAIN_RING_BYTES
    if (!Number.isInteger(ringBytes) || ringBytes < 4096 || (ringBytes & (ringBytes - 1)) !== 0) {
      throw new InvalidArgumentError(`ringBytes must be a power of two of at least 4096, got ${ringBytes}`)
    }
    const wakeupBytes = options.wakeupBytes ?? Math.min(1 << 20, ringBytes / 4)
    if (!Number.isInteger(wakeupBytes) || wakeupBytes < 0 || wakeupBytes >= ringBytes) {
      throw new InvalidArgumentError(`wakeupBytes must be an integer from 0 to ringBytes-1, got ${wakeupBytes}`)
    }
    if (options.comm !== undefined && (options.comm.length === 0 || Buffer.byteLength(options.comm) > 15)) {
      throw new InvalidArgumentError(`comm must be 1 to 15 bytes, got ${JSON.stringify(options.comm)}`)
    }
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

    this.stats = {
      records: 0,
      bytes: 0,
      gaps: 0,
      gapBytes: 0,
      lostRecords: 0,
      malformed: 0,
      closes: 0,
      restarts: 0,
      kernel: Object.fromEntries(COUNTER_NAMES.map((n) => [n, 0])) as unknown as PlainKernelCounters,
    }

    const spec = CollectionSpec.fromFile(bundledObject('sockdata.bpf.o'))
    spec.variables.must('max_bytes_per_call').set(maxBytes)
    spec.variables.must('only_listed_pids').set(options.pids ? 1 : 0)
    spec.variables.must('ports_filter_on').set(options.ports ? 1 : 0)
    spec.variables.must('wakeup_bytes').set(BigInt(wakeupBytes))
    if (options.comm !== undefined) {
      spec.variables.must('comm_filter_on').set(1)
      const comm = Buffer.alloc(16)
      comm.write(options.comm)
      spec.variables.must('comm_filter').set(comm)
    }
    spec.maps.must('sock_events').maxEntries = ringBytes
    this.#collection = new Collection(spec)
    try {
      const pidMap = this.#collection.map<number, number>('sock_pids')
      for (const p of options.pids ?? []) if (p !== process.pid) pidMap.update(p, 1)
      for (const p of [process.pid, ...(options.excludePids ?? [])]) pidMap.update(p, 2)
      const portMap = this.#collection.map<number, number>('sock_ports')
      for (const p of options.ports ?? []) portMap.update(p, 1)

      const codec = codecForType<RawSockEvent>(spec.btf!, 'sock_event') as Codec<RawSockEvent>
      this.#decoder = new PlainRecordDecoder(codec)
      this.#ring = this.#collection.ringBuffer<Uint8Array>('sock_events')
      this.#ring.on('lost', (l) => {
        this.stats.lostRecords = l.total
        this.emit('lost', l)
      })
      this.#ring.on('error', (e) => this.emit('error', e))
      this.#ring.onBatch((b) => this.#onBatch(b))

      // exits and the close hook first: an enter never saves state that no exit would consume
      const exit = this.#collection.program('sd_exit')
      for (const s of SYSCALLS) this.#links.push(exit.attachTracepoint('syscalls', `sys_exit_${s}`))
      this.#links.push(this.#collection.program('sd_state').attachTracepoint('sock', 'inet_sock_set_state'))
      this.#links.push(this.#collection.program('sd_thread_exit').attachTracepoint('sched', 'sched_process_exit'))
      for (const s of SYSCALLS) this.#links.push(this.#collection.program(`sd_enter_${s}`).attachTracepoint('syscalls', `sys_enter_${s}`))
    } catch (err) {
      this.#teardown()
      throw err
    }
    this.#statsTimer = setInterval(() => this.refreshStats(), 1000)
    this.#statsTimer.unref()
    this.#flushTimer = setInterval(() => {
      if (!this.#closed) this.#ring.consume()
    }, flushMs)
    this.#flushTimer.unref()
  }

  /** Delivers what is in the ring now (synchronously) and refreshes stats. */
  flush(): void {
    if (this.#closed) return
    this.#ring.consume()
    this.refreshStats()
  }

  /** Reads the BPF counters into stats.kernel. */
  refreshStats(): PlainKernelCounters {
    if (this.#closed) return this.stats.kernel
    try {
      const m = this.#collection.map<number, bigint | bigint[]>('sock_counters')
      COUNTER_NAMES.forEach((name, i) => {
        const v = m.lookup(i)
        let total = 0n
        for (const x of Array.isArray(v) ? v : [v ?? 0n]) total += BigInt(x as bigint)
        this.stats.kernel[name] = Number(total)
      })
      this.#ring.refreshLost()
      this.stats.lostRecords = this.#ring.stats.lost
    } catch (err) {
      this.emit('error', err as Error)
    }
    return this.stats.kernel
  }

  /** Keeps the event loop alive while the sensor runs (it does not by default). */
  ref(): this {
    this.#ring.ref()
    return this
  }

  /** Delivers pending records, then detaches everything. */
  close(): void {
    if (this.#closed) return
    try {
      this.flush()
    } catch {
      // closing anyway
    }
    this.#closed = true
    clearInterval(this.#statsTimer)
    clearInterval(this.#flushTimer)
    this.#teardown()
  }

  [Symbol.dispose](): void {
    this.close()
  }

  #teardown(): void {
    this.#closed = true
    for (const l of this.#links) l.close()
    this.#links.length = 0
    this.#ring?.close()
    this.#collection.close()
  }

  #onBatch(batch: RecordBatch): void {
    const codec = this.#decoder.codec
    const hdr = codec.size
    const wantRecords = this.listenerCount('record') > 0
    for (let i = 0; i < batch.count; i++) {
      const off = batch.offset(i)
      const len = batch.length(i)
      if (len < hdr) {
        this.stats.malformed++
        continue
      }
      const raw = codec.decode(batch.view, off)
      if (raw.flags & SOCK_F_CLOSE) {
        const ev = this.#decoder.close(raw)
        this.stats.closes++
        if (ev.lostBytes > 0) this.stats.gapBytes += ev.lostBytes
        this.emit('close', ev)
        continue
      }
      if (raw.len > len - hdr) {
        this.stats.malformed++
        continue
      }
      this.stats.records++
      this.stats.bytes += raw.len
      const before = this.#decoder.restarts
      const conn = this.#decoder.keyFor(raw)
      this.stats.restarts += this.#decoder.restarts - before
      if (raw.gap > 0n) {
        const gap = Number(raw.gap)
        this.stats.gaps++
        this.stats.gapBytes += gap
        this.emit('gap', {
          pid: raw.pid,
          conn,
          direction: raw.dir === 1 ? 'ingress' : 'egress',
          bytes: gap,
          seq: Number(raw.seq),
          offset: Number(raw.stream_off),
        })
      }
      // the data is copied out of the reused batch buffer only for someone who wants it
      if (wantRecords) this.emit('record', this.#decoder.record(raw, batch.bytes.slice(off + hdr, off + hdr + raw.len), conn))
    }
  }
}
