import zlib from 'node:zlib'
import { describe, expect, it } from 'vitest'
import type { HttpExchangeEvent } from '../src/l7/events.js'
import type { CaptureRecord, Direction } from '../src/l7/record.js'
import { binaryBody, compressibleBody, textBody } from './fixtures/captures/content.js'
import {
  bodyBytes,
  jsonClone,
  loadFixture,
  rechunk,
  renumber,
  rng,
  run,
  splitRecord,
} from './fixtures/captures/harness.js'
import { LARGE_DOWN, LARGE_UP, recordLargeHttp1 } from './fixtures/captures/recorder.js'

/** A compact, comparable description of the exchanges of a run. */
function summary(exchanges: HttpExchangeEvent[]): string[] {
  return exchanges.map((x) => {
    const req = bodyBytes(x.request?.body)
    const res = bodyBytes(x.response?.body)
    return [
      x.id,
      x.method,
      x.path,
      x.status,
      x.incomplete,
      x.gap,
      req.length,
      req.toString('base64').slice(0, 40),
      res.length,
      res.toString('base64').slice(-40),
      JSON.stringify(x.response?.trailers ?? []),
      JSON.stringify(x.response?.informational?.map((i) => i.status) ?? []),
    ].join(' ')
  })
}

/** Synthetic records for hand-made traffic (a client process: egress = requests). */
function synth(parts: [Direction, string | Buffer, Partial<CaptureRecord>?][], conn = '9:0xabc'): CaptureRecord[] {
  let t = 1_000_000_000n
  return renumber(
    parts.map(([direction, data, extra]) => {
      t += 1_000_000n
      return {
        time: `2026-01-01T00:00:${String(Number(t / 1_000_000_000n)).padStart(2, '0')}.${String(Number(t % 1_000_000_000n)).padStart(9, '0')}Z`,
        ktime: t,
        pid: 9,
        tid: 9,
        comm: 'client',
        conn,
        direction,
        seq: 0,
        data: typeof data === 'string' ? Buffer.from(data, 'latin1') : data,
        ...(extra ?? {}),
      }
    }),
  )
}

