// Live end to end on the real kernel: the official `openai` and
// `@anthropic-ai/sdk` clients (streaming and not, with tool use; each on a
// fresh connection, no warm-up) and curl (Gemini alt=sse and JSON array,
// Bedrock eventstream) talk HTTPS to a local mock server
// answering in each provider's wire format; the TLS sensor captures the
// plaintext, HttpPipeline rebuilds HTTP, LlmMonitor rebuilds the LLM calls.
// The rebuilt completion, tool calls and usage must equal what the client
// itself received. (Ollama is plain HTTP: see live-ollama.test.ts.)
import { spawn, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { HttpPipeline, TlsSensor } from '@bpfkit/core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { describeBpf, nodeComm, tempDir, selfSignedCert } from '../../core/test/helpers.js'
import { type LlmExchangeEvent, type LlmFindingEvent, LlmMonitor, type Scanner } from '../src/index.js'

const live = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'live')
const TEXT = 'Bonjour 👋 — 18 °C à Paris, ciel dégagé. 世界 ✓'
const ARGS = '{"location":"Paris, France","unit":"celsius"}'
const BEDROCK_HOST = 'bedrock-runtime.us-east-1.amazonaws.com'
const curl = spawnSync('sh', ['-c', 'command -v curl'], { encoding: 'utf8' }).stdout.trim() || undefined

interface ClientView {
  text: string
  tool_calls: { id?: string; name: string; arguments: string }[]
  usage: { input_tokens: number; output_tokens: number }
  finish_reason: string
}

