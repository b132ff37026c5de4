/**
 * PII with validation, not bare regexes (Presidio's approach): a candidate
 * is reported only when it passes its checksum or registry rules.
 * - email: syntax + a TLD; reserved example domains (RFC 2606) are placeholders
 * - phone: libphonenumber-js (full metadata) finds and validates numbers
 * - credit card: brand prefix + length + Luhn; well-known test numbers are placeholders
 * - IBAN: country length table + ISO 7064 mod 97
 * - US SSN: dashed/spaced form (or bare 9 digits next to "SSN"), area not 000/666/9xx,
 *   group not 00, serial not 0000, and not the advertised/sample numbers
 * - IP: IPv4 octets <= 255, IPv6 through node:net; loopback, unspecified and
 *   documentation ranges are skipped
 */
import { isIPv6 } from 'node:net'
import { isSupportedCountry, parsePhoneNumberFromString } from 'libphonenumber-js/max'
import type { CountryCode } from 'libphonenumber-js'
import { arrayOf, optionError, positiveInt } from '../options.js'
import type { Finding, ScanContext, Scanner, StreamScan } from '../types.js'
import { WindowedStream } from './stream.js'
import { DEFAULT_MAX_SCAN_CHARS, scanMessages, type TextMatch } from './util.js'

export type PiiKind = 'email' | 'phone' | 'credit_card' | 'iban' | 'us_ssn' | 'ip_address'

export interface PiiOptions {
  /** which kinds to detect; default all */
  kinds?: PiiKind[]
  /** region for numbers written without +country code; default 'US' */
  defaultCountry?: CountryCode
  /** report private (RFC 1918, ULA, link-local) IPs; default true */
  privateIps?: boolean
  maxScanChars?: number
}

// ---- email
export const EMAIL = /(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9-]|\.[A-Za-z0-9])/g
const RESERVED_EMAIL_DOMAIN = /(?:^|\.)(?:example\.(?:com|net|org)|[a-z0-9-]+\.(?:example|test|invalid|localhost))$/i
/** file names like logo@2x.png look like e-mail addresses */
const NOT_TLD = /^(?:png|jpe?g|gif|svg|webp|js|ts|css|json|py|md|txt|lock|yaml|yml)$/i

/** the same pattern, tried only where an address can start (see emailStarts) */
const EMAIL_AT = new RegExp(EMAIL.source, 'y')
const isLocalChar = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45
const isAlnum = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)

/**
 * The matches of EMAIL from `from`, found from the '@' signs: the local part cannot contain '@' and
 * the look-behind forbids starting inside it, so each '@' fixes the only possible start (the start
 * of the run of local-part chars before it). Running EMAIL itself would try every letter of the text.
 */
export function* emailMatches(text: string, from: number): Generator<RegExpExecArray> {
  let next = from
  for (let at = text.indexOf('@', from); at >= 0; at = text.indexOf('@', at + 1)) {
    let start = at
    while (start > 0 && at - start <= 64 && isLocalChar(text.charCodeAt(start - 1))) start--
    if (start < next || start === at || at - start > 64 || !isAlnum(text.charCodeAt(start))) continue
    EMAIL_AT.lastIndex = start
    const m = EMAIL_AT.exec(text)
    if (m === null) continue
    next = start + m[0].length
    yield m
  }
}

function emails(text: string, from: number, out: TextMatch[]): void {
  for (const m of emailMatches(text, from)) {
    const v = m[0]
    const at = v.indexOf('@')
    const domain = v.slice(at + 1)
    const tld = domain.slice(domain.lastIndexOf('.') + 1)
    if (RESERVED_EMAIL_DOMAIN.test(domain) || NOT_TLD.test(tld)) continue
    if (text[m.index + v.length] === ':' && /^git$/i.test(v.slice(0, at))) continue // git@host:org/repo
    if (v.slice(0, at).includes('..')) continue
    out.push({ kind: 'email', severity: 'medium', score: 0.9, start: m.index, end: m.index + v.length, snippet: `${v[0]}***@${domain}`, evidence: 'e-mail address' })
  }
}

