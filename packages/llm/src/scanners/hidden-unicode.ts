/**
 * Hidden Unicode / ASCII smuggling: characters a human reviewer does not see
 * but a model reads.
 * - Unicode tag characters U+E0000–E007F: each maps to an ASCII char; we decode the
 *   smuggled text into the evidence (the Mindgard / "ASCII smuggling" technique).
 * - Variation selectors U+E0100–E01EF / U+FE00–FE0F used as a byte channel (runs of 4+).
 * - Bidi embedding/override/isolate controls (U+202A–202E, U+2066–2069): "Trojan Source".
 * - Zero-width characters (U+200B, U+2060, U+FEFF mid-text, U+200C/D outside scripts that need them).
 * ZWJ inside emoji sequences and ZWNJ in Persian/Indic text are legitimate and skipped.
 */
import { positiveInt } from '../options.js'
import type { Finding, ScanContext, Scanner, StreamScan } from '../types.js'
import { WindowedStream } from './stream.js'
import { DEFAULT_MAX_SCAN_CHARS, scanMessages, shorten, type TextMatch } from './util.js'

// one alternation per run kind; each run is a maximal sequence so one finding covers it
const HIDDEN = /(?:\uDB40[\uDC00-\uDC7F])+|(?:\uDB40[\uDD00-\uDDEF]|[\uFE00-\uFE0F]){4,}|[\u202A-\u202E\u2066-\u2069]+|[\u200B\u200C\u200D\u2060\u2061\u2062\u2063\u2064\uFEFF\u180E]+/g

const EMOJI_OR_JOINER_CONTEXT = /\p{Extended_Pictographic}|[\u{1F3FB}-\u{1F3FF}\uFE0F]/u
const NEEDS_ZWNJ = /[\u0600-\u06FF\u0750-\u077F\u0900-\u0DFF\uFB50-\uFDFF\uFE70-\uFEFF]/

/** Decodes tag characters (U+E0020..E007E) to the ASCII they smuggle. */
export function decodeTagChars(s: string): string {
  let out = ''
  for (const ch of s) {
    const cp = ch.codePointAt(0)!
    if (cp >= 0xe0020 && cp <= 0xe007e) out += String.fromCharCode(cp - 0xe0000)
  }
  return out
}

/** Decodes a variation-selector byte channel (VS1..16 = 0..15, VS17..256 = 16..255). */
function decodeVariationSelectors(s: string): string {
  const bytes: number[] = []
  for (const ch of s) {
    const cp = ch.codePointAt(0)!
    if (cp >= 0xfe00 && cp <= 0xfe0f) bytes.push(cp - 0xfe00)
    else if (cp >= 0xe0100 && cp <= 0xe01ef) bytes.push(cp - 0xe0100 + 16)
  }
  return Buffer.from(bytes).toString('utf8')
}

export function detectHiddenUnicode(text: string, from = 0): TextMatch[] {
  const out: TextMatch[] = []
  HIDDEN.lastIndex = from
  for (let m = HIDDEN.exec(text); m !== null; m = HIDDEN.exec(text)) {
    const run = m[0]
    const start = m.index
    const end = start + run.length
    const first = run.charCodeAt(0)
    const second = run.charCodeAt(1)
    if (first === 0xdb40 && second >= 0xdc00 && second <= 0xdc7f) {
      // a single tag sequence right after a flag emoji (🏴 + tags + cancel) is a subdivision flag, not smuggling
      const decoded = decodeTagChars(run)
      if (/^[a-z]{2}[a-z0-9]{1,3}$/.test(decoded) && text.codePointAt(start - 2) === 0x1f3f4) continue
      out.push({ kind: 'tag_characters', severity: 'high', score: 0.95, start, end, snippet: `<${run.length / 2} tag chars>`, evidence: `hidden ASCII via Unicode tags: "${shorten(decoded, 200)}"` })
    } else if (first === 0xdb40 || (first >= 0xfe00 && first <= 0xfe0f)) {
      const n = [...run].length
      // 4+ selectors after one emoji is not a real emoji presentation sequence
      if (run.length <= 1) continue
      out.push({ kind: 'variation_selector_smuggling', severity: 'high', score: 0.85, start, end, snippet: `<${n} variation selectors>`, evidence: `hidden bytes via variation selectors: "${shorten(decodeVariationSelectors(run), 120)}"` })
    } else if ((first >= 0x202a && first <= 0x202e) || (first >= 0x2066 && first <= 0x2069)) {
      out.push({ kind: 'bidi_control', severity: 'medium', score: 0.7, start, end, snippet: `<${run.length} bidi controls>`, evidence: `bidirectional control U+${first.toString(16).toUpperCase()} can reorder what a reviewer sees` })
    } else {
      if (start === 0 && run === '\uFEFF') continue // byte-order mark
      const before = text.slice(Math.max(0, start - 2), start)
      const after = text.slice(end, end + 2)
      const onlyJoiners = /^[\u200C\u200D]+$/.test(run)
      if (onlyJoiners && (EMOJI_OR_JOINER_CONTEXT.test(before) || EMOJI_OR_JOINER_CONTEXT.test(after))) continue
      if (onlyJoiners && (NEEDS_ZWNJ.test(before) || NEEDS_ZWNJ.test(after))) continue
      const insideWord = /\w$/.test(before) && /^\w/.test(after)
      out.push({
        kind: 'zero_width',
        severity: insideWord || run.length >= 3 ? 'medium' : 'low',
        score: insideWord || run.length >= 3 ? 0.7 : 0.4,
        start,
        end,
        snippet: `<${run.length} zero-width chars>`,
        evidence: insideWord ? 'zero-width characters inside a word (filter evasion)' : 'zero-width characters',
      })
    }
  }
  return out
}

export interface HiddenUnicodeOptions {
  maxScanChars?: number
}

/** Finds invisible characters in the request messages and the streamed response. */
export class HiddenUnicodeScanner implements Scanner {
  readonly name = 'hidden_unicode'
  private readonly maxChars: number
  constructor(opts: HiddenUnicodeOptions = {}) {
    this.maxChars = positiveInt('hiddenUnicode.maxScanChars', opts.maxScanChars) ?? DEFAULT_MAX_SCAN_CHARS
  }
  scanRequest(ctx: ScanContext): Finding[] {
    return scanMessages(this.name, ctx, this.maxChars, () => true, (t) => (ASCII_ONLY.test(t) ? [] : detectHiddenUnicode(t)))
  }
  startResponse(_ctx: ScanContext): StreamScan {
    return new WindowedStream(this.name, detectHiddenUnicode, { lookback: 64, maxChars: this.maxChars })
  }
}

const ASCII_ONLY = /^[\x00-\x7f]*$/
