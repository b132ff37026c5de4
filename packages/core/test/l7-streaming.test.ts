import zlib from 'node:zlib'
import { describe, expect, it } from 'vitest'
import type { HttpPipelineEvent, HttpStreamEvent } from '../src/l7/events.js'
import { HttpPipeline } from '../src/l7/pipeline.js'
import type { CaptureRecord } from '../src/l7/record.js'
import { type StreamingEvent, StreamingBodyParser, streamingKind } from '../src/l7/streaming.js'
import { ndjsonLines, sseEvents, sseWire } from './fixtures/captures/content.js'
import { bodyBytes, loadFixture, rechunk, renumber, rng, run } from './fixtures/captures/harness.js'

/** Pushes records one by one, noting how many ingress bytes had been pushed when each event came out. */
function feedTracked(records: CaptureRecord[]) {
  const p = new HttpPipeline()
  /** ingressBefore/ingressBytes: ingress bytes pushed before / including the record whose push emitted the event */
  const events: { ev: HttpPipelineEvent; ingressBefore: number; ingressBytes: number; push: number }[] = []
  let ingress = 0
  let before = 0
  let push = 0
  for (const t of ['http.request', 'http.response', 'http.exchange', 'http.stream_event', 'l7.diagnostic'] as const) {
    p.on(t, (ev: HttpPipelineEvent) => events.push({ ev, ingressBefore: before, ingressBytes: ingress, push }))
  }
  const raw: Buffer[] = []
  for (const r of records) {
    before = ingress
    if (r.direction === 'ingress') {
      ingress += r.data.length
      raw.push(Buffer.from(r.data))
    }
    push++
    p.push(r)
  }
  p.end()
  return { events, raw: Buffer.concat(raw), stats: p.stats }
}

