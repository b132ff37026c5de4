/**
 * Ring-buffer consumer (BPF_MAP_TYPE_RINGBUF, kernel 5.8+).
 *
 * The addon watches the map fd with a uv_poll handle on the Node event loop
 * (no thread, no timer) and calls JS once per wake-up. Records are never
 * copied: JS reads them in the ring's own memory (mapped read-only), and the
 * space goes back to the producers only after JS has read them. Three ways to
 * consume:
 *  - onBatch()/'batch': a RecordBatch view; walk records with no allocation
 *    (the addon notes where each record starts; a few hundred KiB per batch,
 *    so the records are still in the CPU cache when JS reads them);
 *  - 'data': one decoded object per record (codec) or a Uint8Array copy. With
 *    no batch consumer, JS walks the kernel's record headers itself while it
 *    decodes: one pass over memory, as libbpf's C callback makes (create the
 *    listener once: the decoding loop is compiled per codec, and a new closure
 *    for every ring makes V8 stop inlining it; docs/decisions.md);
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

/**
 * A batch of records, read in place in the ring: valid only during the
 * callback that receives it (afterwards producers write over it). `view` and
 * `bytes` span the ring's whole data area and are read-only memory: writing
 * to them kills the process (as writing through libbpf's `void *data` does in
 * C). Use copy(i) for bytes to keep or change.
 */
export class RecordBatch {
  /** number of records */
  count = 0
  /** DataView over the ring's data area (mapped twice, so no record wraps); record i starts at offset(i) */
  view: DataView
  /** the same bytes as a Uint8Array */
  bytes: Uint8Array
  /** pairs (offset, length) per record */
  offsets: Uint32Array
  /** the size of every record when they all have one size and sit back to back, else 0 */
  sameSize = 0
  /**
   * When sameSize is not 0: the distance from one record to the next,
   * round_up(sameSize + 8, 8) (the kernel's 8-byte header sits between
   * records); record i then starts at offset(0) + i * stride. Else 0.
   */
  stride = 0

