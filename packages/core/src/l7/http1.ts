/**
 * Incremental HTTP/1.x parsing of both directions of one connection, fed in
 * arbitrary pieces. Requests queue until a response pairs with them, in
 * order (keep-alive and pipelining). Framing follows RFC 9112: chunked
 * (with trailers), Content-Length, close-delimited responses, no body for
 * HEAD/1xx/204/304, 1xx responses are interim, 101 and CONNECT 2xx turn the
 * connection into an opaque tunnel.
 *
 * Losses: a gap inside a body of known length whose size is known is
 * absorbed (the body is marked, framing stays in sync); any other gap ends
 * the message in flight as incomplete and the parser resynchronises on the
 * next plausible request or status line at a line start.
 */
import type { HttpHeaders, HttpProtocol } from './events.js'
import { type ConnContext, ExchangeState, headerValue, headerValues, MessageState } from './exchange.js'

const EMPTY = Buffer.alloc(0)
const TOKEN_CHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]$/
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^\s]+) HTTP\/1\.([01])$/
const STATUS_LINE = /^HTTP\/1\.([01]) ([0-9]{3})(?: ([^\r\n]*))?$/
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** Methods accepted when searching for a request line in unsynchronised bytes (any token is accepted in sync). */
export const RESYNC_METHODS = [
  'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH',
  'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'REPORT', 'SEARCH', 'PURGE', 'QUERY',
]
const RESYNC_REQUEST = new RegExp(`\\n(?:${RESYNC_METHODS.join('|')}) [^\\s]{1,8192} HTTP/1\\.[01]\\r?\\n`)
const RESYNC_RESPONSE = /\nHTTP\/1\.[01] [1-5][0-9][0-9](?: [^\r\n]{0,1024})?\r?\n/
/** longest unterminated line kept while searching for a start line */
const MAX_START_LINE = 8300
const MAX_CHUNK_LINE = 4096

export type H1Role = 'request' | 'response'

/**
 * Index of the first complete request/status line that starts a line in
 * `buf` (position 0 counts when `atLineStart`), or -1.
 */
export function findStartLine(buf: Uint8Array, role: H1Role, atLineStart: boolean): number {
  const s = (atLineStart ? '\n' : '') + Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('latin1')
  const m = (role === 'request' ? RESYNC_REQUEST : RESYNC_RESPONSE).exec(s)
  if (!m) return -1
  return m.index + 1 - (atLineStart ? 1 : 0)
}

/**
 * Could `buf` be the beginning of a message of this role? 'yes' when the
 * whole start line is there and valid, 'maybe' while it is a valid prefix,
 * 'no' otherwise. Used both to detect HTTP/1 and to fail fast in sync.
 */
export function startLineVerdict(buf: Uint8Array, role: H1Role, anyMethod = true): 'yes' | 'maybe' | 'no' {
  let i = 0
  while (i < buf.length && (buf[i] === 0x0d || buf[i] === 0x0a)) i++ // empty lines before a message are allowed
  const nl = buf.subarray(0, Math.min(buf.length, i + MAX_START_LINE + 2)).indexOf(0x0a, i) // a start line is short
  const end = nl === -1 ? Math.min(buf.length, i + MAX_START_LINE + 1) : nl
  let line = Buffer.from(buf.buffer, buf.byteOffset + i, end - i).toString('latin1')
  if (nl !== -1) {
    if (line.endsWith('\r')) line = line.slice(0, -1)
    const m = role === 'request' ? REQUEST_LINE.exec(line) : STATUS_LINE.exec(line)
    if (!m) return 'no'
    if (role === 'request' && !anyMethod && !RESYNC_METHODS.includes(m[1]!)) return 'no'
    return 'yes'
  }
  if (line.length > MAX_START_LINE) return 'no'
  if (line.endsWith('\r')) line = line.slice(0, -1) // the LF has not arrived yet
  if (role === 'response') {
    const p = 'HTTP/1.'
    if (line.length <= p.length) return p.startsWith(line) ? 'maybe' : 'no'
    return /^HTTP\/1\.[01](?: [0-9]{0,3}(?: [^\r\n]*)?)?$/.test(line) ? 'maybe' : 'no'
  }
  const sp = line.indexOf(' ')
  const method = sp === -1 ? line : line.slice(0, sp)
  if (method.length > 20) return 'no'
  for (const c of method) if (!TOKEN_CHAR.test(c)) return 'no'
  if (!anyMethod && !RESYNC_METHODS.some((m) => (sp === -1 ? m.startsWith(method) : m === method))) return 'no'
  if (sp === -1) return 'maybe'
  const parts = line.slice(sp + 1).split(' ')
  if (parts.length > 2 || /[\s]/.test(parts[0]!)) return 'no'
  if (parts.length === 2) {
    const v = parts[1]!
    if (parts[0] === '' || !('HTTP/1.1'.startsWith(v) || 'HTTP/1.0'.startsWith(v))) return 'no'
  }
  return 'maybe'
}

