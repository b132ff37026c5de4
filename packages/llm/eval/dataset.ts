/**
 * Loader for the labelled evaluation set (injection.jsonl, secrets.jsonl, pii.jsonl).
 *
 * Secret and PII samples are stored as templates (⟦alnum:36⟧, ⟦card:4:16:4⟧, ⟦iban:DE⟧, ⟦pem:RSA⟧, ⟦jwt⟧ ...)
 * expanded here with a PRNG seeded by the row id: the values are the same on every run, the repository holds no
 * literal credential (no push-protection noise), and card/IBAN samples get valid Luhn / mod-97 check digits.
 *
 * Every row has a `split`: 'dev' rows were used to tune the scanners, 'heldout' rows were written at the same
 * time and never used for tuning. Report both.
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export type Split = 'dev' | 'heldout'

export interface EvalRow {
  id: string
  split: Split
  /** 1 = should be detected, 0 = must not be */
  label: 0 | 1
  /** injection: attack family or benign category; secrets/pii: expected kind */
  family?: string
  kind?: string | null
  role?: 'user' | 'tool'
  /** obfuscation applied to the seed attack (base64, rot13, zero_width, ...) */
  variant?: string
  text: string
}

const here = dirname(fileURLToPath(import.meta.url))

export function loadEval(name: 'injection' | 'secrets' | 'pii'): EvalRow[] {
  const raw = readFileSync(join(here, `${name}.jsonl`), 'utf8')
  return raw
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const row = JSON.parse(l) as EvalRow
      return { ...row, text: expand(row.text, row.id) }
    })
}

// ---- template expansion

function seedOf(s: string): number {
  let h = 2166136261
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619)
  return h >>> 0
}

/** mulberry32: a small deterministic PRNG */
function prng(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const ALPHABETS: Record<string, string> = {
  alnum: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789',
  b64url: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_',
  b64std: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/',
  b32: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567',
  digits: '0123456789',
  hex: '0123456789abcdef',
  upnum: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789',
}

const IBAN_LEN: Record<string, number> = { DE: 22, GB: 22, NL: 18, FR: 27, CH: 21, ES: 24, IT: 27, BE: 16, PL: 28 }

export function expand(text: string, id: string): string {
  const rnd = prng(seedOf(id))
  const pick = (alpha: string, n: number) => {
    let s = ''
    for (let i = 0; i < n; i++) s += alpha[Math.floor(rnd() * alpha.length)]
    return s
  }
  return text.replace(/⟦([a-z0-9]+)(?::([^⟧]*))?⟧/g, (_all, kind: string, arg = '') => {
    if (ALPHABETS[kind]) return pick(ALPHABETS[kind]!, Number(arg))
    if (kind === 'pem') {
      const label = arg ? `${arg} PRIVATE KEY` : 'PRIVATE KEY'
      const body = pick(ALPHABETS.b64std!, 1600).match(/.{1,64}/g)!.join('\n')
      return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----`
    }
    if (kind === 'jwt') {
      const b64u = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')
      return `${b64u({ alg: 'HS256', typ: 'JWT' })}.${b64u({ sub: pick(ALPHABETS.digits!, 10), name: 'user', iat: 1700000000 + Math.floor(rnd() * 1e6) })}.${pick(ALPHABETS.b64url!, 43)}`
    }
    if (kind === 'card') {
      const [prefix = '4', len = '16', fmt = 'plain'] = arg.split(':')
      let d = prefix + pick(ALPHABETS.digits!, Number(len) - prefix.length - 1)
      d += luhnDigit(d)
      if (fmt === '4') return d.match(/.{1,4}/g)!.join(' ')
      if (fmt === '-') return d.match(/.{1,4}/g)!.join('-')
      if (fmt === 'amex') return `${d.slice(0, 4)} ${d.slice(4, 10)} ${d.slice(10)}`
      return d
    }
    if (kind === 'iban') {
      const [cc = 'DE', fmt] = arg.split(':')
      const n = IBAN_LEN[cc] ?? 22
      const bban = cc === 'GB' ? pick('ABCDEFGHIJKLMNOPQRSTUVWXYZ', 4) + pick(ALPHABETS.digits!, n - 8) : pick(ALPHABETS.digits!, n - 4)
      const iban = cc + ibanCheck(cc, bban) + bban
      return fmt === 'spaced' ? iban.match(/.{1,4}/g)!.join(' ') : iban
    }
    return _all
  })
}

function luhnDigit(partial: string): string {
  for (let c = 0; c <= 9; c++) {
    const s = partial + c
    let sum = 0
    let dbl = false
    for (let i = s.length - 1; i >= 0; i--) {
      let v = s.charCodeAt(i) - 48
      if (dbl) {
        v *= 2
        if (v > 9) v -= 9
      }
      sum += v
      dbl = !dbl
    }
    if (sum % 10 === 0) return String(c)
  }
  return '0'
}

function ibanCheck(cc: string, bban: string): string {
  const s = `${bban}${cc}00`
  let rem = 0
  for (const ch of s) {
    const c = ch.charCodeAt(0)
    const v = c >= 65 ? c - 55 : c - 48
    rem = v >= 10 ? (rem * 100 + v) % 97 : (rem * 10 + v) % 97
  }
  return String(98 - rem).padStart(2, '0')
}
