/**
 * System prompt leakage: the response reproduces a large part of the system
 * (or developer) prompt. We hash the prompt's 5-word shingles, then count
 * how many distinct ones the response contains as it streams; the finding is
 * emitted as soon as the covered share reaches the threshold. Optional canary
 * strings (Rebuff's idea: a random marker put in the system prompt) are
 * reported the moment they appear.
 */
import { positiveInt } from '../options.js'
import type { Finding, ScanContext, Scanner, StreamScan } from '../types.js'
import { shingleHash, shingleSet } from './shingles.js'
import { DEFAULT_MAX_SCAN_CHARS, errorFinding, truncationFinding } from './util.js'

export interface PromptLeakOptions {
  /** share of the system prompt's shingles that must appear in the response; default 0.3 */
  threshold?: number
  /** words per shingle; default 5 */
  shingle?: number
  /** also fire when this many distinct shingles leaked, whatever the share (long prompts); default 40 */
  minShingles?: number
  /** marker strings planted in the system prompt; any of them in a response is a leak */
  canaries?: string[]
  maxScanChars?: number
}

export class PromptLeakScanner implements Scanner {
  readonly name = 'prompt_leak'
  constructor(private readonly opts: PromptLeakOptions = {}) {
    positiveInt('promptLeak.maxScanChars', opts.maxScanChars) // checked here, where a typo is made, not per response
  }

  startResponse(ctx: ScanContext): StreamScan {
    const n = this.opts.shingle ?? 5
    const system = (Array.isArray(ctx?.messages) ? ctx.messages : [])
      .filter((m) => m && (m.role === 'system' || m.role === 'developer') && typeof m.content === 'string')
      .map((m) => m.content.slice(0, 256 * 1024))
      .join('\n')
    return new LeakStream(this.name, shingleSet(system, n), n, this.opts)
  }
}

/** ASCII letters and digits; other chars are classified with WORD_CHAR (\p{L}\p{N}, as in shingles.words) */
const ASCII_WORD = (() => {
  const t = new Uint8Array(128)
  for (let c = 0; c < 128; c++) t[c] = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) ? 1 : 0
  return t
})()
const WORD_CHAR = /^[\p{L}\p{N}]$/u

/**
 * Tokenises the response incrementally (each char is looked at once, instead of re-running the
 * word regex over a carried-over tail at every token-sized chunk). A word counts as complete once
 * the next word starts (or the stream ends), as it did when the tail was re-tokenised.
 */
class LeakStream implements StreamScan {
  private total = 0
  private skipped = 0
  /** the last complete words (lower-cased) and their absolute starts; at most n */
  private readonly ring: string[] = []
  private readonly ringStart: number[] = []
  /** the latest word, not complete yet: raw text so far, absolute start, whether it can still grow */
  private cur = ''
  private curStart = -1
  private inWord = false
  /** a high surrogate at the end of a chunk, kept until its pair arrives */
  private pendingHigh = ''
  private readonly seen = new Set<number>()
  private firstMatch = -1
  private fired = false
  private readonly canaryFired = new Set<string>()
  private canaryTail = ''
  private readonly threshold: number
  private readonly minShingles: number
  private readonly maxChars: number

  constructor(
    private readonly scanner: string,
    private readonly prompt: Set<number>,
    private readonly n: number,
    private readonly opts: PromptLeakOptions,
  ) {
    this.threshold = opts.threshold ?? 0.3
    this.minShingles = opts.minShingles ?? 40
    this.maxChars = positiveInt('promptLeak.maxScanChars', opts.maxScanChars) ?? DEFAULT_MAX_SCAN_CHARS
  }

  push(text: string): Finding[] {
    if (typeof text !== 'string' || !text) return []
    try {
      return this.feed(text, false)
    } catch (err) {
      return [errorFinding(this.scanner, { part: 'response' }, err)]
    }
  }

  end(): Finding[] {
    let out: Finding[]
    try {
      out = this.feed('', true)
    } catch (err) {
      out = [errorFinding(this.scanner, { part: 'response' }, err)]
    }
    if (this.skipped > 0) out.push(truncationFinding(this.scanner, { part: 'response' }, this.total, this.total + this.skipped))
    return out
  }

