// The TLS sensor on the real kernel: a local TLS server (separate node
// process, HTTP/1.1 and HTTP/2, self-signed certificate made at test time)
// and real clients started after the sensor: curl (OpenSSL), curl --http2,
// python urllib (libssl, SSL_*_ex), node https and http2 (OpenSSL inside the
// node binary, memory BIO), wget (GnuTLS), Go net/http (crypto/tls, built
// here; also stripped). For each client the captured plaintext is reassembled
// per connection and direction and the request body (1 MiB), the response
// body (1 MiB) and a 200-event SSE stream are compared byte for byte.
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import https from 'node:https'
import { basename, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TlsSensor, type TlsCloseEvent, type TlsRecord } from '../src/sensors/tls/index.js'
import { sseEvent } from './fixtures/tls/sse.mjs'
import { assembleStreams, bodies, type Stream } from './fixtures/tls/streams.js'
import { describeBpf, repoRoot, tempDir, selfSignedCert, nodeComm } from './helpers.js'

const fixtures = join(repoRoot, 'packages', 'core', 'test', 'fixtures', 'tls')
const MiB = 1 << 20
const SSE_EVENTS = 200
const expectedSse = Buffer.from(Array.from({ length: SSE_EVENTS }, (_, i) => sseEvent(i)).join(''))

type Mode = 'upload' | 'download' | 'sse'

interface Client {
  name: string
  /** available here? (else the reason) */
  missing?: () => string | undefined
  port: 'https' | 'h2'
  h2: boolean
  library: TlsRecord['library']
  /** the socket fd is resolvable (false: memory BIO, fd -1) */
  fd: boolean
  comm: () => string
  command: (mode: Mode, url: string, body: string) => [string, string[]]
}

// Looked up once, before any sensor runs: with holdNewExecutables on, a synchronous spawn of a
// never-seen program from the agent would wait for the agent's own (blocked) event loop.
const tools = new Map<string, string | undefined>()
for (const cmd of ['curl', 'wget', 'python3', 'go']) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' })
  tools.set(cmd, r.status === 0 ? r.stdout.trim() : undefined)
}
const which = (cmd: string) => tools.get(cmd)

