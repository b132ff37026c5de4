/**
 * What HTTP/1 and HTTP/2 share above their framing: the state of a message
 * and of a request/response exchange, and turning them into events exactly
 * once (request when it ends, response when it ends, the joined exchange
 * when both are over). Redaction happens here, when events are built.
 */
import { type BodyCounters, BodyCollector, type BodyStreamOptions } from './body.js'
import type {
  HttpExchangeEvent,
  HttpHeaders,
  HttpInformational,
  HttpPipelineEvent,
  HttpProtocol,
  HttpRequestMessage,
  HttpReset,
  HttpResponseMessage,
  HttpTimings,
  L7DiagnosticEvent,
} from './events.js'
import type { ChunkMeta, Direction } from './record.js'
import type { ByteBudget } from './stream.js'
import { type StreamingEvent, streamingKind } from './streaming.js'

/** Header names whose values are redacted by default. */
export const DEFAULT_REDACTED_HEADERS: readonly string[] = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'api-key',
]

import { REDACTED } from '../redact.js'
export { REDACTED }

/** Parser options after defaults are applied. */
export interface ResolvedL7Options {
  scheme: string
  /** lowercase names to redact; empty: redaction off */
  redact: ReadonlySet<string>
  maxBodyBytes: number
  maxHeaderBytes: number
  maxPendingRequests: number
  maxStreams: number
  defaultClientDirection: Direction
  /** request paths whose application/json responses stream as JSON arrays (false: none) */
  jsonArrayPaths: RegExp | false
}

/** Counters the parsers update (a subset of the pipeline stats). */
export interface L7Counters extends BodyCounters {
  bytesSkipped: number
  protocolErrors: number
  hpackFailures: number
  requests: number
  responses: number
  exchanges: number
  streamEvents: number
}

/** What a protocol parser needs from the connection that owns it. */
export interface ConnContext {
  readonly conn: string
  readonly gen: number
  readonly opts: ResolvedL7Options
  readonly budget: ByteBudget
  readonly counters: L7Counters
  /** metadata of the chunk being processed */
  now: ChunkMeta
  /** the capturing process's role on this connection: it sends the requests ('client') or answers them ('server') */
  readonly side: 'client' | 'server'
  emit(ev: HttpPipelineEvent): void
  diag(level: L7DiagnosticEvent['level'], code: string, message: string): void
}

/** First value of a header (case-insensitive name). */
export function headerValue(headers: HttpHeaders, name: string): string | undefined {
  const n = name.toLowerCase()
  for (const [k, v] of headers) if (k.toLowerCase() === n) return v
  return undefined
}

/** All values of a header (case-insensitive name). */
export function headerValues(headers: HttpHeaders, name: string): string[] {
  const n = name.toLowerCase()
  const out: string[] = []
  for (const [k, v] of headers) if (k.toLowerCase() === n) out.push(v)
  return out
}

function redactHeaders(headers: HttpHeaders, redact: ReadonlySet<string>): HttpHeaders {
  if (redact.size === 0) return headers.map(([k, v]) => [k, v])
  return headers.map(([k, v]) => [k, redact.has(k.toLowerCase()) ? REDACTED : v])
}

/** One request or response in progress. */
export class MessageState {
  headers: HttpHeaders = []
  headersUnknown = false
  trailers: HttpHeaders | undefined
  body: BodyCollector | undefined
  start: ChunkMeta | undefined
  end: ChunkMeta | undefined
  incomplete = false
  gap = false
  /** no more bytes will come for this message */
  done = false
  method: string | undefined
  path: string | undefined
  authority: string | undefined
  status: number | undefined
  statusText: string | undefined
  informational: HttpInformational[] = []
  private json: HttpRequestMessage | HttpResponseMessage | undefined

  constructor(readonly kind: 'request' | 'response') {}

