/**
 * The contract between the monitor and one provider wire format: parse the
 * request JSON into messages and tools, and feed response data (streamed
 * events or a whole body) into a CompletionBuilder. Adapters never throw on
 * odd input: they read with the accessors in json.ts and skip what they do
 * not understand.
 */
import type { CompletionBuilder, ParsedRequest } from '../assembly.js'
import type { Json } from '../json.js'
import type { LlmContentPart, LlmMessage, LlmRole } from '../types.js'

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
