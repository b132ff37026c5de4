/**
 * The monitor's counters and its `llm.diagnostic` events. Nothing a capture
 * contains may be dropped silently: every problem is counted here (and
 * shows in stats()) and explained by one diagnostic naming the exchange.
 */
import type { LlmDiagnosticEvent } from './types.js'

/** Counters; a snapshot is returned by `stats()`. */
export interface LlmMonitorStats {
  /** HTTP events received */
  httpEvents: number
  /** llm.exchange events emitted, in total and per provider */
  exchanges: number
  byProvider: Record<string, number>
  /** llm.finding events emitted */
  findings: number
  /** stream events (SSE/NDJSON/eventstream frames) applied to an exchange */
  streamEvents: number
  /** bodies, stream events or pushed events that were not valid JSON, not decodable or of the wrong shape (each also emits a diagnostic) */
  parseErrors: number
  /** eventstream bodies whose framing or CRCs were broken */
  eventstreamErrors: number
  /** exchanges emitted with `truncated` */
  truncated: number
  /** characters dropped by the monitor's own caps */
  truncatedChars: number
  /** scanner hooks that threw or rejected */
  scannerErrors: number
  /** async scanners that had not answered within scannerTimeoutMs */
  scannerTimeouts: number
  /** recognisers that threw */
  recogniserErrors: number
  /** exchanges emitted early because maxOpenExchanges was reached */
  evicted: number
  /** unexpected errors inside the monitor (bugs), or thrown by your event listeners; each also emits a diagnostic, except those of a throwing llm.diagnostic listener */
  internalErrors: number
  /** exchanges open now */
  open: number
  /** exchanges not added to summary() because maxWorkloads was reached */
  summaryOverflow: number
  /** LLM calls not reported because the capturing process was on a side not in `sides` (by default: server side) */
  sideSkipped: number
}

/** The plain counters (`open` and `byProvider` are filled in by stats()). */
export type MonitorCounters = Omit<LlmMonitorStats, 'open' | 'byProvider'>

/** Longest diagnostic message; the rest is cut (a message may quote captured text). */
const MAX_MESSAGE_CHARS = 2000

export class Diagnostics {
  readonly counters: MonitorCounters = {
    httpEvents: 0,
    exchanges: 0,
    findings: 0,
    streamEvents: 0,
    parseErrors: 0,
    eventstreamErrors: 0,
    truncated: 0,
    truncatedChars: 0,
    scannerErrors: 0,
    scannerTimeouts: 0,
    recogniserErrors: 0,
    evicted: 0,
    internalErrors: 0,
    summaryOverflow: 0,
    sideSkipped: 0,
  }

  constructor(private readonly emit: (ev: LlmDiagnosticEvent) => void) {}

  /** Emits one `llm.diagnostic` (the caller counts it). */
  report(level: 'warn' | 'error', code: string, message: string, id?: string, provider?: string, time?: string): void {
    const ev: LlmDiagnosticEvent = { type: 'llm.diagnostic', level, code, message: message.length > MAX_MESSAGE_CHARS ? message.slice(0, MAX_MESSAGE_CHARS) + '…' : message }
    if (id !== undefined) ev.exchange_id = id
    if (provider !== undefined) ev.provider = provider
    if (time !== undefined) ev.time = time
    try {
      this.emit(ev)
    } catch {
      // a throwing llm.diagnostic listener must not escape push(); it is not told (it would throw again)
      this.counters.internalErrors++
    }
  }

  /** push() got something that is not an event object (null, a number, ...). */
  invalidEvent(message: string): void {
    this.counters.parseErrors++
    this.report('warn', 'parse_error', message)
  }

  /** A body or stream event that could not be parsed. */
  parseError(message: string, id: string, provider: string, time: string): void {
    this.counters.parseErrors++
    this.report('warn', 'parse_error', message, id, provider, time)
  }

  /** A bug in the monitor: reported instead of thrown, so one bad exchange cannot stop the pipeline. */
  internalError(err: unknown, id: string | undefined): void {
    this.counters.internalErrors++
    this.report('error', 'internal_error', errMsg(err), id)
  }
}

export function errMsg(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
