/**
 * LlmMonitor: HTTP events in, LLM events out. It recognises LLM API calls
 * among HTTP requests, rebuilds the request (messages, tools) as soon as
 * the request is complete, assembles the response from stream events as
 * they arrive (so scanners see the completion chunk by chunk and findings
 * can be raised before the stream ends) or from the final body, and emits
 * one `llm.exchange` per call, `llm.finding` per finding and
 * `llm.diagnostic` for anything it could not parse. Nothing a capture
 * contains makes it throw, hang or grow without bound.
 *
 * This class routes events and holds the options; the work is done by:
 * open-exchanges.ts (calls in progress, eviction), scan-runner.ts
 * (scanners and findings), response-reader.ts (stream events and bodies
 * into the completion), exchange-event.ts (the llm.exchange event and its
 * redaction), workload-summary.ts (summary()) and diagnostics.ts (stats()
 * counters and llm.diagnostic events).
 */
import { l7 } from '@bpfkit/core'
import { EventEmitter } from 'eventemitter3'
import { type AssemblyLimits, capMessages, CompletionBuilder, DEFAULT_LIMITS, type ParsedRequest } from './assembly.js'
import { Diagnostics, errMsg, type LlmMonitorStats } from './diagnostics.js'
import { headersProblem } from './http.js'
import { ExchangeEventBuilder } from './exchange-event.js'
import { exchangeUsage, identityOf, type OpenExchange, OpenExchanges } from './open-exchanges.js'
import { arrayOf, func, nonEmptyString, numberIn, optionError, plainObject, positiveInt } from './options.js'
import { EXAMPLE_PRICES, type ModelPrice, type PriceTable } from './pricing.js'
import { adapterFor, type ProviderMatch } from './providers/index.js'
import { DEFAULT_RECOGNISERS, type Recogniser, type RecogniserInput, recogniserInput } from './recognise.js'
import { ResponseReader } from './response-reader.js'
import { ScanRunner } from './scan-runner.js'
import { defaultScanners } from './scanners/index.js'
import { REDACTED_SCANNERS } from './scanners/redact.js'
import type { LlmMonitorEventMap, Scanner } from './types.js'
import { type LlmWorkloadSummary, WorkloadSummaries } from './workload-summary.js'
import { workloadOf } from './workload.js'

type HttpRequestEvent = l7.HttpRequestEvent
type HttpExchangeEvent = l7.HttpExchangeEvent
type HttpStreamEvent = l7.HttpStreamEvent
type HttpRequestMessage = l7.HttpRequestMessage

export interface LlmMonitorOptions {
  /** scanners run on every exchange (default: defaultScanners(); [] for none) */
  scanners?: Scanner[]
  /** your recognisers, tried before the built-in ones */
  recognisers?: Recogniser[]
  /** use the built-in recognisers after yours (default true) */
  defaultRecognisers?: boolean
  /** mask secrets/PII found by scanners in emitted exchanges (default true) */
  redact?: boolean
  /** findings of these scanners are masked (default REDACTED_SCANNERS: secrets and pii) */
  redactScanners?: string[]
  /** estimate token counts the provider did not report (default true) */
  estimateUsage?: boolean
  /** prices per model prefix, merged over the example table; false: no cost estimates */
  prices?: PriceTable | false
  /** use only `prices`, not the example table (default false) */
  replacePrices?: boolean
  /** memory caps per exchange */
  limits?: Partial<AssemblyLimits>
  /** exchanges held open (request seen, response pending) at most; the oldest is emitted incomplete beyond (default 1024) */
  maxOpenExchanges?: number
  /** how long an exchange waits for async scanners before it is emitted without their findings (default 10 000 ms, at most 2^31-1) */
  scannerTimeoutMs?: number
  /** the grouping key of an exchange (default: k8s workload, else executable name, else comm) */
  workloadOf?: (ev: { process?: unknown; k8s?: unknown }) => string
  /** distinct workloads kept in summary() (default 10 000; 0: none); more are counted in stats.summaryOverflow */
  maxWorkloads?: number
  /**
   * which ends of a connection to report, by the capturing process's role on it (HTTP events' `side`).
   * Default ['client']: an LLM server or proxy on the same node (Ollama, vLLM, LiteLLM) also sees every
   * call it answers, and reporting both ends would count each call twice. Events without `side`
   * (captures made before the field existed) count as client side.
   */
  sides?: ('client' | 'server')[]
}

