/**
 * Ring-buffer consumer (BPF_MAP_TYPE_RINGBUF, kernel 5.8+).
 *
 * The addon watches the map fd with a uv_poll handle on the Node event loop
 * (no thread, no timer), copies each wake-up's records into one reusable
 * buffer, and makes one JS call per batch. Three ways to consume:
 *  - onBatch()/'batch': a RecordBatch view; walk records with no allocation;
 *  - 'data': one decoded object per record (codec) or a Uint8Array copy
 *    (create the listener once: the decoding loop is shared per codec, and a
 *    new closure for every ring makes V8 stop inlining it; docs/decisions.md);
 *  - for await: decoded records with backpressure.
 *
 * Backpressure policy (for await): at most `highWaterMark` records (plus the
 * batch in flight) wait in user space. When the queue is full the SDK stops
 * reading: records stay in the kernel ring, and when that fills the BPF
 * program's reservations fail and are counted in the kernel (`lost`). Nothing
 * is dropped in user space without being counted in `stats`.
 */
import { EventEmitter } from 'eventemitter3'
import type { NativeRingReader } from '@bpfkit/native'
import type { Codec } from './codec.js'
import { BpfError, InvalidArgumentError } from './errors.js'
import type { BpfMap } from './map.js'
import { native, toBpfError } from './native.js'
import { Resource } from './resource.js'

/** A batch of records, valid only during the callback that receives it. */
export class RecordBatch {
  /** number of records */
  count = 0
  /** DataView over the shared buffer; record i starts at offset(i) */
  view: DataView
  /** the same bytes as a Uint8Array */
  bytes: Uint8Array
  /** pairs (offset, length) per record */
  offsets: Uint32Array
  /** the size of every record when they all have one size (record i then starts at i * round_up(size, 8)), else 0 */
  sameSize = 0

  /** @internal `buffer` is the reader's [offsets | data] buffer (see NativeRingReader). */
  constructor(buffer: ArrayBuffer, dataOffset: number) {
    this.view = new DataView(buffer, dataOffset)
    this.bytes = new Uint8Array(buffer, dataOffset)
    this.offsets = new Uint32Array(buffer, 0, dataOffset / 4)
  }

  /** Byte offset of record i in `view`/`bytes`. */
  offset(i: number): number {
    return this.offsets[2 * i]!
  }

  /** Length in bytes of record i. */
  length(i: number): number {
    return this.offsets[2 * i + 1]!
  }

  /** Decodes record i (throws InvalidArgumentError when it is shorter than the codec). */
  decode<T>(i: number, codec: Codec<T>): T {
    if (this.offsets[2 * i + 1]! < codec.size) {
      throw new InvalidArgumentError(`record ${i} is ${this.length(i)} bytes, codec needs ${codec.size}`)
    }
    return codec.decode(this.view, this.offsets[2 * i]!)
  }

  /** A copy of record i's bytes (allocates; for keeping records after the callback). */
  copy(i: number): Uint8Array {
    const o = this.offsets[2 * i]!
    return this.bytes.slice(o, o + this.offsets[2 * i + 1]!)
  }
}

/** Where a BPF program counts the records it could not reserve (see bpf/include/bpfkit.h). */
export interface LostCounter {
  /** an array or per-CPU array map of u64 counters */
  map: BpfMap
  /** index of the counter (default 0) */
  key?: number
}

export interface RingBufferOptions<T> {
  /** decodes records for 'data' and for await; default: Uint8Array copies */
  codec?: Codec<T>
  /**
   * kernel-side reservation-failure counter, reported as `lost`: read after
   * each consume(), and while polling whenever the ring has been drained, at
   * most every `lostCheckIntervalMs` (a trailing check follows a skipped one)
   */
  lost?: LostCounter
  /** least time between two reads of the `lost` counter while polling (default 50 ms) */
  lostCheckIntervalMs?: number
  /** most decoded records queued for a slow `for await` consumer (default 4096) */
  highWaterMark?: number
  /** initial size of the reusable copy buffer (default 4 MiB); grows for records larger than it */
  bufferSize?: number
  /** most records per batch callback (default 65536) */
  maxRecordsPerBatch?: number
  /** most batches per event-loop wake-up, so bursts cannot starve the loop (default 16) */
  maxBatchesPerWake?: number
  /** keep the process alive while the ring is open (default false: like an unref'd socket) */
  ref?: boolean
}

export interface RingBufferStats {
  records: number
  batches: number
  /** reservations the BPF program counted as failed (ring full) */
  lost: number
  /** records shorter than the codec: emitted as 'error', not decoded */
  malformed: number
  /** decoded records discarded because a for-await loop ended early */
  discarded: number
}

export interface RingBufferEvents<T> {
  data: [record: T]
  batch: [batch: RecordBatch]
  lost: [info: { count: number; total: number }]
  error: [error: Error]
  close: []
}

