/**
 * Passive HTTP/2 parsing of both directions of one connection (RFC 9113):
 * frames, HPACK (one decoder per direction, table limits from the peer's
 * SETTINGS), interleaved streams, DATA with padding, trailers, RST_STREAM.
 *
 * An observer can join late or lose bytes. Then it looks for a plausible
 * frame boundary (a frame header whose fields are consistent, followed by
 * another one or ending where a record ended), decodes what it can, and
 * reports header fields it cannot decode as unknown: method, path and
 * status stay undefined rather than guessed.
 */
import { type ConnContext, ExchangeState, headerValue, MessageState } from './exchange.js'
import type { HttpHeaders } from './events.js'
import { HpackDecoder } from './hpack.js'
import { type Direction, otherDirection } from './record.js'

/** The client connection preface (RFC 9113 §3.4). */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')

const DATA = 0
const HEADERS = 1
const PRIORITY = 2
const RST_STREAM = 3
const SETTINGS = 4
const PUSH_PROMISE = 5
const PING = 6
const GOAWAY = 7
const WINDOW_UPDATE = 8
const CONTINUATION = 9

const END_STREAM = 0x1
const ACK = 0x1
const END_HEADERS = 0x4
const PADDED = 0x8
const PRIORITY_FLAG = 0x20

const DEFAULT_MAX_FRAME = 16384
const DEFAULT_MAX_FRAME_SIZE_FOR_RESYNC = DEFAULT_MAX_FRAME + 9
const MAX_FRAME = 0xffffff
/** bytes kept while looking for a frame boundary: enough to confirm a default-size frame and the header after it */
const RESYNC_KEEP = DEFAULT_MAX_FRAME_SIZE_FOR_RESYNC + 32
/** stream ids above this are implausible when resynchronising (heuristic) */
const RESYNC_MAX_STREAM_ID = 0xffffff

const ERROR_NAMES = [
  'NO_ERROR', 'PROTOCOL_ERROR', 'INTERNAL_ERROR', 'FLOW_CONTROL_ERROR', 'SETTINGS_TIMEOUT', 'STREAM_CLOSED',
  'FRAME_SIZE_ERROR', 'REFUSED_STREAM', 'CANCEL', 'COMPRESSION_ERROR', 'CONNECT_ERROR', 'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY', 'HTTP_1_1_REQUIRED',
]

/** RFC 9113 name of an error code. */
export function h2ErrorName(code: number): string {
  return ERROR_NAMES[code] ?? `0x${code.toString(16)}`
}

/**
 * Length of the frame whose header is at `p` if the header is internally
 * consistent (type known, flags and length valid for the type, stream id
 * where the type needs one), else -1.
 */
export function plausibleFrameHeader(b: Uint8Array, p: number, maxLen = DEFAULT_MAX_FRAME): number {
  if (p + 9 > b.length) return -1
  const len = (b[p]! << 16) | (b[p + 1]! << 8) | b[p + 2]!
  const type = b[p + 3]!
  const flags = b[p + 4]!
  if (b[p + 5]! & 0x80) return -1
  const sid = ((b[p + 5]! << 24) | (b[p + 6]! << 16) | (b[p + 7]! << 8) | b[p + 8]!) >>> 0
  if (len > maxLen || sid > RESYNC_MAX_STREAM_ID) return -1
  switch (type) {
    case DATA:
      return sid === 0 || flags & ~0x09 ? -1 : len
    case HEADERS:
      return sid === 0 || flags & ~0x2d ? -1 : len
    case PRIORITY:
      return sid === 0 || len !== 5 || flags ? -1 : len
    case RST_STREAM:
      return sid === 0 || len !== 4 || flags ? -1 : len
    case SETTINGS:
      return sid !== 0 || flags & ~ACK || len % 6 || (flags & ACK && len) ? -1 : len
    case PUSH_PROMISE:
      return sid === 0 || flags & ~0x0c || len < 4 ? -1 : len
    case PING:
      return sid !== 0 || len !== 8 || flags & ~ACK ? -1 : len
    case GOAWAY:
      return sid !== 0 || len < 8 || flags ? -1 : len
    case WINDOW_UPDATE:
      return len !== 4 || flags ? -1 : len
    case CONTINUATION:
      return sid === 0 || flags & ~END_HEADERS ? -1 : len
    default:
      return -1
  }
}