/** Anything that emits the pipeline's events: HttpPipeline, CaptureReplay. */
export interface HttpEventSource {
  on(event: 'http.request', fn: (ev: HttpRequestEvent) => void): unknown
  on(event: 'http.stream_event', fn: (ev: HttpStreamEvent) => void): unknown
  on(event: 'http.exchange', fn: (ev: HttpExchangeEvent) => void): unknown
  off(event: 'http.request', fn: (ev: HttpRequestEvent) => void): unknown
  off(event: 'http.stream_event', fn: (ev: HttpStreamEvent) => void): unknown
  off(event: 'http.exchange', fn: (ev: HttpExchangeEvent) => void): unknown
}

export class LlmMonitor extends EventEmitter<LlmMonitorEventMap> {
  private readonly recognisers: Recogniser[]
  private readonly estimate: boolean
  private readonly limits: AssemblyLimits
  private readonly workloadKey: (ev: { process?: unknown; k8s?: unknown }) => string
  private readonly sides: ReadonlySet<string>
  private readonly diagnostics = new Diagnostics((ev) => this.emit('llm.diagnostic', ev))
  private readonly counters = this.diagnostics.counters
  private readonly byProvider: Record<string, number> = {}
  private readonly open: OpenExchanges
  /** exchanges waiting for async scanners before they are emitted */
  private readonly inflight = new Set<Promise<void>>()
  private readonly scanRunner: ScanRunner
  private readonly responses: ResponseReader
  private readonly events: ExchangeEventBuilder
  private readonly workloads: WorkloadSummaries

  constructor(options: LlmMonitorOptions = {}) {
    super()
    checkOptions(options)
    this.recognisers = [...(options.recognisers ?? []), ...(options.defaultRecognisers === false ? [] : DEFAULT_RECOGNISERS)]
    this.estimate = options.estimateUsage !== false
    this.limits = { ...DEFAULT_LIMITS, ...(options.limits ?? {}) }
    this.workloadKey = options.workloadOf ?? workloadOf
    const sides = options.sides ?? ['client']
    for (const side of sides) if (side !== 'client' && side !== 'server') throw new TypeError(`LlmMonitor: sides must list 'client' and/or 'server', got '${String(side)}'`)
    this.sides = new Set(sides)
    this.open = new OpenExchanges(options.maxOpenExchanges ?? 1024)
    this.scanRunner = new ScanRunner({
      scanners: options.scanners ?? defaultScanners(),
      timeoutMs: options.scannerTimeoutMs ?? 10_000,
      diagnostics: this.diagnostics,
      emitFinding: (ev) => this.emit('llm.finding', ev),
    })
    this.responses = new ResponseReader(this.limits, this.diagnostics)
    const prices: PriceTable | undefined =
      options.prices === false ? undefined : options.replacePrices ? { ...(options.prices ?? {}) } : { ...EXAMPLE_PRICES, ...(options.prices ?? {}) }
    this.events = new ExchangeEventBuilder({ prices, redact: options.redact !== false, redactScanners: options.redactScanners ?? REDACTED_SCANNERS })
    this.workloads = new WorkloadSummaries(options.maxWorkloads ?? 10_000)
  }

  /** Subscribes to a live HttpPipeline (or a CaptureReplay). Returns a function that unsubscribes. */
  attach(source: HttpEventSource): () => void {
    const onRequest = (ev: HttpRequestEvent) => this.push(ev)
    const onStream = (ev: HttpStreamEvent) => this.push(ev)
    const onExchange = (ev: HttpExchangeEvent) => this.push(ev)
    source.on('http.request', onRequest)
    source.on('http.stream_event', onStream)
    source.on('http.exchange', onExchange)
    return () => {
      source.off('http.request', onRequest)
      source.off('http.stream_event', onStream)
      source.off('http.exchange', onExchange)
    }
  }

