/**
 * Which protocol a connection speaks, from the first bytes of either
 * direction. TLS hides ALPN from a plaintext observer, so the bytes decide:
 * the HTTP/2 client preface, a server's initial SETTINGS frame, an HTTP/1
 * request or status line; for connections joined mid-stream, a chain of
 * plausible HTTP/2 frame headers or an HTTP/1 start line at a line start.
 */
import { findStartLine, startLineVerdict } from './http1.js'
import { findFrameBoundary, H2_PREFACE, plausibleFrameHeader } from './http2.js'
import { type Direction, otherDirection } from './record.js'

export type DetectVerdict =
  /** HTTP/2; `clientDir` when the bytes tell who the client is; `offset` of the first frame (or preface) */
  | { protocol: 'http2'; clientDir: Direction | undefined; offset: number; preface: boolean }
  /** HTTP/1; the direction carrying requests; `offset` of the first start line */
  | { protocol: 'http1'; clientDir: Direction; offset: number }
  /** undecided: wait for more bytes */
  | { protocol: 'need-more' }
  /** not HTTP at offset 0 (strict mode) */
  | { protocol: 'no' }

/**
 * Classifies the bytes of one direction. `atStart`: `buf` begins at the first
 * byte of the stream (or right after a gap), so offset-0 signatures count.
 * `starts`: offsets in `buf` where a record began (frame boundaries are
 * likely there). `strict`: only offset-0 signatures, no searching.
 */
export function detectDirection(
  buf: Uint8Array,
  dir: Direction,
  atStart: boolean,
  starts: readonly number[],
  strict = false,
): DetectVerdict {
  let maybe = false
  if (atStart && buf.length > 0) {
    // HTTP/2 client preface
    const n = Math.min(buf.length, H2_PREFACE.length)
    let prefix = true
    for (let i = 0; i < n; i++) {
      if (buf[i] !== H2_PREFACE[i]) {
        prefix = false
        break
      }
    }
    if (prefix) {
      if (buf.length >= H2_PREFACE.length) return { protocol: 'http2', clientDir: dir, offset: 0, preface: true }
      maybe = true
    }
    // a server's first frame is SETTINGS (not an ACK)
    if (buf.length >= 9) {
      if (buf[3] === 4 && buf[4] === 0 && plausibleFrameHeader(buf, 0) >= 0) {
        return { protocol: 'http2', clientDir: otherDirection(dir), offset: 0, preface: false }
      }
    } else if ((buf.length < 4 || buf[3] === 4) && (buf.length < 5 || buf[4] === 0) && buf[0] === 0) {
      maybe = true
    }
    const req = startLineVerdict(buf, 'request')
    if (req === 'yes') return { protocol: 'http1', clientDir: dir, offset: 0 }
    const res = startLineVerdict(buf, 'response')
    if (res === 'yes') return { protocol: 'http1', clientDir: otherDirection(dir), offset: 0 }
    if (req === 'maybe' || res === 'maybe') maybe = true
  }
  if (strict) return maybe ? { protocol: 'need-more' } : { protocol: 'no' }
  if (maybe) return { protocol: 'need-more' }
  // joined mid-stream: search
  const h2 = findFrameBoundary(buf, atStart ? [0, ...starts] : starts)
  const reqAt = findStartLine(buf, 'request', atStart)
  const resAt = findStartLine(buf, 'response', atStart)
  const h1At = reqAt === -1 ? resAt : resAt === -1 ? reqAt : Math.min(reqAt, resAt)
  if (h2.at !== -1 && (h1At === -1 || h2.at <= h1At)) return { protocol: 'http2', clientDir: undefined, offset: h2.at, preface: false }
  if (h1At !== -1) {
    return { protocol: 'http1', clientDir: h1At === reqAt ? dir : otherDirection(dir), offset: h1At }
  }
  return { protocol: 'need-more' }
}
