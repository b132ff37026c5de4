/**
 * Text normalisation before injection matching, keeping a map back to the
 * original offsets. Character-injection tricks (zero-width, tag characters,
 * fullwidth letters, Cyrillic look-alikes inside Latin words, leetspeak)
 * evade detectors that match raw text (arXiv 2504.11168), so we undo them
 * first. Decoding of base64 / hex / rot13 segments is bounded by size and count.
 */

export interface Normalized {
  /** lower-cased, NFKC, invisible chars removed, look-alikes folded */
  text: string
  /** map[i] = offset in the original text of normalized char i; map[text.length] = original length. Absent = identity (ASCII input) */
  map?: number[]
  /** what was undone, for the evidence */
  tricks: string[]
}

const ASCII = /^[\x00-\x7f]*$/
const INVISIBLE = /[\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u202A-\u202E\u2060-\u206F\u3164\uFE00-\uFE0F\uFEFF\uFFA0]/

/** Cyrillic and Greek letters that look like Latin ones (lower case; NFKC + toLowerCase run first). */
const CONFUSABLE: Record<string, string> = {
  а: 'a', в: 'b', с: 'c', ԁ: 'd', е: 'e', һ: 'h', і: 'i', ј: 'j', к: 'k', ӏ: 'l', м: 'm', н: 'h', о: 'o', р: 'p', ԛ: 'q', г: 'r', ѕ: 's', т: 't', υ: 'u', ѵ: 'v', ԝ: 'w', х: 'x', у: 'y', ɡ: 'g', ʏ: 'y',
  α: 'a', β: 'b', ε: 'e', η: 'n', ι: 'i', κ: 'k', ν: 'v', ο: 'o', ρ: 'p', τ: 't', χ: 'x', γ: 'y', ѐ: 'e', ё: 'e', ї: 'i',
}
const LEET: Record<string, string> = { '0': 'o', '1': 'i', '3': 'e', '4': 'a', '5': 's', '7': 't', '@': 'a', $: 's' }

/** NFKC + lower case of one code point, and whether NFKC changed it; undefined = an invisible char (removed) */
type NormalizedChar = { text: string; changed: boolean } | undefined
/**
 * Per-code-point results, computed once per process: String.normalize() per char dominated the
 * time on non-Latin text. Bounded: code points past the cap are computed each time.
 */
const CHAR_CACHE = new Map<number, NormalizedChar>()
const CHAR_CACHE_MAX = 16_384

function normalizedChar(cp: number): NormalizedChar {
  const hit = CHAR_CACHE.get(cp)
  if (hit !== undefined || CHAR_CACHE.has(cp)) return hit
  const ch = String.fromCodePoint(cp)
  let e: NormalizedChar
  if (INVISIBLE.test(ch) || (cp >= 0xe0100 && cp <= 0xe01ef)) e = undefined
  else {
    const n = ch.normalize('NFKC').toLowerCase()
    e = { text: n, changed: n !== ch.toLowerCase() }
  }
  if (CHAR_CACHE.size < CHAR_CACHE_MAX) CHAR_CACHE.set(cp, e)
  return e
}

