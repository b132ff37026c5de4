import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Readable, Writable } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'
import { BpfError, InvalidArgumentError } from '../src/errors.js'
import {
  CaptureFormatError,
  CaptureWriter,
  decodeRecord,
  encodeRecord,
  readCapture,
} from '../src/l7/capture-format.js'
import type { CaptureRecord } from '../src/l7/record.js'
import { fixturePath, loadFixture } from './fixtures/captures/harness.js'

const dir = mkdtempSync(join(tmpdir(), 'bpfkit-l7-capture-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function rec(seq: number, data: string | Uint8Array, extra: Partial<CaptureRecord> = {}): CaptureRecord {
  return {
    time: '2026-01-02T03:04:05.123456789Z',
    ktime: 18_446_744_073_709_551_000n - BigInt(seq), // beyond 2^53: must survive as a decimal string
    pid: 100,
    tid: 101,
    comm: 'curl',
    conn: '100:0x5555deadbeef',
    direction: seq % 2 ? 'ingress' : 'egress',
    seq,
    data: typeof data === 'string' ? new TextEncoder().encode(data) : data,
    ...extra,
  }
}

async function collect(source: Parameters<typeof readCapture>[0], opts?: Parameters<typeof readCapture>[1]) {
  const r = readCapture(source, opts)
  const out: CaptureRecord[] = []
  for await (const x of r) out.push(x)
  return { records: out, reader: r }
}

describe('capture format', () => {
  it('round-trips records, including gaps, close, tuple, fd, binary data and 64-bit ktime', async () => {
    const records = [
      rec(0, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', { fd: 7, tuple: { family: 'ipv4', saddr: '10.0.0.1', sport: 5555, daddr: '10.0.0.2', dport: 443 } }),
      rec(1, new Uint8Array([0, 1, 2, 255, 254, 0x0a, 0x0d])),
      rec(2, '', { gap: 4096 }), // pure gap marker
      rec(3, 'after the gap', { gap: 17 }),
      rec(4, '', { close: true }),
    ]
    const path = join(dir, 'rt.ndjson')
    const w = CaptureWriter.toFile(path, { host: 'test-host', created: '2026-01-02T00:00:00.000Z', note: 'hello' })
    for (const r of records) await w.write(r)
    await w.end()
    expect(w.records).toBe(5)

    const lines = readFileSync(path, 'utf8').trimEnd().split('\n')
    expect(lines).toHaveLength(6)
    expect(JSON.parse(lines[0]!)).toEqual({ bpfkit_capture: 1, created: '2026-01-02T00:00:00.000Z', host: 'test-host', note: 'hello' })
    const l3 = JSON.parse(lines[3]!)
    expect(l3).toMatchObject({ dir: 'egress', seq: 2, data: '', gap: 4096, ktime: '18446744073709550998' })

    const { records: back, reader } = await collect(path)
    expect(reader.header).toMatchObject({ bpfkit_capture: 1, host: 'test-host', note: 'hello' })
    expect(back).toHaveLength(records.length)
    for (let i = 0; i < records.length; i++) {
      const a = records[i]!
      const b = back[i]!
      expect(b.ktime).toBe(a.ktime)
      expect(Buffer.from(b.data).equals(Buffer.from(a.data))).toBe(true)
      expect({ ...b, data: undefined }).toEqual({ ...a, data: undefined })
    }
    expect(back[2]!.gap).toBe(4096)
    expect(back[4]!.close).toBe(true)
  })

  it('reads from streams and async iterables in arbitrary chunks (lines split anywhere, CRLF)', async () => {
    const text = readFileSync(fixturePath('h1-pipelining'), 'utf8').replace(/\n/g, '\r\n')
    const pieces: string[] = []
    for (let i = 0; i < text.length; i += 7) pieces.push(text.slice(i, i + 7))
    const { records } = await collect(Readable.from(pieces))
    const expected = await loadFixture('h1-pipelining')
    expect(records.map((r) => Buffer.from(r.data).toString('latin1'))).toEqual(expected.map((r) => Buffer.from(r.data).toString('latin1')))
  })

  it('rejects a malformed line with a typed error naming the line number', async () => {
    const good = encodeRecord(rec(0, 'abc'))
    const header = JSON.stringify({ bpfkit_capture: 1, created: 'x', host: 'h' })
    const cases: [string, RegExp][] = [
      ['{not json', /not valid JSON/],
      [JSON.stringify({ ...JSON.parse(good), ktime: 12 }), /ktime/],
      [JSON.stringify({ ...JSON.parse(good), data: 'no base64!' }), /base64/],
      [JSON.stringify({ ...JSON.parse(good), dir: 'sideways' }), /direction/],
      [JSON.stringify({ ...JSON.parse(good), seq: -1 }), /seq/],
      ['[1,2,3]', /JSON object/],
    ]
    for (const [bad, why] of cases) {
      const file = [header, good, '', good, bad, good].join('\n') + '\n'
      const err = await collect(Readable.from([file])).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(err).toBeInstanceOf(CaptureFormatError)
      expect(err).toBeInstanceOf(BpfError)
      const e = err as CaptureFormatError
      expect(e.line).toBe(5)
      expect(e.code).toBe('BPFKIT_CAPTURE')
      expect(e.message).toMatch(why)
    }
  })

  it("counts and skips malformed lines with malformed: 'skip'", async () => {
    const good = encodeRecord(rec(0, 'abc'))
    const file = [JSON.stringify({ bpfkit_capture: 1, created: 'x', host: 'h' }), good, 'garbage', good, '{"x":1}', good].join('\n')
    const { records, reader } = await collect(Readable.from([file]), { malformed: 'skip' })
    expect(records).toHaveLength(3)
    expect(reader.skipped).toBe(2)
    expect(reader.lines).toBe(6)
  })

  it('bounds line length: over-long lines throw (or are skipped) without being buffered', async () => {
    const header = JSON.stringify({ bpfkit_capture: 1, created: 'x', host: 'h' })
    const big = encodeRecord(rec(0, 'x'.repeat(5000)))
    const small = encodeRecord(rec(1, 'y'))
    const file = [header, small, big, small].join('\n')
    const err = (await collect(Readable.from([file]), { maxLineBytes: 1000 }).catch((e: unknown) => e)) as CaptureFormatError
    expect(err).toBeInstanceOf(CaptureFormatError)
    expect(err.line).toBe(3)
    const { records, reader } = await collect(Readable.from(file.match(/[\s\S]{1,100}/g)!), { maxLineBytes: 1000, malformed: 'skip' })
    expect(records.map((r) => r.seq)).toEqual([1, 1])
    expect(reader.skipped).toBe(1)
  })

  it('requires a valid header', async () => {
    const good = encodeRecord(rec(0, 'abc'))
    for (const [file, why] of [
      [good, /no "bpfkit_capture" header/],
      [JSON.stringify({ bpfkit_capture: 2, created: 'x', host: 'h' }) + '\n' + good, /unsupported capture version 2/],
      ['', /empty capture/],
      ['not json\n', /header is not valid JSON/],
    ] as const) {
      const err = (await collect(Readable.from([file]), { malformed: 'skip' }).catch((e: unknown) => e)) as CaptureFormatError
      expect(err).toBeInstanceOf(CaptureFormatError)
      expect(err.line).toBe(1)
      expect(err.message).toMatch(why)
    }
  })

  it('decodeRecord/encodeRecord are inverse on every fixture record', async () => {
    const records = await loadFixture('h2-mixed')
    for (const r of records) {
      const back = decodeRecord(encodeRecord(r), 2)
      expect(Buffer.from(back.data).equals(Buffer.from(r.data))).toBe(true)
      expect(back.ktime).toBe(r.ktime)
      expect(back.seq).toBe(r.seq)
    }
  })

  it('writer waits for drain (backpressure) and surfaces output errors', async () => {
    let writes = 0
    let pendingCb: (() => void) | undefined
    const slow = new Writable({
      highWaterMark: 64,
      write(_chunk, _enc, cb) {
        writes++
        pendingCb = cb // complete only when the test says so
      },
    })
    const w = new CaptureWriter(slow, { host: 'h' })
    let resolved = false
    const p = w.write(rec(0, 'z'.repeat(200))).then(() => (resolved = true))
    await new Promise((r) => setTimeout(r, 20))
    expect(resolved).toBe(false) // blocked on drain
    expect(writes).toBe(1)
    pendingCb!()
    await new Promise((r) => setTimeout(r, 5))
    pendingCb!()
    await p
    expect(resolved).toBe(true)

    const failing = new PassThrough({ highWaterMark: 1 })
    const w2 = new CaptureWriter(failing, { host: 'h' })
    const p2 = w2.write(rec(0, 'q'.repeat(100)))
    failing.destroy(new Error('disk full'))
    await expect(p2).rejects.toThrow(/disk full|closed/)
  })

  it('writer validates records', async () => {
    const w = new CaptureWriter(new PassThrough(), { host: 'h' })
    await expect(w.write({ ...rec(0, 'a'), ktime: 5 as unknown as bigint })).rejects.toBeInstanceOf(InvalidArgumentError)
  })

  it('the committed fixtures are valid captures', async () => {
    for (const name of ['h1-keepalive', 'h1-sse', 'h2-mixed']) {
      const { records, reader } = await collect(fixturePath(name))
      expect(reader.header?.bpfkit_capture).toBe(1)
      expect(records.length).toBeGreaterThan(2)
      expect(records[records.length - 1]!.close).toBe(true)
    }
  })

  it('a file written in pieces by hand is readable', async () => {
    const path = join(dir, 'hand.ndjson')
    writeFileSync(path, `${JSON.stringify({ bpfkit_capture: 1, created: 'c', host: 'h' })}\n${encodeRecord(rec(0, 'hi'))}`)
    const { records } = await collect(path)
    expect(Buffer.from(records[0]!.data).toString()).toBe('hi')
  })
})