describe('HTTP/1.1 from real traffic', () => {
  it('keep-alive: pairs every request with its response, byte-exact bodies, no body for HEAD/204/304', async () => {
    const r = run(await loadFixture('h1-keepalive'))
    expect(r.stats.parseErrors).toBe(0)
    expect(r.stats.protocolErrors).toBe(0)
    expect(r.diagnostics).toEqual([])
    const x = r.exchanges
    expect(x.map((e) => `${e.method} ${e.path} ${e.status}`)).toEqual([
      'GET /hello 200',
      'HEAD /hello 200',
      'POST /echo 201',
      'GET /nocontent 204',
      'GET /cached 304',
      'GET /binary 200',
      'GET /missing 404',
    ])
    for (const e of x) {
      expect(e.incomplete).toBe(false)
      expect(e.gap).toBe(false)
      expect(e.protocol).toBe('1.1')
      expect(e.scheme).toBe('https')
      expect(e.conn).toBe(x[0]!.conn)
      expect(e.process).toEqual({ pid: 4242, tid: 4242, comm: 'node' })
      expect(e.tuple?.daddr).toBe('127.0.0.1')
      expect(e.authority).toMatch(/^127\.0\.0\.1:\d+$/)
      expect(e.timings.ttfb_ns).toBeGreaterThanOrEqual(0)
      expect(e.timings.duration_ns).toBeGreaterThanOrEqual(e.timings.ttfb_ns!)
      expect(Date.parse(e.timings.request_start!)).toBeLessThanOrEqual(Date.parse(e.timings.response_end!))
    }
    expect(bodyBytes(x[0]!.response!.body).toString()).toBe('hello world\n')
    expect(x[0]!.response!.body!.encoding).toBe('utf8')
    expect(x[1]!.response!.body).toBeUndefined() // HEAD: Content-Length 12 but no body
    const sent = JSON.stringify({ name: 'bpfkit', list: [1, 2, 3], nested: { ok: true, text: 'héllo' } })
    expect(bodyBytes(x[2]!.request!.body).toString()).toBe(sent)
    expect(bodyBytes(x[2]!.response!.body).toString()).toBe(sent)
    expect(x[3]!.response!.body).toBeUndefined()
    expect(x[4]!.response!.body).toBeUndefined()
    expect(x[5]!.response!.body!.encoding).toBe('base64')
    expect(bodyBytes(x[5]!.response!.body).equals(binaryBody(3, 3000))).toBe(true)
    expect(bodyBytes(x[6]!.response!.body).toString()).toBe('not found')
  })

  it('emits request, then response, then exchange, per exchange; events are plain JSON', async () => {
    const r = run(await loadFixture('h1-keepalive'))
    const order = r.events.map((e) => `${e.type} ${'id' in e ? e.id : ''}`)
    for (const x of r.exchanges) {
      const iq = order.indexOf(`http.request ${x.id}`)
      const is = order.indexOf(`http.response ${x.id}`)
      const ix = order.indexOf(`http.exchange ${x.id}`)
      expect(iq).toBeGreaterThanOrEqual(0)
      expect(iq).toBeLessThan(is)
      expect(is).toBeLessThan(ix)
    }
    for (const e of r.events) expect(jsonClone(e)).toEqual(e)
    expect(r.responses[0]).toMatchObject({ method: 'GET', path: '/hello', status: 200, status_text: 'OK' })
  })

  it('redacts sensitive headers by default, keeps them with redact: false, custom lists work', async () => {
    const records = await loadFixture('h1-keepalive')
    const get = (x: HttpExchangeEvent, side: 'request' | 'response', name: string) =>
      x[side]!.headers.filter(([k]) => k.toLowerCase() === name).map(([, v]) => v)
    const red = run(records).exchanges[0]!
    expect(get(red, 'request', 'authorization')).toEqual(['[REDACTED]'])
    expect(get(red, 'request', 'cookie')).toEqual(['[REDACTED]'])
    expect(get(red, 'request', 'x-api-key')).toEqual(['[REDACTED]'])
    expect(get(red, 'response', 'set-cookie')).toEqual(['[REDACTED]', '[REDACTED]'])
    expect(get(red, 'request', 'host')[0]).toMatch(/127\.0\.0\.1/)
    expect(JSON.stringify(run(records).events)).not.toMatch(/top-secret-token|s3cr3t|key-123/)

    const clear = run(records, { redact: false }).exchanges[0]!
    expect(get(clear, 'request', 'authorization')).toEqual(['Bearer top-secret-token'])
    expect(get(clear, 'request', 'cookie')).toEqual(['session=s3cr3t'])
    expect(get(clear, 'request', 'x-api-key')).toEqual(['key-123'])
    expect(get(clear, 'response', 'set-cookie')).toEqual(['session=s3cr3t; HttpOnly', 'theme=dark'])

    const custom = run(records, { redact: ['Host'] }).exchanges[0]!
    expect(get(custom, 'request', 'host')).toEqual(['[REDACTED]'])
    expect(get(custom, 'request', 'authorization')).toEqual(['Bearer top-secret-token'])
  })

  it('pipelining: two requests in one write pair with their responses in order', async () => {
    const r = run(await loadFixture('h1-pipelining'))
    expect(r.exchanges.map((x) => [x.path, bodyBytes(x.response!.body).toString()])).toEqual([
      ['/first', 'you asked for /first'],
      ['/second', 'you asked for /second'],
    ])
    expect(r.exchanges.every((x) => !x.incomplete)).toBe(true)
  })

  it('chunked responses with trailers and chunked request bodies', async () => {
    const r = run(await loadFixture('h1-chunked'))
    const [a, b] = r.exchanges
    expect(bodyBytes(a!.response!.body).toString()).toBe(`part one;${textBody(1, 3000).toString()}part three`)
    expect(a!.response!.trailers).toEqual([['X-Checksum', 'abc123']])
    expect(a!.incomplete).toBe(false)
    expect(bodyBytes(b!.request!.body).toString()).toBe('alpha-beta-gamma')
    expect(bodyBytes(b!.response!.body).toString()).toBe('got 16 bytes')
  })

  it('decodes gzip, br and deflate bodies', async () => {
    const r = run(await loadFixture('h1-compressed'))
    const expected = compressibleBody(20_000)
    expect(r.exchanges.map((x) => x.path)).toEqual(['/gzip', '/br', '/deflate'])
    for (const x of r.exchanges) {
      const body = x.response!.body!
      expect(body.decoded).toBe(true)
      expect(body.content_encoding).toBe(x.path!.slice(1))
      expect(body.decoded_size).toBe(20_000)
      expect(body.size).toBeLessThan(2000)
      expect(body.encoding).toBe('utf8')
      expect(bodyBytes(body).equals(expected)).toBe(true)
    }
  })

  it('Expect: 100-continue: the 100 is interim, the final response pairs with the request', async () => {
    const r = run(await loadFixture('h1-continue'))
    expect(r.exchanges).toHaveLength(1)
    const x = r.exchanges[0]!
    expect(x.status).toBe(200)
    expect(x.response!.informational).toEqual([{ status: 100, headers: [] }])
    expect(bodyBytes(x.request!.body).equals(textBody(9, 5000))).toBe(true)
    expect(bodyBytes(x.response!.body).toString()).toBe('5000')
  })

  it('a response without length ends at connection close', async () => {
    const r = run(await loadFixture('h1-close-delimited'))
    const x = r.exchanges[0]!
    expect(x.incomplete).toBe(false)
    expect(bodyBytes(x.response!.body).equals(textBody(5, 4000))).toBe(true)
    // without the close, end() still flushes it, as incomplete? no: end() is a close too
    const records = (await loadFixture('h1-close-delimited')).filter((rec) => !rec.close)
    const open = run(records, {}, false)
    expect(open.exchanges).toHaveLength(0)
    open.pipeline.closeConnection(records[0]!.conn)
    expect(open.pipeline.stats.exchanges).toBe(1)
  })

  it('a close marker carrying a loss marks the close-delimited body as cut', async () => {
    const records = await loadFixture('h1-close-delimited')
    const last = records[records.length - 1]!
    expect(last.close).toBe(true)
    const r = run([...records.slice(0, -1), { ...last, gap: 123 }])
    const x = r.exchanges[0]!
    expect(x.incomplete).toBe(true)
    expect(x.gap).toBe(true)
    expect(x.response!.body!.gap).toBe(true)
    expect(bodyBytes(x.response!.body).equals(textBody(5, 4000))).toBe(true) // what arrived is intact
    expect(r.stats.gapBytes).toBe(123)
    // the same through the API
    const open = run(records.slice(0, -1), {}, false)
    open.pipeline.closeConnection(last.conn, 50)
    expect(open.pipeline.stats.gapBytes).toBe(50)
  })

  it('the same exchanges whatever the chunking: every split offset of small records, 1-byte records, random pieces', async () => {
    for (const name of ['h1-pipelining', 'h1-keepalive', 'h1-chunked', 'h1-continue', 'h1-close-delimited']) {
      const records = await loadFixture(name)
      const base = summary(run(records).exchanges)
      expect(base.length).toBeGreaterThan(0)
      const rand = rng(name.length)
      for (let i = 0; i < records.length; i++) {
        const n = records[i]!.data.length
        const offsets = n <= 600 ? Array.from({ length: n - 1 }, (_, k) => k + 1) : Array.from({ length: 25 }, () => 1 + Math.floor(rand() * (n - 1)))
        for (const at of offsets) {
          const r = run(splitRecord(records, i, at))
          expect(r.stats.parseErrors).toBe(0)
          expect(summary(r.exchanges), `${name} record ${i} split at ${at}`).toEqual(base)
        }
      }
      const bytewise = run(rechunk(records, () => 0, 1))
      expect(summary(bytewise.exchanges), `${name} 1-byte records`).toEqual(base)
      for (let s = 0; s < 5; s++) expect(summary(run(rechunk(records, rng(s), 64)).exchanges)).toEqual(base)
    }
  })

  it('works from the server side too (directions swapped: the process reads requests)', async () => {
    const records = await loadFixture('h1-keepalive')
    const swapped = records.map((r) => ({ ...r, direction: (r.direction === 'egress' ? 'ingress' : 'egress') as Direction }))
    expect(summary(run(swapped).exchanges)).toEqual(summary(run(records).exchanges))
  })

  it('1 MiB request and response bodies (real traffic), byte-exact; capture cap truncates with the original size', async () => {
    const records = await recordLargeHttp1()
    const r = run(records)
    expect(r.stats.parseErrors).toBe(0)
    const [up, down] = r.exchanges
    expect(up!.request!.body!.encoding).toBe('base64')
    expect(bodyBytes(up!.request!.body).equals(LARGE_UP())).toBe(true)
    expect(up!.request!.body!.truncated).toBe(false)
    expect(bodyBytes(up!.response!.body).toString()).toBe('ok')
    expect(bodyBytes(down!.response!.body).equals(LARGE_DOWN())).toBe(true)
    expect(r.stats.maxConnectionBuffered).toBeLessThanOrEqual(4 * 1024 * 1024)

    const capped = run(records, { maxBodyBytes: 65536 })
    const body = capped.exchanges[1]!.response!.body!
    expect(body.truncated).toBe(true)
    expect(body.size).toBe(1 << 20)
    expect(body.captured).toBe(65536)
    expect(bodyBytes(body).equals(LARGE_DOWN().subarray(0, 65536))).toBe(true)
    expect(capped.exchanges[1]!.incomplete).toBe(false)
    expect(capped.stats.maxConnectionBuffered).toBeLessThanOrEqual(65536 + 64 * 1024)

    // a small per-connection budget: bodies stop being captured, drops are counted, memory stays bounded
    const tight = run(records, { maxConnectionBytes: 512 * 1024 })
    expect(tight.stats.bytesDropped).toBeGreaterThan(0)
    expect(tight.stats.maxConnectionBuffered).toBeLessThanOrEqual(512 * 1024)
    expect(tight.exchanges.map((x) => x.status)).toEqual([200, 200])
    expect(tight.exchanges[1]!.response!.body!.size).toBe(1 << 20)
  })
})