  /** Starts body collection from the current headers (Content-Type/Encoding, streaming formats). */
  openBody(ctx: ConnContext, x: ExchangeState, protocol: HttpProtocol): BodyCollector {
    const ct = headerValue(this.headers, 'content-type')
    const ce = headerValue(this.headers, 'content-encoding')
    // a JSON-array stream is a response property that only the request path reveals
    const kind = streamingKind(ct, this.kind === 'response' ? x.req?.path : undefined, ctx.opts.jsonArrayPaths)
    const direction = this.kind
    const stream: BodyStreamOptions | undefined = kind
      ? {
          kind,
          onEvent: (ev: StreamingEvent) => {
            ctx.counters.streamEvents++
            ctx.emit({
              type: 'http.stream_event',
              ...eventBase(ctx, x, protocol, ctx.now),
              direction,
              format: kind,
              index: x.streamEvents++,
              data: ev.data,
              ...(ev.event !== undefined ? { event: ev.event } : {}),
              ...(ev.id !== undefined ? { sse_id: ev.id } : {}),
              ...(ev.after_gap ? { after_gap: true } : {}),
            })
          },
          onDrop: (reason: string) => {
            x.streamEventsDropped++
            ctx.diag('warn', 'stream_event_dropped', `${direction} ${kind} body of ${x.id}: ${reason}`)
          },
        }
      : undefined
    this.body = new BodyCollector(
      { maxBodyBytes: ctx.opts.maxBodyBytes, budget: ctx.budget, counters: ctx.counters },
      ct,
      ce,
      stream,
    )
    return this.body
  }

  /** The event form (built once: finishes the body). */
  toJSON(ctx: ConnContext): HttpRequestMessage | HttpResponseMessage {
    if (this.json) return this.json
    const body = this.body?.finish(this.done && !this.incomplete)
    const base = {
      headers: redactHeaders(this.headers, ctx.opts.redact),
      ...(this.headersUnknown ? { headers_unknown: true } : {}),
      ...(this.trailers ? { trailers: redactHeaders(this.trailers, ctx.opts.redact) } : {}),
      ...(body ? { body } : {}),
      // a message with lost bytes is incomplete even when its framing ended normally
      incomplete: this.incomplete || !this.done || this.gap || body?.gap === true,
      gap: this.gap || body?.gap === true,
    }
    if (this.kind === 'request') {
      const r: HttpRequestMessage = {
        ...(this.method !== undefined ? { method: this.method } : {}),
        scheme: ctx.opts.scheme,
        ...(this.authority !== undefined ? { authority: this.authority } : {}),
        ...(this.path !== undefined ? { path: this.path } : {}),
        ...base,
      }
      this.json = r
    } else {
      const r: HttpResponseMessage = {
        ...(this.status !== undefined ? { status: this.status } : {}),
        ...(this.statusText !== undefined ? { status_text: this.statusText } : {}),
        ...(this.informational.length
          ? { informational: this.informational.map((i) => ({ status: i.status, headers: redactHeaders(i.headers, ctx.opts.redact) })) }
          : {}),
        ...base,
      }
      this.json = r
    }
    return this.json
  }

  /** Drops captured bytes without building an event. */
  discard(): void {
    this.body?.discard()
  }
}

/** A request and its response. */
export class ExchangeState {
  req: MessageState | undefined
  res: MessageState | undefined
  /** the request existed but was lost in a gap */
  requestLost = false
  /** the response may have been lost in a gap */
  responseLost = false
  reset: HttpReset | undefined
  streamEvents = 0
  /** streaming events dropped (too long, garbage, cut off) */
  streamEventsDropped = 0
  /** HTTP version of this exchange (HTTP/1 connections can mix 1.0 and 1.1) */
  protocol: HttpProtocol = '1.1'
  /** 1xx responses seen before the final one */
  informational: HttpInformational[] = []
  /** identity of the first record of the exchange */
  meta: ChunkMeta
  private sentReq = false
  private sentRes = false
  sent = false

  constructor(
    readonly id: string,
    meta: ChunkMeta,
    readonly streamId?: number,
  ) {
    this.meta = meta
  }

  get requestOver(): boolean {
    return !this.req || this.req.done
  }

  get responseOver(): boolean {
    return !!this.res && this.res.done
  }

  /** bytes buffered for this exchange */
  get buffered(): number {
    return (this.req?.body?.buffered ?? 0) + (this.res?.body?.buffered ?? 0)
  }

  emitRequest(ctx: ConnContext, protocol: HttpProtocol): void {
    if (this.sentReq || !this.req) return
    this.sentReq = true
    ctx.counters.requests++
    const m = this.req.end ?? ctx.now
    const msg = this.req.toJSON(ctx) as HttpRequestMessage
    ctx.emit({ type: 'http.request', ...eventBase(ctx, this, protocol, m), ...msg, timings: this.timings() })
  }

