import hpack from 'hpack.js'
import { describe, expect, it } from 'vitest'
import type { HttpExchangeEvent } from '../src/l7/events.js'
import { HpackDecoder } from '../src/l7/hpack.js'
import { findFrameBoundary, H2_PREFACE } from '../src/l7/http2.js'
import type { CaptureRecord, Direction } from '../src/l7/record.js'
import { compressibleBody } from './fixtures/captures/content.js'
import { bodyBytes, directionBytes, loadFixture, rechunk, renumber, rng, run, splitRecord } from './fixtures/captures/harness.js'
import { h2Body, LARGE_DOWN, LARGE_UP, recordLargeHttp2 } from './fixtures/captures/recorder.js'

interface Compressor {
  write(headers: { name: string; value: string }[]): void
  read(): Buffer
}
const newCompressor = (): Compressor =>
  (hpack as unknown as { compressor: { create(o: object): Compressor } }).compressor.create({ table: { size: 4096 } })

function frame(type: number, flags: number, sid: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload) : payload
  const h = Buffer.alloc(9)
  h.writeUIntBE(p.length, 0, 3)
  h[3] = type
  h[4] = flags
  h.writeUInt32BE(sid, 5)
  return Buffer.concat([h, p])
}

function synth(parts: [Direction, Buffer][], conn = '7:0xh2'): CaptureRecord[] {
  let t = 5_000_000_000n
  return renumber(
    parts.map(([direction, data]) => {
      t += 1_000_000n
      return { time: '2026-01-01T00:00:05.000000000Z', ktime: t, pid: 7, tid: 7, comm: 'h2c', conn, direction, seq: 0, data }
    }),
  )
}

function summary(exchanges: HttpExchangeEvent[]): string[] {
  return exchanges
    .map((x) =>
      [
        x.stream_id,
        x.method,
        x.path,
        x.status,
        x.incomplete,
        x.reset?.error ?? '',
        bodyBytes(x.request?.body).toString('base64').slice(0, 30),
        bodyBytes(x.response?.body).length,
        bodyBytes(x.response?.body).toString('base64').slice(-30),
        JSON.stringify(x.response?.trailers ?? []),
      ].join(' '),
    )
    .sort()
}

/** Frame types and stream ids of one direction, in wire order. */
function frames(bytes: Buffer, skipPreface: boolean): { type: number; sid: number; flags: number; len: number }[] {
  const out = []
  let p = skipPreface ? H2_PREFACE.length : 0
  while (p + 9 <= bytes.length) {
    const len = bytes.readUIntBE(p, 3)
    out.push({ type: bytes[p + 3]!, flags: bytes[p + 4]!, sid: bytes.readUInt32BE(p + 5) & 0x7fffffff, len })
    p += 9 + len
  }
  return out
}