/**
 * Finds a frame boundary in bytes of unknown alignment. A position counts
 * when a plausible frame header there is followed by another plausible one,
 * or, at a record start (`starts`), when the frame runs to or past the end
 * of the buffer. Returns the position, or -1 plus where to keep bytes from
 * while a candidate cannot be decided yet.
 */
export function findFrameBoundary(
  buf: Uint8Array,
  starts: readonly number[],
  maxLen = DEFAULT_MAX_FRAME,
): { at: number; keepFrom: number } {
  let undecided = -1
  for (let p = 0; p + 9 <= buf.length; p++) {
    const len = plausibleFrameHeader(buf, p, maxLen)
    if (len < 0) continue
    const next = p + 9 + len
    if (next + 9 <= buf.length) {
      if (plausibleFrameHeader(buf, next, maxLen) >= 0) return { at: p, keepFrom: p }
      continue
    }
    if (starts.includes(p)) return { at: p, keepFrom: p }
    if (undecided === -1) undecided = p
  }
  return { at: -1, keepFrom: undecided !== -1 ? undecided : Math.max(0, buf.length - 8) }
}

type State = 'preface' | 'header' | 'payload' | 'data-pad' | 'data' | 'resync'

interface PendingBlock {
  sid: number
  kind: 'headers' | 'push'
  endStream: boolean
  promised: number
  parts: Buffer[]
  len: number
}

/** One direction's frame parser. */
class H2Direction {
  state: State
  decoder: HpackDecoder
  /** largest frame the receiver of this direction accepts (its SETTINGS_MAX_FRAME_SIZE) */
  maxFrame = DEFAULT_MAX_FRAME
  private in: Buffer = Buffer.alloc(0)
  private pos = 0
  /** resync window */
  private buf: Buffer = Buffer.alloc(0)
  /** the frame header or payload being collected (copied once, joined once) */
  private fparts: Buffer[] = []
  private flen = 0
  private starts: number[] = []
  private prefacePos = 0
  private len = 0
  private type = 0
  private flags = 0
  private sid = 0
  private dataLeft = 0
  private padLeft = 0
  private block: PendingBlock | undefined
  private dataStream: ExchangeState | undefined

  constructor(
    readonly dir: Direction,
    private readonly conn: Http2Connection,
    private readonly ctx: ConnContext,
    start: 'preface' | 'header' | 'resync',
  ) {
    this.state = start
    this.decoder = new HpackDecoder(start === 'resync')
  }

  get buffered(): number {
    return this.buf.length + this.flen + (this.block?.len ?? 0)
  }

  feed(data: Buffer): void {
    this.in = data
    this.pos = 0
    if (this.state === 'resync') this.starts.push(this.buf.length)
    while (this.pos < this.in.length) {
      switch (this.state) {
        case 'preface':
          this.preface()
          break
        case 'header':
          this.header()
          break
        case 'payload':
          this.payload()
          break
        case 'data-pad': {
          const pad = this.in[this.pos++]!
          if (pad > this.len - 1) {
            this.protocolError('DATA padding exceeds frame')
            break
          }
          this.dataLeft = this.len - 1 - pad
          this.padLeft = pad
          this.state = 'data'
          if (this.dataLeft === 0 && this.padLeft === 0) this.dataDone()
          break
        }
        case 'data':
          this.data()
          break
        case 'resync':
          this.resync()
          break
      }
    }
    this.in = Buffer.alloc(0)
  }

  private preface(): void {
    const n = Math.min(H2_PREFACE.length - this.prefacePos, this.in.length - this.pos)
    for (let i = 0; i < n; i++) {
      if (this.in[this.pos + i] !== H2_PREFACE[this.prefacePos + i]) {
        this.protocolError('bad client preface')
        return
      }
    }
    this.pos += n
    this.prefacePos += n
    if (this.prefacePos === H2_PREFACE.length) this.state = 'header'
  }

  /** Collects up to `need` bytes; true once `need` are there. */
  private fill(need: number): boolean {
    const n = Math.min(need - this.flen, this.in.length - this.pos)
    if (n > 0) {
      this.fparts.push(Buffer.from(this.in.subarray(this.pos, this.pos + n)))
      this.flen += n
      this.pos += n
    }
    return this.flen >= need
  }

