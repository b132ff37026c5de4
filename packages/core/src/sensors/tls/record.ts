/**
 * The TLS record schema and the decoding of raw ring records
 * (struct tls_event in bpf/src/tls.bpf.c) into it.
 */
import type { Codec } from '../../codec.js'
import { monoToIso } from '../process/clock.js'
import type { TlsLibrary } from './discovery.js'

/** Raw header as the BTF codec decodes it (field names as in C). */
export interface RawTlsEvent {
  ktime: bigint
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
  lib: number
  flags: number
  comm: string
  saddr: Uint8Array
  daddr: Uint8Array
}

export const TLS_F_FIRST = 1
export const TLS_F_LAST = 2
export const TLS_F_TRUNCATED = 4
export const TLS_F_FD_CONFLICT = 8
export const TLS_F_FD_FROM_CALL = 16
export const TLS_F_CLOSE = 32
export const TLS_F_HOLD = 64

export const LIBRARY_CODES: Record<TlsLibrary, number> = { openssl: 1, gnutls: 2, go: 3, boringssl: 4 }
const LIBRARIES: Record<number, TlsLibrary> = { 1: 'openssl', 2: 'gnutls', 3: 'go', 4: 'boringssl' }

export interface TlsTuple {
  family: 'ipv4' | 'ipv6'
  saddr: string
  sport: number
  daddr: string
  dport: number
}

/** Plaintext moved by one TLS call, or one chunk of it. */
export interface TlsRecord {
  /** wall-clock time of the call's return, ISO 8601 with ns */
  time: string
  /** CLOCK_MONOTONIC ns (bpf_ktime_get_ns) */
  ktime: bigint
  pid: number
  tid: number
  /** thread name of the calling thread */
  comm: string
  /**
   * Connection key: `PID:SSLPTR` (hex address of the SSL*, gnutls session or
   * *tls.Conn); `#N` is appended when a freed object's address is reused by
   * the N-th later connection.
   */
  conn: string
  /** socket fd, -1 when it could not be resolved (always for Node's memory BIOs) */
  fd: number
  /** addresses of the socket, when the fd was resolved to a TCP socket */
  tuple?: TlsTuple
  direction: 'egress' | 'ingress'
  /** record number in (conn, direction), from 0, without holes */
  seq: number
  /** position of data[0] in the (conn, direction) plaintext stream; lost bytes count too */
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
  library: TlsLibrary
}

/** The connection object was freed (SSL_free, gnutls_deinit, (*tls.Conn).Close). */
export interface TlsCloseEvent {
  time: string
  ktime: bigint
  pid: number
  tid: number
  comm: string
  conn: string
  fd: number
  library: TlsLibrary
  /** bytes lost at the very end of the connection (after its last record) */
  lostBytes: number
}

export function libraryName(code: number): TlsLibrary {
  return LIBRARIES[code] ?? 'openssl'
}

export function formatTuple(raw: Pick<RawTlsEvent, 'family' | 'saddr' | 'daddr' | 'sport' | 'dport'>): TlsTuple | undefined {
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

/** Decoder of ring records: header through the object's BTF codec, data right after it. */
export class RecordDecoder {
  /** connection generations: bumped when a close record for the address arrives */
  readonly #generations = new Map<string, number>()

  constructor(readonly codec: Codec<RawTlsEvent>) {}

  get headerSize(): number {
    return this.codec.size
  }

  connKey(pid: number, conn: bigint): string {
    const base = `${pid}:${conn.toString(16)}`
    const gen = this.#generations.get(base)
    return gen ? `${base}#${gen}` : base
  }

  /** Called for a close record: later records with the same address are a new connection. */
  closed(pid: number, conn: bigint): void {
    const base = `${pid}:${conn.toString(16)}`
    this.#generations.set(base, (this.#generations.get(base) ?? 0) + 1)
    if (this.#generations.size > 1_000_000) this.#generations.clear()
  }

  /** Forget generations of a process that exited. */
  forgetPid(pid: number): void {
    const prefix = `${pid}:`
    for (const k of this.#generations.keys()) if (k.startsWith(prefix)) this.#generations.delete(k)
  }

  record(raw: RawTlsEvent, data: Uint8Array): TlsRecord {
    const rec: TlsRecord = {
      time: monoToIso(raw.ktime),
      ktime: raw.ktime,
      pid: raw.pid,
      tid: raw.tid,
      comm: raw.comm,
      conn: this.connKey(raw.pid, raw.conn),
      fd: raw.fd,
      direction: raw.dir === 1 ? 'ingress' : 'egress',
      seq: Number(raw.seq),
      offset: Number(raw.stream_off),
      callOffset: raw.call_off,
      callBytes: Number(raw.call_len),
      data,
      first: (raw.flags & TLS_F_FIRST) !== 0,
      last: (raw.flags & TLS_F_LAST) !== 0,
      library: libraryName(raw.lib),
    }
    const tuple = formatTuple(raw)
    if (tuple) rec.tuple = tuple
    if (raw.gap > 0n) rec.gap = Number(raw.gap)
    if (raw.flags & TLS_F_TRUNCATED) rec.truncated = true
    return rec
  }

  close(raw: RawTlsEvent): TlsCloseEvent {
    const ev: TlsCloseEvent = {
      time: monoToIso(raw.ktime),
      ktime: raw.ktime,
      pid: raw.pid,
      tid: raw.tid,
      comm: raw.comm,
      conn: this.connKey(raw.pid, raw.conn),
      fd: raw.fd,
      library: libraryName(raw.lib),
      lostBytes: Number(raw.gap),
    }
    this.closed(raw.pid, raw.conn)
    return ev
  }
}
