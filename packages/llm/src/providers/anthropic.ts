/**
 * Anthropic Messages (/v1/messages), also used by Claude on Bedrock
 * InvokeModel and Vertex rawPredict. Streams are SSE with named events;
 * the event type is also inside the data, which is what we dispatch on, so
 * the same code reads Bedrock's base64-wrapped chunks.
 */
import type { CompletionBuilder } from '../assembly.js'
import { argsText, arr, get, type Json, num, obj, str } from '../json.js'
import type { LlmContentPart, LlmMessage, LlmToolDefinition } from '../types.js'
import { checkMessagesList, imagePart, normaliseRole, providerError, requestFromBody, textMessage, toolDefinition, toolResultPart, toolUsePart, turnMessages, type WireAdapter } from './adapter.js'

function blockText(content: Json): string {
  if (typeof content === 'string') return content
  return arr(content)
    .map((b) => str(get(b, 'text')))
    .filter((t): t is string => t !== undefined)
    .join('\n')
}

function blocks(content: Json): { parts: LlmContentPart[]; results: LlmContentPart[] } {
  if (typeof content === 'string') return { parts: [{ type: 'text', text: content }], results: [] }
  const parts: LlmContentPart[] = []
  const results: LlmContentPart[] = []
  for (const b of arr(content)) {
    const type = str(get(b, 'type'))
    if (type === 'text') parts.push({ type: 'text', text: str(get(b, 'text')) ?? '' })
    else if (type === 'image') {
      const data = str(get(b, 'source', 'data'))
      parts.push(imagePart(str(get(b, 'source', 'url')), str(get(b, 'source', 'media_type')), data?.length))
    } else if (type === 'tool_use' || type === 'server_tool_use') {
      parts.push(toolUsePart(str(get(b, 'name')) ?? '', argsText(get(b, 'input')), str(get(b, 'id'))))
    } else if (type === 'tool_result') {
      results.push(toolResultPart(blockText(get(b, 'content')), str(get(b, 'tool_use_id')), get(b, 'is_error') === true))
    } else if (type === 'document') {
      const text = str(get(b, 'source', 'data'))
      if (str(get(b, 'source', 'type')) === 'text' && text !== undefined) parts.push({ type: 'text', text })
      else parts.push({ type: 'other', kind: 'document' })
    } else {
      parts.push({ type: 'other', kind: type ?? 'unknown' })
    }
  }
  return { parts, results }
}

/** The system prompt, then each turn (see turnMessages for where tool results go). */
export function anthropicMessages(body: Json): LlmMessage[] {
  const out: LlmMessage[] = []
  const system = get(body, 'system')
  if (system !== undefined) out.push(textMessage('system', blockText(system)))
  for (const m of arr(get(body, 'messages'))) {
    out.push(...turnMessages(normaliseRole(get(m, 'role')), blocks(get(m, 'content'))))
  }
  return out
}

export function anthropicTools(body: Json): LlmToolDefinition[] | undefined {
  const out: LlmToolDefinition[] = []
  for (const t of arr(get(body, 'tools'))) {
    out.push(toolDefinition(str(get(t, 'name')) ?? str(get(t, 'type')) ?? 'unknown', str(get(t, 'description')), get(t, 'input_schema')))
  }
  return out.length ? out : undefined
}

/** Anthropic reports input_tokens without cache reads/writes; we report all input tokens. */
function usage(out: CompletionBuilder, u: Json): void {
  if (!obj(u)) return
  const input = num(get(u, 'input_tokens'))
  const cacheRead = num(get(u, 'cache_read_input_tokens'))
  const cacheWrite = num(get(u, 'cache_creation_input_tokens'))
  out.setUsage({
    input_tokens: input === undefined ? undefined : input + (cacheRead ?? 0) + (cacheWrite ?? 0),
    output_tokens: num(get(u, 'output_tokens')),
    cache_read_tokens: cacheRead,
  })
}

function error(out: CompletionBuilder, data: Json): boolean {
  if (str(get(data, 'type')) !== 'error' && !obj(get(data, 'error'))) return false
  out.setError(providerError(str(get(data, 'error', 'type')), str(get(data, 'error', 'message')) ?? str(get(data, 'message'))))
  return true
}

export const anthropicMessagesAdapter: WireAdapter = {
  parseRequest(body, match) {
    const r = requestFromBody(body, match, anthropicMessages(body), anthropicTools(body))
    // Bedrock InvokeModelWithResponseStream and Vertex streamRawPredict say it in the URL, not the body
    if (match.stream) r.stream = true
    return checkMessagesList(body, r)
  },
  streamEvent(out, data, event) {
    const type = str(get(data, 'type')) ?? event
    switch (type) {
      case 'message_start': {
        const m = get(data, 'message')
        const id = str(get(m, 'id'))
        if (id) out.responseId = id
        const model = str(get(m, 'model'))
        if (model) out.model = model
        usage(out, get(m, 'usage'))
        break
      }
      case 'content_block_start': {
        const b = get(data, 'content_block')
        const index = num(get(data, 'index')) ?? 0
        const bt = str(get(b, 'type'))
        if (bt === 'text') out.appendText(out.textField(get(b, 'text'), 'content_block.text'))
        else if (bt === 'tool_use' || bt === 'server_tool_use') {
          out.startToolCall(index, str(get(b, 'id')), str(get(b, 'name')))
          // the start block carries `input: {}`; the arguments come as input_json_delta fragments
          const input = get(b, 'input')
          if (Object.keys(obj(input) ?? {}).length) out.appendToolArguments(index, argsText(input))
        }
        break
      }
      case 'content_block_delta': {
        const d = get(data, 'delta')
        const dt = str(get(d, 'type'))
        if (dt === 'text_delta') out.appendText(out.textField(get(d, 'text'), 'delta.text'))
        else if (dt === 'input_json_delta') out.appendToolArguments(num(get(data, 'index')) ?? 0, out.textField(get(d, 'partial_json'), 'delta.partial_json'))
        break // thinking_delta, signature_delta, citations_delta: not completion text
      }
      case 'message_delta': {
        const reason = str(get(data, 'delta', 'stop_reason'))
        if (reason) out.finishReason = reason
        usage(out, get(data, 'usage'))
        break
      }
      case 'error':
        error(out, data)
        break
      default:
        break // ping, content_block_stop, message_stop, unknown future events
    }
  },
  responseBody(out, body) {
    if (error(out, body)) return
    const id = str(get(body, 'id'))
    if (id) out.responseId = id
    const model = str(get(body, 'model'))
    if (model) out.model = model
    for (const b of arr(get(body, 'content'))) {
      const type = str(get(b, 'type'))
      if (type === 'text') out.appendText(out.textField(get(b, 'text'), 'content[].text'))
      else if (type === 'tool_use' || type === 'server_tool_use') out.addToolCall(str(get(b, 'id')), str(get(b, 'name')) ?? '', argsText(get(b, 'input')))
    }
    const reason = str(get(body, 'stop_reason'))
    if (reason) out.finishReason = reason
    usage(out, get(body, 'usage'))
  },
}
