/**
 * Feeds a response into an open exchange's CompletionBuilder, through the
 * provider's wire adapter. A response arrives either as live stream events
 * (SSE/NDJSON events, or Bedrock eventstream frames, one at a time) or only
 * as the final body (a replay of exchanges, or a monitor attached
 * mid-stream); a streamed body is then split into its events again so both
 * paths assemble the same completion. Anything unreadable is counted and
 * reported, and the rest of the response is still used.
 */
import { l7 } from '@bpfkit/core'
import type { AssemblyLimits } from './assembly.js'
import { type Diagnostics, errMsg } from './diagnostics.js'
import { EventStreamDecoder, MAX_FRAME_BYTES } from './eventstream.js'
import { header } from './http.js'
import { type Json, parseJson } from './json.js'
import type { OpenExchange } from './open-exchanges.js'
import type { ResponseContext } from './providers/index.js'

const MiB = 1024 * 1024

export class ResponseReader {
  constructor(
    private readonly limits: AssemblyLimits,
    private readonly diagnostics: Diagnostics,
  ) {}

  /** One live http.stream_event of the response. */
  streamEvent(x: OpenExchange, ev: l7.HttpStreamEvent): void {
    x.liveStream = true
    x.lastTime = ev.time
    // events before this one were lost (capture gap): the completion has a hole
    if (ev.after_gap) x.builder.truncated = true
    if (typeof ev.data !== 'string') {
      this.diagnostics.parseError(`stream event data is ${ev.data === null ? 'null' : typeof ev.data}, not a string`, x.id, x.match.provider, ev.time)
      return
    }
    if (ev.format === 'eventstream') {
      // one whole AWS eventstream frame (Bedrock), base64 in `data`: decoded as it arrives
      x.eventStream ??= this.eventStreamDecoder(x, () => x.lastTime)
      x.eventStream.push(Buffer.from(ev.data, 'base64'))
      return
    }
    this.applyStreamData(x, ev.data, ev.event, ev.time)
  }

  /** The http.exchange that ends the response: closes a live eventstream, or reads the body when no stream events were seen. */
  responseEnd(x: OpenExchange, ev: l7.HttpExchangeEvent): void {
    if (x.liveStream && ev.stream_events_dropped) this.streamEventsDropped(x, ev)
    if (x.eventStream) this.endEventStream(x, x.eventStream, ev.response?.body?.truncated === true || ev.incomplete, ev.time)
    const body = ev.response?.body
    // a streamed response whose stream events were not seen (replay of exchanges only, attached mid-stream): rebuild from the body
    if (body && !x.liveStream) this.applyBody(x, ev, body)
  }

  /** One SSE/NDJSON event's data or JSON-array element: JSON-parse it and hand it to the provider. */
  private applyStreamData(x: OpenExchange, data: string, event: string | undefined, time: string): void {
    const trimmed = data.trim()
    if (trimmed === '' || trimmed === '[DONE]') return
    const parsed = parseJson(data)
    if (parsed.error !== undefined) {
      this.diagnostics.parseError(`stream event${event ? ` '${event}'` : ''}: ${parsed.error}`, x.id, x.match.provider, time)
      return
    }
    this.applyStreamJson(x, parsed.value, event, time)
  }

  private applyStreamJson(x: OpenExchange, value: Json, event: string | undefined, time: string): void {
    x.streamEvents++
    this.diagnostics.counters.streamEvents++
    const what = `stream event${event ? ` '${event}'` : ''}`
    try {
      x.adapter.streamEvent(x.builder, value, event, responseContext(x))
    } catch (err) {
      this.diagnostics.parseError(`${what}: ${errMsg(err)}`, x.id, x.match.provider, time)
    }
    this.reportRejected(x, what, time)
    if (x.firstContentTime === undefined && x.builder.sawContent) x.firstContentTime = time
  }

