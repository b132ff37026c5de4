/**
 * `bpfkit replay FILE [--json]`: runs reassembly and HTTP parsing over a
 * capture file (docs/capture-format.md) without root, emitting the same
 * events as a live run.
 */
import { closeSync, openSync } from 'node:fs'
import { replayCapture } from '../l7/replay.js'
import type { HttpPipelineEvent } from '../l7/index.js'
import { parse, UsageError, type Command } from './command.js'
import { loadLlm, printLlmEvents, printLlmSummary } from './llm.js'

export const replayCommand: Command = {
  name: 'replay',
  summary: 'rebuild HTTP/1.1 and HTTP/2 exchanges from a capture file (no root needed)',
  help: `usage: bpfkit replay <capture.ndjson> [--json] [--all] [--llm] [--no-redact] [--skip-malformed]

Replays a capture written by 'bpfkit trace tls --record FILE' through stream
reassembly and the HTTP/1.1 and HTTP/2 parsers.

  --json             NDJSON: one event per line (http.exchange; with --all every event type)
  --all              also print http.request, http.response, http.stream_event and diagnostics
  --llm              print LLM calls and scanner findings instead (needs @bpfkit/llm), then a per-workload summary
  --no-redact        keep Authorization, Cookie, Set-Cookie, X-Api-Key, api-key, Proxy-Authorization
  --skip-malformed   count and skip malformed capture lines instead of failing`,
  async run(args) {
    const { values, positionals } = parse(args, {
      json: { type: 'boolean' },
      all: { type: 'boolean' },
      'no-redact': { type: 'boolean' },
      'skip-malformed': { type: 'boolean' },
      llm: { type: 'boolean' },
    })
    if (positionals.length !== 1) throw new UsageError('replay needs exactly one capture file')
    try {
      closeSync(openSync(positionals[0]!, 'r')) // say which file, before the replay starts reading it lazily
    } catch (err) {
      throw new Error(`cannot read capture file ${positionals[0]}: ${(err as Error).message}`)
    }
    const llm = values.llm ? await loadLlm() : undefined
    const replay = replayCapture(positionals[0]!, {
      redact: !values['no-redact'],
      ...(values['skip-malformed'] ? { malformed: 'skip' as const } : {}),
    })
    if (llm) {
      const monitor = new llm.LlmMonitor({ redact: !values['no-redact'] })
      monitor.attach(replay)
      printLlmEvents(monitor, !!values.json)
      await replay.run()
      await monitor.end()
      printLlmSummary(monitor)
      return 0
    }
    for await (const ev of replay) {
      if (!values.all && ev.type !== 'http.exchange') continue
      process.stdout.write(values.json ? JSON.stringify(ev) + '\n' : describe(ev) + '\n')
    }
    const s = replay.stats
    process.stderr.write(`bpfkit: replayed ${s.records} records, ${s.gaps} gaps, ${s.parseErrors} parse errors\n`)
    return 0
  },
}

function describe(ev: HttpPipelineEvent): string {
  const e = ev as unknown as Record<string, unknown>
  if (ev.type === 'http.exchange') {
    const flags = [e.incomplete ? 'incomplete' : '', e.gap ? 'gap' : ''].filter(Boolean).join(',')
    return `${String(e.time).slice(11, 23)} HTTP/${e.protocol} ${e.method ?? '?'} ${e.scheme ?? ''}://${e.authority ?? '?'}${e.path ?? ''} -> ${e.status ?? '-'}${flags ? ` [${flags}]` : ''}`
  }
  return `${ev.type} ${JSON.stringify(ev).slice(0, 200)}`
}
