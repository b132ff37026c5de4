/**
 * `bpfkit trace llm` (live) and the LLM side of `bpfkit replay --llm`.
 *
 * The LLM layer lives in @bpfkit/llm, which depends on @bpfkit/core, so core
 * cannot import it statically: it is loaded when one of these commands runs,
 * and a clear message says to install it when it is missing. Only the small
 * part of its API used here is described below.
 */
import { HttpPipeline } from '../l7/pipeline.js'
import type { TlsRecord } from '../sensors/tls/index.js'
import { parse, UsageError, type Command } from './command.js'
import { LiveCounter, untilStopped } from './live-counter.js'
import { sensorFrom } from './trace-tls.js'

/** What this module uses of @bpfkit/llm's LlmMonitor. */
export interface LlmMonitorLike {
  attach(source: unknown): () => void
  on(event: 'llm.exchange' | 'llm.finding' | 'llm.diagnostic', fn: (ev: any) => void): unknown
  end(): Promise<void>
  summary(): { workload: string; exchanges: number; findings: number; input_tokens: number; output_tokens: number; cost_usd: number }[]
  stats(): { exchanges: number; findings: number; parseErrors: number; truncated: number }
}

interface LlmModule {
  LlmMonitor: new (options?: { redact?: boolean }) => LlmMonitorLike
}

/** Loads @bpfkit/llm, or explains how to get it. */
export async function loadLlm(): Promise<LlmModule> {
  const name = '@bpfkit/llm' // a variable: core has no build-time dependency on it
  try {
    return (await import(name)) as LlmModule
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') {
      throw new UsageError("the LLM commands need the @bpfkit/llm package: 'npm install @bpfkit/llm' next to @bpfkit/core")
    }
    throw err
  }
}

/** Prints the monitor's events: JSON lines, or one readable line each; diagnostics go to stderr. */
export function printLlmEvents(monitor: LlmMonitorLike, json: boolean): void {
  monitor.on('llm.exchange', (ev) => process.stdout.write(json ? JSON.stringify(ev) + '\n' : describeExchange(ev) + '\n'))
  monitor.on('llm.finding', (ev) => process.stdout.write(json ? JSON.stringify(ev) + '\n' : describeFinding(ev) + '\n'))
  monitor.on('llm.diagnostic', (ev) => process.stderr.write(`bpfkit: llm ${ev.code ?? 'diagnostic'}: ${ev.message ?? ''}\n`))
}

/** The end-of-run table: calls, tokens and cost per workload, and the monitor's counters. */
export function printLlmSummary(monitor: LlmMonitorLike): void {
  const rows = monitor.summary()
  const s = monitor.stats()
  const lines = [`bpfkit: ${s.exchanges} LLM calls, ${s.findings} findings, ${s.parseErrors} parse errors, ${s.truncated} truncated`]
  for (const r of rows) {
    lines.push(`  ${r.workload}: ${r.exchanges} calls, ${r.input_tokens} in / ${r.output_tokens} out tokens, ~$${r.cost_usd.toFixed(4)}, ${r.findings} findings`)
  }
  process.stderr.write(lines.join('\n') + '\n')
}

function describeExchange(ev: any): string {
  const u = ev.usage ? ` ${ev.usage.input_tokens ?? '?'}→${ev.usage.output_tokens ?? '?'} tokens${ev.usage.estimated ? ' (est.)' : ''}` : ''
  const text = String(ev.completion?.text ?? '').replace(/\s+/g, ' ')
  const tools = ev.completion?.tool_calls?.length ? ` tool calls: ${ev.completion.tool_calls.map((t: { name: string }) => t.name).join(', ')}` : ''
  return `${String(ev.time).slice(11, 23)} ${ev.process?.comm}[${ev.process?.pid}] ${ev.provider} ${ev.operation} ${ev.model ?? '?'} -> ${ev.http?.status ?? '-'}${u}${tools} "${text.length > 80 ? text.slice(0, 79) + '…' : text}"`
}

function describeFinding(ev: any): string {
  const f = ev.finding
  return `${String(ev.time).slice(11, 23)} !! ${String(f.severity).toUpperCase()} ${f.scanner}/${f.kind} (${ev.phase}, exchange ${ev.exchange_id}): ${f.snippet}`
}

export const traceLlmCommand: Command = {
  name: 'trace llm',
  summary: 'stream LLM API calls (prompts, completions, tokens, cost) and scanner findings, live',
  help: `usage: bpfkit trace llm [--json] [--pid N ...] [--comm NAME] [--no-redact] [--duration S]

Recognises LLM API calls (OpenAI, Azure OpenAI, Anthropic, Gemini, Bedrock,
Ollama, Mistral, Cohere, OpenAI-compatible servers, MCP) in TLS traffic,
rebuilds prompts and completions, and runs the scanners (prompt injection,
secrets, PII, ...). Secrets and PII are masked unless --no-redact. Prints a
per-workload summary of calls, tokens and estimated cost on exit.

  --pid N        only this process (repeatable)
  --comm NAME    only processes whose command (comm) is NAME
  --no-redact    keep credentials, secrets and PII in the output
  --duration S   stop after S seconds (default: until SIGINT/SIGTERM)`,
  async run(args) {
    const { values } = parse(
      args,
      { json: { type: 'boolean' }, pid: { type: 'string', multiple: true }, comm: { type: 'string' }, 'no-redact': { type: 'boolean' }, duration: { type: 'string' } },
      false,
    )
    const { LlmMonitor } = await loadLlm()
    const redact = !values['no-redact']
    const { sensor, duration } = sensorFrom(values)
    const pipeline = new HttpPipeline({ redact })
    const monitor = new LlmMonitor({ redact })
    monitor.attach(pipeline)
    printLlmEvents(monitor, !!values.json)
    sensor.on('record', (r: TlsRecord) => pipeline.push(r))
    sensor.on('close', (c: { conn: string; lostBytes?: number }) => pipeline.closeConnection(c.conn, c.lostBytes))
    const counter = new LiveCounter(() => ({ events: monitor.stats().exchanges, lost: sensor.stats.lostRecords, extra: `${sensor.stats.gaps} gaps` }))
    sensor.ref()
    process.stderr.write(`bpfkit: capturing TLS plaintext (${sensor.stats.attachedFiles} files attached), watching for LLM calls; Ctrl-C to stop\n`)
    await untilStopped(duration)
    counter.stop()
    sensor.close()
    pipeline.end()
    await monitor.end()
    printLlmSummary(monitor)
    return 0
  },
}