// ---- credit cards
const CARD = /(?<![\d.-])(?:\d{4}[ -]){3}\d{1,7}(?![\d-])|(?<![\d.-])\d{4}[ -]\d{6}[ -]\d{4,5}(?![\d-])|(?<![\d.-])\d{12,19}(?![\d.-])/g
const TEST_CARDS = new Set(['4111111111111111', '4242424242424242', '4012888888881881', '5555555555554444', '5105105105105100', '378282246310005', '371449635398431', '6011111111111117', '6011000990139424', '3530111333300000', '4000056655665556', '5200828282828210', '4000000000000002', '4000000000009995'])

export function luhnValid(digits: string): boolean {
  let sum = 0
  let dbl = false
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48
    if (d < 0 || d > 9) return false
    if (dbl) {
      d *= 2
      if (d > 9) d -= 9
    }
    sum += d
    dbl = !dbl
  }
  return sum % 10 === 0
}

/** The card brand for a number, by IIN prefix and allowed lengths; undefined when none fits. */
export function cardBrand(d: string): string | undefined {
  const n = d.length
  const p2 = +d.slice(0, 2)
  const p3 = +d.slice(0, 3)
  const p4 = +d.slice(0, 4)
  const p6 = +d.slice(0, 6)
  if (d[0] === '4' && (n === 13 || n === 16 || n === 19)) return 'visa'
  if (((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) && n === 16) return 'mastercard'
  if ((p2 === 34 || p2 === 37) && n === 15) return 'amex'
  if ((p4 === 6011 || p2 === 65 || (p3 >= 644 && p3 <= 649) || (p6 >= 622126 && p6 <= 622925)) && n >= 16 && n <= 19) return 'discover'
  if (p4 >= 3528 && p4 <= 3589 && n >= 16 && n <= 19) return 'jcb'
  if (((p3 >= 300 && p3 <= 305) || p2 === 36 || p2 === 38 || p2 === 39 || p3 === 309) && n >= 14 && n <= 19) return 'diners'
  if (p2 === 62 && n >= 16 && n <= 19) return 'unionpay'
  return undefined
}

function cards(text: string, from: number, out: TextMatch[]): void {
  CARD.lastIndex = from
  for (let m = CARD.exec(text); m !== null; m = CARD.exec(text)) {
    const raw = m[0]
    const digits = raw.replace(/[ -]/g, '')
    if (/[ -]/.test(raw) && new Set(raw.match(/[ -]/g)).size > 1) continue // mixed separators
    const brand = cardBrand(digits)
    if (!brand || !luhnValid(digits) || TEST_CARDS.has(digits) || /^(\d)\1+$/.test(digits)) continue
    out.push({ kind: 'credit_card', severity: 'high', score: 0.95, start: m.index, end: m.index + raw.length, snippet: `${brand} ****${digits.slice(-4)}`, evidence: `${brand} number, ${digits.length} digits, Luhn valid` })
  }
}

// ---- IBAN
const IBAN_LENGTH: Record<string, number> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BR: 29, BY: 28, CH: 21, CR: 22, CY: 28, CZ: 24, DE: 22,
  DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28,
  IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20, LV: 21, LY: 25, MC: 27,
  MD: 24, ME: 22, MK: 19, MR: 27, MT: 31, MU: 30, NL: 18, NO: 15, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, SA: 24,
  SC: 31, SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29, VA: 22, VG: 24, XK: 20,
}
const IBAN = /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}(?![A-Za-z0-9])/g

export function ibanValid(iban: string): boolean {
  const s = iban.replace(/ /g, '')
  if (IBAN_LENGTH[s.slice(0, 2)] !== s.length) return false
  const moved = s.slice(4) + s.slice(0, 4)
  let rem = 0
  for (const ch of moved) {
    const c = ch.charCodeAt(0)
    const v = c >= 65 ? c - 55 : c - 48
    rem = v >= 10 ? (rem * 100 + v) % 97 : (rem * 10 + v) % 97
  }
  return rem === 1
}