export class RingBuffer<T = Uint8Array> extends Resource {
  readonly map: string
  readonly size: number
  readonly stats: RingBufferStats = { records: 0, batches: 0, lost: 0, malformed: 0, discarded: 0 }
  readonly #events = new EventEmitter<RingBufferEvents<T>>()
  readonly #reader: NativeRingReader
  readonly #codec: Codec<T> | undefined
  readonly #lost: LostCounter | undefined
  readonly #highWaterMark: number
  #batch: RecordBatch | undefined
  #buffer: ArrayBuffer | undefined
  readonly #dataOffset: number
  readonly #lostCheckIntervalMs: number
  #lastLostCheck = 0
  #lostTimer: ReturnType<typeof setTimeout> | undefined
  #batchHandlers: ((batch: RecordBatch) => void)[] = []
  /**
   * Snapshots of the 'data' and 'batch' listeners, replaced on on()/off(): the
   * per-batch path reads these instead of asking the emitter (a keyed lookup
   * that goes megamorphic, plus a new array per call, on every batch).
   */
  #dataListeners: ((record: T) => void)[] = []
  #batchListeners: ((batch: RecordBatch) => void)[] = []
  #queue: T[] = []
  #waiter: ((r: IteratorResult<T>) => void) | undefined
  #iterating = false
  #polling = false
  #userPaused = false
  #backpressured = false
  /** the user asked to keep the loop alive (option or ref()) */
  #userRef = false
  #refd = false
  /** the per-record loop compiled for this ring's codec (see deliverLoopFor) */
  readonly #deliverLoop: DeliverLoop
  #fanOut: ((value: T) => void) | undefined
  #fanOutListeners: readonly ((r: T) => void)[] = NO_LISTENERS

