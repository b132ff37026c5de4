/**
 * Typed errors. Every failure the SDK reports is one of these, so callers can
 * branch on `instanceof` (or `code`) instead of parsing messages.
 */

/** Base class of every bpfkit error. `code` is stable and machine-readable. */
export class BpfError extends Error {
  /** stable machine-readable code, e.g. 'ENOTSUP' or 'BPFKIT_ELF' */
  readonly code: string
  /** errno reported by the kernel or libbpf, when there was one */
  readonly errno?: number
  /** what libbpf printed while the failing call ran (often the real reason) */
  readonly libbpfLog?: string

  constructor(message: string, options: { code: string; errno?: number; libbpfLog?: string; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = options.code
    if (options.errno !== undefined) this.errno = options.errno
    if (options.libbpfLog) this.libbpfLog = options.libbpfLog
  }
}

/** The kernel verifier rejected a program. `log` is the complete verifier log. */
export class VerifierError extends BpfError {
  readonly program: string
  readonly log: string
  /** true only if the log is still incomplete after growing the buffer to its limit */
  readonly truncated: boolean

  constructor(program: string, log: string, truncated: boolean, errno: number, libbpfLog?: string) {
    const last = lastLines(log, 3)
    super(`verifier rejected program '${program}'${last ? `: ${last}` : ''}`, { code: 'EVERIFIER', errno, libbpfLog })
    this.program = program
    this.log = log
    this.truncated = truncated
  }
}

/** The running kernel (or its configuration) lacks a feature. `feature` names it. */
export class NotSupportedError extends BpfError {
  readonly feature: string
  constructor(feature: string, reason: string, options: { errno?: number; libbpfLog?: string; cause?: unknown } = {}) {
    super(`${feature} is not supported here: ${reason}`, { code: 'ENOTSUP', ...options })
    this.feature = feature
  }
}

/** The process lacks a privilege. `capability` names what would fix it. */
export class PermissionError extends BpfError {
  /** what would make the call succeed: a capability, or access to a file */
  readonly capability: string
  constructor(capability: string, action: string, options: { errno?: number; libbpfLog?: string; cause?: unknown } = {}) {
    super(`${action}: permission denied; needs ${capability} (run as root or grant it)`, { code: options.errno === 13 ? 'EACCES' : 'EPERM', ...options })
    this.capability = capability
  }
}

/** A corrupt, truncated or unsupported ELF file. */
export class ElfError extends BpfError {
  constructor(message: string, options: { errno?: number; libbpfLog?: string; cause?: unknown } = {}) {
    super(message, { code: 'BPFKIT_ELF', ...options })
  }
}

/** A program, map, variable, symbol or type that does not exist. */
export class NotFoundError extends BpfError {
  readonly kind: string
  readonly lookedFor: string
  constructor(kind: string, name: string, available?: readonly string[]) {
    const hint = available && available.length ? ` (available: ${available.slice(0, 20).join(', ')})` : ''
    super(`no ${kind} named '${name}'${hint}`, { code: 'ENOENT' })
    this.kind = kind
    this.lookedFor = name
  }
}

/** A value, key or buffer of the wrong size or shape for where it is used. */
export class InvalidArgumentError extends BpfError {
  constructor(message: string) {
    super(message, { code: 'EINVAL' })
  }
}

/** BTF that cannot be parsed, or a type a codec cannot represent. */
export class BtfError extends BpfError {
  constructor(message: string) {
    super(message, { code: 'BPFKIT_BTF' })
  }
}

/** Operation on a resource after close(). */
export class ClosedError extends BpfError {
  constructor(what: string) {
    super(`${what} is closed`, { code: 'ECLOSED' })
  }
}

/** Any other failure of a kernel or libbpf call. */
export class SyscallError extends BpfError {
  readonly op: string
  /** batch map operations: elements the kernel had already processed when it failed */
  readonly done?: number
  constructor(op: string, errno: number, code: string, detail: string, libbpfLog?: string, done?: number) {
    const partial = done === undefined ? '' : `; ${done} element(s) done before the failure`
    super(`${op} failed: ${code}${detail ? ` (${detail})` : ''}${partial}`, { code, errno, libbpfLog })
    this.op = op
    if (done !== undefined) this.done = done
  }
}

function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join(' | ')
}
