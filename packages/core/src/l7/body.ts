/**
 * Message bodies: capture the first maxBodyBytes within the connection's byte
 * budget, undo Content-Encoding (gzip, deflate, br) with output capped so a
 * decompression bomb costs at most the cap, and render the result as UTF-8
 * text or base64. The captured data is always a true prefix of the body:
 * capture stops at the first missing byte rather than splicing across a gap.
 */
import { isUtf8 } from 'node:buffer'
import zlib from 'node:zlib'
import type { ByteBudget } from './stream.js'
import { type StreamingEvent, StreamingBodyParser, type StreamingKind } from './streaming.js'

/** A body as events carry it (JSON-serialisable). */
export interface HttpBody {
  /** how `data` is encoded: 'utf8' for text that is valid UTF-8, otherwise 'base64' */
  encoding: 'utf8' | 'base64'
  /** the captured content (after Content-Encoding is undone, when it was) */
  data: string
  /** body bytes on the wire (after de-chunking, before content decoding), including known-missing bytes */
  size: number
  /** content bytes represented in `data` */
  captured: number
  /** `data` is not the whole content (capture cap, budget, gap, or decode cap) */
  truncated: boolean
  /** the Content-Encoding of the message, when it had one */
  content_encoding?: string
  /** true when `data` is the decoded content, false when decoding failed or was not possible */
  decoded?: boolean
  /** decoded length, when the whole body was decoded within the cap */
  decoded_size?: number
  decode_error?: string
  /** bytes of this body were lost (stream gap) */
  gap?: boolean
  /** bytes known to be missing (absent when unknown) */
  missing?: number
}

/** Counters the collectors update. */
export interface BodyCounters {
  /** bytes not captured because the connection's byte budget was exhausted */
  bytesDropped: number
  /** streaming events dropped for exceeding maxEventBytes */
  streamEventsDropped: number
}

export interface BodyOptions {
  maxBodyBytes: number
  budget: ByteBudget
  counters: BodyCounters
}

/** How a streaming body's events are delivered. */
export interface BodyStreamOptions {
  kind: StreamingKind
  onEvent: (ev: StreamingEvent) => void
  /** a streaming event was dropped (too long, garbage, cut off) */
  onDrop?: (reason: string) => void
}

const ENCODINGS = new Set(['gzip', 'x-gzip', 'deflate', 'br'])

/** Parses Content-Encoding into the list of codings to undo (outermost last). undefined: identity. */
export function contentCodings(value: string | undefined): string[] | undefined {
  if (!value) return undefined
  const list = value
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '' && s !== 'identity')
  return list.length ? list : undefined
}

/**
 * Collects one message body. `push` the de-framed body bytes, `gap` when
 * bytes were lost, then `finish` once for the rendered body.
 */
export class BodyCollector {
  /** body bytes seen (plus known-missing) */
  size = 0
  private chunks: Buffer[] = []
  private captured = 0
  private capturing = true
  private budgetStop = false
  private truncated = false
  private gapSeen = false
  private missing: number | undefined = 0
  private readonly codings: string[] | undefined
  private stream: StreamingBodyParser | undefined
  private deferredStream: boolean

  constructor(
    private readonly o: BodyOptions,
    private readonly contentType: string | undefined,
    contentEncoding: string | undefined,
    private readonly streaming?: BodyStreamOptions,
  ) {
    this.codings = contentCodings(contentEncoding)
    this.contentEncoding = contentEncoding
    // encoded streams are parsed after decoding, at the end (no synchronous incremental inflate in node:zlib)
    this.deferredStream = streaming !== undefined && this.codings !== undefined
    if (streaming && !this.codings) this.stream = this.newStreamParser(streaming)
  }

  private newStreamParser(s: BodyStreamOptions): StreamingBodyParser {
    return new StreamingBodyParser(s.kind, s.onEvent, {
      maxEventBytes: this.o.maxBodyBytes,
      ...(s.onDrop ? { onDrop: s.onDrop } : {}),
    })
  }

  private readonly contentEncoding: string | undefined

  /** bytes held for this body */
  get buffered(): number {
    return this.captured
  }

