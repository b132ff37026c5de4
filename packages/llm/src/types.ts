/**
 * The shapes every part of @bpfkit/llm agrees on: a rebuilt LLM exchange, a
 * scanner finding, and the scanner interface. Events are plain
 * JSON-serialisable objects (no bigint, no Buffer), like the HTTP events of
 * @bpfkit/core they are built from.
 */

/** Who wrote a message. 'tool' is a tool/function result fed back to the model. */
export type LlmRole = 'system' | 'developer' | 'user' | 'assistant' | 'tool'

/** One part of a multi-part message. Text parts are what scanners read. */
export type LlmContentPart =
  | { type: 'text'; text: string }
  | { type: 'image'; url?: string; media_type?: string; omitted_bytes?: number }
  | { type: 'tool_use'; id?: string; name: string; arguments: string }
  | { type: 'tool_result'; tool_call_id?: string; text: string; is_error?: boolean }
  | { type: 'other'; kind: string }

export interface LlmMessage {
  role: LlmRole
  /** text of the message (text parts joined with "\n"); scanners read this */
  content: string
  parts?: LlmContentPart[]
  /** the tool name for role 'tool' when the provider gives it */
  name?: string
}

export interface LlmToolDefinition {
  name: string
  description?: string
  /** JSON Schema of the parameters, as sent */
  parameters?: unknown
}

export interface LlmToolCall {
  id?: string
  name: string
  /** the arguments exactly as the model produced them (a JSON string, assembled from streamed fragments) */
  arguments: string
}

export interface LlmUsage {
  input_tokens?: number
  output_tokens?: number
  total_tokens?: number
  cache_read_tokens?: number
  /** reasoning/thinking tokens, when reported (already included in output_tokens) */
  reasoning_tokens?: number
  /** true when counted by our tokenizer because the provider reported none */
  estimated: boolean
}

/** Where in an exchange a finding is. */
export interface FindingLocation {
  /** 'request' messages (index into messages) or the 'response' completion */
  part: 'request' | 'response'
  /** index into `messages` for part 'request'; absent for the response */
  message_index?: number
  /** UTF-16 code-unit offsets into that message's `content` (or into the completion text) */
  start: number
  end: number
}

export type Severity = 'low' | 'medium' | 'high' | 'critical'

/** One thing a scanner found. Emitted as an `llm.finding` event once the exchange id is known. */
export interface Finding {
  /** scanner name, e.g. 'prompt_injection', 'secrets', 'pii' */
  scanner: string
  /** finer kind within the scanner, e.g. 'openai_api_key', 'credit_card', 'instruction_override' */
  kind: string
  severity: Severity
  /** 0..1 */
  score: number
  location: FindingLocation
  /** the matched text with secrets/PII masked; never the raw secret */
  snippet: string
  /** human-readable reason and evidence */
  evidence?: string
}

/** What a scanner gets to look at for a whole request. */
export interface ScanContext {
  /** exchange id (from the HTTP layer) */
  exchange_id: string
  provider: string
  model?: string
  messages: LlmMessage[]
  /** the workload the call belongs to (a k8s workload, or the process) for per-workload policies */
  workload?: string
  /**
   * Token usage of the exchange. The monitor sets it on this same object once the response
   * reports usage, before calling StreamScan.end(); scanners read it at end() (token budgets).
   */
  usage?: LlmUsage
  /** operation ('chat', 'responses', 'tools/call', 'tools/list', ...), set by the monitor */
  operation?: string
  /** tools offered in the request (their descriptions can carry tool poisoning), set by the monitor */
  tools?: LlmToolDefinition[]
}

/** Incremental scanning of a response as it streams in. Offsets are into the whole completion text. */
export interface StreamScan {
  /** more completion text; returns findings that are certain now */
  push(text: string): Finding[]
  /** the stream ended; returns the remaining findings */
  end(): Finding[]
}

/**
 * A scanner. Implement any of the hooks; a scanner may be async (remote or ML
 * classifiers) by returning a Promise. Scanners must not throw on any input;
 * the monitor treats a throw as a scanner error and counts it.
 */
export interface Scanner {
  readonly name: string
  /** scan the request messages */
  scanRequest?(ctx: ScanContext): Finding[] | Promise<Finding[]>
  /** start scanning a response; called before the first chunk arrives */
  startResponse?(ctx: ScanContext): StreamScan
}

// ---------------------------------------------------------------------------
// Events emitted by LlmMonitor (added by the monitor; the scanner interface above is unchanged)
// ---------------------------------------------------------------------------

/** Who made the call: the process identity copied from the HTTP event (enrichers may add fields). */
export interface LlmProcessIdentity {
  pid: number
  tid: number
  comm: string
  [key: string]: unknown
}