function ibans(text: string, from: number, out: TextMatch[]): void {
  IBAN.lastIndex = from
  for (let m = IBAN.exec(text); m !== null; m = IBAN.exec(text)) {
    let raw = m[0]
    const len = IBAN_LENGTH[raw.slice(0, 2)]
    if (!len) continue
    // the regex may swallow a following word glued by one space; trim to the country length
    let count = 0
    let cut = raw.length
    for (let i = 0; i < raw.length; i++) if (raw[i] !== ' ' && ++count === len) { cut = i + 1; break }
    raw = raw.slice(0, cut)
    if (!ibanValid(raw)) continue
    const s = raw.replace(/ /g, '')
    out.push({ kind: 'iban', severity: 'high', score: 0.95, start: m.index, end: m.index + raw.length, snippet: `${s.slice(0, 2)}** ****${s.slice(-4)}`, evidence: `${s.slice(0, 2)} IBAN, ${s.length} chars, mod-97 valid` })
  }
}

// ---- US SSN
const SSN = /(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])|(?<!\d)(\d{3})(\d{2})(\d{4})(?!\d)/g
const SSN_CONTEXT = /\b(?:ssn|social security|soc\.? ?sec|ss#|tax ?id|itin)\b/i
const SSN_INVALID = new Set(['078051120', '219099999', '123456789', '457555462'])

export function ssnValid(area: string, group: string, serial: string): boolean {
  const a = +area
  if (a === 0 || a === 666 || a >= 900 || group === '00' || serial === '0000') return false
  if (SSN_INVALID.has(area + group + serial)) return false
  return !/^(\d)\1{8}$/.test(area + group + serial)
}

function ssns(text: string, from: number, out: TextMatch[]): void {
  SSN.lastIndex = from
  for (let m = SSN.exec(text); m !== null; m = SSN.exec(text)) {
    const dashed = m[1] !== undefined
    const [a, g, s] = dashed ? [m[1]!, m[3]!, m[4]!] : [m[5]!, m[6]!, m[7]!]
    if (!dashed && !SSN_CONTEXT.test(text.slice(Math.max(0, m.index - 40), m.index))) continue
    if (dashed && m[2] === ' ' && !SSN_CONTEXT.test(text.slice(Math.max(0, m.index - 40), m.index))) continue
    if (!ssnValid(a, g, s)) continue
    out.push({ kind: 'us_ssn', severity: 'critical', score: dashed ? 0.85 : 0.8, start: m.index, end: m.index + m[0].length, snippet: '***-**-****', evidence: 'US SSN format with valid area/group/serial' })
  }
}

// ---- IP addresses
const IPV4 = /(?<![\d.])(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}(?![\d]|\.\d)/g
export const IPV6 = /(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{1,4}:){1,7}(?::|(?::[0-9A-Fa-f]{1,4}){1,7}|[0-9A-Fa-f]{1,4})(?![0-9A-Fa-f:])/g

/** IPV6 anchored: a whole run of hex digits and colons */
const IPV6_WHOLE = new RegExp(`^(?:${IPV6.source.replace(/^\(\?<!\[0-9A-Fa-f:\]\)/, '').replace(/\(\?!\[0-9A-Fa-f:\]\)$/, '')})$`)
const isHexOrColon = (c: number) => (c >= 48 && c <= 58) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102)

/**
 * The matches of IPV6 from `from`. Its look-behind and look-ahead make every match a whole maximal
 * run of hex digits and colons, so only the runs around each ':' are tested (IPV6 itself would be
 * tried at every hex letter of the text). Exported for the tests, which check it against IPV6 itself.
 */
