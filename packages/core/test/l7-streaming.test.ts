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
  })
})
