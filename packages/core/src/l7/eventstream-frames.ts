/**
 * AWS event stream framing (application/vnd.amazon.eventstream, used by
 * Bedrock's streaming APIs): splits a body into whole frames as the bytes
 * arrive. It only finds frame boundaries; decoding headers and payload is
 * left to @smithy/eventstream-codec on the consumer side.
 *
 * A frame is: total length (u32 BE), headers length (u32 BE), prelude CRC32,
 * headers, payload, message CRC32. Both CRCs are checked, so after garbage or
 * a gap the splitter can find the next real frame by scanning for a prelude
 * whose CRC matches.
 */
import zlib from 'node:zlib'

/** prelude (12) + message CRC (4) */
const MIN_FRAME = 16
const PRELUDE = 12

// zlib.crc32 exists from Node 20.15 / 22.2; without it frames are checked structurally only
const crc32: ((b: Uint8Array) => number) | undefined =
  typeof (zlib as { crc32?: unknown }).crc32 === 'function' ? (b) => (zlib as unknown as { crc32(b: Uint8Array): number }).crc32(b) : undefined

/** Is there a plausible frame prelude at `at`? (`buf` holds at least 12 bytes from `at`) */
function preludeOk(buf: Buffer, at: number): boolean {
  const total = buf.readUInt32BE(at)
  const headers = buf.readUInt32BE(at + 4)
  if (total < MIN_FRAME || headers > total - MIN_FRAME) return false
  return crc32 ? crc32(buf.subarray(at, at + 8)) === buf.readUInt32BE(at + 8) : true
}

export interface FrameSplitterCallbacks {
  /** one whole frame (a copy the callee may keep) */
  frame(bytes: Buffer): void
  /** bytes were dropped: an oversize frame, a bad CRC, bytes that are not frames */
  drop(reason: string): void
}

/**
 * Incremental frame splitter. Memory is bounded by `maxFrameBytes`: a frame
 * whose prelude announces more is skipped without being buffered.
 */
export class EventStreamFrameSplitter {
  private parts: Buffer[] = []
  private len = 0
  /** bytes of an oversize frame still to be skipped */
  private skip = 0
  /** looking for the next valid prelude (after garbage or a gap) */
  private searching = false
  /** total length of the frame being collected, once its prelude was checked (0: none) */
  private expect = 0

  constructor(
    private readonly maxFrameBytes: number,
    private readonly cb: FrameSplitterCallbacks,
  ) {}

  push(bytes: Uint8Array): void {
    let b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    if (this.skip > 0) {
      const n = Math.min(this.skip, b.length)
      this.skip -= n
      b = b.subarray(n)
    }
    if (b.length === 0) return
    this.parts.push(b)
    this.len += b.length
    this.drain()
  }

  /** Bytes were lost: whatever frame was in progress is gone; find the next one by its prelude CRC. */
  gap(): void {
    this.parts = []
    this.len = 0
    this.skip = 0
    this.expect = 0
    this.searching = true
  }

  /** End of body: bytes of an unfinished frame are a loss. */
  end(): void {
    if (this.len > 0 && !this.searching) this.cb.drop(`eventstream body ended inside a frame (${this.len} bytes)`)
    this.parts = []
    this.len = 0
    this.expect = 0
  }

  /** the pending bytes as one buffer (joined only when a decision needs them, so tiny pushes stay linear) */
  private joined(): Buffer {
    if (this.parts.length !== 1) this.parts = [Buffer.concat(this.parts, this.len)]
    return this.parts[0]!
  }

  private consume(n: number): void {
    const buf = this.joined()
    const rest = buf.subarray(n)
    this.parts = rest.length ? [rest] : []
    this.len = rest.length
  }

  private drain(): void {
    for (;;) {
      if (this.searching && !this.search()) return
      if (this.expect === 0) {
        if (this.len < PRELUDE) return
        const buf = this.joined()
        if (!preludeOk(buf, 0)) {
          this.cb.drop('bytes that are not an eventstream frame (bad prelude); resynchronising')
          this.searching = true
          continue
        }
        const total = buf.readUInt32BE(0)
        if (total > this.maxFrameBytes) {
          this.cb.drop(`eventstream frame of ${total} bytes exceeds the ${this.maxFrameBytes} byte limit`)
          const n = Math.min(total, this.len)
          this.consume(n)
          this.skip = total - n
          continue
        }
        this.expect = total
      }
      // the frame's length is known: wait for all of it without joining the pieces on every push
      if (this.len < this.expect) return
      const total = this.expect
      this.expect = 0
      const frame = Buffer.from(this.joined().subarray(0, total))
      this.consume(total)
      if (crc32 && crc32(frame.subarray(0, total - 4)) !== frame.readUInt32BE(total - 4)) {
        this.cb.drop('eventstream frame with a bad message CRC')
        continue
      }
      this.cb.frame(frame)
    }
  }

  /** Drops bytes up to the next valid prelude; false when none is in the buffer yet. */
  private search(): boolean {
    if (this.len < PRELUDE) return false
    const buf = this.joined()
    for (let i = 0; i + PRELUDE <= buf.length; i++) {
      if (preludeOk(buf, i)) {
        this.consume(i)
        this.searching = false
        return true
      }
    }
    this.consume(buf.length - (PRELUDE - 1)) // a prelude may start in the last 11 bytes
    return false
  }
}