describeBpf('LLM calls captured live over TLS', () => {
  let dir: string
  let server: ReturnType<typeof spawn>
  let port: number
  let sensor: TlsSensor
  const exchanges: LlmExchangeEvent[] = []
  const findings: LlmFindingEvent[] = []
  const httpSeen: { process: { pid: number }; path?: string; status?: number; request?: unknown }[] = []
  const recordPids = new Map<number, number>()
  /** exchange id → format of its http.stream_event events */
  const streamFormats = new Map<string, string>()
  // a scanner that flags the word "Paris" as the completion streams: proves scanning happens on live traffic
  const watch: Scanner = {
    name: 'watch',
    startResponse: () => {
      let text = ''
      let done = false
      return {
        push(d) {
          text += d
          const i = text.indexOf('Paris')
          if (done || i === -1) return []
          done = true
          return [{ scanner: 'watch', kind: 'city', severity: 'low', score: 1, location: { part: 'response', start: i, end: i + 5 }, snippet: 'Paris' }]
        },
        end: () => [],
      }
    },
  }

  beforeAll(async () => {
    dir = tempDir('bpfkit-llm-live-')
    selfSignedCert(dir, [BEDROCK_HOST])
    server = spawn(process.execPath, [join(live, 'server.mjs'), join(dir, 'cert.pem'), join(dir, 'key.pem')], { stdio: ['ignore', 'pipe', 'inherit'] })
    port = await new Promise<number>((resolve, reject) => {
      let out = ''
      server.stdout!.on('data', (c) => {
        out += c
        if (out.includes('\n')) resolve(JSON.parse(out).port)
      })
      server.on('exit', (code) => reject(new Error(`mock server exited with ${code}`)))
    })
    const pipeline = new HttpPipeline()
    const monitor = new LlmMonitor({ scanners: [watch] })
    monitor.attach(pipeline)
    monitor.on('llm.exchange', (e) => exchanges.push(e))
    monitor.on('llm.finding', (f) => findings.push(f))
    monitor.on('llm.diagnostic', (d) => console.warn('[llm diagnostic]', d))
    sensor = new TlsSensor({ holdNewExecutables: true, holdAgentDescendants: true, holdOnlyDescendantsOf: process.pid })
    pipeline.on('http.exchange', (e) => httpSeen.push(e))
    pipeline.on('http.stream_event', (e) => streamFormats.set(e.id, e.format))
    sensor.on('record', (r) => {
      recordPids.set(r.pid, (recordPids.get(r.pid) ?? 0) + 1)
      pipeline.push(r)
    })
    sensor.on('close', (c) => pipeline.closeConnection(c.conn, c.lostBytes))
    sensor.on('error', (e) => console.error('[tls sensor]', e))
  }, 60_000)

  afterAll(() => {
    sensor?.close()
    server?.kill('SIGTERM')
  })

  /** Runs a client; returns its stdout and the llm.exchange of its pid (waits for the capture to drain). */
  async function run(cmd: string, args: string[]): Promise<{ out: string; ev: LlmExchangeEvent }> {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') } })
    let out = ''
    let err = ''
    child.stdout!.on('data', (d) => (out += d))
    child.stderr!.on('data', (d) => (err += d))
    // 'close', not 'exit': stdout may still hold data when the process has exited
    const code = await new Promise<number | null>((r) => child.on('close', r))
    expect(code, `${cmd} ${args.join(' ')} failed: ${err}`).toBe(0)
    for (let i = 0; i < 40; i++) {
      sensor.flush()
      const ev = exchanges.find((e) => e.process.pid === child.pid)
      if (ev) return { out, ev }
      await new Promise((r) => setTimeout(r, 50))
    }
    const http = httpSeen.filter((e) => e.process.pid === child.pid).map((e) => ({ path: e.path, status: e.status, request: e.request !== undefined }))
    throw new Error(`no llm.exchange for ${cmd} (pid ${child.pid}): ${recordPids.get(child.pid!) ?? 0} records, http exchanges ${JSON.stringify(http)}`)
  }

  for (const mode of ['openai-stream', 'openai-json', 'anthropic-stream', 'anthropic-json'] as const) {
    it(`${mode}: the official SDK's view equals the rebuilt exchange`, async () => {
      const { out, ev } = await run(process.execPath, [join(live, 'client.mjs'), mode, `https://127.0.0.1:${port}`])
      const seen = JSON.parse(out) as ClientView
      expect(seen.text).toBe(TEXT) // the SDK got what the server sent
      expect(ev.provider).toBe(mode.startsWith('openai') ? 'openai_compatible' : 'anthropic')
      expect(ev.stream).toBe(mode.endsWith('stream'))
      expect(ev.messages.map((m) => [m.role, m.content])).toEqual([
        ['system', 'You are a weather assistant.'],
        ['user', 'Quel temps fait-il à Paris ? 🌦'],
      ])
      expect(ev.tools?.map((t) => t.name)).toEqual(['get_weather'])
      expect(ev.completion.text).toBe(seen.text)
      expect(ev.completion.tool_calls).toEqual(seen.tool_calls)
      expect(ev.completion.tool_calls[0]!.arguments).toBe(ARGS)
      expect(ev.completion.finish_reason).toBe(seen.finish_reason)
      expect(ev.usage).toMatchObject({ ...seen.usage, estimated: false })
      expect(ev.process.comm).toBe(nodeComm())
      expect(ev.latency.total_ms).toBeGreaterThan(0)
      expect(JSON.stringify(ev)).not.toContain('NOTAREALKEY')
      // the watch scanner saw the streamed text and raised its finding for this exchange
      expect(findings.filter((f) => f.exchange_id === ev.id).map((f) => f.finding.kind)).toEqual(['city'])
    })
  }

  // Ollama speaks plain HTTP: live-ollama.test.ts captures it with the plain-socket sensor.

  it('curl → Gemini streamGenerateContent?alt=sse', async (ctx) => {
    if (!curl) return ctx.skip()
    const body = join(dir, 'gemini.json')
    writeFileSync(body, JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'Météo à Paris ?' }] }] }))
    const { out, ev } = await run(curl, ['-sSN', '--http1.1', '--cacert', join(dir, 'cert.pem'), '-H', 'content-type: application/json', '-H', 'x-goog-api-key: NOTAREALKEY',
      '--data-binary', `@${body}`, `https://127.0.0.1:${port}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse`])
    expect(out).toContain('gemini-2.5-flash')
    expect(ev).toMatchObject({ provider: 'gemini', operation: 'generate_content', model: 'gemini-2.5-flash', stream: true, completion: { text: TEXT, finish_reason: 'STOP' } })
    expect(ev.messages).toEqual([{ role: 'user', content: 'Météo à Paris ?' }])
    expect(ev.usage).toMatchObject({ input_tokens: 12, output_tokens: Math.ceil([...TEXT].length / 4), estimated: false })
    expect(ev.latency.time_to_first_token_ms).toBeGreaterThan(0)
  })

  it('curl → Gemini streamGenerateContent (JSON array streamed element by element)', async (ctx) => {
    if (!curl) return ctx.skip()
    const body = join(dir, 'gemini-array.json')
    writeFileSync(body, JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'Météo à Paris ?' }] }] }))
    const { out, ev } = await run(curl, ['-sSN', '--http1.1', '--cacert', join(dir, 'cert.pem'), '-H', 'content-type: application/json', '-H', 'x-goog-api-key: NOTAREALKEY',
      '--data-binary', `@${body}`, `https://127.0.0.1:${port}/v1beta/models/gemini-2.5-flash:streamGenerateContent`])
    expect(out.startsWith('[{')).toBe(true)
    expect(ev).toMatchObject({ provider: 'gemini', model: 'gemini-2.5-flash', stream: true, completion: { text: TEXT, finish_reason: 'STOP' } })
    // the elements reached the monitor as http.stream_event while the response was open
    expect(streamFormats.get(ev.id)).toBe('json-array')
    expect(findings.filter((f) => f.exchange_id === ev.id).map((f) => f.finding.kind)).toEqual(['city'])
  })

  it('curl → Bedrock ConverseStream (binary eventstream)', async (ctx) => {
    if (!curl) return ctx.skip()
    const body = join(dir, 'bedrock.json')
    writeFileSync(body, JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'Météo à Paris ?' }] }], toolConfig: { tools: [{ toolSpec: { name: 'get_weather', inputSchema: { json: { type: 'object' } } } }] } }))
    const { ev } = await run(curl, ['-sS', '--http1.1', '--cacert', join(dir, 'cert.pem'), '--resolve', `${BEDROCK_HOST}:${port}:127.0.0.1`, '-o', '/dev/null', '-H', 'content-type: application/json',
      '--data-binary', `@${body}`, `https://${BEDROCK_HOST}:${port}/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream`])
    expect(ev).toMatchObject({
      provider: 'bedrock',
      operation: 'converse',
      model: 'anthropic.claude-3-haiku-20240307-v1:0',
      stream: true,
      completion: { text: TEXT, finish_reason: 'tool_use', tool_calls: [{ id: 'tooluse_live1', name: 'get_weather', arguments: ARGS }] },
      usage: { input_tokens: 40, output_tokens: 30, total_tokens: 70, estimated: false },
      cost: { price_key: 'claude-3-haiku' },
    })
    expect(streamFormats.get(ev.id)).toBe('eventstream')
    expect(findings.filter((f) => f.exchange_id === ev.id).map((f) => f.finding.kind)).toEqual(['city'])
  })
})
