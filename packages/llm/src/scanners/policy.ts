/**
 * Policy checks configured by the operator:
 * - banned substrings (case-insensitive; whole word by default) and banned
 *   regular expressions (compiled with re2js: user-supplied patterns must not
 *   be able to hang the scanner with catastrophic backtracking),
 * - banned topics: a topic fires when at least `minHits` of its keywords appear,
 * - a model allow-list,
 * - a per-workload token budget over a time window. It needs provider-reported
 *   usage: the monitor sets `ctx.usage` on the same ScanContext before calling
 *   StreamScan.end(), and the check runs at end().
 */
import { RE2JS } from 're2js'
import { errMsg } from '../diagnostics.js'
import { arrayOf, nonEmptyString, numberIn, optionError, plainObject, positiveInt } from '../options.js'
import type { Finding, ScanContext, Scanner, StreamScan } from '../types.js'
import { WindowedStream } from './stream.js'
import { DEFAULT_MAX_SCAN_CHARS, scanMessages, shorten, type TextMatch } from './util.js'

export interface BannedTopic {
  name: string
  keywords: string[]
  /** distinct keywords needed; default 2 */
  minHits?: number
}

export interface TokenBudget {
  /** tokens (input + output) allowed per workload per window */
  tokens: number
  /** window length; default one hour */
  windowMs?: number
}

export interface PolicyOptions {
  bannedSubstrings?: string[]
  /** match banned substrings only as whole words; default true */
  wholeWords?: boolean
  /** RE2 syntax (linear time) */
  bannedPatterns?: string[]
  bannedTopics?: BannedTopic[]
  /** models allowed; `*` at the end matches a prefix (e.g. "gpt-4o*") */
  allowedModels?: string[]
  tokenBudget?: TokenBudget
  /** also scan responses for banned content; default true */
  scanResponses?: boolean
  /** workloads tracked for the budget at once; default 10 000 (the oldest are forgotten and counted) */
  maxWorkloads?: number
  maxScanChars?: number
  /** clock, for tests */
  now?: () => number
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

function compilePattern(name: string, src: string): RE2JS {
  try {
    return RE2JS.compile(src, RE2JS.CASE_INSENSITIVE)
  } catch (err) {
    throw new TypeError(`${name}: invalid regular expression ${JSON.stringify(src)} (RE2 syntax: no lookaround or backreferences): ${errMsg(err)}`, { cause: err })
  }
}

/** A topic with at least one keyword; minHits defaults to 2 (1 for a single keyword, which could never reach 2). */
function bannedTopic(t: unknown, name: string): { name: string; re: RegExp; minHits: number } {
  const o = plainObject(name, t, true)!
  const topicName = nonEmptyString(`${name}.name`, o['name'])
  const keywords = arrayOf(`${name}.keywords`, o['keywords'], (k, kn) => nonEmptyString(kn, k), true)!
  if (!keywords.length) throw optionError(`${name}.keywords`, 'a non-empty array', keywords)
  const minHits = positiveInt(`${name}.minHits`, o['minHits']) ?? Math.min(2, keywords.length)
  if (minHits > keywords.length) throw optionError(`${name}.minHits`, `at most the number of keywords (${keywords.length})`, minHits)
  return { name: topicName, minHits, re: new RegExp(`(?<![\\p{L}\\p{N}_])(?:${keywords.map(escapeRe).join('|')})(?![\\p{L}\\p{N}_])`, 'giu') }
}

export class PolicyScanner implements Scanner {
  readonly name = 'policy'
  private readonly banned?: RegExp
  private readonly patterns: Array<{ src: string; re: RE2JS }>
  private readonly topics: Array<{ name: string; re: RegExp; minHits: number }>
  private readonly usage = new Map<string, { windowStart: number; tokens: number }>()
  private readonly maxChars: number
  /** workloads forgotten because the budget table was full */
  evictedWorkloads = 0

  constructor(private readonly opts: PolicyOptions = {}) {
    // every option is checked here: a configuration error must fail at construction, not while scanning (or never)
    this.maxChars = positiveInt('policy.maxScanChars', opts.maxScanChars) ?? DEFAULT_MAX_SCAN_CHARS
    const subs = arrayOf('policy.bannedSubstrings', opts.bannedSubstrings, (s, name) => nonEmptyString(name, s)) ?? []
    if (subs.length) {
      const alt = subs.map(escapeRe).join('|')
      this.banned = opts.wholeWords === false ? new RegExp(alt, 'giu') : new RegExp(`(?<![\\p{L}\\p{N}_])(?:${alt})(?![\\p{L}\\p{N}_])`, 'giu')
    }
    this.patterns = arrayOf('policy.bannedPatterns', opts.bannedPatterns, (src, name) => ({ src: nonEmptyString(name, src), re: compilePattern(name, src as string) })) ?? []
    this.topics = arrayOf('policy.bannedTopics', opts.bannedTopics, bannedTopic) ?? []
    arrayOf('policy.allowedModels', opts.allowedModels, (m, name) => nonEmptyString(name, m))
    const budget = plainObject('policy.tokenBudget', opts.tokenBudget)
    if (budget) {
      // NaN or a negative budget would report every call as over budget
      positiveInt('policy.tokenBudget.tokens', budget['tokens'], true)
      numberIn('policy.tokenBudget.windowMs', budget['windowMs'], 0, Number.MAX_VALUE, true)
    }
    positiveInt('policy.maxWorkloads', opts.maxWorkloads)
  }

