/**
 * Masking secrets and PII in text before it leaves the process.
 * `redactText` masks the spans that findings point at; a `Redactor` can also
 * find them itself (`scrub`), for text no scanner has seen (e.g. a snippet).
 */
import type { Finding } from '../types.js'
import { detectPii, type PiiOptions } from './pii.js'
import { detectSecrets } from './secrets.js'

/** Scanners whose findings are sensitive values to mask (the other scanners point at attacks, not values). */
export const REDACTED_SCANNERS: readonly string[] = ['secrets', 'pii']

const mask = (kind: string) => `[REDACTED:${kind}]`

/**
 * Replaces the spans of `findings` in `text` with `[REDACTED:<kind>]`. The offsets must be into this
 * text (filter findings by location first, or use Redactor.redactMessage / redactResponse). Overlapping
 * spans are merged; out-of-range spans are ignored.
 */
export function redactText(text: string, findings: readonly Finding[], scanners: readonly string[] = REDACTED_SCANNERS): string {
  if (typeof text !== 'string' || !Array.isArray(findings) || findings.length === 0) return text
  const spans = findings
    .filter((f) => f && scanners.includes(f.scanner) && f.location && f.location.end > f.location.start && f.location.start >= 0 && f.location.start < text.length)
    .map((f) => ({ start: f.location.start, end: Math.min(text.length, f.location.end), kind: f.kind }))
    .sort((a, b) => a.start - b.start)
  if (!spans.length) return text
  let out = ''
  let pos = 0
  let cur = spans[0]!
  for (const s of spans.slice(1)) {
    if (s.start < cur.end) {
      if (s.end > cur.end) cur = { ...cur, end: s.end }
      continue
    }
    out += text.slice(pos, cur.start) + mask(cur.kind)
    pos = cur.end
    cur = s
  }
  out += text.slice(pos, cur.start) + mask(cur.kind) + text.slice(cur.end)
  return out
}

export interface RedactorOptions {
  /** which finding scanners count as sensitive; default secrets and pii */
  scanners?: string[]
  /** PII kinds scrub() masks; default all */
  pii?: PiiOptions
}

/** Masks secrets and PII in messages, completions and any other text. */
export class Redactor {
  private readonly scanners: readonly string[]
  constructor(private readonly opts: RedactorOptions = {}) {
    this.scanners = opts.scanners ?? REDACTED_SCANNERS
  }

  /** Masks the findings that point into request message `index`. */
  redactMessage(content: string, index: number, findings: readonly Finding[]): string {
    return redactText(content, findings.filter((f) => f.location?.part === 'request' && f.location.message_index === index), this.scanners)
  }

  /** Masks the findings that point into the completion text. */
  redactResponse(text: string, findings: readonly Finding[]): string {
    return redactText(text, findings.filter((f) => f.location?.part === 'response'), this.scanners)
  }

  /** Finds secrets and PII in `text` itself and masks them (for text no scanner has looked at). */
  scrub(text: string): string {
    if (typeof text !== 'string' || text.length === 0) return text
    const spans = [...detectSecrets(text), ...detectPii(text, 0, this.opts.pii)]
    if (!spans.length) return text
    const fake: Finding[] = spans.map((m) => ({ scanner: 'secrets', kind: m.kind, severity: m.severity, score: m.score, location: { part: 'response', start: m.start, end: m.end }, snippet: '' }))
    return redactText(text, fake, ['secrets'])
  }
}