  private takeFill(): Buffer {
    const b = this.fparts.length === 1 ? this.fparts[0]! : Buffer.concat(this.fparts, this.flen)
    this.fparts = []
    this.flen = 0
    return b
  }

  private header(): void {
    if (!this.fill(9)) return
    const b = this.takeFill()
    this.len = (b[0]! << 16) | (b[1]! << 8) | b[2]!
    this.type = b[3]!
    this.flags = b[4]!
    this.sid = b.readUInt32BE(5) & 0x7fffffff
    if (this.block && this.type !== CONTINUATION) {
      this.protocolError('header block interrupted by another frame')
      return
    }
    if (this.type === DATA) {
      // DATA is streamed, never buffered, so its length needs no limit here
      if (this.sid === 0) return this.protocolError('DATA on stream 0')
      this.dataStream = this.conn.dataTarget(this.dir, this.sid)
      if (this.flags & PADDED) {
        if (this.len === 0) return this.protocolError('padded DATA without pad length')
        this.state = 'data-pad'
        return
      }
      this.dataLeft = this.len
      this.padLeft = 0
      this.state = 'data'
      if (this.len === 0) this.dataDone()
      return
    }
    if (this.len > Math.max(this.maxFrame, DEFAULT_MAX_FRAME) || this.len > this.ctx.opts.maxHeaderBytes + 256) {
      return this.protocolError(`frame of ${this.len} bytes (type ${this.type}) exceeds the limit`)
    }
    this.state = 'payload'
    if (this.len === 0) this.payload()
  }

  private payload(): void {
    if (!this.fill(this.len)) return
    const p = this.takeFill()
    this.state = 'header'
    this.frame(p)
  }

  private data(): void {
    if (this.dataLeft > 0) {
      const n = Math.min(this.dataLeft, this.in.length - this.pos)
      this.conn.data(this.dir, this.dataStream, this.in.subarray(this.pos, this.pos + n))
      this.pos += n
      this.dataLeft -= n
    }
    if (this.dataLeft === 0 && this.padLeft > 0) {
      const n = Math.min(this.padLeft, this.in.length - this.pos)
      this.pos += n
      this.padLeft -= n
    }
    if (this.dataLeft === 0 && this.padLeft === 0) this.dataDone()
  }

  private dataDone(): void {
    this.state = 'header'
    if (this.flags & END_STREAM) this.conn.endStream(this.dir, this.dataStream, this.sid)
    this.dataStream = undefined
  }

  /** A complete non-DATA frame. */
  private frame(p: Buffer): void {
    switch (this.type) {
      case HEADERS: {
        let off = 0
        let pad = 0
        if (this.flags & PADDED) {
          if (p.length < 1) return this.protocolError('HEADERS too short')
          pad = p[0]!
          off = 1
        }
        if (this.flags & PRIORITY_FLAG) off += 5
        if (off + pad > p.length) return this.protocolError('HEADERS padding exceeds frame')
        this.startBlock({ sid: this.sid, kind: 'headers', endStream: (this.flags & END_STREAM) !== 0, promised: 0, parts: [], len: 0 }, p.subarray(off, p.length - pad))
        return
      }
      case PUSH_PROMISE: {
        let off = 0
        let pad = 0
        if (this.flags & PADDED) {
          pad = p[0] ?? 0
          off = 1
        }
        if (off + 4 + pad > p.length) return this.protocolError('PUSH_PROMISE too short')
        const promised = p.readUInt32BE(off) & 0x7fffffff
        this.startBlock({ sid: this.sid, kind: 'push', endStream: false, promised, parts: [], len: 0 }, p.subarray(off + 4, p.length - pad))
        return
      }
      case CONTINUATION: {
        const b = this.block
        if (!b) {
          // the HEADERS before it was never seen: its dynamic-table updates are lost
          this.decoder.desync()
          this.conn.headersLost(this.dir, this.sid)
          return
        }
        if (b.sid !== this.sid) return this.protocolError('CONTINUATION on another stream')
        this.append(b, p)
        return
      }
      case RST_STREAM:
        if (p.length !== 4) return this.protocolError('RST_STREAM length')
        this.conn.reset(this.dir, this.sid, p.readUInt32BE(0))
        return
      case SETTINGS:
        if (this.sid !== 0 || p.length % 6) return this.protocolError('bad SETTINGS')
        if (this.flags & ACK) return
        for (let i = 0; i + 6 <= p.length; i += 6) this.conn.setting(this.dir, p.readUInt16BE(i), p.readUInt32BE(i + 2))
        return
      case PING:
        if (p.length !== 8) return this.protocolError('PING length')
        return
      case PRIORITY:
        if (p.length !== 5) return this.protocolError('PRIORITY length')
        return
      case WINDOW_UPDATE:
        if (p.length !== 4) return this.protocolError('WINDOW_UPDATE length')
        return
      case GOAWAY:
        if (p.length < 8) return this.protocolError('GOAWAY length')
        this.conn.goaway(this.dir, p.readUInt32BE(0) & 0x7fffffff, p.readUInt32BE(4))
        return
      default:
        return // extension frames are ignored (RFC 9113 §5.5)
    }
  }

