/**
 * The LLM calls in progress: request seen, response not ended yet. Their
 * number is capped (maxOpenExchanges) so a capture full of requests that
 * are never answered cannot grow memory without bound; the oldest is
 * evicted to make room. Evicted ids are remembered for a while so that a
 * late http.exchange for one is ignored rather than reported twice.
 */
import type { CompletionBuilder, ParsedRequest } from './assembly.js'
import type { EventStreamDecoder } from './eventstream.js'
import type { ProviderMatch, WireAdapter } from './providers/index.js'
import type { RecordedFinding, ScanRun } from './scan-runner.js'
import type { LlmFindingEvent, LlmProcessIdentity, LlmUsage, ScanContext } from './types.js'
import { resolveUsage } from './usage.js'

/** Who made the call: copied onto every event of the exchange. */
export type ExchangeIdentity = Pick<LlmFindingEvent, 'process' | 'k8s' | 'container' | 'workload'>

/** One LLM call in progress. */
export interface OpenExchange {
  id: string
  match: ProviderMatch
  adapter: WireAdapter
  request: ParsedRequest
  requestTruncated: boolean
  builder: CompletionBuilder
  scans: ScanRun[]
  /** the context every scanner of this exchange got; usage is set on it before StreamScan.end() */
  ctx?: ScanContext
  findings: RecordedFinding[]
  pending: Promise<void>[]
  /** stream events applied (from http.stream_event or decoded from the body) */
  streamEvents: number
  /** saw http.stream_event events for the response */
  liveStream: boolean
  firstContentTime?: string
  identity: ExchangeIdentity
  mcpSession?: string
  lastTime: string
  /** the response ended (or the exchange was evicted): no more stream events */
  closed: boolean
  /** decoder of eventstream frames arriving as stream events */
  eventStream?: EventStreamDecoder
  /** resolved usage (null: none), computed once at the end */
  usage?: LlmUsage | null
}

export class OpenExchanges {
  private readonly open = new Map<string, OpenExchange>()
  /** ids emitted early (evicted): their late http.exchange is ignored rather than emitted twice */
  private readonly evictedIds = new Set<string>()

  constructor(readonly max: number) {}

  get size(): number {
    return this.open.size
  }

  get(id: string): OpenExchange | undefined {
    return this.open.get(id)
  }

  /** Open now, or evicted earlier: a repeated http.request for it starts nothing. */
  seen(id: string): boolean {
    return this.open.has(id) || this.evictedIds.has(id)
  }

  add(x: OpenExchange): void {
    this.open.set(x.id, x)
  }

  delete(id: string): void {
    this.open.delete(id)
  }

  /** Oldest first. */
  all(): OpenExchange[] {
    return [...this.open.values()]
  }

  /** When the table is full: the oldest exchange, marked evicted (the caller emits it). */
  evictOldestIfFull(): OpenExchange | undefined {
    if (this.open.size < this.max) return undefined
    const oldest = this.open.values().next().value as OpenExchange
    this.evictedIds.add(oldest.id)
    if (this.evictedIds.size > 4 * this.max) this.evictedIds.delete(this.evictedIds.values().next().value as string)
    return oldest
  }

  /** True (once) when `id` was evicted: its late http.exchange must be ignored. */
  forgetEvicted(id: string): boolean {
    return this.evictedIds.delete(id)
  }
}

/** The identity fields of an HTTP event; the workload key comes from `workloadKey` (its errors fall back to the comm). */
export function identityOf(ev: object, workloadKey: (ev: { process?: unknown; k8s?: unknown }) => string): ExchangeIdentity {
  const e = ev as { process?: LlmProcessIdentity; k8s?: unknown; container?: unknown }
  // only an object is a process identity (a string would spread into an object of characters)
  const process: LlmProcessIdentity = e.process && typeof e.process === 'object' && !Array.isArray(e.process) ? { ...e.process } : { pid: 0, tid: 0, comm: '' }
  const id: ExchangeIdentity = { process, workload: '' }
  if (e.k8s && typeof e.k8s === 'object') id.k8s = e.k8s as Record<string, unknown>
  if (e.container && typeof e.container === 'object') id.container = e.container as Record<string, unknown>
  try {
    id.workload = workloadKey(e)
  } catch {
    id.workload = process.comm || 'unknown'
  }
  return id
}

/**
 * Reported usage, with missing counts estimated when `estimate` is on. Computed once per exchange: token-budget
 * scanners read it before the event is built. MCP calls have none.
 */
export function exchangeUsage(x: OpenExchange, estimate: boolean): LlmUsage | undefined {
  if (x.usage === undefined) {
    x.usage = x.match.provider === 'mcp' ? null : (resolveUsage(x.builder.usage, x.request, { text: x.builder.text, tool_calls: x.builder.toolCalls() }, estimate) ?? null)
  }
  return x.usage ?? undefined
}
