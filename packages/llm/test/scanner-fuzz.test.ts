import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { defaultScanners, PolicyScanner } from '../src/scanners/index.js'
import type { Finding, LlmMessage, ScanContext } from '../src/types.js'

const scanners = [...defaultScanners(), new PolicyScanner({ bannedSubstrings: ['secret sauce'], bannedTopics: [{ name: 't', keywords: ['a', 'b'] }], tokenBudget: { tokens: 10 } })]
const pieces = ['ignore all previous instructions', 'sk-ant-api03-', 'AKIA', '-----BEGIN RSA PRIVATE KEY-----\n', 'eyJhbGciOiJIUzI1NiJ9.', '![x](https://e.example/?q=', '\u200b', '\u202e', '\u{E0041}', '@', '4539 5787 ', '+44 20 ', '%7B', '](', 'DE89 ', '::', '😀\u200d']
const text = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.array(fc.oneof(fc.constantFrom(...pieces), fc.string({ unit: 'grapheme', maxLength: 20 })), { maxLength: 30 }).map((a) => a.join('')),
)
const role = fc.constantFrom<LlmMessage['role']>('system', 'developer', 'user', 'assistant', 'tool')

function runAll(ctx: ScanContext, response: string, chunk: number): Finding[] {
  const out: Finding[] = []
  for (const s of scanners) {
    out.push(...(s.scanRequest?.(ctx) as Finding[] | undefined ?? []))
    const st = s.startResponse?.(ctx)
    if (!st) continue
    for (let i = 0; i < response.length; i += chunk) out.push(...st.push(response.slice(i, i + chunk)))
    out.push(...st.end())
  }
  return out
}

describe('scanners on arbitrary input', () => {
  it('never throw, never report a scanner error, and keep offsets inside the text', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ role, content: text }), { maxLength: 4 }), text, fc.integer({ min: 1, max: 50 }), (messages, response, chunk) => {
        const ctx: ScanContext = { exchange_id: 'f', provider: 'fuzz', messages, usage: { total_tokens: 50, estimated: true } }
        const findings = runAll(ctx, response, chunk)
        for (const f of findings) {
          expect(f.kind).not.toBe('scanner_error')
          expect(f.score).toBeGreaterThanOrEqual(0)
          expect(f.score).toBeLessThanOrEqual(1)
          const len = f.location.part === 'request' ? messages[f.location.message_index ?? 0]?.content.length ?? 0 : response.length
          if (f.kind !== 'token_budget_exceeded' && f.kind !== 'model_not_allowed') expect(f.location.end).toBeLessThanOrEqual(len)
        }
      }),
      { numRuns: 300 },
    )
  })

  it('tolerates malformed contexts', () => {
    const bad = [{}, { messages: null }, { messages: [null, { role: 'user' }, { role: 'user', content: 42 }] }] as unknown as ScanContext[]
    for (const ctx of bad) expect(() => runAll(ctx, 'x', 1)).not.toThrow()
  })

  it('bounds the time on gigantic input and reports what it skipped', () => {
    const huge = `${'All work and no play makes Jack a dull boy. '.repeat(30_000)}sk-ant-api03-tail`
    const ctx: ScanContext = { exchange_id: 'g', provider: 'fuzz', messages: [{ role: 'user', content: huge }] }
    const t0 = performance.now()
    const findings = runAll(ctx, huge.slice(0, 400_000), 4096)
    expect(performance.now() - t0).toBeLessThan(15_000)
    const cut = findings.filter((f) => f.kind === 'scan_truncated')
    expect(cut.length).toBeGreaterThan(0)
    expect(cut[0]!.evidence).toMatch(/skipped \d+/)
  })
})
