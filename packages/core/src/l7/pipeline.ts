/**
 * HttpPipeline: capture records in, HTTP events out. It owns the
 * connections (keyed by `conn`), orders their bytes, detects the protocol,
 * runs the HTTP/1 or HTTP/2 parser, bounds memory per connection, expires
 * idle connections by record time (no timers, so replay and live runs give
 * the same events) and isolates failures: nothing a capture contains makes
 * push() throw.
 */
import { EventEmitter } from 'eventemitter3'
import { ClosedError, InvalidArgumentError } from '../errors.js'
import { detectDirection } from './detect.js'
import type { HttpPipelineEvent, HttpPipelineEventMap, HttpProtocol, L7DiagnosticEvent } from './events.js'
import { type ConnContext, DEFAULT_REDACTED_HEADERS, type L7Counters, type ResolvedL7Options } from './exchange.js'
import { Http1Connection } from './http1.js'
import { Http2Connection } from './http2.js'
import { type CaptureRecord, type ChunkMeta, type Direction, otherDirection, recordMeta, validateRecord } from './record.js'
import { DEFAULT_JSON_ARRAY_PATHS } from './streaming.js'
import { ByteBudget, emptyStreamStats, StreamAssembler, type StreamItem, type StreamStats } from './stream.js'

export interface HttpPipelineOptions {
  /** scheme reported on events (default 'https': the sensor captures TLS plaintext) */
  scheme?: string
  /**
   * Header redaction: true (default) replaces the values of Authorization,
   * Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key and Api-Key with
   * "[REDACTED]"; false keeps them; a list names the headers to redact instead.
   */
  redact?: boolean | readonly string[]
  /** body bytes kept per message (default 1 MiB); the rest is counted, `truncated` set */
  maxBodyBytes?: number
  /** header section (HTTP/1) or header block (HTTP/2) limit, default 64 KiB */
  maxHeaderBytes?: number
  /** bytes buffered per connection, all buffers together (default 4 MiB) */
  maxConnectionBytes?: number
  /** out-of-order records held per direction while waiting for a missing seq (default 32) */
  reorderWindow?: number
  /** a connection with no record for this long (record time) is closed; 0 disables (default 300 000) */
  idleTimeoutMs?: number
  /** open connections tracked; the least recently active is closed beyond (default 10 000) */
  maxConnections?: number
  /** HTTP/1 requests awaiting a response per connection (default 64) */
  maxPendingRequests?: number
  /** open HTTP/2 streams tracked per connection (default 256) */
  maxStreams?: number
  /** bytes per direction examined to detect the protocol before giving up (default 64 KiB) */
  detectBytes?: number
  /** who is the client when the bytes cannot tell (HTTP/2 joined mid-stream); default 'egress' */
  defaultClientDirection?: Direction
  /** internal errors on one connection before it is dropped (default 3) */
  maxErrorsPerConnection?: number
  /**
   * request paths whose `application/json` responses are JSON arrays streamed element by element
   * ('json-array' stream events); default DEFAULT_JSON_ARRAY_PATHS (Gemini `:streamGenerateContent`); false: none
   */
  jsonArrayPaths?: RegExp | false
}

/** Counters; a snapshot is returned by `stats`. */
export interface HttpPipelineStats extends StreamStats, L7Counters {
  /** records pushed */
  records: number
  /** payload bytes pushed */
  bytes: number
  /** internal errors caught (parser bugs); each also emits an 'internal_error' diagnostic */
  parseErrors: number
  /** connections open now */
  connections: number
  connectionsTotal: number
  connectionsClosed: number
  connectionsExpired: number
  connectionsEvicted: number
  /** connections given up after repeated internal errors */
  connectionsDropped: number
  http1Connections: number
  http2Connections: number
  /** connections whose protocol was not recognised (their bytes are counted in bytesSkipped) */
  unknownConnections: number
  /** the most bytes any one connection held at once (bounded by maxConnectionBytes) */
  maxConnectionBuffered: number
}

