// A TLS call made from inside another one on the same thread: node's fetch
// writes a new connection's first request from a callback that runs inside
// SSL_read (handshake done), so SSL_write is nested in SSL_read. Each such
// write is a call of its own and must be captured (a wrapper such as
// SSL_write_ex -> SSL_write must still be captured once).
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { TlsSensor, type TlsRecord } from '../src/sensors/tls/index.js'
import { describeBpf, repoRoot, tempDir, selfSignedCert } from './helpers.js'

const fixtures = join(repoRoot, 'packages', 'core', 'test', 'fixtures', 'tls')

describeBpf('TLS sensor: nested calls', () => {
  let server: ReturnType<typeof spawn>
  let port: number
  let dir: string

  beforeAll(async () => {
    dir = tempDir('bpfkit-tls-nested-')
    selfSignedCert(dir)
    writeFileSync(join(dir, 'response.bin'), 'unused')
    server = spawn(process.execPath, [join(fixtures, 'server.mjs'), join(dir, 'cert.pem'), join(dir, 'key.pem'), join(dir, 'response.bin')], { stdio: ['ignore', 'pipe', 'inherit'] })
    port = await new Promise((resolve) => server.stdout!.once('data', (d) => resolve(JSON.parse(String(d)).https)))
  })
  afterAll(() => server?.kill())

  it('node fetch: the first request of every new connection is captured, exactly once', async () => {
    using sensor = new TlsSensor()
    const records: TlsRecord[] = []
    sensor.on('record', (r) => records.push(r))
    const client = spawn(process.execPath, [join(fixtures, 'client-fetch.mjs'), `https://127.0.0.1:${port}/upload`, '3'], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, NODE_TLS_REJECT_UNAUTHORIZED: '0', NODE_NO_WARNINGS: '1' },
    })
    let out = ''
    client.stdout!.on('data', (d) => (out += d))
    expect(await new Promise((r) => client.on('exit', r))).toBe(0)
    expect(out.trim().split('\n')).toHaveLength(3)
    await new Promise((r) => setTimeout(r, 300))
    sensor.flush()
    const mine = records.filter((r) => r.pid === client.pid)
    const requests = mine.filter((r) => r.direction === 'egress').map((r) => Buffer.from(r.data).toString())
    expect(requests).toHaveLength(3)
    for (let i = 0; i < 3; i++) {
      expect(requests[i]).toMatch(/^POST \/upload HTTP\/1\.1\r\n/)
      expect(requests[i]!.endsWith(JSON.stringify({ request: i }))).toBe(true)
    }
    expect(new Set(mine.filter((r) => r.direction === 'egress').map((r) => r.conn)).size).toBe(3)
    expect(sensor.refreshStats().noEntry).toBe(0)
  })
})