  private startBlock(b: PendingBlock, frag: Buffer): void {
    this.block = b
    this.append(b, frag)
  }

  private append(b: PendingBlock, frag: Buffer): void {
    if (b.len + frag.length > this.ctx.opts.maxHeaderBytes) {
      this.block = undefined
      this.decoder.desync()
      this.conn.headersLost(this.dir, b.sid)
      this.ctx.counters.protocolErrors++
      this.ctx.diag('warn', 'protocol_error', `HTTP/2 header block over ${this.ctx.opts.maxHeaderBytes} bytes`)
      return // CONTINUATIONs that follow find no block and are skipped
    }
    b.parts.push(frag)
    b.len += frag.length
    if (this.flags & END_HEADERS) {
      this.block = undefined
      const block = b.parts.length === 1 ? b.parts[0]! : Buffer.concat(b.parts, b.len)
      const decoded = this.decoder.decode(block, this.ctx.opts.maxHeaderBytes)
      if (decoded.unknown > 0) this.ctx.counters.hpackFailures++
      this.conn.headers(this.dir, b, decoded.headers, decoded.unknown > 0)
    }
  }

  private resync(): void {
    const rest = this.in.subarray(this.pos)
    const all = this.buf.length ? Buffer.concat([this.buf, rest]) : rest
    const r = findFrameBoundary(all, this.starts, Math.max(this.maxFrame, DEFAULT_MAX_FRAME))
    if (r.at !== -1) {
      this.ctx.counters.bytesSkipped += r.at
      this.buf = Buffer.alloc(0)
      this.starts = []
      this.state = 'header'
      this.in = all
      this.pos = r.at
      return
    }
    const keep = Math.max(r.keepFrom, all.length - RESYNC_KEEP)
    this.ctx.counters.bytesSkipped += keep
    this.buf = Buffer.from(all.subarray(keep))
    this.starts = this.starts.map((s) => s - keep).filter((s) => s >= 0)
    this.pos = this.in.length
  }

  private enterResync(): void {
    this.state = 'resync'
    this.buf = Buffer.alloc(0)
    this.fparts = []
    this.flen = 0
    this.starts = []
    this.block = undefined
    this.dataStream = undefined
    this.decoder.desync()
  }

  private protocolError(reason: string): void {
    this.ctx.counters.protocolErrors++
    this.ctx.diag('warn', 'protocol_error', `HTTP/2 ${this.dir}: ${reason}`)
    this.conn.lostFrames(this.dir)
    this.enterResync()
  }

  /** `bytes` (undefined: unknown) are missing here. */
  gap(bytes: number | undefined): void {
    if (this.state === 'data' && bytes !== undefined && bytes <= this.dataLeft + this.padLeft) {
      const inData = Math.min(bytes, this.dataLeft)
      if (inData > 0) this.conn.dataGap(this.dir, this.dataStream, inData)
      this.dataLeft -= inData
      this.padLeft -= bytes - inData
      if (this.dataLeft === 0 && this.padLeft === 0) this.dataDone()
      return
    }
    if (this.state === 'resync') {
      this.buf = Buffer.alloc(0)
      this.starts = []
      return
    }
    this.conn.lostFrames(this.dir)
    this.enterResync()
  }
}

/** Both directions of an HTTP/2 connection and its streams. */
export class Http2Connection {
  readonly dirs: Record<Direction, H2Direction>
  /** the direction the client writes, once known */
  clientDir: Direction | undefined
  private readonly streams = new Map<number, ExchangeState>()
  private readonly closed = new Set<number>()
  /** last stream id of a GOAWAY, when one was seen */
  goawayLastStreamId: number | undefined

