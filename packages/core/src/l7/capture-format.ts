/**
 * The bpfkit capture format (version 1): NDJSON, a header line then one
 * record per line. Text so that captures can be grepped, diffed, trimmed
 * with head/tail and attached to bug reports; base64 payloads keep it exact.
 * docs/capture-format.md is the normative description.
 */
import { createReadStream, createWriteStream } from 'node:fs'
import { hostname } from 'node:os'
import type { Writable } from 'node:stream'
import { finished } from 'node:stream/promises'
import { BpfError, InvalidArgumentError } from '../errors.js'
import { type CaptureRecord, validateRecord } from './record.js'

/** The format version this module writes and reads. */
export const CAPTURE_FORMAT_VERSION = 1

/** The first line of a capture. Unknown extra fields are preserved on read. */
export interface CaptureHeader {
  bpfkit_capture: number
  /** when the capture was started, ISO 8601 */
  created: string
  /** host name of the machine that captured */
  host: string
  [extra: string]: unknown
}

/**
 * A capture file that cannot be read: bad header, malformed or over-long
 * line. `line` is 1-based (the header is line 1).
 */
export class CaptureFormatError extends BpfError {
  readonly line: number
  constructor(line: number, reason: string, cause?: unknown) {
    super(`capture line ${line}: ${reason}`, { code: 'BPFKIT_CAPTURE', cause })
    this.line = line
  }
}

/** The JSON object of one record line, as stored. */
interface RecordLine {
  time: string
  ktime: string
  pid: number
  tid: number
  comm: string
  conn: string
  fd?: number
  tuple?: { family?: 'ipv4' | 'ipv6'; saddr: string; sport: number; daddr: string; dport: number }
  dir: 'egress' | 'ingress'
  seq: number
  data: string
  gap?: number
  close?: boolean
}

/** One record as a JSON line (without the newline). Field order is fixed so output is diffable. */
export function encodeRecord(r: CaptureRecord): string {
  const o: RecordLine = {
    time: r.time,
    ktime: r.ktime.toString(),
    pid: r.pid,
    tid: r.tid,
    comm: r.comm,
    conn: r.conn,
    ...(r.fd !== undefined ? { fd: r.fd } : {}),
    ...(r.tuple !== undefined
      ? {
          tuple: {
            ...(r.tuple.family !== undefined ? { family: r.tuple.family } : {}),
            saddr: r.tuple.saddr,
            sport: r.tuple.sport,
            daddr: r.tuple.daddr,
            dport: r.tuple.dport,
          },
        }
      : {}),
    dir: r.direction,
    seq: r.seq,
    data: Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength).toString('base64'),
    ...(r.gap ? { gap: r.gap } : {}),
    ...(r.close ? { close: true } : {}),
  }
  return JSON.stringify(o)
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const DECIMAL = /^(?:0|[1-9][0-9]*)$/

