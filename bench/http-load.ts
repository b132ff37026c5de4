/**
 * Shared load generator for the requests-per-second benchmarks: a node HTTP or
 * HTTPS server and a node keep-alive client, each in its own process (so
 * capture sensors see them as ordinary programs), for a fixed time with a
 * fixed number of requests in flight. The client POSTs a small JSON body and
 * the server answers 1 KiB.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, realpathSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface HttpLoadOptions {
  tls: boolean
  seconds: number
  concurrency: number
  /** request path (recognisers downstream may care) */
  path: string
}

export const node = realpathSync(process.execPath)

/** Writes the server and client scripts (and a certificate for TLS) once; returns a function measuring req/s. */
export function httpLoad(o: HttpLoadOptions): () => Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'bpfkit-load-'))
  const mod = o.tls ? 'https' : 'http'
  let serverOptions = ''
  if (o.tls) {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' })
    serverOptions = `{ key: readFileSync(${JSON.stringify(join(dir, 'key.pem'))}), cert: readFileSync(${JSON.stringify(join(dir, 'cert.pem'))}) }, `
  }
  writeFileSync(
    join(dir, 'server.mjs'),
    `import ${mod} from 'node:${mod}'
import { readFileSync } from 'node:fs'
const body = Buffer.alloc(1024, 'x')
const s = ${mod}.createServer(${serverOptions}(req, res) => {
  req.resume()
  req.on('end', () => res.end(body))
})
s.keepAliveTimeout = 60000
s.listen(0, '127.0.0.1', () => console.log(s.address().port))
`,
  )
  writeFileSync(
    join(dir, 'client.mjs'),
    `import ${mod} from 'node:${mod}'
const [port, seconds, concurrency] = process.argv.slice(2).map(Number)
const agent = new ${mod}.Agent({ keepAlive: true, maxSockets: concurrency${o.tls ? ', rejectUnauthorized: false' : ''} })
const payload = JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'hello' }], stream: false })
let done = 0
const end = Date.now() + seconds * 1000
function one() {
  if (Date.now() >= end) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const req = ${mod}.request({ host: '127.0.0.1', port, path: ${JSON.stringify(o.path)}, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
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

  return async function requestsPerSecond(): Promise<number> {
    const { child: server, port } = await startServer()
    try {
      const client = spawn(node, [join(dir, 'client.mjs'), String(port), String(o.seconds), String(o.concurrency)], { stdio: ['ignore', 'pipe', 'inherit'] })
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
}
