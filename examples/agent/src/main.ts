/**
 * bpfkit demo agent: a small detection agent built only from the SDK's public
 * API. It runs the built-in sensors and prints one live, readable stream:
 *  - process exec/exit with ancestry (ProcessSensor);
 *  - HTTP exchanges rebuilt from TLS plaintext (TlsSensor) and from cleartext
 *    sockets (PlainSocketSensor), through core's HttpPipeline;
 *  - LLM calls with prompts, completions, tokens and cost, and scanner
 *    findings (LlmMonitor from @bpfkit/llm), with a per-workload summary on exit;
 *  - with --k8s, every event enriched with its pod and workload (K8sEnricher).
 *
 *   bash scripts/demo.sh [--json] [--duration S] [--k8s] [--no-tls] [--no-plain] [--no-llm] [--plain-port N ...]
 */
import { parseArgs } from 'node:util'
import { HttpPipeline, PlainSocketSensor, ProcessSensor, TlsSensor, type ProcessEvent, type l7 } from '@bpfkit/core'
import { CriContainerSource, K8sConfigError, K8sEnricher, findCriSocket } from '@bpfkit/k8s'
import { LlmMonitor, type LlmExchangeEvent, type LlmFindingEvent } from '@bpfkit/llm'
import { Formatter } from './format.js'
import { LlmSummary } from './summary.js'

const { values: opt } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    duration: { type: 'string' },
    k8s: { type: 'boolean', default: false },
    'no-tls': { type: 'boolean', default: false },
    'no-plain': { type: 'boolean', default: false },
    'no-llm': { type: 'boolean', default: false },
    'plain-port': { type: 'string', multiple: true },
    help: { type: 'boolean', default: false },
  },
})
if (opt.help) {
  console.log('usage: bash scripts/demo.sh [--json] [--duration S] [--k8s] [--no-tls] [--no-plain] [--no-llm] [--plain-port N ...]')
  process.exit(0)
}
const duration = Number(opt.duration ?? 0)
const fmt = new Formatter({ color: process.stdout.isTTY && !opt.json })
const summary = new LlmSummary()
const warn = (msg: string) => console.error(fmt.paint(33, `bpfkit agent: ${msg}`))

/** Prints any event the agent handles, as JSON or as a readable line. */
function print(ev: { type: string }): void {
  if (ev.type === 'llm.exchange') summary.add(ev as LlmExchangeEvent)
  if (opt.json) return void console.log(JSON.stringify(ev))
  switch (ev.type) {
    case 'process.exec':
    case 'process.exit':
      return void console.log(fmt.process(ev as ProcessEvent))
    case 'http.exchange':
      return void console.log(fmt.http(ev as l7.HttpExchangeEvent))
    case 'llm.exchange':
      return void console.log(fmt.llm(ev as LlmExchangeEvent))
    case 'llm.finding':
      return void console.log(fmt.finding(ev as LlmFindingEvent))
    case 'k8s.identity.resolved': {
      const r = ev as { ref?: { type?: string; process?: { pid?: number } }; k8s?: { pod?: { name?: string } } }
      return void console.log(fmt.paint(35, `             ↳ identity resolved: ${r.ref?.type ?? 'event'} of pid ${r.ref?.process?.pid ?? '?'} is pod ${r.k8s?.pod?.name ?? '?'}`))
    }
  }
}

// --k8s: every event goes through the enricher, which prints it once its identity is known
let enricher: K8sEnricher | undefined
let cri: CriContainerSource | undefined
if (opt.k8s) {
  const socket = findCriSocket()
  cri = socket ? new CriContainerSource({ socketPath: socket }) : undefined
  try {
    enricher = new K8sEnricher({ nodeName: process.env.NODE_NAME, cri, peers: true })
  } catch (err) {
    if (!(err instanceof K8sConfigError)) throw err
    console.error(`bpfkit agent: --k8s: ${err.message}`) // e.g. no kubeconfig on this machine
    process.exit(2)
  }
  enricher.on('event', print)
  enricher.on('k8s.identity.resolved', print)
  if (!(await enricher.start())) warn('Kubernetes API not synced yet: events say identity "partial" until it is')
}
const emit = (ev: object & { type: string }) => (enricher ? enricher.push(ev) : print(ev))