  constructor(map: BpfMap, options: RingBufferOptions<T> = {}) {
    if (map.type !== 'ringbuf') throw new InvalidArgumentError(`map '${map.name}' is a ${map.type} map, not a ringbuf`)
    const codec = options.codec
    if (codec !== undefined && (typeof codec !== 'object' || codec === null || typeof codec.decode !== 'function' || !Number.isInteger(codec.size) || codec.size < 0)) {
      // checked here: a bad size would make every record "long enough" and decode garbage
      throw new InvalidArgumentError(`codec for ring buffer '${map.name}' must be an object with an integer size >= 0 and a decode(view, offset) function`)
    }
    const n = native()
    let reader: NativeRingReader
    try {
      reader = new n.NativeRingReader(map.fd, (count, buffer, drained, sameSize) => this.#onBatch(count, buffer, drained, sameSize), {
        bufferSize: options.bufferSize,
        maxRecordsPerBatch: options.maxRecordsPerBatch,
        maxBatchesPerWake: options.maxBatchesPerWake,
      })
    } catch (err) {
      throw toBpfError(err, { action: `open ring buffer '${map.name}'`, capability: 'CAP_BPF' })
    }
    super(`ring buffer '${map.name}'`, () => reader.close())
    this.#reader = reader
    this.map = map.name
    this.size = reader.size
    this.#dataOffset = reader.dataOffset
    this.#lostCheckIntervalMs = Math.max(0, options.lostCheckIntervalMs ?? 50)
    this.#codec = options.codec
    this.#deliverLoop = deliverLoopFor(options.codec)
    this.#lost = options.lost
    this.#highWaterMark = Math.max(1, options.highWaterMark ?? 4096)
    this.#userRef = !!options.ref
    this.#syncRef()
  }

  /** Subscribe to events; 'data' and 'batch' listeners start reading. */
  on<E extends keyof RingBufferEvents<T>>(event: E, fn: (...args: RingBufferEvents<T>[E]) => void): this {
    this.#events.on(event, fn as never)
    this.#snapshotListeners()
    if (event === 'data' || event === 'batch') this.#startPolling()
    return this
  }

  off<E extends keyof RingBufferEvents<T>>(event: E, fn: (...args: RingBufferEvents<T>[E]) => void): this {
    this.#events.off(event, fn as never)
    this.#snapshotListeners()
    return this
  }

  #snapshotListeners(): void {
    this.#dataListeners = this.#events.listeners('data') as ((record: T) => void)[]
    this.#batchListeners = this.#events.listeners('batch') as ((batch: RecordBatch) => void)[]
  }

  /** Zero-copy consumption: `fn` gets every batch; walk it without allocating. */
  onBatch(fn: (batch: RecordBatch) => void): this {
    this.#batchHandlers.push(fn)
    this.#startPolling()
    return this
  }

  /** Stops reading (records wait in the kernel ring) until resume(). */
  pause(): void {
    this.#userPaused = true
    this.#updatePolling()
  }

  resume(): void {
    this.#userPaused = false
    this.#updatePolling()
  }

  /** Keeps the event loop alive while this ring is open. */
  ref(): void {
    this.#userRef = true
    this.#syncRef()
  }

  unref(): void {
    this.#userRef = false
    this.#syncRef()
  }

  /** Ref'd while the user wants it, or while a `for await` is waiting (else the loop could exit under it). */
  #syncRef(): void {
    if (this.closed) return
    const want = this.#userRef || this.#waiter !== undefined
    if (want === this.#refd) return
    this.#refd = want
    if (want) this.#reader.ref()
    else this.#reader.unref()
  }

  /**
   * Drains synchronously, delivering to the current consumers; returns the
   * number of records delivered. Useful before close() and in benchmarks.
   */
  consume(maxRecords?: number): number {
    this.assertOpen()
    let n: number
    try {
      n = maxRecords === undefined ? this.#reader.consume() : this.#reader.consume(maxRecords)
    } catch (err) {
      throw toBpfError(err, { action: `consume ring buffer '${this.map}'` })
    }
    this.refreshLost()
    return n
  }

  /** Bytes committed by producers and not read yet. */
  available(): number {
    this.assertOpen()
    return this.#reader.available()
  }

  /** Reads the kernel-side lost counter now; emits 'lost' if it grew. Returns the total. */
  refreshLost(): number {
    if (!this.#lost || this.closed) return this.stats.lost
    this.#lastLostCheck = performance.now()
    const { map, key = 0 } = this.#lost
    let total = 0
    const v = map.lookup(key)
    for (const x of Array.isArray(v) ? v : [v]) total += toNumber(x)
    if (total > this.stats.lost) {
      const count = total - this.stats.lost
      this.stats.lost = total
      this.#events.emit('lost', { count, total })
    }
    return total
  }

  /** Decoded records with backpressure (see the module doc for the policy). */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.#iterating) throw new BpfError('this ring buffer already has a for-await consumer', { code: 'EBUSY' })
    this.#iterating = true
    this.#startPolling()
    return {
      next: () => {
        const item = this.#queue.shift()
        if (item !== undefined) {
          this.#updatePolling()
          return Promise.resolve({ value: item, done: false })
        }
        if (this.closed) return Promise.resolve({ value: undefined, done: true })
        return new Promise((resolve) => {
          this.#waiter = resolve
          this.#syncRef()
        })
      },
      return: () => {
        this.stats.discarded += this.#queue.length
        this.#queue = []
        this.#iterating = false
        this.#updatePolling()
        return Promise.resolve({ value: undefined, done: true })
      },
    }
  }

  protected release(): void {
    clearTimeout(this.#lostTimer)
    try {
      this.refreshLost()
    } catch {
      // the counter map may already be closed; the last figure stays in stats
    }
    this.#reader.close()
    this.#polling = false
    const waiter = this.#waiter
    this.#waiter = undefined
    waiter?.({ value: undefined, done: true })
    this.#events.emit('close')
  }

  #onBatch(count: number, buffer: ArrayBuffer, drained: boolean, sameSize: number): void {
    if (buffer !== this.#buffer || !this.#batch) {
      this.#buffer = buffer
      this.#batch = new RecordBatch(buffer, this.#dataOffset)
    }
    const batch = this.#batch
    batch.count = count
    batch.sameSize = sameSize
    this.stats.records += count
    this.stats.batches++
    for (const h of this.#batchHandlers) h(batch)
    for (const h of this.#batchListeners) h(batch)
    if (this.#dataListeners.length > 0 || this.#iterating) this.#deliverRecords(batch)
    if (drained && this.#lost) this.#checkLost()
  }

  /**
   * Reads the kernel's lost counter after a drain, at most every
   * lostCheckIntervalMs (it is a syscall); a skipped check is made up by a
   * trailing timer, so a loss is reported within that interval.
   */
  #checkLost(): void {
    const wait = this.#lastLostCheck + this.#lostCheckIntervalMs - performance.now()
    if (wait <= 0) {
      this.refreshLost()
    } else if (!this.#lostTimer) {
      this.#lostTimer = setTimeout(() => {
        this.#lostTimer = undefined
        try {
          this.refreshLost()
        } catch (err) {
          this.#events.emit('error', err as Error)
        }
      }, wait)
      this.#lostTimer.unref()
    }
  }

  /** Hot path: one decode and one listener call per record, nothing else allocated. */
  #deliverRecords(batch: RecordBatch): void {
    // The listener snapshot is read once per batch and called directly (no emit() per record).
    const listeners = this.#dataListeners
    let sink: (value: T) => void
    if (listeners.length === 1 && !this.#iterating) sink = listeners[0]!
    else sink = (this.#fanOut ??= (value: T) => this.#fanOutRecord(value))
    this.#fanOutListeners = listeners
    const { offsets, view, bytes, count, sameSize } = batch
    this.#deliverLoop(view, bytes, offsets, count, sameSize, this.#codec, sink, this.#onMalformed)
    this.#fanOutListeners = NO_LISTENERS
    this.#updatePolling()
  }

  #fanOutRecord(value: T): void {
    for (const fn of this.#fanOutListeners) fn(value)
    if (this.#iterating) this.#enqueue(value)
  }

  readonly #onMalformed = (len: number, size: number): void => this.#malformed(len, size)

  #malformed(len: number, size: number): void {
    this.stats.malformed++
    this.#events.emit('error', new InvalidArgumentError(`ring '${this.map}': record of ${len} bytes is shorter than the ${size}-byte codec`))
  }

  #enqueue(value: T): void {
    const waiter = this.#waiter
    if (waiter) {
      this.#waiter = undefined
      this.#syncRef()
      waiter({ value, done: false })
    } else {
      this.#queue.push(value)
    }
  }

  #startPolling(): void {
    this.assertOpen()
    this.#updatePolling()
  }

  /** Polls while someone consumes, nobody paused, and the for-await queue has room. */
  #updatePolling(): void {
    if (this.closed) return
    this.#backpressured = this.#iterating && this.#queue.length >= this.#highWaterMark
    const hasConsumer =
      this.#batchHandlers.length > 0 || this.#dataListeners.length > 0 || this.#batchListeners.length > 0 || this.#iterating
    const want = hasConsumer && !this.#userPaused && !this.#backpressured
    if (want === this.#polling) return
    this.#polling = want
    if (want) this.#reader.start()
    else this.#reader.stop()
  }
}

