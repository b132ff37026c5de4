/**
 * Secrets: provider credential formats (gitleaks-style rules with a literal
 * prefix, so a rule costs one fast regex pass), PEM private keys, JWTs whose
 * header decodes to JSON with an `alg`, and generic high-entropy values next
 * to a keyword such as `api_key=` (Shannon entropy threshold, like gitleaks'
 * generic-api-key). Obvious placeholders (EXAMPLE, xxxx, your_key_here) are
 * allowed.
 */
import { positiveInt } from '../options.js'
import { RE2JS } from 're2js'
import type { Finding, ScanContext, Severity, StreamScan } from '../types.js'
import { WindowedStream } from './stream.js'
import { DEFAULT_MAX_SCAN_CHARS, isPlaceholder, maskSecret, scanMessages, shannonEntropy, type TextMatch } from './util.js'
import type { Scanner } from '../types.js'

interface SecretRule {
  kind: string
  severity: Severity
  /** global regex; group 1 (if any) is the secret, otherwise the whole match */
  re: RegExp
  /** chars of the match that are a public marker (kept in the masked snippet) */
  keep: number
  /** extra validation of the secret value */
  check?: (value: string) => boolean
  minEntropy?: number
}

// Look-behind/ahead instead of \b so a key glued to `=` or a quote is found, but a key inside a longer token is not.
const B = '(?<![A-Za-z0-9_-])'
const E = '(?![A-Za-z0-9_-])'

/** The rules. Every one starts with a literal so V8 scans for it quickly, and none has nested quantifiers. */
// Precise rules for findings; @bpfkit/core's redact.ts keeps a broad list for masking command lines. Add a new format to both.
export const SECRET_RULES: readonly SecretRule[] = [
  { kind: 'anthropic_api_key', severity: 'critical', keep: 14, re: new RegExp(`${B}sk-ant-(?:api|admin|oat|sid)\\d\\d-[A-Za-z0-9_-]{32,200}${E}`, 'g'), minEntropy: 3.5 },
  {
    kind: 'openai_api_key', severity: 'critical', keep: 8, minEntropy: 3.5,
    re: new RegExp(`${B}sk-(?:(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{40,300}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}|[A-Za-z0-9]{48})${E}`, 'g'),
  },
  { kind: 'aws_access_key_id', severity: 'high', keep: 4, re: new RegExp(`(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}(?![A-Z0-9])`, 'g'), minEntropy: 3.0 },
  {
    kind: 'aws_secret_access_key', severity: 'critical', keep: 0, minEntropy: 4.0,
    re: /(?:aws_?secret_?access_?key|aws_?secret|secret_?access_?key|secretaccesskey)["']?\s{0,3}(?:[:=]|=>|:=)\s{0,3}["']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])/gi,
  },
  { kind: 'github_token', severity: 'critical', keep: 4, re: new RegExp(`${B}gh[pousr]_[A-Za-z0-9]{36,251}${E}`, 'g'), minEntropy: 3.0 },
  { kind: 'github_fine_grained_pat', severity: 'critical', keep: 11, re: new RegExp(`${B}github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}${E}`, 'g') },
  { kind: 'gitlab_token', severity: 'critical', keep: 6, re: new RegExp(`${B}gl(?:pat|ptt|dt|rt|cbt|oas)-[A-Za-z0-9_-]{20,80}${E}`, 'g'), minEntropy: 3.0 },
  { kind: 'slack_token', severity: 'high', keep: 5, re: new RegExp(`${B}xox[abprse]-[0-9]{6,13}-[A-Za-z0-9-]{8,250}${E}`, 'g'), minEntropy: 3.0 },
  { kind: 'slack_webhook', severity: 'high', keep: 34, re: /https?:\/\/hooks\.slack\.com\/(?:services|workflows|triggers)\/T[A-Z0-9]{6,12}\/[A-Z0-9]{6,12}\/[A-Za-z0-9]{20,40}/g },
  { kind: 'stripe_secret_key', severity: 'critical', keep: 8, re: new RegExp(`${B}(?:sk|rk)_live_[A-Za-z0-9]{20,247}${E}`, 'g'), minEntropy: 3.0 },
  { kind: 'stripe_publishable_key', severity: 'low', keep: 8, re: new RegExp(`${B}pk_live_[A-Za-z0-9]{20,247}${E}`, 'g'), minEntropy: 3.0 },
  { kind: 'google_api_key', severity: 'high', keep: 4, re: new RegExp(`${B}AIza[0-9A-Za-z_-]{35}${E}`, 'g'), minEntropy: 3.0 },
  // the whole block, so redaction masks the key body too; without an END line, the header plus the base64 lines that follow
  { kind: 'private_key', severity: 'critical', keep: 0, re: /-----BEGIN[ A-Z0-9]{0,40} PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]{0,12000}?-----END[ A-Z0-9]{0,40} PRIVATE KEY(?: BLOCK)?-----|(?:\r?\n[A-Za-z0-9+/=: ,-]{0,200})*)/g, check: pemHasBody },
  { kind: 'jwt', severity: 'high', keep: 3, re: new RegExp(`${B}eyJ[A-Za-z0-9_-]{8,2000}\\.eyJ[A-Za-z0-9_-]{4,8000}\\.[A-Za-z0-9_-]{0,1500}${E}`, 'g'), check: jwtHeaderOk },
]