  private feed(chunk: string, final: boolean): Finding[] {
    const out: Finding[] = []
    const room = this.maxChars - this.total
    const piece = chunk.slice(0, Math.max(0, room))
    this.skipped += chunk.length - piece.length
    const chunkStart = this.total
    this.total += piece.length
    this.checkCanaries(piece, chunkStart, out)
    if (this.prompt.size === 0 || this.fired) return out
    this.tokenize(piece, chunkStart, final)
    const share = this.seen.size / this.prompt.size
    if (this.seen.size >= Math.min(3, this.prompt.size) && (share >= this.threshold || this.seen.size >= this.minShingles)) {
      this.fired = true
      out.push({
        scanner: this.scanner,
        kind: 'system_prompt_leak',
        severity: share >= 0.6 ? 'high' : 'medium',
        score: Math.min(1, 0.5 + share / 2),
        location: { part: 'response', start: this.firstMatch, end: this.total },
        snippet: `<${this.seen.size} of ${this.prompt.size} system-prompt shingles>`,
        evidence: `response repeats ${(share * 100).toFixed(0)}% of the system prompt (${this.n}-word shingles)`,
      })
    }
    return out
  }

  private tokenize(piece: string, pieceStart: number, final: boolean): void {
    let s = piece
    let base = pieceStart
    if (this.pendingHigh) {
      s = this.pendingHigh + s
      base -= this.pendingHigh.length
      this.pendingHigh = ''
    }
    if (!final && s.length > 0) {
      const last = s.charCodeAt(s.length - 1)
      if (last >= 0xd800 && last <= 0xdbff) {
        this.pendingHigh = s.slice(-1)
        s = s.slice(0, -1)
      }
    }
    let seg = 0 // start in s of the part of the current word seen in this chunk
    for (let i = 0; i < s.length; ) {
      const c = s.charCodeAt(i)
      let width = 1
      let word: boolean
      if (c < 128) word = ASCII_WORD[c] === 1
      else {
        const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0
        if (c >= 0xd800 && c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) width = 2
        word = WORD_CHAR.test(s.slice(i, i + width))
      }
      if (word && !this.inWord) {
        if (this.curStart >= 0) this.complete()
        this.cur = ''
        this.curStart = base + i
        this.inWord = true
        seg = i
      } else if (!word && this.inWord) {
        this.cur += s.slice(seg, i)
        this.inWord = false
      }
      i += width
    }
    if (this.inWord) {
      this.cur += s.slice(seg)
      if (final) this.inWord = false
    }
    if (final && this.curStart >= 0) {
      this.complete()
      this.curStart = -1
    }
  }

  /** The latest word is complete: hash the shingle it ends. */
  private complete(): void {
    const ring = this.ring
    ring.push(this.cur.toLowerCase())
    this.ringStart.push(this.curStart)
    if (ring.length > this.n) {
      ring.shift()
      this.ringStart.shift()
    }
    if (ring.length < this.n) return
    const h = shingleHash(ring, 0, this.n)
    if (this.prompt.has(h) && !this.seen.has(h)) {
      this.seen.add(h)
      if (this.firstMatch < 0) this.firstMatch = this.ringStart[0]!
    }
  }

  private checkCanaries(piece: string, pieceStart: number, out: Finding[]): void {
    const canaries = this.opts.canaries
    if (!canaries?.length) return
    const maxLen = Math.max(...canaries.map((c) => c.length))
    const base = pieceStart - this.canaryTail.length
    const hay = this.canaryTail + piece
    for (const c of canaries) {
      if (!c || this.canaryFired.has(c)) continue
      const at = hay.indexOf(c)
      if (at < 0) continue
      this.canaryFired.add(c)
      out.push({ scanner: this.scanner, kind: 'canary_leak', severity: 'high', score: 1, location: { part: 'response', start: base + at, end: base + at + c.length }, snippet: '<canary>', evidence: 'a canary string from the system prompt appeared in the response' })
    }
    this.canaryTail = hay.slice(Math.max(0, hay.length - (maxLen - 1)))
  }
}
