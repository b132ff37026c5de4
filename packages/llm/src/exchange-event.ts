/**
 * Builds the `llm.exchange` event from an open exchange and the HTTP
 * exchange that ended it (undefined when the response never came): what
 * was asked, what came back, usage and cost, latency and the error. Then,
 * by default, masks what the secret/PII scanners found, because captured
 * plaintext must not leave the monitor with credentials in it.
 */
import type { l7 } from '@bpfkit/core'
import { header, splitAuthority } from './http.js'
import { latencyOf } from './latency.js'
import type { OpenExchange } from './open-exchanges.js'
import { costOf, type PriceTable } from './pricing.js'
import { redactExchange } from './redact.js'
import { Redactor } from './scanners/redact.js'
import type { LlmExchangeEvent, LlmUsage } from './types.js'

export interface ExchangeEventOptions {
  /** prices per model prefix; undefined: no cost estimates */
  prices: PriceTable | undefined
  /** mask what the `redactScanners` found */
  redact: boolean
  redactScanners: Iterable<string>
}

export class ExchangeEventBuilder {
  private readonly prices: PriceTable | undefined
  private readonly redactOn: boolean
  private readonly redactScanners: Set<string>
  private readonly redactor: Redactor

  constructor(options: ExchangeEventOptions) {
    this.prices = options.prices
    this.redactOn = options.redact
    this.redactScanners = new Set(options.redactScanners)
    this.redactor = new Redactor({ scanners: [...this.redactScanners] })
  }

  /** `usage` is the exchange's resolved usage (see exchangeUsage). */
  build(x: OpenExchange, ev: l7.HttpExchangeEvent | undefined, usage: LlmUsage | undefined): LlmExchangeEvent {
    const b = x.builder
    const completion = b.completion()
    const status = ev?.status
    const out: LlmExchangeEvent = {
      type: 'llm.exchange',
      time: ev?.time ?? x.lastTime,
      id: x.id,
      provider: x.match.provider,
      operation: x.match.operation,
      server: serverOf(ev?.authority ?? ev?.request?.authority),
      url: ev?.path !== undefined ? { path: ev.path } : {},
      http: { protocol: ev?.protocol ?? '', ...(ev?.method !== undefined ? { method: ev.method } : {}), ...(status !== undefined ? { status } : {}) },
      stream: x.request.stream === true || x.streamEvents > 0,
      messages: x.request.messages,
      completion,
      latency: {},
      process: x.identity.process,
      workload: x.identity.workload,
      findings: x.findings.length,
      redacted: 0,
      truncated: x.requestTruncated || b.truncated || ev?.response?.body?.truncated === true,
      incomplete: ev === undefined || ev.incomplete,
    }
    const model = b.model ?? x.request.model
    if (model !== undefined) out.model = model
    if (x.request.model !== undefined && x.request.model !== model) out.request_model = x.request.model
    const tools = b.listedTools ?? x.request.tools
    if (tools) out.tools = tools
    if (x.identity.k8s) out.k8s = x.identity.k8s
    if (x.identity.container) out.container = x.identity.container
    if (x.mcpSession !== undefined) out.mcp_session_id = x.mcpSession

    if (usage) out.usage = usage
    if (this.prices && usage) {
      // the response names the exact model version; the request's alias is the fallback
      const cost = costOf(this.prices, b.model, usage) ?? costOf(this.prices, x.request.model, usage)
      if (cost) out.cost = cost
    }
    out.latency = latencyOf(ev, x)
    if (b.error || (status !== undefined && status >= 400)) {
      out.error = { ...(b.error ?? {}) }
      if (status !== undefined && status >= 400) out.error.status = status
      // Bedrock names the error only in a header: "ThrottlingException:http://internal.amazon.com/..."
      const awsType = header(ev?.response?.headers, 'x-amzn-errortype')
      if (out.error.type === undefined && awsType) out.error.type = awsType.split(':', 1)[0]!
    }

    if (this.redactOn) {
      const masked = x.findings.filter((f) => this.redactScanners.has(f.finding.scanner)).map((f) => f.finding)
      out.redacted = redactExchange(out, masked, this.redactor)
    }
    return out
  }
}

/** OTel server.address / server.port, from the request's authority. */
function serverOf(authority: string | undefined): { address?: string; port?: number } {
  const { host, port } = splitAuthority(authority)
  const s: { address?: string; port?: number } = {}
  if (host) s.address = host
  if (port !== undefined) s.port = port
  return s
}