describe('HTTP/1.1 with losses', () => {
  it('a record dropped from the middle: that exchange is incomplete, later ones are still paired right', async () => {
    const records = await loadFixture('h1-keepalive')
    // record 5 is the response to POST /echo; its seq stays missing
    const damaged = records.filter((_, i) => i !== 5)
    const r = run(damaged)
    expect(r.stats.parseErrors).toBe(0)
    expect(r.stats.gaps).toBeGreaterThan(0)
    const byPath = new Map(r.exchanges.map((x) => [x.path, x]))
    const echo = byPath.get('/echo')!
    expect(echo.incomplete).toBe(true)
    expect(echo.response).toBeUndefined()
    for (const [path, status] of [['/nocontent', 204], ['/cached', 304], ['/binary', 200], ['/missing', 404]] as const) {
      const x = byPath.get(path)!
      expect(x.status, path).toBe(status)
    }
    expect(bodyBytes(byPath.get('/binary')!.response!.body).equals(binaryBody(3, 3000))).toBe(true)
    expect(byPath.get('/hello')!.status).toBe(200)
  })

  it('a known-size gap inside a body keeps framing in sync; the body keeps only the bytes before it', async () => {
    const records = await loadFixture('h1-keepalive')
    const i = 11 // the /binary response (head + 3000 bytes of body)
    const rec = records[i]!
    const headLen = Buffer.from(rec.data).indexOf('\r\n\r\n') + 4
    const cut = headLen + 1000
    const lost = 500
    const damaged = renumber([
      ...records.slice(0, i),
      { ...rec, data: rec.data.subarray(0, cut) },
      { ...rec, data: rec.data.subarray(cut + lost), gap: lost },
      ...records.slice(i + 1),
    ])
    const r = run(damaged)
    const x = r.exchanges.find((e) => e.path === '/binary')!
    expect(x.gap).toBe(true)
    expect(x.incomplete).toBe(true)
    const body = x.response!.body!
    expect(body.gap).toBe(true)
    expect(body.missing).toBe(lost)
    expect(body.size).toBe(3000)
    expect(body.truncated).toBe(true)
    expect(bodyBytes(body).equals(binaryBody(3, 3000).subarray(0, 1000))).toBe(true)
    const last = r.exchanges.find((e) => e.path === '/missing')!
    expect(last.status).toBe(404)
    expect(last.incomplete).toBe(false)
    expect(r.stats.gapBytes).toBe(lost)
  })

  it('a lost request: its response is reported without inventing the request, the next ones pair correctly', async () => {
    const records = await loadFixture('h1-keepalive')
    // replace GET /nocontent (record 6) with a pure gap marker of its size
    const damaged = records.map((rec, i) => (i === 6 ? { ...rec, data: new Uint8Array(0), gap: rec.data.length } : rec))
    const r = run(damaged)
    expect(r.stats.parseErrors).toBe(0)
    const statuses = r.exchanges.map((x) => [x.method, x.path, x.status, x.gap])
    expect(statuses).toEqual([
      ['GET', '/hello', 200, false],
      ['HEAD', '/hello', 200, false],
      ['POST', '/echo', 201, false],
      [undefined, undefined, 204, true],
      ['GET', '/cached', 304, false],
      ['GET', '/binary', 200, false],
      ['GET', '/missing', 404, false],
    ])
    expect(r.exchanges[3]!.request).toBeUndefined()
    expect(r.exchanges[3]!.incomplete).toBe(true)
  })

  it('a gap inside a request head: what was parsed is reported as incomplete, the stream resynchronises', async () => {
    const records = await loadFixture('h1-keepalive')
    const rec = records[4]! // POST /echo head + body
    const damaged = renumber([
      ...records.slice(0, 4),
      { ...rec, data: rec.data.subarray(0, 30) }, // request line and part of a header
      { ...rec, data: new Uint8Array(0), gap: rec.data.length - 30 },
      ...records.slice(5),
    ])
    const r = run(damaged)
    const echo = r.exchanges.find((x) => x.path === '/echo')!
    expect(echo.method).toBe('POST')
    expect(echo.request!.incomplete).toBe(true)
    expect(echo.request!.headers_unknown).toBe(true)
    expect(echo.status).toBe(201)
    expect(r.exchanges.find((x) => x.path === '/missing')!.status).toBe(404)
  })

  it('joined mid-stream: earlier bytes are skipped, the first complete messages parse', async () => {
    const records = await loadFixture('h1-keepalive')
    for (let k = 1; k < 12; k++) {
      const r = run(records.slice(k)) // seqs start above 0: a late start
      expect(r.stats.parseErrors).toBe(0)
      const full = new Map(run(records).exchanges.map((x) => [`${x.path} ${x.method}`, x.status]))
      for (const x of r.exchanges) {
        if (x.method !== undefined) expect(full.get(`${x.path} ${x.method}`), `k=${k} ${x.method} ${x.path}`).toBe(x.status)
      }
      expect(r.exchanges.some((x) => x.path === '/missing' && x.status === 404)).toBe(true)
    }
  })
})