export function* ipv6Runs(text: string, from: number): Generator<{ 0: string; index: number }> {
  let scanned = from
  for (let colon = text.indexOf(':', from); colon >= 0; colon = text.indexOf(':', Math.max(colon + 1, scanned))) {
    let start = colon
    while (start > 0 && isHexOrColon(text.charCodeAt(start - 1))) start--
    let end = colon + 1
    while (end < text.length && isHexOrColon(text.charCodeAt(end))) end++
    scanned = end
    if (start < from) continue
    const run = text.slice(start, end)
    if (IPV6_WHOLE.test(run)) yield { 0: run, index: start }
  }
}

/** The first three octets of a dotted IPv4 address (parsed in place: one call per address found, often many in logs). */
function octets(ip: string): [number, number, number] {
  const o: [number, number, number] = [0, 0, 0]
  let k = 0
  for (let i = 0; i < ip.length && k < 3; i++) {
    const c = ip.charCodeAt(i)
    if (c === 46) k++
    else o[k] = o[k]! * 10 + (c - 48)
  }
  return o
}

function ipv4Class(ip: string): 'skip' | 'private' | 'public' {
  const [a, b, c] = octets(ip)
  if (a === 0 || a === 127 || a >= 224) return 'skip'
  if ((a === 192 && b === 0 && c === 2) || (a === 198 && b === 51 && c === 100) || (a === 203 && b === 0 && c === 113)) return 'skip' // RFC 5737
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127)) return 'private'
  return 'public'
}

function ips(text: string, from: number, privateIps: boolean, numeric: boolean, out: TextMatch[]): void {
  IPV4.lastIndex = from
  for (let m = numeric ? IPV4.exec(text) : null; m !== null; m = IPV4.exec(text)) {
    const ip = m[0]
    const before = text.slice(Math.max(0, m.index - 9), m.index)
    if (/(?:\bv|version|ver\.?)\s?$/i.test(before)) continue // version strings
    const cls = ipv4Class(ip)
    if (cls === 'skip' || (cls === 'private' && !privateIps)) continue
    out.push({ kind: 'ip_address', severity: cls === 'public' ? 'medium' : 'low', score: 0.8, start: m.index, end: m.index + ip.length, snippet: ip.replace(/\.\d+$/, '.***'), evidence: `${cls} IPv4 address` })
  }
  for (const m of ipv6Runs(text, from)) {
    const ip = m[0]
    const groups = ip.split(':').filter((g) => g.length > 0)
    if (groups.length < 3 || !/\d/.test(ip) || !isIPv6(ip)) continue
    const low = ip.toLowerCase()
    if (low.startsWith('2001:db8:') || low === '::1') continue
    const priv = /^(?:fe[89ab]|f[cd])/.test(low)
    if (priv && !privateIps) continue
    out.push({ kind: 'ip_address', severity: priv ? 'low' : 'medium', score: 0.8, start: m.index, end: m.index + ip.length, snippet: `${groups.slice(0, 2).join(':')}:***`, evidence: `${priv ? 'private' : 'public'} IPv6 address` })
  }
}

