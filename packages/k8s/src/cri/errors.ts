/** Why a CRI lookup failed. "Container unknown to the runtime" is not an error: lookups return undefined. */
export type CriErrorCode =
  /** socket absent, connection refused, or the runtime stopped answering */
  | 'unavailable'
  /** no answer within the call timeout */
  | 'timeout'
  /** the runtime does not serve runtime.v1 (e.g. only v1alpha2) */
  | 'unsupported'
  /** the runtime answered with something that is not a usable CRI response */
  | 'protocol'
  /** any other gRPC failure reported by the runtime */
  | 'runtime'
  /** the argument is not a 64-hex container id */
  | 'invalid-id'
  /** the source was closed */
  | 'closed'

export class CriError extends Error {
  override readonly name = 'CriError'
  constructor(
    readonly code: CriErrorCode,
    message: string,
    /** the CRI method that failed, when one was called */
    readonly method?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}
