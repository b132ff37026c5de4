/**
 * Plain HTTP requests per second with and without the plain-socket sensor.
 *
 * A node http server and a node keep-alive client (CONCURRENCY requests in
 * flight, a small JSON POST answered with 1 KiB) talk over loopback for
 * SECONDS per run, in three settings:
 *  - base: no sensor;
 *  - capture: a PlainSocketSensor in this process captures every byte of both
 *    node processes (both ends of every connection) and this process
 *    consumes all of it;
 *  - hooks only: the same sensor with a `ports` option that matches nothing,
 *    so every syscall runs the BPF programs (fd -> socket lookup, socket
 *    state) but nothing is copied: the floor cost on unrelated traffic.
 * Settings are interleaved and repeated RUNS times; medians and the ratios to
 * base are printed, then one JSON line. Requests per second on a shared
 * 2-core VM are noisy, so the BPF programs' own run time per invocation
 * (kernel.bpf_stats_enabled, read with bpftool) is printed too: it does not
 * depend on what else the machine runs.
 *
 *   cd bench && pnpm exec tsx plain/overhead.ts [SECONDS=3] [CONCURRENCY=8] [RUNS=3]
 */
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { PlainSocketSensor, plain } from '@bpfkit/core'
import { median, round } from '../common.js'
import { httpLoad } from '../http-load.js'

const SECONDS = Number(process.argv[2] ?? 3)
const CONCURRENCY = Number(process.argv[3] ?? 8)
const RUNS = Number(process.argv[4] ?? 3)
const requestsPerSecond = httpLoad({ tls: false, seconds: SECONDS, concurrency: CONCURRENCY, path: '/api/chat' })

/** Run time and count per program of the sensor (names start with sd_), from bpftool. */
function programStats(): Map<string, { ns: number; runs: number }> {
  const out = new Map<string, { ns: number; runs: number }>()
  try {
    const progs = JSON.parse(execFileSync('bpftool', ['prog', 'show', '-j'], { encoding: 'utf8', maxBuffer: 64 << 20 })) as { name?: string; run_time_ns?: number; run_cnt?: number }[]
    for (const p of progs) {
      if (!p.name?.startsWith('sd_')) continue
      const o = out.get(p.name) ?? { ns: 0, runs: 0 }
      o.ns += p.run_time_ns ?? 0
      o.runs += p.run_cnt ?? 0
      out.set(p.name, o)
    }
  } catch {
    // no bpftool: rps figures only
  }
  return out
}

const perProgram = { capture: new Map<string, { ns: number; runs: number }>(), hooks: new Map<string, { ns: number; runs: number }>() }

async function withSensor(options: plain.PlainSocketSensorOptions, setting: keyof typeof perProgram): Promise<{ rps: number; records: number; bytes: number; lost: number; gapBytes: number }> {
  const sensor = new PlainSocketSensor(options)
  let records = 0
  let bytes = 0
  sensor.on('record', (r) => {
    records++
    bytes += r.data.length
  })
  try {
    const rps = await requestsPerSecond()
    sensor.flush()
    for (const [name, v] of programStats()) {
      const o = perProgram[setting].get(name) ?? { ns: 0, runs: 0 }
      o.ns += v.ns
      o.runs += v.runs
      perProgram[setting].set(name, o)
    }
    return { rps, records, bytes, lost: sensor.stats.lostRecords, gapBytes: sensor.stats.gapBytes }
  } finally {
    sensor.close()
  }
}

function averages(m: Map<string, { ns: number; runs: number }>): Record<string, number> {
  return Object.fromEntries([...m].filter(([, v]) => v.runs > 0).map(([k, v]) => [k, Math.round(v.ns / v.runs)]))
}

const statsFile = '/proc/sys/kernel/bpf_stats_enabled'
let statsBefore: string | undefined
try {
  statsBefore = readFileSync(statsFile, 'utf8').trim()
  writeFileSync(statsFile, '1')
} catch {
  statsBefore = undefined
}
const base: number[] = []
const captured: number[] = []
const hooks: number[] = []
let records = 0
let bytes = 0
let lost = 0
let gapBytes = 0
for (let r = 0; r < RUNS; r++) {
  base.push(await requestsPerSecond())
  const c = await withSensor({ comm: 'node' }, 'capture')
  captured.push(c.rps)
  records += c.records
  bytes += c.bytes
  lost += c.lost
  gapBytes += c.gapBytes
  const h = await withSensor({ ports: [1] }, 'hooks')
  if (h.records !== 0) throw new Error('the hooks-only setting captured records: its figure would be meaningless')
  hooks.push(h.rps)
}
if (statsBefore !== undefined) writeFileSync(statsFile, statsBefore)
if (records === 0) throw new Error('the sensor captured nothing: the capture figure would be meaningless')
const res = {
  concurrency: CONCURRENCY,
  seconds: SECONDS,
  base_rps: Math.round(median(base)),
  capture_rps: Math.round(median(captured)),
  hooks_only_rps: Math.round(median(hooks)),
  capture_ratio: round(median(captured) / median(base)),
  hooks_only_ratio: round(median(hooks) / median(base)),
  records,
  bytes,
  lost,
  gap_bytes: gapBytes,
  /** average BPF run time per invocation, ns: while capturing, and with nothing selected */
  bpf_ns_capture: averages(perProgram.capture),
  bpf_ns_hooks_only: averages(perProgram.hooks),
}
console.log(`runs: base ${base.map((x) => Math.round(x)).join(' ')} | capture ${captured.map((x) => Math.round(x)).join(' ')} | hooks only ${hooks.map((x) => Math.round(x)).join(' ')}`)
console.log(
  `plain HTTP keep-alive, ${CONCURRENCY} in flight: ${res.base_rps} req/s without the sensor, ${res.capture_rps} capturing both ends (x${res.capture_ratio}), ${res.hooks_only_rps} with hooks but nothing selected (x${res.hooks_only_ratio})`,
)
const show = (m: Record<string, number>) => Object.entries(m).map(([k, v]) => `${k} ${v} ns`).join(', ')
if (perProgram.capture.size) console.log(`BPF time per invocation, capturing: ${show(res.bpf_ns_capture)}`)
if (perProgram.hooks.size) console.log(`BPF time per invocation, nothing selected: ${show(res.bpf_ns_hooks_only)}`)
console.log(JSON.stringify(res))
