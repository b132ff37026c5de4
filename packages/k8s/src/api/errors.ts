/** Typed errors raised while talking to the Kubernetes API server. */

/** The API server answered with a non-2xx status, or a watch stream carried an ERROR event. */
export class K8sApiError extends Error {
  override readonly name = 'K8sApiError'
  /** HTTP status (or the Status object's `code` for watch ERROR events); 0 when the request never got an answer */
  readonly statusCode: number
  /** Status.reason when the server sent one (Expired, Forbidden, ...) */
  readonly reason?: string
  constructor(message: string, statusCode: number, reason?: string) {
    super(message)
    this.statusCode = statusCode
    this.reason = reason
  }
}

/**
 * The server sent something that is not a Kubernetes object (invalid JSON,
 * a truncated line). Events may have been lost, so the informer relists.
 * `code = 410` is the signal client-node's ListWatch understands as "relist".
 */
export class K8sGarbageError extends Error {
  override readonly name = 'K8sGarbageError'
  readonly code = 410
  readonly statusCode = 410
  /** first bytes of what could not be parsed, for the log line */
  readonly sample: string
  constructor(message: string, sample: string) {
    super(message)
    this.sample = sample.slice(0, 80)
  }
}

/** A request got no answer in time. */
export class K8sTimeoutError extends Error {
  override readonly name = 'K8sTimeoutError'
  readonly statusCode = 0
}
