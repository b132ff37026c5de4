/**
 * Prompt injection and jailbreak detection, heuristic tier (no model).
 *
 * Steps: normalise (NFKC, drop invisible chars, fold look-alikes, undo
 * leetspeak), decode bounded base64 / hex / %-encoded / rot13 segments, then
 * match the weighted signals of injection-patterns.ts on every layer. The
 * message score is 1 - Π(1 - w) over distinct signals; a finding is emitted
 * when it reaches the threshold (default 0.5).
 *
 * Role-aware: user messages and tool results / retrieved documents are
 * scanned; system and developer prompts are not (LLM Guard's advice: they
 * legitimately contain instructions). Text in tool results that addresses
 * "the AI" weighs more (indirect injection).
 *
 * False-positive guards: the user retracting their own words ("ignore my
 * previous email / instructions I gave"), negation before a match, and quoted
 * attack phrases inside text that discusses attacks (security training).
 */
import { arrayOf, nonEmptyString, numberIn, positiveInt } from '../options.js'
import type { Finding, LlmMessage, ScanContext, Scanner, Severity } from '../types.js'
import { DISCUSSION, INJECTION_SIGNALS, NEGATION_BEFORE, type InjectionFamily, type InjectionSignal } from './injection-patterns.js'
import { decodeSegments, normalizeForMatching } from './normalize.js'
import { DEFAULT_MAX_SCAN_CHARS, cutAtCodePoint, errorFinding, shorten, truncationFinding } from './util.js'

export interface InjectionSignalHit {
  id: string
  family: InjectionFamily
  weight: number
  /** offsets in the original text */
  start: number
  end: number
  /** where it was found: the text itself or a decoded segment */
  layer: 'text' | 'base64' | 'hex' | 'rot13' | 'url'
  match: string
}

export interface InjectionAssessment {
  score: number
  family?: InjectionFamily
  hits: InjectionSignalHit[]
  /** obfuscation that was undone (evidence) */
  tricks: string[]
  start: number
  end: number
}

/** Weight added when an attack was hidden (encoded, invisible chars, look-alikes): hiding is itself a signal. */
const OBFUSCATION_BONUS = 0.3

/**
 * One regex over the signals' literal anchors tells which occur, so each signal's regex runs only
 * when one of its anchors is present. Anchors are cut to their first 5 chars (fewer, shorter
 * alternatives make the pass faster; a shorter anchor only lets a few more regexes run). Matching
 * restarts at p+1 and every anchor that is a prefix of the one matched at p is added too, so no
 * anchor is missed. (A hand-written bigram table measured 2x slower than this regex.)
 */
/** a module-local binding: some loaders turn an imported binding into a getter call on every access */
const SIGNALS: readonly InjectionSignal[] = INJECTION_SIGNALS
const ANCHOR_LEN = 5
const canon = (a: string) => a.slice(0, ANCHOR_LEN)
const ANCHORS = [...new Set(SIGNALS.flatMap((s) => s.any.map(canon)))].sort((a, b) => b.length - a.length)
/**
 * Anchors that occur in most messages (counted on the benign prompts of the evaluation set) are looked
 * up with includes(): in the regex they made most of its matches, each one an exec() call and a match
 * array to collect, only to find an anchor already seen.
 */
const FREQUENT = new Set(['ai', ' to ', ' for ', 'syste', 'what', 'instr', 'promp', 'rules', 'from ', 'that ', 'assis', 'messa', 'role', 'mail', 'bot', 'user', 'your', 'model', 'when ', 'key', 'if ', 'conte', 'custo', 'answe'].filter((a) => ANCHORS.includes(a)))
const escapeRe = (a: string) => a.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
const ANCHOR_RE = new RegExp(ANCHORS.filter((a) => !FREQUENT.has(a)).map(escapeRe).join('|'), 'g')
/** for each anchor: itself and the anchors that are its prefixes, each as the list of signal indexes it enables */
const ENABLES = new Map(
  ANCHORS.map((a) => {
    const covered = ANCHORS.filter((b) => a.startsWith(b))
    const signals = SIGNALS.flatMap((s, i) => (s.any.some((x) => covered.includes(canon(x))) ? [i] : []))
    return [a, signals]
  }),
)

/**
 * Marks in `run` (one byte per signal, cleared first) the signals whose anchors occur in `text`.
 * The regex restarts one char after each match, so overlapping anchors are all seen; an anchor that
 * is a prefix of the one matched at the same place is covered by ENABLES.
 */
