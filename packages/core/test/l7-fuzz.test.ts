/**
 * Robustness: random bytes and damaged real captures, in random chunkings,
 * must never make the pipeline throw, hit an internal error, hang, or hold
 * more than the per-connection budget.
 */
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { H2_PREFACE } from '../src/l7/http2.js'
import { HttpPipeline, type HttpPipelineOptions } from '../src/l7/pipeline.js'
import type { CaptureRecord, Direction } from '../src/l7/record.js'
import { loadFixture, rechunk, rng } from './fixtures/captures/harness.js'

const OPTIONS: HttpPipelineOptions = {
  maxConnectionBytes: 512 * 1024,
  maxBodyBytes: 64 * 1024,
  maxHeaderBytes: 16 * 1024,
  reorderWindow: 4,
  detectBytes: 4096,
}

/** Runs records through a pipeline; returns what a robustness check needs. */
function exercise(records: CaptureRecord[], options: HttpPipelineOptions = OPTIONS) {
  const p = new HttpPipeline(options)
  let events = 0
  const check = (ev: unknown) => {
    events++
    JSON.stringify(ev) // must be serialisable
  }
  for (const t of ['http.request', 'http.response', 'http.exchange', 'http.stream_event', 'l7.diagnostic'] as const) p.on(t, check)
  const t0 = performance.now()
  let maxBuffered = 0
  for (const r of records) {
    p.push(r)
    maxBuffered = Math.max(maxBuffered, p.bufferedBytes(r.conn))
  }
  p.end()
  const ms = performance.now() - t0
  const s = p.stats
  expect(s.parseErrors, 'internal errors').toBe(0)
  expect(s.maxConnectionBuffered).toBeLessThanOrEqual(options.maxConnectionBytes ?? 4 * 1024 * 1024)
  expect(maxBuffered).toBeLessThanOrEqual(options.maxConnectionBytes ?? 4 * 1024 * 1024)
  expect(p.bufferedBytes()).toBe(0)
  expect(ms, 'run time').toBeLessThan(3000)
  return { events, stats: s }
}

interface Piece {
  conn: string
  dir: Direction
  data: Uint8Array
  gap: number | null
  skipSeq: boolean
  close: boolean
}

function toRecords(pieces: Piece[]): CaptureRecord[] {
  const seq = new Map<string, number>()
  let t = 1_000_000_000n
  return pieces.map((p) => {
    const k = `${p.conn}/${p.dir}`
    let s = seq.get(k) ?? 0
    if (p.skipSeq) s += 1
    seq.set(k, s + 1)
    t += 1_000_000n
    const r: CaptureRecord = { time: 't', ktime: t, pid: 1, tid: 1, comm: 'fuzz', conn: p.conn, direction: p.dir, seq: s, data: p.data }
    if (p.gap !== null) r.gap = p.gap
    if (p.close) r.close = true
    return r
  })
}