/** Parses one record line. Throws CaptureFormatError naming `lineNo`. */
export function decodeRecord(line: string, lineNo = 0): CaptureRecord {
  let o: unknown
  try {
    o = JSON.parse(line)
  } catch (err) {
    throw new CaptureFormatError(lineNo, 'not valid JSON', err)
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new CaptureFormatError(lineNo, 'not a JSON object')
  const x = o as Record<string, unknown>
  if (typeof x.ktime !== 'string' || !DECIMAL.test(x.ktime)) {
    throw new CaptureFormatError(lineNo, 'ktime must be a decimal string')
  }
  if (typeof x.data !== 'string' || !BASE64.test(x.data)) throw new CaptureFormatError(lineNo, 'data must be base64')
  const rec: Record<string, unknown> = {
    time: x.time,
    ktime: BigInt(x.ktime),
    pid: x.pid,
    tid: x.tid,
    comm: x.comm,
    conn: x.conn,
    direction: x.dir,
    seq: x.seq,
    data: new Uint8Array(Buffer.from(x.data, 'base64')),
  }
  if (x.fd !== undefined && x.fd !== null) rec.fd = x.fd
  if (x.tuple !== undefined && x.tuple !== null) rec.tuple = x.tuple
  if (x.gap !== undefined && x.gap !== null && x.gap !== 0) rec.gap = x.gap
  if (x.close !== undefined && x.close !== null && x.close !== false) rec.close = x.close
  try {
    validateRecord(rec)
  } catch (err) {
    throw new CaptureFormatError(lineNo, err instanceof Error ? err.message : String(err), err)
  }
  return rec
}

/** Validates a parsed header line. */
export function decodeHeader(line: string, lineNo = 1): CaptureHeader {
  let o: unknown
  try {
    o = JSON.parse(line)
  } catch (err) {
    throw new CaptureFormatError(lineNo, 'header is not valid JSON', err)
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new CaptureFormatError(lineNo, 'header is not a JSON object')
  const h = o as Record<string, unknown>
  if (!('bpfkit_capture' in h)) throw new CaptureFormatError(lineNo, 'not a bpfkit capture (no "bpfkit_capture" header)')
  if (h.bpfkit_capture !== CAPTURE_FORMAT_VERSION) {
    throw new CaptureFormatError(lineNo, `unsupported capture version ${JSON.stringify(h.bpfkit_capture)} (this reader supports ${CAPTURE_FORMAT_VERSION})`)
  }
  if (typeof h.created !== 'string' || typeof h.host !== 'string') {
    throw new CaptureFormatError(lineNo, 'header needs "created" and "host" strings')
  }
  return h as CaptureHeader
}

/** Waits until `out` can take more, or fails if it errors or closes first. */
function drained(out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      out.off('drain', onDrain)
      out.off('error', onError)
      out.off('close', onClose)
    }
    const onDrain = () => {
      cleanup()
      resolve()
    }
    const onError = (err: Error) => {
      cleanup()
      reject(err)
    }
    const onClose = () => {
      cleanup()
      reject(new BpfError('capture output closed while writing', { code: 'ECLOSED' }))
    }
    out.on('drain', onDrain)
    out.on('error', onError)
    out.on('close', onClose)
  })
}

/**
 * Writes a capture to any Writable. `write()` resolves once the stream can
 * take more (backpressure), so `for await (...) await w.write(r)` never
 * buffers without bound. The header is written by the first write (or end).
 */
export class CaptureWriter {
  readonly header: CaptureHeader
  /** records written so far */
  records = 0
  private headerWritten = false
  private ended = false

  constructor(
    private readonly out: Writable,
    header: Partial<CaptureHeader> = {},
  ) {
    this.header = {
      ...header,
      bpfkit_capture: CAPTURE_FORMAT_VERSION,
      created: header.created ?? new Date().toISOString(),
      host: header.host ?? hostname(),
    }
  }

  /** A writer to a new file at `path` (truncated if it exists). */
  static toFile(path: string, header?: Partial<CaptureHeader>): CaptureWriter {
    return new CaptureWriter(createWriteStream(path), header)
  }

  private put(line: string): Promise<void> | undefined {
    if (!this.out.write(line + '\n')) return drained(this.out)
    return undefined
  }

  /** Appends one record; resolves when the output is ready for more. */
  async write(record: CaptureRecord): Promise<void> {
    if (this.ended) throw new InvalidArgumentError('capture writer already ended')
    validateRecord(record)
    if (!this.headerWritten) {
      this.headerWritten = true
      const p = this.put(JSON.stringify(this.header))
      if (p) await p
    }
    this.records++
    const p = this.put(encodeRecord(record))
    if (p) await p
  }

  /** Ends the output (writing the header if nothing was written) and waits until it is flushed. */
  async end(): Promise<void> {
    if (this.ended) return
    this.ended = true
    if (!this.headerWritten) {
      this.headerWritten = true
      this.out.write(JSON.stringify(this.header) + '\n')
    }
    this.out.end()
    await finished(this.out)
  }
}

/** What to do with a record line that cannot be parsed. */
export type MalformedPolicy = 'throw' | 'skip'

export interface ReadCaptureOptions {
  /**
   * Longest accepted line in bytes (default 16 MiB). A longer line is
   * malformed; the reader never buffers more than this.
   */
  maxLineBytes?: number
  /**
   * 'throw' (default): a malformed record line throws CaptureFormatError
   * with its line number; replays of a corrupt file fail loudly.
   * 'skip': malformed lines are counted in `skipped` and reading goes on.
   * A bad header always throws.
   */
  malformed?: MalformedPolicy
}