function signalsIn(text: string, run: Uint8Array): void {
  run.fill(0)
  for (const a of FREQUENT) if (text.includes(a)) for (const i of ENABLES.get(a)!) run[i] = 1
  const found = new Set<string>()
  ANCHOR_RE.lastIndex = 0
  for (let m = ANCHOR_RE.exec(text); m !== null; m = ANCHOR_RE.exec(text)) {
    if (!found.has(m[0])) {
      found.add(m[0])
      for (const i of ENABLES.get(m[0])!) run[i] = 1
    }
    ANCHOR_RE.lastIndex = m.index + 1
  }
}

const QUOTES = /["“”«»`]|(?:^|\s)'/g

function isQuoted(text: string, at: number): boolean {
  const from = Math.max(0, text.lastIndexOf('\n\n', at), at - 300)
  return ((text.slice(from, at).match(QUOTES)?.length ?? 0) & 1) === 1
}

/** Scores one text. `tool` = the text is a tool result or retrieved document. Exported for custom scanners. */
export function assessInjection(text: string, tool = false): InjectionAssessment {
  const norm = normalizeForMatching(text)
  const layers: Array<{ layer: InjectionSignalHit['layer']; text: string; map?: number[]; identity?: boolean; segStart: number; segEnd: number }> = [
    { layer: 'text', text: norm.text, map: norm.map, identity: !norm.map, segStart: 0, segEnd: text.length },
  ]
  for (const seg of decodeSegments(text, norm.text)) {
    layers.push({ layer: seg.encoding, text: normalizeForMatching(seg.text).text, segStart: seg.start, segEnd: seg.end })
  }
  // whether the text discusses attacks matters only once a signal matched: tested then, once
  let discussionTested: boolean | undefined
  const isDiscussion = () => (discussionTested ??= DISCUSSION.test(norm.text))
  const best = new Map<string, InjectionSignalHit>()
  const run = new Uint8Array(SIGNALS.length)
  for (const L of layers) {
    signalsIn(L.text, run)
    for (let s = 0; s < SIGNALS.length; s++) {
      if (run[s] === 0) continue
      const sig = SIGNALS[s]!
      sig.re.lastIndex = 0
      let guard = 0
      for (let m = sig.re.exec(L.text); m !== null && guard < 50; m = sig.re.exec(L.text), guard++) {
        if (m[0].length === 0) {
          sig.re.lastIndex++
          continue
        }
        let w = tool ? (sig.tool ?? sig.w) : sig.w
        if (sig.check) {
          const c = sig.check(m, L.text)
          if (c !== undefined) w = tool ? Math.max(c, Math.min(1, c * ((sig.tool ?? sig.w) / sig.w))) : c
        }
        const before = L.text.slice(Math.max(0, m.index - 40), m.index)
        if (NEGATION_BEFORE.test(before)) w *= 0.3
        const discussion = isDiscussion()
        if (discussion && isQuoted(L.text, m.index)) w *= 0.2
        else if (discussion && L.layer === 'text') w *= 0.5
        if (L.layer !== 'text') w = 1 - (1 - w) * (1 - OBFUSCATION_BONUS)
        const prev = best.get(sig.id)
        if (prev && prev.weight >= w) continue
        const start = L.identity ? m.index : L.map ? (L.map[m.index] ?? 0) : L.segStart
        const end = L.identity ? m.index + m[0].length : L.map ? (L.map[m.index + m[0].length] ?? text.length) : L.segEnd
        best.set(sig.id, { id: sig.id, family: sig.family, weight: w, start, end, layer: L.layer, match: m[0] })
      }
    }
  }
  // one phrase can match several signals of a family (e.g. English and French "ignore ... instructions"): a hit inside a stronger one of the same family counts once
  const hits: InjectionSignalHit[] = []
  for (const h of [...best.values()].sort((a, b) => b.weight - a.weight)) {
    if (hits.some((k) => k.family === h.family && h.start >= k.start && h.end <= k.end)) continue
    hits.push(h)
  }
  let keep = 1
  for (const h of hits) keep *= 1 - h.weight
  let score = 1 - keep
  const hidingTricks = norm.tricks.filter((t) => !t.startsWith('NFKC') || /[\uff01-\uff5e]/.test(text))
  if (hits.length > 0 && hidingTricks.length > 0 && hits[0]!.weight >= 0.2) score = 1 - (1 - score) * (1 - OBFUSCATION_BONUS)
  const strong = hits.filter((h) => h.weight >= 0.2)
  return {
    score,
    family: hits[0]?.family,
    hits,
    tricks: [...norm.tricks, ...new Set(hits.filter((h) => h.layer !== 'text').map((h) => `decoded ${h.layer}`))],
    start: strong.length ? Math.min(...strong.map((h) => h.start)) : 0,
    end: strong.length ? Math.max(...strong.map((h) => h.end)) : 0,
  }
}

export interface PromptInjectionOptions {
  /** score at which a finding is emitted; default 0.5 */
  threshold?: number
  /** which roles to scan; default user and tool */
  roles?: LlmMessage['role'][]
  /** chars scanned per message; default 64 KiB (the rest is reported as scan_truncated) */
  maxScanChars?: number
}

/** Detects prompt injection and jailbreak attempts in user messages and tool results. */
export class PromptInjectionScanner implements Scanner {
  readonly name = 'prompt_injection'
  private readonly threshold: number
  private readonly roles: Set<string>
  private readonly maxChars: number

  constructor(opts: PromptInjectionOptions = {}) {
    // scores are in [0, 1]: a threshold above 1 (or NaN) would never report anything
    this.threshold = numberIn('promptInjection.threshold', opts.threshold, 0, 1, true) ?? 0.5
    this.roles = new Set(arrayOf('promptInjection.roles', opts.roles, (r, name) => nonEmptyString(name, r)) ?? ['user', 'tool'])
    this.maxChars = positiveInt('promptInjection.maxScanChars', opts.maxScanChars) ?? Math.min(64 * 1024, DEFAULT_MAX_SCAN_CHARS)
  }

  scanRequest(ctx: ScanContext): Finding[] {
    const out: Finding[] = []
    const messages = Array.isArray(ctx?.messages) ? ctx.messages : []
    for (let i = 0; i < messages.length; i++) {
      const msg = messages[i]
      if (!msg || !this.roles.has(msg.role)) continue
      const loc = { part: 'request' as const, message_index: i }
      try {
        for (const [text, tool, offset] of this.textsOf(msg)) {
          const cut = text.length > this.maxChars ? cutAtCodePoint(text, this.maxChars) : text
          const f = this.assess(cut, tool, i, offset)
          if (f) out.push(f)
          if (cut.length < text.length) out.push(truncationFinding(this.name, loc, offset + cut.length, offset + text.length))
        }
      } catch (err) {
        out.push(errorFinding(this.name, loc, err))
      }
    }
    return out
  }

  /** The texts of a message to score, with whether they are tool output and their offset in `content`. */
  private *textsOf(msg: LlmMessage): Generator<[string, boolean, number]> {
    const content = typeof msg.content === 'string' ? msg.content : ''
    const toolParts = (msg.parts ?? []).filter((p): p is { type: 'tool_result'; text: string } => p?.type === 'tool_result' && typeof (p as { text?: unknown }).text === 'string' && (p as { text: string }).text.length > 0)
    if (msg.role === 'tool' || toolParts.length === 0) {
      if (content) yield [content, msg.role === 'tool', 0]
      return
    }
    // a user message carrying tool_result parts (Anthropic): score each tool result as tool output, the rest as user text
    let rest = content
    for (const p of toolParts) {
      const at = content.indexOf(p.text)
      yield [p.text, true, at >= 0 ? at : 0]
      if (at >= 0) rest = rest.replace(p.text, ' '.repeat(p.text.length))
    }
    if (rest.trim()) yield [rest, false, 0]
  }

  private assess(text: string, tool: boolean, index: number, offset: number): Finding | undefined {
    const a = assessInjection(text, tool)
    if (a.score < this.threshold || !a.family) return undefined
    const severity: Severity = a.score >= 0.85 ? 'high' : 'medium'
    const signals = a.hits
      .filter((h) => h.weight >= 0.1)
      .slice(0, 5)
      .map((h) => `${h.id} ${h.weight.toFixed(2)}${h.layer === 'text' ? '' : ` (${h.layer})`} "${shorten(h.match, 60)}"`)
    return {
      scanner: this.name,
      kind: tool && a.family !== 'jailbreak' ? 'indirect_injection' : a.family,
      severity: tool && severity === 'medium' ? 'high' : severity,
      score: Math.round(a.score * 1000) / 1000,
      location: { part: 'request', message_index: index, start: offset + a.start, end: offset + a.end },
      snippet: shorten(text.slice(a.start, a.end), 160),
      evidence: `${tool ? 'in tool output; ' : ''}${signals.join('; ')}${a.tricks.length ? `; ${a.tricks.join(', ')}` : ''}`,
    }
  }
}
