/**
 * Assembly of one response: completion text, tool calls (arguments arrive as
 * fragments keyed by index or block), finish reason, usage and errors, from
 * whichever wire format the provider used. Everything is capped so a hostile
 * or endless stream costs bounded memory; what is cut is flagged.
 */
import type { LlmCompletion, LlmError, LlmMessage, LlmToolCall, LlmToolDefinition } from './types.js'

/** Memory caps for one exchange. */
export interface AssemblyLimits {
  /** characters of completion text kept (the rest is counted, `truncated` set) */
  maxCompletionChars: number
  /** characters of all request message text together */
  maxRequestChars: number
  /** tool calls kept per response */
  maxToolCalls: number
  /** characters of one tool call's arguments */
  maxArgumentChars: number
  /** messages kept per request */
  maxMessages: number
}

export const DEFAULT_LIMITS: AssemblyLimits = {
  maxCompletionChars: 1024 * 1024,
  maxRequestChars: 4 * 1024 * 1024,
  maxToolCalls: 128,
  maxArgumentChars: 256 * 1024,
  maxMessages: 4096,
}

/** Token counts as the provider reported them (absent fields: not reported). */
export interface ReportedUsage {
  input_tokens?: number
  output_tokens?: number
  total_tokens?: number
  cache_read_tokens?: number
  reasoning_tokens?: number
}

/** What a provider request parser extracts. */
export interface ParsedRequest {
  model?: string
  messages: LlmMessage[]
  tools?: LlmToolDefinition[]
  /** the request asked for a streamed response */
  stream?: boolean
  /** JSON-RPC id (MCP), to pick the matching reply out of an SSE stream */
  rpc_id?: string | number
  /** fields the adapter skipped for their type; the monitor reports them as one parse error */
  rejected?: string[]
}

/**
 * Collects a response. Providers call the mutators; `onText` sees each new
 * piece of completion text in order (that is what StreamScan.push gets).
 */
export class CompletionBuilder {
  text = ''
  finishReason: string | undefined
  responseId: string | undefined
  model: string | undefined
  usage: ReportedUsage = {}
  error: LlmError | undefined
  /** text or tool arguments were cut by a cap */
  truncated = false
  /** characters dropped by the caps */
  droppedChars = 0
  /** some content (text or a tool call) has arrived */
  sawContent = false
  /** tools a response listed (MCP tools/list) */
  listedTools: LlmToolDefinition[] | undefined
  private readonly calls = new Map<string, LlmToolCall>()
  /** fields of the current event the adapter skipped for their type, reported (and cleared) by the caller */
  private rejected: string[] = []

  constructor(
    private readonly limits: AssemblyLimits,
    private readonly onText?: (delta: string) => void,
  ) {}

  appendText(s: string | undefined): void {
    if (!s) return
    this.sawContent = true
    const room = this.limits.maxCompletionChars - this.text.length
    let piece = s
    if (piece.length > room) {
      this.truncated = true
      piece = room > 0 ? cutAt(piece, room) : ''
      this.droppedChars += s.length - piece.length
    }
    if (!piece) return
    this.text += piece
    this.onText?.(piece)
  }

  /** Starts a tool call (or updates its id/name). `key` identifies it within the response (index or block). */
  startToolCall(key: string | number, id: string | undefined, name: string | undefined): void {
    this.sawContent = true
    const k = String(key)
    const c = this.calls.get(k)
    if (c) {
      if (id && !c.id) c.id = id
      if (name && !c.name) c.name = name
      return
    }
    if (this.calls.size >= this.limits.maxToolCalls) {
      this.truncated = true
      return
    }
    const call: LlmToolCall = { name: name ?? '', arguments: '' }
    if (id) call.id = id
    this.calls.set(k, call)
  }

  /** Appends an arguments fragment to a tool call (created if unseen). */
  appendToolArguments(key: string | number, fragment: string | undefined): void {
    if (!fragment) return
    const k = String(key)
    if (!this.calls.has(k)) this.startToolCall(k, undefined, undefined)
    const c = this.calls.get(k)
    if (!c) return
    const room = this.limits.maxArgumentChars - c.arguments.length
    if (fragment.length > room) {
      this.truncated = true
      const kept = room > 0 ? cutAt(fragment, room) : ''
      this.droppedChars += fragment.length - kept.length
      c.arguments += kept
      return
    }
    c.arguments += fragment
  }

  /** A complete tool call (non-streamed bodies). */
  addToolCall(id: string | undefined, name: string, args: string): void {
    const key = `#${this.calls.size}`
    this.startToolCall(key, id, name)
    this.appendToolArguments(key, args)
  }

  /** Merges reported usage; later reports win per field (providers send cumulative counts). */
  setUsage(u: ReportedUsage): void {
    for (const [k, v] of Object.entries(u) as [keyof ReportedUsage, number | undefined][]) {
      if (v !== undefined) this.usage[k] = v
    }
  }

  /** An adapter skipped a field of the current event or body because it had the wrong type (counted as a parse error). */
  reject(what: string): void {
    if (this.rejected.length < 10) this.rejected.push(what)
  }

  /** `x` when it is a string; undefined when absent; a present value of another type is rejected (a parse error) and skipped. */
  textField(x: unknown, what: string): string | undefined {
    if (typeof x === 'string') return x
    if (x !== undefined && x !== null) this.reject(`${what} is ${Array.isArray(x) ? 'a list' : typeof x}, not text`)
    return undefined
  }

  takeRejected(): string[] {
    const r = this.rejected
    if (r.length) this.rejected = []
    return r
  }

  setError(e: LlmError): void {
    if (!this.error) this.error = e
  }

  toolCalls(): LlmToolCall[] {
    return [...this.calls.values()]
  }

  completion(): LlmCompletion {
    const c: LlmCompletion = { text: this.text, tool_calls: this.toolCalls() }
    if (this.finishReason !== undefined) c.finish_reason = this.finishReason
    if (this.responseId !== undefined) c.response_id = this.responseId
    return c
  }
}

/** Cuts a string to at most n UTF-16 units without splitting a surrogate pair. */
export function cutAt(s: string, n: number): string {
  if (s.length <= n) return s
  let end = n
  const c = s.charCodeAt(end - 1)
  if (c >= 0xd800 && c <= 0xdbff) end--
  return s.slice(0, end)
}

/**
 * Applies the request caps to parsed messages: at most maxMessages messages
 * and maxRequestChars characters of content in total (later content is cut).
 * Returns whether anything was cut.
 */
export function capMessages(messages: LlmMessage[], limits: AssemblyLimits): { messages: LlmMessage[]; truncated: boolean } {
  let truncated = false
  let list = messages
  if (list.length > limits.maxMessages) {
    list = list.slice(0, limits.maxMessages)
    truncated = true
  }
  let room = limits.maxRequestChars
  const out: LlmMessage[] = []
  for (const m of list) {
    if (m.content.length <= room) {
      room -= m.content.length
      out.push(m)
      continue
    }
    truncated = true
    const cut: LlmMessage = { ...m, content: cutAt(m.content, Math.max(0, room)) }
    if (m.parts) cut.parts = m.parts.map((p) => (p.type === 'text' ? { ...p, text: cutAt(p.text, Math.max(0, room)) } : p))
    room = 0
    out.push(cut)
  }
  return { messages: out, truncated }
}