/** A parsed start line and header section. */
interface Head {
  version: '1.0' | '1.1'
  method?: string
  target?: string
  status?: number
  reason?: string
  headers: HttpHeaders
}

/** Parses a head; for `partial` heads (cut by a gap) only complete lines count. */
function parseHead(bytes: Buffer, role: H1Role, partial: boolean): Head | string {
  const text = bytes.toString('latin1')
  const lines = text.split('\n')
  if (partial) lines.pop() // last line may be cut
  let i = 0
  while (i < lines.length && (lines[i] === '' || lines[i] === '\r')) i++
  if (i >= lines.length) return 'no start line'
  const first = lines[i]!.replace(/\r$/, '')
  let head: Head
  if (role === 'request') {
    const m = REQUEST_LINE.exec(first)
    if (!m) return `invalid request line ${JSON.stringify(first.slice(0, 80))}`
    head = { version: m[3] === '0' ? '1.0' : '1.1', method: m[1]!, target: m[2]!, headers: [] }
  } else {
    const m = STATUS_LINE.exec(first)
    if (!m) return `invalid status line ${JSON.stringify(first.slice(0, 80))}`
    head = { version: m[1] === '0' ? '1.0' : '1.1', status: Number(m[2]), headers: [] }
    if (m[3] !== undefined) head.reason = m[3]
  }
  for (i++; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '')
    if (line === '') break
    if ((line[0] === ' ' || line[0] === '\t') && head.headers.length) {
      // obsolete line folding: continuation of the previous value
      const last = head.headers[head.headers.length - 1]!
      last[1] = `${last[1]} ${line.trim()}`
      continue
    }
    const colon = line.indexOf(':')
    if (colon <= 0) continue // not a header line: ignored (lenient, like most servers)
    const name = line.slice(0, colon)
    if (!HEADER_NAME.test(name)) continue
    head.headers.push([name, line.slice(colon + 1).trim()])
  }
  return head
}

/** Finds the end of a header section (index after the empty line) in buf, scanning from `from`. */
function headEnd(buf: Buffer, from: number): number {
  for (let i = buf.indexOf(0x0a, from); i !== -1; i = buf.indexOf(0x0a, i + 1)) {
    const a = buf[i + 1]
    if (a === 0x0a) return i + 2
    if (a === 0x0d && buf[i + 2] === 0x0a) return i + 3
  }
  return -1
}

/** How the body of a message is delimited, decided from its head. */
type BodyPlan =
  | { kind: 'none' }
  | { kind: 'length'; n: number; sniff?: boolean }
  | { kind: 'chunked'; sniff?: boolean }
  | { kind: 'close'; sniff?: boolean }
  | { kind: 'opaque' }
  | { kind: 'interim' }
  | { kind: 'error'; reason: string }

type State =
  | 'start'
  | 'head'
  | 'length'
  | 'chunk-size'
  | 'chunk-data'
  | 'chunk-crlf'
  | 'trailers'
  | 'close'
  | 'resync'
  | 'opaque'

/** Content-Length from all its fields; undefined when absent, NaN when invalid or conflicting. */
function contentLength(headers: HttpHeaders): number | undefined {
  const vals = headerValues(headers, 'content-length')
  if (!vals.length) return undefined
  let n: number | undefined
  for (const v of vals) {
    for (const part of v.split(',')) {
      const p = part.trim()
      if (!/^[0-9]{1,15}$/.test(p)) return NaN
      const k = Number(p)
      if (n !== undefined && n !== k) return NaN
      n = k
    }
  }
  return n
}

