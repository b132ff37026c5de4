/**
 * Small helpers shared by the ELF modules: hex formatting, typed-error
 * construction with a custom message, and mapping of fs errno codes to the
 * SDK's error classes. Not exported from the package.
 */
import { BpfError, ElfError, NotFoundError, PermissionError } from '../errors.js'

/** `0x1234` formatting for addresses and offsets in messages. */
export function hex(n: number | bigint): string {
  return `0x${n.toString(16)}`
}

/**
 * NotFoundError's constructor builds a fixed "no KIND named NAME" message; the
 * ELF lookups need more specific wording ("... is undefined (imported)",
 * "searched: ..."), so rewrite message and stack header after construction.
 */
export function notFound(kind: string, name: string, message: string): NotFoundError {
  const err = new NotFoundError(kind, name)
  err.message = message
  // re-capture so the stack header shows the new message and starts at our caller
  Error.captureStackTrace?.(err, notFound)
  return err
}

/** errno code of a Node fs error, if it is one. */
export function errnoCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    return (err as { code: string }).code
  }
  return undefined
}

/**
 * Translate an fs failure on `path` into a typed error: ENOENT → NotFoundError,
 * EACCES/EPERM → PermissionError, anything else → `fallback` (an ElfError by
 * default) carrying the original error as `cause`.
 */
export function fsError(err: unknown, action: string, path: string, kind = 'file'): BpfError {
  if (err instanceof BpfError) return err
  const code = errnoCode(err)
  if (code === 'ENOENT' || code === 'ENOTDIR') return notFound(kind, path, `cannot ${action} ${path}: no such ${kind}`)
  if (code === 'EACCES' || code === 'EPERM') {
    return new PermissionError('read access to the file (run as root)', `${action} ${path}`, { cause: err })
  }
  const detail = err instanceof Error ? err.message : String(err)
  return new ElfError(`cannot ${action} ${path}: ${detail}`, { cause: err })
}
