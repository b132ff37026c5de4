/**
 * TLS capture per-call cost (issue 3/5), against the empty-uprobe floor
 * measured in the same run.
 *
 * sslwrite-bench (test/fixtures/tls/sslwrite-bench.c) does N SSL_write calls of
 * SIZE bytes between two in-process SSL objects over memory BIOs (no syscalls)
 * and prints ns per SSL_write. We run it without probes, with TlsSensor
 * capturing, and run the shared peer `uprobe-attach empty` / `empty_ret` for
 * the floor. The capture cost per call is (with capture − without); the ratio
 * is that cost over the floor of one empty uprobe (and over an empty
 * uretprobe, which is what a capture of data + return value needs at minimum).
 *
 * Two captured figures, because on a small machine the reader competes with
 * the traced program for CPU:
 *  - `deferred`: the sensor reads the ring only after the run (the ring holds
 *    every record of it): the cost the capture adds to the traced thread
 *    itself (traps + BPF work), which is what the target is about;
 *  - `live`: records are read and delivered in this process while the
 *    program runs (the default 20 ms timer): adds the reader's CPU, which on
 *    a 2-vCPU VM shared with other work largely lands on the traced program.
 * Every record is counted; none may be lost.
 *
 * The peer's floor is a trap in a 2-instruction function called in a tight
 * loop; a trap in the middle of real work (AES-GCM over 4 KiB) costs more,
 * as caches and TLBs refill after it. So the same empty programs are also
 * attached to SSL_write itself (uprobe alone, and uprobe + uretprobe) in this
 * very benchmark: `ratio_same_site` is the capture cost over one empty uprobe
 * at the same place, and `bpf_work_ns` what the capture adds over an empty
 * uprobe + uretprobe there (the BPF programs' own work).
 *
 * With kernel.bpf_stats_enabled=1 (set it yourself: it is machine-wide) the
 * BPF run time per program run (bpftool run_time_ns / run_cnt) is printed
 * too: the low-noise figure for the BPF side alone.
 *
 *   tsx bench/tls/percall.ts [N=20000] [SIZE=4096]
 */
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Collection, CollectionSpec, TlsSensor } from '@bpfkit/core'
import { buildPeers, median, parseKv, repoRoot, round } from '../common.js'

const N = Number(process.argv[2] ?? 20000)
const SIZE = Number(process.argv[3] ?? 4096)
const RUNS = Number(process.env.RUNS ?? 7)
const RING = 64 << 20
/* deferred: every record of the run (one per SSL_write and one per SSL_read) must fit in the ring */
const N_DEFERRED = Math.min(N, Math.floor((0.8 * RING) / (2 * (SIZE + 256))))
const dir = mkdtempSync(join(tmpdir(), 'bpfkit-tlsbench-'))
const bench = join(dir, 'sslwrite-bench')
execFileSync('cc', ['-O2', join(repoRoot, 'packages/core/test/fixtures/tls/sslwrite-bench.c'), '-o', bench, '-lssl', '-lcrypto'])
execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' })
const peers = buildPeers()
const libssl = /libssl\.so\S*\s+=>\s+(\S+)/.exec(execFileSync('ldd', [bench], { encoding: 'utf8' }))![1]!
const bpfStats = readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8').trim() === '1'

