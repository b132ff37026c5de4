import { describe, expect, it } from 'vitest'
import { loadEval } from '../eval/dataset.js'
import { evaluate } from '../eval/metrics.js'
import { PiiScanner, SECRET_RULES, SecretsScanner, cardBrand, ibanValid, luhnValid, ssnValid } from '../src/scanners/index.js'

describe('secrets scanner', () => {
  it('detects every provider format sample with its kind, in both splits', () => {
    for (const split of ['dev', 'heldout'] as const) {
      const m = evaluate('secrets', split)
      expect(m.misses, split).toEqual([])
      expect(m.kindCorrect).toBe(m.tp)
      expect(m.precision).toBeGreaterThanOrEqual(0.98)
    }
  })

  it('has a format sample for every rule', () => {
    const kinds = new Set(loadEval('secrets').filter((r) => r.label === 1).map((r) => r.kind))
    for (const rule of SECRET_RULES) expect(kinds.has(rule.kind), rule.kind).toBe(true)
  })

  it('ignores placeholders, hashes, UUIDs and base64 images', () => {
    const s = new SecretsScanner()
    for (const row of loadEval('secrets').filter((r) => r.label === 0)) {
      expect(s.scanRequest({ exchange_id: row.id, provider: 't', messages: [{ role: 'user', content: row.text }] }), row.id).toEqual([])
    }
  })

  it('finds an AWS secret key next to its access key id, and a whole PEM block', () => {
    const s = new SecretsScanner()
    const row = loadEval('secrets').find((r) => r.kind === 'aws_secret_access_key' && r.split === 'dev')!
    const kinds = s.scanRequest({ exchange_id: 'x', provider: 't', messages: [{ role: 'user', content: row.text }] }).map((f) => f.kind)
    expect(kinds).toEqual(['aws_access_key_id', 'aws_secret_access_key'])
    const pem = loadEval('secrets').find((r) => r.kind === 'private_key')!
    const [f] = s.scanRequest({ exchange_id: 'x', provider: 't', messages: [{ role: 'user', content: pem.text }] })
    expect(pem.text.slice(f!.location.start, f!.location.end)).toMatch(/^-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+-----END [A-Z ]*PRIVATE KEY-----$/)
  })
})

describe('PII scanner', () => {
  it('reaches precision >= 0.98 and finds every sample on both splits', () => {
    for (const split of ['dev', 'heldout'] as const) {
      const m = evaluate('pii', split)
      expect(m.precision, split).toBeGreaterThanOrEqual(0.98)
      expect(m.misses, split).toEqual([])
    }
  })

  it('validates instead of matching shapes', () => {
    expect(luhnValid('4539578763621486')).toBe(true)
    expect(luhnValid('4539578763621487')).toBe(false)
    expect(cardBrand('378282246310005')).toBe('amex')
    expect(cardBrand('9539578763621486')).toBeUndefined()
    expect(ibanValid('GB29NWBK60161331926819')).toBe(true)
    expect(ibanValid('GB29NWBK60161331926818')).toBe(false)
    expect(ibanValid('GB29NWBK6016133192681')).toBe(false) // wrong length for GB
    expect(ssnValid('536', '22', '1234')).toBe(true)
    for (const [a, g, s] of [['000', '12', '3456'], ['666', '12', '3456'], ['912', '12', '3456'], ['536', '00', '1234'], ['536', '22', '0000'], ['078', '05', '1120']]) {
      expect(ssnValid(a!, g!, s!), `${a}-${g}-${s}`).toBe(false)
    }
  })

  it('masks values in snippets (last digits only)', () => {
    const p = new PiiScanner()
    const text = 'card 4539 5787 6362 1486, mail maria.gonzalez@gmail.com, ssn 536-22-1234, call (415) 555-2671'
    const f = p.scanRequest({ exchange_id: 'x', provider: 't', messages: [{ role: 'user', content: text }] })
    expect(f.map((x) => x.kind).sort()).toEqual(['credit_card', 'email', 'phone', 'us_ssn'])
    const json = JSON.stringify(f)
    for (const raw of ['4539 5787 6362 1486', '4539578763621486', 'maria.gonzalez', '536-22-1234', '555-2671']) expect(json).not.toContain(raw)
  })

  it('rejects a misspelt kind or an unknown country instead of silently finding nothing', () => {
    expect(() => new PiiScanner({ kinds: ['emails' as never] })).toThrow(TypeError)
    expect(() => new PiiScanner({ kinds: ['emails' as never] })).toThrow(/^pii\.kinds\[0\] must be one of email, phone, credit_card, iban, us_ssn, ip_address, got "emails"$/)
    expect(() => new PiiScanner({ kinds: 'email' as never })).toThrow(/pii\.kinds must be an array/)
    expect(() => new PiiScanner({ defaultCountry: 'XX' as never })).toThrow(/^pii\.defaultCountry must be a country code/)
    expect(() => new PiiScanner({ defaultCountry: 'de' as never })).toThrow(TypeError)
    // valid options still detect: a German number written without +49
    const de = new PiiScanner({ kinds: ['phone'], defaultCountry: 'DE' })
    expect(de.scanRequest({ exchange_id: 'x', provider: 't', messages: [{ role: 'user', content: 'ruf an: 030 12345678' }] }).map((f) => f.kind)).toEqual(['phone'])
  })
})

describe('every scanner checks maxScanChars', () => {
  it('NaN, 0, negative or fractional caps are TypeErrors naming the scanner option (a NaN cap scanned nothing)', async () => {
    const s = await import('../src/scanners/index.js')
    const scanners: [string, (o: { maxScanChars: number }) => unknown][] = [
      ['secrets', (o) => new s.SecretsScanner(o)],
      ['pii', (o) => new s.PiiScanner(o)],
      ['promptInjection', (o) => new s.PromptInjectionScanner(o)],
      ['policy', (o) => new s.PolicyScanner(o)],
      ['hiddenUnicode', (o) => new s.HiddenUnicodeScanner(o)],
      ['exfiltration', (o) => new s.ExfiltrationScanner(o)],
      ['promptLeak', (o) => new s.PromptLeakScanner(o)],
    ]
    for (const [name, make] of scanners) {
      for (const bad of [Number.NaN, 0, -1, 1.5]) expect(() => make({ maxScanChars: bad }), `${name} ${bad}`).toThrow(new RegExp(`^${name}\\.maxScanChars must be a positive integer`))
      expect(() => make({ maxScanChars: 1000 }), name).not.toThrow()
    }
  })
})
