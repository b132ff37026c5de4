// Replays the capture fixtures (test/fixtures/*.ndjson, made by
// make-fixtures.ts from scenarios.ts) through core's replayCapture →
// LlmMonitor and checks every rebuilt field against the values the wire
// bytes were generated from. Each file holds the exchange twice: once with
// one record per server write, once cut into tiny records whose boundaries
// fall inside JSON strings, SSE lines, eventstream frames and UTF-8
// characters; both must give the same result.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { readCapture, replayCapture } from '@bpfkit/core'
import { describe, expect, it } from 'vitest'
import { type LlmDiagnosticEvent, type LlmExchangeEvent, LlmMonitor } from '../src/index.js'
import { writeFixtures } from './fixtures/make-fixtures.js'
import { type Expect, scenarios } from './fixtures/scenarios.js'

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures')

async function replay(file: string, monitor = new LlmMonitor({ scanners: [] })) {
  const exchanges: LlmExchangeEvent[] = []
  const diagnostics: LlmDiagnosticEvent[] = []
  monitor.on('llm.exchange', (e) => exchanges.push(e))
  monitor.on('llm.diagnostic', (d) => diagnostics.push(d))
  const r = replayCapture(file)
  monitor.attach(r)
  await r.run()
  await monitor.end()
  return { exchanges, diagnostics, monitor }
}

function check(ev: LlmExchangeEvent, x: Expect): void {
  expect(ev.provider).toBe(x.provider)
  expect(ev.operation).toBe(x.operation)
  expect(ev.model).toBe(x.model)
  expect(ev.request_model).toBe(x.request_model)
  expect(ev.stream).toBe(x.stream)
  expect(ev.messages.map((m) => [m.role, m.content])).toEqual(x.messages)
  expect(ev.tools?.map((t) => t.name)).toEqual(x.tools)
  expect(ev.completion.text).toBe(x.text)
  expect(ev.completion.tool_calls).toEqual(x.tool_calls)
  expect(ev.completion.finish_reason).toBe(x.finish_reason)
  expect(ev.http.status).toBe(x.status)
  expect(ev.error).toEqual(x.error)
  if (x.usage === undefined) {
    expect(ev.usage).toBeUndefined()
  } else if (x.usage.estimated && x.usage.input_tokens === undefined) {
    // nothing reported: counted by the tokenizer
    expect(ev.usage?.estimated).toBe(true)
    expect(ev.usage!.input_tokens).toBeGreaterThan(0)
    expect(ev.usage!.total_tokens).toBe(ev.usage!.input_tokens! + ev.usage!.output_tokens!)
    if (x.text) expect(ev.usage!.output_tokens).toBeGreaterThan(0)
  } else {
    expect(ev.usage).toEqual(x.usage)
  }
  if (x.priced) {
    expect(ev.cost?.currency).toBe('USD')
    expect(ev.cost!.total).toBeGreaterThan(0)
    expect(ev.cost!.estimated).toBe(ev.usage!.estimated)
  } else {
    expect(ev.cost).toBeUndefined()
  }
  expect(ev.truncated).toBe(false)
  expect(ev.incomplete).toBe(false)
  expect(ev.findings).toBe(0)
  expect(ev.latency.total_ms).toBeGreaterThan(100)
  expect(ev.latency.time_to_first_token_ms).toBeGreaterThanOrEqual(100)
}