describe('HTTP/1.1 edge cases (hand-made traffic)', () => {
  it('decompression bombs cost at most the cap', () => {
    const bomb = zlib.gzipSync(Buffer.alloc(64 * 1024 * 1024))
    const records = synth([
      ['egress', 'GET /bomb HTTP/1.1\r\nHost: b\r\n\r\n'],
      ['ingress', `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\nContent-Length: ${bomb.length}\r\n\r\n`],
      ['ingress', bomb],
    ])
    const t0 = Date.now()
    const r = run(records, { maxBodyBytes: 256 * 1024 })
    expect(Date.now() - t0).toBeLessThan(5000)
    const body = r.exchanges[0]!.response!.body!
    expect(body.decoded).toBe(true)
    expect(body.truncated).toBe(true)
    expect(body.decoded_size).toBeUndefined()
    expect(body.captured).toBeLessThanOrEqual(256 * 1024)
    expect(body.captured).toBeGreaterThan(200 * 1024)
    expect(bodyBytes(body).every((b) => b === 0)).toBe(true)
    expect(body.size).toBe(bomb.length)
  })

  it('a corrupt gzip body is reported raw with decode_error', () => {
    const records = synth([
      ['egress', 'GET / HTTP/1.1\r\nHost: b\r\n\r\n'],
      ['ingress', 'HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 11\r\n\r\nhello world'],
    ])
    const body = run(records).exchanges[0]!.response!.body!
    expect(body.decoded).toBe(false)
    expect(body.decode_error).toBeTruthy()
    expect(bodyBytes(body).toString()).toBe('hello world')
  })

  it('101 Switching Protocols: the rest of the connection is opaque', () => {
    const records = synth([
      ['egress', 'GET /ws HTTP/1.1\r\nHost: w\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'],
      ['ingress', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello'],
      ['egress', Buffer.from([0x81, 0x85, 1, 2, 3, 4, 5, 6, 7, 8, 9])],
      ['ingress', 'GET /not-http HTTP/1.1\r\n\r\n'],
    ])
    const r = run(records)
    expect(r.exchanges).toHaveLength(1)
    expect(r.exchanges[0]!.status).toBe(101)
    expect(r.stats.protocolErrors).toBe(0)
    expect(r.stats.bytesSkipped).toBeGreaterThan(10)
  })

  it('an over-long header section is a protocol error; the next request is still parsed', () => {
    const records = synth([
      ['egress', `GET /big HTTP/1.1\r\nX-Big: ${'a'.repeat(100_000)}\r\n\r\n`],
      ['ingress', 'HTTP/1.1 431 Too Large\r\nContent-Length: 0\r\n\r\n'],
      ['egress', 'GET /small HTTP/1.1\r\nHost: s\r\n\r\n'],
      ['ingress', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'],
    ])
    const r = run(records, { maxHeaderBytes: 16 * 1024 })
    expect(r.stats.protocolErrors).toBeGreaterThan(0)
    expect(r.diagnostics.some((d) => d.code === 'protocol_error')).toBe(true)
    const small = r.exchanges.find((x) => x.path === '/small')!
    expect(small.status).toBe(200)
    expect(bodyBytes(small.response!.body).toString()).toBe('ok')
    expect(r.exchanges.find((x) => x.path === '/big')!.status).toBe(431)
  })

  it('HTTP/1.0 and CONNECT tunnels', () => {
    const records = synth([
      ['egress', 'GET /old HTTP/1.0\r\nHost: o\r\n\r\n'],
      ['ingress', 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold body'],
      ['egress', '', { close: true }],
    ])
    const x = run(records).exchanges[0]!
    expect(x.protocol).toBe('1.0')
    expect(bodyBytes(x.response!.body).toString()).toBe('old body')
    const tunnel = synth([
      ['egress', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'],
      ['ingress', 'HTTP/1.1 200 Connection established\r\n\r\n'],
      ['egress', Buffer.from([0x16, 0x03, 0x01, 0, 5, 1, 2, 3, 4, 5])],
    ])
    const t = run(tunnel)
    expect(t.exchanges.map((e) => [e.method, e.status])).toEqual([['CONNECT', 200]])
    expect(t.stats.protocolErrors).toBe(0)
  })

  it('a connection that is not HTTP is reported once and ignored', () => {
    const records = synth([
      ['egress', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03])],
      ['egress', Buffer.alloc(70_000, 7)],
      ['ingress', Buffer.alloc(70_000, 9)],
    ])
    const r = run(records)
    expect(r.exchanges).toHaveLength(0)
    expect(r.stats.unknownConnections).toBe(1)
    expect(r.diagnostics.filter((d) => d.code === 'unknown_protocol')).toHaveLength(1)
    expect(r.stats.maxConnectionBuffered).toBeLessThanOrEqual(4 * 1024 * 1024)
  })

  it('idle connections expire by record time; a reused conn key starts a new generation', () => {
    const a = synth([['egress', 'GET /a HTTP/1.1\r\nHost: a\r\n\r\n']], 'k')
    const b = synth([['egress', 'GET /late HTTP/1.1\r\nHost: b\r\n\r\n']], 'other')
    b[0]!.ktime = a[0]!.ktime + 10n * 60n * 1_000_000_000n
    const again = synth([['egress', 'GET /again HTTP/1.1\r\nHost: a\r\n\r\n']], 'k')
    again[0]!.ktime = b[0]!.ktime + 1n
    const r = run([...a, ...b, ...again], { idleTimeoutMs: 60_000 })
    expect(r.stats.connectionsExpired).toBe(1)
    const ids = r.exchanges.map((x) => x.id)
    expect(ids).toContain('k#0:1')
    expect(ids).toContain('k#1:1')
    const first = r.exchanges.find((x) => x.id === 'k#0:1')!
    expect(first.path).toBe('/a')
    expect(first.response).toBeUndefined()
    expect(first.incomplete).toBe(true)
    // the expiry happened while processing the later record, before end()
    expect(r.events.findIndex((e) => e.type === 'http.exchange' && e.id === 'k#0:1')).toBeLessThan(
      r.events.findIndex((e) => e.type === 'http.request' && 'path' in e && e.path === '/again'),
    )
  })
})