  push(b: Uint8Array): void {
    if (b.length === 0) return
    this.size += b.length
    if (this.stream) this.stream.push(b)
    if (!this.capturing) {
      if (this.budgetStop) this.o.counters.bytesDropped += b.length
      return
    }
    const want = Math.min(b.length, this.o.maxBodyBytes - this.captured)
    const got = this.o.budget.takeUpTo(want)
    if (got > 0) {
      this.chunks.push(Buffer.from(b.subarray(0, got))) // copy: record buffers are not ours
      this.captured += got
    }
    if (got < b.length) {
      this.capturing = false
      this.truncated = true
      if (got < want) {
        this.budgetStop = true
        this.o.counters.bytesDropped += b.length - got
      }
    }
  }

  /** `bytes` (undefined: unknown) of the body were lost at this point. */
  gap(bytes: number | undefined): void {
    this.gapSeen = true
    this.capturing = false
    this.truncated = true
    if (bytes === undefined || this.missing === undefined) this.missing = undefined
    else this.missing += bytes
    if (bytes !== undefined) this.size += bytes
    if (this.stream) this.stream.gap()
  }

  /** Releases the captured bytes without rendering. */
  discard(): void {
    this.o.budget.release(this.captured)
    this.chunks = []
    this.captured = 0
  }

  /**
   * Renders the body and releases its budget. `complete` is false when the
   * message ended abnormally (connection closed or reset mid-body).
   * Returns undefined for an empty body with nothing lost.
   */
  finish(complete: boolean): HttpBody | undefined {
    if (!complete) this.truncated = true
    const raw = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.captured)
    this.discard()
    if (this.stream) this.stream.end()
    if (this.size === 0 && !this.gapSeen) return undefined

    let content = raw
    let truncated = this.truncated
    const body: Partial<HttpBody> = {}
    if (this.contentEncoding !== undefined) body.content_encoding = this.contentEncoding
    if (this.codings) {
      const d = decodeContent(raw, this.codings, this.o.maxBodyBytes, !truncated)
      if (d.error !== undefined) {
        body.decoded = false
        body.decode_error = d.error
      } else {
        content = d.out
        body.decoded = true
        if (d.truncated) truncated = true
        else if (!truncated) body.decoded_size = d.out.length
        if (this.deferredStream && this.streaming) {
          const p = this.newStreamParser(this.streaming)
          p.push(content)
          if (!truncated) p.end()
          this.o.counters.streamEventsDropped += p.dropped
        }
      }
    }
    if (this.stream) this.o.counters.streamEventsDropped += this.stream.dropped
    const r = renderContent(content, this.contentType, truncated)
    const out: HttpBody = {
      encoding: r.encoding,
      data: r.data,
      size: this.size,
      captured: r.captured,
      truncated: truncated || r.captured < content.length,
      ...body,
    }
    if (this.gapSeen) {
      out.gap = true
      if (this.missing !== undefined) out.missing = this.missing
    }
    return out
  }
}

interface DecodeResult {
  out: Buffer
  truncated: boolean
  error?: string
}

/** Undoes content codings (listed in the order applied). Output is capped at `cap`. */
export function decodeContent(raw: Buffer, codings: string[], cap: number, complete: boolean): DecodeResult {
  let cur = raw
  let truncated = !complete
  for (let i = codings.length - 1; i >= 0; i--) {
    const c = codings[i]!
    if (!ENCODINGS.has(c)) return { out: raw, truncated: !complete, error: `unsupported content-encoding '${c}'` }
    const r = decodeOne(c, cur, cap, !truncated)
    if (r.error !== undefined) return { out: raw, truncated: !complete, error: r.error }
    cur = r.out
    truncated ||= r.truncated
  }
  return { out: cur, truncated }
}

function inflater(c: string): (buf: Buffer, opts: zlib.ZlibOptions | zlib.BrotliOptions) => Buffer {
  if (c === 'br') return (b, o) => zlib.brotliDecompressSync(b, o as zlib.BrotliOptions)
  if (c === 'deflate') {
    // "deflate" is zlib-wrapped per RFC 9110, but some servers send raw deflate
    return (b, o) => {
      try {
        return zlib.inflateSync(b, o as zlib.ZlibOptions)
      } catch (err) {
        if ((err as { code?: string }).code === 'Z_DATA_ERROR') return zlib.inflateRawSync(b, o as zlib.ZlibOptions)
        throw err
      }
    }
  }
  return (b, o) => zlib.gunzipSync(b, o as zlib.ZlibOptions)
}

