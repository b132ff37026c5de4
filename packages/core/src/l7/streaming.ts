/**
 * Streaming bodies (Server-Sent Events, NDJSON, AWS event stream frames,
 * JSON arrays streamed element by element): LLM APIs, log tails and change
 * feeds deliver their value event by event over a long-lived response.
 * These parsers turn body bytes into events as the bytes arrive, so callers
 * see each event when the process saw it, not when the response ends.
 */
import { createParser, type EventSourceParser } from 'eventsource-parser'
import { EventStreamFrameSplitter } from './eventstream-frames.js'
import { JsonArrayScanner } from './json-array-stream.js'

/** The streaming formats: from Content-Type ('json-array' also needs the request path, see streamingKind). */
export type StreamingKind = 'sse' | 'ndjson' | 'eventstream' | 'json-array'

/**
 * Request paths whose `application/json` responses are JSON arrays streamed
 * element by element. Plain application/json is one document, so a path rule
 * is needed: Gemini / Vertex AI `...:streamGenerateContent` is the known case.
 */
export const DEFAULT_JSON_ARRAY_PATHS = /:streamGenerateContent(?:[?#/]|$)/

/**
 * Which streaming parser (if any) a Content-Type calls for. `application/json`
 * streams as 'json-array' only when `requestPath` matches `jsonArrayPaths`
 * (default DEFAULT_JSON_ARRAY_PATHS; false: never).
 */
export function streamingKind(
  contentType: string | undefined,
  requestPath?: string,
  jsonArrayPaths: RegExp | false = DEFAULT_JSON_ARRAY_PATHS,
): StreamingKind | undefined {
  if (!contentType) return undefined
  const mime = contentType.split(';', 1)[0]!.trim().toLowerCase()
  if (mime === 'text/event-stream') return 'sse'
  if (mime === 'application/vnd.amazon.eventstream') return 'eventstream'
  if (mime === 'application/json' && jsonArrayPaths && requestPath !== undefined && jsonArrayPaths.test(requestPath)) {
    return 'json-array'
  }
  if (
    mime === 'application/x-ndjson' ||
    mime === 'application/ndjson' ||
    mime === 'application/jsonl' ||
    mime === 'application/x-jsonlines' ||
    mime === 'application/jsonlines' ||
    mime === 'application/json-seq'
  ) {
    return 'ndjson'
  }
  return undefined
}

/** One event of a streaming body. */
export interface StreamingEvent {
  /**
   * SSE: the data field (multi-line data joined with \n); NDJSON: the line, without its newline;
   * eventstream: the whole frame (prelude, headers, payload, CRCs) in base64; json-array: the element's JSON text
   */
  data: string
  /** SSE `event:` field */
  event?: string
  /** SSE `id:` field */
  id?: string
  /** the first event after bytes were lost: earlier events may be missing */
  after_gap?: boolean
}

export interface StreamingParserOptions {
  /**
   * longest event (SSE), line (NDJSON) or element (json-array) in characters, or frame (eventstream)
   * in bytes; default 1 MiB. Longer ones are dropped and counted
   */
  maxEventBytes?: number
  /** called for every dropped event or run of garbage (the pipeline turns it into a diagnostic) */
  onDrop?: (reason: string) => void
}

/**
 * Incremental parser for one streaming body. Feed it body bytes in any
 * pieces; it calls `onEvent` once per complete event. After a gap it skips
 * to the next event boundary (blank line for SSE, newline for NDJSON) so a
 * half-lost event is never emitted as if it were whole.
 */
export class StreamingBodyParser {
  /** events emitted */
  events = 0
  /** events dropped because they exceeded maxEventBytes */
  dropped = 0
  private decoder = new TextDecoder('utf-8')
  private readonly max: number
  private sse: EventSourceParser | undefined
  private line = '' // NDJSON partial line
  private overLong = false // NDJSON: inside a line being dropped
  private skipping = false // after a gap: waiting for an event boundary
  private carry = '' // tail kept while skipping (boundary split across chunks)
  private afterGap = false
  private frames: EventStreamFrameSplitter | undefined
  private array: JsonArrayScanner | undefined
  private readonly onDrop: ((reason: string) => void) | undefined

  constructor(
    readonly kind: StreamingKind,
    private readonly onEvent: (ev: StreamingEvent) => void,
    options: StreamingParserOptions = {},
  ) {
    this.max = options.maxEventBytes ?? 1024 * 1024
    this.onDrop = options.onDrop
    if (kind === 'sse') this.sse = this.newSse()
    const drop = (reason: string): void => this.drop(reason)
    if (kind === 'eventstream') {
      this.frames = new EventStreamFrameSplitter(this.max, { frame: (b) => this.emit({ data: b.toString('base64') }), drop })
    }
    if (kind === 'json-array') this.array = new JsonArrayScanner(this.max, { element: (t) => this.emit({ data: t }), drop })
  }

  private drop(reason: string): void {
    this.dropped++
    this.onDrop?.(reason)
  }

  private newSse(): EventSourceParser {
    return createParser({
      maxBufferSize: this.max,
      onEvent: (m) => {
        // the parser's own limit only covers buffered fragments, not an event completed in one piece
        if (m.data.length > this.max) {
          this.drop(`SSE event longer than ${this.max} characters`)
          return
        }
        const ev: StreamingEvent = { data: m.data }
        if (m.event !== undefined) ev.event = m.event
        if (m.id !== undefined) ev.id = m.id
        this.emit(ev)
      },
      onError: (err) => {
        if (err.type === 'max-buffer-size-exceeded') {
          // the parser stops itself; drop the event and resume at the next boundary
          this.drop(`SSE event longer than ${this.max} characters`)
          this.sse!.reset()
          this.skipping = true
          this.carry = ''
        }
      },
    })
  }

  private emit(ev: StreamingEvent): void {
    if (this.afterGap) {
      ev.after_gap = true
      this.afterGap = false
    }
    this.events++
    this.onEvent(ev)
  }

  /** Body bytes, in order. */
  push(bytes: Uint8Array): void {
    if (this.frames) return this.frames.push(bytes)
    let text = this.decoder.decode(bytes, { stream: true })
    if (this.skipping) {
      text = this.skipToBoundary(text)
      if (this.skipping) return
    }
    if (text.length === 0) return
    if (this.sse) this.sse.feed(text)
    else if (this.array) this.array.push(text)
    else this.ndjson(text)
  }

  /** Bytes were lost here: drop the event in progress and resynchronise. */
  gap(): void {
    this.afterGap = true
    if (this.frames) return this.frames.gap()
    if (this.array) {
      this.decoder = new TextDecoder('utf-8')
      return this.array.gap()
    }
    this.decoder = new TextDecoder('utf-8')
    if (this.sse) this.sse.reset()
    this.line = ''
    this.overLong = false
    this.skipping = true
    this.carry = ''
    this.afterGap = true
  }

  /** End of body: an unterminated last NDJSON line is still an event; an unterminated SSE event is not (per the SSE spec). */
  end(): void {
    if (this.frames) return this.frames.end()
    if (this.array) {
      const rest = this.decoder.decode()
      if (rest) this.array.push(rest)
      return this.array.end()
    }
    const rest = this.decoder.decode()
    if (!this.skipping && rest) {
      if (this.sse) this.sse.feed(rest)
      else this.ndjson(rest)
    }
    if (!this.sse && !this.skipping && !this.overLong && this.line.trim() !== '') {
      this.emit({ data: this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line })
    }
    this.line = ''
  }

  /** While skipping: returns the text after the next boundary (and stops skipping), or '' */
  private skipToBoundary(text: string): string {
    const s = this.carry + text
    if (this.kind === 'ndjson') {
      const i = s.indexOf('\n')
      if (i === -1) {
        this.carry = ''
        return ''
      }
      this.skipping = false
      this.carry = ''
      return s.slice(i + 1)
    }
    const m = /\r\n\r\n|\n\n|\r\r|\r\n\n|\n\r\n/.exec(s)
    if (!m) {
      this.carry = s.slice(-3)
      return ''
    }
    this.skipping = false
    this.carry = ''
    return s.slice(m.index + m[0].length)
  }

  private ndjson(text: string): void {
    let start = 0
    for (;;) {
      const nl = text.indexOf('\n', start)
      if (nl === -1) {
        if (!this.overLong) {
          this.line += text.slice(start)
          if (this.line.length > this.max) {
            this.overLong = true
            this.line = ''
            this.drop(`NDJSON line longer than ${this.max} characters`)
          }
        }
        return
      }
      if (this.overLong) {
        this.overLong = false
      } else {
        let l = this.line + text.slice(start, nl)
        this.line = ''
        if (l.endsWith('\r')) l = l.slice(0, -1)
        if (l.length > this.max) this.drop(`NDJSON line longer than ${this.max} characters`)
        else if (l.trim() !== '') this.emit({ data: l })
      }
      start = nl + 1
    }
  }
}
