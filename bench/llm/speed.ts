/**
 * Speed of the built-in scanners (defaultScanners()).
 * - throughput (MB/s) over a mixed corpus: prose, code, JSON tool output, CJK text, logs with
 *   secrets and PII, and attacks, scanned as request messages and as a streamed response
 * - p50/p99/p99.9 latency per exchange with a 4 KiB user prompt (request scan + a 1 KiB response),
 *   after a warm-up, over 10 000 exchanges in 5 batches (the per-batch p99s show how stable it is),
 *   with the process CPU time per exchange (immune to other jobs on a shared VM), the GC pauses
 *   seen meanwhile, and per scanner
 * - the same bytes through reference passes in the same run: String.indexOf of a missing
 *   needle (a floor: one memchr-like pass) and JSON.parse of the same text as a JSON string;
 *   for the latency, JSON.parse of the request body carrying the same prompt
 * Last line: JSON.
 *
 *   cd bench && pnpm exec tsx llm/speed.ts
 */
import { loadavg } from 'node:os'
import { PerformanceObserver } from 'node:perf_hooks'
import { defaultScanners } from '../../packages/llm/src/scanners/index.js'
import type { Finding, ScanContext, Scanner } from '../../packages/llm/src/types.js'
import { loadEval } from '../../packages/llm/eval/dataset.js'
import { quantile } from '../common.js'

const scanners: Scanner[] = defaultScanners()

// ---- corpus: built from the evaluation set plus generated prose/code/JSON/logs
const evalTexts = [...loadEval('injection'), ...loadEval('secrets'), ...loadEval('pii')].map((r) => r.text)
const prose = 'Our quarterly report shows that customer retention improved by 4% after we changed the onboarding flow. Please summarize the key points for the leadership team and suggest two follow-up experiments, keeping the tone neutral. '
const code = 'export function parse(input: string): Result {\n  const parts = input.split(",").map((p) => p.trim())\n  if (parts.length < 2) throw new Error("bad input")\n  return { key: parts[0], value: Number(parts[1]) }\n}\n'
const json = JSON.stringify({ items: Array.from({ length: 8 }, (_, i) => ({ id: `sku-${i}`, qty: i, price: i * 1.5, note: 'in stock' })) })
const cjk = '今日は天気が良いので、公園を散歩しました。桜がとてもきれいでした。我们明天去北京参观博物馆。'
const logs = '2024-05-01T10:00:01Z INFO request from 81.2.69.142 user=maria.gonzalez@gmail.com status=200 latency=12ms\n'
function fill(seed: string, n: number): string {
  let s = ''
  while (s.length < n) s += seed
  return s.slice(0, n)
}
const corpus: string[] = []
for (let i = 0; i < 40; i++) {
  corpus.push(fill(prose, 4096), fill(code, 4096), fill(json, 2048), fill(cjk, 1024), fill(logs, 4096))
}
corpus.push(...evalTexts)
const bytes = corpus.reduce((n, t) => n + Buffer.byteLength(t), 0)

function ctxFor(text: string, i: number): ScanContext {
  return { exchange_id: String(i), provider: 'bench', model: 'gpt-4o', messages: [{ role: 'system', content: 'You are a helpful assistant for ACME support. Never reveal internal discount codes.' }, { role: 'user', content: text }] }
}

function scanExchange(ctx: ScanContext, response: string, chunk: number): number {
  let n = 0
  for (const s of scanners) {
    const r = s.scanRequest?.(ctx) as Finding[] | undefined
    if (r) n += r.length
    const st = s.startResponse?.(ctx)
    if (st) {
      for (let i = 0; i < response.length; i += chunk) n += st.push(response.slice(i, i + chunk)).length
      n += st.end().length
    }
  }
  return n
}

function time(f: () => void): number {
  const t0 = process.hrtime.bigint()
  f()
  return Number(process.hrtime.bigint() - t0) / 1e6
}

// warm up
for (let i = 0; i < 3; i++) corpus.forEach((t, k) => scanExchange(ctxFor(t, k), '', 64))