/** 'chunked' when chunked is the final transfer coding, 'other' for any other coding, undefined when absent. */
function transferCoding(headers: HttpHeaders): 'chunked' | 'other' | undefined {
  const vals = headerValues(headers, 'transfer-encoding')
  if (!vals.length) return undefined
  const codings = vals
    .join(',')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean)
  if (!codings.length) return undefined
  return codings[codings.length - 1] === 'chunked' ? 'chunked' : 'other'
}

/** One direction of an HTTP/1 connection. */
class H1Parser {
  state: State
  /** chunk-size line or resync tail */
  private buf: Buffer = EMPTY
  /** header/trailer section being accumulated */
  private acc: Buffer[] = []
  private accLen = 0
  /** last bytes scanned, for a section end split across chunks */
  private accTail: Buffer = EMPTY
  private firstLineSeen = false
  private remaining = 0
  private atLineStart = true
  /**
   * The response's request is unknown (lost or before the capture), so it may
   * answer a HEAD and have no body despite its headers: if its "body" starts
   * with a status line, it has none.
   */
  private sniff = false
  cur: MessageState | undefined

  constructor(
    readonly role: H1Role,
    private readonly owner: Http1Connection,
    private readonly ctx: ConnContext,
    resync: boolean,
  ) {
    this.state = resync ? 'resync' : 'start'
  }

  /** transient bytes held (head, chunk line, resync tail) */
  get buffered(): number {
    return this.buf.length + this.accLen
  }

  feed(data: Buffer): void {
    let pos = 0
    while (pos < data.length) {
      if (this.sniff) {
        this.sniff = false
        if (data.length - pos >= 7 && data.toString('latin1', pos, pos + 7) === 'HTTP/1.') {
          this.endMessage()
          continue
        }
      }
      switch (this.state) {
        case 'start': {
          const c = data[pos]
          if (c === 0x0d || c === 0x0a) pos++
          else {
            this.state = 'head'
            this.resetAcc()
          }
          break
        }
        case 'head':
          pos = this.head(data, pos)
          break
        case 'length':
        case 'chunk-data': {
          const n = Math.min(this.remaining, data.length - pos)
          this.cur!.body!.push(data.subarray(pos, pos + n))
          pos += n
          this.remaining -= n
          if (this.remaining === 0) {
            if (this.state === 'length') this.endMessage()
            else this.state = 'chunk-crlf'
          }
          break
        }
        case 'close':
          this.cur!.body!.push(data.subarray(pos))
          pos = data.length
          break
        case 'chunk-crlf': {
          const c = data[pos]
          if (c === 0x0d) pos++
          else if (c === 0x0a) {
            pos++
            this.state = 'chunk-size'
            this.buf = EMPTY
          } else this.protocolError('missing CRLF after chunk data')
          break
        }
        case 'chunk-size':
          pos = this.chunkSize(data, pos)
          break
        case 'trailers':
          pos = this.trailers(data, pos)
          break
        case 'resync':
          pos = this.resync(data, pos)
          break
        case 'opaque':
          this.ctx.counters.bytesSkipped += data.length - pos
          pos = data.length
          break
      }
    }
  }

  /**
   * Appends data[pos..] to the header accumulator up to the end of the header
   * section (empty line). Each byte is scanned once and copied once, whatever
   * the chunking. Returns the index in `data` after the section's end, or -1
   * if it has not ended; `over` when the section exceeds `limit`.
   */
  private accumulate(data: Buffer, pos: number, limit: number): { end: number; over: boolean } {
    const rest = data.subarray(pos)
    const probe = this.accTail.length ? Buffer.concat([this.accTail, rest]) : rest
    const found = headEnd(probe, 0)
    const take = found === -1 ? rest.length : found - this.accTail.length
    if (this.accLen + take > limit) {
      const room = Math.max(0, limit - this.accLen)
      if (room > 0) this.acc.push(Buffer.from(rest.subarray(0, room)))
      this.accLen += room
      return { end: found === -1 ? -1 : pos + take, over: true }
    }
    if (take > 0) this.acc.push(Buffer.from(rest.subarray(0, take))) // copy: record buffers are not ours
    this.accLen += take
    if (found === -1) {
      this.accTail = Buffer.from(probe.subarray(Math.max(0, probe.length - 2)))
      return { end: -1, over: false }
    }
    return { end: pos + take, over: false }
  }

  private takeAcc(): Buffer {
    const b = this.acc.length === 1 ? this.acc[0]! : Buffer.concat(this.acc, this.accLen)
    this.resetAcc()
    return b
  }