function flushFlag(c: string): number {
  return c === 'br' ? zlib.constants.BROTLI_OPERATION_FLUSH : zlib.constants.Z_SYNC_FLUSH
}

function decodeOne(c: string, input: Buffer, cap: number, complete: boolean): DecodeResult {
  const run = inflater(c)
  const attempt = (buf: Buffer, partial: boolean): Buffer =>
    run(buf, partial ? { maxOutputLength: Math.max(1, cap), finishFlush: flushFlag(c) } : { maxOutputLength: Math.max(1, cap) })
  if (input.length === 0) return { out: Buffer.alloc(0), truncated: !complete }
  try {
    return { out: attempt(input, !complete), truncated: !complete }
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'Z_BUF_ERROR' && complete) {
      // stream ends early: decode what is there
      try {
        return { out: attempt(input, true), truncated: true }
      } catch (err2) {
        if ((err2 as { code?: string }).code !== 'ERR_BUFFER_TOO_LARGE') return { out: input, truncated: true, error: msg(err2) }
      }
    } else if (code !== 'ERR_BUFFER_TOO_LARGE') {
      return { out: input, truncated: !complete, error: msg(err) }
    }
  }
  // output exceeds the cap (possibly a bomb): find the longest input prefix whose output fits
  let lo = 0
  let hi = input.length
  let best: Buffer = Buffer.alloc(0)
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2)
    try {
      best = attempt(input.subarray(0, mid), true)
      lo = mid
    } catch {
      hi = mid - 1
    }
  }
  return { out: best, truncated: true }
}

function msg(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

const TEXT_TYPES = [
  /^text\//,
  /^application\/(?:json|.*\+json|x-ndjson|ndjson|jsonl|jsonlines|x-jsonlines|json-seq|xml|.*\+xml|javascript|ecmascript|x-www-form-urlencoded|graphql|yaml|x-yaml|toml|sql|csv|x-sh|problem\+json)$/,
  /^image\/svg\+xml$/,
]
const BINARY_TYPES = [
  /^(?:image|audio|video|font)\//,
  /^application\/(?:octet-stream|grpc.*|protobuf|x-protobuf|vnd\.google\.protobuf|zip|gzip|x-gzip|x-tar|pdf|wasm|msgpack|x-msgpack|cbor|avro.*)$/,
]

function mimeOf(ct: string | undefined): string | undefined {
  if (!ct) return undefined
  return ct.split(';', 1)[0]!.trim().toLowerCase()
}

/** No NULs or stray control characters in the first KiB: looks like text. */
function looksLikeText(b: Buffer): boolean {
  const n = Math.min(b.length, 1024)
  for (let i = 0; i < n; i++) {
    const c = b[i]!
    if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d && c !== 0x0c) return false
    if (c === 0x7f) return false
  }
  return true
}

/**
 * Text (valid UTF-8 with a textual or unknown-but-text-looking type) as a
 * string, everything else base64. A UTF-8 sequence cut by truncation is
 * dropped from the end rather than turning the whole body into base64.
 */
export function renderContent(
  content: Buffer,
  contentType: string | undefined,
  truncated: boolean,
): { encoding: 'utf8' | 'base64'; data: string; captured: number } {
  const mime = mimeOf(contentType)
  const binary = mime !== undefined && BINARY_TYPES.some((r) => r.test(mime))
  const declaredText = mime !== undefined && TEXT_TYPES.some((r) => r.test(mime))
  if (!binary && (declaredText || looksLikeText(content))) {
    let end = content.length
    if (isUtf8(content)) return { encoding: 'utf8', data: content.toString('utf8'), captured: end }
    if (truncated) {
      for (let k = 1; k <= 3 && end - k >= 0; k++) {
        const sub = content.subarray(0, end - k)
        if (isUtf8(sub)) {
          end -= k
          return { encoding: 'utf8', data: sub.toString('utf8'), captured: end }
        }
      }
    }
  }
  return { encoding: 'base64', data: content.toString('base64'), captured: content.length }
}