describe('HTTP/2 from real traffic', () => {
  it('decodes interleaved streams, bodies, trailers, gzip, resets', async () => {
    const records = await loadFixture('h2-mixed')
    // the capture really interleaves DATA frames of several streams
    const dataSids = frames(directionBytes(records, 'ingress'), false)
      .filter((f) => f.type === 0)
      .map((f) => f.sid)
    expect(dataSids.slice(0, 6)).toEqual([1, 3, 5, 7, 1, 3])

    const r = run(records)
    expect(r.stats.parseErrors).toBe(0)
    expect(r.stats.protocolErrors).toBe(0)
    expect(r.stats.hpackFailures).toBe(0)
    expect(r.stats.http2Connections).toBe(1)
    const by = new Map(r.exchanges.map((x) => [x.path, x]))
    for (const i of [1, 2, 3, 4, 5]) {
      const x = by.get(`/item/${i}`)!
      expect(x.protocol).toBe('2')
      expect(x.method).toBe('GET')
      expect(x.status).toBe(200)
      expect(x.incomplete).toBe(false)
      expect(x.authority).toMatch(/^127\.0\.0\.1:\d+$/)
      expect(x.id).toBe(`${x.conn}#0:s${x.stream_id}`)
      expect(bodyBytes(x.response!.body).equals(h2Body(`/item/${i}`))).toBe(true)
      expect(x.response!.headers).toContainEqual(['content-type', 'text/plain; charset=utf-8'])
      expect(x.request!.headers).toContainEqual(['authorization', '[REDACTED]'])
      expect(x.response!.headers).toContainEqual(['set-cookie', '[REDACTED]'])
      expect(x.request!.headers.some(([k]) => k.startsWith(':'))).toBe(false)
    }
    const echo = by.get('/echo')!
    expect(echo.method).toBe('POST')
    expect(bodyBytes(echo.request!.body).toString()).toBe(JSON.stringify({ hello: 'h2', n: [1, 2, 3] }))
    expect(bodyBytes(echo.response!.body).toString()).toBe(JSON.stringify({ hello: 'h2', n: [1, 2, 3] }))
    const tr = by.get('/trailers')!
    expect(bodyBytes(tr.response!.body).toString()).toBe('body with trailers')
    expect(tr.response!.trailers).toEqual([
      ['x-checksum', 'abc123'],
      ['grpc-status', '0'],
    ])
    const gz = by.get('/gzip')!
    expect(gz.response!.body!.decoded).toBe(true)
    expect(bodyBytes(gz.response!.body).equals(compressibleBody(8000))).toBe(true)
    const reset = by.get('/reset')!
    expect(reset.reset).toEqual({ by: 'server', error_code: 2, error: 'INTERNAL_ERROR' })
    expect(reset.incomplete).toBe(true)
    expect(bodyBytes(reset.response!.body).toString()).toBe('partial ')
    const cancel = by.get('/slow')!
    expect(cancel.reset).toEqual({ by: 'client', error_code: 8, error: 'CANCEL' })
    expect(bodyBytes(cancel.response!.body).toString()).toMatch(/^first part (more )*$/)
    expect(by.get('/missing')!.status).toBe(404)
    expect(r.exchanges).toHaveLength(11)
  })

  it('dynamic-table entries decode to the real values (redaction off)', async () => {
    const r = run(await loadFixture('h2-mixed'), { redact: false })
    const item5 = r.exchanges.find((x) => x.path === '/item/5')!
    expect(item5.request!.headers).toContainEqual(['authorization', 'Bearer h2-secret'])
    expect(item5.request!.headers).toContainEqual(['cookie', 'a=1'])
    expect(item5.response!.headers).toContainEqual(['set-cookie', 'sid=abc'])
  })

  it('the same result whatever the chunking (every split offset of the handshake records, 1-byte records, random pieces)', async () => {
    const records = await loadFixture('h2-mixed')
    const base = summary(run(records).exchanges)
    for (const i of [0, 1, 11, 13, 25]) {
      for (let at = 1; at < records[i]!.data.length; at++) {
        const r = run(splitRecord(records, i, at))
        expect(r.stats.protocolErrors).toBe(0)
        expect(summary(r.exchanges), `record ${i} split at ${at}`).toEqual(base)
      }
    }
    expect(summary(run(rechunk(records, () => 0, 1)).exchanges)).toEqual(base)
    for (let s = 0; s < 10; s++) expect(summary(run(rechunk(records, rng(s), 700)).exchanges)).toEqual(base)
  })

  it('works from the server side (directions swapped)', async () => {
    const records = await loadFixture('h2-mixed')
    const swapped = records.map((r) => ({ ...r, direction: (r.direction === 'egress' ? 'ingress' : 'egress') as Direction }))
    expect(summary(run(swapped).exchanges)).toEqual(summary(run(records).exchanges))
  })

  it('1 MiB request and response bodies, byte-exact, memory bounded', async () => {
    const records = await recordLargeHttp2()
    const r = run(records)
    expect(r.stats.parseErrors).toBe(0)
    const [up, down] = r.exchanges
    expect(bodyBytes(up!.request!.body).equals(LARGE_UP())).toBe(true)
    expect(bodyBytes(up!.response!.body).toString()).toBe('ok')
    expect(bodyBytes(down!.response!.body).equals(LARGE_DOWN())).toBe(true)
    expect(r.stats.maxConnectionBuffered).toBeLessThanOrEqual(4 * 1024 * 1024)
  })
})

