import { afterEach, describe, expect, it } from 'vitest'
import { ClosedError, InvalidArgumentError } from '../src/errors.js'
import type { HttpExchangeEvent, HttpPipelineEvent } from '../src/l7/events.js'
import { Http1Connection } from '../src/l7/http1.js'
import { HttpPipeline } from '../src/l7/pipeline.js'
import { replayCapture } from '../src/l7/replay.js'
import type { CaptureRecord } from '../src/l7/record.js'
import { loadFixture, run } from './fixtures/captures/harness.js'

const originalFeed = Http1Connection.prototype.feed
afterEach(() => {
  Http1Connection.prototype.feed = originalFeed
})

function withConn(records: CaptureRecord[], conn: string): CaptureRecord[] {
  return records.map((r) => ({ ...r, conn }))
}

describe('HttpPipeline', () => {
  it('validates options and records; refuses records after end()', async () => {
    expect(() => new HttpPipeline({ maxBodyBytes: -1 })).toThrow(InvalidArgumentError)
    expect(() => new HttpPipeline({ maxConnectionBytes: 1000 })).toThrow(/maxConnectionBytes/)
    expect(() => new HttpPipeline({ redact: 'yes' as unknown as boolean })).toThrow(InvalidArgumentError)
    expect(() => new HttpPipeline({ scheme: 5 as unknown as string })).toThrow(/scheme must be a URL scheme/)
    const p = new HttpPipeline()
    expect(() => p.expireIdle(5 as unknown as bigint)).toThrow(/nowKtime must be a bigint/)
    for (const lost of [Number.NaN, -5, 1.5]) expect(() => p.closeConnection('c', lost)).toThrow(/lostBytes must be an integer >= 0/)
    expect(() => replayCapture(42 as unknown as string)).toThrow(/a capture source must be a file path or an async iterable/)
    const [rec] = await loadFixture('h1-pipelining')
    expect(() => p.push({ ...rec!, data: 'text' as unknown as Uint8Array })).toThrow(InvalidArgumentError)
    expect(() => p.push({ ...rec!, ktime: 1 as unknown as bigint })).toThrow(InvalidArgumentError)
    p.end()
    expect(() => p.push(rec!)).toThrow(ClosedError)
  })

  it('tracks several connections independently, with stats', async () => {
    const a = withConn(await loadFixture('h1-keepalive'), 'A')
    const b = withConn(await loadFixture('h2-mixed'), 'B')
    // interleave the two connections record by record
    const mixed: CaptureRecord[] = []
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      if (a[i]) mixed.push(a[i]!)
      if (b[i]) mixed.push(b[i]!)
    }
    const r = run(mixed)
    expect(r.exchanges.filter((x) => x.conn === 'A')).toHaveLength(7)
    expect(r.exchanges.filter((x) => x.conn === 'B')).toHaveLength(11)
    expect(r.stats).toMatchObject({
      records: mixed.length,
      connections: 0,
      connectionsTotal: 2,
      connectionsClosed: 2,
      http1Connections: 1,
      http2Connections: 1,
      exchanges: 18,
      parseErrors: 0,
    })
    expect(r.stats.bytes).toBe(mixed.reduce((n, x) => n + x.data.length, 0))
  })

  it('maxConnections evicts the least recently active connection', async () => {
    const base = await loadFixture('h1-pipelining')
    const r = run([...withConn(base.slice(0, 1), 'one'), ...withConn(base.slice(0, 1), 'two'), ...withConn(base.slice(0, 1), 'three')], {
      maxConnections: 2,
    })
    expect(r.stats.connectionsEvicted).toBe(1)
    const first = r.exchanges.find((x) => x.conn === 'one')!
    expect(first.path).toBe('/first')
    expect(first.incomplete).toBe(true)
  })

  it('an internal error is counted, reported, and the connection starts over; repeated errors drop it', async () => {
    const records = await loadFixture('h1-keepalive')
    let calls = 0
    Http1Connection.prototype.feed = function (this: Http1Connection, ...args: Parameters<Http1Connection['feed']>) {
      if (++calls === 3) throw new Error('injected fault')
      return originalFeed.apply(this, args)
    }
    const r = run(records)
    expect(r.stats.parseErrors).toBe(1)
    const d = r.diagnostics.find((e) => e.code === 'internal_error')!
    expect(d.level).toBe('error')
    expect(d.message).toMatch(/injected fault/)
    expect(d.conn).toBe(records[0]!.conn)
    // after the reset, later exchanges are still parsed
    expect(r.exchanges.some((x) => x.path === '/missing' && x.status === 404)).toBe(true)

    Http1Connection.prototype.feed = function () {
      throw new Error('always broken')
    }
    const dropped = run(records)
    expect(dropped.stats.parseErrors).toBe(3)
    expect(dropped.stats.connectionsDropped).toBe(1)
    expect(dropped.diagnostics.some((e) => e.code === 'connection_dropped')).toBe(true)
  })

  it('an exception in a listener reaches the caller; the pipeline stays usable and delivers the rest', async () => {
    const records = await loadFixture('h1-keepalive')
    const p = new HttpPipeline()
    const seen: HttpExchangeEvent[] = []
    let thrown = 0
    p.on('http.exchange', (x) => {
      seen.push(x)
      if (seen.length === 1) throw new Error('listener bug')
    })
    for (const rec of records) {
      try {
        p.push(rec)
      } catch (err) {
        thrown++
        expect((err as Error).message).toBe('listener bug')
      }
    }
    p.end()
    expect(thrown).toBe(1)
    expect(seen.map((x) => x.path)).toEqual(['/hello', '/hello', '/echo', '/nocontent', '/cached', '/binary', '/missing'])
    expect(p.stats.parseErrors).toBe(0)
  })

  it('bufferedBytes reports what an open connection holds', async () => {
    const records = await loadFixture('h1-close-delimited')
    const p = new HttpPipeline()
    for (const rec of records.slice(0, 3)) p.push(rec) // body until close: still buffered
    expect(p.bufferedBytes(records[0]!.conn)).toBe(4000)
    expect(p.bufferedBytes()).toBe(4000)
    expect(p.connectionKeys()).toEqual([records[0]!.conn])
    const events: HttpPipelineEvent[] = []
    p.on('http.exchange', (e) => events.push(e))
    p.end()
    expect(p.bufferedBytes()).toBe(0)
    expect(events).toHaveLength(1)
  })
})