const MiB = 1024 * 1024

function resolve(o: HttpPipelineOptions): Required<Omit<HttpPipelineOptions, 'redact' | 'jsonArrayPaths'>> & { l7: ResolvedL7Options } {
  const pos = (name: string, v: number | undefined, d: number, min = 1): number => {
    const x = v ?? d
    if (!Number.isFinite(x) || x < min) throw new InvalidArgumentError(`${name} must be a number >= ${min}`)
    return Math.floor(x)
  }
  const maxHeaderBytes = pos('maxHeaderBytes', o.maxHeaderBytes, 64 * 1024, 1024)
  const redact =
    o.redact === false ? [] : o.redact === true || o.redact === undefined ? DEFAULT_REDACTED_HEADERS : o.redact
  if (!Array.isArray(redact)) throw new InvalidArgumentError('redact must be a boolean or a list of header names')
  const dcd = o.defaultClientDirection ?? 'egress'
  if (dcd !== 'egress' && dcd !== 'ingress') throw new InvalidArgumentError("defaultClientDirection must be 'egress' or 'ingress'")
  const jap = o.jsonArrayPaths ?? DEFAULT_JSON_ARRAY_PATHS
  if (jap !== false && !(jap instanceof RegExp)) throw new InvalidArgumentError('jsonArrayPaths must be a RegExp or false')
  // a global/sticky RegExp keeps state between test() calls: use a stateless copy
  const jsonArrayPaths = jap === false || !/[gy]/.test(jap.flags) ? jap : new RegExp(jap.source, jap.flags.replace(/[gy]/g, ''))
  const scheme = o.scheme ?? 'https'
  if (typeof scheme !== 'string' || !/^[a-z][a-z0-9+.-]*$/i.test(scheme)) throw new InvalidArgumentError(`scheme must be a URL scheme such as 'https', got ${String(scheme)}`)
  const r = {
    scheme,
    maxBodyBytes: pos('maxBodyBytes', o.maxBodyBytes, MiB, 0),
    maxHeaderBytes,
    maxConnectionBytes: pos('maxConnectionBytes', o.maxConnectionBytes, 4 * MiB, 1),
    reorderWindow: pos('reorderWindow', o.reorderWindow, 32, 0),
    idleTimeoutMs: pos('idleTimeoutMs', o.idleTimeoutMs, 300_000, 0),
    maxConnections: pos('maxConnections', o.maxConnections, 10_000),
    maxPendingRequests: pos('maxPendingRequests', o.maxPendingRequests, 64),
    maxStreams: pos('maxStreams', o.maxStreams, 256),
    detectBytes: pos('detectBytes', o.detectBytes, 64 * 1024, 64),
    defaultClientDirection: dcd,
    maxErrorsPerConnection: pos('maxErrorsPerConnection', o.maxErrorsPerConnection, 3),
  }
  const minConn = transientReserve(maxHeaderBytes) + 64 * 1024
  if (r.maxConnectionBytes < minConn) {
    throw new InvalidArgumentError(`maxConnectionBytes must be at least ${minConn} with maxHeaderBytes ${maxHeaderBytes}`)
  }
  return {
    ...r,
    l7: {
      scheme: r.scheme,
      redact: new Set(redact.map((h) => String(h).toLowerCase())),
      maxBodyBytes: r.maxBodyBytes,
      maxHeaderBytes,
      maxPendingRequests: r.maxPendingRequests,
      maxStreams: r.maxStreams,
      defaultClientDirection: dcd,
      jsonArrayPaths,
    },
  }
}

/**
 * Bytes kept aside for the parsers' transient buffers (header sections,
 * frame payloads, resync windows: each has a fixed cap), so that budgeted
 * buffers plus transient ones never exceed maxConnectionBytes.
 */
function transientReserve(maxHeaderBytes: number): number {
  return 2 * (2 * maxHeaderBytes + 64 * 1024 + 8 * 1024 + 512)
}