  private resetAcc(tail: Buffer = EMPTY): void {
    this.acc = []
    this.accLen = 0
    this.accTail = tail
    this.firstLineSeen = false
  }

  /** Accumulates head bytes; returns the new position. */
  private head(data: Buffer, pos: number): number {
    const before = this.accLen
    const { end, over } = this.accumulate(data, pos, this.ctx.opts.maxHeaderBytes)
    if (!this.firstLineSeen) {
      // fail fast on bytes that cannot start a message (cheap: only while the first line is short or just completed)
      const added = this.accLen - before
      const hasNl = data.subarray(pos, pos + added).includes(0x0a)
      if (hasNl || this.accLen <= 64 || this.accLen > MAX_START_LINE) {
        const probe = this.acc.length === 1 ? this.acc[0]! : Buffer.concat(this.acc, this.accLen)
        if (startLineVerdict(probe.subarray(0, Math.min(probe.length, MAX_START_LINE + 2)), this.role) === 'no') {
          this.ctx.counters.bytesSkipped += before
          this.resetAcc()
          this.protocolError(`not an HTTP/1 ${this.role} start`)
          return pos
        }
        if (hasNl) this.firstLineSeen = true
      }
    }
    if (over) {
      this.ctx.counters.bytesSkipped += this.accLen
      this.abortHead(false)
      this.ctx.counters.protocolErrors++
      this.ctx.diag('warn', 'protocol_error', `HTTP/1 ${this.role} header section exceeds ${this.ctx.opts.maxHeaderBytes} bytes`)
      if (end === -1) {
        this.enterResync(false)
        return data.length
      }
      this.enterResync(true) // the head ended with an empty line: the next byte starts a line
      return end
    }
    if (end === -1) return data.length
    const head = parseHead(this.takeAcc(), this.role, false)
    if (typeof head === 'string') {
      this.protocolError(head)
      return end
    }
    this.begin(head, false)
    return end
  }

  /** A head was parsed: let the connection pair it and decide the body. */
  private begin(head: Head, partial: boolean): void {
    const plan = this.owner.onHead(this.role, head, partial)
    switch (plan.kind) {
      case 'interim':
        this.state = 'start'
        return
      case 'none':
        this.endMessage()
        return
      case 'opaque':
        this.endMessage()
        this.owner.goOpaque()
        return
      case 'length':
        this.state = 'length'
        this.remaining = plan.n
        this.sniff = plan.sniff === true
        return
      case 'chunked':
        this.state = 'chunk-size'
        this.buf = EMPTY
        this.sniff = plan.sniff === true
        return
      case 'close':
        this.state = 'close'
        this.sniff = plan.sniff === true
        return
      case 'error':
        this.protocolError(plan.reason)
        return
    }
  }

  private chunkSize(data: Buffer, pos: number): number {
    const nl = data.indexOf(0x0a, pos)
    const end = nl === -1 ? data.length : nl
    if (this.buf.length + (end - pos) > MAX_CHUNK_LINE) {
      this.protocolError('chunk size line too long')
      return end
    }
    this.buf = Buffer.concat([this.buf, data.subarray(pos, end)])
    if (nl === -1) return data.length
    const line = this.buf.toString('latin1').replace(/\r$/, '')
    this.buf = EMPTY
    const m = /^([0-9A-Fa-f]{1,12})[ \t]*(?:;.*)?$/.exec(line)
    if (!m) {
      this.protocolError(`invalid chunk size ${JSON.stringify(line.slice(0, 40))}`)
      return nl + 1
    }
    const size = parseInt(m[1]!, 16)
    if (size === 0) {
      this.state = 'trailers'
      this.resetAcc(Buffer.from('\n')) // as if after a line end: an empty trailer section is just CRLF
    } else {
      this.state = 'chunk-data'
      this.remaining = size
    }
    return nl + 1
  }

  private trailers(data: Buffer, pos: number): number {
    const { end, over } = this.accumulate(data, pos, this.ctx.opts.maxHeaderBytes)
    if (over) {
      this.resetAcc()
      this.protocolError('trailer section too large')
      return end === -1 ? data.length : end
    }
    if (end === -1) return data.length
    const text = this.takeAcc().toString('latin1')
    const fields: HttpHeaders = []
    for (const raw of text.split('\n')) {
      const line = raw.replace(/\r$/, '')
      const colon = line.indexOf(':')
      if (colon > 0 && HEADER_NAME.test(line.slice(0, colon))) fields.push([line.slice(0, colon), line.slice(colon + 1).trim()])
    }
    if (fields.length) this.cur!.trailers = fields
    this.endMessage()
    return end
  }