describe('HTTP/2 joined mid-stream and with losses', () => {
  it('starting at any later record: no throw, nothing invented, undecodable headers flagged', async () => {
    const records = await loadFixture('h2-mixed')
    const truth = new Map(run(records, { redact: false }).exchanges.map((x) => [x.stream_id, x]))
    let flagged = 0
    let decodedSomething = 0
    for (let k = 1; k < records.length - 1; k++) {
      const r = run(records.slice(k), { redact: false })
      expect(r.stats.parseErrors, `k=${k}`).toBe(0)
      for (const x of r.exchanges) {
        const t = truth.get(x.stream_id)!
        expect(t, `k=${k} stream ${x.stream_id}`).toBeDefined()
        if (x.method !== undefined) expect(x.method).toBe(t.method)
        if (x.path !== undefined) expect(x.path).toBe(t.path)
        if (x.authority !== undefined) expect(x.authority).toBe(t.authority)
        if (x.status !== undefined) expect(x.status).toBe(t.status)
        for (const side of ['request', 'response'] as const) {
          const got = x[side]
          const want = t[side]
          if (!got) continue
          // every decoded header is a real header of that message
          for (const h of got.headers) expect(want!.headers, `k=${k} s${x.stream_id} ${side}`).toContainEqual(h)
          if (got.headers_unknown) flagged++
          if (got.body && !got.gap && !x.reset && want?.body) {
            // a body seen whole is byte-exact
            expect(bodyBytes(got.body).equals(bodyBytes(want.body))).toBe(true)
          }
        }
        if (x.method !== undefined || x.status !== undefined) decodedSomething++
      }
    }
    expect(flagged).toBeGreaterThan(0)
    expect(decodedSomething).toBeGreaterThan(0)
  })

  it('a joined stream whose request headers all come from the lost dynamic table: method and path stay undefined', () => {
    const c = newCompressor()
    c.write([
      { name: ':method', value: 'PATCH' },
      { name: ':scheme', value: 'https' },
      { name: ':path', value: '/secret/path' },
      { name: ':authority', value: 'api.example' },
    ])
    const first = c.read()
    c.write([
      { name: ':method', value: 'PATCH' },
      { name: ':scheme', value: 'https' },
      { name: ':path', value: '/secret/path' },
      { name: ':authority', value: 'api.example' },
    ])
    const second = c.read() // all indexed from the dynamic table
    const s = newCompressor()
    s.write([{ name: ':status', value: '200' }])
    const status = s.read()
    const all = synth([
      ['egress', Buffer.concat([H2_PREFACE, frame(4, 0, 0), frame(1, 5, 1, first)])],
      ['ingress', Buffer.concat([frame(4, 0, 0), frame(1, 5, 1, status)])],
      ['egress', frame(1, 5, 3, second)],
      ['ingress', frame(1, 5, 3, status)],
    ])
    const full = run(all)
    expect(full.exchanges.map((x) => [x.stream_id, x.method, x.path])).toEqual([
      [1, 'PATCH', '/secret/path'],
      [3, 'PATCH', '/secret/path'],
    ])
    const joined = run(all.slice(2)) // the capture starts after the first request
    expect(joined.stats.parseErrors).toBe(0)
    const x = joined.exchanges.find((e) => e.stream_id === 3)!
    expect(x.method).toBeUndefined()
    expect(x.path).toBeUndefined()
    expect(x.authority).toBeUndefined()
    expect(x.request!.headers_unknown).toBe(true)
    expect(x.status).toBe(200) // :status 200 is in the static table
  })

  it('a lost DATA record: that stream is marked, the others and later streams are intact', async () => {
    const records = await loadFixture('h2-mixed')
    const damaged = records.filter((_, i) => i !== 6) // 3 KiB of DATA of streams 5 and 7
    const r = run(damaged)
    expect(r.stats.parseErrors).toBe(0)
    const by = new Map(r.exchanges.map((x) => [x.path ?? `s${x.stream_id}`, x]))
    const hit = [...by.values()].filter((x) => x.gap)
    expect(hit.length).toBeGreaterThan(0)
    for (const x of hit) {
      expect(x.incomplete).toBe(true)
      const b = bodyBytes(x.response?.body)
      if (x.path) expect(h2Body(x.path).subarray(0, b.length).equals(b)).toBe(true) // a true prefix
    }
    for (const p of ['/echo', '/trailers', '/gzip', '/item/5', '/missing']) {
      const x = by.get(p)
      expect(x, p).toBeDefined()
      expect(x!.gap, p).toBe(false)
    }
    expect(bodyBytes(by.get('/item/5')!.response!.body).equals(h2Body('/item/5'))).toBe(true)
  })

  it('a known-size gap inside a DATA frame keeps framing and HPACK in sync', async () => {
    const records = await loadFixture('h2-mixed')
    const i = 3 // a record holding one DATA frame (9-byte header + 1500 bytes)
    const rec = records[i]!
    expect(rec.data.length).toBe(1509)
    const damaged = renumber([
      ...records.slice(0, i),
      { ...rec, data: rec.data.subarray(0, 509) },
      { ...rec, data: rec.data.subarray(1009), gap: 500 },
      ...records.slice(i + 1),
    ])
    const r = run(damaged)
    expect(r.stats.protocolErrors).toBe(0)
    expect(r.stats.hpackFailures).toBe(0)
    const sid = Buffer.from(rec.data).readUInt32BE(5)
    const hit = r.exchanges.find((x) => x.stream_id === sid)!
    expect(hit.gap).toBe(true)
    expect(hit.response!.body!.missing).toBe(500)
    expect(r.exchanges.filter((x) => x.gap)).toHaveLength(1)
    expect(r.exchanges.filter((x) => !x.reset && !x.gap).every((x) => !x.incomplete)).toBe(true)
  })
})