interface DetectState {
  parts: Buffer[]
  len: number
  /** the buffered bytes begin at a stream start or right after a gap */
  atStart: boolean
  /** the direction's first item was data (its beginning was seen) */
  clean: boolean
  /** no data seen yet on this direction */
  fresh: boolean
  starts: number[]
  gaveUp: boolean
  /** bytes buffered when the (costly) mid-stream search last ran */
  searchedLen: number
  /** the offset-0 signatures were ruled out (they cannot come back as bytes are added) */
  startNo: boolean
}

function newDetect(): DetectState {
  return { parts: [], len: 0, atStart: true, clean: true, fresh: true, starts: [], gaveUp: false, searchedLen: 0, startNo: false }
}

type Mode = 'detect' | 'http1' | 'http2' | 'unknown' | 'dropped'

/** One tracked connection. Implements the context the protocol parsers need. */
class Connection implements ConnContext {
  readonly budget: ByteBudget
  readonly asm: Record<Direction, StreamAssembler>
  now: ChunkMeta
  mode: Mode = 'detect'
  clientDir: Direction | undefined
  h1: Http1Connection | undefined
  h2: Http2Connection | undefined
  det: Record<Direction, DetectState> = { egress: newDetect(), ingress: newDetect() }
  log: { dir: Direction; item: StreamItem }[] = []
  lastKtime: bigint
  errors = 0

  constructor(
    readonly conn: string,
    readonly gen: number,
    private readonly p: HttpPipeline,
    first: CaptureRecord,
  ) {
    const o = p.resolved
    this.budget = new ByteBudget(o.maxConnectionBytes - transientReserve(o.maxHeaderBytes))
    this.asm = {
      egress: new StreamAssembler(this.budget, p.counters, { reorderWindow: o.reorderWindow }),
      ingress: new StreamAssembler(this.budget, p.counters, { reorderWindow: o.reorderWindow }),
    }
    this.now = recordMeta(first)
    this.lastKtime = first.ktime
  }

  get opts(): ResolvedL7Options {
    return this.p.resolved.l7
  }

  get counters(): HttpPipelineStats {
    return this.p.counters
  }

  /** the process sent the requests (egress is the client direction) → 'client' */
  get side(): 'client' | 'server' {
    const client = this.h2?.clientDir ?? this.clientDir ?? this.p.resolved.l7.defaultClientDirection
    return client === 'egress' ? 'client' : 'server'
  }

  get protocol(): HttpProtocol | undefined {
    return this.mode === 'http2' ? '2' : this.mode === 'http1' ? '1.1' : undefined
  }

  emit(ev: HttpPipelineEvent): void {
    this.p.enqueue(ev)
  }

  diag(level: L7DiagnosticEvent['level'], code: string, message: string): void {
    const proto = this.protocol
    this.p.enqueue({
      type: 'l7.diagnostic',
      level,
      code,
      message,
      conn: this.conn,
      ...(proto ? { protocol: proto } : {}),
      time: this.now.time,
      ktime: this.now.ktime.toString(),
    })
  }

  /** bytes held now: budgeted buffers plus the parsers' transient ones */
  get buffered(): number {
    return this.budget.used + (this.h1?.buffered ?? 0) + (this.h2?.buffered ?? 0)
  }

  push(rec: CaptureRecord): void {
    this.lastKtime = rec.ktime > this.lastKtime ? rec.ktime : this.lastKtime
    if (this.mode === 'dropped') {
      this.counters.bytesSkipped += rec.data.length
      return
    }
    for (const item of this.asm[rec.direction].push(rec)) this.item(rec.direction, item)
  }

  private item(dir: Direction, item: StreamItem): void {
    this.now = item.meta
    switch (this.mode) {
      case 'detect':
        return this.detectItem(dir, item)
      case 'unknown':
        return this.unknownItem(dir, item)
      case 'dropped':
        if (item.kind === 'data') this.counters.bytesSkipped += item.data.length
        return
      default:
        return this.parse(dir, item)
    }
  }

