/**
 * Small helpers shared by the scanners: building findings, masking values so
 * a finding never carries the raw secret, entropy, and the per-message scan
 * cap that keeps time bounded on gigantic inputs.
 */
import type { Finding, FindingLocation, LlmMessage, ScanContext, Severity } from '../types.js'

/** Default number of UTF-16 units scanned per message (or per response). Longer text is cut and the cut is reported. */
export const DEFAULT_MAX_SCAN_CHARS = 256 * 1024

/** A match found by a text detector, before it becomes a Finding. Offsets are into the scanned text. */
export interface TextMatch {
  kind: string
  severity: Severity
  score: number
  start: number
  end: number
  snippet: string
  evidence?: string
}

export function toFinding(scanner: string, m: TextMatch, loc: Omit<FindingLocation, 'start' | 'end'>, offset = 0): Finding {
  // the location literal is spelled out (not spread): findings are built per match, in hot loops
  const start = m.start + offset
  const end = m.end + offset
  const location: FindingLocation = loc.message_index === undefined ? { part: loc.part, start, end } : { part: loc.part, message_index: loc.message_index, start, end }
  const f: Finding = {
    scanner,
    kind: m.kind,
    severity: m.severity,
    score: clamp01(m.score),
    location,
    snippet: m.snippet,
  }
  if (m.evidence !== undefined) f.evidence = m.evidence
  return f
}

export const clamp01 = (x: number): number => (Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0)

/**
 * The finding that says "this text was longer than the cap and the rest was not scanned",
 * so a skip is never silent.
 */
export function truncationFinding(scanner: string, loc: Omit<FindingLocation, 'start' | 'end'>, cap: number, total: number): Finding {
  return {
    scanner,
    kind: 'scan_truncated',
    severity: 'low',
    score: 0,
    location: { ...loc, start: cap, end: total },
    snippet: '',
    evidence: `scanned the first ${cap} of ${total} chars; skipped ${total - cap}`,
  }
}

/**
 * Runs a whole-text detector over the request messages whose role passes `roles`,
 * applying the scan cap. Never throws: a detector error becomes a 'scanner_error' finding.
 */
export function scanMessages(
  scanner: string,
  ctx: ScanContext,
  maxChars: number,
  roles: (m: LlmMessage) => boolean,
  detect: (text: string, msg: LlmMessage, index: number) => TextMatch[],
): Finding[] {
  const out: Finding[] = []
  const messages = Array.isArray(ctx?.messages) ? ctx.messages : []
  for (let i = 0; i < messages.length; i++) {
    const msg = messages[i]
    if (!msg || typeof msg.content !== 'string' || msg.content.length === 0 || !roles(msg)) continue
    const loc = { part: 'request' as const, message_index: i }
    const text = msg.content.length > maxChars ? cutAtCodePoint(msg.content, maxChars) : msg.content
    try {
      for (const m of detect(text, msg, i)) out.push(toFinding(scanner, m, loc))
    } catch (err) {
      out.push(errorFinding(scanner, loc, err))
    }
    if (text.length < msg.content.length) out.push(truncationFinding(scanner, loc, text.length, msg.content.length))
  }
  return out
}

export function errorFinding(scanner: string, loc: Omit<FindingLocation, 'start' | 'end'>, err: unknown): Finding {
  return {
    scanner,
    kind: 'scanner_error',
    severity: 'low',
    score: 0,
    location: { ...loc, start: 0, end: 0 },
    snippet: '',
    evidence: String(err instanceof Error ? err.message : err).slice(0, 200),
  }
}

/** Cuts to at most n UTF-16 units without splitting a surrogate pair. */
export function cutAtCodePoint(s: string, n: number): string {
  if (s.length <= n) return s
  const c = s.charCodeAt(n - 1)
  return s.slice(0, c >= 0xd800 && c <= 0xdbff ? n - 1 : n)
}

/** Shannon entropy in bits per character. */
export function shannonEntropy(s: string): number {
  if (s.length === 0) return 0
  const counts = new Map<number, number>()
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    counts.set(c, (counts.get(c) ?? 0) + 1)
  }
  let h = 0
  for (const n of counts.values()) {
    const p = n / s.length
    h -= p * Math.log2(p)
  }
  return h
}

/**
 * Masks a secret for display: keeps a short non-secret prefix (the provider marker, e.g. "ghp_")
 * and the length, never the body.
 */
export function maskSecret(value: string, keepPrefix = 0): string {
  const p = value.slice(0, Math.min(keepPrefix, 12, Math.floor(value.length / 3)))
  return `${p}${'*'.repeat(4)}…(${value.length} chars)`
}

/** Truncates a display snippet. */
export function shorten(s: string, n = 120): string {
  const flat = s.replace(/\s+/g, ' ')
  return flat.length > n ? `${flat.slice(0, n - 1)}…` : flat
}

/** Words that mark a value as a placeholder rather than a real credential. */
const PLACEHOLDER = /example|xxxx|\*\*\*\*|placeholder|dummy|sample|redacted|changeme|change_me|your[_-]|<[a-z_ -]+>|\$\{|\{\{|fake|notreal|insert|replace|foobar|test[_-]?key|abcdef(?:gh|12)|123456789|0{8}|a{8}|1{8}/i

/** True when a candidate secret is an obvious placeholder (EXAMPLE, xxxx, your_key_here, repeated chars, ...). */
export function isPlaceholder(value: string): boolean {
  if (PLACEHOLDER.test(value)) return true
  // one character making up more than 40% of a long value is not a random key
  if (value.length >= 12) {
    const counts = new Map<string, number>()
    let max = 0
    for (const ch of value) {
      const n = (counts.get(ch) ?? 0) + 1
      counts.set(ch, n)
      if (n > max) max = n
    }
    if (max / value.length > 0.4) return true
  }
  return false
}

export const SEVERITY_RANK: Record<Severity, number> = { low: 0, medium: 1, high: 2, critical: 3 }
