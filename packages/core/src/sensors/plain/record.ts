/**
 * The plain-socket record schema and the decoding of raw ring records
 * (struct sock_event in bpf/src/sockdata.bpf.c, the same layout as the TLS
 * sensor's tls_event: both come from bpf/include/capture.h).
 */
import { monoToIso } from '../process/clock.js'
import { decodeChunk, formatTuple, type CaptureChunk, type CaptureTuple, type RawCaptureEvent } from '../capture/record.js'
import type { Codec } from '../../codec.js'
import { ConnGenerations } from '../capture/generations.js'

/** The raw header: capture.h's layout, shared with the TLS sensor (`conn` is the struct sock pointer). */
export type RawSockEvent = RawCaptureEvent

/** What the kernel recognised the connection as, from its first bytes. */
export type PlainProtocol = 'http1' | 'http2'

export function protocolName(code: number): PlainProtocol {
  return code === 2 ? 'http2' : 'http1'
}

/**
 * Bytes one read/write-family syscall moved on a recognised connection, or
 * one chunk of them. `conn` is `sk:<hex address of the struct sock>`; `#N` is
 * appended when a closed socket's address is reused by the N-th later
 * connection. The socket, not the process, is the connection: a socket shared
 * by several processes (fork) is one connection. `fd` is the one the calling
 * process used; `offset` counts from when the socket was first seen, and
 * `gap` includes bytes that went by before the connection was recognised.
 */
export interface PlainRecord extends CaptureChunk {
  protocol: PlainProtocol
}

/** A captured connection reached TCP_CLOSE. */
export interface PlainCloseEvent {
  time: string
  ktime: bigint
  conn: string
  tuple?: CaptureTuple
  protocol: PlainProtocol
  /** bytes lost at the very end of the connection (after its last record) */
  lostBytes: number
}

/** Decoder of ring records: header through the object's BTF codec, data right after it. */
export class PlainRecordDecoder {
  /** generations of socket addresses: bumped by each close record */
  readonly #generations = new ConnGenerations()
  /** `key|dir` of the streams that delivered their seq 0 record: a second seq 0 is a restart */
  readonly #started = new Set<string>()
  /** streams restarted at seq 0 without a close (kernel state evicted) */
  restarts = 0

  constructor(readonly codec: Codec<RawSockEvent>) {}

  connKey(sk: bigint): string {
    return this.#generations.key(`sk:${sk.toString(16)}`)
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
    this.#generations.bump(`sk:${sk.toString(16)}`)
  }

  record(raw: RawSockEvent, data: Uint8Array, conn = this.keyFor(raw)): PlainRecord {
    return decodeChunk(raw, data, conn, 'protocol', protocolName(raw.lib))
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