  private parse(dir: Direction, item: StreamItem): void {
    this.now = item.meta
    if (this.h2) {
      if (item.kind === 'data') this.h2.feed(dir, toBuffer(item.data))
      else this.h2.gap(dir, item.bytes)
      return
    }
    if (this.h1) {
      const role = dir === this.clientDir ? 'request' : 'response'
      if (item.kind === 'data') this.h1.feed(role, toBuffer(item.data))
      else this.h1.gap(role, item.bytes)
    }
  }

  private detectItem(dir: Direction, item: StreamItem): void {
    const d = this.det[dir]
    if (item.kind === 'gap') {
      // bytes before a gap cannot start anything we could parse
      this.dropDetect(dir)
      d.atStart = true
      d.fresh = false
      d.clean = false
      this.log.push({ dir, item })
      return
    }
    d.fresh = false
    const size = item.data.length
    if (!this.budget.take(size)) {
      this.dropDetect(dir)
      d.atStart = false
    } else {
      const copy = Buffer.from(item.data) // held across records: record buffers are not ours
      this.log.push({ dir, item: { kind: 'data', data: copy, meta: item.meta } })
      d.starts.push(d.len)
      d.parts.push(copy)
      d.len += size
    }
    const v = this.detectNow(dir, false)
    if (v && (v.protocol === 'http1' || v.protocol === 'http2')) {
      this.start(v, dir)
      return
    }
    if (d.len >= this.p.resolved.detectBytes) {
      d.gaveUp = true
      const other = this.det[otherDirection(dir)]
      if (other.gaveUp || other.fresh) this.giveUp()
      else this.dropDetect(dir)
    }
  }

  /**
   * Runs detection on what a direction buffered. The offset-0 checks are cheap
   * and run on every chunk until ruled out; the mid-stream search scans the
   * whole buffer, so it runs only when the buffer has grown by a quarter (or
   * `final`, at close): detection stays linear in the bytes, however small
   * the records.
   */
  private detectNow(dir: Direction, final: boolean): ReturnType<typeof detectDirection> | undefined {
    const d = this.det[dir]
    if (d.len === 0) return undefined
    const search = final || d.len - d.searchedLen >= Math.max(512, d.searchedLen >> 2)
    if (!search && (d.startNo || !d.atStart)) return undefined
    const buf = d.parts.length === 1 ? d.parts[0]! : Buffer.concat(d.parts, d.len)
    if (d.parts.length > 1) d.parts = [buf]
    if (!search) {
      const v = detectDirection(buf, dir, d.atStart, d.starts, true)
      if (v.protocol === 'no') d.startNo = true
      return v
    }
    d.searchedLen = d.len
    return detectDirection(buf, dir, d.atStart, d.starts)
  }

  /** Forgets the bytes one direction buffered for detection (they are skipped). */
  private dropDetect(dir: Direction): void {
    const d = this.det[dir]
    const kept: typeof this.log = []
    for (const e of this.log) {
      if (e.dir !== dir) kept.push(e)
      else if (e.item.kind === 'data') {
        this.budget.release(e.item.data.length)
        this.counters.bytesSkipped += e.item.data.length
      }
    }
    this.log = kept
    d.parts = []
    d.len = 0
    d.starts = []
    d.searchedLen = 0
  }

  private giveUp(): void {
    this.dropDetect('egress')
    this.dropDetect('ingress')
    this.log = []
    this.mode = 'unknown'
    this.counters.unknownConnections++
    this.diag('warn', 'unknown_protocol', 'no HTTP/1 or HTTP/2 signature found; ignoring until a message start is seen')
  }

