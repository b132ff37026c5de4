/**
 * Lifecycle shared by every kernel resource wrapper (object, program, map,
 * link, ring buffer): an idempotent close(), [Symbol.dispose] for `using`, and
 * a FinalizationRegistry that releases what a caller forgot to close. The
 * registry is a safety net only: GC timing is unpredictable, so code should
 * always close() explicitly.
 */
import { ClosedError } from './errors.js'

const leaked = new FinalizationRegistry<() => void>((release) => {
  try {
    release()
  } catch {
    // nothing useful can be done with an error during GC
  }
})

export abstract class Resource {
  #closed = false
  readonly #token = {}
  readonly #what: string

  /**
   * @param what description used in ClosedError messages, e.g. "map 'rb'"
   * @param release frees the kernel resource if the wrapper is garbage collected
   *   unclosed; it must not reference `this`.
   */
  protected constructor(what: string, release?: () => void) {
    this.#what = what
    if (release) leaked.register(this, release, this.#token)
  }

  get closed(): boolean {
    return this.#closed
  }

  /** Releases the resource. Safe to call more than once. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    leaked.unregister(this.#token)
    this.release()
  }

  [Symbol.dispose](): void {
    this.close()
  }

  /** Throws ClosedError when used after close(). */
  protected assertOpen(): void {
    if (this.#closed) throw new ClosedError(this.#what)
  }

  /** Frees the underlying kernel resource; called once by close(). */
  protected abstract release(): void
}
