/**
 * `bpfkit trace tls` and `bpfkit trace http`: live TLS plaintext from the TLS
 * sensor, as raw chunks (and an optional capture file for `bpfkit replay`),
 * or as HTTP exchanges rebuilt by the l7 pipeline.
 */
import { CaptureWriter } from '../l7/capture-format.js'
import { HttpPipeline } from '../l7/pipeline.js'
import type { HttpPipelineEvent } from '../l7/index.js'
import { TlsSensor, type TlsRecord } from '../sensors/tls/index.js'
import { parse, UsageError, type Command } from './command.js'
import { LiveCounter, untilStopped } from './live-counter.js'

const common = {
  json: { type: 'boolean' },
  pid: { type: 'string', multiple: true },
  comm: { type: 'string' },
  duration: { type: 'string' },
} as const

/** The TLS sensor a `trace` command asked for (--pid, --comm), and its --duration. */
export function sensorFrom(values: { pid?: string[]; comm?: string; duration?: string }): { sensor: TlsSensor; duration: number } {
  const duration = values.duration === undefined ? 0 : Number(values.duration)
  if (!Number.isFinite(duration) || duration < 0) throw new UsageError(`--duration must be seconds, got '${values.duration}'`)
  const pids = (values.pid ?? []).map((p) => {
    const n = Number(p)
    if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--pid must be a process id, got '${p}'`)
    return n
  })
  const sensor = new TlsSensor({ ...(pids.length ? { pids } : {}), ...(values.comm ? { comm: values.comm } : {}) })
  return { sensor, duration }
}

export const traceTlsCommand: Command = {
  name: 'trace tls',
  summary: 'stream TLS plaintext chunks (OpenSSL, GnuTLS, Go) and record captures',
  help: `usage: bpfkit trace tls [--json] [--pid N ...] [--comm NAME] [--record FILE] [--duration S]

Captures what processes send and receive over TLS, without proxies or keys.
Hex/ASCII in a terminal, one JSON object per chunk with --json (data in base64).

  --pid N        only this process (repeatable)
  --comm NAME    only processes whose command (comm) is NAME
  --record FILE  also write a capture file (docs/capture-format.md) for 'bpfkit replay'
  --duration S   stop after S seconds (default: until SIGINT/SIGTERM)`,
  async run(args) {
    const { values } = parse(args, { ...common, record: { type: 'string' } }, false)
    const { sensor, duration } = sensorFrom(values)
    const writer = values.record ? CaptureWriter.toFile(values.record) : undefined
    const counter = new LiveCounter(() => ({ events: sensor.stats.records, lost: sensor.stats.lostRecords, extra: `${sensor.stats.bytes} B, ${sensor.stats.gaps} gaps` }))
    let pending: Promise<void> = Promise.resolve()
    sensor.on('record', (r: TlsRecord) => {
      if (writer) pending = pending.then(() => writer.write(r))
      process.stdout.write(values.json ? jsonLine(r) : hexdump(r))
    })
    sensor.ref()
    ready(sensor)
    await untilStopped(duration)
    counter.stop()
    sensor.close()
    await pending
    await writer?.end()
    return 0
  },
}

export const traceHttpCommand: Command = {
  name: 'trace http',
  summary: 'stream HTTP/1.1 and HTTP/2 exchanges rebuilt from TLS traffic',
  help: `usage: bpfkit trace http [--json] [--pid N ...] [--comm NAME] [--no-redact] [--duration S]

Rebuilds HTTP exchanges from captured TLS plaintext. Authorization, Cookie,
Set-Cookie, X-Api-Key, api-key and Proxy-Authorization are redacted unless
--no-redact.`,
  async run(args) {
    const { values } = parse(args, { ...common, 'no-redact': { type: 'boolean' } }, false)
    const { sensor, duration } = sensorFrom(values)
    const pipeline = new HttpPipeline({ redact: !values['no-redact'] })
    let exchanges = 0
    pipeline.on('http.exchange', (ev: HttpPipelineEvent) => {
      exchanges++
      const e = ev as unknown as Record<string, unknown>
      process.stdout.write(values.json ? JSON.stringify(ev) + '\n' : `${String(e.time).slice(11, 23)} HTTP/${e.protocol} ${e.method ?? '?'} https://${e.authority ?? '?'}${e.path ?? ''} -> ${e.status ?? '-'}\n`)
    })
    const counter = new LiveCounter(() => ({ events: exchanges, lost: sensor.stats.lostRecords, extra: `${sensor.stats.gaps} gaps` }))
    sensor.on('record', (r: TlsRecord) => pipeline.push(r))
    sensor.on('close', (c: { conn: string; lostBytes?: number }) => pipeline.closeConnection(c.conn, c.lostBytes))
    sensor.ref()
    ready(sensor)
    await untilStopped(duration)
    counter.stop()
    sensor.close()
    pipeline.end()
    return 0
  },
}

/** One line on stderr once the probes are in place, so people and scripts know when capture starts. */
function ready(sensor: TlsSensor): void {
  process.stderr.write(`bpfkit: capturing TLS plaintext (${sensor.stats.attachedFiles} files attached); Ctrl-C to stop\n`)
}

function jsonLine(r: TlsRecord): string {
  const { data, ktime, ...rest } = r
  return JSON.stringify({ ...rest, ktime: ktime.toString(), data: Buffer.from(data).toString('base64') }) + '\n'
}

function hexdump(r: TlsRecord): string {
  const head = `${r.time.slice(11, 23)} ${r.comm}[${r.pid}] ${r.direction === 'egress' ? '->' : '<-'} ${r.conn} seq=${r.seq} ${r.data.length} B${r.gap ? ` (gap ${r.gap} B)` : ''}\n`
  const lines: string[] = []
  const max = Math.min(r.data.length, 256)
  for (let o = 0; o < max; o += 16) {
    const row = r.data.subarray(o, Math.min(o + 16, max))
    const hex = [...row].map((b) => b.toString(16).padStart(2, '0')).join(' ')
    const ascii = [...row].map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '.')).join('')
    lines.push(`  ${o.toString(16).padStart(6, '0')}  ${hex.padEnd(47)}  ${ascii}`)
  }
  if (r.data.length > max) lines.push(`  … ${r.data.length - max} more bytes`)
  return head + lines.join('\n') + '\n'
}
