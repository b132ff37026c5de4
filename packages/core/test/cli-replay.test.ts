// `bpfkit replay` needs no root: it runs the HTTP pipeline over capture files.
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { repoRoot, tempDir } from './helpers.js'

const cli = join(repoRoot, 'packages', 'core', 'dist', 'cli.js')
const captures = join(repoRoot, 'packages', 'core', 'test', 'fixtures', 'captures')
const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 30_000 })

describe('bpfkit replay', () => {
  it('prints HTTP/2 exchanges from a capture as NDJSON', () => {
    const r = run(['replay', join(captures, 'h2-mixed.ndjson'), '--json'])
    expect(r.status, r.stderr).toBe(0)
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l))
    expect(events.every((e) => e.type === 'http.exchange' && e.protocol === '2')).toBe(true)
    expect(events.map((e) => e.path)).toEqual(expect.arrayContaining(['/item/1', '/item/2', '/echo', '/trailers']))
    expect(r.stderr).toMatch(/replayed \d+ records, 0 gaps, 0 parse errors/)
  })

  it('a malformed capture is one readable error line with its line number', () => {
    const file = join(tempDir(), 'bad.ndjson')
    writeFileSync(file, '{"bpfkit_capture":1,"created":"2026-01-01T00:00:00Z","host":"x"}\nnot json\n')
    const r = run(['replay', file])
    expect(r.status).toBe(1)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/line 2/)
  })
})
