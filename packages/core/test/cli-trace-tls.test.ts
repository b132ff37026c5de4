// `bpfkit trace tls` and `bpfkit trace http` on the real kernel, driven like a
// user would: the built CLI in its own process, curl against a local HTTPS
// server, then `bpfkit replay` of the capture file it recorded.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { describeBpf, repoRoot, startScript, tempDir, selfSignedCert, until, type Running } from './helpers.js'

const cli = join(repoRoot, 'packages', 'core', 'dist', 'cli.js')
const fixtures = join(repoRoot, 'packages', 'core', 'test', 'fixtures', 'tls')
const SECRET = 'Bearer sk-cli-test-0123456789abcdef'

/** Starts the CLI and resolves once it says capture has started. */
function startCli(args: string[]): Promise<Running> {
  return startScript(cli, args, 'capturing TLS plaintext')
}

/** Runs curl; returns its pid and stdout. */
function curl(args: string[]): Promise<{ pid: number; out: Buffer }> {
  const c = spawn('curl', ['-sS', '--insecure', '--http1.1', ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  const out: Buffer[] = []
  c.stdout!.on('data', (d: Buffer) => out.push(d))
  return new Promise((resolve, reject) =>
    c.on('close', (code) => (code === 0 ? resolve({ pid: c.pid!, out: Buffer.concat(out) }) : reject(new Error(`curl exited with ${code}`)))),
  )
}

/** The bytes of an event body (utf8 text or base64, see HttpBody). */
function bodyBytes(b: { encoding: 'utf8' | 'base64'; data: string }): Buffer {
  return Buffer.from(b.data, b.encoding)
}

/** Waits until `cond` holds (capture is asynchronous), or fails after `ms`. */
describeBpf('bpfkit trace tls / trace http', () => {
  let dir: string
  let server: ChildProcess
  let base: string
  let response: Buffer

  beforeAll(async () => {
    dir = tempDir('bpfkit-cli-tls-')
    selfSignedCert(dir)
    response = randomBytes(3000)
    writeFileSync(join(dir, 'response.bin'), response)
    server = spawn(process.execPath, [join(fixtures, 'server.mjs'), join(dir, 'cert.pem'), join(dir, 'key.pem'), join(dir, 'response.bin')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const ports = await new Promise<{ https: number }>((resolve) => {
      let out = ''
      server.stdout!.on('data', (c) => {
        out += c
        if (out.includes('\n')) resolve(JSON.parse(out))
      })
    })
    base = `https://127.0.0.1:${ports.https}`
  })

  afterAll(() => {
    server?.kill()
  })

  it('trace tls --json --comm curl --record: chunks with pid and comm, and a capture that replays to the same exchange', async () => {
    const capture = join(dir, 'curl.ndjson')
    const t = await startCli(['trace', 'tls', '--json', '--comm', 'curl', '--record', capture])
    const { pid, out } = await curl(['-H', `Authorization: ${SECRET}`, `${base}/download`])
    expect(out).toEqual(response)
    await until(() => {
      const got = t.out().split('\n').filter((l) => l.includes('"ingress"')).map((l) => Buffer.from(JSON.parse(l).data, 'base64').length)
      return got.reduce((a, b) => a + b, 0) >= response.length
    })
    expect(await t.stop()).toBe(0)
    const chunks = t.out().trim().split('\n').map((l) => JSON.parse(l))
    expect(chunks.length).toBeGreaterThan(1)
    expect(new Set(chunks.map((c) => c.comm))).toEqual(new Set(['curl']))
    expect(new Set(chunks.map((c) => c.pid))).toEqual(new Set([pid]))
    const egress = Buffer.concat(chunks.filter((c) => c.direction === 'egress').map((c) => Buffer.from(c.data, 'base64'))).toString()
    expect(egress).toMatch(/^GET \/download HTTP\/1\.1\r\n/)
    const ingress = Buffer.concat(chunks.filter((c) => c.direction === 'ingress').map((c) => Buffer.from(c.data, 'base64')))
    expect(ingress.subarray(ingress.indexOf('\r\n\r\n') + 4)).toEqual(response)

    // the recorded file replays (no root needed) into the exchange, redacted
    const r = spawnSync(process.execPath, [cli, 'replay', capture, '--json'], { encoding: 'utf8', timeout: 30_000 })
    expect(r.status, r.stderr).toBe(0)
    const ex = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.type === 'http.exchange')
    expect(ex).toHaveLength(1)
    expect(ex[0]).toMatchObject({ method: 'GET', path: '/download', status: 200, process: { pid, comm: 'curl' } })
    expect(bodyBytes(ex[0].response.body)).toEqual(response)
    expect(ex[0].request.headers).toContainEqual(['Authorization', '[REDACTED]'])
    expect(r.stdout).not.toContain('sk-cli-test')
    expect(readFileSync(capture, 'utf8').split('\n')[0]).toMatch(/"bpfkit_capture":1/)
  })

  it('trace tls without --json prints a hex/ASCII dump per chunk', async () => {
    const t = await startCli(['trace', 'tls', '--comm', 'curl'])
    const { pid } = await curl([`${base}/download`])
    await until(() => t.out().includes('GET /download'))
    expect(await t.stop()).toBe(0)
    expect(t.out()).toContain(`curl[${pid}] -> `)
    expect(t.out()).toMatch(/000000 {2}47 45 54 20 2f 64 6f 77 6e 6c 6f 61 64 20 48 54 {2}GET \/download HT/)
  })

  it('trace http --json prints redacted exchanges, and SSE arrives whole', async () => {
    const t = await startCli(['trace', 'http', '--json', '--comm', 'curl'])
    const sse = await curl(['-H', `Authorization: ${SECRET}`, `${base}/sse?n=20`])
    const upload = await curl(['-H', 'content-type: application/json', '--data-binary', '{"prompt":"hello"}', `${base}/upload`])
    await until(() => t.out().trim().split('\n').length >= 2)
    expect(await t.stop()).toBe(0)
    expect(t.out()).not.toContain('sk-cli-test')
    const events = t.out().trim().split('\n').map((l) => JSON.parse(l))
    const get = events.find((e) => e.path === '/sse?n=20')
    expect(get).toMatchObject({ type: 'http.exchange', method: 'GET', status: 200, protocol: '1.1', process: { pid: sse.pid, comm: 'curl' } })
    expect(get.request.headers).toContainEqual(['Authorization', '[REDACTED]'])
    expect(bodyBytes(get.response.body)).toEqual(sse.out)
    const post = events.find((e) => e.path === '/upload')
    expect(post).toMatchObject({ method: 'POST', status: 200, process: { pid: upload.pid } })
    expect(bodyBytes(post.request.body).toString()).toBe('{"prompt":"hello"}')
    expect(JSON.parse(bodyBytes(post.response.body).toString()).bytes).toBe(18)
  })
})
