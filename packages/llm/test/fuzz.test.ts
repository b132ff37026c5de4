// Property tests (fast-check): the provider parsers accept any JSON without
// a bug-shaped exception; the whole path (HttpPipeline → LlmMonitor) never
// throws and never hits an internal error on mutated wire bytes; and for
// intact bytes, any record split gives exactly the expected completion.
import { HttpPipeline, type CaptureRecord } from '@bpfkit/core'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CompletionBuilder, DEFAULT_LIMITS, type LlmExchangeEvent, LlmMonitor, type ProviderMatch, WIRE_ADAPTERS, type WireFormat } from '../src/index.js'
import { scenarios } from './fixtures/scenarios.js'

const all = scenarios()

function recordsFrom(request: Buffer, response: Buffer, reqCuts: number[], respCuts: number[]): CaptureRecord[] {
  const out: CaptureRecord[] = []
  let t = 1_000_000_000n
  const add = (direction: 'egress' | 'ingress', buf: Buffer, cuts: number[]) => {
    const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b)
    let prev = 0
    let seq = 0
    for (const p of [...points, buf.length]) {
      if (p <= prev && !(p === buf.length && prev === 0 && buf.length === 0)) continue
      t += 1000n
      out.push({ time: '2026-11-22T03:00:01.000000000Z', ktime: t, pid: 1, tid: 1, comm: 'fuzz', conn: '1:0x1', direction, seq: seq++, data: new Uint8Array(buf.subarray(prev, p)) })
      prev = p
    }
  }
  add('egress', request, reqCuts)
  add('ingress', response, respCuts)
  return out
}

function run(recs: CaptureRecord[]): { exchanges: LlmExchangeEvent[]; monitor: LlmMonitor } {
  const monitor = new LlmMonitor({ limits: { maxCompletionChars: 64 * 1024 } }) // default scanners included: they must survive mutated text too
  const exchanges: LlmExchangeEvent[] = []
  monitor.on('llm.exchange', (e) => exchanges.push(e))
  const pipeline = new HttpPipeline()
  monitor.attach(pipeline)
  for (const r of recs) pipeline.push(r)
  pipeline.end()
  return { exchanges, monitor }
}

describe('fuzz', () => {
  it('provider parsers take any JSON without a TypeError or RangeError', () => {
    const formats = Object.keys(WIRE_ADAPTERS) as WireFormat[]
    fc.assert(
      fc.property(fc.constantFrom(...formats), fc.jsonValue({ maxDepth: 5 }), fc.option(fc.string({ maxLength: 30 }), { nil: undefined }), (format, value, event) => {
        const adapter = WIRE_ADAPTERS[format]
        const match: ProviderMatch = { provider: 'fuzz', operation: 'tools/call', format, model: 'anthropic.claude-x' }
        const b = new CompletionBuilder(DEFAULT_LIMITS)
        try {
          const request = adapter.parseRequest(value, match)
          adapter.streamEvent(b, value, event, { match, request })
          adapter.responseBody(b, value, { match, request })
        } catch (err) {
          // adapters signal an undecodable nested payload (Bedrock chunk bytes) with SyntaxError; anything else is a bug
          expect(err).toBeInstanceOf(SyntaxError)
        }
      }),
      { numRuns: 600 },
    )
  })

  it('any split of intact wire bytes rebuilds exactly the expected completion', () => {
    fc.assert(
      fc.property(fc.constantFrom(...all), fc.array(fc.nat(), { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 40 }), (s, reqCuts, respCuts) => {
        const { exchanges } = run(recordsFrom(s.request, Buffer.concat(s.response), reqCuts, respCuts))
        expect(exchanges).toHaveLength(1)
        expect(exchanges[0]!.completion.text).toBe(s.expect.text)
        expect(exchanges[0]!.completion.tool_calls).toEqual(s.expect.tool_calls)
      }),
      { numRuns: 60 },
    )
  })

  it('mutated, truncated and spliced wire bytes never make the monitor throw or fail internally', () => {
    const mutation = fc.record({
      flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 6 }),
      cutAt: fc.option(fc.nat(), { nil: undefined }),
      insert: fc.option(fc.tuple(fc.nat(), fc.uint8Array({ maxLength: 40 })), { nil: undefined }),
    })
    fc.assert(
      fc.property(fc.constantFrom(...all), mutation, fc.array(fc.nat(), { maxLength: 30 }), (s, m, cuts) => {
        // mutate the response body only (after the head), so the HTTP layer still delivers it to the monitor
        const resp = Buffer.concat(s.response)
        const head = resp.indexOf('\r\n\r\n') + 4
        let body = Buffer.from(resp.subarray(head))
        for (const [at, x] of m.flips) if (body.length) body[at % body.length]! ^= x
        if (m.insert) {
          const at = m.insert[0] % (body.length + 1)
          body = Buffer.concat([body.subarray(0, at), Buffer.from(m.insert[1]), body.subarray(at)])
        }
        if (m.cutAt !== undefined) body = body.subarray(0, m.cutAt % (body.length + 1))
        const recs = recordsFrom(s.request, Buffer.concat([resp.subarray(0, head), body]), [], cuts)
        const { monitor } = run(recs)
        expect(monitor.stats().internalErrors).toBe(0)
      }),
      { numRuns: 150 },
    )
  })

  it('random stream event data pushed straight into the monitor never throws', () => {
    const s = all.find((x) => x.name === 'anthropic-stream')!
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string({ maxLength: 200 }), fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v))), { maxLength: 20 }), (datas) => {
        const monitor = new LlmMonitor()
        const pipeline = new HttpPipeline()
        let id = ''
        pipeline.on('http.request', (ev) => {
          id = ev.id
          monitor.push(ev)
        })
        pipeline.on('http.exchange', (ev) => monitor.push(ev))
        for (const r of recordsFrom(s.request, Buffer.alloc(0), [], [])) pipeline.push(r)
        datas.forEach((data, index) =>
          monitor.push({ type: 'http.stream_event', id, conn: '1:0x1', protocol: '1.1', time: '2026-11-22T03:00:01Z', ktime: '1', process: { pid: 1, tid: 1, comm: 'x' }, direction: 'response', format: 'sse', index, data } as never),
        )
        pipeline.end()
        expect(monitor.stats().internalErrors).toBe(0)
        expect(monitor.stats().exchanges).toBe(1)
      }),
      { numRuns: 100 },
    )
  })
})