  /** Feeds one HTTP pipeline event (live or replayed). Other event types are ignored. Never throws. */
  push(ev: l7.HttpPipelineEvent | { type: string }): void {
    if (!ev || typeof ev !== 'object') {
      this.diagnostics.invalidEvent(`push() got ${ev === null ? 'null' : typeof ev}, not an HTTP event`)
      return
    }
    try {
      // the other end of a call captured on this node (e.g. a local LLM server): reported by its client
      if (typeof ev.type === 'string' && ev.type.startsWith('http.') && !this.sides.has((ev as { side?: string }).side ?? 'client')) {
        this.counters.httpEvents++
        if (ev.type === 'http.exchange') this.countSkippedSide(ev as HttpExchangeEvent)
        return
      }
      const e = ev as { headers?: unknown; request?: { headers?: unknown }; response?: { headers?: unknown } }
      const problem = headersProblem(e.headers) ?? headersProblem(e.request?.headers) ?? headersProblem(e.response?.headers)
      if (problem) this.diagnostics.invalidEvent(`${ev.type} ${String((ev as { id?: unknown }).id)}: ${problem} (the bad entries are ignored)`)
      const time = (ev as { time?: unknown }).time
      if (typeof time !== 'string' && (ev.type === 'http.request' || ev.type === 'http.stream_event' || ev.type === 'http.exchange')) {
        // exchanges and diagnostics carry `time` as a string; a number or Date is converted, anything else replaced
        const fixed = timeString(time)
        this.diagnostics.invalidEvent(`${ev.type} ${String((ev as { id?: unknown }).id)}: time is ${fixed.was}, not a string (${fixed.converted ? 'converted' : "the monitor's clock is used"})`)
        ev = { ...ev, time: fixed.time } as typeof ev
      }
      switch (ev.type) {
        case 'http.request':
          this.counters.httpEvents++
          this.onRequest(ev as HttpRequestEvent)
          break
        case 'http.stream_event':
          this.counters.httpEvents++
          this.onStreamEvent(ev as HttpStreamEvent)
          break
        case 'http.exchange':
          this.counters.httpEvents++
          this.onExchange(ev as HttpExchangeEvent)
          break
        default:
          break
      }
    } catch (err) {
      this.diagnostics.internalError(err, (ev as { id?: string } | undefined)?.id)
    }
  }

  /** Resolves once every exchange waiting for async scanners has been emitted. */
  async drain(): Promise<void> {
    while (this.inflight.size) await Promise.allSettled([...this.inflight])
  }

  /** Emits every exchange still open (marked incomplete), then waits for them. Call at the end of a replay or on shutdown. */
  async end(): Promise<void> {
    for (const x of this.open.all()) this.finish(x, undefined)
    await this.drain()
  }

  stats(): LlmMonitorStats {
    return { ...this.counters, byProvider: { ...this.byProvider }, open: this.open.size }
  }

  /** Usage, cost, errors and findings per workload, busiest first. */
  summary(): LlmWorkloadSummary[] {
    return this.workloads.list()
  }

  /** Counts an exchange of an excluded side when it is an LLM call (recognisers only: nothing is parsed or scanned). */
  private countSkippedSide(ev: HttpExchangeEvent): void {
    const req = ev.request
    if (!req) return
    const input = recogniserInput({ ...req, ...(req.path === undefined && ev.path !== undefined ? { path: ev.path } : {}) })
    if (this.recognise(input, ev.id)) this.counters.sideSkipped++
  }

  // ---- request ----

  private onRequest(ev: HttpRequestEvent): void {
    if (this.open.seen(ev.id)) return
    this.openExchange(ev, ev, ev.time)
  }

