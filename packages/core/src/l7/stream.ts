/**
 * Per (connection, direction) ordered byte streams. The sensor numbers the
 * chunks of each direction; records can still arrive out of order (several
 * CPUs) or be lost (ring full). This layer reorders within a small window
 * and turns every loss into an explicit gap item, so the parsers above can
 * mark what they were parsing as incomplete instead of splicing unrelated
 * bytes together.
 */
import { type CaptureRecord, type ChunkMeta, recordMeta } from './record.js'

/** A run of contiguous bytes. */
export interface DataItem {
  kind: 'data'
  data: Uint8Array
  meta: ChunkMeta
}

/**
 * Bytes that are missing at this point of the stream. `bytes` is the exact
 * count when the sensor knew it, undefined when unknown (a whole record with
 * a missing sequence number was never seen).
 */
export interface GapItem {
  kind: 'gap'
  bytes: number | undefined
  /** 'sensor': reported by the sensor; 'sequence': missing seq numbers; 'start': stream first seen after seq 0 */
  reason: 'sensor' | 'sequence' | 'start'
  meta: ChunkMeta
}

export type StreamItem = DataItem | GapItem

/**
 * The byte budget of one connection: every buffer that grows with input
 * (reorder queue, header buffers, captured bodies) takes from it, so memory
 * per connection is bounded by `cap` whatever the input.
 */
export class ByteBudget {
  used = 0
  /** highest `used` ever seen */
  peak = 0
  constructor(readonly cap: number) {}

  /** Reserves n bytes if they fit; false (and nothing reserved) otherwise. */
  take(n: number): boolean {
    if (n <= 0) return true
    if (this.used + n > this.cap) return false
    this.used += n
    if (this.used > this.peak) this.peak = this.used
    return true
  }

  /** Reserves as much of n as fits; returns the amount reserved. */
  takeUpTo(n: number): number {
    const k = Math.max(0, Math.min(n, this.cap - this.used))
    this.used += k
    if (this.used > this.peak) this.peak = this.used
    return k
  }

  release(n: number): void {
    this.used = Math.max(0, this.used - n)
  }
}

export interface StreamStats {
  /** records that arrived with seq ahead of the next expected one */
  reordered: number
  /** records dropped because their seq was already delivered or queued */
  duplicates: number
  /** gap items produced */
  gaps: number
  /** bytes known to be missing (sum of known gap sizes) */
  gapBytes: number
  /** gaps of unknown size */
  unknownGaps: number
}

export function emptyStreamStats(): StreamStats {
  return { reordered: 0, duplicates: 0, gaps: 0, gapBytes: 0, unknownGaps: 0 }
}

export interface StreamAssemblerOptions {
  /** out-of-order records held while waiting for a missing seq (default 32) */
  reorderWindow?: number
}

/**
 * Orders the records of one (conn, direction) by seq. Records are released as
 * soon as they are contiguous; a missing seq is waited for until `reorderWindow`
 * later records are queued (or the budget is full), then declared lost.
 */
export class StreamAssembler {
  private next: number | undefined
  private readonly pending = new Map<number, CaptureRecord>()
  private pendingBytes = 0
  private readonly window: number

  constructor(
    private readonly budget: ByteBudget,
    private readonly stats: StreamStats,
    options: StreamAssemblerOptions = {},
  ) {
    this.window = Math.max(0, options.reorderWindow ?? 32)
  }

  /** bytes held in the reorder queue */
  get buffered(): number {
    return this.pendingBytes
  }

  /** Accepts one record; returns the items that are now in order. */
  push(rec: CaptureRecord): StreamItem[] {
    const out: StreamItem[] = []
    if (this.next === undefined) {
      this.next = rec.seq
      if (rec.seq > 0) this.emitGap(out, undefined, 'start', recordMeta(rec))
    }
    if (rec.seq < this.next || this.pending.has(rec.seq)) {
      this.stats.duplicates++
      return out
    }
    if (rec.seq === this.next) {
      this.deliver(out, rec)
      this.drain(out)
      return out
    }
    this.stats.reordered++
    // hold it, unless the window or the budget says the missing seq is lost
    while (this.pending.size >= this.window || !this.budget.take(rec.data.length)) {
      if (this.pending.size === 0) {
        // nothing to free: give up on the missing seqs and deliver this one now
        this.emitGap(out, undefined, 'sequence', recordMeta(rec))
        this.next = rec.seq
        this.deliver(out, rec)
        return out
      }
      this.skipToPending(out)
      if (rec.seq < (this.next as number)) {
        this.stats.duplicates++
        return out
      }
      if (rec.seq === this.next) {
        this.deliver(out, rec)
        this.drain(out)
        return out
      }
    }
    // copy: the caller may reuse the record's buffer once push() returns
    this.pending.set(rec.seq, { ...rec, data: new Uint8Array(rec.data) })
    this.pendingBytes += rec.data.length
    return out
  }

  /** Releases everything queued (missing seqs become gaps). Used at close/expiry. */
  flush(): StreamItem[] {
    const out: StreamItem[] = []
    while (this.pending.size > 0) this.skipToPending(out)
    return out
  }

  /** Declares the seqs before the lowest queued one lost and drains from there. */
  private skipToPending(out: StreamItem[]): void {
    let min = Infinity
    for (const s of this.pending.keys()) if (s < min) min = s
    const first = this.pending.get(min)!
    this.emitGap(out, undefined, 'sequence', recordMeta(first))
    this.next = min
    this.drain(out)
  }

  private drain(out: StreamItem[]): void {
    for (;;) {
      const r = this.pending.get(this.next as number)
      if (!r) return
      this.pending.delete(r.seq)
      this.pendingBytes -= r.data.length
      this.budget.release(r.data.length)
      this.deliver(out, r)
    }
  }

  private deliver(out: StreamItem[], r: CaptureRecord): void {
    this.next = r.seq + 1
    const meta = recordMeta(r)
    if (r.gap && r.gap > 0) this.emitGap(out, r.gap, 'sensor', meta)
    if (r.data.length > 0) out.push({ kind: 'data', data: r.data, meta })
  }

  /** Adds a gap, merging with a gap item just before it (unknown + anything = unknown). */
  private emitGap(out: StreamItem[], bytes: number | undefined, reason: GapItem['reason'], meta: ChunkMeta): void {
    const last = out[out.length - 1]
    if (last && last.kind === 'gap') {
      if (last.bytes !== undefined) {
        if (bytes === undefined) {
          this.stats.gapBytes -= last.bytes
          this.stats.unknownGaps++
          last.bytes = undefined
        } else {
          this.stats.gapBytes += bytes
          last.bytes += bytes
        }
      }
      return
    }
    this.stats.gaps++
    if (bytes === undefined) this.stats.unknownGaps++
    else this.stats.gapBytes += bytes
    out.push({ kind: 'gap', bytes, reason, meta })
  }
}
