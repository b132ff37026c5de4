/**
 * Process-sensor overhead benchmark (issue 2/5).
 *
 * Times a fork/exec loop (a shell running /bin/true N times) three ways in the
 * same run: with nothing attached, with bpfkit's ProcessSensor consuming in
 * this process, and with libbpf-tools' execsnoop (Debian package libbpf-tools)
 * as the peer. Prints exec rates, each tracer's slowdown ratio, and whether
 * every exec was delivered.
 *
 *   tsx bench/exec/run.ts [N]
 */
import { spawn } from 'node:child_process'
import { ProcessSensor } from '@bpfkit/core'
import { median, round } from '../common.js'

const N = Number(process.argv[2] ?? 3000)
const RUNS = 3
const LOOP = `i=0; while [ $i -lt ${N} ]; do /bin/true; i=$((i+1)); done`

/** Runs the loop; returns seconds and the shell's pid. */
async function loop(): Promise<{ seconds: number; pid: number }> {
  const t0 = process.hrtime.bigint()
  const sh = spawn('/bin/sh', ['-c', LOOP], { stdio: 'ignore' })
  await new Promise((r) => sh.on('exit', r))
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, pid: sh.pid! }
}

async function baseline(): Promise<number> {
  return (await loop()).seconds
}

async function withSensor(): Promise<{ seconds: number; delivered: number; lost: number }> {
  const sensor = new ProcessSensor({ ancestors: true })
  let shellPid = -1
  let delivered = 0
  sensor.on('event', (e) => {
    if (e.type === 'process.exec' && e.process.parent_pid === shellPid && e.process.executable.path === '/bin/true') delivered++
  })
  const sh = spawn('/bin/sh', ['-c', `read x; ${LOOP}`], { stdio: ['pipe', 'ignore', 'ignore'] })
  shellPid = sh.pid!
  const t0 = process.hrtime.bigint()
  sh.stdin!.end('go\n')
  await new Promise((r) => sh.on('exit', r))
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  await new Promise((r) => setTimeout(r, 200))
  sensor.close()
  return { seconds, delivered, lost: sensor.stats.lost }
}

async function withExecsnoop(): Promise<{ seconds: number; delivered: number }> {
  // line-buffered: execsnoop's header is how we know it has attached
  const snoop = spawn('stdbuf', ['-oL', 'execsnoop'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  snoop.stdout.on('data', (d) => (out += d))
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('execsnoop did not start (is libbpf-tools installed?)')), 10_000)
    snoop.stdout.once('data', () => (clearTimeout(t), resolve())) // header line = attached
    snoop.on('exit', (c) => reject(new Error(`execsnoop exited with ${c}`)))
  })
  const { seconds } = await loop()
  await new Promise((r) => setTimeout(r, 500))
  snoop.kill('SIGINT')
  await new Promise((r) => snoop.on('exit', r))
  const delivered = out.split('\n').filter((l) => /^true\s/.test(l)).length
  return { seconds, delivered }
}

const base: number[] = []
const ours: number[] = []
const peer: number[] = []
let oursDelivered = Infinity
let oursLost = 0
let peerDelivered = Infinity
for (let r = 0; r < RUNS; r++) {
  base.push(await baseline())
  const s = await withSensor()
  ours.push(s.seconds)
  oursDelivered = Math.min(oursDelivered, s.delivered)
  oursLost += s.lost
  const p = await withExecsnoop()
  peer.push(p.seconds)
  peerDelivered = Math.min(peerDelivered, p.delivered)
}
const res = {
  n: N,
  base_execs_per_s: Math.round(N / median(base)),
  bpfkit_execs_per_s: Math.round(N / median(ours)),
  execsnoop_execs_per_s: Math.round(N / median(peer)),
  bpfkit_ratio: round(median(ours) / median(base), 3),
  execsnoop_ratio: round(median(peer) / median(base), 3),
  bpfkit_min_delivered: oursDelivered,
  bpfkit_lost: oursLost,
  execsnoop_min_delivered: peerDelivered,
}
console.log(`fork/exec loop of ${N}, median of ${RUNS}: base ${res.base_execs_per_s}/s, bpfkit ${res.bpfkit_execs_per_s}/s (x${res.bpfkit_ratio} time), execsnoop ${res.execsnoop_execs_per_s}/s (x${res.execsnoop_ratio} time); delivered ${oursDelivered}/${N} (execsnoop ${peerDelivered}/${N})`)
console.log(JSON.stringify(res))