/** A PEM header followed by at least one line of base64 (not a doc that just names the header). */
function pemHasBody(v: string): boolean {
  const after = v.slice(0, 400)
  return /-----\s*\r?\n(?:[A-Za-z-]+:[^\n]*\r?\n)*\s*(?:\r?\n)?[A-Za-z0-9+/=]{40,}/.test(after)
}

function b64urlDecode(s: string): string | undefined {
  try {
    return Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8')
  } catch {
    return undefined
  }
}

/** A JWT's first part must decode to a JSON object with `alg`; the second to a JSON object. */
function jwtHeaderOk(v: string): boolean {
  const [h, p] = v.split('.')
  try {
    const header = JSON.parse(b64urlDecode(h ?? '') ?? '') as unknown
    const payload = JSON.parse(b64urlDecode(p ?? '') ?? '') as unknown
    return typeof header === 'object' && header !== null && typeof (header as { alg?: unknown }).alg === 'string' && typeof payload === 'object' && payload !== null
  } catch {
    return false
  }
}

/**
 * Generic rule (gitleaks generic-api-key): a keyword, an assignment, and a value with enough entropy.
 * The keyword is found with a literal regex; the assignment after it is matched with re2js (linear time)
 * on a short window, because it has the optional parts where a backtracking engine could blow up.
 */
const GENERIC_KEYWORD = /(?:api[_.-]?key|apikey|secret|token|passw(?:or)?d|passwd|pwd|access[_.-]?key|auth[_.-]?key|credential|client[_.-]?secret|private[_.-]?key|bearer)/gi
const GENERIC_ASSIGN = RE2JS.compile(
  `^[A-Za-z0-9_.-]{0,30}["'\\x60]?[ \\t]{0,5}(?:=|:=|:|=>|\\?=|,|[ \\t])[ \\t"'\\x60=]{0,5}([A-Za-z0-9_+/=.~-]{16,200})(?:[\\x60"'\\s;,)}\\]&]|\\\\[nr]|$)`,
)
const BEARER = RE2JS.compile(`^[ \\t]{1,3}([A-Za-z0-9_+/=.~-]{20,400})(?:[\\x60"'\\s;,)}\\]]|$)`)
const GENERIC_MIN_ENTROPY = 3.5

/** Common non-secret values that follow such keywords (identifiers, file names, types). */
function looksLikeIdentifierOrWord(v: string): boolean {
  if (!/[0-9]/.test(v) || !/[A-Za-z]/.test(v)) return true // real generated keys mix digits and letters
  if (/^[a-z]+(?:[_.-][a-z]+)+$/i.test(v)) return true // snake/dotted words
  if (/\.(?:js|ts|json|py|ya?ml|txt|md|env|pem|key|crt|html|css|go|rs|java)$/i.test(v)) return true
  if (/^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i.test(v)) return true // UUIDs
  if (/^sha(?:1|256|384|512)-/.test(v)) return true // subresource-integrity hashes
  if (/^\d+(?:\.\d+)*$/.test(v)) return true
  return false
}

export interface SecretsOptions {
  /** minimum Shannon entropy (bits/char) for generic keyword=value secrets; default 3.5 */
  genericMinEntropy?: number
  /** set false to turn off the generic keyword rule */
  generic?: boolean
  maxScanChars?: number
}

/**
 * The literal every SECRET_RULES match starts with (case-insensitive: a superset). Text without any
 * of them skips the 14 rule passes after this one (most text; on short messages the per-rule call
 * overhead dominated). Keep it in step with the rules: a rule whose literal is missing here is never run.
 */
const RULE_LITERALS = /sk-|AKIA|ASIA|ABIA|ACCA|secret|gh[pousr]_|github_pat_|gl(?:pat|ptt|dt|rt|cbt|oas)-|xox[abprse]-|hooks\.slack\.com|_live_|AIza|-----BEGIN|eyJ/gi

const NO_RULES: readonly SecretRule[] = []