const processes = new ProcessSensor()
processes.ref()
processes.on('event', (ev) => {
  if (ev.type === 'process.fork' && !opt.json) return // forks are noisy; exec/exit tell the story
  emit(ev)
})
processes.on('lost', ({ count }) => warn(`${count} process events lost in the kernel (ring full)`))

const monitor = opt['no-llm'] ? undefined : new LlmMonitor()
monitor?.on('llm.exchange', emit)
monitor?.on('llm.finding', emit)

/** An HTTP pipeline fed by a capture sensor; its exchanges are printed and watched for LLM calls. */
function httpPipeline(scheme: 'https' | 'http'): HttpPipeline {
  const p = new HttpPipeline({ scheme })
  p.on('http.exchange', emit)
  monitor?.attach(p)
  return p
}

let tls: TlsSensor | undefined
let https: HttpPipeline | undefined
if (!opt['no-tls']) {
  try {
    tls = new TlsSensor({ processSensor: processes })
    const pipe = (https = httpPipeline('https'))
    tls.on('record', (r) => pipe.push(r))
    tls.on('close', (c) => pipe.closeConnection(c.conn, c.lostBytes))
    tls.on('error', (e) => warn(`TLS sensor: ${e.message}`))
  } catch (err) {
    warn(`TLS capture off: ${(err as Error).message}`)
  }
}

let plain: PlainSocketSensor | undefined
let http: HttpPipeline | undefined
if (!opt['no-plain']) {
  try {
    const ports = (opt['plain-port'] ?? []).map(Number)
    plain = new PlainSocketSensor(ports.length ? { ports } : {})
    const pipe = (http = httpPipeline('http'))
    plain.on('record', (r) => pipe.push(r))
    plain.on('close', (c) => pipe.closeConnection(c.conn, c.lostBytes))
    plain.on('error', (e) => warn(`plain-socket sensor: ${e.message}`))
  } catch (err) {
    warn(`cleartext HTTP capture off: ${(err as Error).message}`)
  }
}

function stop(): void {
  tls?.close()
  plain?.close()
  https?.end()
  http?.end()
  processes.close()
  const lines = [
    `\nbpfkit agent: ${processes.stats.events} process events (${processes.stats.lost} lost), ${processes.table.size} processes known`,
  ]
  if (tls) lines.push(`  TLS: ${tls.stats.records} records, ${tls.stats.bytes} bytes, ${tls.stats.gaps} gaps, ${tls.stats.lostRecords} lost`)
  if (plain) lines.push(`  cleartext: ${plain.stats.records} records, ${plain.stats.gaps} gaps, ${plain.stats.lostRecords} lost`)
  if (monitor) {
    const s = monitor.stats()
    lines.push(`  LLM: ${s.exchanges} calls, ${s.findings} findings, ${s.parseErrors} parse errors`)
  }
  if (enricher) {
    const h = enricher.health()
    lines.push(`  k8s: ${JSON.stringify(h)}`)
    enricher.close()
    cri?.close()
  }
  console.error(lines.join('\n'))
  if (summary.size) console.error(opt.json ? JSON.stringify({ type: 'llm.summary', workloads: summary.toJSON() }) : `\nLLM usage per workload:\n${summary.table()}`)
  process.exit(0)
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
if (duration > 0) setTimeout(stop, duration * 1000)
console.error(
  `bpfkit agent on ${processes.host}: ${processes.table.size} processes known; watching exec/exit` +
    `${tls ? ', TLS' : ''}${plain ? ', cleartext HTTP' : ''}${monitor ? ', LLM calls' : ''}${enricher ? ', with Kubernetes identity' : ''} (Ctrl-C to stop)`,
)
