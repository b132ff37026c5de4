/**
 * Runs the scanners over one exchange: scanRequest as soon as the request
 * is parsed, a StreamScan fed each piece of completion text as it arrives
 * (so findings can be raised before a stream ends), end() when the
 * response is over. Every finding is kept for the exchange event and also
 * emitted at once as `llm.finding`. A scanner that throws, rejects or (when
 * async) does not answer in time is counted and reported, never fatal.
 */
import { type Diagnostics, errMsg } from './diagnostics.js'
import type { OpenExchange } from './open-exchanges.js'
import type { Finding, LlmFindingEvent, LlmUsage, Scanner, ScanContext, StreamScan } from './types.js'

/** One scanner's part in an exchange; `stream` is dropped once it threw or ended. */
export interface ScanRun {
  scanner: Scanner
  stream?: StreamScan
}

export interface RecordedFinding {
  finding: Finding
  phase: 'request' | 'response'
}

export interface ScanRunnerOptions {
  scanners: Scanner[]
  /** how long an async scanRequest may take before the exchange is emitted without its findings */
  timeoutMs: number
  diagnostics: Diagnostics
  emitFinding: (ev: LlmFindingEvent) => void
}

export class ScanRunner {
  constructor(private readonly opts: ScanRunnerOptions) {}

  /** Runs scanRequest and opens a StreamScan per scanner. Async scanRequest results land in x.pending. */
  start(x: OpenExchange, time: string): void {
    const ctx = scanContext(x)
    x.ctx = ctx
    for (const scanner of this.opts.scanners) {
      const run: ScanRun = { scanner }
      x.scans.push(run)
      if (scanner.scanRequest) {
        try {
          const r = scanner.scanRequest(ctx)
          if (isPromise(r)) {
            x.pending.push(
              this.withTimeout(r, scanner.name, x.id).then(
                (fs) => this.record(x, fs, 'request', time),
                (err) => this.scannerError(scanner, 'scanRequest', err, x.id),
              ),
            )
          } else {
            this.record(x, r, 'request', time)
          }
        } catch (err) {
          this.scannerError(scanner, 'scanRequest', err, x.id)
        }
      }
      if (scanner.startResponse) {
        try {
          run.stream = scanner.startResponse(ctx)
        } catch (err) {
          this.scannerError(scanner, 'startResponse', err, x.id)
        }
      }
    }
  }

  /** A new piece of completion text. */
  push(x: OpenExchange, delta: string): void {
    for (const run of x.scans) {
      if (!run.stream) continue
      try {
        this.record(x, run.stream.push(delta), 'response', x.lastTime)
      } catch (err) {
        this.scannerError(run.scanner, 'push', err, x.id)
        run.stream = undefined
      }
    }
  }

  /** The response is over. `usage` is asked for only when a StreamScan is open: token-budget scanners read it at end(). */
  end(x: OpenExchange, usage: () => LlmUsage | undefined): void {
    if (x.ctx && x.scans.some((r) => r.stream)) {
      const u = usage()
      if (u) x.ctx.usage = u
    }
    for (const run of x.scans) {
      if (!run.stream) continue
      try {
        this.record(x, run.stream.end(), 'response', x.lastTime)
      } catch (err) {
        this.scannerError(run.scanner, 'end', err, x.id)
      }
      run.stream = undefined
    }
  }

  /** Keeps findings for the exchange event and emits them now. */
  private record(x: OpenExchange, findings: unknown, phase: 'request' | 'response', time: string): void {
    if (!Array.isArray(findings)) return
    for (const finding of findings as Finding[]) {
      if (!finding || typeof finding !== 'object') continue
      x.findings.push({ finding, phase })
      this.opts.diagnostics.counters.findings++
      const ev: LlmFindingEvent = {
        type: 'llm.finding',
        time,
        exchange_id: x.id,
        provider: x.match.provider,
        phase,
        finding,
        process: x.identity.process,
        workload: x.identity.workload,
      }
      const model = x.builder.model ?? x.request.model
      if (model !== undefined) ev.model = model
      if (x.identity.k8s) ev.k8s = x.identity.k8s
      if (x.identity.container) ev.container = x.identity.container
      this.opts.emitFinding(ev)
    }
  }

  private withTimeout<T>(p: Promise<T>, scanner: string, id: string): Promise<T> {
    const { timeoutMs, diagnostics } = this.opts
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        diagnostics.counters.scannerTimeouts++
        reject(new Error(`scanner ${scanner} did not answer within ${timeoutMs} ms (exchange ${id})`))
      }, timeoutMs)
      // not unref'd: the exchange waits for this timer, and a process that exited first would lose it
      // (end() would never resolve); the wait is bounded by timeoutMs
    })
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
  }

  private scannerError(scanner: Scanner, hook: string, err: unknown, id: string): void {
    this.opts.diagnostics.counters.scannerErrors++
    this.opts.diagnostics.report('warn', 'scanner_error', `scanner ${scanner.name} ${hook}: ${errMsg(err)}`, id)
  }
}

function scanContext(x: OpenExchange): ScanContext {
  const ctx: ScanContext = { exchange_id: x.id, provider: x.match.provider, messages: x.request.messages, workload: x.identity.workload }
  if (x.request.model !== undefined) ctx.model = x.request.model
  return ctx
}

function isPromise<T>(x: T | Promise<T>): x is Promise<T> {
  return typeof (x as { then?: unknown })?.then === 'function'
}