// ---- phone numbers
// Candidates are found with a cheap regex and only they go through libphonenumber (parsing the whole
// text with findPhoneNumbersInText costs milliseconds on digit-heavy logs).
const PHONE_CANDIDATE = /(?<![\p{L}\p{N}_+\-.])\+?\(?\d[\d ().\-\u00a0]{5,22}\d(?![\p{L}\p{N}_\-]|\.\d)/gu
const PHONE_CONTEXT = /(?:phone|tel|call|mobile|cell|fax|whatsapp|sms|contact|reach|número|numero|nummer|telefon|téléphone)/i

function phones(text: string, from: number, country: CountryCode, taken: TextMatch[], out: TextMatch[]): void {
  PHONE_CANDIDATE.lastIndex = from
  for (let m = PHONE_CANDIDATE.exec(text); m !== null; m = PHONE_CANDIDATE.exec(text)) {
    const raw = m[0].trim()
    const start = m.index
    const end = start + raw.length
    const digits = raw.replace(/\D/g, '')
    if (digits.length < 7 || digits.length > 15) continue
    if (taken.some((t) => start < t.end && end > t.start)) continue
    // dates and times (2024-01-15, 12:30:45) are not phone numbers
    if (/^\d{4}-\d{2}-\d{2}/.test(raw) || /^\d{1,2}[./-]\d{1,2}[./-]\d{2,4}$/.test(raw) || text[end] === ':' || text[start - 1] === ':') continue
    const before = text.slice(Math.max(0, start - 30), start)
    // a bare run of digits without separators or "+" is more likely an id than a phone number
    if (/^\d+$/.test(raw) && !PHONE_CONTEXT.test(before)) continue
    let num
    try {
      num = parsePhoneNumberFromString(raw, { defaultCountry: country })
    } catch {
      continue
    }
    if (!num || !num.isValid()) continue
    const e164 = num.number
    out.push({ kind: 'phone', severity: 'medium', score: 0.85, start, end, snippet: `${e164.slice(0, 3)}*****${e164.slice(-2)}`, evidence: `valid ${num.country ?? 'international'} phone number` })
  }
}

const ALL_KINDS: ReadonlySet<PiiKind> = new Set<PiiKind>(['email', 'phone', 'credit_card', 'iban', 'us_ssn', 'ip_address'])
/** every kind but e-mail needs a digit (IPv6 needs a ':' too): text without one skips those passes */
const DIGIT = /[0-9]/g
/**
 * Part of every card, SSN, IPv4 and phone match (a digit and 5 more digits or separators) or of every
 * IBAN (country code and check digits). Most prose and code has neither: one pass then skips five.
 */
const NUMERIC = /\d[\d ().\-\u00a0]{5}|[A-Z]{2}\d{2}/g

export function detectPii(text: string, from = 0, opts: PiiOptions = {}): TextMatch[] {
  const kinds: ReadonlySet<PiiKind> = opts.kinds ? new Set<PiiKind>(opts.kinds) : ALL_KINDS
  const out: TextMatch[] = []
  if (kinds.has('email') && text.indexOf('@', from) >= 0) emails(text, from, out)
  DIGIT.lastIndex = from
  if (!DIGIT.test(text)) return out
  NUMERIC.lastIndex = from
  const numeric = NUMERIC.test(text)
  if (numeric && kinds.has('credit_card')) cards(text, from, out)
  if (numeric && kinds.has('iban')) ibans(text, from, out)
  if (numeric && kinds.has('us_ssn')) ssns(text, from, out)
  if (kinds.has('ip_address')) ips(text, from, opts.privateIps !== false, numeric, out)
  if (numeric && kinds.has('phone')) phones(text, from, opts.defaultCountry ?? 'US', out.slice(), out)
  out.sort((a, b) => a.start - b.start)
  return out
}

/** Scans every request message and the streamed response for personal data. */
export class PiiScanner implements Scanner {
  readonly name = 'pii'
  private readonly maxChars: number
  constructor(private readonly opts: PiiOptions = {}) {
    // a misspelt kind or country would silently detect nothing
    arrayOf('pii.kinds', opts.kinds, (k, name) => {
      if (!ALL_KINDS.has(k as PiiKind)) throw optionError(name, `one of ${[...ALL_KINDS].join(', ')}`, k)
    })
    const country = opts.defaultCountry
    if (country !== undefined && (typeof country !== 'string' || !isSupportedCountry(country))) throw optionError('pii.defaultCountry', "a country code libphonenumber-js knows (ISO 3166-1 alpha-2, upper case, e.g. 'US')", country)
    this.maxChars = positiveInt('pii.maxScanChars', opts.maxScanChars) ?? DEFAULT_MAX_SCAN_CHARS
  }
  scanRequest(ctx: ScanContext): Finding[] {
    return scanMessages(this.name, ctx, this.maxChars, () => true, (t) => detectPii(t, 0, this.opts))
  }
  startResponse(_ctx: ScanContext): StreamScan {
    return new WindowedStream(this.name, (t, from) => detectPii(t, from, this.opts), { lookback: 160, maxChars: this.maxChars })
  }
}