  /** Searches for the next start line; bytes before it are skipped. */
  private resync(data: Buffer, pos: number): number {
    const rest = data.subarray(pos)
    if (!rest.includes(0x0a)) {
      // a start line needs its line end: nothing to search yet, just extend the tail
      if (this.buf.length + rest.length > MAX_START_LINE) {
        this.ctx.counters.bytesSkipped += this.buf.length + rest.length
        this.buf = EMPTY
        this.atLineStart = false
      } else {
        this.buf = Buffer.concat([this.buf, rest])
      }
      return data.length
    }
    const old = this.buf.length
    const all = old ? Buffer.concat([this.buf, data.subarray(pos)]) : data.subarray(pos)
    const at = findStartLine(all, this.role, this.atLineStart)
    if (at !== -1) {
      this.ctx.counters.bytesSkipped += at
      this.buf = EMPTY
      this.state = 'head'
      this.resetAcc()
      if (at < old) {
        // the start line began in the kept tail: feed that part first, then the rest
        this.head(all.subarray(at, old), 0)
        return pos
      }
      return pos + (at - old)
    }
    // keep the last (unterminated) line: it may be the start of a start line
    const nl = all.lastIndexOf(0x0a)
    const tailStart = nl + 1
    if (all.length - tailStart > MAX_START_LINE) {
      this.ctx.counters.bytesSkipped += all.length
      this.buf = EMPTY
      this.atLineStart = false
    } else {
      this.ctx.counters.bytesSkipped += tailStart
      this.buf = Buffer.from(all.subarray(tailStart))
      if (nl !== -1) this.atLineStart = true
    }
    return data.length
  }

  private enterResync(atBoundary: boolean): void {
    this.state = 'resync'
    this.buf = EMPTY
    this.resetAcc()
    this.atLineStart = atBoundary
    this.cur = undefined
  }

  private protocolError(reason: string): void {
    this.ctx.counters.protocolErrors++
    this.ctx.diag('warn', 'protocol_error', `HTTP/1 ${this.role}: ${reason}`)
    if (this.cur) this.abort(false)
    this.owner.lost(this.role)
    this.enterResync(false)
  }

  private endMessage(): void {
    const m = this.cur
    this.cur = undefined
    this.state = 'start'
    if (!m) return
    m.done = true
    m.end = this.ctx.now
    this.owner.onEnd(this.role, m)
  }

  /** Ends the message in flight as incomplete. */
  private abort(gap: boolean): void {
    const m = this.cur
    this.cur = undefined
    if (!m) return
    m.incomplete = true
    if (gap) m.gap = true
    if (gap && m.body) m.body.gap(undefined)
    m.done = true
    m.end = this.ctx.now
    this.owner.onEnd(this.role, m)
  }

  /** A head cut short: report what its complete lines say. */
  private abortHead(gap: boolean): void {
    if (this.accLen === 0) return
    const head = parseHead(this.takeAcc(), this.role, true)
    if (typeof head === 'string') return
    const plan = this.owner.onHead(this.role, head, true)
    if (plan.kind === 'interim') return
    if (this.cur) {
      this.cur.headersUnknown = true
      this.abort(gap)
    }
  }

  /** `bytes` (undefined: unknown count) are missing here. */
  gap(bytes: number | undefined): void {
    switch (this.state) {
      case 'length':
      case 'chunk-data':
        if (bytes !== undefined && bytes <= this.remaining) {
          this.cur!.gap = true
          this.cur!.body!.gap(bytes)
          this.remaining -= bytes
          if (this.remaining === 0) {
            if (this.state === 'length') this.endMessage()
            else this.state = 'chunk-crlf'
          }
          return
        }
        break
      case 'close':
        this.cur!.gap = true
        this.cur!.body!.gap(bytes)
        return
      case 'chunk-size':
        if (bytes !== undefined && this.buf.length === 0) {
          // lost at a chunk boundary, size known: most likely whole chunks (one write each).
          // Carry on; the next chunk-size line must parse or we resynchronise as usual.
          // The count includes chunk framing, so the body's missing byte count becomes unknown.
          this.cur!.gap = true
          this.cur!.body!.gap(undefined)
          return
        }
        break
      case 'opaque':
        return
      case 'resync':
        this.buf = EMPTY
        this.atLineStart = true
        return
      case 'head':
        this.abortHead(true)
        break
    }
    if (this.cur) this.abort(true)
    this.owner.lost(this.role)
    this.enterResync(true)
  }

