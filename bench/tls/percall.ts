/**
 * TLS capture per-call cost (issue 3/5), against the empty-uprobe floor
 * measured in the same run.
 *
 * sslwrite-bench (test/fixtures/tls/sslwrite-bench.c) does N SSL_write calls of
 * SIZE bytes between two in-process SSL objects over memory BIOs (no syscalls)
 * and prints ns per SSL_write. We run it without probes, with TlsSensor
 * capturing (consuming every record in this process), and run the shared
 * peer `uprobe-attach empty` / `empty_ret` for the floor. The capture cost per
 * call is (with capture − without); the ratio is that cost over the floor of
 * one empty uprobe (and over an empty uprobe+uretprobe pair, which is what a
 * capture of data + return value needs at minimum).
 *
 *   tsx bench/tls/percall.ts [N=20000] [SIZE=4096]
 */
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TlsSensor } from '@bpfkit/core'
import { buildPeers, median, parseKv, repoRoot, round } from '../common.js'

const N = Number(process.argv[2] ?? 20000)
const SIZE = Number(process.argv[3] ?? 4096)
const RUNS = 3
const dir = mkdtempSync(join(tmpdir(), 'bpfkit-tlsbench-'))
const bench = join(dir, 'sslwrite-bench')
execFileSync('cc', ['-O2', join(repoRoot, 'packages/core/test/fixtures/tls/sslwrite-bench.c'), '-o', bench, '-lssl', '-lcrypto'])
execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' })
const peers = buildPeers()

/** ns per SSL_write of the benchmark program (run asynchronously so the sensor can consume meanwhile). */
async function sslWrite(): Promise<number> {
  const child = spawn(bench, [join(dir, 'cert.pem'), join(dir, 'key.pem'), String(N), String(SIZE)], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  await new Promise((r) => child.on('exit', r))
  return Number(parseKv(out).ns_per_ssl_write)
}

function floor(kind: 'empty' | 'empty_ret'): number {
  const env = { ...process.env, EMPTY_OBJ: join(peers, 'empty.bpf.o'), UPROBE_TARGET: join(peers, 'uprobe-target') }
  const args = kind === 'empty' ? ['empty'] : ['empty_ret', 'ret']
  const out = execFileSync(join(peers, 'uprobe-attach'), args, { env, encoding: 'utf8' })
  return Number(parseKv(out.trim().split('\n').pop()!).ns_per_call)
}

const base: number[] = []
const captured: number[] = []
const empty: number[] = []
const pair: number[] = []
let records = 0
let lost = 0
for (let r = 0; r < RUNS; r++) {
  base.push(await sslWrite())
  const sensor = new TlsSensor({ comm: 'sslwrite-bench' })
  sensor.on('record', () => records++)
  captured.push(await sslWrite())
  sensor.flush()
  lost += sensor.stats.lostRecords
  sensor.close()
  empty.push(floor('empty'))
  pair.push(floor('empty_ret'))
}
const cost = median(captured) - median(base)
const res = {
  size: SIZE,
  ssl_write_ns: round(median(base)),
  ssl_write_captured_ns: round(median(captured)),
  capture_cost_ns: round(cost),
  empty_uprobe_ns: round(median(empty)),
  empty_uretprobe_ns: round(median(pair)),
  ratio_to_uprobe: round(cost / median(empty)),
  ratio_to_uretprobe: round(cost / median(pair)),
  records,
  lost,
}
console.log(`${SIZE} B SSL_write: ${res.ssl_write_ns} ns plain, ${res.ssl_write_captured_ns} ns captured (+${res.capture_cost_ns} ns); floor: empty uprobe ${res.empty_uprobe_ns} ns, empty uretprobe ${res.empty_uretprobe_ns} ns`)
console.log(JSON.stringify(res))
