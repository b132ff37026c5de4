/**
 * Generations of connection keys: a connection object (SSL*, struct sock*)
 * freed and reallocated at the same address is a new connection, so its key
 * gets `#N` appended and downstream never sees two connections under one key.
 */
export class ConnGenerations {
  readonly #generations = new Map<string, number>()

  key(base: string): string {
    const gen = this.#generations.get(base)
    return gen ? `${base}#${gen}` : base
  }

  /** The connection at `base` ended: later records there belong to the next generation. */
  bump(base: string): void {
    this.#generations.set(base, (this.#generations.get(base) ?? 0) + 1)
    // Bounded memory: an address reused after this clear may repeat an old key, long after
    // the pipeline closed the connection that had it.
    if (this.#generations.size > 1_000_000) this.#generations.clear()
  }

  /** Forgets the generations whose key starts with `prefix` (a process that exited). */
  forgetPrefix(prefix: string): void {
    for (const k of this.#generations.keys()) if (k.startsWith(prefix)) this.#generations.delete(k)
  }
}