const te = new TextEncoder()
/** Byte strings that look like protocol, so random input reaches deep parser states. */
const tokens = fc.constantFrom(
  'GET / HTTP/1.1\r\n', 'POST /x HTTP/1.1\r\n', 'HEAD / HTTP/1.0\r\n', 'HTTP/1.1 200 OK\r\n', 'HTTP/1.1 100 Continue\r\n\r\n',
  'HTTP/1.1 204 No Content\r\n', 'HTTP/1.1 101 Switching Protocols\r\n', 'Host: a\r\n', 'Content-Length: 5\r\n', 'Content-Length: 99999999\r\n',
  'Transfer-Encoding: chunked\r\n', 'Content-Encoding: gzip\r\n', 'Content-Type: text/event-stream\r\n', 'Content-Type: application/x-ndjson\r\n',
  'Expect: 100-continue\r\n', '\r\n', '\n', '5\r\nhello\r\n', '0\r\n\r\n', 'ffffffff\r\n', 'X-T: 1\r\n\r\n', 'data: x\n\n', '{"a":1}\n',
  'Content-Length: -1\r\n', 'Content-Length: 3, 4\r\n', ' folded\r\n',
)
const h2frame = fc
  .record({
    type: fc.integer({ min: 0, max: 11 }),
    flags: fc.integer({ min: 0, max: 255 }),
    sid: fc.oneof(fc.constant(0), fc.constant(1), fc.constant(3), fc.integer({ min: 0, max: 0x7fffffff })),
    payload: fc.uint8Array({ maxLength: 64 }),
    lie: fc.option(fc.integer({ min: 0, max: 0xffffff }), { freq: 5 }),
  })
  .map(({ type, flags, sid, payload, lie }) => {
    const b = Buffer.alloc(9 + payload.length)
    b.writeUIntBE(lie ?? payload.length, 0, 3)
    b[3] = type
    b[4] = flags
    b.writeUInt32BE(sid >>> 0, 5)
    b.set(payload, 9)
    return new Uint8Array(b)
  })
const chunk = fc.oneof(
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 3000 }) },
  { weight: 3, arbitrary: fc.array(tokens, { maxLength: 12 }).map((a) => te.encode(a.join(''))) },
  { weight: 3, arbitrary: fc.array(h2frame, { maxLength: 6 }).map((a) => new Uint8Array(Buffer.concat(a))) },
  { weight: 1, arbitrary: fc.constant(new Uint8Array(H2_PREFACE)) },
)
const piece: fc.Arbitrary<Piece> = fc.record({
  conn: fc.constantFrom('a', 'b', 'c'),
  dir: fc.constantFrom<Direction>('egress', 'ingress'),
  data: chunk,
  gap: fc.option(fc.integer({ min: 0, max: 100_000 }), { freq: 8 }),
  skipSeq: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
  close: fc.integer({ min: 0, max: 19 }).map((n) => n === 0),
})

