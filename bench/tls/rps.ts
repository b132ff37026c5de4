/**
 * HTTPS requests per second with and without TLS capture (issue 3/5).
 *
 * A node HTTPS server and a node keep-alive client (CONCURRENCY requests in
 * flight) talk over loopback for SECONDS per run, in three settings:
 *  - base: no probes;
 *  - bpfkit: a TlsSensor in this process captures every SSL_write/SSL_read of
 *    both node processes and this process consumes all of it;
 *  - bpftrace: the peer, a bpftrace script with a uprobe on SSL_write and
 *    SSL_read that reads 64 bytes per call (Debian's bpftrace package).
 * Settings are interleaved and repeated RUNS times; medians and the ratios to
 * base are printed, then one JSON line.
 *
 *   tsx bench/tls/rps.ts [SECONDS=3] [CONCURRENCY=8]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, realpathSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TlsSensor } from '@bpfkit/core'
import { median, round } from '../common.js'

const SECONDS = Number(process.argv[2] ?? 3)
const CONCURRENCY = Number(process.argv[3] ?? 8)
const RUNS = 3
const node = realpathSync(process.execPath)
const dir = mkdtempSync(join(tmpdir(), 'bpfkit-rps-'))
execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' })

writeFileSync(
  join(dir, 'server.mjs'),
  `import https from 'node:https'
import { readFileSync } from 'node:fs'
const body = Buffer.alloc(1024, 'x')
const s = https.createServer({ key: readFileSync(${JSON.stringify(join(dir, 'key.pem'))}), cert: readFileSync(${JSON.stringify(join(dir, 'cert.pem'))}) }, (req, res) => {
  req.resume()
  req.on('end', () => res.end(body))
})
s.keepAliveTimeout = 60000
s.listen(0, '127.0.0.1', () => console.log(s.address().port))
`,
)
writeFileSync(
  join(dir, 'client.mjs'),
  `import https from 'node:https'
const [port, seconds, concurrency] = process.argv.slice(2).map(Number)
const agent = new https.Agent({ keepAlive: true, maxSockets: concurrency, rejectUnauthorized: false })
const payload = JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'hello' }] })
let done = 0
const end = Date.now() + seconds * 1000
function one() {
  if (Date.now() >= end) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/v1/chat', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      res.resume()
      res.on('end', () => { done++; resolve() })
    })
    req.on('error', reject)
    req.end(payload)
  }).then(one)
}
const t0 = performance.now()
await Promise.all(Array.from({ length: concurrency }, one))
console.log(JSON.stringify({ requests: done, seconds: (performance.now() - t0) / 1000 }))
agent.destroy()
`,
)

function startServer(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(node, [join(dir, 'server.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', (d) => resolve({ child, port: Number(String(d).trim()) }))
    child.once('exit', (code) => reject(new Error(`server exited (${code})`)))
  })
}

async function requestsPerSecond(): Promise<number> {
  const { child: server, port } = await startServer()
  try {
    const client = spawn(node, [join(dir, 'client.mjs'), String(port), String(SECONDS), String(CONCURRENCY)], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    client.stdout!.on('data', (d) => (out += d))
    const code = await new Promise((r) => client.on('exit', r))
    if (code !== 0) throw new Error(`client exited with ${code}`)
    const { requests, seconds } = JSON.parse(out) as { requests: number; seconds: number }
    return requests / seconds
  } finally {
    server.kill()
  }
}

async function withBpfkit(): Promise<{ rps: number; records: number; lost: number }> {
  const sensor = new TlsSensor({ comm: 'node' })
  let records = 0
  sensor.on('record', () => records++)
  try {
    const rps = await requestsPerSecond()
    sensor.flush()
    return { rps, records, lost: sensor.stats.lostRecords }
  } finally {
    sensor.close()
  }
}

/** The peer: one uprobe per SSL_write/SSL_read call that reads 64 bytes of the buffer. */
async function withBpftrace(): Promise<number> {
  const script = `uprobe:${node}:SSL_write, uprobe:${node}:SSL_read { @last = buf(arg1, 64); @calls = count(); }`
  const bt = spawn('bpftrace', ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  bt.stdout!.on('data', (d) => (out += d))
  bt.stderr!.on('data', (d) => (out += d))
  await new Promise<void>((resolve, reject) => {
    const t = setInterval(() => {
      if (/Attaching \d+ probe/.test(out)) {
        clearInterval(t)
        setTimeout(resolve, 500) // attached after the banner
      }
    }, 50)
    bt.once('exit', (code) => {
      clearInterval(t)
      reject(new Error(`bpftrace exited (${code}): ${out}`))
    })
  })
  try {
    return await requestsPerSecond()
  } finally {
    bt.removeAllListeners('exit')
    bt.kill('SIGINT')
    await new Promise((r) => bt.once('exit', r))
    const calls = Number(/@calls: (\d+)/.exec(out)?.[1] ?? 0)
    if (calls === 0) throw new Error(`bpftrace saw no SSL calls: ${out.slice(-500)}`)
  }
}

const base: number[] = []
const captured: number[] = []
const traced: number[] = []
let records = 0
let lost = 0
for (let r = 0; r < RUNS; r++) {
  base.push(await requestsPerSecond())
  const b = await withBpfkit()
  captured.push(b.rps)
  records += b.records
  lost += b.lost
  traced.push(await withBpftrace())
}
if (records === 0) throw new Error('the TLS sensor captured nothing: the bpfkit figure would be meaningless')
const res = {
  concurrency: CONCURRENCY,
  base_rps: Math.round(median(base)),
  bpfkit_rps: Math.round(median(captured)),
  bpftrace_rps: Math.round(median(traced)),
  bpfkit_ratio: round(median(captured) / median(base)),
  bpftrace_ratio: round(median(traced) / median(base)),
  bpfkit_vs_bpftrace: round(median(captured) / median(traced)),
  records,
  lost,
}
console.log(`runs: base ${base.map((x) => Math.round(x)).join(' ')} | bpfkit ${captured.map((x) => Math.round(x)).join(' ')} | bpftrace ${traced.map((x) => Math.round(x)).join(' ')}`)
console.log(
  `HTTPS keep-alive, ${CONCURRENCY} in flight: ${res.base_rps} req/s without capture, ${res.bpfkit_rps} with bpfkit (x${res.bpfkit_ratio}, full plaintext), ${res.bpftrace_rps} with bpftrace 64 B/call (x${res.bpftrace_ratio})`,
)
console.log(JSON.stringify(res))