  /** The connection ended. */
  close(): void {
    if (this.state === 'close') this.endMessage()
    else if (this.state === 'head') this.abortHead(false)
    else if (this.cur) this.abort(false)
    this.buf = EMPTY
    this.resetAcc()
    this.state = 'opaque'
  }

  goOpaque(): void {
    if (this.cur) this.abort(false)
    this.buf = EMPTY
    this.resetAcc()
    this.state = 'opaque'
  }
}

/** Marks the place of requests that may have been lost in a gap. */
const LOST = Symbol('lost requests')

/**
 * Both directions of an HTTP/1 connection and the pairing of responses
 * with requests.
 */
export class Http1Connection {
  readonly requests: H1Parser
  readonly responses: H1Parser
  private pending: (ExchangeState | typeof LOST)[] = []
  private n = 0
  /** response bytes were lost since the last pairing: responses may be missing */
  private responseGap = false
  private curReq: ExchangeState | undefined
  private curRes: ExchangeState | undefined

  constructor(
    private readonly ctx: ConnContext,
    options: { requestResync: boolean; responseResync: boolean },
  ) {
    this.requests = new H1Parser('request', this, ctx, options.requestResync)
    this.responses = new H1Parser('response', this, ctx, options.responseResync)
  }

  /** transient parse buffers (bodies are accounted in the byte budget) */
  get buffered(): number {
    return this.requests.buffered + this.responses.buffered
  }

  private newExchange(version: HttpProtocol): ExchangeState {
    const x = new ExchangeState(`${this.ctx.conn}#${this.ctx.gen}:${++this.n}`, this.ctx.now)
    x.protocol = version
    return x
  }

  /** Pairs a head with its exchange and decides how its body is delimited. */
  onHead(role: H1Role, head: Head, partial: boolean): BodyPlan {
    const ctx = this.ctx
    if (role === 'request') {
      const x = this.newExchange(head.version)
      const m = new MessageState('request')
      m.method = head.method
      m.path = head.target
      m.headers = head.headers
      m.authority = headerValue(head.headers, 'host')
      m.start = ctx.now
      x.req = m
      this.pending.push(x)
      this.curReq = x
      this.requests.cur = m
      this.trimPending()
      if (partial) return { kind: 'none' }
      const te = transferCoding(head.headers)
      if (te === 'other') return { kind: 'error', reason: 'request with a transfer coding other than chunked' }
      if (te === 'chunked') {
        m.openBody(ctx, x, x.protocol)
        return { kind: 'chunked' }
      }
      const cl = contentLength(head.headers)
      if (cl !== undefined && Number.isNaN(cl)) return { kind: 'error', reason: 'invalid Content-Length' }
      if (cl) {
        m.openBody(ctx, x, x.protocol)
        return { kind: 'length', n: cl }
      }
      return { kind: 'none' }
    }

    const status = head.status!
    if (status >= 100 && status < 200 && status !== 101) {
      const x = this.pending.find((p): p is ExchangeState => p !== LOST)
      if (x && x.informational.length < 16) x.informational.push({ status, headers: head.headers })
      return { kind: 'interim' }
    }
    const x = this.takeForResponse() ?? this.newExchange(head.version)
    if (!x.req) x.protocol = head.version
    const m = new MessageState('response')
    m.status = status
    if (head.reason !== undefined) m.statusText = head.reason
    m.headers = head.headers
    m.start = ctx.now
    m.informational = x.informational
    x.res = m
    this.curRes = x
    this.responses.cur = m
    if (partial) return { kind: 'none' }
    const method = x.req?.method
    const sniff = method === undefined
    if (status === 101 || (method === 'CONNECT' && status >= 200 && status < 300)) return { kind: 'opaque' }
    if (method === 'HEAD' || status === 204 || status === 304) return { kind: 'none' }
    const te = transferCoding(head.headers)
    if (te === 'chunked') {
      m.openBody(ctx, x, x.protocol)
      return { kind: 'chunked', sniff }
    }
    if (te === undefined) {
      const cl = contentLength(head.headers)
      if (cl !== undefined && Number.isNaN(cl)) return { kind: 'error', reason: 'invalid Content-Length' }
      if (cl !== undefined) {
        if (cl === 0) return { kind: 'none' }
        m.openBody(ctx, x, x.protocol)
        return { kind: 'length', n: cl, sniff }
      }
    }
    m.openBody(ctx, x, x.protocol)
    return { kind: 'close', sniff }
  }