/** Detects secrets in text. Exported for the Redactor. */
export function detectSecrets(text: string, from = 0, opts: SecretsOptions = {}): TextMatch[] {
  const out: TextMatch[] = []
  const taken: Array<[number, number]> = []
  RULE_LITERALS.lastIndex = from
  const anyRule = RULE_LITERALS.test(text)
  for (const rule of anyRule ? SECRET_RULES : NO_RULES) {
    rule.re.lastIndex = from
    for (let m = rule.re.exec(text); m !== null; m = rule.re.exec(text)) {
      const whole = m[0]
      const value = m[1] ?? whole
      const start = m[1] !== undefined ? m.index + whole.indexOf(m[1]) : m.index
      const end = start + value.length
      if (rule.kind !== 'private_key' && isPlaceholder(value)) continue
      if (rule.minEntropy !== undefined && shannonEntropy(value) < rule.minEntropy) continue
      if (rule.check && !rule.check(value)) continue
      taken.push([start, end])
      out.push({
        kind: rule.kind,
        severity: rule.severity,
        score: 0.95,
        start,
        end,
        snippet: rule.kind === 'private_key' ? `${/^-----BEGIN[ A-Z0-9]* PRIVATE KEY(?: BLOCK)?-----/.exec(value)?.[0] ?? '-----BEGIN PRIVATE KEY-----'}****…(${value.length} chars)` : maskSecret(value, rule.keep),
        evidence: rule.kind === 'private_key' ? 'PEM private key block' : `${rule.kind} format`,
      })
      if (rule.kind === 'aws_access_key_id') {
        const secret = awsSecretNear(text, end)
        if (secret && !isPlaceholder(secret.value)) {
          taken.push([secret.start, secret.start + secret.value.length])
          out.push({ kind: 'aws_secret_access_key', severity: 'critical', score: 0.9, start: secret.start, end: secret.start + secret.value.length, snippet: maskSecret(secret.value), evidence: '40-char key next to an AWS access key id' })
        }
      }
    }
  }
  if (opts.generic !== false) genericSecrets(text, from, opts.genericMinEntropy ?? GENERIC_MIN_ENTROPY, taken, out)
  return dedupe(out)
}

/** An AWS secret key is 40 base64 chars; we accept it without a keyword only within 200 chars after an access key id. */
function awsSecretNear(text: string, after: number): { value: string; start: number } | undefined {
  const win = text.slice(after, after + 200)
  const m = /(?<![A-Za-z0-9/+])([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])/.exec(win)
  if (!m || !m[1] || !/[0-9]/.test(m[1]) || !/[a-z]/.test(m[1]) || !/[A-Z]/.test(m[1]) || shannonEntropy(m[1]) < 4.0) return undefined
  return { value: m[1], start: after + m.index }
}

function genericSecrets(text: string, from: number, minEntropy: number, taken: Array<[number, number]>, out: TextMatch[]): void {
  GENERIC_KEYWORD.lastIndex = from
  let guard = 0
  for (let k = GENERIC_KEYWORD.exec(text); k !== null && guard < 2000; k = GENERIC_KEYWORD.exec(text), guard++) {
    const kwEnd = k.index + k[0].length
    const bearer = /bearer/i.test(k[0])
    const window = text.slice(kwEnd, kwEnd + 260)
    const mm = (bearer ? BEARER : GENERIC_ASSIGN).matcher(window)
    if (!mm.find()) continue
    const value = mm.group(1)
    if (!value) continue
    const start = kwEnd + mm.start(1)
    const end = start + value.length
    if (taken.some(([s, e]) => start < e && end > s)) continue
    if (isPlaceholder(value) || looksLikeIdentifierOrWord(value)) continue
    if (shannonEntropy(value) < minEntropy) continue
    taken.push([start, end])
    out.push({
      kind: 'generic_secret',
      severity: 'high',
      score: 0.7,
      start,
      end,
      snippet: maskSecret(value),
      evidence: `high-entropy value (${shannonEntropy(value).toFixed(2)} bits/char) after "${k[0]}"`,
    })
    GENERIC_KEYWORD.lastIndex = end
  }
}

function dedupe(ms: TextMatch[]): TextMatch[] {
  ms.sort((a, b) => a.start - b.start || b.end - a.end)
  const out: TextMatch[] = []
  for (const m of ms) {
    const prev = out[out.length - 1]
    if (prev && m.start < prev.end && m.end <= prev.end) continue
    out.push(m)
  }
  return out
}

/** Scans every request message and the streamed response for credentials. */
export class SecretsScanner implements Scanner {
  readonly name = 'secrets'
  private readonly maxChars: number
  constructor(private readonly opts: SecretsOptions = {}) {
    this.maxChars = positiveInt('secrets.maxScanChars', opts.maxScanChars) ?? DEFAULT_MAX_SCAN_CHARS
  }
  scanRequest(ctx: ScanContext): Finding[] {
    return scanMessages(this.name, ctx, this.maxChars, () => true, (t) => detectSecrets(t, 0, this.opts))
  }
  startResponse(_ctx: ScanContext): StreamScan {
    return new WindowedStream(this.name, (t, from) => detectSecrets(t, from, this.opts), { lookback: 768, maxChars: this.maxChars })
  }
}