  constructor(
    private readonly ctx: ConnContext,
    options: { clientDir: Direction | undefined; egress: 'preface' | 'header' | 'resync'; ingress: 'preface' | 'header' | 'resync' },
  ) {
    this.clientDir = options.clientDir
    this.dirs = {
      egress: new H2Direction('egress', this, ctx, options.egress),
      ingress: new H2Direction('ingress', this, ctx, options.ingress),
    }
  }

  /** transient parse buffers (bodies are accounted in the byte budget) */
  get buffered(): number {
    return this.dirs.egress.buffered + this.dirs.ingress.buffered
  }

  feed(dir: Direction, data: Buffer): void {
    this.dirs[dir].feed(data)
  }

  gap(dir: Direction, bytes: number | undefined): void {
    this.dirs[dir].gap(bytes)
  }

  private isClient(dir: Direction): boolean {
    return dir === (this.clientDir ?? this.ctx.opts.defaultClientDirection)
  }

  private stream(sid: number, create: boolean): ExchangeState | undefined {
    let x = this.streams.get(sid)
    if (x || !create || this.closed.has(sid)) return x
    x = new ExchangeState(`${this.ctx.conn}#${this.ctx.gen}:s${sid}`, this.ctx.now, sid)
    x.protocol = '2'
    this.streams.set(sid, x)
    while (this.streams.size > this.ctx.opts.maxStreams) {
      const [oldSid, old] = this.streams.entries().next().value as [number, ExchangeState]
      this.finish(oldSid, old)
    }
    return x
  }

  private finish(sid: number, x: ExchangeState): void {
    this.streams.delete(sid)
    this.closed.add(sid)
    if (this.closed.size > 4096) this.closed.delete(this.closed.values().next().value as number)
    x.finalize(this.ctx, '2')
  }

  /** The message of `dir`'s side of a stream, created (with unknown headers) if its HEADERS were not seen. */
  private side(x: ExchangeState, dir: Direction): MessageState {
    const client = this.isClient(dir)
    let m = client ? x.req : x.res
    if (!m) {
      // its HEADERS (and maybe earlier DATA) were not seen: the body we get is not its beginning
      m = new MessageState(client ? 'request' : 'response')
      m.headersUnknown = true
      m.gap = true
      m.start = this.ctx.now
      m.openBody(this.ctx, x, '2').gap(undefined)
      if (client) x.req = m
      else x.res = m
    }
    return m
  }

  /** The stream a DATA frame belongs to (undefined: a closed stream, bytes ignored). */
  dataTarget(_dir: Direction, sid: number): ExchangeState | undefined {
    return this.stream(sid, true)
  }

  data(dir: Direction, x: ExchangeState | undefined, bytes: Buffer): void {
    if (!x || x.sent) {
      this.ctx.counters.bytesSkipped += bytes.length
      return
    }
    const m = this.side(x, dir)
    if (m.done) {
      this.ctx.counters.bytesSkipped += bytes.length
      return
    }
    if (!m.body) m.openBody(this.ctx, x, '2')
    m.body!.push(bytes)
  }

  dataGap(dir: Direction, x: ExchangeState | undefined, bytes: number): void {
    if (!x || x.sent) return
    const m = this.side(x, dir)
    if (m.done) return
    m.gap = true
    if (!m.body) m.openBody(this.ctx, x, '2')
    m.body!.gap(bytes)
  }

  endStream(dir: Direction, x: ExchangeState | undefined, sid: number): void {
    if (!x || x.sent) return
    const m = this.side(x, dir)
    if (m.done) return
    m.done = true
    m.end = this.ctx.now
    if (m.kind === 'request') x.emitRequest(this.ctx, '2')
    else x.emitResponse(this.ctx, '2')
    if (x.requestOver && x.responseOver) this.finish(sid, x)
  }

