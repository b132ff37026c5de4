/**
 * Word shingles (n consecutive words, hashed) for overlap checks between a
 * response and the prompt: system-prompt leakage and prompt text carried in
 * exfiltration URLs.
 */

/** Lower-case words of letters/digits (any script). */
export function words(text: string): Array<{ w: string; start: number; end: number }> {
  const out: Array<{ w: string; start: number; end: number }> = []
  const re = /[\p{L}\p{N}]+/gu
  for (let m = re.exec(text); m !== null; m = re.exec(text)) out.push({ w: m[0].toLowerCase(), start: m.index, end: m.index + m[0].length })
  return out
}

/** FNV-1a over the words of a shingle: a 32-bit key, so a set of shingles stays small. */
export function shingleHash(ws: readonly string[], from: number, n: number): number {
  let h = 0x811c9dc5
  for (let i = from; i < from + n; i++) {
    const w = ws[i]!
    for (let k = 0; k < w.length; k++) {
      h ^= w.charCodeAt(k)
      h = Math.imul(h, 0x01000193)
    }
    h ^= 32
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** The set of n-word shingle hashes of a text (at most `max` of them). */
export function shingleSet(text: string, n: number, max = 50_000): Set<number> {
  const ws = words(text).map((x) => x.w)
  const set = new Set<number>()
  for (let i = 0; i + n <= ws.length && set.size < max; i++) set.add(shingleHash(ws, i, n))
  return set
}
