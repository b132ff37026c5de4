import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'
import { CaptureFormatError, CaptureWriter } from '../src/l7/capture-format.js'
import type { HttpPipelineEvent } from '../src/l7/events.js'
import { replayCapture } from '../src/l7/replay.js'
import { fixturePath, loadFixture, run } from './fixtures/captures/harness.js'
import { recordChunked } from './fixtures/captures/recorder.js'

const dir = mkdtempSync(join(tmpdir(), 'bpfkit-l7-replay-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('replayCapture', () => {
  it('produces exactly the events of a live pipeline fed the same records (iterator and emitter)', async () => {
    for (const name of ['h1-keepalive', 'h1-sse', 'h2-mixed']) {
      const live = run(await loadFixture(name)).events
      const iterated: HttpPipelineEvent[] = []
      for await (const ev of replayCapture(fixturePath(name))) iterated.push(ev)
      expect(iterated).toEqual(live)

      const emitted: HttpPipelineEvent[] = []
      const replay = replayCapture(fixturePath(name))
      for (const t of ['http.request', 'http.response', 'http.exchange', 'http.stream_event', 'l7.diagnostic'] as const) {
        replay.on(t, (ev: HttpPipelineEvent) => emitted.push(ev))
      }
      const stats = await replay.run()
      expect(emitted).toEqual(live)
      expect(stats.exchanges).toBe(live.filter((e) => e.type === 'http.exchange').length)
      expect(replay.header?.bpfkit_capture).toBe(1)
    }
  })

  it('live recording → capture file → replay: same events, gap markers preserved', async () => {
    const records = await recordChunked()
    // a sensor-reported loss inside the first chunked body
    const i = records.findIndex((r) => r.data.length > 2000)
    records[i] = { ...records[i]!, data: records[i]!.data.subarray(100), gap: 100 }
    const path = join(dir, 'live.ndjson')
    const w = CaptureWriter.toFile(path, { host: 'test' })
    for (const r of records) await w.write(r)
    await w.end()
    expect(readFileSync(path, 'utf8')).toMatch(/"gap":100/)
    const live = run(records)
    const replay = replayCapture(path)
    const events: HttpPipelineEvent[] = []
    for await (const ev of replay) events.push(ev)
    expect(events).toEqual(live.events)
    expect(replay.stats.gaps).toBe(1)
    expect(replay.stats.gapBytes).toBe(100)
    expect(live.exchanges.some((x) => x.gap)).toBe(true)
  })

  it('passes pipeline options through (redaction off)', async () => {
    const events: HttpPipelineEvent[] = []
    for await (const ev of replayCapture(fixturePath('h1-keepalive'), { redact: false })) events.push(ev)
    expect(JSON.stringify(events)).toContain('top-secret-token')
  })

  it('a malformed capture rejects with the line number; skip mode counts and carries on', async () => {
    const text = readFileSync(fixturePath('h1-pipelining'), 'utf8').split('\n')
    text.splice(2, 0, '{"this is": "not a record"}')
    const bad = join(dir, 'bad.ndjson')
    writeFileSync(bad, text.join('\n'))
    const err = await replayCapture(bad).run().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(CaptureFormatError)
    expect((err as CaptureFormatError).line).toBe(3)

    const skipping = replayCapture(Readable.from([text.join('\n')]), { malformed: 'skip' })
    const stats = await skipping.run()
    expect(skipping.reader.skipped).toBe(1)
    expect(stats.exchanges).toBe(2)
  })

  it('runs only once', async () => {
    const r = replayCapture(fixturePath('h1-pipelining'))
    await r.run()
    expect(() => r[Symbol.asyncIterator]()).toThrow(/only once/)
  })
})
