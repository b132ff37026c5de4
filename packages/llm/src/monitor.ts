/**
 * LlmMonitor: HTTP events in, LLM events out. It recognises LLM API calls
 * among HTTP requests, rebuilds the request (messages, tools) as soon as
 * the request is complete, assembles the response from stream events as
 * they arrive (so scanners see the completion chunk by chunk and findings
 * can be raised before the stream ends) or from the final body, and emits
 * one `llm.exchange` per call, `llm.finding` per finding and
 * `llm.diagnostic` for anything it could not parse. Nothing a capture
 * contains makes it throw, hang or grow without bound.
 */
import { l7 } from '@bpfkit/core'
import { EventEmitter } from 'eventemitter3'
import { type AssemblyLimits, capMessages, CompletionBuilder, DEFAULT_LIMITS, type ParsedRequest } from './assembly.js'
import { EventStreamDecoder, MAX_FRAME_BYTES } from './eventstream.js'
import { type Json, parseJson } from './json.js'
import { costOf, EXAMPLE_PRICES, type PriceTable } from './pricing.js'
import { adapterFor, type ProviderMatch, type ResponseContext, type WireAdapter } from './providers/index.js'
import { DEFAULT_RECOGNISERS, type Recogniser, type RecogniserInput } from './recognise.js'
import { redactExchange } from './redact.js'
import { defaultScanners } from './scanners/index.js'
import { REDACTED_SCANNERS, Redactor } from './scanners/redact.js'
import type {
  Finding,
  LlmDiagnosticEvent,
  LlmExchangeEvent,
  LlmFindingEvent,
  LlmMonitorEventMap,
  LlmProcessIdentity,
  LlmUsage,
  Scanner,
  ScanContext,
  StreamScan,
} from './types.js'
import { resolveUsage } from './usage.js'
import { workloadOf } from './workload.js'

type HttpRequestEvent = l7.HttpRequestEvent
type HttpExchangeEvent = l7.HttpExchangeEvent
type HttpStreamEvent = l7.HttpStreamEvent
type HttpRequestMessage = l7.HttpRequestMessage
type HttpBody = l7.HttpBody

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
  /** how long an exchange waits for async scanners before it is emitted without their findings (default 10 000 ms) */
  scannerTimeoutMs?: number
  /** the grouping key of an exchange (default: k8s workload, else executable name, else comm) */
  workloadOf?: (ev: { process?: unknown; k8s?: unknown }) => string
  /** distinct workloads kept in summary() (default 10 000); more are counted in stats.summaryOverflow */
  maxWorkloads?: number
  /**
   * which ends of a connection to report, by the capturing process's role on it (HTTP events' `side`).
   * Default ['client']: an LLM server or proxy on the same node (Ollama, vLLM, LiteLLM) also sees every
   * call it answers, and reporting both ends would count each call twice. Events without `side`
   * (captures made before the field existed) count as client side.
   */
  sides?: ('client' | 'server')[]
}

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
  /** bodies or stream events that were not valid JSON / not decodable (each also emits a diagnostic) */
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
  /** unexpected errors inside the monitor (bugs); each also emits a diagnostic */
  internalErrors: number
  /** exchanges open now */
  open: number
  /** exchanges not added to summary() because maxWorkloads was reached */
  summaryOverflow: number
  /** LLM calls not reported because the capturing process was on a side not in `sides` (by default: server side) */
  sideSkipped: number
}

