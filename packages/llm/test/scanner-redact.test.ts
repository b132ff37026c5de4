import { describe, expect, it } from 'vitest'
import { loadEval } from '../eval/dataset.js'
import { PiiScanner, Redactor, SecretsScanner, defaultScanners, redactText } from '../src/scanners/index.js'
import type { Finding } from '../src/types.js'

const samples = [...loadEval('secrets'), ...loadEval('pii')].filter((r) => r.label === 1)

describe('redaction', () => {
  it('never leaks the raw value: not in snippets or evidence, and not in redacted text', () => {
    const scanners = [new SecretsScanner(), new PiiScanner()]
    for (const row of samples) {
      const content = `prefix ${row.text} suffix`
      const findings: Finding[] = scanners.flatMap((s) => s.scanRequest({ exchange_id: row.id, provider: 't', messages: [{ role: 'user', content }] }))
      expect(findings.length, row.id).toBeGreaterThan(0)
      const redacted = redactText(content, findings)
      for (const f of findings) {
        const raw = content.slice(f.location.start, f.location.end)
        expect(redacted, row.id).not.toContain(raw)
        // the secret body (past any public prefix like "ghp_") never appears in what a finding carries
        const body = f.kind === 'email' ? raw.slice(1, raw.indexOf('@')) : raw.length > 16 ? raw.slice(12, raw.length - 4) : raw.replace(/\D/g, '').slice(0, -4)
        if (body.length >= 4) expect(`${f.snippet} ${f.evidence ?? ''}`, row.id).not.toContain(body)
      }
      expect(redacted).toContain('[REDACTED:')
      expect(redacted.startsWith('prefix ')).toBe(true)
      expect(redacted.endsWith(' suffix')).toBe(true)
    }
  })

  it('masks a whole PEM private key, body included', () => {
    const pem = loadEval('secrets').find((r) => r.kind === 'private_key')!.text
    const out = new Redactor().scrub(pem)
    expect(out).not.toMatch(/[A-Za-z0-9+/]{40,}/)
    expect(out).toContain('[REDACTED:private_key]')
  })

  it('redacts by message index and response part, merging overlaps', () => {
    const findings: Finding[] = [
      { scanner: 'secrets', kind: 'a', severity: 'high', score: 1, location: { part: 'request', message_index: 1, start: 2, end: 6 }, snippet: '' },
      { scanner: 'pii', kind: 'b', severity: 'high', score: 1, location: { part: 'request', message_index: 1, start: 4, end: 8 }, snippet: '' },
      { scanner: 'pii', kind: 'c', severity: 'high', score: 1, location: { part: 'response', start: 0, end: 3 }, snippet: '' },
      { scanner: 'prompt_injection', kind: 'd', severity: 'high', score: 1, location: { part: 'request', message_index: 1, start: 0, end: 1 }, snippet: '' },
    ]
    const r = new Redactor()
    expect(r.redactMessage('0123456789', 1, findings)).toBe('01[REDACTED:a]89')
    expect(r.redactMessage('0123456789', 0, findings)).toBe('0123456789')
    expect(r.redactResponse('abcdef', findings)).toBe('[REDACTED:c]def')
  })

  it('scrub() masks what the default scanners would find', () => {
    const body = Array.from({ length: 90 }, (_, i) => 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789_-'[(i * 37 + 11) % 58]).join('')
    const text = `key sk-ant-api03-${body}AA and mail bob.jones@corp-mail.com`
    const out = new Redactor().scrub(text)
    expect(out).toBe('key [REDACTED:anthropic_api_key] and mail [REDACTED:email]')
    expect(defaultScanners().length).toBeGreaterThanOrEqual(6)
  })
})