/** Normalises text for matching; see the module comment. */
export function normalizeForMatching(input: string): Normalized {
  const tricks: string[] = []
  let text: string
  let map: number[] | undefined
  if (ASCII.test(input)) {
    text = input.toLowerCase()
  } else {
    const parts: string[] = []
    const m: number[] = []
    map = m
    let removed = 0
    let changed = 0
    for (let i = 0; i < input.length; ) {
      const c = input.charCodeAt(i)
      if (c < 0x80) {
        // a run of ASCII: lower-cased in one call
        let j = i + 1
        while (j < input.length && input.charCodeAt(j) < 0x80) j++
        parts.push(input.slice(i, j).toLowerCase())
        for (let k = i; k < j; k++) m.push(k)
        i = j
        continue
      }
      const cp = input.codePointAt(i)!
      const w = cp > 0xffff ? 2 : 1
      if (cp >= 0xe0000 && cp <= 0xe007f) {
        // tag characters: keep the ASCII they encode, so smuggled instructions are matched too
        if (cp >= 0xe0020 && cp <= 0xe007e) {
          parts.push(String.fromCharCode(cp - 0xe0000).toLowerCase())
          m.push(i)
        }
        removed++
      } else {
        const e = normalizedChar(cp)
        if (e === undefined) {
          removed++
        } else {
          if (e.changed) changed++
          parts.push(e.text)
          for (let k = 0; k < e.text.length; k++) m.push(i)
        }
      }
      i += w
    }
    m.push(input.length)
    text = parts.join('')
    if (removed > 0) tricks.push(`removed ${removed} invisible chars`)
    if (changed > 0) tricks.push(`NFKC changed ${changed} chars`)
    const folded = foldMixedScriptWords(text)
    if (folded !== text) {
      tricks.push('folded look-alike letters')
      text = folded
    }
  }
  if (map && map.length !== text.length + 1) map = undefined // cannot happen with 1:1 folding; keep offsets sane anyway
  // leetspeak: only words that mix letters with 0/1/3/4/5/7 are rewritten (same length, so offsets hold)
  const unleet = undoLeet(text)
  if (unleet !== text) {
    tricks.push('undid leetspeak')
    text = unleet
  }
  return { text, map, tricks }
}

/** the blocks of the CONFUSABLE letters (IPA extensions, Greek, Cyrillic) */
const LOOK_ALIKE_SCRIPT = /[\u0250-\u02af\u0370-\u052f]/

/** Folds Cyrillic/Greek look-alikes only inside words that also contain Latin letters, so real Russian or Greek text is untouched. */
function foldMixedScriptWords(text: string): string {
  if (!LOOK_ALIKE_SCRIPT.test(text)) return text // every fold needs one of these letters
  return text.replace(/[\p{L}\p{M}]+/gu, (w) => {
    if (!/[a-z]/.test(w) || !/[\u0370-\u03ff\u0400-\u052f\u0250-\u02af]/.test(w)) {
      // an all-look-alike word ("іgnоrе" typed fully in Cyrillic) folds to ASCII only if every letter is a look-alike
      if (/[a-z]/.test(w) || w.length < 3) return w
      let all = true
      for (const c of w) if (CONFUSABLE[c] === undefined) { all = false; break }
      if (!all) return w
    }
    let r = ''
    for (const c of w) r += CONFUSABLE[c] ?? c
    return r.length === w.length ? r : w
  })
}

/** A decoded segment of the original text. */
export interface DecodedSegment {
  encoding: 'base64' | 'hex' | 'rot13' | 'url'
  text: string
  /** offsets in the ORIGINAL text of the encoded segment */
  start: number
  end: number
}

const PCT_RUN = /(?:%[0-9a-fA-F]{2}[A-Za-z0-9._~-]*){6,}/g
const MAX_SEGMENTS = 16
const MAX_DECODED = 8192

function printableRatio(s: string): number {
  if (!s) return 0
  let ok = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if ((c >= 32 && c < 127) || c === 10 || c === 13 || c === 9 || c >= 0xa0) ok++
  }
  return ok / s.length
}

/** Letters-and-spaces text (a decoded instruction), not binary or another token. */
function looksLikeText(s: string): boolean {
  return s.length >= 8 && printableRatio(s) > 0.95 && !s.includes('\uFFFD') && /[a-zA-Z\u00C0-\uFFFF]{2,}[\s,.:;!?]+[a-zA-Z\u00C0-\uFFFF]{2,}/.test(s)
}


const ROT13_TABLE = (() => {
  const t = new Uint8Array(128)
  for (let c = 0; c < 128; c++) t[c] = c >= 65 && c <= 90 ? ((c - 52) % 26) + 65 : c >= 97 && c <= 122 ? ((c - 84) % 26) + 97 : c
  return t
})()

