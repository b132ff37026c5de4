// Command-line credential redaction (process events): what must go, and what must stay readable.
import { describe, expect, it } from 'vitest'
import { REDACTED, redactCommandArgs, redactSecrets } from '../src/index.js'

describe('redactSecrets / redactCommandArgs', () => {
  it('removes every well-known key format, keeping the text around it', () => {
    const keys = [
      'sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789',
      'sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789',
      'AKIAIOSFODNN7EXAMPL3',
      'ghp_abcdefghijklmnopqrstuvwxyz0123456789',
      'github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz',
      'glpat-abcdefghij0123456789',
      'xoxb-123456789012-abcdefghijkl',
      'sk_live_abcdefghijklmnop1234',
      'AIzaSyA-abcdefghijklmnopqrstuvwxyz01234',
      'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLWJ5dGVz',
    ]
    for (const k of keys) {
      const out = redactSecrets(`use ${k} now`)
      expect(out, k).toBe(`use ${REDACTED} now`)
    }
  })

  it('header values, key=value secrets and URL passwords', () => {
    expect(redactSecrets('Authorization: Bearer abc.def')).toBe('Authorization: Bearer [REDACTED]')
    expect(redactSecrets('x-api-key: 12345')).toBe('x-api-key: [REDACTED]')
    expect(redactSecrets('--db-password=s3cret')).toBe('--db-password=[REDACTED]')
    expect(redactSecrets('API_KEY=abc TOKEN=def name=x')).toBe('API_KEY=[REDACTED] TOKEN=[REDACTED] name=x')
    expect(redactSecrets('postgres://app:pw@db:5432/x')).toBe('postgres://app:[REDACTED]@db:5432/x')
  })

  it('flags that take a secret as the next argument; mysql -pSECRET; ordinary commands untouched', () => {
    expect(redactCommandArgs(['tool', '--api-key', 'abc', '--verbose'])).toEqual(['tool', '--api-key', REDACTED, '--verbose'])
    expect(redactCommandArgs(['/usr/bin/mysql', '-uroot', '-phunter2'])).toEqual(['/usr/bin/mysql', '-uroot', `-p${REDACTED}`])
    const plain = ['mkdir', '-p', '/tmp/x', 'ssh', '-p', '22', 'grep', '-r', 'password', '.', 'ls', '--token-file', '/etc/t']
    expect(redactCommandArgs(plain)).toEqual(plain) // a token *file* path is not the token
    expect(redactCommandArgs([])).toEqual([])
  })

  it('is linear on hostile input', () => {
    const evil = 'a'.repeat(200_000) + '=' + 'Authorization:'.repeat(10_000) + 'sk-'.repeat(50_000)
    const t0 = performance.now()
    redactSecrets(evil)
    expect(performance.now() - t0).toBeLessThan(2000)
  })
})