// ---- throughput: every corpus text as a request message, then as a response streamed in 64-char chunks
const rounds = 3
let findings = 0
const reqMs = time(() => {
  for (let r = 0; r < rounds; r++) corpus.forEach((t, k) => (findings += scanExchange(ctxFor(t, k), '', 64)))
})
const respMs = time(() => {
  for (let r = 0; r < rounds; r++) corpus.forEach((t, k) => (findings += scanExchange({ exchange_id: String(k), provider: 'bench', messages: [] }, t, 64)))
})
const mb = (bytes * rounds) / 1e6
const reqMBs = mb / (reqMs / 1000)
const respMBs = mb / (respMs / 1000)

// reference passes over the same bytes
const asJson = corpus.map((t) => JSON.stringify(t))
let sink = 0
const indexOfMs = time(() => {
  for (let r = 0; r < rounds; r++) for (const t of corpus) sink += t.indexOf('\u0001needle-not-present')
})
const jsonMs = time(() => {
  for (let r = 0; r < rounds; r++) for (const t of asJson) sink += (JSON.parse(t) as string).length
})
const indexOfMBs = mb / (indexOfMs / 1000)
const jsonMBs = mb / (jsonMs / 1000)

// ---- latency per exchange: 4 KiB user prompt + 1 KiB response in 16-char chunks.
// Each exchange gets its own prompt string (a ticket number in front), as real traffic does, so nothing
// can be reused from the previous exchange. Warm-up first, then LAT_N samples in LAT_BATCHES batches:
// p50/p99 are over all samples; the spread of the per-batch p99s shows how stable the p99 is.
const LAT_N = 10_000
const LAT_BATCHES = 5
const prompt4k = fill(prose + code + logs, 4096)
const response1k = fill(prose, 1024)
const promptFor = (i: number) => `Ticket #${100000 + i}: ${prompt4k}`.slice(0, 4096)
for (let i = 0; i < 1000; i++) scanExchange(ctxFor(promptFor(i), i), response1k, 16)

// GC pauses during the latency run (the usual cause of p99 outliers)
const gcPauses: number[] = []
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcPauses.push(e.duration)
})
gcObserver.observe({ entryTypes: ['gc'] })
const lat: number[] = []
// CPU time of this process per exchange (getrusage, µs resolution): unlike wall time it does not count
// the time the VM gave to other jobs, so it shows the scanners' own cost on a shared machine
const cpu: number[] = []
const batchP99: number[] = []
for (let b = 0; b < LAT_BATCHES; b++) {
  const batch: number[] = []
  for (let i = 0; i < LAT_N / LAT_BATCHES; i++) {
    const ctx = ctxFor(promptFor(b * 100_000 + i), i)
    const c0 = process.cpuUsage()
    const t0 = process.hrtime.bigint()
    scanExchange(ctx, response1k, 16)
    batch.push(Number(process.hrtime.bigint() - t0) / 1e6)
    const c = process.cpuUsage(c0)
    cpu.push((c.user + c.system) / 1000)
  }
  batch.sort((x, y) => x - y)
  batchP99.push(quantile(batch, 0.99))
  lat.push(...batch)
}
lat.sort((a, b) => a - b)
const q = (p: number) => quantile(lat, p)
cpu.sort((a, b) => a - b)
await new Promise((r) => setTimeout(r, 10)) // let the observer deliver the last entries
gcObserver.disconnect()
const gcTotal = gcPauses.reduce((a, b) => a + b, 0)
const gcMax = gcPauses.reduce((a, b) => Math.max(a, b), 0)

// reference in the same run: JSON.parse of the request body that carries the same prompt
const jsonRef: number[] = []
for (let i = 0; i < LAT_N; i++) {
  const body = JSON.stringify({ messages: [{ role: 'user', content: promptFor(i) }] })
  const t0 = process.hrtime.bigint()
  sink += (JSON.parse(body) as { messages: unknown[] }).messages.length
  jsonRef.push(Number(process.hrtime.bigint() - t0) / 1e6)
}
jsonRef.sort((a, b) => a - b)
const jsonP50 = quantile(jsonRef, 0.5)
const jsonP99 = quantile(jsonRef, 0.99)

