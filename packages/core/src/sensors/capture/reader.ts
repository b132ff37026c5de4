/**
 * CaptureReader: the user-space half the TLS and plain-socket sensors share.
 * It drains a ring of capture records (bpf/include/capture.h) into 'record',
 * 'gap' and 'close' events, counts what cannot be decoded, sums the BPF
 * program's per-CPU counters, and runs the two timers: one bounds the latency
 * of light traffic (the BPF side wakes the reader only past wakeup_bytes), one
 * refreshes the kernel counters every second. Each sensor supplies only what
 * differs: how a header becomes its own record, close event and connection key.
 */
import type { Codec } from '../../codec.js'
import type { Collection } from '../../collection.js'
import type { RecordBatch, RingBuffer } from '../../ringbuf.js'
import type { CaptureStats } from './counters.js'
import { CAPTURE_F_CLOSE, direction, type RawCaptureEvent } from './record.js'

export interface CaptureGapEvent {
  pid: number
  conn: string
  direction: 'egress' | 'ingress'
  /** bytes missing just before the record with this seq */
  bytes: number
  seq: number
  offset: number
}

/** The events every capture sensor emits (a sensor's event map extends it). */
export interface CaptureEvents<Rec, Close> {
  record: [Rec]
  close: [Close]
  gap: [CaptureGapEvent]
  lost: [{ count: number; total: number }]
  error: [Error]
}

/** The events a capture sensor emits from its ring (its EventEmitter). */
export interface CaptureEventSink<Rec, Close> {
  emit(event: 'record', record: Rec): boolean
  emit(event: 'close', close: Close): boolean
  emit(event: 'gap', gap: CaptureGapEvent): boolean
  emit(event: 'lost', lost: { count: number; total: number }): boolean
  emit(event: 'error', error: Error): boolean
  listenerCount(event: 'record'): number
}

/** How one sensor turns decoded headers into its events. */
export interface CaptureDecoding<Raw extends RawCaptureEvent, Rec, Close extends { lostBytes: number }> {
  readonly codec: Codec<Raw>
  /** A record that is neither data nor close (TLS hold); returns true when it handled it. */
  control?(raw: Raw): boolean
  close(raw: Raw): Close
  /** The connection key of a data record (called once per record, in ring order). */
  connKey(raw: Raw): string
  record(raw: Raw, data: Uint8Array, conn: string): Rec
}

export interface CaptureReaderOptions<Raw extends RawCaptureEvent, Rec, Close extends { lostBytes: number }, K> {
  collection: Collection
  /** names of the ring and of the per-CPU counter array in the BPF object */
  ring: string
  counters: string
  /** counter names in index order of the counter array */
  counterNames: readonly (keyof K)[]
  stats: CaptureStats<K>
  sink: CaptureEventSink<Rec, Close>
  decoding: CaptureDecoding<Raw, Rec, Close>
}

export class CaptureReader<Raw extends RawCaptureEvent, Rec, Close extends { lostBytes: number }, K> {
  readonly #o: CaptureReaderOptions<Raw, Rec, Close, K>
  readonly #ring: RingBuffer<Uint8Array>
  readonly #timers: NodeJS.Timeout[] = []
  #stopped = false

  constructor(options: CaptureReaderOptions<Raw, Rec, Close, K>) {
    this.#o = options
    const { stats, sink } = options
    this.#ring = options.collection.ringBuffer<Uint8Array>(options.ring)
    this.#ring.on('lost', (l) => {
      stats.lostRecords = l.total
      sink.emit('lost', l)
    })
    this.#ring.on('error', (e) => sink.emit('error', e))
    this.#ring.onBatch((b) => this.#onBatch(b))
  }

  /** Starts reading the ring every flushMs and refreshing the counters every second. */
  start(flushMs: number): void {
    this.#timers.push(setInterval(() => this.refreshStats(), 1000).unref())
    this.#timers.push(
      setInterval(() => {
        if (!this.#stopped) this.#ring.consume()
      }, flushMs).unref(),
    )
  }

  /** Delivers what is in the ring now (synchronously) and refreshes stats. */
  flush(): void {
    if (this.#stopped) return
    this.#ring.consume()
    this.refreshStats()
  }

  /** Reads the BPF counters (summed over CPUs) into stats.kernel. */
  refreshStats(): K {
    const { stats, sink } = this.#o
    if (this.#stopped) return stats.kernel
    try {
      const m = this.#o.collection.map<number, bigint | bigint[]>(this.#o.counters)
      this.#o.counterNames.forEach((name, i) => {
        const v = m.lookup(i)
        let total = 0n
        for (const x of Array.isArray(v) ? v : [v ?? 0n]) total += BigInt(x as bigint)
        ;(stats.kernel[name] as number) = Number(total)
      })
      this.#ring.refreshLost()
      stats.lostRecords = this.#ring.stats.lost
    } catch (err) {
      sink.emit('error', err as Error)
    }
    return stats.kernel
  }

  /** Keeps the event loop alive while the sensor runs (it does not by default). */
  ref(): void {
    this.#ring.ref()
  }

  /** Delivers pending records (errors ignored: the sensor is closing anyway), then stops the timers. */
  stop(): void {
    if (this.#stopped) return
    try {
      this.flush()
    } catch {
      // closing anyway
    }
    this.#stopped = true
    for (const t of this.#timers) clearInterval(t)
    this.#timers.length = 0
  }

  /** Reads the ring once more even after stop(), unless it is closed (TLS: records of held processes). */
  drain(): void {
    if (!this.#ring.closed) this.#ring.consume()
  }

  close(): void {
    this.#stopped = true
    for (const t of this.#timers) clearInterval(t)
    this.#timers.length = 0
    this.#ring.close()
  }

  #onBatch(batch: RecordBatch): void {
    const { stats, sink, decoding } = this.#o
    const codec = decoding.codec
    const hdr = codec.size
    const wantRecords = sink.listenerCount('record') > 0
    for (let i = 0; i < batch.count; i++) {
      const off = batch.offset(i)
      const len = batch.length(i)
      if (len < hdr) {
        stats.malformed++
        continue
      }
      const raw = codec.decode(batch.view, off)
      if (decoding.control?.(raw)) continue
      if (raw.flags & CAPTURE_F_CLOSE) {
        const ev = decoding.close(raw)
        stats.closes++
        if (ev.lostBytes > 0) stats.gapBytes += ev.lostBytes
        sink.emit('close', ev)
        continue
      }
      if (raw.len > len - hdr) {
        stats.malformed++
        continue
      }
      stats.records++
      stats.bytes += raw.len
      const conn = decoding.connKey(raw)
      if (raw.gap > 0n) {
        const gap = Number(raw.gap)
        stats.gaps++
        stats.gapBytes += gap
        sink.emit('gap', {
          pid: raw.pid,
          conn,
          direction: direction(raw),
          bytes: gap,
          seq: Number(raw.seq),
          offset: Number(raw.stream_off),
        })
      }
      // the data is copied out of the reused batch buffer only for someone who wants it
      if (wantRecords) sink.emit('record', decoding.record(raw, batch.bytes.slice(off + hdr, off + hdr + raw.len), conn))
    }
  }
}
