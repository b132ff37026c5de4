/**
 * The unit everything in l7 consumes: one chunk of TLS plaintext as the kernel
 * sensor saw it (one SSL_write/SSL_read call, possibly capped), with the
 * identity of the process that made the call. Live sensors and capture files
 * produce the same records, so replay and live runs give the same events.
 */
import { InvalidArgumentError } from '../errors.js'

/** egress = bytes the process wrote/sent; ingress = bytes it read. */
export type Direction = 'egress' | 'ingress'

/** The other direction of a connection. */
export function otherDirection(dir: Direction): Direction {
  return dir === 'egress' ? 'ingress' : 'egress'
}

/** Socket addresses, when the sensor could resolve the fd to a TCP socket. */
export interface SocketTuple {
  family?: 'ipv4' | 'ipv6'
  saddr: string
  sport: number
  daddr: string
  dport: number
}

/**
 * Who made the call. Carried on every record (a connection can be used by
 * several threads) and copied onto every HTTP event.
 */
export interface ProcessIdentity {
  pid: number
  tid: number
  /** the kernel's comm (thread name, up to 15 bytes) */
  comm: string
}

/**
 * One captured chunk.
 *
 * Gaps are a field, not a separate record type: `gap` is the number of bytes
 * known to be missing *before* `data` in this connection-direction (ring full,
 * per-call cap). A record with empty `data` and `gap > 0` is a pure gap marker
 * (the sensor lost a whole chunk but knows its size). Downstream, gaps are
 * surfaced as explicit markers and never papered over.
 *
 * `close` marks the end of the connection (SSL_shutdown/close seen); it may
 * come with empty `data`. Bodies delimited by connection close end there.
 */
export interface CaptureRecord extends ProcessIdentity {
  /** wall-clock time, ISO 8601 with nanoseconds */
  time: string
  /** CLOCK_MONOTONIC ns; drives ordering, timings and idle expiry */
  ktime: bigint
  /** connection key, unique while the connection lives, e.g. "<pid>:<ssl pointer hex>" */
  conn: string
  fd?: number
  tuple?: SocketTuple
  direction: Direction
  /** per-(conn, direction) sequence number of the chunk, from 0 */
  seq: number
  data: Uint8Array
  /** bytes known to be missing before this chunk (absent or 0: none) */
  gap?: number
  /** the connection ended after this chunk */
  close?: boolean
}

/** Per-chunk context handed from the stream layer to the protocol parsers. */
export interface ChunkMeta extends ProcessIdentity {
  time: string
  ktime: bigint
  fd?: number
  tuple?: SocketTuple
}

/** The metadata of a record, without its payload. */
export function recordMeta(r: CaptureRecord): ChunkMeta {
  const m: ChunkMeta = { time: r.time, ktime: r.ktime, pid: r.pid, tid: r.tid, comm: r.comm }
  if (r.fd !== undefined) m.fd = r.fd
  if (r.tuple !== undefined) m.tuple = r.tuple
  return m
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v)

/**
 * Throws InvalidArgumentError unless `r` is structurally a CaptureRecord.
 * Used on the API boundary (pipeline.push, capture reader) so the parsers can
 * trust field types.
 */
export function validateRecord(r: unknown): asserts r is CaptureRecord {
  const fail = (why: string): never => {
    throw new InvalidArgumentError(`invalid capture record: ${why}`)
  }
  if (typeof r !== 'object' || r === null) fail('not an object')
  const x = r as Record<string, unknown>
  if (typeof x.time !== 'string') fail('time must be a string')
  if (typeof x.ktime !== 'bigint') fail('ktime must be a bigint')
  if (!isInt(x.pid) || !isInt(x.tid)) fail('pid and tid must be integers')
  if (typeof x.comm !== 'string') fail('comm must be a string')
  if (typeof x.conn !== 'string' || x.conn.length === 0) fail('conn must be a non-empty string')
  if (x.direction !== 'egress' && x.direction !== 'ingress') fail("direction must be 'egress' or 'ingress'")
  if (!isInt(x.seq) || (x.seq as number) < 0) fail('seq must be a non-negative integer')
  if (!(x.data instanceof Uint8Array)) fail('data must be a Uint8Array')
  if (x.gap !== undefined && (!isInt(x.gap) || (x.gap as number) < 0)) fail('gap must be a non-negative integer')
  if (x.fd !== undefined && !isInt(x.fd)) fail('fd must be an integer')
  if (x.close !== undefined && typeof x.close !== 'boolean') fail('close must be a boolean')
  if (x.tuple !== undefined) {
    const t = x.tuple as Record<string, unknown> | null
    if (typeof t !== 'object' || t === null) fail('tuple must be an object')
    const tt = t as Record<string, unknown>
    if (typeof tt.saddr !== 'string' || typeof tt.daddr !== 'string' || !isInt(tt.sport) || !isInt(tt.dport)) {
      fail('tuple must be {saddr, sport, daddr, dport}')
    }
    if (tt.family !== undefined && tt.family !== 'ipv4' && tt.family !== 'ipv6') fail("tuple.family must be 'ipv4' or 'ipv6'")
  }
}