  /** In 'unknown' mode each chunk is still checked for an offset-0 signature. */
  private unknownItem(dir: Direction, item: StreamItem): void {
    if (item.kind === 'gap') return
    const v = detectDirection(item.data, dir, true, [0], true)
    if (v.protocol !== 'http1' && v.protocol !== 'http2') {
      this.counters.bytesSkipped += item.data.length
      return
    }
    this.counters.unknownConnections--
    this.det = { egress: newDetect(), ingress: newDetect() }
    const other = this.det[otherDirection(dir)]
    other.clean = false
    other.fresh = false
    this.log = [{ dir, item }]
    this.start(v, dir, true)
  }

  /** Protocol known: build the parser and replay what detection buffered. */
  private start(
    v: { protocol: 'http1'; clientDir: Direction; offset: number } | { protocol: 'http2'; clientDir: Direction | undefined; offset: number; preface: boolean },
    dir: Direction,
    unbudgeted = false,
  ): void {
    this.clientDir = v.clientDir
    const cleanAt = (d: Direction): boolean => {
      const s = this.det[d]
      return s.clean && (d !== dir || v.offset === 0)
    }
    if (v.protocol === 'http1') {
      this.mode = 'http1'
      this.counters.http1Connections++
      const client = v.clientDir
      this.h1 = new Http1Connection(this, {
        requestResync: !cleanAt(client),
        responseResync: !cleanAt(otherDirection(client)),
      })
    } else {
      this.mode = 'http2'
      this.counters.http2Connections++
      const startOf = (d: Direction): 'preface' | 'header' | 'resync' => {
        if (!cleanAt(d)) return 'resync'
        const s = this.det[d]
        const first = s.parts[0]
        if (!first || first.length === 0) {
          if (v.clientDir === undefined) return 'resync'
          return d === v.clientDir ? 'preface' : 'header'
        }
        if (v.clientDir !== undefined && d === v.clientDir) return 'preface'
        return 'header'
      }
      this.h2 = new Http2Connection(this, { clientDir: v.clientDir, egress: startOf('egress'), ingress: startOf('ingress') })
    }
    const log = this.log
    this.log = []
    this.det = { egress: newDetect(), ingress: newDetect() }
    if (!unbudgeted) for (const e of log) if (e.item.kind === 'data') this.budget.release(e.item.data.length)
    for (const e of log) this.parse(e.dir, e.item)
  }

  /** Flushes reorder queues and ends the parsers. */
  close(lostBytes = 0): void {
    for (const dir of ['egress', 'ingress'] as const) for (const item of this.asm[dir].flush()) this.item(dir, item)
    if (lostBytes > 0) {
      this.counters.gaps++
      this.counters.gapBytes += lostBytes
      for (const dir of ['egress', 'ingress'] as const) this.item(dir, { kind: 'gap', bytes: undefined, reason: 'sensor', meta: this.now })
    }
    if (this.mode === 'detect') {
      // a short connection may end before the periodic search ran: one last look
      for (const dir of ['egress', 'ingress'] as const) {
        const v = this.mode === 'detect' ? this.detectNow(dir, true) : undefined
        if (v && (v.protocol === 'http1' || v.protocol === 'http2')) this.start(v, dir)
      }
    }
    if (this.mode === 'detect') {
      if (this.det.egress.len + this.det.ingress.len > 0) this.counters.unknownConnections++
      this.dropDetect('egress')
      this.dropDetect('ingress')
    }
    this.h1?.close()
    this.h2?.close()
  }

  /** After an internal error: forget all parser state and start over as if joined mid-stream. */
  reset(): void {
    this.h1 = undefined
    this.h2 = undefined
    this.log = []
    this.mode = 'detect'
    this.det = { egress: newDetect(), ingress: newDetect() }
    for (const d of ['egress', 'ingress'] as const) {
      this.det[d].clean = false
      this.det[d].fresh = false
    }
    this.budget.used = this.asm.egress.buffered + this.asm.ingress.buffered
  }