describe('replay of capture fixtures', () => {
  for (const s of scenarios()) {
    it(`${s.name}: rebuilds prompt, completion, tool calls and usage exactly, whatever the record boundaries`, async () => {
      const file = join(fixtures, `${s.name}.ndjson`)
      expect(existsSync(file), `${file} missing: run test/fixtures/make-fixtures.ts`).toBe(true)
      const { exchanges, diagnostics, monitor } = await replay(file)
      expect(diagnostics).toEqual([])
      expect(exchanges).toHaveLength(2)
      for (const ev of exchanges) {
        check(ev, s.expect)
        expect(ev.process.comm).toBe(s.comm)
        expect(ev.workload).toBe(s.comm)
        expect(ev.server.address).toBe(s.host.split(':')[0])
      }
      // the finely cut copy gives the same exchange as the naturally cut one
      const strip = (e: LlmExchangeEvent) => ({ ...e, id: '', time: '', latency: {} })
      expect(strip(exchanges[1]!)).toEqual(strip(exchanges[0]!))
      const st = monitor.stats()
      expect(st.exchanges).toBe(2)
      expect(st.parseErrors + st.internalErrors + st.truncated).toBe(0)
    })
  }

  it('the fixtures are what make-fixtures.ts generates from scenarios.ts (no drift)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llm-fixtures-'))
    try {
      for (const file of await writeFixtures(dir)) {
        expect(readFileSync(file).equals(readFileSync(join(fixtures, basename(file)))), `${basename(file)} differs: run make-fixtures.ts`).toBe(true)
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('the fine split really cuts inside multi-byte UTF-8 characters', async () => {
    // a record starting with a UTF-8 continuation byte proves the boundary fell inside a character
    let cut = 0
    for await (const r of readCapture(join(fixtures, 'openai-chat-stream.ndjson'))) {
      if (r.direction === 'ingress' && r.data.length && (r.data[0]! & 0xc0) === 0x80) cut++
    }
    expect(cut).toBeGreaterThan(0)
  })

  it('Bedrock eventstream and Gemini JSON-array fixtures arrive as http.stream_event frames/elements and are applied from them', async () => {
    const cases = [
      ['bedrock-converse-stream', 'eventstream'],
      ['bedrock-invoke-stream', 'eventstream'],
      ['gemini-json-array-stream', 'json-array'],
    ] as const
    for (const [name, format] of cases) {
      const monitor = new LlmMonitor({ scanners: [] })
      const r = replayCapture(join(fixtures, `${name}.ndjson`))
      const seen: { format: string; before: number }[] = []
      let exchanges = 0
      r.on('http.stream_event', (e) => seen.push({ format: e.format, before: exchanges }))
      r.on('http.exchange', () => exchanges++)
      monitor.attach(r)
      await r.run()
      await monitor.end()
      expect(seen.length).toBeGreaterThanOrEqual(2 * 10)
      expect(new Set(seen.map((e) => e.format))).toEqual(new Set([format]))
      // half of them (the first copy) came before the first exchange ended: they were live, not rebuilt from the body
      expect(seen.filter((e) => e.before === 0)).toHaveLength(seen.length / 2)
      expect(monitor.stats().streamEvents).toBe(seen.length)
    }
  })

  it('time to first token of a stream is the first content event minus the end of the request', async () => {
    const { exchanges } = await replay(join(fixtures, 'openai-chat-stream.ndjson'))
    // natural split: head at +100 ms, the role-only chunk at +105 ms, the first text at +110 ms
    expect(exchanges[0]!.latency.time_to_first_token_ms).toBe(110)
  })

  it('keeps credentials out: the API key headers never reach the event', async () => {
    for (const name of ['openai-chat-stream', 'anthropic-stream', 'azure-chat-stream', 'bedrock-converse-stream']) {
      const { exchanges } = await replay(join(fixtures, `${name}.ndjson`))
      const text = JSON.stringify(exchanges)
      expect(text).not.toMatch(/NOTAREAL/)
    }
  })

  it('runs the default scanners: a plain weather conversation raises nothing', async () => {
    for (const name of ['anthropic-stream', 'openai-chat-stream', 'gemini-sse']) {
      const { exchanges, diagnostics } = await replay(join(fixtures, `${name}.ndjson`), new LlmMonitor())
      expect(exchanges.map((e) => e.findings)).toEqual([0, 0])
      expect(diagnostics).toEqual([])
    }
  })

  it('summarises usage and cost per workload', async () => {
    const monitor = new LlmMonitor({ scanners: [] })
    for (const name of ['openai-chat-stream', 'anthropic-stream', 'anthropic-error-429']) await replay(join(fixtures, `${name}.ndjson`), monitor)
    const summary = monitor.summary()
    const py = summary.find((w) => w.workload === 'python3')!
    expect(py.exchanges).toBe(2)
    expect(py.input_tokens).toBe(2 * 91)
    expect(py.output_tokens).toBe(2 * 43)
    expect(py.cost_usd).toBeCloseTo((2 * (91 * 0.15 + 43 * 0.6)) / 1e6, 12)
    const node = summary.find((w) => w.workload === 'node')!
    expect(node.exchanges).toBe(4)
    expect(node.errors).toBe(2)
    expect(node.providers).toEqual({ anthropic: 4 })
    expect(node.estimated_exchanges).toBe(2)
  })
})