  /** The pipeline dropped stream events of this response (over its size cap, broken frames): the completion has a hole. */
  private streamEventsDropped(x: OpenExchange, ev: l7.HttpExchangeEvent): void {
    const n = ev.stream_events_dropped!
    x.builder.truncated = true
    if (x.eventStream) {
      this.diagnostics.counters.eventstreamErrors++
      this.diagnostics.parseError(`eventstream: ${n} frame(s) dropped by the HTTP pipeline (bad CRC, bytes that are not frames, or over its size cap)`, x.id, x.match.provider, ev.time)
    } else {
      this.diagnostics.parseError(`${n} stream event(s) dropped by the HTTP pipeline (over its size cap or cut off)`, x.id, x.match.provider, ev.time)
    }
  }

  private applyBody(x: OpenExchange, ev: l7.HttpExchangeEvent, body: l7.HttpBody): void {
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
      if (parser.dropped) this.diagnostics.report('warn', 'truncated', `${parser.dropped} oversized stream events dropped`, x.id, x.match.provider, ev.time)
      return
    }
    if (body.encoding !== 'utf8') {
      this.diagnostics.parseError(`response body is binary (${ct ?? 'no content-type'})`, x.id, x.match.provider, ev.time)
      return
    }
    if (body.data.trim() === '') return
    const parsed = parseJson(body.data)
    if (parsed.error !== undefined) {
      // error pages (proxies, gateways) are often plain text: keep them as the error message
      if ((ev.status ?? 0) >= 400) {
        x.builder.setError({ message: body.data.slice(0, 1000) })
        return
      }
      this.diagnostics.parseError(`response body: ${parsed.error}${body.truncated ? ' (body truncated)' : ''}`, x.id, x.match.provider, ev.time)
      return
    }
    try {
      x.adapter.responseBody(x.builder, parsed.value, responseContext(x))
    } catch (err) {
      this.diagnostics.parseError(`response body: ${errMsg(err)}`, x.id, x.match.provider, ev.time)
    }
    this.reportRejected(x, 'response body', ev.time)
  }

  /** What the adapter skipped in the last event or body because it had the wrong type: one parse_error. */
  private reportRejected(x: OpenExchange, what: string, time: string): void {
    const rejected = x.builder.takeRejected()
    if (rejected.length) this.diagnostics.parseError(`${what}: ${rejected.join('; ')}`, x.id, x.match.provider, time)
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
      this.diagnostics.counters.eventstreamErrors++
      this.diagnostics.parseError(`eventstream framing: ${decoder.error}`, x.id, x.match.provider, time)
    } else if (left > 0 && !truncated) {
      this.diagnostics.counters.eventstreamErrors++
      this.diagnostics.parseError(`eventstream: ${left} bytes of an incomplete frame at the end of the body`, x.id, x.match.provider, time)
    }
  }

  /** Exception frames become the exchange's error; event frames are stream events. */
  private eventStreamDecoder(x: OpenExchange, timeOf: () => string): EventStreamDecoder {
    return new EventStreamDecoder((m) => {
      const time = timeOf()
      const parsed = parseJson(m.payload)
      if (m.messageType !== 'event') {
        x.builder.setError({ ...(m.exceptionType ? { type: m.exceptionType } : {}), message: messageOf(parsed, m.payload).slice(0, 1000) })
        return
      }
      if (parsed.error !== undefined) {
        this.diagnostics.parseError(`eventstream '${m.eventType ?? '?'}' payload: ${parsed.error}`, x.id, x.match.provider, time)
        return
      }
      this.applyStreamJson(x, parsed.value, m.eventType, time)
    }, Math.max(MAX_FRAME_BYTES, 2 * this.limits.maxCompletionChars))
  }
}

/** The `message` of an exception payload when it is JSON with one, else the raw payload. */
function messageOf(parsed: ReturnType<typeof parseJson>, raw: string): string {
  const message = parsed.error === undefined ? (parsed.value as { message?: unknown } | null)?.message : undefined
  return typeof message === 'string' ? message : raw
}

function responseContext(x: OpenExchange): ResponseContext {
  return { match: x.match, request: x.request }
}