describe('streaming bodies', () => {
  it('SSE: 200 events, each emitted the moment its last byte arrives, before the exchange completes', async () => {
    const records = rechunk(await loadFixture('h1-sse'), rng(42), 9) // small pieces, boundaries anywhere
    const { events, raw, stats } = feedTracked(records)
    expect(stats.parseErrors).toBe(0)
    const stream = events.filter((e) => e.ev.type === 'http.stream_event')
    const expected = sseEvents()
    expect(stream).toHaveLength(200)
    const exchangeAt = events.findIndex((e) => e.ev.type === 'http.exchange')
    let cursor = 0
    stream.forEach(({ ev, ingressBefore, ingressBytes }, k) => {
      const s = ev as HttpStreamEvent
      expect(s.index).toBe(k)
      expect(s.format).toBe('sse')
      expect(s.direction).toBe('response')
      expect(s.data).toBe(expected[k]!.data)
      expect(s.event).toBe(expected[k]!.event)
      expect(s.sse_id).toBe(expected[k]!.id)
      // emitted while the record holding the last byte of the event was pushed
      const wire = sseWire(expected[k]!)
      const end = raw.indexOf(wire, cursor, 'latin1') + wire.length
      cursor = end
      expect(end).toBeGreaterThan(ingressBefore)
      expect(end).toBeLessThanOrEqual(ingressBytes)
    })
    expect(events.indexOf(stream[199]!)).toBeLessThan(exchangeAt)
    // events were spread over the stream, not delivered in a burst at the end
    const pushes = new Set(stream.map((e) => e.push))
    expect(pushes.size).toBeGreaterThan(150)
    const x = events[exchangeAt]!.ev
    if (x.type !== 'http.exchange') throw new Error('unreachable')
    expect(x.stream_events).toBe(200)
    expect(bodyBytes(x.response!.body).toString()).toBe(expected.map(sseWire).join(''))
    expect(stream.every((e) => (e.ev as HttpStreamEvent).id === x.id)).toBe(true)
  })

  it('NDJSON: one event per line as lines complete', async () => {
    const records = rechunk(await loadFixture('h1-ndjson'), rng(7), 5)
    const { events, raw } = feedTracked(records)
    const stream = events.filter((e) => e.ev.type === 'http.stream_event')
    const lines = ndjsonLines()
    expect(stream.map((e) => (e.ev as HttpStreamEvent).data)).toEqual(lines)
    let cursor = 0
    stream.forEach(({ ev, ingressBefore, ingressBytes }, k) => {
      expect((ev as HttpStreamEvent).format).toBe('ndjson')
      const end = raw.indexOf(lines[k] + '\n', cursor, 'latin1') + lines[k]!.length + 1
      cursor = end
      expect(end).toBeGreaterThan(ingressBefore)
      expect(end).toBeLessThanOrEqual(ingressBytes)
    })
    const exchangeAt = events.findIndex((e) => e.ev.type === 'http.exchange')
    expect(events.indexOf(stream[stream.length - 1]!)).toBeLessThan(exchangeAt)
  })

  it('SSE over HTTP/2', async () => {
    const r = run(await loadFixture('h2-sse'))
    expect(r.streamEvents.map((e) => e.data)).toEqual(sseEvents().slice(0, 20).map((e) => e.data))
    expect(r.streamEvents.every((e) => e.protocol === '2' && e.stream_id === 1)).toBe(true)
  })

  it('a lost record (one whole chunk): streaming continues after the gap, marked after_gap', async () => {
    const records = await loadFixture('h1-sse')
    const i = records.findIndex((r, k) => k > 10 && r.direction === 'ingress' && Buffer.from(r.data).includes('"i":50,'))
    const lost = records[i]!
    const damaged = renumber([...records.slice(0, i), { ...records[i + 1]!, gap: lost.data.length }, ...records.slice(i + 2)])
    const r = run(damaged)
    expect(r.stats.parseErrors).toBe(0)
    expect(r.stats.protocolErrors).toBe(0)
    const ids = r.streamEvents.map((e) => (JSON.parse(e.data.startsWith('{') ? e.data : '{}') as { i?: number }).i)
    expect(ids).toContain(49)
    expect(ids).not.toContain(50) // lost
    expect(ids).not.toContain(51) // after a gap the next event boundary is not known: skipped, never half-emitted
    expect(ids).toContain(52)
    expect(ids).toContain(199)
    expect(r.streamEvents.filter((e) => e.after_gap).map((e) => JSON.parse(e.data).i)).toEqual([52])
    const x = r.exchanges[0]!
    expect(x.gap).toBe(true)
    expect(x.incomplete).toBe(true)
    expect(x.response!.body!.gap).toBe(true)
  })

  it('after a gap that breaks the framing, the half-lost event is not emitted and the exchange ends incomplete', async () => {
    const records = await loadFixture('h1-sse')
    // record 60 carries one whole event chunk; replace it by a gap of its size
    const i = records.findIndex((r, k) => k > 10 && r.direction === 'ingress' && Buffer.from(r.data).includes('"i":50,'))
    expect(i).toBeGreaterThan(0)
    const lost = records[i]!
    const half = Math.floor(lost.data.length / 2)
    const damaged = renumber([
      ...records.slice(0, i),
      { ...lost, data: lost.data.subarray(0, half) },
      { ...lost, data: new Uint8Array(0), gap: lost.data.length - half },
      ...records.slice(i + 1),
    ])
    const r = run(damaged)
    expect(r.stats.parseErrors).toBe(0)
    const data = r.streamEvents.map((e) => (JSON.parse(e.data.startsWith('{') ? e.data : '{}') as { i?: number }).i)
    expect(data).toEqual(Array.from({ length: 50 }, (_, k) => (k === 7 ? undefined : k)))
    // the gap ran past the chunk into its framing: the exchange ends there, incomplete
    const x = r.exchanges[0]!
    expect(x.incomplete).toBe(true)
    expect(x.gap).toBe(true)
    expect(r.stats.parseErrors).toBe(0)
  })

  it('compressed event streams are parsed after decoding, at the end of the body', () => {
    const wire = zlib.gzipSync(Buffer.from(sseEvents().slice(0, 5).map(sseWire).join('')))
    let t = 1n
    const mk = (direction: 'egress' | 'ingress', data: Buffer): CaptureRecord => ({
      time: 't',
      ktime: t++,
      pid: 1,
      tid: 1,
      comm: 'c',
      conn: 'gz',
      direction,
      seq: 0,
      data,
    })
    const records = renumber([
      mk('egress', Buffer.from('GET /s HTTP/1.1\r\nHost: h\r\n\r\n')),
      mk('ingress', Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\nContent-Length: ${wire.length}\r\n\r\n`)),
      mk('ingress', wire),
    ])
    const r = run(records)
    expect(r.streamEvents.map((e) => e.data)).toEqual(sseEvents().slice(0, 5).map((e) => e.data))
  })
})

describe('StreamingBodyParser', () => {
  const text = sseEvents()
    .slice(0, 12)
    .map(sseWire)
    .join('')
    .replace('data: {"i":3', ': a comment\r\ndata: {"i":3')

  function parseAll(kind: 'sse' | 'ndjson', pieces: string[]): StreamingEvent[] {
    const out: StreamingEvent[] = []
    const p = new StreamingBodyParser(kind, (e) => out.push(e))
    for (const s of pieces) p.push(Buffer.from(s))
    p.end()
    return out
  }

  it('SSE: identical events whatever the split point (UTF-8 sequences split too)', () => {
    const withUtf8 = text + 'data: ünïcödé ✓ 🎉\n\n'
    const bytes = Buffer.from(withUtf8)
    const base = parseAll('sse', [withUtf8])
    expect(base).toHaveLength(13)
    expect(base[12]!.data).toBe('ünïcödé ✓ 🎉')
    for (let at = 1; at < bytes.length; at++) {
      const out: StreamingEvent[] = []
      const p = new StreamingBodyParser('sse', (e) => out.push(e))
      p.push(bytes.subarray(0, at))
      p.push(bytes.subarray(at))
      p.end()
      expect(out).toEqual(base)
    }
  })

  it('NDJSON: trailing line without newline is an event at the end; blank lines are skipped; CRLF is trimmed', () => {
    expect(parseAll('ndjson', ['{"a":1}\r\n\n{"b"', ':2}\n{"c":3}'])).toEqual([{ data: '{"a":1}' }, { data: '{"b":2}' }, { data: '{"c":3}' }])
  })

  it('over-long events are dropped and counted, parsing continues', () => {
    const out: StreamingEvent[] = []
    const p = new StreamingBodyParser('ndjson', (e) => out.push(e), { maxEventBytes: 10 })
    p.push(Buffer.from('{"ok":1}\n' + 'x'.repeat(50)))
    p.push(Buffer.from('y'.repeat(50) + '\n{"ok":2}\n'))
    p.end()
    expect(out.map((e) => e.data)).toEqual(['{"ok":1}', '{"ok":2}'])
    expect(p.dropped).toBe(1)
    const sse: StreamingEvent[] = []
    const q = new StreamingBodyParser('sse', (e) => sse.push(e), { maxEventBytes: 20 })
    q.push(Buffer.from(`data: short\n\ndata: ${'z'.repeat(100)}\n\ndata: after\n\n`))
    q.end()
    expect(sse.map((e) => e.data)).toEqual(['short', 'after'])
    expect(q.dropped).toBe(1)
  })

  it('content types', () => {
    expect(streamingKind('text/event-stream; charset=utf-8')).toBe('sse')
    expect(streamingKind('application/x-ndjson')).toBe('ndjson')
    expect(streamingKind('application/jsonl')).toBe('ndjson')
    expect(streamingKind('application/json')).toBeUndefined()
    expect(streamingKind(undefined)).toBeUndefined()
    expect(streamingKind('application/vnd.amazon.eventstream')).toBe('eventstream')
    expect(streamingKind('application/json; charset=UTF-8', '/v1beta/models/gemini-pro:streamGenerateContent')).toBe('json-array')
    expect(streamingKind('application/json', '/v1/projects/p/locations/l/publishers/google/models/g:streamGenerateContent?alt=json')).toBe('json-array')
    expect(streamingKind('application/json', '/v1beta/models/gemini-pro:generateContent')).toBeUndefined()
    expect(streamingKind('application/json', '/v1beta/models/g:streamGenerateContentX')).toBeUndefined()
    expect(streamingKind('application/json', '/x:streamGenerateContent', false)).toBeUndefined()
  })
})

/** One AWS event stream frame, built by the spec (the consumers decode with @smithy/eventstream-codec). */
function esFrame(headers: Record<string, string>, payload: string | Buffer): Buffer {
  const hs: Buffer[] = []
  for (const [k, v] of Object.entries(headers)) {
    const name = Buffer.from(k)
    const value = Buffer.from(v)
    const h = Buffer.alloc(1 + name.length + 1 + 2 + value.length)
    h[0] = name.length
    name.copy(h, 1)
    h[1 + name.length] = 7 // string
    h.writeUInt16BE(value.length, 2 + name.length)
    value.copy(h, 4 + name.length)
    hs.push(h)
  }
  const hb = Buffer.concat(hs)
  const pb = Buffer.isBuffer(payload) ? payload : Buffer.from(payload)
  const total = 12 + hb.length + pb.length + 4
  const f = Buffer.alloc(total)
  f.writeUInt32BE(total, 0)
  f.writeUInt32BE(hb.length, 4)
  f.writeUInt32BE(zlib.crc32(f.subarray(0, 8)), 8)
  hb.copy(f, 12)
  pb.copy(f, 12 + hb.length)
  f.writeUInt32BE(zlib.crc32(f.subarray(0, total - 4)), total - 4)
  return f
}

function bedrockFrames(n: number): Buffer[] {
  return Array.from({ length: n }, (_, i) =>
    esFrame(
      { ':event-type': 'chunk', ':content-type': 'application/json', ':message-type': 'event' },
      JSON.stringify({ bytes: Buffer.from(JSON.stringify({ type: 'content_block_delta', delta: { text: `tok${i} ` } })).toString('base64') }),
    ),
  )
}

/** A Gemini-style streamed JSON array: elements pretty-printed, separated by "\r\n,". */
const geminiElements = [
  { candidates: [{ content: { parts: [{ text: 'Hel "lo" [not] {an} \\ array' }], role: 'model' }, index: 0 }] },
  { candidates: [{ content: { parts: [{ text: 'ünïcödé ✓ 🎉' }, { text: ',\n' }], role: 'model' } }], nested: [[1, 2], [3, [4]]] },
  { candidates: [{ finishReason: 'STOP' }], usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 7 } },
]
const geminiBody = `[${geminiElements.map((e) => JSON.stringify(e, null, 2)).join('\r\n,')}\r\n]`

let kt = 1n
function rec(conn: string, direction: 'egress' | 'ingress', data: Buffer | string): CaptureRecord {
  return { time: 't', ktime: kt++, pid: 1, tid: 1, comm: 'c', conn, direction, seq: 0, data: Buffer.from(data) }
}

/** An HTTP/1 exchange whose response body is split in two records at `at` (or cut in 1-byte records when at < 0). */
function exchangeRecords(conn: string, path: string, contentType: string, body: Buffer, at: number, serverSide = false): CaptureRecord[] {
  const req = serverSide ? 'ingress' : 'egress'
  const res = serverSide ? 'egress' : 'ingress'
  const head = `HTTP/1.1 200 OK\r\nContent-Type: ${contentType}\r\nContent-Length: ${body.length}\r\n\r\n`
  const pieces = at < 0 ? [...body].map((b) => Buffer.from([b])) : [body.subarray(0, at), body.subarray(at)].filter((b) => b.length)
  return renumber([
    rec(conn, req, `POST ${path} HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}`),
    rec(conn, res, head),
    ...pieces.map((p) => rec(conn, res, p)),
  ])
}

describe('eventstream (application/vnd.amazon.eventstream)', () => {
  const frames = bedrockFrames(4)
  const body = Buffer.concat(frames)
  const ct = 'application/vnd.amazon.eventstream'

  it('one event per whole frame, data = base64 of the frame, the same at every split position and in 1-byte records', () => {
    const expected = frames.map((f) => f.toString('base64'))
    for (let at = -1; at < body.length; at++) {
      const r = run(exchangeRecords('es', '/model/m/invoke-with-response-stream', ct, body, at))
      expect(r.streamEvents.map((e) => e.data)).toEqual(expected)
      expect(r.streamEvents.every((e) => e.format === 'eventstream' && e.direction === 'response' && e.side === 'client')).toBe(true)
      expect(r.diagnostics).toEqual([])
      expect(r.exchanges[0]!.stream_events).toBe(4)
    }
  })

  it('each frame is emitted as soon as its last byte arrives', () => {
    const out: StreamingEvent[] = []
    const p = new StreamingBodyParser('eventstream', (e) => out.push(e))
    p.push(Buffer.concat([frames[0]!, frames[1]!.subarray(0, 10)]))
    expect(out).toHaveLength(1)
    p.push(frames[1]!.subarray(10))
    expect(out).toHaveLength(2)
  })

  it('garbage, a bad CRC and an oversize frame are dropped, counted and reported; the frames around them still come out', () => {
    const big = esFrame({ ':event-type': 'chunk' }, 'x'.repeat(5000))
    const badCrc = Buffer.from(frames[1]!)
    badCrc[badCrc.length - 6] ^= 0xff // payload byte: the message CRC no longer matches
    const wire = Buffer.concat([frames[0]!, Buffer.from('garbage that is not a frame at all'), frames[1]!, big, badCrc, frames[2]!])
    for (const at of [-1, 7, 40, 300]) {
      const r = run(exchangeRecords('es-bad', '/x', ct, wire, at), { maxBodyBytes: 4096 })
      expect(r.streamEvents.map((e) => e.data)).toEqual([frames[0]!, frames[1]!, frames[2]!].map((f) => f.toString('base64')))
      expect(r.stats.streamEventsDropped).toBe(3)
      expect(r.exchanges[0]!.stream_events_dropped).toBe(3)
      const drops = r.diagnostics.filter((d) => d.code === 'stream_event_dropped')
      expect(drops.map((d) => d.message)).toEqual([
        expect.stringContaining('bad prelude'),
        expect.stringContaining('exceeds the 4096 byte limit'),
        expect.stringContaining('bad message CRC'),
      ])
      expect(r.stats.parseErrors).toBe(0)
    }
  })

  it('after a gap, the next frame is found by its prelude CRC and marked after_gap', () => {
    const out: StreamingEvent[] = []
    const p = new StreamingBodyParser('eventstream', (e) => out.push(e))
    p.push(frames[0]!)
    p.push(frames[1]!.subarray(0, 20))
    p.gap()
    p.push(Buffer.concat([frames[2]!.subarray(30), frames[3]!]))
    p.end()
    expect(out).toEqual([{ data: frames[0]!.toString('base64') }, { data: frames[3]!.toString('base64'), after_gap: true }])
    expect(p.dropped).toBe(0)
  })

  it('a large frame arriving byte by byte is collected in linear time (pieces are joined once)', () => {
    const big = esFrame({ ':event-type': 'chunk' }, Buffer.alloc(300 * 1024, 0x61))
    const out: StreamingEvent[] = []
    const p = new StreamingBodyParser('eventstream', (e) => out.push(e))
    for (let i = 0; i < big.length; i++) p.push(big.subarray(i, i + 1)) // quadratic joining would copy ~45 GB here
    expect(out).toEqual([{ data: big.toString('base64') }])
  })

  it('a body cut inside a frame counts the partial frame as dropped; random bytes never throw', () => {
    const p = new StreamingBodyParser('eventstream', () => {})
    p.push(body.subarray(0, body.length - 3))
    p.end()
    expect(p.events).toBe(3)
    expect(p.dropped).toBe(1)
    const rand = rng(5)
    const q = new StreamingBodyParser('eventstream', () => {})
    for (let i = 0; i < 200; i++) q.push(Buffer.from(Array.from({ length: Math.floor(rand() * 64) }, () => Math.floor(rand() * 256))))
    q.end()
    expect(q.events).toBe(0)
  })
})

describe('json-array (Gemini streamGenerateContent)', () => {
  const path = '/v1beta/models/gemini-2.0-flash:streamGenerateContent?key=k'
  const body = Buffer.from(geminiBody)
  const expected = geminiElements.map((e) => JSON.stringify(e, null, 2))

  it('one event per top-level element, the same at every split position (UTF-8 split too) and in 1-byte records', () => {
    for (let at = -1; at < body.length; at++) {
      const r = run(exchangeRecords('ja', path, 'application/json; charset=UTF-8', body, at))
      expect(r.streamEvents.map((e) => e.data)).toEqual(expected)
      expect(r.streamEvents.every((e) => e.format === 'json-array')).toBe(true)
      expect(r.diagnostics).toEqual([])
    }
  })

  it('an element is emitted when its closing brace arrives, not when the next separator does', () => {
    const out: StreamingEvent[] = []
    const p = new StreamingBodyParser('json-array', (e) => out.push(e))
    p.push(Buffer.from('[{"a":[1,{"b":"}"}]}'))
    expect(out).toEqual([{ data: '{"a":[1,{"b":"}"}]}' }])
    p.push(Buffer.from('\r\n,"s\\"]",12, true ,null]'))
    p.end()
    expect(out.map((e) => e.data)).toEqual(['{"a":[1,{"b":"}"}]}', '"s\\"]"', '12', 'true', 'null'])
  })

  it('plain application/json is one document: only :streamGenerateContent paths (or the jsonArrayPaths option) stream', () => {
    expect(run(exchangeRecords('j1', '/v1beta/models/m:generateContent', 'application/json', body, 10)).streamEvents).toEqual([])
    expect(run(exchangeRecords('j2', path, 'application/json', body, 10), { jsonArrayPaths: false }).streamEvents).toEqual([])
    const custom = run(exchangeRecords('j3', '/feed', 'application/json', body, 10), { jsonArrayPaths: /^\/feed$/g })
    expect(custom.streamEvents.map((e) => e.data)).toEqual(expected)
    // an error answered as an object is not an array: no events, nothing dropped, the body is still whole
    const err = run(exchangeRecords('j4', path, 'application/json', Buffer.from('{"error":{"code":400}}'), 5))
    expect(err.streamEvents).toEqual([])
    expect(err.stats.streamEventsDropped).toBe(0)
    expect(bodyBytes(err.exchanges[0]!.response!.body).toString()).toBe('{"error":{"code":400}}')
  })

  it('over-long elements are dropped and reported; after a gap the scanner resumes at the next "\\n," separator', () => {
    const out: StreamingEvent[] = []
    const drops: string[] = []
    const p = new StreamingBodyParser('json-array', (e) => out.push(e), { maxEventBytes: 40, onDrop: (r) => drops.push(r) })
    p.push(Buffer.from(`[{"a":1}\r\n,{"long":"${'x'.repeat(30)}`))
    p.push(Buffer.from(`${'y'.repeat(30)}"}\r\n,{"b":2}\r\n,{"c":[`))
    p.gap()
    p.push(Buffer.from('1,2]}\r\n,{"d":4}\r\n]'))
    p.end()
    expect(out).toEqual([{ data: '{"a":1}' }, { data: '{"b":2}' }, { data: '{"d":4}', after_gap: true }])
    expect(drops).toEqual([expect.stringContaining('longer than 40')])
    expect(p.dropped).toBe(1)
  })

  it('a body cut inside an element counts it as dropped', () => {
    const p = new StreamingBodyParser('json-array', () => {})
    p.push(body.subarray(0, body.length - 10))
    p.end()
    expect(p.events).toBe(2)
    expect(p.dropped).toBe(1)
  })
})

describe('side: the capturing process is the client or the server', () => {
  it('requests on egress → client; requests on ingress → server', () => {
    const body = Buffer.from('{"a":1}\n')
    const c = run(exchangeRecords('side-c', '/x', 'application/x-ndjson', body, 3))
    const s = run(exchangeRecords('side-s', '/x', 'application/x-ndjson', body, 3, true))
    expect(c.events.filter((e) => e.type !== 'l7.diagnostic').map((e) => (e as HttpStreamEvent).side)).toEqual(['client', 'client', 'client', 'client'])
    expect(s.events.filter((e) => e.type !== 'l7.diagnostic').map((e) => (e as HttpStreamEvent).side)).toEqual(['server', 'server', 'server', 'server'])
  })

  it('HTTP/2 from real traffic is client side', async () => {
    const r = run(await loadFixture('h2-sse'))
    expect(r.events.filter((e) => e.type !== 'l7.diagnostic').every((e) => (e as HttpStreamEvent).side === 'client')).toBe(true)
  })
})
