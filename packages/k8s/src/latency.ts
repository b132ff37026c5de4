/** Keeps the last N samples of a duration and summarises them (p50/p99/max) for stats(). */
export class LatencyWindow {
  readonly #samples: Float64Array
  #n = 0
  #count = 0

  constructor(size = 1024) {
    this.#samples = new Float64Array(size)
  }

  add(ms: number): void {
    this.#samples[this.#n] = ms
    this.#n = (this.#n + 1) % this.#samples.length
    this.#count++
  }

  summary(): { count: number; p50Ms: number; p99Ms: number; maxMs: number } {
    const n = Math.min(this.#count, this.#samples.length)
    if (n === 0) return { count: 0, p50Ms: 0, p99Ms: 0, maxMs: 0 }
    const sorted = Array.from(this.#samples.subarray(0, n)).sort((a, b) => a - b)
    const at = (q: number) => round(sorted[Math.min(n - 1, Math.floor(q * n))]!)
    return { count: this.#count, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: round(sorted[n - 1]!) }
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000
}
