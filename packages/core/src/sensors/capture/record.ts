/**
 * The ring record header both capture programs emit (struct CAPTURE_EVENT in
 * bpf/include/capture.h: tls_event, sock_event) and its decoding into the
 * fields TLS and plain-socket records share. One decoder, so the two sensors'
 * records keep the same shape and semantics and feed HttpPipeline alike.
 */
import { monoToIso } from '../process/clock.js'

/** Raw header as the BTF codec decodes it (field names as in C). */
export interface RawCaptureEvent {
  ktime: bigint
  /** connection object: SSL* / gnutls session / *tls.Conn / struct sock* */
  conn: bigint
  seq: bigint
  stream_off: bigint
  gap: bigint
  call_len: bigint
  call_off: number
  len: number
  pid: number
  tid: number
  fd: number
  sport: number
  dport: number
  family: number
  dir: number
  /** program-specific: TLS library, or the plain protocol verdict */
  lib: number
  flags: number
  comm: string
  saddr: Uint8Array
  daddr: Uint8Array
}

/** enum capture_flag in capture.h; programs add their own flags from bit 3. */
export const CAPTURE_F_FIRST = 1
export const CAPTURE_F_LAST = 2
export const CAPTURE_F_TRUNCATED = 4
/** a record with no data: the connection ended (both programs use bit 5 for it) */
export const CAPTURE_F_CLOSE = 32

export interface CaptureTuple {
  family: 'ipv4' | 'ipv6'
  saddr: string
  sport: number
  daddr: string
  dport: number
}

/** Who made a call, when, on which connection. */
export interface CaptureCall {
  /** wall-clock time of the call's return, ISO 8601 with ns */
  time: string
  /** CLOCK_MONOTONIC ns (bpf_ktime_get_ns) */
  ktime: bigint
  pid: number
  tid: number
  /** thread name of the calling thread */
  comm: string
  /** connection key (its form depends on the sensor) */
  conn: string
  /** socket fd, -1 when it could not be resolved */
  fd: number
}

/** Bytes one call moved, or one chunk of them: what every capture record carries. */
export interface CaptureChunk extends CaptureCall {
  /** addresses of the socket, when known */
  tuple?: CaptureTuple
  direction: 'egress' | 'ingress'
  /** record number in (conn, direction), from 0, without holes */
  seq: number
  /** position of data[0] in the (conn, direction) byte stream; lost bytes count too */
  offset: number
  /** position of this chunk inside its call */
  callOffset: number
  /** bytes the call moved (the chunks of one call share it) */
  callBytes: number
  data: Uint8Array
  /** bytes of this stream lost just before this record (never silent) */
  gap?: number
  /** the call moved more than maxBytesPerCall: the rest is a gap before the next record */
  truncated?: boolean
  /** first / last captured chunk of a call */
  first: boolean
  last: boolean
}

export function direction(raw: Pick<RawCaptureEvent, 'dir'>): 'egress' | 'ingress' {
  return raw.dir === 1 ? 'ingress' : 'egress'
}

/**
 * The record of one data chunk. `label`/`value` name what the sensor adds
 * (library, protocol); it is set after the shared fields and before the
 * optional ones, so every record has the same key order.
 */
export function decodeChunk<K extends string, V>(
  raw: RawCaptureEvent,
  data: Uint8Array,
  conn: string,
  label: K,
  value: V,
): CaptureChunk & { [P in K]: V } {
  const rec: CaptureChunk = {
    time: monoToIso(raw.ktime),
    ktime: raw.ktime,
    pid: raw.pid,
    tid: raw.tid,
    comm: raw.comm,
    conn,
    fd: raw.fd,
    direction: direction(raw),
    seq: Number(raw.seq),
    offset: Number(raw.stream_off),
    callOffset: raw.call_off,
    callBytes: Number(raw.call_len),
    data,
    first: (raw.flags & CAPTURE_F_FIRST) !== 0,
    last: (raw.flags & CAPTURE_F_LAST) !== 0,
  }
  ;(rec as unknown as Record<string, V>)[label] = value
  const tuple = formatTuple(raw)
  if (tuple) rec.tuple = tuple
  if (raw.gap > 0n) rec.gap = Number(raw.gap)
  if (raw.flags & CAPTURE_F_TRUNCATED) rec.truncated = true
  return rec as CaptureChunk & { [P in K]: V }
}

export function formatTuple(raw: Pick<RawCaptureEvent, 'family' | 'saddr' | 'daddr' | 'sport' | 'dport'>): CaptureTuple | undefined {
  if (raw.family === 2) {
    return { family: 'ipv4', saddr: ipv4(raw.saddr), sport: raw.sport, daddr: ipv4(raw.daddr), dport: raw.dport }
  }
  if (raw.family === 10) {
    return { family: 'ipv6', saddr: ipv6(raw.saddr), sport: raw.sport, daddr: ipv6(raw.daddr), dport: raw.dport }
  }
  return undefined
}

function ipv4(b: Uint8Array, at = 0): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`
}

/** RFC 5952 text form (longest zero run compressed; IPv4-mapped as ::ffff:a.b.c.d). */
export function ipv6(b: Uint8Array): string {
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return `::ffff:${ipv4(b, 12)}`
  const words: number[] = []
  for (let i = 0; i < 16; i += 2) words.push((b[i]! << 8) | b[i + 1]!)
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && words[j] === 0) j++
    if (j - i > bestLen) {
      best = i
      bestLen = j - i
    }
    i = j
  }
  const hex = words.map((w) => w.toString(16))
  if (best < 0) return hex.join(':')
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`
}