  /** A decoded header block (HEADERS or PUSH_PROMISE). */
  headers(dir: Direction, b: PendingBlock, fields: HttpHeaders, unknown: boolean): void {
    const pseudo = new Map<string, string>()
    const regular: HttpHeaders = []
    for (const f of fields) {
      if (f[0].startsWith(':')) {
        if (!pseudo.has(f[0])) pseudo.set(f[0], f[1])
      } else regular.push(f)
    }
    if (b.kind === 'push') {
      // sent by the server; the promised stream's request is complete already
      if (this.clientDir === undefined) this.clientDir = otherDirection(dir)
      const x = this.stream(b.promised, true)
      if (!x || x.req) return
      const m = new MessageState('request')
      this.fillRequest(m, pseudo, regular, unknown)
      m.start = this.ctx.now
      m.end = this.ctx.now
      m.done = true
      x.req = m
      x.emitRequest(this.ctx, '2')
      return
    }
    if (this.clientDir === undefined) {
      if (pseudo.has(':method') || pseudo.has(':path') || pseudo.has(':scheme')) this.clientDir = dir
      else if (pseudo.has(':status')) this.clientDir = otherDirection(dir)
    }
    const x = this.stream(b.sid, true)
    if (!x || x.sent) return
    const client = this.isClient(dir)
    const existing = client ? x.req : x.res
    if (!existing && pseudo.size === 0) {
      // the first block we see on this side has no pseudo-headers: a head would have
      // them, so these are trailers of a message whose head we missed (or, when some
      // fields are unknown, possibly a head whose pseudo-headers we cannot read);
      // either way the fields are not reported as its headers
      const m = this.side(x, dir)
      if (!unknown) m.trailers = regular
      if (b.endStream) this.endStream(dir, x, b.sid)
      return
    }
    if (client) {
      if (!x.req) {
        const m = new MessageState('request')
        this.fillRequest(m, pseudo, regular, unknown)
        m.start = this.ctx.now
        x.req = m
        m.openBody(this.ctx, x, '2')
      } else if (!x.req.done) {
        x.req.trailers = regular
        if (unknown) x.req.headersUnknown = true
      }
    } else {
      const statusText = pseudo.get(':status')
      const status = statusText !== undefined && /^[0-9]{3}$/.test(statusText) ? Number(statusText) : undefined
      if (status !== undefined && status >= 100 && status < 200) {
        if (x.informational.length < 16) x.informational.push({ status, headers: regular })
        return
      }
      if (!x.res) {
        const m = new MessageState('response')
        if (status !== undefined) m.status = status
        m.headers = regular
        m.headersUnknown = unknown
        m.start = this.ctx.now
        m.informational = x.informational
        x.res = m
        m.openBody(this.ctx, x, '2')
      } else if (!x.res.done) {
        x.res.trailers = regular
        if (unknown) x.res.headersUnknown = true
      }
    }
    if (b.endStream) this.endStream(dir, x, b.sid)
  }

  private fillRequest(m: MessageState, pseudo: Map<string, string>, regular: HttpHeaders, unknown: boolean): void {
    m.method = pseudo.get(':method')
    m.path = pseudo.get(':path')
    m.authority = pseudo.get(':authority') ?? headerValue(regular, 'host')
    m.headers = regular
    m.headersUnknown = unknown
  }

  /** A header block of `sid` could not be decoded at all (lost CONTINUATION chain, oversized). */
  headersLost(dir: Direction, sid: number): void {
    const x = this.stream(sid, true)
    if (!x || x.sent) return
    const m = this.side(x, dir)
    m.headersUnknown = true
    m.gap = true
  }

  reset(dir: Direction, sid: number, code: number): void {
    const x = this.streams.get(sid)
    if (!x) return
    x.reset = { by: this.isClient(dir) ? 'client' : 'server', error_code: code, error: h2ErrorName(code) }
    this.finish(sid, x)
  }

  setting(dir: Direction, id: number, value: number): void {
    const peer = this.dirs[otherDirection(dir)]
    if (id === 0x1) peer.decoder.setLimit(value)
    else if (id === 0x5 && value >= DEFAULT_MAX_FRAME && value <= MAX_FRAME) peer.maxFrame = value
  }

  goaway(_dir: Direction, lastStreamId: number, _code: number): void {
    this.goawayLastStreamId = lastStreamId
  }

  /** Frames of `dir` were lost: every open message on that side may miss bytes. */
  lostFrames(dir: Direction): void {
    const client = this.isClient(dir)
    for (const x of this.streams.values()) {
      const m = client ? x.req : x.res
      if (m && !m.done) {
        m.gap = true
        m.body?.gap(undefined)
      }
    }
  }

  /** The connection ended: every open stream ends incomplete. */
  close(): void {
    for (const [sid, x] of [...this.streams]) this.finish(sid, x)
  }
}