  emitResponse(ctx: ConnContext, protocol: HttpProtocol): void {
    if (this.sentRes || !this.res) return
    this.sentRes = true
    ctx.counters.responses++
    const m = this.res.end ?? ctx.now
    const msg = this.res.toJSON(ctx) as HttpResponseMessage
    const req = this.req
    ctx.emit({
      type: 'http.response',
      ...eventBase(ctx, this, protocol, m),
      ...(req?.method !== undefined ? { method: req.method } : {}),
      scheme: ctx.opts.scheme,
      ...(req?.authority !== undefined ? { authority: req.authority } : {}),
      ...(req?.path !== undefined ? { path: req.path } : {}),
      ...msg,
      timings: this.timings(),
    })
  }

  /** Emits whatever was not emitted yet and the joined exchange. Unfinished parts become incomplete. */
  finalize(ctx: ConnContext, protocol: HttpProtocol): void {
    if (this.sent) return
    for (const m of [this.req, this.res]) {
      if (m && !m.done) {
        m.incomplete = true
        m.done = true
        m.end ??= ctx.now
      }
    }
    this.emitRequest(ctx, protocol)
    this.emitResponse(ctx, protocol)
    this.sent = true
    ctx.counters.exchanges++
    const req = this.req ? (this.req.toJSON(ctx) as HttpRequestMessage) : undefined
    const res = this.res ? (this.res.toJSON(ctx) as HttpResponseMessage) : undefined
    const last = laterMeta(this.req?.end, this.res?.end) ?? ctx.now
    const ev: HttpExchangeEvent = {
      type: 'http.exchange',
      ...eventBase(ctx, this, protocol, last),
      ...(req?.method !== undefined ? { method: req.method } : {}),
      scheme: ctx.opts.scheme,
      ...(req?.authority !== undefined ? { authority: req.authority } : {}),
      ...(req?.path !== undefined ? { path: req.path } : {}),
      ...(res?.status !== undefined ? { status: res.status } : {}),
      ...(req ? { request: req } : {}),
      ...(res ? { response: res } : {}),
      timings: this.timings(),
      incomplete: !req || !res || req.incomplete || res.incomplete || this.reset !== undefined,
      gap: this.requestLost || (this.responseLost && !res) || (req?.gap ?? false) || (res?.gap ?? false),
      ...(this.reset ? { reset: this.reset } : {}),
      ...(this.streamEvents ? { stream_events: this.streamEvents } : {}),
      ...(this.streamEventsDropped ? { stream_events_dropped: this.streamEventsDropped } : {}),
    }
    ctx.emit(ev)
  }

  /** Emits the exchange if both sides are over. */
  maybeFinalize(ctx: ConnContext, protocol: HttpProtocol): boolean {
    if (this.requestOver && this.responseOver) {
      this.finalize(ctx, protocol)
      return true
    }
    return false
  }

  timings(): HttpTimings {
    const t: HttpTimings = {}
    const q = this.req
    const r = this.res
    if (q?.start) t.request_start = q.start.time
    if (q?.end && q.done) t.request_end = q.end.time
    if (r?.start) t.response_start = r.start.time
    if (r?.end && r.done) t.response_end = r.end.time
    if (q?.end && q.done && r?.start) {
      const d = r.start.ktime - q.end.ktime
      if (d >= 0n) t.ttfb_ns = Number(d)
    }
    if (q?.start && r?.end && r.done) {
      const d = r.end.ktime - q.start.ktime
      if (d >= 0n) t.duration_ns = Number(d)
    }
    return t
  }
}

function laterMeta(a: ChunkMeta | undefined, b: ChunkMeta | undefined): ChunkMeta | undefined {
  if (!a) return b
  if (!b) return a
  return b.ktime >= a.ktime ? b : a
}

/** The fields every HTTP event carries. */
export function eventBase(ctx: ConnContext, x: ExchangeState, protocol: HttpProtocol, m: ChunkMeta) {
  const id = x.meta
  return {
    time: m.time,
    ktime: m.ktime.toString(),
    id: x.id,
    conn: ctx.conn,
    side: ctx.side,
    protocol,
    ...(x.streamId !== undefined ? { stream_id: x.streamId } : {}),
    process: { pid: id.pid, tid: id.tid, comm: id.comm },
    ...(id.fd !== undefined ? { fd: id.fd } : {}),
    ...(id.tuple !== undefined ? { tuple: { ...id.tuple } } : {}),
  }
}
