/**
 * Checks of the numeric options of the enricher, the API client and the
 * cgroup resolver. NaN or 0 where a delay is expected would otherwise turn
 * into a busy loop (a retry storm against the API server, a 1 ms tick) or an
 * event held forever, without any error.
 */
import { K8sConfigError } from './cluster.js'

/** `value` if it is a finite number >= `min` (an integer when `integer`), undefined if absent; else K8sConfigError naming `name`. */
export function checkNumber(name: string, value: unknown, min: number, integer = false): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
    throw new K8sConfigError(`${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got ${String(value)}`)
  }
  return value
}