  /** Gives up on the connection for good. */
  drop(): void {
    this.h1 = undefined
    this.h2 = undefined
    this.log = []
    this.mode = 'dropped'
    this.budget.used = this.asm.egress.buffered + this.asm.ingress.buffered
  }
}

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength)
}

/**
 * Turns capture records into HTTP events.
 *
 * ```ts
 * const p = new HttpPipeline()
 * p.on('http.exchange', (ev) => console.log(ev.method, ev.path, ev.status))
 * for (const r of records) p.push(r)
 * p.end()
 * ```
 *
 * Events are emitted synchronously from push()/end(), after the record has
 * been processed; an exception thrown by a listener propagates to the caller
 * (the pipeline's own state stays consistent).
 */
export class HttpPipeline extends EventEmitter<HttpPipelineEventMap> {
  /** @internal */
  readonly resolved: ReturnType<typeof resolve>
  /** @internal live counters (use `stats` for a snapshot) */
  readonly counters: HttpPipelineStats
  private readonly conns = new Map<string, Connection>()
  private readonly gens = new Map<string, number>()
  private queue: HttpPipelineEvent[] = []
  private clock = 0n
  private lastSweep = 0n
  private ended = false

  constructor(options: HttpPipelineOptions = {}) {
    super()
    this.resolved = resolve(options)
    this.counters = {
      ...emptyStreamStats(),
      records: 0,
      bytes: 0,
      bytesDropped: 0,
      bytesSkipped: 0,
      parseErrors: 0,
      protocolErrors: 0,
      hpackFailures: 0,
      requests: 0,
      responses: 0,
      exchanges: 0,
      streamEvents: 0,
      streamEventsDropped: 0,
      connections: 0,
      connectionsTotal: 0,
      connectionsClosed: 0,
      connectionsExpired: 0,
      connectionsEvicted: 0,
      connectionsDropped: 0,
      http1Connections: 0,
      http2Connections: 0,
      unknownConnections: 0,
      maxConnectionBuffered: 0,
    }
  }

  /** A snapshot of the counters. */
  get stats(): HttpPipelineStats {
    return { ...this.counters, connections: this.conns.size }
  }

  /** Bytes one connection (or all together) holds now. */
  bufferedBytes(conn?: string): number {
    if (conn !== undefined) return this.conns.get(conn)?.buffered ?? 0
    let n = 0
    for (const c of this.conns.values()) n += c.buffered
    return n
  }

  /** Connection keys being tracked. */
  connectionKeys(): string[] {
    return [...this.conns.keys()]
  }

  /** @internal */
  enqueue(ev: HttpPipelineEvent): void {
    this.queue.push(ev)
  }

  /**
   * Processes one record. Throws only for API misuse (a structurally invalid
   * record, or push after end()); malformed traffic never throws.
   */
  push(record: CaptureRecord): void {
    if (this.ended) throw new ClosedError('HttpPipeline')
    validateRecord(record)
    this.counters.records++
    this.counters.bytes += record.data.length
    if (record.ktime > this.clock) this.clock = record.ktime
    let c = this.conns.get(record.conn)
    if (c) {
      // keep Map order = least recently active first
      this.conns.delete(record.conn)
      this.conns.set(record.conn, c)
    } else {
      c = this.open(record)
    }
    if (record.close && record.data.length === 0) {
      // a pure close marker: its gap is a loss at the very end, its seq does not matter
      c.now = recordMeta(record)
      this.closeConn(c, 'closed', record.gap ?? 0)
    } else {
      this.guard(c, () => c.push(record))
      if (record.close) this.closeConn(c, 'closed')
    }
    if (!record.close) {
      const b = c.buffered
      if (b > this.counters.maxConnectionBuffered) this.counters.maxConnectionBuffered = b
    }
    this.sweep()
    this.drain()
  }

