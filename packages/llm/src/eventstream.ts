/**
 * AWS event stream framing (application/vnd.amazon.eventstream), used by
 * Bedrock ConverseStream and InvokeModelWithResponseStream. The frames are
 * binary, so the HTTP layer cannot turn them into stream events; we decode
 * them from body bytes with @smithy/eventstream-codec, which checks both
 * CRCs. Incremental: push bytes as they come, messages come out whole.
 */
import { EventStreamCodec } from '@smithy/eventstream-codec'
import { fromUtf8, toUtf8 } from '@smithy/util-utf8'

export interface EventStreamMessage {
  /** ':message-type': 'event', 'exception' or 'error' */
  messageType: string
  /** ':event-type' (e.g. 'contentBlockDelta', 'chunk') */
  eventType?: string
  /** ':exception-type' or ':error-code' */
  exceptionType?: string
  /** payload as UTF-8 text (JSON for Bedrock) */
  payload: string
}

/** Longest frame accepted by default; Bedrock frames are small, a bigger length field means corrupt input. */
export const MAX_FRAME_BYTES = 1024 * 1024

export class EventStreamDecoder {
  private readonly codec = new EventStreamCodec(toUtf8, fromUtf8)
  private buf: Buffer = Buffer.alloc(0)
  /** set once the framing is broken; later bytes are ignored */
  error: string | undefined
  messages = 0

  constructor(
    private readonly onMessage: (m: EventStreamMessage) => void,
    /** frames longer than this stop decoding (the buffer never holds more than one frame) */
    private readonly maxFrameBytes = MAX_FRAME_BYTES,
  ) {}

  push(bytes: Uint8Array): void {
    if (this.error !== undefined || bytes.length === 0) return
    this.buf = this.buf.length ? Buffer.concat([this.buf, bytes]) : Buffer.from(bytes)
    while (this.buf.length >= 12) {
      const total = this.buf.readUInt32BE(0)
      if (total < 16 || total > this.maxFrameBytes) {
        this.fail(`bad frame length ${total}`)
        return
      }
      if (this.buf.length < total) return
      const frame = this.buf.subarray(0, total)
      this.buf = this.buf.subarray(total)
      let decoded
      try {
        decoded = this.codec.decode(frame)
      } catch (err) {
        this.fail(err instanceof Error ? err.message : String(err))
        return
      }
      const h = decoded.headers
      const s = (name: string): string | undefined => {
        const v = h[name]
        return v && v.type === 'string' ? v.value : undefined
      }
      const m: EventStreamMessage = { messageType: s(':message-type') ?? 'event', payload: toUtf8(decoded.body) }
      const et = s(':event-type')
      if (et !== undefined) m.eventType = et
      const ex = s(':exception-type') ?? s(':error-code')
      if (ex !== undefined) m.exceptionType = ex
      this.messages++
      this.onMessage(m)
    }
  }

  /** End of body: bytes left over are an incomplete frame. Returns their count. */
  end(): number {
    const left = this.buf.length
    this.buf = Buffer.alloc(0)
    return left
  }

  private fail(reason: string): void {
    this.error = reason
    this.buf = Buffer.alloc(0)
  }
}