  /** @internal */
  constructor(view: DataView, bytes: Uint8Array, offsets: Uint32Array) {
    this.view = view
    this.bytes = bytes
    this.offsets = offsets
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
  /** most records per batch (default 8192; a batch for RecordBatch consumers also stops after about 512 KiB) */
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
  /** the ring's data area as the addon mapped it (replaced if a user transfers it away) */
  #data: ArrayBuffer
  readonly #offsets: Uint32Array
  readonly #batch: RecordBatch
  /** [start, bytes, sameSize, drained], written by the addon's window() and fill() */
  readonly #cursor = new Float64Array(4)
  /** [where the walk got to, records], written by the window walk (see walkWindow) */
  readonly #walk = new Float64Array(2)
  readonly #maxRecordsPerBatch: number
  readonly #maxBatchesPerWake: number
  /** inside #drain: close() waits for it to finish the batch */
  #draining = false
  #closeAfterDrain = false
  /** the last batch read everything that was ready */
  #drained = false
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
  /** the per-record loops compiled for this ring's codec (see loopsFor) */
  readonly #loops: DeliveryLoops<T>
  #fanOut: ((value: T) => void) | undefined
  #fanOutListeners: readonly ((r: T) => void)[] = NO_LISTENERS

  constructor(map: BpfMap, options: RingBufferOptions<T> = {}) {
    if (map.type !== 'ringbuf') throw new InvalidArgumentError(`map '${map.name}' is a ${map.type} map, not a ringbuf`)
    const codec = options.codec
    if (codec !== undefined && (typeof codec !== 'object' || codec === null || typeof codec.decode !== 'function' || !Number.isInteger(codec.size) || codec.size < 0)) {
      // checked here: a bad size would make every record "long enough" and decode garbage
      throw new InvalidArgumentError(`codec for ring buffer '${map.name}' must be an object with an integer size >= 0 and a decode(view, offset) function`)
    }
    const maxRecordsPerBatch = options.maxRecordsPerBatch ?? 8192
    const maxBatchesPerWake = options.maxBatchesPerWake ?? 16
    if (!Number.isInteger(maxRecordsPerBatch) || maxRecordsPerBatch < 1 || maxRecordsPerBatch > 1 << 24) {
      throw new InvalidArgumentError(`maxRecordsPerBatch must be a whole number from 1 to ${1 << 24}, not ${maxRecordsPerBatch}`)
    }
    if (!Number.isInteger(maxBatchesPerWake) || maxBatchesPerWake < 1) {
      throw new InvalidArgumentError(`maxBatchesPerWake must be a whole number >= 1, not ${maxBatchesPerWake}`)
    }
    const n = native()
    let reader: NativeRingReader
    let data: ArrayBuffer
    try {
      reader = new n.NativeRingReader(map.fd, () => this.#drain(Infinity, this.#maxBatchesPerWake, true))
      data = reader.dataBuffer()
    } catch (err) {
      throw toBpfError(err, { action: `open ring buffer '${map.name}'`, capability: 'CAP_BPF' })
    }
    super(`ring buffer '${map.name}'`, () => reader.close())
    this.#reader = reader
    this.map = map.name
    this.size = reader.size
    this.#maxRecordsPerBatch = maxRecordsPerBatch
    this.#maxBatchesPerWake = maxBatchesPerWake
    this.#data = data
    this.#offsets = new Uint32Array(2 * maxRecordsPerBatch)
    this.#batch = new RecordBatch(new DataView(data), new Uint8Array(data), this.#offsets)
    this.#lostCheckIntervalMs = Math.max(0, options.lostCheckIntervalMs ?? 50)
    this.#codec = options.codec
    this.#loops = loopsFor(options.codec)
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
    if (maxRecords !== undefined && !(Number.isInteger(maxRecords) && maxRecords >= 0)) {
      throw new InvalidArgumentError(`consume(maxRecords): maxRecords must be a whole number >= 0, not ${maxRecords}`)
    }
    if (this.#draining) throw new BpfError(`consume() cannot be called from inside a callback of ring buffer '${this.map}'`, { code: 'EBUSY' })
    const n = this.#drain(maxRecords ?? Infinity, Infinity, false)
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
    if (this.#draining) {
      // close() from a listener: the batch in hand is finished first (its records are in the ring's memory)
      this.#reader.stop()
      this.#closeAfterDrain = true
      return
    }
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

  /**
   * Reads up to `maxRecords` records in at most `maxBatches` batches and
   * delivers them. Called once per poll wake-up (a few batches, so a burst
   * cannot starve the event loop) and by consume().
   */
  #drain(maxRecords: number, maxBatches: number, fromPoll: boolean): number {
    this.#draining = true
    let delivered = 0
    try {
      for (let b = 0; b < maxBatches && delivered < maxRecords; b++) {
        if (this.#closeAfterDrain || (fromPoll && !this.#polling)) break
        const limit = Math.min(maxRecords - delivered, this.#maxRecordsPerBatch)
        // 'data' and for-await alone: walk and decode in one pass; else the addon notes the records for a RecordBatch
        const walk = this.#batchHandlers.length === 0 && this.#batchListeners.length === 0 && (this.#dataListeners.length > 0 || this.#iterating)
        delivered += walk ? this.#readWindow(limit) : this.#readBatch(limit)
        if (this.#drained) break
      }
    } finally {
      this.#draining = false
      if (this.#closeAfterDrain) {
        this.#closeAfterDrain = false
        this.release()
      }
    }
    if (this.#drained && this.#lost && fromPoll && !this.closed) this.#checkLost()
    return delivered
  }

  /** A detached data buffer (a user transferred it) is replaced by a new one over the same memory. */
  #refreshViews(): void {
    if (this.#data.byteLength !== 0) return
    this.#data = this.#reader.dataBuffer()
    this.#batch.view = new DataView(this.#data)
    this.#batch.bytes = new Uint8Array(this.#data)
  }

  /** One RecordBatch: the addon notes the records, JS reads them, then their space goes back to producers. */
  #readBatch(limit: number): number {
    const cursor = this.#cursor
    const count = this.#reader.fill(this.#offsets, limit, cursor)
    const bytes = cursor[1]!
    this.#drained = cursor[3] === 1
    if (bytes === 0) return 0
    try {
      if (count > 0) {
        this.#refreshViews()
        const batch = this.#batch
        const sameSize = cursor[2]!
        batch.count = count
        batch.sameSize = sameSize
        batch.stride = sameSize === 0 ? 0 : (sameSize + 15) & ~7
        this.stats.records += count
        this.stats.batches++
        for (const h of this.#batchHandlers) h(batch)
        for (const h of this.#batchListeners) h(batch)
        if (this.#dataListeners.length > 0 || this.#iterating) {
          this.#loops.batch(batch.view, batch.bytes, batch.offsets, count, batch.stride, this.#codec, this.#sink(), this.#onMalformed)
        }
      }
    } finally {
      // also when a listener threw: its batch counts as delivered (reading it again would throw again)
      this.#fanOutListeners = NO_LISTENERS
      this.#reader.advance(bytes)
    }
    this.#updatePolling()
    return count
  }

  /** Decoded records only: JS walks the unread part of the ring, decoding as it goes. */
  #readWindow(limit: number): number {
    const cursor = this.#cursor
    const len = this.#reader.window(cursor)
    if (len === 0) {
      this.#drained = true
      return 0
    }
    this.#refreshViews()
    const start = cursor[0]!
    const { view, bytes } = this.#batch
    const walk = this.#walk
    walk[0] = start
    let end: number
    try {
      end = this.#loops.window(view, bytes, start, start + len, limit, this.#codec, this.#sink(), this.#onMalformed, walk)
    } catch (err) {
      // a listener threw: the records up to its own count as read (reading that one again would throw
      // again); the rest stay in the ring for the next read
      this.#fanOutListeners = NO_LISTENERS
      this.#consumed(start, walk[0]!, countRecords(view, start, walk[0]!))
      throw err
    }
    this.#fanOutListeners = NO_LISTENERS
    const n = walk[1]!
    this.#consumed(start, end, n)
    this.#drained = n < limit
    this.#updatePolling()
    return n
  }

  /** The records from `start` to `end` (n of them) are read: their space goes back to the producers. */
  #consumed(start: number, end: number, n: number): void {
    this.#reader.advance(end - start)
    this.stats.records += n
    this.stats.batches++
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

  /**
   * Where a batch's decoded records go: the one 'data' listener itself, else
   * a fan-out over a snapshot of the listeners (and the for-await queue).
   * Read once per batch, called directly (no emit() per record).
   */
  #sink(): (value: T) => void {
    const listeners = this.#dataListeners
    this.#fanOutListeners = listeners
    if (listeners.length === 1 && !this.#iterating) return listeners[0]!
    return (this.#fanOut ??= (value: T) => this.#fanOutRecord(value))
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

/** The two per-record loops, compiled for one codec. */
interface DeliveryLoops<T> {
  batch: typeof deliverBatch<T>
  window: typeof walkWindow<T>
}

/** Per codec (and one for plain copies), shared by every ring that uses it. */
const loopsByCodec = new WeakMap<object, DeliveryLoops<unknown>>()
const copyKey = {}
let loopSerial = 0

/**
 * Returns the per-record loops for `codec`. V8 keeps type feedback per
 * function: with one shared loop, every ring's codec and listener would meet
 * at the same two call sites, which turn megamorphic as soon as a process
 * consumes several rings (each sensor has its own), and decoding then costs
 * several times more. So each codec gets its own copy of the loops, compiled
 * from source with a unique comment (identical sources would share one
 * function and its feedback through V8's compilation cache). The copy is
 * cached: a new ring with a codec seen before starts with optimised loops
 * instead of paying the JIT warm-up again (the first 64K records of a cold
 * loop cost ~5x more). Falls back to the shared functions where code
 * generation from strings is disallowed.
 */
function loopsFor<T>(codec: object | undefined): DeliveryLoops<T> {
  const key = codec ?? copyKey
  let loops = loopsByCodec.get(key)
  if (!loops) {
    try {
      const make = new Function(`/* ring delivery loops ${++loopSerial} */ return { batch: ${deliverBatch.toString()}, window: ${walkWindow.toString()} }`)
      loops = make() as DeliveryLoops<unknown>
    } catch {
      loops = { batch: deliverBatch, window: walkWindow }
    }
    loopsByCodec.set(key, loops)
  }
  return loops as DeliveryLoops<T>
}

/**
 * Decodes (or copies) each record of a RecordBatch and hands it to `sink`.
 * Self-contained (no outer references): loopsFor compiles copies of its source.
 */
function deliverBatch<T>(
  view: DataView,
  bytes: Uint8Array,
  offsets: Uint32Array,
  count: number,
  stride: number,
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
  if (stride !== 0 && offsets[1]! >= size) {
    // Records of one size, long enough, back to back: walk by stride, with no offsets to read and no
    // length to check per record.
    for (let off = offsets[0]!, end = off + count * stride; off < end; off += stride) sink(codec.decode(view, off))
    return
  }
  for (let i = 0; i < count; i++) {
    const off = offsets[2 * i]!
    const len = offsets[2 * i + 1]!
    if (len < size) malformed(len, size)
    else sink(codec.decode(view, off))
  }
}

/**
 * Walks the ring from `start` (a kernel record header) towards `end`, and
 * decodes (or copies) each committed record for `sink`, at most `limit`
 * records; returns where it stopped. Each record is an 8-byte header (u32
 * length with the BUSY and DISCARD bits, u32 page offset), then the data,
 * rounded up to 8 bytes. It stops at a record still being written (BUSY): the
 * rest waits for the next wake-up. walk[1] = records walked. When `sink`
 * throws, walk[0] = the end of its record, so the caller knows how far the walk
 * got (a catch, not a finally: with a finally Node 24 deoptimised the function
 * at every call). Self-contained, like deliverBatch.
 *
 * The header loads are plain loads: on x86-64 loads are not reordered with
 * other loads, and V8 keeps typed-array loads in program order, so a record's
 * data is read after its header says it is committed (the acquire that
 * libbpf's C consumer spells out). An arm64 build would need Atomics.load here.
 */
function walkWindow<T>(
  view: DataView,
  bytes: Uint8Array,
  start: number,
  end: number,
  limit: number,
  codec: Codec<T> | undefined,
  sink: (value: T) => void,
  malformed: (len: number, size: number) => void,
  walk: Float64Array,
): number {
  // Whole numbers below 2^31 (rings are at most 1 GiB): `| 0` keeps the walk in int32 arithmetic. `start`
  // comes from a Float64Array; left a double, every record paid float-to-index conversions.
  let next = start | 0
  end |= 0
  limit |= 0
  let n = 0
  const size = codec === undefined ? 0 : codec.size
  try {
    while (next < end && n < limit) {
      const hdr = view.getUint32(next, true)
      if (hdr >= 0x80000000) break // BUSY
      const off = next + 8
      const len = hdr & 0x3fffffff
      next = off + ((len + 7) & ~7)
      if (hdr >= 0x40000000) continue // DISCARD
      n++
      if (codec === undefined) sink(bytes.slice(off, off + len) as unknown as T)
      else if (len < size) malformed(len, size)
      else sink(codec.decode(view, off))
    }
  } catch (err) {
    walk[0] = next
    throw err
  }
  walk[1] = n
  return next
}

/** Committed records between two header positions of a walk (the count after a walk that threw). */
function countRecords(view: DataView, from: number, to: number): number {
  let n = 0
  for (let at = from; at < to; ) {
    const hdr = view.getUint32(at, true)
    if (hdr < 0x40000000) n++
    at += 8 + (((hdr & 0x3fffffff) + 7) & ~7)
  }
  return n
}

function toNumber(x: unknown): number {
  if (typeof x === 'number') return x
  if (typeof x === 'bigint') return Number(x)
  if (x instanceof Uint8Array && x.length >= 8) return Number(Buffer.from(x).readBigUInt64LE(0))
  return 0
}