describe('HTTP/2 framing details (hand-made frames)', () => {
  it('padding, priority, CONTINUATION, PUSH_PROMISE, PING, WINDOW_UPDATE, SETTINGS table size, trailers on requests', () => {
    const cc = newCompressor()
    cc.write([
      { name: ':method', value: 'POST' },
      { name: ':scheme', value: 'https' },
      { name: ':path', value: '/upload?x=1' },
      { name: ':authority', value: 'h2.example' },
      { name: 'content-type', value: 'text/plain' },
      { name: 'x-long', value: 'v'.repeat(300) },
    ])
    const reqBlock = cc.read()
    cc.write([{ name: 'x-req-trailer', value: 'done' }])
    const reqTrailers = cc.read()
    const sc = newCompressor()
    sc.write([
      { name: ':status', value: '201' },
      { name: 'content-type', value: 'text/plain' },
    ])
    const resBlock = sc.read()
    sc.write([
      { name: ':method', value: 'GET' },
      { name: ':scheme', value: 'https' },
      { name: ':path', value: '/pushed.css' },
      { name: ':authority', value: 'h2.example' },
    ])
    const pushBlock = sc.read()
    sc.write([{ name: ':status', value: '200' }])
    const pushRes = sc.read()

    const padded = (b: Buffer, pad: number, prio: boolean) =>
      Buffer.concat([Buffer.from([pad]), prio ? Buffer.from([0, 0, 0, 0, 15]) : Buffer.alloc(0), b, Buffer.alloc(pad)])
    const settings = Buffer.alloc(12)
    settings.writeUInt16BE(1, 0)
    settings.writeUInt32BE(8192, 2) // HEADER_TABLE_SIZE
    settings.writeUInt16BE(5, 6)
    settings.writeUInt32BE(32768, 8) // MAX_FRAME_SIZE
    const half = Math.floor(reqBlock.length / 2)
    const records = synth([
      ['egress', Buffer.concat([H2_PREFACE, frame(4, 0, 0, settings)])],
      ['ingress', Buffer.concat([frame(4, 0, 0), frame(4, 1, 0)])],
      [
        'egress',
        Buffer.concat([
          frame(1, 0x08 | 0x20, 1, padded(reqBlock.subarray(0, half), 3, true)), // HEADERS padded+priority, no END_HEADERS
          frame(9, 0x4, 1, reqBlock.subarray(half)), // CONTINUATION with END_HEADERS
          frame(0, 0x08, 1, padded(Buffer.from('hello '), 7, false)), // padded DATA
          frame(2, 0, 1, Buffer.from([0, 0, 0, 0, 20])), // PRIORITY
          frame(0, 0, 1, 'world'),
          frame(6, 0, 0, Buffer.alloc(8)), // PING
          frame(1, 0x5, 1, reqTrailers), // trailers end the request
        ]),
      ],
      [
        'ingress',
        Buffer.concat([
          frame(8, 0, 0, Buffer.from([0, 0, 1, 0])), // WINDOW_UPDATE
          frame(5, 0x4, 1, Buffer.concat([Buffer.from([0, 0, 0, 2]), pushBlock])), // PUSH_PROMISE of stream 2
          frame(1, 0x4, 1, resBlock),
          frame(0, 0x1, 1, 'created'),
          frame(1, 0x4, 2, pushRes),
          frame(0, 0x1, 2, 'body{}'),
          frame(0xfa, 0, 0, 'unknown extension frame'),
        ]),
      ],
    ])
    const r = run(records)
    expect(r.stats.protocolErrors).toBe(0)
    expect(r.stats.hpackFailures).toBe(0)
    const one = r.exchanges.find((x) => x.stream_id === 1)!
    expect(one).toMatchObject({ method: 'POST', path: '/upload?x=1', authority: 'h2.example', status: 201, incomplete: false })
    expect(bodyBytes(one.request!.body).toString()).toBe('hello world')
    expect(one.request!.trailers).toEqual([['x-req-trailer', 'done']])
    expect(one.request!.headers).toContainEqual(['x-long', 'v'.repeat(300)])
    expect(bodyBytes(one.response!.body).toString()).toBe('created')
    const pushed = r.exchanges.find((x) => x.stream_id === 2)!
    expect(pushed).toMatchObject({ method: 'GET', path: '/pushed.css', status: 200 })
    expect(bodyBytes(pushed.response!.body).toString()).toBe('body{}')
  })

  it('protocol errors resynchronise instead of throwing', () => {
    const c = newCompressor()
    c.write([
      { name: ':method', value: 'GET' },
      { name: ':scheme', value: 'https' },
      { name: ':path', value: '/ok' },
    ])
    const block = c.read()
    const records = synth([
      ['egress', Buffer.concat([H2_PREFACE, frame(4, 0, 0)])],
      ['egress', frame(3, 0, 1, Buffer.from([0, 0, 0]))], // RST_STREAM of the wrong length
      ['egress', Buffer.concat([frame(1, 0x5, 1, block), frame(6, 0, 0, Buffer.alloc(8))])],
      ['ingress', frame(4, 0, 0)],
    ])
    const r = run(records)
    expect(r.stats.parseErrors).toBe(0)
    expect(r.stats.protocolErrors).toBeGreaterThan(0)
    expect(r.diagnostics.some((d) => d.code === 'protocol_error' && d.protocol === '2')).toBe(true)
  })
})

