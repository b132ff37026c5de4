/**
 * Masking of secrets and PII in an emitted exchange. Scanners report where a
 * value is (offsets into a message's content or the completion text): those
 * spans are masked with the scanner helper's redactText. Copies of the same
 * value elsewhere in the event (the tool_use part holding the arguments a
 * message's content was built from, tool descriptions, error text) are
 * masked by value. Tool-call arguments, which no scanner reads, are scrubbed
 * with the same secret/PII detectors.
 */
import { type Redactor, redactText } from './scanners/redact.js'
import type { Finding, LlmExchangeEvent } from './types.js'

/** Values shorter than this are not masked by value (a 2-character match would wreck the text). */
const MIN_VALUE_CHARS = 4

/** The raw values the findings point at, with their kind, longest first. */
export function findingValues(ev: Pick<LlmExchangeEvent, 'messages' | 'completion'>, findings: Finding[]): { value: string; kind: string }[] {
  const seen = new Map<string, string>()
  for (const f of findings) {
    const { part, message_index, start, end } = f.location
    const text = part === 'request' ? ev.messages[message_index ?? -1]?.content : ev.completion.text
    if (text === undefined || !(start >= 0 && end > start && end <= text.length)) continue
    const value = text.slice(start, end)
    if (value.length >= MIN_VALUE_CHARS && !seen.has(value)) seen.set(value, f.kind)
  }
  return [...seen].map(([value, kind]) => ({ value, kind })).sort((a, b) => b.value.length - a.value.length)
}

/** The mask put in place of a value (the scanners' redactText uses the same form). */
export function maskFor(kind: string): string {
  return `[REDACTED:${kind}]`
}

const MASK_RE = /\[REDACTED:[^\]]*\]/g
const countMasks = (s: string): number => s.match(MASK_RE)?.length ?? 0

/**
 * Masks, in place, what `findings` (already filtered to the sensitive scanners) point at, and
 * scrubs tool-call arguments with `redactor`. Returns the number of masks added.
 */
export function redactExchange(ev: LlmExchangeEvent, findings: Finding[], redactor?: Redactor): number {
  const values = findingValues(ev, findings)
  let added = 0
  const byValue = (s: string): string => {
    let out = s
    for (const { value, kind } of values) if (out.includes(value)) out = out.split(value).join(maskFor(kind))
    return out
  }
  const apply = (s: string, f: (s: string) => string): string => {
    const before = countMasks(s)
    const out = f(s)
    added += Math.max(0, countMasks(out) - before)
    return out
  }
  const scrub = (s: string) => byValue(redactor ? redactor.scrub(s) : s)
  ev.messages.forEach((m, i) => {
    const own = findings.filter((f) => f.location.part === 'request' && f.location.message_index === i)
    m.content = apply(m.content, (s) => byValue(redactText(s, own, [...new Set(own.map((f) => f.scanner))])))
    if (m.parts) {
      m.parts = m.parts.map((p) => {
        if (p.type === 'text') return { ...p, text: byValue(p.text) }
        if (p.type === 'tool_result') return { ...p, text: byValue(p.text) }
        if (p.type === 'tool_use') return { ...p, arguments: apply(p.arguments, scrub) }
        return p
      })
    }
  })
  const resp = findings.filter((f) => f.location.part === 'response')
  ev.completion.text = apply(ev.completion.text, (s) => byValue(redactText(s, resp, [...new Set(resp.map((f) => f.scanner))])))
  ev.completion.tool_calls = ev.completion.tool_calls.map((c) => ({ ...c, arguments: apply(c.arguments, scrub) }))
  if (ev.tools) ev.tools = ev.tools.map((t) => (t.description === undefined ? t : { ...t, description: apply(t.description, byValue) }))
  if (ev.error?.message !== undefined) ev.error.message = apply(ev.error.message, byValue)
  return added
}