describe('fuzz', () => {
  it('random and protocol-shaped bytes on several connections', () => {
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 40 }), (pieces) => {
        exercise(toRecords(pieces))
      }),
      { numRuns: 400, seed: 0x5eed },
    )
  })

  describe('damaged real captures', () => {
    const names = ['h1-keepalive', 'h1-chunked', 'h1-sse', 'h1-compressed', 'h1-continue', 'h2-mixed', 'h2-sse']
    const fixtures = new Map<string, CaptureRecord[]>()
    beforeAll(async () => {
      for (const n of names) fixtures.set(n, await loadFixture(n))
    })

    const mutation = fc.record({
      kind: fc.constantFrom('flip', 'insert', 'delete', 'truncate', 'drop', 'dup', 'swap', 'gap', 'zero'),
      at: fc.nat(),
      off: fc.nat(),
      len: fc.integer({ min: 1, max: 300 }),
      byte: fc.integer({ min: 0, max: 255 }),
    })

    function mutate(src: CaptureRecord[], muts: { kind: string; at: number; off: number; len: number; byte: number }[]): CaptureRecord[] {
      const recs = src.map((r) => ({ ...r, data: new Uint8Array(r.data) }))
      for (const m of muts) {
        if (recs.length === 0) break
        const i = m.at % recs.length
        const r = recs[i]!
        const off = r.data.length ? m.off % r.data.length : 0
        switch (m.kind) {
          case 'flip':
            if (r.data.length) r.data[off] = m.byte
            break
          case 'zero':
            r.data.fill(0, off, off + m.len)
            break
          case 'insert':
            r.data = new Uint8Array(Buffer.concat([r.data.subarray(0, off), Buffer.alloc(m.len, m.byte), r.data.subarray(off)]))
            break
          case 'delete':
            r.data = new Uint8Array(Buffer.concat([r.data.subarray(0, off), r.data.subarray(off + m.len)]))
            break
          case 'truncate':
            r.data = r.data.subarray(0, off)
            break
          case 'drop':
            recs.splice(i, 1) // its seq stays missing
            break
          case 'dup':
            recs.splice(i, 0, { ...r })
            break
          case 'swap':
            if (i + 1 < recs.length) [recs[i], recs[i + 1]] = [recs[i + 1]!, recs[i]!]
            break
          case 'gap':
            r.gap = m.len * m.byte
            break
        }
      }
      return recs
    }

    it('mutated captures in random chunkings', () => {
      fc.assert(
        fc.property(
          fc.constantFrom(...names),
          fc.array(mutation, { minLength: 1, maxLength: 8 }),
          fc.integer({ min: 1, max: 2000 }),
          fc.integer(),
          fc.integer({ min: 0, max: 40 }),
          (name, muts, maxPiece, seed, startAt) => {
            let recs = fixtures.get(name)!
            recs = recs.slice(Math.min(startAt, recs.length - 1) * (startAt % 3 === 0 ? 1 : 0)) // sometimes joined mid-stream
            const chunked = rechunk(recs, rng(seed), maxPiece)
            exercise(mutate(chunked, muts))
          },
        ),
        { numRuns: 500, seed: 0xbadc0de },
      )
    })

    it('undamaged captures in random chunkings give the same number of exchanges', () => {
      for (const name of names) {
        const recs = fixtures.get(name)!
        const base = exercise(recs, {}).stats.exchanges
        for (let s = 0; s < 5; s++) expect(exercise(rechunk(recs, rng(s * 31 + 1), 1 + s * 97), {}).stats.exchanges).toBe(base)
      }
    })

    it('tight budgets: memory stays under the cap, drops are counted', () => {
      const recs = fixtures.get('h2-mixed')!
      const { stats } = exercise(recs, { maxConnectionBytes: 256 * 1024, maxHeaderBytes: 8 * 1024, maxBodyBytes: 1 << 20 })
      expect(stats.exchanges).toBe(11)
    })
  })
})

describe('cost stays linear in the input, whatever the record sizes', () => {
  function oneByteRecords(conn: string, parts: [Direction, Buffer][]): CaptureRecord[] {
    const out: Piece[] = []
    for (const [dir, b] of parts) for (let i = 0; i < b.length; i++) out.push({ conn, dir, data: b.subarray(i, i + 1), gap: null, skipSeq: false, close: false })
    return toRecords(out)
  }
  const cases: [string, [Direction, Buffer][]][] = [
    ['a 60 KiB HTTP/1 header section', [['egress', Buffer.from(`GET / HTTP/1.1\r\nX-Big: ${'a'.repeat(60_000)}\r\n\r\n`)]]],
    ['200 KiB of a protocol that is not HTTP', [['egress', Buffer.alloc(200_000, 0x41)]]],
    ['HTTP/1 resynchronising over 200 KiB without a line end', [['egress', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')], ['ingress', Buffer.concat([Buffer.from('garbage'), Buffer.alloc(200_000, 0x42)])]]],
    ['HTTP/2 resynchronising over 100 KiB of zeros', [['egress', Buffer.concat([H2_PREFACE, Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0, 0xff, 0xff]), Buffer.alloc(100_000)])]]],
    ['an HTTP/2 header block of 60 KiB', [['egress', Buffer.concat([H2_PREFACE, Buffer.from([0, 0xea, 0x60, 1, 5, 0, 0, 0, 1]), Buffer.alloc(60_000, 0x82)])]]],
  ]
  for (const [name, parts] of cases) {
    it(name, () => {
      const records = oneByteRecords('lin', parts)
      const t0 = performance.now()
      exercise(records, { ...OPTIONS, maxHeaderBytes: 64 * 1024, maxConnectionBytes: 4 * 1024 * 1024, detectBytes: 64 * 1024 })
      expect(performance.now() - t0).toBeLessThan(4000)
    })
  }
})
