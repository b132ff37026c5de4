/**
 * The TLS record schema and the decoding of raw ring records
 * (struct tls_event in bpf/src/tls.bpf.c) into it.
 */
import type { Codec } from '../../codec.js'
import { ConnGenerations } from '../capture/generations.js'
import { monoToIso } from '../process/clock.js'
import { decodeChunk, type CaptureCall, type CaptureChunk, type CaptureTuple, type RawCaptureEvent } from '../capture/record.js'
import type { TlsLibrary } from './discovery.js'

/** Raw header as the BTF codec decodes it: capture.h's layout, shared with the plain-socket sensor. */
export type RawTlsEvent = RawCaptureEvent

/** flags beyond capture.h's (FIRST, LAST, TRUNCATED, CLOSE: see ../capture/record.ts) */
export const TLS_F_FD_CONFLICT = 8
export const TLS_F_FD_FROM_CALL = 16
export const TLS_F_HOLD = 64

export const LIBRARY_CODES: Record<TlsLibrary, number> = { openssl: 1, gnutls: 2, go: 3, boringssl: 4 }
const LIBRARIES: Record<number, TlsLibrary> = { 1: 'openssl', 2: 'gnutls', 3: 'go', 4: 'boringssl' }

export type TlsTuple = CaptureTuple

/**
 * Plaintext moved by one TLS call, or one chunk of it. `conn` is `PID:SSLPTR`
 * (hex address of the SSL*, gnutls session or *tls.Conn); `#N` is appended
 * when a freed object's address is reused by the N-th later connection.
 * `fd` is -1 when it could not be resolved (always for Node's memory BIOs).
 */
export interface TlsRecord extends CaptureChunk {
  library: TlsLibrary
}

/** The connection object was freed (SSL_free, gnutls_deinit, (*tls.Conn).Close). */
export interface TlsCloseEvent extends CaptureCall {
  library: TlsLibrary
  /** bytes lost at the very end of the connection (after its last record) */
  lostBytes: number
}

export function libraryName(code: number): TlsLibrary {
  return LIBRARIES[code] ?? 'openssl'
}

/** Decoder of ring records: header through the object's BTF codec, data right after it. */
export class RecordDecoder {
  /** connection generations: bumped when a close record for the address arrives */
  readonly #generations = new ConnGenerations()

  constructor(readonly codec: Codec<RawTlsEvent>) {}

  get headerSize(): number {
    return this.codec.size
  }

  connKey(pid: number, conn: bigint): string {
    return this.#generations.key(`${pid}:${conn.toString(16)}`)
  }

  /** Called for a close record: later records with the same address are a new connection. */
  closed(pid: number, conn: bigint): void {
    this.#generations.bump(`${pid}:${conn.toString(16)}`)
  }

  /** Forget generations of a process that exited. */
  forgetPid(pid: number): void {
    this.#generations.forgetPrefix(`${pid}:`)
  }

  record(raw: RawTlsEvent, data: Uint8Array, conn = this.connKey(raw.pid, raw.conn)): TlsRecord {
    return decodeChunk(raw, data, conn, 'library', libraryName(raw.lib))
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
