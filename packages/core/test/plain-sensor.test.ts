// The plain-socket sensor on the real kernel: a local cleartext server
// (separate node process: node:http HTTP/1.1 and node:http2 h2c, plus an
// https server for the negative check) and real clients started after the
// sensor: curl (HTTP/1.1 and --http2-prior-knowledge), python3 urllib, wget
// and node http. For each client the captured bytes are reassembled per
// connection and compared byte for byte with what it sent and received (a
// 1 MiB request body, a 1 MiB response body and an Ollama-style streamed
// NDJSON chat response), and the same records are fed to HttpPipeline, which
// must rebuild the exchanges. TLS connections must not be captured.
import { execFileSync, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { basename, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HttpPipeline } from '../src/l7/pipeline.js'
import type { HttpExchangeEvent, HttpStreamEvent } from '../src/l7/events.js'
import { PlainSocketSensor, type PlainCloseEvent, type PlainRecord } from '../src/sensors/plain/index.js'
import type { TlsRecord } from '../src/sensors/tls/index.js'
import { InvalidArgumentError } from '../src/errors.js'
import { assembleStreams, bodies, type Stream } from './fixtures/tls/streams.js'
import { describeBpf, firstOutput, tempDir, selfSignedCert, nodeComm } from './helpers.js'
import { codecForType } from '../src/btf/index.js'
import type { Codec } from '../src/codec.js'
import { bundledObject } from '../src/probes.js'
import { CollectionSpec } from '../src/spec.js'
import { PlainRecordDecoder, type RawSockEvent } from '../src/sensors/plain/record.js'

const MiB = 1 << 20
const CHAT_LINES = 120

/** An Ollama /api/chat streaming response: one JSON object per line, the last one with done: true. */
function chatLines(): string[] {
  const lines = Array.from({ length: CHAT_LINES }, (_, i) =>
    JSON.stringify({ model: 'llama3.2', created_at: `2026-01-01T00:00:${String(i % 60).padStart(2, '0')}Z`, message: { role: 'assistant', content: `token-${i} ` }, done: false }),
  )
  lines.push(JSON.stringify({ model: 'llama3.2', created_at: '2026-01-01T00:01:00Z', message: { role: 'assistant', content: '' }, done: true, eval_count: CHAT_LINES }))
  return lines.map((l) => `${l}\n`)
}

// The server, run as its own process (the sensor never captures the agent, i.e. this process).
//   node server.mjs RESPONSE_FILE CHAT_FILE CERT KEY  ->  prints {"http": P, "h2c": P, "https": P}
// Routes: POST /upload -> {"bytes","sha256"}; GET /download -> RESPONSE_FILE;
//         POST /api/chat -> CHAT_FILE lines as application/x-ndjson, one write per line.
const SERVER = `
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import http2 from 'node:http2'
import https from 'node:https'
const [responseFile, chatFile, cert, key] = process.argv.slice(2)
const response = readFileSync(responseFile)
const chat = readFileSync(chatFile, 'utf8').split(/(?<=\\n)/)
function handle(req, res) {
  const hash = createHash('sha256')
  let bytes = 0
  req.on('data', (c) => { bytes += c.length; hash.update(c) })
  req.on('end', () => {
    if (req.url === '/upload') {
      const body = JSON.stringify({ bytes, sha256: hash.digest('hex') })
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
      res.end(body)
    } else if (req.url === '/download') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': response.length })
      res.end(response)
    } else if (req.url === '/api/chat') {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' })
      let i = 0
      const next = () => { if (i >= chat.length) return res.end(); res.write(chat[i++]); setImmediate(next) }
      next()
    } else {
      res.writeHead(404, { 'content-length': 0 })
      res.end()
    }
  })
}
const h1 = http.createServer(handle)
const h2 = http2.createServer(handle)
const tls = https.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, handle)
await Promise.all([h1, h2, tls].map((s) => new Promise((r) => s.listen(0, '127.0.0.1', r))))
// IPv6 loopback, when the machine has one (null otherwise)
const v6 = http.createServer(handle)
const v6port = await new Promise((r) => v6.once('error', () => r(null)).listen(0, '::1', () => r(v6.address().port)))
process.stdout.write(JSON.stringify({ http: h1.address().port, h2c: h2.address().port, https: tls.address().port, v6: v6port }) + '\\n')
process.on('SIGTERM', () => process.exit(0))
`

// node http client: node client.mjs MODE URL FILE
const NODE_CLIENT = `
import http from 'node:http'
import { readFileSync } from 'node:fs'
const [mode, url, file] = process.argv.slice(2)
const body = mode === 'download' ? undefined : readFileSync(file)
const req = http.request(url, { method: body ? 'POST' : 'GET', headers: body ? { 'content-type': 'application/octet-stream' } : {} }, (res) => {
  res.on('data', () => {})
  res.on('end', () => process.exit(res.statusCode === 200 ? 0 : 1))
})
req.on('error', (e) => { console.error(e); process.exit(1) })
req.end(body)
`

// python3 urllib client: python3 client.py MODE URL FILE
const PY_CLIENT = `
import sys, urllib.request
mode, url, path = sys.argv[1:4]
data = None if mode == 'download' else open(path, 'rb').read()
req = urllib.request.Request(url, data=data, method='GET' if data is None else 'POST')
with urllib.request.urlopen(req) as r:
    while r.read(65536):
        pass
`

// sendmsg / recvmsg_into / readv with several iovecs: python3 iov.py PORT BODY_FILE OUT_FILE
const PY_IOV_CLIENT = `
import os, socket, sys
port, body_file, out_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
body = open(body_file, 'rb').read()
s = socket.create_connection(('127.0.0.1', port))
head = b'POST /upload HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n' % len(body)
parts = [head, b'', body[:1000], body[1000:]]
sent = s.sendmsg(parts)
assert sent == sum(map(len, parts)), sent
got = bytearray()
a, b = bytearray(7), bytearray(100)
n = s.recvmsg_into([a, b])[0]
got += (a + b)[:n]
while True:
    x, y = bytearray(10), bytearray(4096)
    n = os.readv(s.fileno(), [x, y])
    if n == 0:
        break
    got += (x + y)[:n]
open(out_file, 'wb').write(got)
`

type Mode = 'upload' | 'download' | 'chat'

interface Client {
  name: string
  h2: boolean
  comm: () => string
  command: (mode: Mode, url: string, file: string) => [string, string[]]
}

describeBpf('plain socket sensor', () => {
  let dir: string
  let server: ReturnType<typeof spawn>
  let ports: { http: number; h2c: number; https: number; v6: number | null }
  let reqBody: Buffer
  let respBody: Buffer
  let files: Record<Mode, string>
  let python: string
  const chat = chatLines()
  const chatText = chat.join('')
  const prompt = JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content: 'why is the sky blue?' }], stream: true })

  let sensor: PlainSocketSensor
  const records: PlainRecord[] = []
  const closes: PlainCloseEvent[] = []

  beforeAll(async () => {
    dir = tempDir('bpfkit-plain-')
    selfSignedCert(dir)
    reqBody = randomBytes(MiB)
    respBody = randomBytes(MiB)
    files = { upload: join(dir, 'request.bin'), download: join(dir, 'unused'), chat: join(dir, 'prompt.json') }
    writeFileSync(files.upload, reqBody)
    writeFileSync(files.chat, prompt)
    writeFileSync(join(dir, 'response.bin'), respBody)
    writeFileSync(join(dir, 'chat.ndjson'), chatText)
    writeFileSync(join(dir, 'server.mjs'), SERVER)
    writeFileSync(join(dir, 'client.mjs'), NODE_CLIENT)
    writeFileSync(join(dir, 'client.py'), PY_CLIENT)
    writeFileSync(join(dir, 'iov.py'), PY_IOV_CLIENT)
    python = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim()
    server = spawn(process.execPath, [join(dir, 'server.mjs'), join(dir, 'response.bin'), join(dir, 'chat.ndjson'), join(dir, 'cert.pem'), join(dir, 'key.pem')], {
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
    sensor = new PlainSocketSensor({ maxBytesPerCall: 4 * MiB }) // node writes a 1 MiB body and its framing in one writev
    sensor.on('record', (r) => records.push(r))
    sensor.on('close', (c) => closes.push(c))
    sensor.on('error', (e) => console.error('[plain sensor]', e))
  }, 30_000)

  afterAll(() => {
    sensor?.close()
    server?.kill('SIGTERM')
    console.info(`[bpfkit] plain stats: ${JSON.stringify({ ...sensor?.stats, kernel: undefined })} kernel ${JSON.stringify(sensor?.stats.kernel)}`)
  })

  const path = (m: Mode) => (m === 'upload' ? '/upload' : m === 'download' ? '/download' : '/api/chat')
  const curlArgs = (mode: Mode, file: string) =>
    mode === 'upload' ? ['--data-binary', `@${file}`] : mode === 'chat' ? ['-N', '-H', 'content-type: application/json', '--data-binary', `@${file}`] : []

  const clients: Client[] = [
    { name: 'curl HTTP/1.1', h2: false, comm: () => 'curl', command: (m, url, f) => ['curl', ['-sS', '--http1.1', '-o', '/dev/null', ...curlArgs(m, f), url]] },
    { name: 'curl --http2-prior-knowledge (h2c)', h2: true, comm: () => 'curl', command: (m, url, f) => ['curl', ['-sS', '--http2-prior-knowledge', '-o', '/dev/null', ...curlArgs(m, f), url]] },
    { name: 'python3 urllib', h2: false, comm: () => basename(python).slice(0, 15), command: (m, url, f) => [python, [join(dir, 'client.py'), m, url, f]] },
    { name: 'wget', h2: false, comm: () => 'wget', command: (m, url, f) => ['wget', ['-q', '-O', '/dev/null', ...(m === 'download' ? [] : [`--post-file=${f}`]), url]] },
    { name: 'node http', h2: false, comm: nodeComm, command: (m, url, f) => [process.execPath, [join(dir, 'client.mjs'), m, url, f]] },
  ]

  async function settle(): Promise<void> {
    await new Promise((r) => setTimeout(r, 120))
    sensor.flush()
  }

  /** Runs a client to completion; returns its pid and its connections' records. */
  async function run(c: Client, mode: Mode): Promise<{ pid: number; mine: PlainRecord[] }> {
    const url = `http://127.0.0.1:${c.h2 ? ports.h2c : ports.http}${path(mode)}`
    const [cmd, args] = c.command(mode, url, files[mode])
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr!.on('data', (d) => (stderr += d))
    const code = await new Promise<number | null>((r) => child.on('exit', r))
    expect(code, `${c.name} ${mode} failed: ${stderr}`).toBe(0)
    await settle()
    return { pid: child.pid!, mine: records.filter((r) => r.pid === child.pid) }
  }

  function checkStreams(c: Client, pid: number, streams: Stream[]): void {
    expect(streams.length, `${c.name}: no connection captured for pid ${pid}`).toBeGreaterThan(0)
    for (const s of streams) {
      expect(s.problems, `${c.name}: ${s.conn}`).toEqual([])
      expect(s.pid).toBe(pid)
      expect([...s.comms]).toEqual([c.comm()])
      expect([...s.fds].every((fd) => fd > 2)).toBe(true)
      expect(s.tuple, `${c.name}: ${s.conn} ${JSON.stringify(s.tuple)} ${s.egress.subarray(0, 30).toString('latin1')}`).toMatchObject({ family: 'ipv4', saddr: '127.0.0.1', daddr: '127.0.0.1', dport: c.h2 ? ports.h2c : ports.http })
    }
    const first = streams.map((s) => s.egress.subarray(0, 24).toString('latin1'))
    expect(first.some((f) => (c.h2 ? f === 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' : /^(GET|POST) \//.test(f))), `${c.name}: first bytes ${JSON.stringify(first)}`).toBe(true)
  }

  /** Feeds records (and closes) of some connections to a fresh pipeline; returns its events. */
  function pipe(recs: PlainRecord[]): { exchanges: HttpExchangeEvent[]; streamEvents: HttpStreamEvent[] } {
    const p = new HttpPipeline({ scheme: 'http', maxBodyBytes: 2 * MiB, maxConnectionBytes: 8 * MiB })
    const exchanges: HttpExchangeEvent[] = []
    const streamEvents: HttpStreamEvent[] = []
    p.on('http.exchange', (e) => exchanges.push(e))
    p.on('http.stream_event', (e) => streamEvents.push(e))
    const conns = new Set(recs.map((r) => r.conn))
    for (const r of [...recs].sort((a, b) => (a.ktime < b.ktime ? -1 : a.ktime > b.ktime ? 1 : 0))) p.push(r)
    for (const c of closes) if (conns.has(c.conn)) p.closeConnection(c.conn, c.lostBytes)
    p.end()
    return { exchanges, streamEvents }
  }

  // curl closes an HTTP/2 connection as soon as it has content-length bytes, before node's
  // http2 server writes the END_STREAM frame: neither side ever moves that frame, so the pipeline
  // rightly calls such responses incomplete. Their bytes are still checked in full.
  const complete = (c: Client) => (c.h2 ? {} : { incomplete: false })
  const bodyBytes = (b: { encoding: string; data: string } | undefined) => (b ? Buffer.from(b.data, b.encoding === 'base64' ? 'base64' : 'utf8') : Buffer.alloc(0))

  for (const c of clients) {
    describe(c.name, () => {
      it('captures a 1 MiB request body byte for byte, and the pipeline rebuilds the exchange', async () => {
        const { pid, mine } = await run(c, 'upload')
        const streams = [...assembleStreams(mine as unknown as TlsRecord[]).values()]
        checkStreams(c, pid, streams)
        const sent = streams.flatMap((s) => bodies(s.egress, c.h2))
        expect(sent.some((b) => b.equals(reqBody)), `${c.name}: request bodies ${sent.map((b) => b.length)}`).toBe(true)
        const sha = createHash('sha256').update(reqBody).digest('hex')
        const { exchanges } = pipe(mine)
        const ex = exchanges.find((e) => e.path === '/upload')
        expect(ex, `${c.name}: exchanges ${JSON.stringify(exchanges.map((e) => [e.method, e.path, e.status]))}`).toBeDefined()
        expect(ex!).toMatchObject({ method: 'POST', status: 200, scheme: 'http', gap: false, protocol: c.h2 ? '2' : '1.1', ...complete(c) })
        expect(ex!.request!.incomplete).toBe(false)
        expect(ex!.process).toEqual({ pid, tid: expect.any(Number), comm: c.comm() })
        expect(bodyBytes(ex!.request!.body).equals(reqBody)).toBe(true)
        expect(JSON.parse(bodyBytes(ex!.response!.body).toString())).toEqual({ bytes: MiB, sha256: sha })
      })

      it('captures a 1 MiB response body byte for byte', async () => {
        const { pid, mine } = await run(c, 'download')
        const streams = [...assembleStreams(mine as unknown as TlsRecord[]).values()]
        checkStreams(c, pid, streams)
        const got = streams.flatMap((s) => bodies(s.ingress, c.h2))
        expect(got.some((b) => b.equals(respBody)), `${c.name}: response bodies ${got.map((b) => b.length)}`).toBe(true)
        const ex = pipe(mine).exchanges.find((e) => e.path === '/download')
        expect(ex).toMatchObject({ method: 'GET', status: 200, gap: false, ...complete(c) })
        expect(bodyBytes(ex!.response!.body).equals(respBody)).toBe(true)
      })

      it('captures a streamed NDJSON chat response (Ollama /api/chat) line by line', async () => {
        const { pid, mine } = await run(c, 'chat')
        const streams = [...assembleStreams(mine as unknown as TlsRecord[]).values()]
        checkStreams(c, pid, streams)
        const got = streams.flatMap((s) => bodies(s.ingress, c.h2).map((b) => b.toString()))
        expect(got).toContain(chatText)
        const { exchanges, streamEvents } = pipe(mine)
        const ex = exchanges.find((e) => e.path === '/api/chat')
        expect(ex).toMatchObject({ method: 'POST', status: 200, incomplete: false, gap: false })
        expect(bodyBytes(ex!.request!.body).toString()).toBe(prompt)
        expect(bodyBytes(ex!.response!.body).toString()).toBe(chatText)
        const lines = streamEvents.filter((e) => e.id === ex!.id && e.format === 'ndjson')
        expect(lines.map((e) => e.data)).toEqual(chat.map((l) => l.trimEnd()))
      })
    })
  }

  it('captures sendmsg, recvmsg and readv across all their iovecs, in order', async () => {
    const out = join(dir, 'iov-received.bin')
    const child = spawn(python, [join(dir, 'iov.py'), String(ports.http), files.upload, out], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr!.on('data', (d) => (stderr += d))
    expect(await new Promise((r) => child.on('exit', r)), stderr).toBe(0)
    await settle()
    const mine = records.filter((r) => r.pid === child.pid)
    const streams = [...assembleStreams(mine as unknown as TlsRecord[]).values()]
    expect(streams.length).toBe(1)
    const st = streams[0]!
    expect(st.problems).toEqual([])
    const head = Buffer.from(`POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${MiB}\r\nConnection: close\r\n\r\n`)
    expect(st.egress.equals(Buffer.concat([head, reqBody]))).toBe(true)
    expect(st.ingress.equals(readFileSync(out))).toBe(true)
    expect(st.ingress.subarray(0, 15).toString()).toBe('HTTP/1.1 200 OK')
    // one sendmsg, its iovecs in separate records (the empty one yields none), never straddled
    const egress = mine.filter((r) => r.direction === 'egress').sort((a, b) => a.seq - b.seq)
    expect(egress[0]!.data.length).toBe(head.length)
    expect(egress[1]!.data.length).toBe(1000)
    expect(new Set(egress.map((r) => r.callBytes))).toEqual(new Set([head.length + MiB]))
    // the 7 + 100 byte recvmsg_into: two records of one call
    const ingress = mine.filter((r) => r.direction === 'ingress').sort((a, b) => a.seq - b.seq)
    expect(ingress.slice(0, 2).map((r) => [r.data.length, r.callOffset, r.first, r.last])).toEqual([[7, 0, true, false], [100, 7, false, true]])
  })

  it('captures IPv6 connections with their addresses', async (ctx) => {
    if (!ports.v6) {
      console.warn('[bpfkit] skipping IPv6: no ::1 on this machine')
      return ctx.skip()
    }
    const child = spawn('curl', ['-sS', '-o', '/dev/null', `http://[::1]:${ports.v6}/download`], { stdio: 'ignore' })
    expect(await new Promise((r) => child.on('exit', r))).toBe(0)
    await settle()
    const streams = [...assembleStreams(records.filter((r) => r.pid === child.pid) as unknown as TlsRecord[]).values()]
    expect(streams.length).toBe(1)
    expect(streams[0]!.problems).toEqual([])
    expect(streams[0]!.tuple).toMatchObject({ family: 'ipv6', saddr: '::1', daddr: '::1', dport: ports.v6 })
    expect(h1Body(streams[0]!.ingress).equals(respBody)).toBe(true)
  })

  it('captures the server side of the same connections, with the mirrored 4-tuple', () => {
    const srv = records.filter((r) => r.pid === server.pid)
    expect(srv.length).toBeGreaterThan(0)
    expect(new Set(srv.map((r) => r.comm))).toEqual(new Set([nodeComm()]))
    // every client connection has a server-side twin: same ports, swapped
    const clientTuples = new Set(records.filter((r) => r.pid !== server.pid && r.tuple?.dport === ports.http).map((r) => `${r.tuple!.sport}`))
    const serverTuples = new Set(srv.filter((r) => r.tuple?.sport === ports.http).map((r) => `${r.tuple!.dport}`))
    expect(clientTuples.size).toBeGreaterThan(0)
    for (const t of clientTuples) expect(serverTuples.has(t)).toBe(true)
  })

  it('reports each captured connection closing (TCP_CLOSE)', () => {
    const captured = new Set(records.map((r) => r.conn))
    const closed = new Set(closes.map((c) => c.conn))
    // clients close their connections before exiting: all of theirs are closed by now
    const clientConns = new Set(records.filter((r) => r.pid !== server.pid).map((r) => r.conn))
    const info = (c: string) => {
      const base = c.split('#')[0]!
      return JSON.stringify({
        recs: records.filter((r) => r.conn.split('#')[0] === base).map((r) => [r.conn, r.pid, r.comm, r.direction, r.seq, String(r.ktime), r.tuple?.sport, r.tuple?.dport]),
        closes: closes.filter((x) => x.conn.split('#')[0] === base).map((x) => [x.conn, String(x.ktime), x.tuple?.sport, x.tuple?.dport]),
      })
    }
    for (const c of clientConns) expect(closed.has(c), `${c} not closed ${info(c)}`).toBe(true)
    expect(closes.every((c) => captured.has(c.conn))).toBe(true)
  })

  it('does not capture TLS connections', async () => {
    const before = sensor.refreshStats().tlsConnections
    const child = spawn('curl', ['-sSk', '--http1.1', '-o', '/dev/null', `https://127.0.0.1:${ports.https}/download`], { stdio: 'ignore' })
    expect(await new Promise((r) => child.on('exit', r))).toBe(0)
    await settle()
    expect(records.filter((r) => r.pid === child.pid)).toEqual([])
    expect(records.filter((r) => r.tuple?.sport === ports.https || r.tuple?.dport === ports.https)).toEqual([])
    // both ends (curl and the server) were recognised as TLS in the kernel
    expect(sensor.stats.kernel.tlsConnections - before).toBeGreaterThanOrEqual(2)
  })

  it('never captures the agent itself', async () => {
    const localPort = await new Promise<number>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: ports.http, path: '/download', agent: false }, (res) => {
        res.resume()
        res.on('end', () => resolve(req.socket!.localPort!))
      })
      req.on('error', reject)
    })
    await settle()
    expect(records.filter((r) => r.pid === process.pid)).toEqual([])
    // but the server's side of that exchange was captured
    expect(records.some((r) => r.pid === server.pid && r.direction === 'egress' && r.tuple?.dport === localPort)).toBe(true)
  })

  it('dropped nothing', () => {
    sensor.flush()
    const k = sensor.stats.kernel
    expect(sensor.stats.lostRecords).toBe(0)
    expect(k.ringFullRecords + k.faultRecords + k.capBytes + k.connFull + k.callFull).toBe(0)
    expect(k.http1Connections).toBeGreaterThan(0)
    expect(k.http2Connections).toBeGreaterThan(0)
    // gaps only where a connection was joined mid-stream (other programs' traffic, not ours)
    const ours = records.filter((r) => r.tuple && [ports.http, ports.h2c].some((p) => r.tuple!.sport === p || r.tuple!.dport === p))
    expect(ours.filter((r) => r.gap).map((r) => [r.pid === server.pid, r.direction, r.gap, r.protocol, Buffer.from(r.data.subarray(0, 12)).toString('hex')])).toEqual([])
  })

  describe('options and limits', () => {
    it('counts bytes beyond maxBytesPerCall as gaps, accounting for every byte', async () => {
      const s = new PlainSocketSensor({ maxBytesPerCall: 4096, ports: [ports.http] })
      const recs: PlainRecord[] = []
      const cls: PlainCloseEvent[] = []
      s.on('record', (r) => recs.push(r))
      s.on('close', (c) => cls.push(c))
      try {
        const child = spawn('curl', ['-sS', '--http1.1', '-o', '/dev/null', '--data-binary', `@${files.upload}`, `http://127.0.0.1:${ports.http}/upload`], { stdio: 'ignore' })
        expect(await new Promise((r) => child.on('exit', r))).toBe(0)
        await new Promise((r) => setTimeout(r, 120))
        s.flush()
        const out = recs.filter((r) => r.pid === child.pid && r.direction === 'egress').sort((a, b) => a.seq - b.seq)
        expect(out.length).toBeGreaterThan(1)
        expect(out.every((r) => r.data.length <= 4096)).toBe(true)
        expect(out.some((r) => r.truncated)).toBe(true)
        // offsets account for every byte: captured + gaps (+ trailing loss reported at close) = what curl sent
        let next = 0
        let lost = 0
        for (const r of out) {
          expect(r.offset).toBe(next + (r.gap ?? 0))
          lost += r.gap ?? 0
          next = r.offset + r.data.length
        }
        const head = Buffer.from(out[0]!.data).indexOf('\r\n\r\n') + 4
        expect(head).toBeGreaterThan(4)
        const trailing = out[out.length - 1]!.callBytes - (out[out.length - 1]!.callOffset + out[out.length - 1]!.data.length)
        expect(next + trailing).toBe(head + MiB)
        expect(s.stats.kernel.capBytes).toBeGreaterThanOrEqual(lost + trailing)
        expect(lost + trailing).toBeGreaterThan(0)
        // the trailing loss of the connection is reported when it closes
        const close = cls.find((c) => c.conn === out[0]!.conn)
        expect(close?.lostBytes).toBeGreaterThanOrEqual(trailing)
        // only the listed port
        expect(recs.every((r) => r.tuple?.sport === ports.http || r.tuple?.dport === ports.http)).toBe(true)
        // the pipeline marks the request as cut short rather than inventing bytes
        const p = new HttpPipeline({ scheme: 'http' })
        const ex: HttpExchangeEvent[] = []
        p.on('http.exchange', (e) => ex.push(e))
        for (const r of recs.filter((r) => r.pid === child.pid)) p.push(r)
        p.end()
        expect(ex[0]?.gap).toBe(true)
      } finally {
        s.close()
      }
    })

    it('captures only the listed pids and ports', async () => {
      const s = new PlainSocketSensor({ pids: [server.pid!], ports: [ports.h2c] })
      const recs: PlainRecord[] = []
      s.on('record', (r) => recs.push(r))
      try {
        for (const port of [ports.http, ports.h2c]) {
          const child = spawn('curl', ['-sS', '--http2-prior-knowledge', '-o', '/dev/null', `http://127.0.0.1:${port}/download`], { stdio: 'ignore' })
          await new Promise((r) => child.on('exit', r))
        }
        await new Promise((r) => setTimeout(r, 120))
        s.flush()
        expect(recs.length).toBeGreaterThan(0)
        expect(new Set(recs.map((r) => r.pid))).toEqual(new Set([server.pid]))
        expect(new Set(recs.map((r) => r.tuple?.sport))).toEqual(new Set([ports.h2c]))
      } finally {
        s.close()
      }
    })

    it('picks up a keep-alive connection opened before it started, at its next request', async () => {
      // a node client that makes a request, waits for "go" on stdin, then reuses the connection
      const script = `
        import http from 'node:http'
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
        const get = () => new Promise((r) => http.get({ host: '127.0.0.1', port: ${ports.http}, path: '/download', agent }, (res) => { res.resume(); res.on('end', r) }))
        await get()
        process.stdout.write('ready\\n')
        process.stdin.once('data', async () => { await get(); agent.destroy(); process.exit(0) })`
      writeFileSync(join(dir, 'keepalive.mjs'), script)
      const child = spawn(process.execPath, [join(dir, 'keepalive.mjs')], { stdio: ['pipe', 'pipe', 'inherit'] })
      await firstOutput(child, 'the keep-alive client')
      const s = new PlainSocketSensor({ pids: [child.pid!] })
      const recs: PlainRecord[] = []
      s.on('record', (r) => recs.push(r))
      try {
        child.stdin!.write('go\n')
        expect(await new Promise((r) => child.on('exit', r))).toBe(0)
        await new Promise((r) => setTimeout(r, 120))
        s.flush()
        const streams = [...assembleStreams(recs as unknown as TlsRecord[]).values()]
        expect(streams.length).toBe(1)
        expect(streams[0]!.egress.subarray(0, 14).toString()).toBe('GET /download ')
        expect(h1Body(streams[0]!.ingress).equals(respBody)).toBe(true)
      } finally {
        s.close()
      }
    })

    it('rejects bad options with typed errors', () => {
      expect(() => new PlainSocketSensor({ maxBytesPerCall: 100 })).toThrow(InvalidArgumentError)
      expect(() => new PlainSocketSensor({ ports: [70000] })).toThrow(InvalidArgumentError)
      expect(() => new PlainSocketSensor({ ringBytes: 5000 })).toThrow(InvalidArgumentError)
      expect(() => new PlainSocketSensor({ comm: '' })).toThrow(InvalidArgumentError)
      expect(() => new PlainSocketSensor({ pids: [-1] })).toThrow(InvalidArgumentError)
    })
  })
})