  /** Recognises the request and, when it is an LLM call, parses it and starts the scanners. */
  private openExchange(ev: HttpRequestEvent | HttpExchangeEvent, req: HttpRequestMessage, time: string): OpenExchange | undefined {
    const input = recogniserInput(req)
    const match = this.recognise(input, ev.id)
    if (!match) return undefined
    const adapter = adapterFor(match.format)
    if (!adapter) {
      this.counters.recogniserErrors++
      this.diagnostics.report('warn', 'recogniser_error', `unknown wire format '${String(match.format)}'`, ev.id, match.provider, time)
      return undefined
    }
    let request: ParsedRequest = { messages: [] }
    let requestTruncated = req.body?.truncated === true
    const body = input.json()
    if (body === undefined && req.body) {
      this.diagnostics.parseError(`request body of ${match.provider} ${match.operation} is not JSON${req.body.truncated ? ' (truncated)' : ''}`, ev.id, match.provider, time)
    } else if (body !== undefined) {
      try {
        request = adapter.parseRequest(body, match)
      } catch (err) {
        this.diagnostics.parseError(`request: ${errMsg(err)}`, ev.id, match.provider, time)
      }
      if (request.rejected) {
        this.diagnostics.parseError(`request: ${request.rejected.join('; ')}`, ev.id, match.provider, time)
        delete request.rejected
      }
    }
    if (match.model !== undefined && request.model === undefined) request.model = match.model
    if (match.stream && request.stream === undefined) request.stream = true
    const capped = capMessages(request.messages, this.limits)
    request.messages = capped.messages
    requestTruncated ||= capped.truncated

    const oldest = this.open.evictOldestIfFull()
    if (oldest) {
      this.counters.evicted++
      this.diagnostics.report('warn', 'evicted', `more than ${this.open.max} open LLM exchanges: ${oldest.id} emitted before its response ended`, oldest.id, oldest.match.provider, time)
      this.finish(oldest, undefined)
    }

    const identity = identityOf(ev, this.workloadKey)
    const x: OpenExchange = {
      id: ev.id,
      match,
      adapter,
      request,
      requestTruncated,
      // set just below: the builder's text callback needs x
      builder: undefined as unknown as CompletionBuilder,
      scans: [],
      findings: [],
      pending: [],
      streamEvents: 0,
      liveStream: false,
      identity,
      lastTime: time,
      closed: false,
    }
    const session = input.header('mcp-session-id')
    if (session !== undefined) x.mcpSession = session
    x.builder = new CompletionBuilder(this.limits, (delta) => this.scanRunner.push(x, delta))
    this.open.add(x)
    this.scanRunner.start(x, time)
    return x
  }

  /** The first recogniser that matches; one that throws is counted and skipped. */
  private recognise(input: RecogniserInput, id: string): ProviderMatch | undefined {
    for (const r of this.recognisers) {
      try {
        const m = r(input)
        if (m) return m
      } catch (err) {
        this.counters.recogniserErrors++
        this.diagnostics.report('warn', 'recogniser_error', `recogniser ${r.name || '(anonymous)'} threw: ${errMsg(err)}`, id)
      }
    }
    return undefined
  }

  // ---- response ----

  private onStreamEvent(ev: HttpStreamEvent): void {
    if (ev.direction !== 'response') return
    const x = this.open.get(ev.id)
    if (!x || x.closed) return
    this.responses.streamEvent(x, ev)
  }

  private onExchange(ev: HttpExchangeEvent): void {
    let x = this.open.get(ev.id)
    if (!x && this.open.forgetEvicted(ev.id)) return
    if (!x) {
      // no http.request seen (body-only replay, or the request event was filtered out)
      if (!ev.request) return
      const req: HttpRequestMessage = { ...ev.request }
      if (req.method === undefined && ev.method !== undefined) req.method = ev.method
      if (req.authority === undefined && ev.authority !== undefined) req.authority = ev.authority
      if (req.path === undefined && ev.path !== undefined) req.path = ev.path
      x = this.openExchange(ev, req, ev.time)
      if (!x) return
    }
    if (x.closed) return
    x.lastTime = ev.time
    this.responses.responseEnd(x, ev)
    this.finish(x, ev)
  }

  // ---- emit ----

  /** Ends the scans and emits the exchange (after async scanners, if any). `ev` is undefined when the response never came. */
  private finish(x: OpenExchange, ev: HttpExchangeEvent | undefined): void {
    x.closed = true
    this.open.delete(x.id)
    this.scanRunner.end(x, () => exchangeUsage(x, this.estimate))
    if (!x.pending.length) {
      this.emitExchange(x, ev)
      return
    }
    const p = Promise.allSettled(x.pending)
      .then(() => this.emitExchange(x, ev))
      .catch((err) => this.diagnostics.internalError(err, x.id))
      .finally(() => this.inflight.delete(p))
    this.inflight.add(p)
  }