describe('HPACK decoder', () => {
  it('decodes what a real encoder produced, across blocks with a shared dynamic table', () => {
    const c = newCompressor()
    const d = new HpackDecoder()
    const blocks = [
      [['x-a', '1'], ['x-b', 'two'], [':path', '/p']],
      [['x-a', '1'], ['x-b', 'two'], ['x-c', 'three']],
      [['x-c', 'three'], ['x-a', '1']],
    ]
    for (const b of blocks) {
      c.write(b.map(([name, value]) => ({ name: name!, value: value! })))
      const out = d.decode(c.read())
      expect(out.unknown).toBe(0)
      expect(out.headers).toEqual(b)
    }
  })

  it('a decoder joined mid-stream reports unknown fields and never guesses', () => {
    const c = newCompressor()
    c.write([{ name: 'x-secret', value: 'alpha' }])
    c.read() // missed by the observer
    c.write([
      { name: 'x-secret', value: 'alpha' }, // indexed: unknown to the observer
      { name: 'x-new', value: 'beta' }, // literal, inserted: known from now on
      { name: 'accept', value: '*/*' }, // static name
    ])
    const joined = new HpackDecoder(true)
    const out = joined.decode(c.read())
    expect(out.unknown).toBe(1)
    expect(out.headers).toEqual([
      ['x-new', 'beta'],
      ['accept', '*/*'],
    ])
    c.write([
      { name: 'x-new', value: 'beta' },
      { name: 'x-secret', value: 'alpha' },
    ])
    const out2 = joined.decode(c.read())
    expect(out2.headers).toEqual([['x-new', 'beta']]) // the entry inserted after joining is known
    expect(out2.unknown).toBe(1)
  })

  it('malformed blocks end with an error and make later dynamic references unknown', () => {
    const d = new HpackDecoder()
    const bad = d.decode(Buffer.from([0x40, 0x7f, 0xff, 0xff, 0xff, 0xff, 0x0f])) // literal with an impossible name length
    expect(bad.error).toBeTruthy()
    expect(d.incomplete).toBe(true)
    const ok = d.decode(Buffer.from([0x82])) // :method GET (static)
    expect(ok.headers).toEqual([[':method', 'GET']])
    const unknown = d.decode(Buffer.from([0xbe])) // dynamic index 62
    expect(unknown.unknown).toBe(1)
    expect(unknown.headers).toEqual([])
  })

  it('findFrameBoundary locates frames in unaligned bytes', () => {
    const bytes = Buffer.concat([Buffer.from('garbage-bytes'), frame(0, 0, 3, 'abc'), frame(8, 0, 0, Buffer.from([0, 0, 0, 1]))])
    expect(findFrameBoundary(bytes, []).at).toBe(13)
    expect(findFrameBoundary(Buffer.from('no frames here at all, just text'), []).at).toBe(-1)
  })
})
