/**
 * The plain-socket record schema and the decoding of raw ring records
 * (struct sock_event in bpf/src/sockdata.bpf.c, the same layout as the TLS
 * sensor's tls_event: both come from bpf/include/capture.h).
 */
import { monoToIso } from '../process/clock.js'
import { formatTuple, type RawTlsEvent, type TlsTuple } from '../tls/record.js'
import type { Codec } from '../../codec.js'

/** The raw header: capture.h's layout, shared with the TLS sensor (`conn` is the struct sock pointer). */
export type RawSockEvent = RawTlsEvent

export const SOCK_F_FIRST = 1
export const SOCK_F_LAST = 2
export const SOCK_F_TRUNCATED = 4
export const SOCK_F_CLOSE = 32

/** What the kernel recognised the connection as, from its first bytes. */
export type PlainProtocol = 'http1' | 'http2'

export function protocolName(code: number): PlainProtocol {
  return code === 2 ? 'http2' : 'http1'
}

/** Bytes one read/write-family syscall moved on a recognised connection, or one chunk of them. */
export interface PlainRecord {
  /** wall-clock time of the syscall's return, ISO 8601 with ns */
  time: string
  /** CLOCK_MONOTONIC ns (bpf_ktime_get_ns) */
  ktime: bigint
  pid: number
  tid: number
  /** thread name of the calling thread */
  comm: string
  /**
   * Connection key: `sk:<hex address of the struct sock>`; `#N` is appended
   * when a closed socket's address is reused by the N-th later connection.
   * The socket, not the process, is the connection: a socket shared by
   * several processes (fork) is one connection.
   */
  conn: string
  /** the fd the calling process used */
  fd: number
  tuple?: TlsTuple
  direction: 'egress' | 'ingress'
  /** record number in (conn, direction), from 0, without holes */
  seq: number
  /** position of data[0] in the (conn, direction) byte stream since the socket was first seen; lost bytes count too */
  offset: number
  /** position of this chunk inside its syscall */
  callOffset: number
  /** bytes the syscall moved (the chunks of one call share it) */
  callBytes: number
  data: Uint8Array
  /** bytes of this stream lost (or gone by before the connection was recognised) just before this record */
  gap?: number
  /** the call moved more than maxBytesPerCall: the rest is a gap before the next record */
  truncated?: boolean
  first: boolean
  last: boolean
  protocol: PlainProtocol
}

/** A captured connection reached TCP_CLOSE. */
export interface PlainCloseEvent {
  time: string
  ktime: bigint
  conn: string
  tuple?: TlsTuple
  protocol: PlainProtocol
  /** bytes lost at the very end of the connection (after its last record) */
  lostBytes: number
}

/** Decoder of ring records: header through the object's BTF codec, data right after it. */
export class PlainRecordDecoder {
  /** generations of socket addresses: bumped by each close record */
  readonly #generations = new Map<bigint, number>()
  /** `key|dir` of the streams that delivered their seq 0 record: a second seq 0 is a restart */
  readonly #started = new Set<string>()
  /** streams restarted at seq 0 without a close (kernel state evicted) */
  restarts = 0

  constructor(readonly codec: Codec<RawSockEvent>) {}

  connKey(sk: bigint): string {
    const gen = this.#generations.get(sk)
    const base = `sk:${sk.toString(16)}`
    return gen ? `${base}#${gen}` : base
  }

  /**
   * The connection key of a data record. A first record (seq 0) on a stream that already had
   * one means the kernel lost the socket's state and started over (LRU eviction): the socket
   * is then keyed as a new connection, so no consumer sees seq 0 twice on one key.
   */
  keyFor(raw: RawSockEvent): string {
    let key = this.connKey(raw.conn)
    if (raw.seq !== 0n) return key
    if (this.#started.has(`${key}|${raw.dir}`)) {
      this.#bump(raw.conn, key)
      this.restarts++
      key = this.connKey(raw.conn)
    }
    this.#started.add(`${key}|${raw.dir}`)
    if (this.#started.size > 2_000_000) this.#started.clear()
    return key
  }

  #bump(sk: bigint, oldKey: string): void {
    this.#started.delete(`${oldKey}|0`)
    this.#started.delete(`${oldKey}|1`)
    this.#generations.set(sk, (this.#generations.get(sk) ?? 0) + 1)
    // Bounded memory: an address reused after this clear may repeat an old key, long after
    // the pipeline closed the connection that had it.
    if (this.#generations.size > 1_000_000) this.#generations.clear()
  }

  record(raw: RawSockEvent, data: Uint8Array, conn = this.keyFor(raw)): PlainRecord {
    const rec: PlainRecord = {
      time: monoToIso(raw.ktime),
      ktime: raw.ktime,
      pid: raw.pid,
      tid: raw.tid,
      comm: raw.comm,
      conn,
      fd: raw.fd,
      direction: raw.dir === 1 ? 'ingress' : 'egress',
      seq: Number(raw.seq),
      offset: Number(raw.stream_off),
      callOffset: raw.call_off,
      callBytes: Number(raw.call_len),
      data,
      first: (raw.flags & SOCK_F_FIRST) !== 0,
      last: (raw.flags & SOCK_F_LAST) !== 0,
      protocol: protocolName(raw.lib),
    }
    const tuple = formatTuple(raw)
    if (tuple) rec.tuple = tuple
    if (raw.gap > 0n) rec.gap = Number(raw.gap)
    if (raw.flags & SOCK_F_TRUNCATED) rec.truncated = true
    return rec
  }

  /** A close record: later records at the same socket address are a new connection. */
  close(raw: RawSockEvent): PlainCloseEvent {
    const ev: PlainCloseEvent = {
      time: monoToIso(raw.ktime),
      ktime: raw.ktime,
      conn: this.connKey(raw.conn),
      protocol: protocolName(raw.lib),
      lostBytes: Number(raw.gap),
    }
    const tuple = formatTuple(raw)
    if (tuple) ev.tuple = tuple
    this.#bump(raw.conn, ev.conn)
    return ev
  }
}
