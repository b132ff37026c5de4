/**
 * The contract between the monitor and one provider wire format: parse the
 * request JSON into messages and tools, and feed response data (streamed
 * events or a whole body) into a CompletionBuilder. Adapters never throw on
 * odd input: they read with the accessors in json.ts and skip what they do
 * not understand.
 */
import type { CompletionBuilder, ParsedRequest } from '../assembly.js'
import { get, type Json, str } from '../json.js'
import type { LlmContentPart, LlmError, LlmMessage, LlmRole, LlmToolDefinition } from '../types.js'

/** What a recogniser decided about one HTTP request. */
export interface ProviderMatch {
  /** provider name reported on events ('openai', 'anthropic', ...) */
  provider: string
  /** operation reported on events ('chat', 'responses', ...) */
  operation: string
  /** which wire format to parse: a built-in one by name, or your own adapter */
  format: WireFormat | WireAdapter
  /** model when the URL names it (Gemini, Bedrock, Azure deployments) */
  model?: string
  /** the URL says the response streams (Gemini streamGenerateContent, Bedrock *-stream) */
  stream?: boolean
}

export type WireFormat =
  | 'openai_chat'
  | 'openai_completions'
  | 'openai_embeddings'
  | 'openai_responses'
  | 'anthropic_messages'
  | 'gemini'
  | 'bedrock_converse'
  | 'bedrock_invoke'
  | 'ollama_chat'
  | 'ollama_generate'
  | 'cohere_chat'
  | 'mcp'

export interface ResponseContext {
  match: ProviderMatch
  request: ParsedRequest
}

export interface WireAdapter {
  parseRequest(body: Json, match: ProviderMatch): ParsedRequest
  /** one event of a streamed response, JSON-parsed; `event` is the SSE event name or the eventstream :event-type */
  streamEvent(out: CompletionBuilder, data: Json, event: string | undefined, ctx: ResponseContext): void
  /** a whole non-streamed response body, JSON-parsed */
  responseBody(out: CompletionBuilder, body: Json, ctx: ResponseContext): void
}

/** Maps provider role names onto ours. */
export function normaliseRole(role: unknown): LlmRole {
  switch (role) {
    case 'system':
    case 'developer':
    case 'user':
    case 'assistant':
    case 'tool':
      return role
    case 'model':
    case 'chatbot':
      return 'assistant'
    case 'function':
    case 'ipython':
      return 'tool'
    default:
      return 'user'
  }
}

/** Builds a message; its content is the text parts and tool-result texts joined with "\n". */
export function makeMessage(role: LlmRole, parts: LlmContentPart[], name?: string): LlmMessage {
  const texts: string[] = []
  for (const p of parts) {
    if (p.type === 'text') texts.push(p.text)
    else if (p.type === 'tool_result') texts.push(p.text)
  }
  const m: LlmMessage = { role, content: texts.join('\n') }
  if (parts.length > 1 || (parts.length === 1 && parts[0]!.type !== 'text')) m.parts = parts
  if (name) m.name = name
  return m
}

/** An image reference; inline data (data: URLs, base64 payloads) is never copied, only its size. */
export function imagePart(url: string | undefined, mediaType?: string, inlineBytes?: number): LlmContentPart {
  const p: { type: 'image'; url?: string; media_type?: string; omitted_bytes?: number } = { type: 'image' }
  if (url !== undefined) {
    if (url.startsWith('data:')) {
      const m = /^data:([^;,]*)/.exec(url)
      if (m?.[1]) p.media_type = m[1]
      p.omitted_bytes = url.length
    } else {
      p.url = url.length > 2048 ? url.slice(0, 2048) : url
    }
  }
  if (mediaType) p.media_type = mediaType
  if (inlineBytes !== undefined) p.omitted_bytes = inlineBytes
  return p
}

/**
 * The messages of one turn whose content mixes tool results with other parts (Anthropic, Gemini, Bedrock):
 * the results become role 'tool' messages ahead of the rest, as OpenAI sends them, so every provider looks
 * alike to scanners. A turn of tool results only adds no empty message.
 */
export function turnMessages(role: LlmRole, content: { parts: LlmContentPart[]; results: LlmContentPart[] }): LlmMessage[] {
  const out = content.results.map((r) => makeMessage('tool', [r]))
  if (content.parts.length || !content.results.length) out.push(makeMessage(role, content.parts))
  return out
}

/** A message holding one piece of text (system prompts, plain prompts). */
export function textMessage(role: LlmRole, text: string): LlmMessage {
  return makeMessage(role, [{ type: 'text', text }])
}

/** A tool call inside a message; `id` is what the matching tool result refers to. */
export function toolUsePart(name: string, args: string, id: string | undefined): LlmContentPart {
  const use: LlmContentPart = { type: 'tool_use', name, arguments: args }
  if (id !== undefined) use.id = id
  return use
}

/** A tool's answer sent back to the model; it becomes a role 'tool' message so every provider looks alike to scanners. */
export function toolResultPart(text: string, toolCallId: string | undefined, isError = false): LlmContentPart {
  const result: LlmContentPart = { type: 'tool_result', text }
  if (toolCallId !== undefined) result.tool_call_id = toolCallId
  if (isError) result.is_error = true
  return result
}

/** A tool the request offers the model; `parameters` is its JSON schema as sent. */
export function toolDefinition(name: string, description: string | undefined, parameters: Json): LlmToolDefinition {
  const def: LlmToolDefinition = { name }
  if (description !== undefined) def.description = description
  if (parameters !== undefined) def.parameters = parameters
  return def
}

/** A provider's error; empty type or message strings are left out. */
export function providerError(type: string | undefined, message: string | undefined): LlmError {
  const e: LlmError = {}
  if (type) e.type = type
  if (message) e.message = message
  return e
}

/** A request whose body names the model and asks for a stream (OpenAI, Anthropic, Cohere, Ollama); the model in the URL is the fallback. */
export function requestFromBody(body: Json, match: { model?: string }, messages: LlmMessage[], tools?: LlmToolDefinition[]): ParsedRequest {
  const r: ParsedRequest = { messages }
  const model = str(get(body, 'model')) ?? match.model
  if (model !== undefined) r.model = model
  if (get(body, 'stream') === true) r.stream = true
  if (tools) r.tools = tools
  return r
}

/** A chat request's `messages` must be a list: anything else is read as no messages and noted, so the monitor reports it. */
export function checkMessagesList(body: Json, r: ParsedRequest): ParsedRequest {
  const m = get(body, 'messages')
  if (m !== undefined && m !== null && !Array.isArray(m)) (r.rejected ??= []).push(`messages is ${typeof m}, not a list`)
  return r
}

/** A request whose URL names the model and says whether it streams (Gemini, Bedrock). */
export function requestFromUrl(match: { model?: string; stream?: boolean }, messages: LlmMessage[], tools?: LlmToolDefinition[]): ParsedRequest {
  const r: ParsedRequest = { messages }
  if (match.model !== undefined) r.model = match.model
  if (match.stream) r.stream = true
  if (tools) r.tools = tools
  return r
}
