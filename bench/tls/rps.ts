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
import { spawn } from 'node:child_process'
import { TlsSensor } from '@bpfkit/core'
import { median, round } from '../common.js'
import { httpLoad, node } from '../http-load.js'

const SECONDS = Number(process.argv[2] ?? 3)
const CONCURRENCY = Number(process.argv[3] ?? 8)
const RUNS = 3
const requestsPerSecond = httpLoad({ tls: true, seconds: SECONDS, concurrency: CONCURRENCY, path: '/v1/chat' })

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

