/**
 * Ollama native API: /api/chat and /api/generate. Streaming is the default
 * (NDJSON, one object per line, text deltas); the last line has done: true
 * and the token counts (prompt_eval_count, eval_count).
 */
import type { CompletionBuilder, ParsedRequest } from '../assembly.js'
import { argsText, arr, get, type Json, num, str } from '../json.js'
import type { LlmContentPart, LlmMessage } from '../types.js'
import { checkMessagesList, imagePart, makeMessage, normaliseRole, requestFromBody, textMessage, toolUsePart, type WireAdapter } from './adapter.js'
import { addOpenaiToolCalls, openaiTools } from './openai.js'

function chatMessages(body: Json): LlmMessage[] {
  const out: LlmMessage[] = []
  for (const m of arr(get(body, 'messages'))) {
    const role = normaliseRole(get(m, 'role'))
    const content = str(get(m, 'content')) ?? ''
    if (role === 'tool') {
      out.push(makeMessage('tool', [{ type: 'tool_result', text: content }], str(get(m, 'tool_name')) ?? str(get(m, 'name'))))
      continue
    }
    const parts: LlmContentPart[] = [{ type: 'text', text: content }]
    for (const img of arr(get(m, 'images'))) parts.push(imagePart(undefined, undefined, typeof img === 'string' ? img.length : 0))
    for (const c of arr(get(m, 'tool_calls'))) parts.push(toolUsePart(str(get(c, 'function', 'name')) ?? '', argsText(get(c, 'function', 'arguments')), undefined))
    out.push(makeMessage(role, parts))
  }
  return out
}

function line(out: CompletionBuilder, data: Json, generate: boolean): void {
  const err = str(get(data, 'error'))
  if (err !== undefined) {
    out.setError({ message: err })
    return
  }
  const model = str(get(data, 'model'))
  if (model) out.model = model
  out.appendText(generate ? out.textField(get(data, 'response'), 'response') : out.textField(get(data, 'message', 'content'), 'message.content'))
  // Ollama sends each tool call whole, in one line
  addOpenaiToolCalls(out, get(data, 'message', 'tool_calls'))
  if (get(data, 'done') === true) {
    const reason = str(get(data, 'done_reason'))
    if (reason) out.finishReason = reason
    out.setUsage({ input_tokens: num(get(data, 'prompt_eval_count')), output_tokens: num(get(data, 'eval_count')) })
  }
}

function request(body: Json, match: { model?: string }, messages: LlmMessage[]): ParsedRequest {
  const r = requestFromBody(body, match, messages, openaiTools(body))
  // Ollama streams unless told not to
  r.stream = get(body, 'stream') !== false
  return r
}

export const ollamaChatAdapter: WireAdapter = {
  parseRequest: (body, match) => checkMessagesList(body, request(body, match, chatMessages(body))),
  streamEvent: (out, data) => line(out, data, false),
  responseBody: (out, body) => line(out, body, false),
}

export const ollamaGenerateAdapter: WireAdapter = {
  parseRequest(body, match) {
    const messages: LlmMessage[] = []
    const system = str(get(body, 'system'))
    if (system !== undefined) messages.push(textMessage('system', system))
    const prompt = str(get(body, 'prompt'))
    if (prompt !== undefined) messages.push(textMessage('user', prompt))
    return request(body, match, messages)
  },
  streamEvent: (out, data) => line(out, data, true),
  responseBody: (out, body) => line(out, body, true),
}
