/**
 * A Map whose entries expire after a TTL and which holds at most `max`
 * entries (oldest evicted first). Used for deleted-pod tombstones and owner
 * lookups. Expiry is checked on read, so no timers are needed.
 */
export class TtlCache<K, V> {
  readonly #map = new Map<K, { value: V; expires: number }>()
  readonly #ttlMs: number
  readonly #max: number
  /** entries dropped because the cache was full */
  evicted = 0

  constructor(ttlMs: number, max: number) {
    this.#ttlMs = ttlMs
    this.#max = max
  }

  get size(): number {
    return this.#map.size
  }

  set(key: K, value: V, ttlMs = this.#ttlMs): void {
    this.#map.delete(key)
    this.#map.set(key, { value, expires: Date.now() + ttlMs })
    while (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next().value as K
      this.#map.delete(oldest)
      this.evicted++
    }
  }

  get(key: K): V | undefined {
    const e = this.#map.get(key)
    if (!e) return undefined
    if (e.expires <= Date.now()) {
      this.#map.delete(key)
      return undefined
    }
    return e.value
  }

  delete(key: K): void {
    this.#map.delete(key)
  }

  /** Drops expired entries (called periodically so memory does not linger). */
  prune(): void {
    const now = Date.now()
    for (const [k, e] of this.#map) if (e.expires <= now) this.#map.delete(k)
  }

  clear(): void {
    this.#map.clear()
  }
}
