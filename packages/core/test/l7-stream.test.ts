import { describe, expect, it } from 'vitest'
import type { CaptureRecord } from '../src/l7/record.js'
import { ByteBudget, emptyStreamStats, StreamAssembler, type StreamItem } from '../src/l7/stream.js'

function rec(seq: number, data: string, extra: Partial<CaptureRecord> = {}): CaptureRecord {
  return {
    time: `2026-01-01T00:00:00.${String(seq).padStart(9, '0')}Z`,
    ktime: 1000n + BigInt(seq),
    pid: 1,
    tid: 1,
    comm: 't',
    conn: 'c',
    direction: 'egress',
    seq,
    data: Buffer.from(data),
    ...extra,
  }
}

const show = (items: StreamItem[]) =>
  items.map((i) => (i.kind === 'data' ? Buffer.from(i.data).toString() : `<gap ${i.bytes ?? '?'} ${i.reason}>`)).join('|')

describe('stream assembler', () => {
  it('passes in-order records through and reorders within the window', () => {
    const stats = emptyStreamStats()
    const a = new StreamAssembler(new ByteBudget(1 << 20), stats, { reorderWindow: 4 })
    expect(show(a.push(rec(0, 'a')))).toBe('a')
    expect(show(a.push(rec(2, 'c')))).toBe('')
    expect(show(a.push(rec(3, 'd')))).toBe('')
    expect(a.buffered).toBe(2)
    expect(show(a.push(rec(1, 'b')))).toBe('b|c|d')
    expect(a.buffered).toBe(0)
    expect(stats.reordered).toBe(2)
    expect(stats.gaps).toBe(0)
  })

  it('drops duplicates and counts them', () => {
    const stats = emptyStreamStats()
    const a = new StreamAssembler(new ByteBudget(1 << 20), stats)
    a.push(rec(0, 'a'))
    a.push(rec(2, 'c'))
    expect(show(a.push(rec(0, 'a')))).toBe('')
    expect(show(a.push(rec(2, 'c')))).toBe('')
    expect(stats.duplicates).toBe(2)
  })

  it('declares a missing seq lost once the window is full: an explicit gap of unknown size', () => {
    const stats = emptyStreamStats()
    const a = new StreamAssembler(new ByteBudget(1 << 20), stats, { reorderWindow: 2 })
    a.push(rec(0, 'a'))
    expect(show(a.push(rec(2, 'c')))).toBe('')
    expect(show(a.push(rec(3, 'd')))).toBe('')
    expect(show(a.push(rec(4, 'e')))).toBe('<gap ? sequence>|c|d|e')
    expect(stats.gaps).toBe(1)
    expect(stats.unknownGaps).toBe(1)
    // the late record is now a duplicate, never spliced in
    expect(show(a.push(rec(1, 'b')))).toBe('')
  })

  it('surfaces sensor-reported gaps before the chunk, and pure gap markers', () => {
    const stats = emptyStreamStats()
    const a = new StreamAssembler(new ByteBudget(1 << 20), stats)
    expect(show(a.push(rec(0, 'a')))).toBe('a')
    expect(show(a.push(rec(1, 'b', { gap: 100 })))).toBe('<gap 100 sensor>|b')
    expect(show(a.push(rec(2, '', { gap: 50 })))).toBe('<gap 50 sensor>')
    expect(stats.gapBytes).toBe(150)
    expect(stats.gaps).toBe(2)
  })

  it('merges adjacent gaps (unknown + known = unknown) and marks a late start', () => {
    const stats = emptyStreamStats()
    const a = new StreamAssembler(new ByteBudget(1 << 20), stats, { reorderWindow: 0 })
    expect(show(a.push(rec(5, 'x', { gap: 10 })))).toBe('<gap ? start>|x')
    expect(show(a.push(rec(7, 'z', { gap: 3 })))).toBe('<gap ? sequence>|z')
  })

  it('flush releases everything queued with gaps for the holes', () => {
    const stats = emptyStreamStats()
    const budget = new ByteBudget(1 << 20)
    const a = new StreamAssembler(budget, stats, { reorderWindow: 10 })
    a.push(rec(0, 'a'))
    a.push(rec(2, 'c'))
    a.push(rec(5, 'f'))
    expect(budget.used).toBe(2)
    expect(show(a.flush())).toBe('<gap ? sequence>|c|<gap ? sequence>|f')
    expect(budget.used).toBe(0)
  })

  it('never holds more than the byte budget: a full budget forces delivery', () => {
    const stats = emptyStreamStats()
    const budget = new ByteBudget(10)
    const a = new StreamAssembler(budget, stats, { reorderWindow: 100 })
    a.push(rec(0, 'a'))
    expect(show(a.push(rec(2, '0123456')))).toBe('')
    expect(budget.used).toBe(7)
    // 7 + 6 > 10: the hole before seq 2 is given up on
    expect(show(a.push(rec(3, 'abcdef')))).toBe('<gap ? sequence>|0123456|abcdef')
    expect(budget.used).toBe(0)
    expect(budget.peak).toBeLessThanOrEqual(10)
  })

  it('copies queued data (the caller may reuse its buffer)', () => {
    const a = new StreamAssembler(new ByteBudget(1 << 20), emptyStreamStats())
    a.push(rec(0, 'a'))
    const r = rec(2, 'keep')
    a.push(r)
    ;(r.data as Uint8Array).fill(0x21)
    expect(show(a.push(rec(1, 'b')))).toBe('b|keep')
  })
})