  /**
   * Ends a connection now (e.g. the sensor saw SSL_free): close-delimited
   * bodies complete, the rest ends incomplete. `lostBytes` > 0: bytes were lost
   * after the last record (direction unknown), so whatever was in flight,
   * including a close-delimited body, is marked as having a gap.
   */
  closeConnection(conn: string, lostBytes = 0): void {
    if (!Number.isSafeInteger(lostBytes) || lostBytes < 0) throw new InvalidArgumentError(`lostBytes must be an integer >= 0, got ${String(lostBytes)}`)
    const c = this.conns.get(conn)
    if (c) this.closeConn(c, 'closed', lostBytes)
    this.drain()
  }

  /** Closes connections idle (by record time) for longer than idleTimeoutMs, relative to `nowKtime` (default: the latest record time). */
  expireIdle(nowKtime: bigint = this.clock): void {
    if (typeof nowKtime !== 'bigint') throw new InvalidArgumentError(`nowKtime must be a bigint (kernel CLOCK_MONOTONIC ns), got ${typeof nowKtime}`)
    const idle = BigInt(this.resolved.idleTimeoutMs) * 1_000_000n
    if (idle === 0n) return
    for (const c of [...this.conns.values()]) {
      if (nowKtime - c.lastKtime > idle) this.closeConn(c, 'expired')
      else break // Map order is least recently active first
    }
    this.drain()
  }

  /** Flushes every connection (pending exchanges are emitted, as incomplete where they are) and stops accepting records. */
  end(): void {
    if (this.ended) {
      this.drain()
      return
    }
    this.ended = true
    for (const c of [...this.conns.values()]) this.closeConn(c, 'closed')
    this.drain()
  }

  private open(record: CaptureRecord): Connection {
    while (this.conns.size >= this.resolved.maxConnections) {
      const oldest = this.conns.values().next().value as Connection
      this.closeConn(oldest, 'evicted')
    }
    const gen = this.gens.get(record.conn) ?? 0
    this.gens.set(record.conn, gen + 1)
    if (this.gens.size > 4 * this.resolved.maxConnections) {
      // forget generations of long-gone keys (ids stay unique per key while it is tracked)
      for (const k of this.gens.keys()) {
        if (!this.conns.has(k)) this.gens.delete(k)
        if (this.gens.size <= 2 * this.resolved.maxConnections) break
      }
    }
    const c = new Connection(record.conn, gen, this, record)
    this.conns.set(record.conn, c)
    this.counters.connectionsTotal++
    return c
  }

  private closeConn(c: Connection, why: 'closed' | 'expired' | 'evicted', lostBytes = 0): void {
    if (this.conns.get(c.conn) !== c) return
    this.guard(c, () => c.close(lostBytes))
    this.conns.delete(c.conn)
    c.budget.used = 0
    if (why === 'expired') this.counters.connectionsExpired++
    else if (why === 'evicted') this.counters.connectionsEvicted++
    this.counters.connectionsClosed++
  }

  /** Runs parser work; an exception is counted, reported, and the connection restarts or is dropped. */
  private guard(c: Connection, fn: () => void): void {
    try {
      fn()
    } catch (err) {
      this.counters.parseErrors++
      c.errors++
      const msg = err instanceof Error ? `${err.name}: ${err.message}` : String(err)
      c.diag('error', 'internal_error', `internal parser error: ${msg}`)
      if (c.errors >= this.resolved.maxErrorsPerConnection) {
        c.drop()
        this.counters.connectionsDropped++
        c.diag('error', 'connection_dropped', `connection dropped after ${c.errors} internal errors`)
      } else {
        c.reset()
      }
    }
  }

  private sweep(): void {
    const idle = BigInt(this.resolved.idleTimeoutMs) * 1_000_000n
    if (idle === 0n) return
    if (this.clock - this.lastSweep < idle / 8n) return
    this.lastSweep = this.clock
    this.expireIdle(this.clock)
  }

  private drain(): void {
    while (this.queue.length) {
      const ev = this.queue.shift()!
      this.emit(ev.type as keyof HttpPipelineEventMap, ev as never)
    }
  }
}