describeBpf('TLS sensor', () => {
  let dir: string
  let server: ReturnType<typeof spawn>
  let ports: { https: number; h2: number }
  let reqFile: string
  let reqBody: Buffer
  let respBody: Buffer
  let python: string | undefined
  let goClient: string | undefined
  let goStripped: string | undefined
  let goError = ''

  beforeAll(async () => {
    dir = tempDir('bpfkit-tls-')
    selfSignedCert(dir)
    reqBody = randomBytes(MiB)
    respBody = randomBytes(MiB)
    reqFile = join(dir, 'request.bin')
    writeFileSync(reqFile, reqBody)
    writeFileSync(join(dir, 'response.bin'), respBody)
    server = spawn(process.execPath, [join(fixtures, 'server.mjs'), join(dir, 'cert.pem'), join(dir, 'key.pem'), join(dir, 'response.bin')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    ports = await new Promise((resolve, reject) => {
      let out = ''
      server.stdout!.on('data', (c) => {
        out += c
        if (out.includes('\n')) resolve(JSON.parse(out))
      })
      server.on('exit', (code) => reject(new Error(`test server exited with ${code}`)))
    })
    const py = which('python3')
    if (py) python = spawnSync(py, ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).stdout.trim() || undefined
    if (which('go')) {
      const env = { ...process.env, GOCACHE: join(dir, 'gocache'), GOPATH: join(dir, 'gopath'), GO111MODULE: 'off', CGO_ENABLED: '0', GOFLAGS: '' }
      const build = (out: string, extra: string[]) => {
        const r = spawnSync('go', ['build', ...extra, '-o', out, join(fixtures, 'client.go')], { env, encoding: 'utf8', cwd: dir })
        if (r.status !== 0) goError = r.stderr
        return r.status === 0 ? out : undefined
      }
      goClient = build(join(dir, 'tlsgoclient'), [])
      goStripped = build(join(dir, 'tlsgostripped'), ['-ldflags=-s -w'])
    } else {
      goError = 'go is not installed'
    }
  }, 180_000)

  afterAll(() => {
    server?.kill('SIGTERM')
  })

  const clients: Client[] = [
    {
      name: 'curl (OpenSSL, HTTP/1.1)',
      missing: () => (which('curl') ? undefined : 'curl is not installed'),
      port: 'https',
      h2: false,
      library: 'openssl',
      fd: true,
      comm: () => 'curl',
      command: (mode, url, body) => ['curl', ['-sSk', '--http1.1', '-o', '/dev/null', ...(mode === 'upload' ? ['--data-binary', `@${body}`] : mode === 'sse' ? ['-N'] : []), url]],
    },
    {
      name: 'curl --http2 (OpenSSL, HTTP/2)',
      missing: () => (which('curl') ? undefined : 'curl is not installed'),
      port: 'h2',
      h2: true,
      library: 'openssl',
      fd: true,
      comm: () => 'curl',
      command: (mode, url, body) => ['curl', ['-sSk', '--http2', '-o', '/dev/null', ...(mode === 'upload' ? ['--data-binary', `@${body}`] : mode === 'sse' ? ['-N'] : []), url]],
    },
    {
      name: 'python3 urllib (libssl, SSL_read_ex/SSL_write_ex)',
      missing: () => (python ? undefined : 'python3 is not installed'),
      port: 'https',
      h2: false,
      library: 'openssl',
      fd: true,
      comm: () => basename(python!).slice(0, 15),
      command: (mode, url, body) => [python!, [join(fixtures, 'client.py'), mode, url, body]],
    },
    {
      name: 'node https (OpenSSL in the node binary, memory BIO)',
      port: 'https',
      h2: false,
      library: 'openssl',
      fd: false,
      comm: nodeComm,
      command: (mode, url, body) => [process.execPath, [join(fixtures, 'client-https.mjs'), mode, url, body]],
    },
    {
      name: 'node http2',
      port: 'h2',
      h2: true,
      library: 'openssl',
      fd: false,
      comm: nodeComm,
      command: (mode, url, body) => [process.execPath, [join(fixtures, 'client-h2.mjs'), mode, url, body]],
    },
    {
      name: 'wget (GnuTLS)',
      missing: () => (which('wget') ? undefined : 'wget is not installed'),
      port: 'https',
      h2: false,
      library: 'gnutls',
      fd: true,
      comm: () => 'wget',
      command: (mode, url, body) => ['wget', ['-q', '--no-check-certificate', '-O', '/dev/null', ...(mode === 'upload' ? [`--post-file=${body}`] : []), url]],
    },
    {
      name: 'Go net/http (crypto/tls, HTTP/1.1)',
      missing: () => (goClient ? undefined : `go build failed: ${goError}`),
      port: 'https',
      h2: false,
      library: 'go',
      fd: true,
      comm: () => 'tlsgoclient',
      command: (mode, url, body) => [goClient!, [mode, url, body]],
    },
    {
      name: 'Go net/http, stripped binary (.gopclntab), HTTP/2',
      missing: () => (goStripped ? undefined : `go build failed: ${goError}`),
      port: 'h2',
      h2: true,
      library: 'go',
      fd: true,
      comm: () => 'tlsgostripped',
      command: (mode, url, body) => [goStripped!, [mode, url, body]],
    },
  ]

  describe('capture', () => {
    let sensor: TlsSensor
    const records: TlsRecord[] = []
    const closes: TlsCloseEvent[] = []

    beforeAll(() => {
      // node and python write a whole 1 MiB body in one SSL_write: allow it in one call
      // holdNewExecutables: a Go client is done ~10 ms after exec, before any exec event could be
      // handled; held at exec, it is attached before its first instruction
      // (holdAgentDescendants: the clients are this process's children, spawned asynchronously)
      sensor = new TlsSensor({ maxBytesPerCall: 4 * MiB, holdNewExecutables: true, holdAgentDescendants: true, holdOnlyDescendantsOf: process.pid })
      sensor.on('record', (r) => records.push(r))
      sensor.on('close', (c) => closes.push(c))
      sensor.on('error', (e) => console.error('[tls sensor]', e))
    })

    afterAll(() => {
      sensor?.close()
      const k = sensor?.stats.kernel
      console.info(`[bpfkit] tls stats: ${JSON.stringify({ ...sensor?.stats, kernel: undefined })} kernel ${JSON.stringify(k)}`)
    })

    /** Runs a client to completion; returns its pid and the streams of its connections. */
    async function run(c: Client, mode: Mode): Promise<{ pid: number; streams: Stream[] }> {
      const path = mode === 'upload' ? '/upload' : mode === 'download' ? '/download' : `/sse?n=${SSE_EVENTS}`
      const url = `https://127.0.0.1:${ports[c.port]}${path}`
      const [cmd, args] = c.command(mode, url, reqFile)
      const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
      let stderr = ''
      child.stderr!.on('data', (d) => (stderr += d))
      const code = await new Promise<number | null>((r) => child.on('exit', r))
      expect(code, `${c.name} ${mode} failed: ${stderr}`).toBe(0)
      await new Promise((r) => setTimeout(r, 150))
      sensor.flush()
      const mine = records.filter((r) => r.pid === child.pid)
      return { pid: child.pid!, streams: [...assembleStreams(mine).values()] }
    }

    function checkStreams(c: Client, pid: number, streams: Stream[]): void {
      expect(streams.length, `${c.name}: no connection captured for pid ${pid}`).toBeGreaterThan(0)
      for (const s of streams) {
        expect(s.problems, `${c.name}: ${s.conn}`).toEqual([])
        expect(s.pid).toBe(pid)
        expect([...s.libraries]).toEqual([c.library])
        // Go threads inherit the binary's name; other clients do TLS on their main thread
        expect([...s.comms]).toEqual([c.comm()])
        if (c.fd) {
          expect([...s.fds].every((fd) => fd >= 0), `${c.name}: fds ${[...s.fds]}`).toBe(true)
          expect(s.tuple).toMatchObject({ family: 'ipv4', daddr: '127.0.0.1', dport: ports[c.port], saddr: '127.0.0.1' })
        } else {
          expect([...s.fds]).toEqual([-1])
        }
      }
      // the client's very first bytes: the request line, or the HTTP/2 preface
      const first = streams.map((s) => s.egress.subarray(0, 24).toString('latin1'))
      expect(first.some((f) => (c.h2 ? f === 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' : /^(GET|POST) \//.test(f))), `${c.name}: first bytes ${JSON.stringify(first)}`).toBe(true)
    }

    const bodiesOf = (c: Client, streams: Stream[], dir: 'egress' | 'ingress') => streams.flatMap((s) => bodies(s[dir], c.h2))

    for (const c of clients) {
      describe(c.name, () => {
        const skip = () => {
          const why = c.missing?.()
          if (why) console.warn(`[bpfkit] skipping ${c.name}: ${why}`)
          return why
        }

        it('captures a 1 MiB request body byte for byte, from the first request', async (ctx) => {
          if (skip()) return ctx.skip()
          const { pid, streams } = await run(c, 'upload')
          checkStreams(c, pid, streams)
          const sent = bodiesOf(c, streams, 'egress')
          expect(sent.some((b) => b.equals(reqBody)), `${c.name}: request body (${sent.map((b) => b.length)})`).toBe(true)
          const got = bodiesOf(c, streams, 'ingress').map((b) => b.toString())
          expect(got.some((b) => b.includes('"bytes":1048576')), `${c.name}: response ${got}`).toBe(true)
        })

        it('captures a 1 MiB response body byte for byte', async (ctx) => {
          if (skip()) return ctx.skip()
          const { pid, streams } = await run(c, 'download')
          checkStreams(c, pid, streams)
          const got = bodiesOf(c, streams, 'ingress')
          expect(got.some((b) => b.equals(respBody)), `${c.name}: response body (${got.map((b) => b.length)})`).toBe(true)
        })

        it(`captures a streamed SSE response of ${SSE_EVENTS} events`, async (ctx) => {
          if (skip()) return ctx.skip()
          const { pid, streams } = await run(c, 'sse')
          checkStreams(c, pid, streams)
          const got = bodiesOf(c, streams, 'ingress')
          expect(got.some((b) => b.equals(expectedSse)), `${c.name}: SSE body (${got.map((b) => b.length)})`).toBe(true)
        })
      })
    }

    it('reports connection teardown (SSL_free / gnutls_deinit / Conn.Close)', () => {
      // curl and python free their SSL objects; wget exits without gnutls_deinit, Go without Close
      const libs = new Set(closes.map((c) => c.library))
      expect(libs.has('openssl')).toBe(true)
      const conns = new Set(records.map((r) => r.conn))
      expect(closes.every((c) => conns.has(c.conn) || c.pid === server.pid)).toBe(true)
    })

    it('never captures the agent itself', async () => {
      await new Promise<void>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port: ports.https, path: '/download', rejectUnauthorized: false, agent: false }, (res) => {
            res.resume()
            res.on('end', resolve)
          })
          .on('error', reject)
      })
      await new Promise((r) => setTimeout(r, 100))
      sensor.flush()
      expect(records.filter((r) => r.pid === process.pid)).toEqual([])
      // but the server's side of that exchange was captured
      expect(records.some((r) => r.pid === server.pid && r.direction === 'egress')).toBe(true)
    })

    it('dropped nothing', () => {
      sensor.flush()
      const k = sensor.stats.kernel
      expect(sensor.stats.lostRecords).toBe(0)
      expect(sensor.stats.gaps).toBe(0)
      expect(k.ringFullRecords + k.faultRecords + k.capBytes + k.stateFull + k.connFull + k.holdFailed).toBe(0)
      expect(k.holds).toBeGreaterThan(0) // the Go clients, at least
      expect(k.records).toBe(sensor.stats.records)
    })
  })

  describe('limits', () => {
    it('counts bytes beyond maxBytesPerCall and reports them as a gap on the next record', async (ctx) => {
      if (!python) return ctx.skip()
      const sensor = new TlsSensor({ maxBytesPerCall: 256 << 10, pids: undefined })
      const records: TlsRecord[] = []
      sensor.on('record', (r) => records.push(r))
      try {
        const child = spawn(python, [join(fixtures, 'client.py'), 'upload-twice', `https://127.0.0.1:${ports.https}/upload`, reqFile], { stdio: 'ignore' })
        await new Promise((r) => child.on('exit', r))
        await new Promise((r) => setTimeout(r, 150))
        sensor.flush()
        const out = records.filter((r) => r.pid === child.pid && r.direction === 'egress').sort((a, b) => a.seq - b.seq)
        const truncated = out.filter((r) => r.truncated)
        expect(truncated.length).toBe(2) // each 1 MiB body write keeps 256 KiB
        const gapped = out.filter((r) => r.gap)
        expect(gapped.length).toBe(1) // the second request's first record; the second body's loss is reported at close
        expect(gapped[0]!.gap).toBe(MiB - (256 << 10))
        expect(Buffer.from(gapped[0]!.data.subarray(0, 12)).toString()).toBe('POST /upload')
        expect(sensor.stats.kernel.capBytes).toBeGreaterThanOrEqual(2 * (MiB - (256 << 10)))
        expect(sensor.stats.gapBytes).toBe(2 * (MiB - (256 << 10)))
      } finally {
        sensor.close()
      }
    })

    it('captures only processes with the given comm', async () => {
      const sensor = new TlsSensor({ comm: 'curl' })
      const records: TlsRecord[] = []
      sensor.on('record', (r) => records.push(r))
      try {
        const url = `https://127.0.0.1:${ports.https}/download`
        const curl = spawn('curl', ['-sk', '-o', '/dev/null', url], { stdio: 'ignore' })
        await new Promise((r) => curl.on('exit', r))
        if (python) {
          const py = spawn(python, [join(fixtures, 'client.py'), 'download', url], { stdio: 'ignore' })
          await new Promise((r) => py.on('exit', r))
        }
        await new Promise((r) => setTimeout(r, 150))
        sensor.flush()
        expect(records.length).toBeGreaterThan(0)
        expect(new Set(records.map((r) => r.pid))).toEqual(new Set([curl.pid]))
      } finally {
        sensor.close()
      }
    })

    it('captures only the listed pids', async () => {
      const sensor = new TlsSensor({ pids: [server.pid!] })
      const records: TlsRecord[] = []
      sensor.on('record', (r) => records.push(r))
      try {
        const child = spawn('curl', ['-sk', '-o', '/dev/null', `https://127.0.0.1:${ports.https}/download`], { stdio: 'ignore' })
        await new Promise((r) => child.on('exit', r))
        await new Promise((r) => setTimeout(r, 150))
        sensor.flush()
        expect(records.length).toBeGreaterThan(0)
        expect(new Set(records.map((r) => r.pid))).toEqual(new Set([server.pid]))
      } finally {
        sensor.close()
      }
    })
  })
})
