/**
 * Incremental scanning of a streamed completion with a carry-over window.
 *
 * WHY: a secret or an e-mail address split across two SSE chunks passes any
 * per-chunk check (BerriAI/litellm#41611). We keep the last `lookback` chars
 * of the completion, rescan them together with each new chunk, and emit a
 * match once at least `settle` chars follow it (it cannot grow any more), or
 * at end(). Memory per stream is bounded by the window, and the whole
 * completion is scanned at most up to `maxChars` (the rest is counted).
 */
import type { Finding, StreamScan } from '../types.js'
import { errorFinding, toFinding, truncationFinding, type TextMatch } from './util.js'

/**
 * Finds matches in `text` that start at or after `from`. The text before `from`
 * is context only (for look-behind); the detector must not report it again.
 */
export type WindowDetector = (text: string, from: number) => TextMatch[]

export interface WindowOptions {
  /** longest match the detector can produce; that much text is rescanned with each chunk */
  lookback: number
  /** chars that must follow a match before it is certain (1 for token-like matches) */
  settle?: number
  /** cap on the completion length scanned */
  maxChars: number
}

/**
 * We rescan when a line ends or EMIT_STEP chars piled up (and at end()), not on every token-sized
 * chunk: each rescan covers the look-back window again. A finding is thus reported at most
 * EMIT_STEP chars (or one line) after it completes.
 */
export const EMIT_STEP = 128
/** an unfinished match (e.g. a PEM block without its END line yet) is kept at most this long */
const MAX_HOLD = 16 * 1024

export class WindowedStream implements StreamScan {
  private buf = ''
  private bufStart = 0
  /** absolute offset where the next scan must start (before lookback) */
  private scannedTo = 0
  /** absolute start of a match seen but not yet certain; the next scan starts there */
  private holdFrom = Number.POSITIVE_INFINITY
  private total = 0
  private skipped = 0
  private readonly emitted = new Map<string, number>()
  private readonly settle: number

  constructor(
    private readonly scanner: string,
    private readonly detect: WindowDetector,
    private readonly opts: WindowOptions,
  ) {
    this.settle = opts.settle ?? 1
  }

  push(text: string): Finding[] {
    if (typeof text !== 'string' || text.length === 0) return []
    const room = this.opts.maxChars - this.total
    if (room <= 0) {
      this.skipped += text.length
      return []
    }
    const piece = text.length > room ? text.slice(0, room) : text
    this.skipped += text.length - piece.length
    this.buf += piece
    this.total += piece.length
    const pending = this.bufStart + this.buf.length - this.scannedTo
    if (pending < EMIT_STEP && !piece.includes('\n')) return []
    return this.scan(false)
  }

  end(): Finding[] {
    const out = this.scan(true)
    if (this.skipped > 0) {
      out.push(truncationFinding(this.scanner, { part: 'response' }, this.total, this.total + this.skipped))
    }
    this.buf = ''
    return out
  }

  private scan(final: boolean): Finding[] {
    const out: Finding[] = []
    const fromAbs = Math.max(this.bufStart, Math.min(this.holdFrom, this.scannedTo - this.opts.lookback))
    let matches: TextMatch[]
    try {
      matches = this.detect(this.buf, fromAbs - this.bufStart)
    } catch (err) {
      return [errorFinding(this.scanner, { part: 'response' }, err)]
    }
    // the earliest start of a match that is not certain yet: the next scan must reach back to it
    let holdFrom = Number.POSITIVE_INFINITY
    for (const m of matches) {
      const certain = final || m.end <= this.buf.length - this.settle
      if (!certain) {
        holdFrom = Math.min(holdFrom, this.bufStart + m.start)
        continue
      }
      const key = `${m.kind}:${this.bufStart + m.start}`
      if (this.emitted.has(key)) continue
      this.emitted.set(key, this.bufStart + m.start)
      out.push(toFinding(this.scanner, m, { part: 'response' }, this.bufStart))
    }
    this.scannedTo = this.bufStart + this.buf.length
    // keep the look-back window (and any unsettled match, up to 4 windows) and forget the rest
    this.holdFrom = Math.max(holdFrom, this.scannedTo - Math.max(4 * this.opts.lookback, MAX_HOLD))
    const keepFrom = Math.max(this.bufStart, Math.min(this.holdFrom, this.scannedTo - this.opts.lookback - 1))
    if (keepFrom > this.bufStart) {
      let cut = keepFrom - this.bufStart
      const c = this.buf.charCodeAt(cut)
      if (c >= 0xdc00 && c <= 0xdfff) cut-- // do not split a surrogate pair
      this.buf = this.buf.slice(cut)
      this.bufStart += cut
    }
    if (this.emitted.size > 512) {
      for (const [k, start] of this.emitted) if (start < this.bufStart) this.emitted.delete(k)
    }
    return out
  }
}