/** Shared empty listener list (the per-batch path allocates nothing). */
const NO_LISTENERS: readonly never[] = Object.freeze([])

/** Decodes (or copies) each record of a batch and hands it to `sink`. */
type DeliverLoop = typeof deliverLoop

/** One compiled loop per codec (and one for plain copies), shared by every ring that uses it. */
const loopsByCodec = new WeakMap<object, DeliverLoop>()
const copyKey = {}
let loopSerial = 0

/**
 * Returns the per-record loop for `codec`. V8 keeps type feedback per
 * function: with one shared loop, every ring's codec and listener would meet
 * at the same two call sites, which turn megamorphic as soon as a process
 * consumes several rings (each sensor has its own), and decoding then costs
 * several times more. So each codec gets its own copy of the loop, compiled
 * from source with a unique comment (identical sources would share one
 * function and its feedback through V8's compilation cache). The copy is
 * cached: a new ring with a codec seen before starts with an optimised loop
 * instead of paying the JIT warm-up again (the first 64K records of a cold
 * loop cost ~5x more). Falls back to the shared function where code
 * generation from strings is disallowed.
 */
function deliverLoopFor(codec: object | undefined): DeliverLoop {
  const key = codec ?? copyKey
  let loop = loopsByCodec.get(key)
  if (!loop) {
    try {
      loop = new Function(`/* ring delivery loop ${++loopSerial} */ return ${deliverLoop.toString()}`)() as DeliverLoop
    } catch {
      loop = deliverLoop
    }
    loopsByCodec.set(key, loop)
  }
  return loop
}

/** The loop itself. Self-contained (no outer references): deliverLoopFor compiles copies of its source. */
function deliverLoop<T>(
  view: DataView,
  bytes: Uint8Array,
  offsets: Uint32Array,
  count: number,
  sameSize: number,
  codec: Codec<T> | undefined,
  sink: (value: T) => void,
  malformed: (len: number, size: number) => void,
): void {
  if (codec === undefined) {
    for (let i = 0; i < count; i++) {
      const off = offsets[2 * i]!
      sink(bytes.slice(off, off + offsets[2 * i + 1]!) as unknown as T)
    }
    return
  }
  const size = codec.size
  if (sameSize !== 0 && sameSize >= size) {
    // Records of one size, long enough: walk by stride, with no offsets to read and no
    // length to check per record (a quarter of the per-record work with a small codec).
    const stride = (sameSize + 7) & ~7
    for (let off = 0, end = count * stride; off < end; off += stride) sink(codec.decode(view, off))
    return
  }
  for (let i = 0; i < count; i++) {
    const off = offsets[2 * i]!
    const len = offsets[2 * i + 1]!
    if (len < size) malformed(len, size)
    else sink(codec.decode(view, off))
  }
}

function toNumber(x: unknown): number {
  if (typeof x === 'number') return x
  if (typeof x === 'bigint') return Number(x)
  if (x instanceof Uint8Array && x.length >= 8) return Number(Buffer.from(x).readBigUInt64LE(0))
  return 0
}
