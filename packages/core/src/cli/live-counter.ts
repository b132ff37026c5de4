/**
 * The live "events/s, lost" line that long-running commands show on stderr
 * when it is a terminal. Refreshed on a 1 s interval that is unref'd, so it
 * never keeps the process alive.
 */
export class LiveCounter {
  #timer: NodeJS.Timeout | undefined
  #last = 0
  #lastAt = Date.now()

  constructor(private readonly read: () => { events: number; lost: number; extra?: string }) {
    if (!process.stderr.isTTY) return
    this.#timer = setInterval(() => this.#draw(), 1000)
    this.#timer.unref()
  }

  #draw(): void {
    const { events, lost, extra } = this.read()
    const now = Date.now()
    const rate = ((events - this.#last) * 1000) / Math.max(1, now - this.#lastAt)
    this.#last = events
    this.#lastAt = now
    process.stderr.write(`\r\x1b[2K${rate.toFixed(0)} events/s  total ${events}  lost ${lost}${extra ? `  ${extra}` : ''}`)
  }

  stop(): void {
    if (!this.#timer) return
    clearInterval(this.#timer)
    process.stderr.write('\r\x1b[2K')
  }
}

/** Resolves on SIGINT/SIGTERM or after `seconds` (0 = no limit). */
export function untilStopped(seconds: number): Promise<string> {
  return new Promise((resolve) => {
    const done = (why: string) => {
      process.off('SIGINT', onInt)
      process.off('SIGTERM', onTerm)
      if (timer) clearTimeout(timer)
      resolve(why)
    }
    const onInt = () => done('SIGINT')
    const onTerm = () => done('SIGTERM')
    process.on('SIGINT', onInt)
    process.on('SIGTERM', onTerm)
    const timer = seconds > 0 ? setTimeout(() => done('duration'), seconds * 1000) : undefined
  })
}