/** rot13 of the ASCII letters; ASCII text goes through a byte table (a replace() callback per letter costs ~10x more). */
export function rot13(s: string): string {
  if (!ASCII.test(s)) {
    return s.replace(/[a-zA-Z]/g, (c) => {
      const b = c <= 'Z' ? 65 : 97
      return String.fromCharCode(((c.charCodeAt(0) - b + 13) % 26) + b)
    })
  }
  const bytes = Buffer.from(s, 'latin1')
  for (let i = 0; i < bytes.length; i++) bytes[i] = ROT13_TABLE[bytes[i]!]!
  return bytes.toString('latin1')
}

/**
 * Finds encoded segments and decodes them (bounded: at most 16 segments and 8 KiB decoded text).
 * rot13 is tried on the whole text only when it reads like no language (almost no common English
 * words) or mentions rot13/caesar, so ordinary prose is not decoded.
 */
export function decodeSegments(original: string, lowered: string): DecodedSegment[] {
  const out: DecodedSegment[] = []
  let budget = MAX_DECODED
  const add = (seg: DecodedSegment) => {
    if (out.length >= MAX_SEGMENTS || budget <= 0) return
    seg.text = seg.text.slice(0, budget)
    budget -= seg.text.length
    out.push(seg)
  }
  // one pass over the text finds candidate runs (a hand loop: a class-based regex costs ~10x more on prose)
  for (const [start, end] of tokenRuns(original, 20)) {
    if (out.length >= MAX_SEGMENTS) break
    let run = original.slice(start, end)
    if (/^[0-9a-fA-F]+$/.test(run)) {
      if (run.length % 2 === 1) run = run.slice(0, -1)
      const dec = Buffer.from(run, 'hex').toString('utf8')
      if (looksLikeText(dec)) add({ encoding: 'hex', text: dec, start, end })
      continue
    }
    if (!/[A-Z]/.test(run) || !/[a-z]/.test(run)) continue
    const dec = Buffer.from(run.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8')
    if (looksLikeText(dec)) add({ encoding: 'base64', text: dec, start, end })
  }
  if (out.length < MAX_SEGMENTS && /[0-9a-fA-F]{2}[ :][0-9a-fA-F]{2}[ :][0-9a-fA-F]{2}[ :][0-9a-fA-F]{2}/.test(original)) {
    const HEX_SPACED = /(?:[0-9a-fA-F]{2}[ :]){11,}[0-9a-fA-F]{2}/g
    for (let m = HEX_SPACED.exec(original); m !== null && out.length < MAX_SEGMENTS; m = HEX_SPACED.exec(original)) {
      const dec = Buffer.from(m[0].replace(/[ :]/g, ''), 'hex').toString('utf8')
      if (looksLikeText(dec)) add({ encoding: 'hex', text: dec, start: m.index, end: m.index + m[0].length })
    }
  }
  if (original.includes('%')) {
    PCT_RUN.lastIndex = 0
    for (let m = PCT_RUN.exec(original); m !== null && out.length < MAX_SEGMENTS; m = PCT_RUN.exec(original)) {
      try {
        const dec = decodeURIComponent(m[0])
        if (looksLikeText(dec)) add({ encoding: 'url', text: dec, start: m.index, end: m.index + m[0].length })
      } catch {
        // not valid percent-encoding
      }
    }
  }
  // rot13 only for text that reads like no English (no common short words) or that mentions rot13
  if (mentionsRot13(lowered) || (lowered.length >= 16 && !/ (?:the|and|to|of|is|a|you|in|for|it|i|on|de|la|und|der|el|que|le|il|di) /.test(lowered.slice(0, 4096)) && /\b[a-z]{3,20} [a-z]{3,20} [a-z]{3,20}\b/.test(lowered.slice(0, 4096)))) {
    add({ encoding: 'rot13', text: rot13(original.slice(0, 4096)), start: 0, end: Math.min(original.length, 4096) })
  }
  return out
}

const ROT13_MENTION = /\brot-?13\b|caesar|shift(?:ed)? (?:by )?13/
/** ROT13_MENTION, after a cheap indexOf for each of its literals (most text has none of them) */
const mentionsRot13 = (lowered: string) => (lowered.includes('rot') || lowered.includes('caesar') || lowered.includes('shift')) && ROT13_MENTION.test(lowered)

const TOKEN_CHAR = (() => {
  const t = new Uint8Array(128)
  for (let c = 0; c < 128; c++) t[c] = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 43 || c === 47 || c === 95 || c === 45 || c === 61 ? 1 : 0
  return t
})()
const isTokenChar = (c: number) => c < 128 && TOKEN_CHAR[c] === 1

/**
 * Runs of base64/base64url/hex characters at least `min` long (not counting trailing '='), at most 64.
 * A run of `min` chars covers one position of every `min`, so only those positions are probed and a
 * run is measured from there: about 1/min of the text is looked at when it has no long runs.
 */
function tokenRuns(text: string, min: number): Array<[number, number]> {
  const out: Array<[number, number]> = []
  const n = Math.min(text.length, 1 << 20)
  let next = 0 // first position not inside a run already measured
  for (let p = min - 1; p < n; p += min) {
    if (p < next || !isTokenChar(text.charCodeAt(p))) continue
    let start = p
    while (start > next && isTokenChar(text.charCodeAt(start - 1))) start--
    let i = p + 1
    while (i < n && isTokenChar(text.charCodeAt(i))) i++
    next = i
    let end = i
    while (end > start && text.charCodeAt(end - 1) === 61) end-- // trailing '=' padding is kept below
    if (end - start >= min) out.push([start, Math.min(i, end + 2)])
    if (out.length >= 64) break
  }
  return out
}

const isLower = (c: number) => c >= 97 && c <= 122

/** a leet digit next to a lower-case letter; every word undoLeet rewrites has one (and most text has none) */
const LEET_NEAR_LETTER = /[013457](?<=[a-z][013457])|[013457][a-z]/g
const isDigit = (c: number) => c >= 48 && c <= 57
const isLeetDigit = (c: number) => c === 48 || c === 49 || c === 51 || c === 52 || c === 53 || c === 55

/**
 * Rewrites words like "1gn0r3" or "pr3v10us" (at least 2 letters, a leet digit next to a letter) to letters.
 * A word is a maximal run of [a-z0-9]; only the runs around a leet digit next to a letter are looked at.
 */
function undoLeet(text: string): string {
  let out: string[] | undefined
  let last = 0
  LEET_NEAR_LETTER.lastIndex = 0
  for (let m = LEET_NEAR_LETTER.exec(text); m !== null; m = LEET_NEAR_LETTER.exec(text)) {
    let start = m.index
    while (start > last && (isLower(text.charCodeAt(start - 1)) || isDigit(text.charCodeAt(start - 1)))) start--
    let end = m.index + 1
    while (end < text.length && (isLower(text.charCodeAt(end)) || isDigit(text.charCodeAt(end)))) end++
    LEET_NEAR_LETTER.lastIndex = end
    let letters = 0
    let leet = 0
    let other = 0
    for (let k = start; k < end; k++) {
      const c = text.charCodeAt(k)
      if (isLower(c)) letters++
      else if (isLeetDigit(c)) leet++
      else other++
    }
    if (leet > 0 && letters >= 2 && other === 0 && letters + leet >= 4 && !/^[0-9]+[a-z]{1,3}$/.test(text.slice(start, end))) {
      out ??= []
      out.push(text.slice(last, start), text.slice(start, end).replace(/[013457]/g, (ch) => LEET[ch] ?? ch))
      last = end
    }
  }
  if (!out) return text
  out.push(text.slice(last))
  return out.join('')
}