  scanRequest(ctx: ScanContext): Finding[] {
    const out = scanMessages(this.name, ctx, this.maxChars, (m) => m.role !== 'system' && m.role !== 'developer', (t) => this.detect(t, 0))
    const allowed = this.opts.allowedModels
    if (allowed && allowed.length) {
      const model = typeof ctx?.model === 'string' ? ctx.model : ''
      const ok = allowed.some((a) => (a.endsWith('*') ? model.startsWith(a.slice(0, -1)) : model === a))
      if (!ok) {
        out.push({ scanner: this.name, kind: 'model_not_allowed', severity: 'medium', score: 1, location: { part: 'request', start: 0, end: 0 }, snippet: model || '<none>', evidence: `model "${model || 'unknown'}" is not in the allow-list` })
      }
    }
    return out
  }

  startResponse(ctx: ScanContext): StreamScan {
    const scanBody = this.opts.scanResponses !== false && (this.banned || this.patterns.length || this.topics.length)
    const inner = scanBody ? new WindowedStream(this.name, (t, from) => this.detect(t, from), { lookback: 512, maxChars: this.maxChars }) : undefined
    return {
      push: (text: string) => (inner ? inner.push(text) : []),
      end: () => {
        const out = inner ? inner.end() : []
        const b = this.budgetFinding(ctx)
        if (b) out.push(b)
        return out
      },
    }
  }

  private detect(text: string, from: number): TextMatch[] {
    const out: TextMatch[] = []
    if (this.banned) {
      this.banned.lastIndex = from
      for (let m = this.banned.exec(text); m !== null; m = this.banned.exec(text)) {
        out.push({ kind: 'banned_substring', severity: 'medium', score: 1, start: m.index, end: m.index + m[0].length, snippet: shorten(m[0], 60), evidence: 'banned substring' })
      }
    }
    if (this.patterns.length) {
      const slice = text.slice(from)
      for (const p of this.patterns) {
        const m = p.re.matcher(slice)
        let guard = 0
        while (m.find() && guard++ < 100) {
          if (m.end() === m.start()) break
          out.push({ kind: 'banned_pattern', severity: 'medium', score: 1, start: from + m.start(), end: from + m.end(), snippet: shorten(m.group() ?? '', 60), evidence: `matches banned pattern /${shorten(p.src, 60)}/` })
        }
      }
    }
    for (const t of this.topics) {
      t.re.lastIndex = 0 // topics look at the whole window: keywords may be far apart
      const hits = new Map<string, [number, number]>()
      for (let m = t.re.exec(text); m !== null; m = t.re.exec(text)) {
        const k = m[0].toLowerCase()
        if (!hits.has(k)) hits.set(k, [m.index, m.index + m[0].length])
      }
      if (hits.size >= t.minHits) {
        const spans = [...hits.values()]
        const start = Math.min(...spans.map((s) => s[0]))
        if (start < from && from > 0) continue // reported by an earlier window
        out.push({ kind: 'banned_topic', severity: 'medium', score: Math.min(1, hits.size / (t.minHits + 1)), start, end: Math.max(...spans.map((s) => s[1])), snippet: t.name, evidence: `topic "${t.name}": ${[...hits.keys()].slice(0, 6).join(', ')}` })
      }
    }
    return out
  }

  /** Adds this exchange's tokens to the workload's window and reports when the budget is exceeded. */
  private budgetFinding(ctx: ScanContext): Finding | undefined {
    const budget = this.opts.tokenBudget
    const u = ctx?.usage
    if (!budget || !u) return undefined
    const tokens = (u.total_tokens ?? (u.input_tokens ?? 0) + (u.output_tokens ?? 0)) || 0
    if (!Number.isFinite(tokens) || tokens <= 0) return undefined
    const key = ctx.workload ?? 'unknown'
    const now = (this.opts.now ?? Date.now)()
    const windowMs = budget.windowMs ?? 3_600_000
    let e = this.usage.get(key)
    if (!e || now - e.windowStart >= windowMs) e = { windowStart: now, tokens: 0 }
    e.tokens += tokens
    this.usage.delete(key) // re-insert: Map order = least recently used first
    this.usage.set(key, e)
    const max = this.opts.maxWorkloads ?? 10_000
    while (this.usage.size > max) {
      this.usage.delete(this.usage.keys().next().value as string)
      this.evictedWorkloads++
    }
    if (e.tokens <= budget.tokens) return undefined
    return {
      scanner: this.name,
      kind: 'token_budget_exceeded',
      severity: 'medium',
      score: 1,
      location: { part: 'response', start: 0, end: 0 },
      snippet: key,
      evidence: `workload ${key} used ${e.tokens} tokens in the current ${Math.round(windowMs / 60000)} min window (budget ${budget.tokens})${u.estimated ? '; usage estimated' : ''}`,
    }
  }
}