  private emitExchange(x: OpenExchange, ev: HttpExchangeEvent | undefined): void {
    const out = this.events.build(x, ev, exchangeUsage(x, this.estimate))
    const b = x.builder
    if (b.droppedChars) this.counters.truncatedChars += b.droppedChars
    if (out.truncated) {
      this.counters.truncated++
      if (b.droppedChars) this.diagnostics.report('warn', 'truncated', `completion cut at the monitor's caps (${b.droppedChars} characters dropped)`, x.id, x.match.provider, out.time)
      else if (b.truncated) this.diagnostics.report('warn', 'truncated', 'stream events were lost before the end (capture gap) or tool calls exceeded maxToolCalls', x.id, x.match.provider, out.time)
    }
    this.counters.exchanges++
    this.byProvider[out.provider] = (this.byProvider[out.provider] ?? 0) + 1
    if (!this.workloads.add(out)) this.counters.summaryOverflow++
    this.emit('llm.exchange', out)
  }
}

/** Throws a TypeError naming the first bad option: a wrong type would otherwise fail (or scan nothing) on every exchange. */
function checkOptions(o: LlmMonitorOptions): void {
  arrayOf('LlmMonitor: scanners', o.scanners, (s, name) => {
    const x = s as Partial<Scanner> | null
    const ok =
      x !== null &&
      typeof x === 'object' &&
      typeof x.name === 'string' &&
      x.name !== '' &&
      (x.scanRequest === undefined || typeof x.scanRequest === 'function') &&
      (x.startResponse === undefined || typeof x.startResponse === 'function') &&
      (x.scanRequest !== undefined || x.startResponse !== undefined)
    if (!ok) throw optionError(name, 'a scanner (an object with a name and a scanRequest() and/or startResponse() method)', s)
  })
  arrayOf('LlmMonitor: recognisers', o.recognisers, (r, name) => {
    if (typeof r !== 'function') throw optionError(name, 'a function', r)
  })
  arrayOf('LlmMonitor: redactScanners', o.redactScanners, (r, name) => nonEmptyString(name, r))
  if (o.sides !== undefined && !Array.isArray(o.sides)) throw optionError('LlmMonitor: sides', "an array of 'client' and/or 'server'", o.sides)
  const limits = plainObject('LlmMonitor: limits', o.limits) ?? {}
  for (const [k, v] of Object.entries(limits)) {
    if (!(k in DEFAULT_LIMITS)) throw new TypeError(`LlmMonitor: limits.${k} is not a limit (known: ${Object.keys(DEFAULT_LIMITS).join(', ')})`)
    positiveInt(`LlmMonitor: limits.${k}`, v)
  }
  if (o.prices !== false) {
    for (const [model, p] of Object.entries(plainObject('LlmMonitor: prices', o.prices) ?? {})) {
      // USD per million tokens: a string or a negative price would give NaN or negative costs
      for (const field of ['input', 'output'] as const) {
        const v = (p as Partial<ModelPrice> | null)?.[field]
        if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw optionError(`LlmMonitor: prices['${model}'].${field}`, 'a non-negative number (USD per million tokens)', v)
      }
    }
  }
  positiveInt('LlmMonitor: maxOpenExchanges', o.maxOpenExchanges)
  // setTimeout's longest delay; the timer keeps the process alive until the scanner answers or times out
  numberIn('LlmMonitor: scannerTimeoutMs', o.scannerTimeoutMs, 0, 2 ** 31 - 1, true)
  func('LlmMonitor: workloadOf', o.workloadOf)
  if (o.maxWorkloads !== undefined && o.maxWorkloads !== 0) positiveInt('LlmMonitor: maxWorkloads', o.maxWorkloads)
}

/** An event time that is not a string, as an ISO string (epoch milliseconds and Dates converted, anything else now), and what it was. */
function timeString(time: unknown): { time: string; converted: boolean; was: string } {
  const was = time === null ? 'null' : time instanceof Date ? 'a Date' : typeof time === 'number' ? `the number ${time}` : typeof time
  const ms = time instanceof Date ? time.getTime() : typeof time === 'number' ? time : NaN
  if (Number.isFinite(ms) && Math.abs(ms) <= 8.64e15) return { time: new Date(ms).toISOString(), converted: true, was }
  return { time: new Date().toISOString(), converted: false, was }
}