/** ns per SSL_write of the benchmark program (run asynchronously so the sensor can consume meanwhile). */
async function sslWrite(n: number): Promise<number> {
  const child = spawn(bench, [join(dir, 'cert.pem'), join(dir, 'key.pem'), String(n), String(SIZE)], { stdio: ['ignore', 'pipe', 'inherit'] })
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

/** ns per SSL_write with the peer's empty programs on SSL_write itself (entry; and return with `ret`). */
async function emptyOnSslWrite(ret: boolean): Promise<number> {
  const coll = new Collection(CollectionSpec.fromFile(join(peers, 'empty.bpf.o')))
  const links = [coll.program('empty').attachUprobe({ binary: libssl, symbol: 'SSL_write' })]
  if (ret) links.push(coll.program('empty_ret').attachUprobe({ binary: libssl, symbol: 'SSL_write', retprobe: true }))
  try {
    return await sslWrite(N_DEFERRED)
  } finally {
    for (const l of links) l.close()
    coll.close()
  }
}

interface ProgStat {
  id: number
  name: string
  run_time_ns?: number
  run_cnt?: number
}
const progs = (): ProgStat[] => JSON.parse(execFileSync('bpftool', ['prog', 'show', '-j'], { encoding: 'utf8' })) as ProgStat[]

/** BPF ns per run of each TLS program, summed over `runs` (programs loaded by this sensor only). */
const bpfTime = new Map<string, { ns: number; runs: number }>()
async function captured(n: number, deferred: boolean): Promise<{ ns: number; records: number; lost: number }> {
  const before = bpfStats ? new Set(progs().map((p) => p.id)) : new Set<number>()
  const sensor = new TlsSensor({ comm: 'sslwrite-bench', ringBytes: RING, ...(deferred ? { flushIntervalMs: 1e9, wakeupBytes: RING - 1 } : {}) })
  let records = 0
  sensor.on('record', () => records++)
  const mine = bpfStats ? progs().filter((p) => !before.has(p.id)).map((p) => p.id) : []
  const ns = await sslWrite(n)
  if (bpfStats) {
    for (const p of progs().filter((x) => mine.includes(x.id) && x.run_cnt && /^(tls|go)_/.test(x.name))) {
      const t = bpfTime.get(p.name) ?? { ns: 0, runs: 0 }
      bpfTime.set(p.name, { ns: t.ns + p.run_time_ns!, runs: t.runs + p.run_cnt! })
    }
  }
  sensor.flush()
  const lost = sensor.stats.lostRecords + sensor.stats.kernel.ringFullRecords
  sensor.close()
  return { ns, records, lost }
}

const base: number[] = []
const baseDeferred: number[] = []
const live: number[] = []
const deferred: number[] = []
const empty: number[] = []
const pair: number[] = []
const siteEmpty: number[] = []
const sitePair: number[] = []
let records = 0
let expected = 0
let lost = 0
for (let r = 0; r < RUNS; r++) {
  base.push(await sslWrite(N))
  const l = await captured(N, false)
  live.push(l.ns)
  baseDeferred.push(await sslWrite(N_DEFERRED))
  const d = await captured(N_DEFERRED, true)
  deferred.push(d.ns)
  siteEmpty.push(await emptyOnSslWrite(false))
  sitePair.push(await emptyOnSslWrite(true))
  records += l.records + d.records
  expected += 2 * (N + N_DEFERRED) // one record per SSL_write and per SSL_read
  lost += l.lost + d.lost
  empty.push(floor('empty'))
  pair.push(floor('empty_ret'))
}
const costLive = median(live) - median(base)
const costDeferred = median(deferred) - median(baseDeferred)
const res = {
  size: SIZE,
  ssl_write_ns: round(median(base)),
  ssl_write_captured_live_ns: round(median(live)),
  ssl_write_captured_deferred_ns: round(median(deferred)),
  capture_cost_deferred_ns: round(costDeferred),
  capture_cost_live_ns: round(costLive),
  empty_uprobe_ns: round(median(empty)),
  empty_uretprobe_ns: round(median(pair)),
  ratio_to_uprobe: round(costDeferred / median(empty)),
  ratio_to_uretprobe: round(costDeferred / median(pair)),
  ratio_to_uprobe_live: round(costLive / median(empty)),
  same_site_empty_uprobe_ns: round(median(siteEmpty) - median(baseDeferred)),
  same_site_empty_uretprobe_ns: round(median(sitePair) - median(baseDeferred)),
  ratio_same_site: round(costDeferred / (median(siteEmpty) - median(baseDeferred))),
  bpf_work_ns: round(median(deferred) - median(sitePair)),
  bpf_ns_per_run: bpfStats ? Object.fromEntries([...bpfTime].map(([k, v]) => [k, Math.round(v.ns / v.runs)])) : 'kernel.bpf_stats_enabled=0',
  records,
  expected_records: expected,
  lost,
}
console.log(
  `${SIZE} B SSL_write: ${res.ssl_write_ns} ns plain; captured +${res.capture_cost_deferred_ns} ns (reader deferred), +${res.capture_cost_live_ns} ns (reader live); ` +
    `floor: empty uprobe ${res.empty_uprobe_ns} ns, empty uretprobe ${res.empty_uretprobe_ns} ns (peer), ` +
    `${res.same_site_empty_uprobe_ns} / ${res.same_site_empty_uretprobe_ns} ns on SSL_write`,
)
console.log(JSON.stringify(res))
