/**
 * Loads the native addon lazily, so that the parts of the SDK that need no
 * kernel (replay, codecs, ELF/BTF parsing) work without it, and turns the
 * addon's plain errors into the typed errors of errors.ts.
 */
import { createRequire } from 'node:module'
import type { NativeBinding } from '@bpfkit/native'
import { BpfError, ClosedError, InvalidArgumentError, NotFoundError, PermissionError, SyscallError } from './errors.js'
import { hasCapability } from './caps.js'
import { pinPathProblem } from './mounts.js'

let binding: NativeBinding | undefined

/** The native binding; throws a BpfError with a hint when it was not built. */
export function native(): NativeBinding {
  if (binding) return binding
  try {
    const require = createRequire(import.meta.url)
    binding = require('@bpfkit/native') as NativeBinding
  } catch (cause) {
    throw new BpfError(
      'the bpfkit native addon is not available: install a prebuilt @bpfkit/native or run scripts/setup.sh',
      { code: 'BPFKIT_NATIVE', cause },
    )
  }
  return binding
}

/** Shape of the errors the addon throws (see native/index.d.ts). */
export interface RawNativeError extends Error {
  errno?: number
  code?: string
  op?: string
  libbpfLog?: string
  verifierLog?: string
  program?: string
  logTruncated?: boolean
  /** batch map operations: elements done before the failure */
  count?: number
}

/** What the failing call was doing, for the message and for permission hints. */
export interface ErrorContext {
  /** human description, e.g. "load object 'x'" */
  action: string
  /** capability that would make EPERM go away, e.g. 'CAP_BPF and CAP_PERFMON' */
  capability?: string
  /**
   * bpffs path the call opens or creates: EACCES there comes from the file's
   * owner and mode (or its directory's), which no BPF capability overrides
   */
  path?: string
  /** what an errno means for this call (e.g. E2BIG on a map update: the map is full), added to the message */
  hints?: Partial<Record<string, string>>
}

/**
 * Converts an error thrown by the addon into a typed BpfError. Errors that are
 * already BpfErrors pass through unchanged.
 */
export function toBpfError(err: unknown, ctx: ErrorContext): BpfError {
  if (err instanceof BpfError) return err
  const e = err as RawNativeError
  const errno = typeof e?.errno === 'number' ? e.errno : 0
  const code = typeof e?.code === 'string' ? e.code : 'EUNKNOWN'
  const cause = libbpfCause(e?.libbpfLog) || (e?.message ?? String(err))
  const hint = ctx.hints?.[code]
  const detail = hint ? `${hint}; ${cause}` : cause
  if (code === 'ECLOSED') return new ClosedError(ctx.action)
  if (code === 'EINVAL' && errno === 0) return new InvalidArgumentError(`${ctx.action}: ${e.message}`)
  if (code === 'ENOENT' && errno === 0) return new NotFoundError('name', e.message)
  if (ctx.path && (code === 'EACCES' || code === 'EPERM' || code === 'EINVAL')) {
    const problem = pinPathProblem(ctx.path)
    if (problem) return new InvalidArgumentError(`${ctx.action}: ${problem}`)
  }
  if (code === 'EACCES' && ctx.path) {
    return new PermissionError(`access to ${ctx.path} (its owner and mode, or CAP_DAC_OVERRIDE)`, ctx.action, { errno, libbpfLog: e.libbpfLog, cause: err })
  }
  if ((code === 'EPERM' || code === 'EACCES') && ctx.capability && !hasCapability(ctx.capability)) {
    return new PermissionError(ctx.capability, ctx.action, { errno, libbpfLog: e.libbpfLog, cause: err })
  }
  return new SyscallError(ctx.action, errno, code, detail, e?.libbpfLog, typeof e?.count === 'number' ? e.count : undefined)
}

/**
 * The lines of a libbpf log that say what went wrong. libbpf logs a failure as a
 * chain: the first error line is the cause ("couldn't reuse pinned map at '/x':
 * parameter mismatch"), the last one the consequence ("failed to load object
 * 'x'"); both are kept, first → last, when they differ.
 */
export function libbpfCause(log: string | undefined): string {
  if (!log) return ''
  const lines = log.split('\n').map((l) => l.trim().replace(/^libbpf:\s*/, '')).filter(Boolean)
  const errors = lines.filter((l) => /error|fail|invalid|corrupt|not|unknown|unsupported|denied|mismatch/i.test(l))
  if (errors.length === 0) return lines.at(-1) ?? ''
  const first = errors[0]!
  const last = errors.at(-1)!
  return first === last ? last : `${first} → ${last}`
}
