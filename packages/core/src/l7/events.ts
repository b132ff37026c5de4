/**
 * The HTTP event schema. Events are plain JSON-serialisable objects (no
 * bigint, no Uint8Array) so they can be logged, sent and compared as is.
 * Multi-word fields are snake_case like the process events; `ktime` and other
 * 64-bit values are decimal strings.
 */
import type { HttpBody } from './body.js'
import type { SocketTuple } from './record.js'

/** Header fields in wire order, duplicates kept: [name, value]. HTTP/1 names keep their case; HTTP/2 names are lowercase. */
export type HttpHeaders = [string, string][]

/** HTTP version of a connection. */
export type HttpProtocol = '1.0' | '1.1' | '2'

/** Wall-clock moments (ISO 8601, ns) of an exchange, and derived durations from CLOCK_MONOTONIC. */
export interface HttpTimings {
  request_start?: string
  request_end?: string
  response_start?: string
  response_end?: string
  /** first response byte minus last request byte, ns (absent when negative or unknown) */
  ttfb_ns?: number
  /** last response byte minus first request byte, ns */
  duration_ns?: number
}

/** Fields every message shares. */
export interface HttpMessageBase {
  /** header fields; sensitive values are "[REDACTED]" unless redaction is off. HTTP/2 pseudo-headers are not included (see method/path/status) */
  headers: HttpHeaders
  /** some header fields could not be decoded (HTTP/2 joined mid-stream, or HTTP/1 head lost): the list is partial */
  headers_unknown?: boolean
  trailers?: HttpHeaders
  body?: HttpBody
  /** the message did not end normally (gap, reset, connection closed first, never seen whole) */
  incomplete: boolean
  /** bytes of this message were lost */
  gap: boolean
}

export interface HttpRequestMessage extends HttpMessageBase {
  method?: string
  scheme: string
  /** Host header (HTTP/1) or :authority (HTTP/2) */
  authority?: string
  /** request target as sent (origin-form path and query) */
  path?: string
}

/** A 1xx response that preceded the final one (100 Continue, 103 Early Hints). */
export interface HttpInformational {
  status: number
  headers: HttpHeaders
}

/** RST_STREAM that ended an HTTP/2 stream. */
export interface HttpReset {
  by: 'client' | 'server'
  error_code: number
  /** RFC 9113 name, e.g. 'CANCEL' */
  error: string
}

export interface HttpResponseMessage extends HttpMessageBase {
  status?: number
  /** HTTP/1 reason phrase */
  status_text?: string
  informational?: HttpInformational[]
}

/** Fields every HTTP event carries. */
export interface HttpEventBase {
  /** when the event happened (time of the record that completed it) */
  time: string
  ktime: string
  /** exchange id: `${conn}#${generation}:${n}` (HTTP/1, n-th exchange) or `${conn}#${generation}:s${streamId}` (HTTP/2) */
  id: string
  conn: string
  /**
   * the capturing process's role on the connection: 'client' when it sent the requests,
   * 'server' when it received them (so an exchange seen by both ends on one node can be told apart)
   */
  side: 'client' | 'server'
  protocol: HttpProtocol
  /** HTTP/2 stream id */
  stream_id?: number
  process: { pid: number; tid: number; comm: string }
  fd?: number
  tuple?: SocketTuple
}

/** A request, emitted when its last byte was seen (or it was cut short). */
export interface HttpRequestEvent extends HttpEventBase, HttpRequestMessage {
  type: 'http.request'
  timings: HttpTimings
}

/** A response, emitted when its last byte was seen (or it was cut short). Carries the request line for context. */
export interface HttpResponseEvent extends HttpEventBase, HttpResponseMessage {
  type: 'http.response'
  method?: string
  scheme: string
  authority?: string
  path?: string
  timings: HttpTimings
}

/** Request and response joined, emitted once both are over. */
export interface HttpExchangeEvent extends HttpEventBase {
  type: 'http.exchange'
  method?: string
  scheme: string
  authority?: string
  path?: string
  status?: number
  /** absent when the request was never seen (lost in a gap, connection joined mid-way) */
  request?: HttpRequestMessage
  /** absent when no response was seen */
  response?: HttpResponseMessage
  timings: HttpTimings
  /** either side incomplete or missing */
  incomplete: boolean
  /** bytes of this exchange were lost */
  gap: boolean
  reset?: HttpReset
  /** events emitted for streaming bodies of this exchange */
  stream_events?: number
  /** streaming events dropped (over the size cap, garbage between eventstream frames, cut off at the end); each also had an l7.diagnostic */
  stream_events_dropped?: number
}

/** One event of a streaming body (SSE, NDJSON, AWS event stream frame, JSON array element), emitted as soon as it is complete. */
export interface HttpStreamEvent extends HttpEventBase {
  type: 'http.stream_event'
  direction: 'request' | 'response'
  format: 'sse' | 'ndjson' | 'eventstream' | 'json-array'
  /** 0-based index within the exchange */
  index: number
  /**
   * sse: the data field; ndjson: the line; eventstream: the whole frame in base64 (decode with
   * @smithy/eventstream-codec); json-array: the element's JSON text
   */
  data: string
  /** SSE event type */
  event?: string
  /** SSE id */
  sse_id?: string
  /** earlier events of this body may have been lost */
  after_gap?: boolean
}

/** Something went wrong inside the pipeline, or the input broke a protocol; the pipeline carried on. */
export interface L7DiagnosticEvent {
  type: 'l7.diagnostic'
  level: 'warn' | 'error'
  /** 'internal_error' (a parser bug, counted in stats.parseErrors), 'protocol_error', 'unknown_protocol', 'connection_dropped', 'budget_exceeded', 'stream_event_dropped' */
  code: string
  message: string
  conn?: string
  protocol?: HttpProtocol
  time?: string
  ktime?: string
}

export type HttpPipelineEvent = HttpRequestEvent | HttpResponseEvent | HttpExchangeEvent | HttpStreamEvent | L7DiagnosticEvent

/** Event name → listener, for the typed EventEmitter. */
export interface HttpPipelineEventMap {
  'http.request': (ev: HttpRequestEvent) => void
  'http.response': (ev: HttpResponseEvent) => void
  'http.exchange': (ev: HttpExchangeEvent) => void
  'http.stream_event': (ev: HttpStreamEvent) => void
  'l7.diagnostic': (ev: L7DiagnosticEvent) => void
}