/** Usage and cost of one workload, from summary(). */
export interface LlmWorkloadSummary {
  workload: string
  exchanges: number
  /** exchanges with an HTTP status >= 400 or a provider error */
  errors: number
  findings: number
  input_tokens: number
  output_tokens: number
  /** exchanges whose token counts were (partly) estimated */
  estimated_exchanges: number
  /** USD, for the exchanges whose model had a price */
  cost_usd: number
  /** exchanges without a price (cost_usd leaves them out) */
  unpriced_exchanges: number
  providers: Record<string, number>
  models: Record<string, number>
  first_seen: string
  last_seen: string
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

interface ScanRun {
  scanner: Scanner
  stream?: StreamScan
}

interface RecordedFinding {
  finding: Finding
  phase: 'request' | 'response'
}

/** One LLM call in progress. */
interface OpenExchange {
  id: string
  match: ProviderMatch
  adapter: WireAdapter
  request: ParsedRequest
  requestTruncated: boolean
  builder: CompletionBuilder
  scans: ScanRun[]
  /** the context every scanner of this exchange got; usage is set on it before StreamScan.end() */
  ctx?: ScanContext
  findings: RecordedFinding[]
  pending: Promise<void>[]
  /** stream events applied (from http.stream_event or decoded from the body) */
  streamEvents: number
  /** saw http.stream_event events for the response */
  liveStream: boolean
  firstContentTime?: string
  identity: { process: LlmProcessIdentity; k8s?: Record<string, unknown>; container?: Record<string, unknown>; workload: string }
  mcpSession?: string
  lastTime: string
  /** the response ended (or the exchange was evicted): no more stream events */
  closed: boolean
  /** decoder of eventstream frames arriving as stream events */
  eventStream?: EventStreamDecoder
  /** resolved usage (null: none), computed once at the end */
  usage?: LlmUsage | null
}

const MiB = 1024 * 1024

export class LlmMonitor extends EventEmitter<LlmMonitorEventMap> {
  private readonly scanners: Scanner[]
  private readonly recognisers: Recogniser[]
  private readonly redactOn: boolean
  private readonly redactScanners: Set<string>
  private readonly redactor: Redactor
  private readonly estimate: boolean
  private readonly prices: PriceTable | undefined
  private readonly limits: AssemblyLimits
  private readonly maxOpen: number
  private readonly scannerTimeoutMs: number
  private readonly workloadKey: (ev: { process?: unknown; k8s?: unknown }) => string
  private readonly maxWorkloads: number
  private readonly sides: ReadonlySet<string>
  private readonly open = new Map<string, OpenExchange>()
  private readonly inflight = new Set<Promise<void>>()
  /** ids emitted early (evicted): their late http.exchange is ignored rather than emitted twice */
  private readonly evictedIds = new Set<string>()
  private readonly workloads = new Map<string, LlmWorkloadSummary>()
  private readonly counters: Omit<LlmMonitorStats, 'open' | 'byProvider'> = {
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
  private readonly byProvider: Record<string, number> = {}

  constructor(options: LlmMonitorOptions = {}) {
    super()
    this.scanners = options.scanners ?? defaultScanners()
    this.recognisers = [...(options.recognisers ?? []), ...(options.defaultRecognisers === false ? [] : DEFAULT_RECOGNISERS)]
    this.redactOn = options.redact !== false
    this.redactScanners = new Set(options.redactScanners ?? REDACTED_SCANNERS)
    this.redactor = new Redactor({ scanners: [...this.redactScanners] })
    this.estimate = options.estimateUsage !== false
    this.prices = options.prices === false ? undefined : options.replacePrices ? { ...(options.prices ?? {}) } : { ...EXAMPLE_PRICES, ...(options.prices ?? {}) }
    this.limits = { ...DEFAULT_LIMITS, ...(options.limits ?? {}) }
    this.maxOpen = Math.max(1, options.maxOpenExchanges ?? 1024)
    this.scannerTimeoutMs = options.scannerTimeoutMs ?? 10_000
    this.workloadKey = options.workloadOf ?? workloadOf
    this.maxWorkloads = options.maxWorkloads ?? 10_000
    const sides = options.sides ?? ['client']
    for (const side of sides) if (side !== 'client' && side !== 'server') throw new TypeError(`LlmMonitor: sides must list 'client' and/or 'server', got '${String(side)}'`)
    this.sides = new Set(sides)
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
    try {
      // the other end of a call captured on this node (e.g. a local LLM server): reported by its client
      if (typeof ev.type === 'string' && ev.type.startsWith('http.') && !this.sides.has((ev as { side?: string }).side ?? 'client')) {
        this.counters.httpEvents++
        if (ev.type === 'http.exchange') this.countSkippedSide(ev as HttpExchangeEvent)
        return
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
      this.internalError(err, (ev as { id?: string }).id)
    }
  }

  /** Resolves once every exchange waiting for async scanners has been emitted. */
  async drain(): Promise<void> {
    while (this.inflight.size) await Promise.allSettled([...this.inflight])
  }

  /** Emits every exchange still open (marked incomplete), then waits for them. Call at the end of a replay or on shutdown. */
  async end(): Promise<void> {
    for (const x of [...this.open.values()]) this.finish(x, undefined)
    await this.drain()
  }

  stats(): LlmMonitorStats {
    return { ...this.counters, byProvider: { ...this.byProvider }, open: this.open.size }
  }

  /** Usage, cost, errors and findings per workload, busiest first. */
  summary(): LlmWorkloadSummary[] {
    return [...this.workloads.values()]
      .map((w) => ({ ...w, providers: { ...w.providers }, models: { ...w.models } }))
      .sort((a, b) => b.exchanges - a.exchanges || a.workload.localeCompare(b.workload))
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
    if (this.open.has(ev.id) || this.evictedIds.has(ev.id)) return
    this.openExchange(ev, ev, ev.time)
  }

  /** Recognises the request and, when it is an LLM call, parses it and starts the scanners. */
  private openExchange(ev: HttpRequestEvent | HttpExchangeEvent, req: HttpRequestMessage, time: string): OpenExchange | undefined {
    const input = recogniserInput(req)
    const match = this.recognise(input, ev.id)
    if (!match) return undefined
    const adapter = adapterFor(match.format)
    if (!adapter) {
      this.diagnostic('warn', 'recogniser_error', `unknown wire format '${String(match.format)}'`, ev.id, match.provider, time)
      return undefined
    }
    let request: ParsedRequest = { messages: [] }
    let requestTruncated = req.body?.truncated === true
    const body = input.json()
    if (body === undefined && req.body) {
      this.parseError(`request body of ${match.provider} ${match.operation} is not JSON${req.body.truncated ? ' (truncated)' : ''}`, ev.id, match.provider, time)
    } else if (body !== undefined) {
      try {
        request = adapter.parseRequest(body, match)
      } catch (err) {
        this.parseError(`request: ${errMsg(err)}`, ev.id, match.provider, time)
      }
    }
    if (match.model !== undefined && request.model === undefined) request.model = match.model
    if (match.stream && request.stream === undefined) request.stream = true
    const capped = capMessages(request.messages, this.limits)
    request.messages = capped.messages
    requestTruncated ||= capped.truncated

    if (this.open.size >= this.maxOpen) {
      const oldest = this.open.values().next().value as OpenExchange
      this.counters.evicted++
      this.evictedIds.add(oldest.id)
      if (this.evictedIds.size > 4 * this.maxOpen) this.evictedIds.delete(this.evictedIds.values().next().value as string)
      this.diagnostic('warn', 'evicted', `more than ${this.maxOpen} open LLM exchanges: ${oldest.id} emitted before its response ended`, oldest.id, oldest.match.provider, time)
      this.finish(oldest, undefined)
    }

    const identity = identityOf(ev, this.workloadKey)
    const x: OpenExchange = {
      id: ev.id,
      match,
      adapter,
      request,
      requestTruncated,
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
    x.builder = new CompletionBuilder(this.limits, (delta) => this.scanDelta(x, delta))
    this.open.set(ev.id, x)
    this.startScans(x, time)
    return x
  }

  private recognise(input: RecogniserInput, id: string): ProviderMatch | undefined {
    for (const r of this.recognisers) {
      try {
        const m = r(input)
        if (m) return m
      } catch (err) {
        this.counters.recogniserErrors++
        this.diagnostic('warn', 'recogniser_error', `recogniser ${r.name || '(anonymous)'} threw: ${errMsg(err)}`, id)
      }
    }
    return undefined
  }

  // ---- scanning ----

  private scanContext(x: OpenExchange): ScanContext {
    const ctx: ScanContext = { exchange_id: x.id, provider: x.match.provider, messages: x.request.messages, workload: x.identity.workload }
    if (x.request.model !== undefined) ctx.model = x.request.model
    return ctx
  }

  private startScans(x: OpenExchange, time: string): void {
    const ctx = this.scanContext(x)
    x.ctx = ctx
    for (const scanner of this.scanners) {
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

  private scanDelta(x: OpenExchange, delta: string): void {
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

  private endScans(x: OpenExchange): void {
    // token-budget scanners read the usage at end(): reported counts, or our estimate
    if (x.ctx && x.scans.some((r) => r.stream)) {
      const usage = this.usageOf(x)
      if (usage) x.ctx.usage = usage
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
      this.counters.findings++
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
      this.emit('llm.finding', ev)
    }
  }

  private withTimeout<T>(p: Promise<T>, scanner: string, id: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.counters.scannerTimeouts++
        reject(new Error(`scanner ${scanner} did not answer within ${this.scannerTimeoutMs} ms (exchange ${id})`))
      }, this.scannerTimeoutMs)
      timer.unref?.()
    })
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
  }

  private scannerError(scanner: Scanner, hook: string, err: unknown, id: string): void {
    this.counters.scannerErrors++
    this.diagnostic('warn', 'scanner_error', `scanner ${scanner.name} ${hook}: ${errMsg(err)}`, id)
  }

  // ---- response ----

  private onStreamEvent(ev: HttpStreamEvent): void {
    if (ev.direction !== 'response') return
    const x = this.open.get(ev.id)
    if (!x || x.closed) return
    x.liveStream = true
    x.lastTime = ev.time
    // events before this one were lost (capture gap): the completion has a hole
    if (ev.after_gap) x.builder.truncated = true
    if (ev.format === 'eventstream') {
      // one whole AWS eventstream frame (Bedrock), base64 in `data`: decoded as it arrives
      x.eventStream ??= this.eventStreamDecoder(x, () => x.lastTime)
      x.eventStream.push(Buffer.from(ev.data, 'base64'))
      return
    }
    this.applyStreamData(x, ev.data, ev.event, ev.time)
  }

  /** One SSE/NDJSON event's data or JSON-array element: JSON-parse it and hand it to the provider. */
  private applyStreamData(x: OpenExchange, data: string, event: string | undefined, time: string): void {
    const trimmed = data.trim()
    if (trimmed === '' || trimmed === '[DONE]') return
    const parsed = parseJson(data)
    if (parsed.error !== undefined) {
      this.parseError(`stream event${event ? ` '${event}'` : ''}: ${parsed.error}`, x.id, x.match.provider, time)
      return
    }
    this.applyStreamJson(x, parsed.value, event, time)
  }

  private applyStreamJson(x: OpenExchange, value: Json, event: string | undefined, time: string): void {
    x.streamEvents++
    this.counters.streamEvents++
    try {
      x.adapter.streamEvent(x.builder, value, event, this.responseContext(x))
    } catch (err) {
      this.parseError(`stream event${event ? ` '${event}'` : ''}: ${errMsg(err)}`, x.id, x.match.provider, time)
    }
    if (x.firstContentTime === undefined && x.builder.sawContent) x.firstContentTime = time
  }

  private responseContext(x: OpenExchange): ResponseContext {
    return { match: x.match, request: x.request }
  }

  private onExchange(ev: HttpExchangeEvent): void {
    let x = this.open.get(ev.id)
    if (!x && this.evictedIds.delete(ev.id)) return
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
    if (x.liveStream && ev.stream_events_dropped) this.streamEventsDropped(x, ev)
    if (x.eventStream) this.endEventStream(x, x.eventStream, ev.response?.body?.truncated === true || ev.incomplete, ev.time)
    const body = ev.response?.body
    // a streamed response whose stream events were not seen (replay of exchanges only, attached mid-stream): rebuild from the body
    if (body && !x.liveStream) this.applyBody(x, ev, body)
    this.finish(x, ev)
  }

  /** The pipeline dropped stream events of this response (over its size cap, broken frames): the completion has a hole. */
  private streamEventsDropped(x: OpenExchange, ev: HttpExchangeEvent): void {
    const n = ev.stream_events_dropped!
    x.builder.truncated = true
    if (x.eventStream) {
      this.counters.eventstreamErrors++
      this.parseError(`eventstream: ${n} frame(s) dropped by the HTTP pipeline (bad CRC, bytes that are not frames, or over its size cap)`, x.id, x.match.provider, ev.time)
    } else {
      this.parseError(`${n} stream event(s) dropped by the HTTP pipeline (over its size cap or cut off)`, x.id, x.match.provider, ev.time)
    }
  }

  private applyBody(x: OpenExchange, ev: HttpExchangeEvent, body: HttpBody): void {
    const ct = header(ev.response?.headers, 'content-type')?.toLowerCase()
    const bytes = (): Buffer => Buffer.from(body.data, body.encoding === 'base64' ? 'base64' : 'utf8')
    if (ct?.startsWith('application/vnd.amazon.eventstream')) {
      this.applyEventStream(x, bytes(), body.truncated, ev.time)
      return
    }
    // the path tells a streamed JSON array (Gemini :streamGenerateContent) from one JSON document
    const kind = l7.streamingKind(ct, ev.path ?? ev.request?.path)
    if (kind) {
      const parser = new l7.StreamingBodyParser(kind, (e) => this.applyStreamData(x, e.data, e.event, ev.time), { maxEventBytes: this.limits.maxCompletionChars + MiB })
      parser.push(bytes())
      if (!body.truncated) parser.end()
      if (parser.dropped) this.diagnostic('warn', 'truncated', `${parser.dropped} oversized stream events dropped`, x.id, x.match.provider, ev.time)
      return
    }
    if (body.encoding !== 'utf8') {
      this.parseError(`response body is binary (${ct ?? 'no content-type'})`, x.id, x.match.provider, ev.time)
      return
    }
    if (body.data.trim() === '') return
    const parsed = parseJson(body.data)
    if (parsed.error !== undefined) {
      if ((ev.status ?? 0) >= 400) {
        x.builder.setError({ message: body.data.slice(0, 1000) })
        return
      }
      this.parseError(`response body: ${parsed.error}${body.truncated ? ' (body truncated)' : ''}`, x.id, x.match.provider, ev.time)
      return
    }
    try {
      x.adapter.responseBody(x.builder, parsed.value, this.responseContext(x))
    } catch (err) {
      this.parseError(`response body: ${errMsg(err)}`, x.id, x.match.provider, ev.time)
    }
  }

  /** Bedrock streams: binary frames in the body; each event frame's payload is one JSON stream event. */
  private applyEventStream(x: OpenExchange, bytes: Buffer, truncated: boolean, time: string): void {
    const decoder = this.eventStreamDecoder(x, () => time)
    decoder.push(bytes)
    this.endEventStream(x, decoder, truncated, time)
  }

  /** Reports a broken framing, or a frame left incomplete at the end of a complete body. */
  private endEventStream(x: OpenExchange, decoder: EventStreamDecoder, truncated: boolean, time: string): void {
    const left = decoder.end()
    if (decoder.error !== undefined) {
      this.counters.eventstreamErrors++
      this.parseError(`eventstream framing: ${decoder.error}`, x.id, x.match.provider, time)
    } else if (left > 0 && !truncated) {
      this.counters.eventstreamErrors++
      this.parseError(`eventstream: ${left} bytes of an incomplete frame at the end of the body`, x.id, x.match.provider, time)
    }
  }

  private eventStreamDecoder(x: OpenExchange, timeOf: () => string): EventStreamDecoder {
    return new EventStreamDecoder((m) => {
      const time = timeOf()
      if (m.messageType !== 'event') {
        const parsed = parseJson(m.payload)
        const message = parsed.error === undefined ? (typeof (parsed.value as { message?: unknown })?.message === 'string' ? (parsed.value as { message: string }).message : m.payload) : m.payload
        x.builder.setError({ ...(m.exceptionType ? { type: m.exceptionType } : {}), message: message.slice(0, 1000) })
        return
      }
      const parsed = parseJson(m.payload)
      if (parsed.error !== undefined) {
        this.parseError(`eventstream '${m.eventType ?? '?'}' payload: ${parsed.error}`, x.id, x.match.provider, time)
        return
      }
      this.applyStreamJson(x, parsed.value, m.eventType, time)
    }, Math.max(MAX_FRAME_BYTES, 2 * this.limits.maxCompletionChars))
  }

  // ---- emit ----

  /** Ends the scans and emits the exchange (after async scanners, if any). `ev` is undefined when the response never came. */
  private finish(x: OpenExchange, ev: HttpExchangeEvent | undefined): void {
    x.closed = true
    this.open.delete(x.id)
    this.endScans(x)
    if (!x.pending.length) {
      this.emitExchange(x, ev)
      return
    }
    const p = Promise.allSettled(x.pending)
      .then(() => this.emitExchange(x, ev))
      .catch((err) => this.internalError(err, x.id))
      .finally(() => this.inflight.delete(p))
    this.inflight.add(p)
  }

  private emitExchange(x: OpenExchange, ev: HttpExchangeEvent | undefined): void {
    const b = x.builder
    const completion = b.completion()
    const status = ev?.status
    const out: LlmExchangeEvent = {
      type: 'llm.exchange',
      time: ev?.time ?? x.lastTime,
      id: x.id,
      provider: x.match.provider,
      operation: x.match.operation,
      server: serverOf(ev?.authority ?? ev?.request?.authority),
      url: ev?.path !== undefined ? { path: ev.path } : {},
      http: { protocol: ev?.protocol ?? '', ...(ev?.method !== undefined ? { method: ev.method } : {}), ...(status !== undefined ? { status } : {}) },
      stream: x.request.stream === true || x.streamEvents > 0,
      messages: x.request.messages,
      completion,
      latency: {},
      process: x.identity.process,
      workload: x.identity.workload,
      findings: x.findings.length,
      redacted: 0,
      truncated: x.requestTruncated || b.truncated || ev?.response?.body?.truncated === true,
      incomplete: ev === undefined || ev.incomplete,
    }
    const model = b.model ?? x.request.model
    if (model !== undefined) out.model = model
    if (x.request.model !== undefined && x.request.model !== model) out.request_model = x.request.model
    const tools = b.listedTools ?? x.request.tools
    if (tools) out.tools = tools
    if (x.identity.k8s) out.k8s = x.identity.k8s
    if (x.identity.container) out.container = x.identity.container
    if (x.mcpSession !== undefined) out.mcp_session_id = x.mcpSession

    const usage = this.usageOf(x)
    if (usage) out.usage = usage
    if (this.prices && usage) {
      const cost = costOf(this.prices, b.model, usage) ?? costOf(this.prices, x.request.model, usage)
      if (cost) out.cost = cost
    }
    out.latency = latencyOf(ev, x)
    if (b.error || (status !== undefined && status >= 400)) {
      out.error = { ...(b.error ?? {}) }
      if (status !== undefined && status >= 400) out.error.status = status
      const awsType = header(ev?.response?.headers, 'x-amzn-errortype')
      if (out.error.type === undefined && awsType) out.error.type = awsType.split(':', 1)[0]!
    }

    if (this.redactOn) {
      const masked = x.findings.filter((f) => this.redactScanners.has(f.finding.scanner)).map((f) => f.finding)
      out.redacted = redactExchange(out, masked, this.redactor)
    }
    if (b.droppedChars) this.counters.truncatedChars += b.droppedChars
    if (out.truncated) {
      this.counters.truncated++
      if (b.droppedChars) this.diagnostic('warn', 'truncated', `completion cut at the monitor's caps (${b.droppedChars} characters dropped)`, x.id, x.match.provider, out.time)
      else if (b.truncated) this.diagnostic('warn', 'truncated', 'stream events were lost before the end (capture gap) or tool calls exceeded maxToolCalls', x.id, x.match.provider, out.time)
    }
    this.counters.exchanges++
    this.byProvider[out.provider] = (this.byProvider[out.provider] ?? 0) + 1
    this.addToSummary(out)
    this.emit('llm.exchange', out)
  }

  /** Reported usage, with missing counts estimated (computed once per exchange). MCP calls have none. */
  private usageOf(x: OpenExchange): LlmUsage | undefined {
    if (x.usage === undefined) {
      x.usage = x.match.provider === 'mcp' ? null : (resolveUsage(x.builder.usage, x.request, { text: x.builder.text, tool_calls: x.builder.toolCalls() }, this.estimate) ?? null)
    }
    return x.usage ?? undefined
  }

  private addToSummary(ev: LlmExchangeEvent): void {
    let w = this.workloads.get(ev.workload)
    if (!w) {
      if (this.workloads.size >= this.maxWorkloads) {
        this.counters.summaryOverflow++
        return
      }
      w = {
        workload: ev.workload,
        exchanges: 0,
        errors: 0,
        findings: 0,
        input_tokens: 0,
        output_tokens: 0,
        estimated_exchanges: 0,
        cost_usd: 0,
        unpriced_exchanges: 0,
        providers: {},
        models: {},
        first_seen: ev.time,
        last_seen: ev.time,
      }
      this.workloads.set(ev.workload, w)
    }
    w.exchanges++
    if (ev.error) w.errors++
    w.findings += ev.findings
    w.input_tokens += ev.usage?.input_tokens ?? 0
    w.output_tokens += ev.usage?.output_tokens ?? 0
    if (ev.usage?.estimated) w.estimated_exchanges++
    if (ev.cost) w.cost_usd += ev.cost.total
    else if (ev.usage) w.unpriced_exchanges++
    w.providers[ev.provider] = (w.providers[ev.provider] ?? 0) + 1
    const model = ev.model ?? '(unknown)'
    if (model in w.models || Object.keys(w.models).length < 100) w.models[model] = (w.models[model] ?? 0) + 1
    else w.models['(other)'] = (w.models['(other)'] ?? 0) + 1
    if (ev.time < w.first_seen) w.first_seen = ev.time
    if (ev.time > w.last_seen) w.last_seen = ev.time
  }

  // ---- diagnostics ----

  private parseError(message: string, id: string, provider: string, time: string): void {
    this.counters.parseErrors++
    this.diagnostic('warn', 'parse_error', message, id, provider, time)
  }

  private internalError(err: unknown, id: string | undefined): void {
    this.counters.internalErrors++
    this.diagnostic('error', 'internal_error', errMsg(err), id)
  }

  private diagnostic(level: 'warn' | 'error', code: string, message: string, id?: string, provider?: string, time?: string): void {
    const ev: LlmDiagnosticEvent = { type: 'llm.diagnostic', level, code, message: message.length > 2000 ? message.slice(0, 2000) + '…' : message }
    if (id !== undefined) ev.exchange_id = id
    if (provider !== undefined) ev.provider = provider
    if (time !== undefined) ev.time = time
    this.emit('llm.diagnostic', ev)
  }
}

// ---- helpers ----

function errMsg(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function isPromise<T>(x: T | Promise<T>): x is Promise<T> {
  return typeof (x as { then?: unknown })?.then === 'function'
}

function header(headers: l7.HttpHeaders | undefined, name: string): string | undefined {
  if (!headers) return undefined
  for (const [k, v] of headers) if (k.toLowerCase() === name) return v
  return undefined
}

/** Splits "host:port" / "[v6]:port". */
export function splitAuthority(authority: string | undefined): { host: string; port?: number } {
  if (!authority) return { host: '' }
  const a = authority.trim().toLowerCase()
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(a)
  if (!m) return { host: a }
  const port = m[2] !== undefined ? Number(m[2]) : undefined
  return port !== undefined && port <= 65535 ? { host: m[1]!, port } : { host: m[1]! }
}

function serverOf(authority: string | undefined): { address?: string; port?: number } {
  const { host, port } = splitAuthority(authority)
  const s: { address?: string; port?: number } = {}
  if (host) s.address = host
  if (port !== undefined) s.port = port
  return s
}

function recogniserInput(req: HttpRequestMessage): RecogniserInput {
  const { host, port } = splitAuthority(req.authority ?? header(req.headers, 'host'))
  const rawPath = req.path ?? ''
  const q = rawPath.indexOf('?')
  const pathname = q === -1 ? rawPath : rawPath.slice(0, q)
  let query: URLSearchParams
  try {
    query = new URLSearchParams(q === -1 ? '' : rawPath.slice(q + 1))
  } catch {
    query = new URLSearchParams()
  }
  let parsed: { value?: Json } | undefined
  const input: RecogniserInput = {
    host,
    pathname,
    query,
    header: (name) => header(req.headers, name.toLowerCase()),
    text: () => (req.body && req.body.encoding === 'utf8' ? req.body.data : undefined),
    json: () => {
      if (!parsed) {
        const b = req.body
        parsed = b && b.encoding === 'utf8' && b.data.length ? { value: parseJson(b.data).value } : {}
      }
      return parsed.value
    },
  }
  if (req.method !== undefined) input.method = req.method
  if (req.authority !== undefined) input.authority = req.authority
  if (port !== undefined) input.port = port
  return input
}

function identityOf(ev: object, workloadKey: (ev: { process?: unknown; k8s?: unknown }) => string): OpenExchange['identity'] {
  const e = ev as { process?: LlmProcessIdentity; k8s?: unknown; container?: unknown }
  const process: LlmProcessIdentity = e.process ? { ...e.process } : { pid: 0, tid: 0, comm: '' }
  const id: OpenExchange['identity'] = { process, workload: '' }
  if (e.k8s && typeof e.k8s === 'object') id.k8s = e.k8s as Record<string, unknown>
  if (e.container && typeof e.container === 'object') id.container = e.container as Record<string, unknown>
  try {
    id.workload = workloadKey(e)
  } catch {
    id.workload = process.comm || 'unknown'
  }
  return id
}

/** ISO 8601 with up to ns → ms since the epoch, keeping sub-ms digits. */
export function isoToMs(iso: string | undefined): number | undefined {
  if (!iso) return undefined
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?$/.exec(iso)
  if (!m) return undefined
  const base = Date.parse(`${m[1]}${m[3] ?? 'Z'}`)
  if (!Number.isFinite(base)) return undefined
  const frac = m[2] ? Number(`0.${m[2]}`) * 1000 : 0
  return base + frac
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000
}

function latencyOf(ev: HttpExchangeEvent | undefined, x: OpenExchange): { time_to_first_token_ms?: number; total_ms?: number } {
  const l: { time_to_first_token_ms?: number; total_ms?: number } = {}
  const t = ev?.timings
  if (t?.duration_ns !== undefined) l.total_ms = round3(t.duration_ns / 1e6)
  if (x.liveStream && x.firstContentTime !== undefined) {
    const start = isoToMs(t?.request_end)
    const first = isoToMs(x.firstContentTime)
    if (start !== undefined && first !== undefined && first >= start) l.time_to_first_token_ms = round3(first - start)
  } else if (t?.ttfb_ns !== undefined) {
    // non-streamed (or stream seen only as a whole body): the first byte is the best we know
    l.time_to_first_token_ms = round3(t.ttfb_ns / 1e6)
  }
  return l
}