describe('plain record decoder', () => {
  const codec = codecForType<RawSockEvent>(CollectionSpec.fromFile(bundledObject('sockdata.bpf.o')).btf!, 'sock_event') as Codec<RawSockEvent>
  const raw = (over: Partial<RawSockEvent>): RawSockEvent => ({
    ktime: 1n, conn: 0xffff888100000000n, seq: 0n, stream_off: 0n, gap: 0n, call_len: 4n, call_off: 0, len: 4, pid: 10, tid: 10, fd: 3,
    sport: 80, dport: 5000, family: 2, dir: 0, lib: 1, flags: 3, comm: 'srv', saddr: new Uint8Array(16), daddr: new Uint8Array(16), ...over,
  })

  it('keys a socket by its address, and a reused address after a close as a new connection', () => {
    const d = new PlainRecordDecoder(codec)
    expect(d.record(raw({}), new Uint8Array(4)).conn).toBe('sk:ffff888100000000')
    expect(d.record(raw({ seq: 1n, stream_off: 4n }), new Uint8Array(4)).conn).toBe('sk:ffff888100000000')
    expect(d.close(raw({ flags: 32 })).conn).toBe('sk:ffff888100000000')
    expect(d.record(raw({}), new Uint8Array(4)).conn).toBe('sk:ffff888100000000#1')
  })

  it('keys a stream that restarts at seq 0 without a close (kernel state evicted) as a new connection', () => {
    const d = new PlainRecordDecoder(codec)
    const a = d.record(raw({}), new Uint8Array(4))
    const b = d.record(raw({ dir: 1 }), new Uint8Array(4)) // the other direction's first record: same connection
    expect(b.conn).toBe(a.conn)
    const c = d.record(raw({ ktime: 9n }), new Uint8Array(4))
    expect(c.conn).toBe(`${a.conn}#1`)
    expect(d.restarts).toBe(1)
    expect(d.record(raw({ dir: 1, seq: 0n }), new Uint8Array(4)).conn).toBe(`${a.conn}#1`)
  })
})

function h1Body(stream: Buffer): Buffer {
  return bodies(stream, false)[0] ?? Buffer.alloc(0)
}