/** The completion as the client received it. */
export interface LlmCompletion {
  /** the assistant text, assembled from stream chunks in order (reasoning/thinking text is not included) */
  text: string
  /** tool calls the model made, arguments assembled from streamed fragments */
  tool_calls: LlmToolCall[]
  /** why the model stopped, as the provider names it (stop, length, end_turn, tool_use, STOP, ...) */
  finish_reason?: string
  /** the provider's response id */
  response_id?: string
}

/** Token cost of one exchange, from the price table. */
export interface LlmCost {
  /** USD */
  input: number
  output: number
  total: number
  currency: 'USD'
  /** the price table key (model prefix) that matched */
  price_key: string
  /** true when the token counts were estimated */
  estimated: boolean
}

/** Latency from the HTTP timings and the stream event times. */
export interface LlmLatency {
  /** first response byte (non-streaming) or first content chunk (streaming) minus request end, ms */
  time_to_first_token_ms?: number
  /** response end minus request start, ms */
  total_ms?: number
}

/** An error reported by the provider (HTTP status >= 400, an error event in the stream, or an error object in a 200 body). */
export interface LlmError {
  /** provider error type/code, e.g. 'rate_limit_error', 'invalid_request_error', 'ThrottlingException' */
  type?: string
  message?: string
  /** HTTP status when the error came with one */
  status?: number
}

/** One rebuilt LLM API call (or MCP tool call). JSON-serialisable. */
export interface LlmExchangeEvent {
  type: 'llm.exchange'
  /** when the exchange ended (time of the http.exchange event) */
  time: string
  /** the HTTP exchange id (join key with http.exchange and llm.finding) */
  id: string
  /** 'openai', 'azure_openai', 'anthropic', 'gemini', 'bedrock', 'ollama', 'mistral', 'cohere', 'openai_compatible', 'mcp', or a user recogniser's name */
  provider: string
  /** 'chat', 'responses', 'embeddings', 'completion', 'generate_content', 'converse', 'invoke', 'tools/call', 'tools/list' */
  operation: string
  /** the model that answered (response) or was asked for (request) */
  model?: string
  /** the model named in the request, when it differs from the response's */
  request_model?: string
  /** HTTP host (authority) and path of the call */
  server: { address?: string; port?: number }
  url: { path?: string }
  http: { method?: string; status?: number; protocol: string }
  /** the response was streamed (SSE, NDJSON, eventstream or a streamed JSON array) */
  stream: boolean
  /** the request's messages, in order; system instructions come first with role 'system' */
  messages: LlmMessage[]
  /** tools offered to the model */
  tools?: LlmToolDefinition[]
  completion: LlmCompletion
  usage?: LlmUsage
  cost?: LlmCost
  latency: LlmLatency
  error?: LlmError
  process: LlmProcessIdentity
  /** passed through from the HTTP event when an enricher added it (OpenTelemetry k8s.* attributes as nested objects) */
  k8s?: Record<string, unknown>
  container?: Record<string, unknown>
  /** the grouping key used by summary(): k8s namespace/workload, else the process executable or comm */
  workload: string
  /** MCP session (Mcp-Session-Id header) */
  mcp_session_id?: string
  /** number of findings the scanners raised for this exchange */
  findings: number
  /** spans of secrets/PII masked in messages and completion (0 when redaction is off) */
  redacted: number
  /** some text was cut: a body was truncated by the HTTP layer or assembled text exceeded the monitor's caps */
  truncated: boolean
  /** the HTTP exchange was incomplete (gap, reset, connection closed early) */
  incomplete: boolean
}

/** A scanner finding, tied to its exchange and process. */
export interface LlmFindingEvent {
  type: 'llm.finding'
  time: string
  exchange_id: string
  provider: string
  model?: string
  /** where the finding came from: request scanning or response (streamed) scanning */
  phase: 'request' | 'response'
  finding: Finding
  process: LlmProcessIdentity
  k8s?: Record<string, unknown>
  container?: Record<string, unknown>
  workload: string
}

/** Something could not be parsed or a cap was hit; the monitor carried on. */
export interface LlmDiagnosticEvent {
  type: 'llm.diagnostic'
  level: 'warn' | 'error'
  /** 'parse_error', 'eventstream_error', 'truncated', 'scanner_error', 'recogniser_error', 'internal_error', 'evicted' */
  code: string
  message: string
  exchange_id?: string
  provider?: string
  time?: string
}

export interface LlmMonitorEventMap {
  'llm.exchange': (ev: LlmExchangeEvent) => void
  'llm.finding': (ev: LlmFindingEvent) => void
  'llm.diagnostic': (ev: LlmDiagnosticEvent) => void
}