  /**
   * The request a response belongs to. Normally the oldest pending one; after
   * losses, causality decides: a response cannot answer a request that
   * started after it, and without pipelining a client waits for a response
   * before sending the next request.
   */
  private takeForResponse(): ExchangeState | undefined {
    const t = this.ctx.now.ktime
    while (this.pending[0] === LOST) {
      const next = this.pending.find((p): p is ExchangeState => p !== LOST)
      this.pending.shift()
      if (!next || next.req!.start!.ktime > t) {
        // the request of this response was lost
        const x = this.newExchange('1.1')
        x.requestLost = true
        this.responseGap = false
        return x
      }
    }
    if (this.responseGap) {
      this.responseGap = false
      let k = -1
      for (let i = 0; i < this.pending.length; i++) {
        const p = this.pending[i]!
        if (p !== LOST && p.req!.start!.ktime <= t) k = i
      }
      // responses of the requests before k were lost
      for (let i = 0; i < k; i++) {
        const p = this.pending.shift()!
        if (p !== LOST) {
          p.responseLost = true
          this.expire(p)
        }
      }
    }
    const x = this.pending.shift()
    return x === LOST ? undefined : x
  }

  /** Emits an exchange that will get no response. */
  private expire(x: ExchangeState): void {
    if (this.curReq === x && !x.requestOver) return // still being received; finalized when it ends
    x.finalize(this.ctx, x.protocol)
  }

  private trimPending(): void {
    while (this.pending.length > this.ctx.opts.maxPendingRequests) {
      const p = this.pending.shift()!
      if (p !== LOST) {
        if (p === this.curReq) {
          this.pending.unshift(p)
          return
        }
        p.finalize(this.ctx, p.protocol)
      }
    }
  }

  onEnd(role: H1Role, _m: MessageState): void {
    if (role === 'request') {
      const x = this.curReq
      this.curReq = undefined
      if (!x) return
      x.emitRequest(this.ctx, x.protocol)
      if (x.res) x.maybeFinalize(this.ctx, x.protocol)
      else if (!this.pending.includes(x)) x.finalize(this.ctx, x.protocol) // expired while in flight
      return
    }
    const x = this.curRes
    this.curRes = undefined
    if (!x) return
    x.emitResponse(this.ctx, x.protocol)
    x.maybeFinalize(this.ctx, x.protocol)
  }

  /** Bytes of this role were lost outside an absorbable body. */
  lost(role: H1Role): void {
    if (role === 'request') {
      if (this.pending[this.pending.length - 1] !== LOST) this.pending.push(LOST)
      if (this.pending.length > this.ctx.opts.maxPendingRequests + 1) this.trimPending()
    } else this.responseGap = true
  }

  /** 101 Switching Protocols or CONNECT: the rest is not HTTP/1. */
  goOpaque(): void {
    this.requests.goOpaque()
    this.responses.goOpaque()
  }

  feed(role: H1Role, data: Buffer): void {
    ;(role === 'request' ? this.requests : this.responses).feed(data)
  }

  gap(role: H1Role, bytes: number | undefined): void {
    ;(role === 'request' ? this.requests : this.responses).gap(bytes)
  }

  /** The connection ended: finish close-delimited bodies, emit everything pending. */
  close(): void {
    this.requests.close()
    this.responses.close()
    for (const p of this.pending) {
      if (p === LOST || p.sent) continue
      if (this.responseGap) p.responseLost = true
      p.finalize(this.ctx, p.protocol)
    }
    this.pending = []
    if (this.curRes && !this.curRes.sent) this.curRes.finalize(this.ctx, this.curRes.protocol)
    this.curRes = undefined
    this.curReq = undefined
  }
}
