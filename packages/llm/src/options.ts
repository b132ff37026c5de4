/**
 * Checks of the options users pass to LlmMonitor and the scanners. A typo or
 * a value of the wrong type (NaN, a string for a list, a negative count)
 * would otherwise silently disable detection or break every exchange at run
 * time; instead the constructor throws a TypeError naming the option.
 */

/** The TypeError thrown for a bad option: `name` is the option's path, e.g. "LlmMonitor: scanners[0]". */
export function optionError(name: string, expected: string, got: unknown): TypeError {
  return new TypeError(`${name} must be ${expected}, got ${describeValue(got)}`)
}

function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v)
  if (v === null || typeof v !== 'object') return typeof v === 'function' ? 'a function' : String(v)
  return Array.isArray(v) ? 'an array' : 'an object'
}

/** A positive safe integer (counts, caps); undefined when absent (unless `required`). */
export function positiveInt(name: string, v: unknown, required = false): number | undefined {
  if (v === undefined && !required) return undefined
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw optionError(name, 'a positive integer', v)
  return v
}

/** A finite number within [min, max] (exclusive of min when `minExclusive`); undefined when absent. */
export function numberIn(name: string, v: unknown, min: number, max: number, minExclusive = false): number | undefined {
  if (v === undefined) return undefined
  const ok = typeof v === 'number' && Number.isFinite(v) && (minExclusive ? v > min : v >= min) && v <= max
  if (!ok) throw optionError(name, `a number in ${minExclusive ? '(' : '['}${min}, ${max === Number.MAX_VALUE ? '∞' : max}]`, v)
  return v
}

/** An array whose items pass `check` (which throws with the item's path); undefined when absent (unless `required`). */
export function arrayOf<T>(name: string, v: unknown, check: (item: unknown, itemName: string) => T, required = false): T[] | undefined {
  if (v === undefined && !required) return undefined
  if (!Array.isArray(v)) throw optionError(name, 'an array', v)
  return v.map((item, i) => check(item, `${name}[${i}]`))
}

/** A string with at least one character. */
export function nonEmptyString(name: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0) throw optionError(name, 'a non-empty string', v)
  return v
}

/** A plain object (not an array, not null); undefined when absent (unless `required`). */
export function plainObject(name: string, v: unknown, required = false): Record<string, unknown> | undefined {
  if (v === undefined && !required) return undefined
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw optionError(name, 'an object', v)
  return v as Record<string, unknown>
}

/** A function; undefined when absent. */
export function func(name: string, v: unknown): void {
  if (v !== undefined && typeof v !== 'function') throw optionError(name, 'a function', v)
}