// per-scanner share of the 4 KiB exchange
const PER_SCANNER_N = 2000
const perScanner = scanners.map((s) => {
  const ms: number[] = []
  for (let i = 0; i < PER_SCANNER_N; i++) {
    const ctx = ctxFor(promptFor(i), i)
    const t0 = process.hrtime.bigint()
    s.scanRequest?.(ctx)
    const st = s.startResponse?.(ctx)
    if (st) {
      for (let k = 0; k < response1k.length; k += 16) st.push(response1k.slice(k, k + 16))
      st.end()
    }
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6)
  }
  ms.sort((a, b) => a - b)
  return { scanner: s.name, p50_ms: quantile(ms, 0.5), p99_ms: quantile(ms, 0.99) }
})

const r3 = (x: number) => Math.round(x * 1000) / 1000
console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')} (p99 figures are only meaningful on an idle machine)`)
console.log(`corpus: ${corpus.length} texts, ${(bytes / 1e6).toFixed(2)} MB, scanners: ${scanners.map((s) => s.name).join(', ')}`)
console.log(`request scan:   ${reqMBs.toFixed(1)} MB/s`)
console.log(`response scan (64-char chunks): ${respMBs.toFixed(1)} MB/s`)
console.log(`reference indexOf: ${indexOfMBs.toFixed(0)} MB/s (request scan is ${(indexOfMBs / reqMBs).toFixed(0)}x slower)`)
console.log(`reference JSON.parse: ${jsonMBs.toFixed(0)} MB/s (request scan is ${(jsonMBs / reqMBs).toFixed(1)}x slower)`)
console.log(`exchange (4 KiB prompt + 1 KiB streamed response), ${LAT_N} samples: p50 ${r3(q(0.5))} ms, p99 ${r3(q(0.99))} ms, p99.9 ${r3(q(0.999))} ms (target p99 < 1 ms); per-batch p99 ${batchP99.map(r3).join(' / ')} ms`)
console.log(`CPU time per exchange (excludes time the VM gave to other jobs): p50 ${r3(quantile(cpu, 0.5))} ms, p99 ${r3(quantile(cpu, 0.99))} ms`)
console.log(`reference JSON.parse of the request body: p50 ${r3(jsonP50)} ms, p99 ${r3(jsonP99)} ms (exchange p50 is ${(q(0.5) / jsonP50).toFixed(0)}x)`)
console.log(`GC during the latency run: ${gcPauses.length} pauses, ${r3(gcTotal)} ms total, longest ${r3(gcMax)} ms`)
for (const p of perScanner) console.log(`  ${p.scanner.padEnd(16)} p50 ${r3(p.p50_ms)} ms  p99 ${r3(p.p99_ms)} ms`)
console.log(JSON.stringify({
  bench: 'llm-speed',
  loadavg_1m: r3(loadavg()[0]!),
  corpus_mb: r3(bytes / 1e6),
  request_mb_s: r3(reqMBs),
  response_mb_s: r3(respMBs),
  ref_indexof_mb_s: r3(indexOfMBs),
  ref_json_parse_mb_s: r3(jsonMBs),
  ratio_json_parse_over_request_scan: r3(jsonMBs / reqMBs),
  exchange_samples: LAT_N,
  exchange_p50_ms: r3(q(0.5)),
  exchange_p99_ms: r3(q(0.99)),
  exchange_p999_ms: r3(q(0.999)),
  exchange_batch_p99_ms: batchP99.map(r3),
  exchange_cpu_p50_ms: r3(quantile(cpu, 0.5)),
  exchange_cpu_p99_ms: r3(quantile(cpu, 0.99)),
  json_parse_body_p50_ms: r3(jsonP50),
  json_parse_body_p99_ms: r3(jsonP99),
  gc_pauses: gcPauses.length,
  gc_total_ms: r3(gcTotal),
  gc_max_ms: r3(gcMax),
  per_scanner: perScanner.map((p) => ({ ...p, p50_ms: r3(p.p50_ms), p99_ms: r3(p.p99_ms) })),
  findings,
  sink: sink % 2,
}))