/** Where a capture comes from: a file path, a Readable, or any async iterable of chunks. */
export type CaptureSource = string | AsyncIterable<Uint8Array | string>

/**
 * Streams records from a capture. Iterate it once; `header` is set once the
 * first line has been read, `lines`/`records`/`skipped` count progress.
 */
export class CaptureReader implements AsyncIterable<CaptureRecord> {
  header: CaptureHeader | undefined
  lines = 0
  records = 0
  skipped = 0
  private readonly maxLineBytes: number
  private readonly malformed: MalformedPolicy
  private started = false

  constructor(
    private readonly source: CaptureSource,
    options: ReadCaptureOptions = {},
  ) {
    const iterable = source !== null && typeof source === 'object' && Symbol.asyncIterator in source
    if (typeof source !== 'string' && !iterable) {
      throw new InvalidArgumentError('a capture source must be a file path or an async iterable of chunks (a Readable stream)')
    }
    this.maxLineBytes = options.maxLineBytes ?? 16 * 1024 * 1024
    this.malformed = options.malformed ?? 'throw'
    if (!(this.maxLineBytes > 0)) throw new InvalidArgumentError('maxLineBytes must be positive')
    if (this.malformed !== 'throw' && this.malformed !== 'skip') {
      throw new InvalidArgumentError("malformed must be 'throw' or 'skip'")
    }
  }

  [Symbol.asyncIterator](): AsyncGenerator<CaptureRecord> {
    if (this.started) throw new InvalidArgumentError('a CaptureReader can be iterated only once')
    this.started = true
    return this.run()
  }

  /** Handles one complete line; returns a record or undefined (header, blank, skipped). */
  private line(buf: Buffer, lineNo: number): CaptureRecord | undefined {
    let end = buf.length
    if (end > 0 && buf[end - 1] === 0x0d) end-- // CRLF files
    const text = buf.toString('utf8', 0, end)
    if (lineNo === 1) {
      this.header = decodeHeader(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text, 1)
      return undefined
    }
    if (text.trim() === '') return undefined
    try {
      const r = decodeRecord(text, lineNo)
      this.records++
      return r
    } catch (err) {
      if (this.malformed === 'skip') {
        this.skipped++
        return undefined
      }
      throw err
    }
  }

  private tooLong(lineNo: number): void {
    if (lineNo === 1 || this.malformed === 'throw') {
      throw new CaptureFormatError(lineNo, `line longer than maxLineBytes (${this.maxLineBytes})`)
    }
    this.skipped++
  }

  private async *run(): AsyncGenerator<CaptureRecord> {
    const src: AsyncIterable<Uint8Array | string> =
      typeof this.source === 'string' ? createReadStream(this.source, { highWaterMark: 256 * 1024 }) : this.source
    let parts: Buffer[] = []
    let partLen = 0
    let discarding = false // inside an over-long line being skipped
    let lineNo = 1
    for await (const raw of src) {
      const chunk = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength)
      let pos = 0
      while (pos < chunk.length) {
        const nl = chunk.indexOf(0x0a, pos)
        const end = nl === -1 ? chunk.length : nl
        if (!discarding) {
          if (partLen + (end - pos) > this.maxLineBytes) {
            this.tooLong(lineNo)
            discarding = true
            parts = []
            partLen = 0
          } else if (end > pos) {
            parts.push(chunk.subarray(pos, end))
            partLen += end - pos
          }
        }
        if (nl === -1) break
        if (!discarding) {
          const line = parts.length === 1 ? parts[0]! : Buffer.concat(parts, partLen)
          parts = []
          partLen = 0
          const rec = this.line(line, lineNo)
          if (rec) yield rec
        }
        discarding = false
        this.lines = lineNo
        lineNo++
        pos = nl + 1
      }
    }
    if (!discarding && partLen > 0) {
      const rec = this.line(Buffer.concat(parts, partLen), lineNo)
      this.lines = lineNo
      if (rec) yield rec
    }
    if (this.header === undefined) throw new CaptureFormatError(1, 'empty capture (no header line)')
  }
}

/** Reads a capture file or stream; see CaptureReader. */
export function readCapture(source: CaptureSource, options?: ReadCaptureOptions): CaptureReader {
  return new CaptureReader(source, options)
}
