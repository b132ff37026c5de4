/**
 * Safe reading of untrusted JSON. Provider bodies come from captured traffic:
 * any field can be missing, of the wrong type or absurdly large. These
 * accessors never throw, so parsers can read deep paths without guarding
 * every step.
 */

export type Json = unknown

/** Parses JSON; returns undefined (and the error) instead of throwing. */
export function parseJson(text: string): { value?: Json; error?: string } {
  try {
    return { value: JSON.parse(text) as Json }
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) }
  }
}

/** A plain object (not an array), or undefined. */
export function obj(x: Json): Record<string, Json> | undefined {
  return x !== null && typeof x === 'object' && !Array.isArray(x) ? (x as Record<string, Json>) : undefined
}

/** An array, or an empty one. */
export function arr(x: Json): Json[] {
  return Array.isArray(x) ? x : []
}

export function str(x: Json): string | undefined {
  return typeof x === 'string' ? x : undefined
}

/** A finite non-negative number, or undefined (token counts, indexes). */
export function num(x: Json): number | undefined {
  return typeof x === 'number' && Number.isFinite(x) && x >= 0 ? x : undefined
}

/** Reads a nested path: get(o, 'a', 0, 'b'). */
export function get(x: Json, ...path: (string | number)[]): Json {
  let cur = x
  for (const k of path) {
    if (typeof k === 'number') {
      if (!Array.isArray(cur)) return undefined
      cur = cur[k]
    } else {
      const o = obj(cur)
      if (!o || !Object.prototype.hasOwnProperty.call(o, k)) return undefined
      cur = o[k]
    }
  }
  return cur
}

/** Arguments as a JSON string: strings are kept as sent (they are already JSON text), objects are serialised. */
export function argsText(x: Json): string {
  if (typeof x === 'string') return x
  if (x === undefined) return ''
  try {
    return JSON.stringify(x) ?? ''
  } catch {
    return ''
  }
}
