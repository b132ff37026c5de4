/**
 * Cohere Chat v2 (/v2/chat). Stream event types are kebab-case and inside
 * the data: message-start, content-delta, tool-call-start/-delta,
 * message-end (finish reason and usage).
 */
import type { CompletionBuilder, ParsedRequest } from '../assembly.js'
import { argsText, arr, get, type Json, num, obj, str } from '../json.js'
import type { LlmContentPart, LlmMessage } from '../types.js'
import { makeMessage, normaliseRole, type WireAdapter } from './adapter.js'
import { openaiParts, openaiTools } from './openai.js'

function messages(body: Json): LlmMessage[] {
  const out: LlmMessage[] = []
  for (const m of arr(get(body, 'messages'))) {
    const role = normaliseRole(get(m, 'role'))
    const parts = openaiParts(get(m, 'content'))
    if (role === 'tool') {
      const text = parts.filter((p) => p.type === 'text').map((p) => (p as { text: string }).text).join('\n')
      const r: LlmContentPart = { type: 'tool_result', text }
      const id = str(get(m, 'tool_call_id'))
      if (id !== undefined) r.tool_call_id = id
      out.push(makeMessage('tool', [r]))
      continue
    }
    for (const c of arr(get(m, 'tool_calls'))) {
      const use: LlmContentPart = { type: 'tool_use', name: str(get(c, 'function', 'name')) ?? '', arguments: argsText(get(c, 'function', 'arguments')) }
      const id = str(get(c, 'id'))
      if (id !== undefined) use.id = id
      parts.push(use)
    }
    out.push(makeMessage(role, parts))
  }
  return out
}

function usage(out: CompletionBuilder, u: Json): void {
  if (!obj(u)) return
  // `tokens` are the model's counts; `billed_units` what is charged. Prefer the model's, as the other providers report.
  out.setUsage({
    input_tokens: num(get(u, 'tokens', 'input_tokens')) ?? num(get(u, 'billed_units', 'input_tokens')),
    output_tokens: num(get(u, 'tokens', 'output_tokens')) ?? num(get(u, 'billed_units', 'output_tokens')),
  })
}

export const cohereChatAdapter: WireAdapter = {
  parseRequest(body, match) {
    const r: ParsedRequest = { messages: messages(body) }
    const model = str(get(body, 'model')) ?? match.model
    if (model !== undefined) r.model = model
    if (get(body, 'stream') === true) r.stream = true
    const tools = openaiTools(body)
    if (tools) r.tools = tools
    return r
  },
  streamEvent(out, data, event) {
    const type = str(get(data, 'type')) ?? event
    const index = num(get(data, 'index')) ?? 0
    switch (type) {
      case 'message-start': {
        const id = str(get(data, 'id'))
        if (id) out.responseId = id
        break
      }
      case 'content-delta':
        out.appendText(str(get(data, 'delta', 'message', 'content', 'text')))
        break
      case 'tool-call-start': {
        const tc = get(data, 'delta', 'message', 'tool_calls')
        out.startToolCall(index, str(get(tc, 'id')), str(get(tc, 'function', 'name')))
        out.appendToolArguments(index, str(get(tc, 'function', 'arguments')))
        break
      }
      case 'tool-call-delta':
        out.appendToolArguments(index, str(get(data, 'delta', 'message', 'tool_calls', 'function', 'arguments')))
        break
      case 'message-end': {
        const r = str(get(data, 'delta', 'finish_reason'))
        if (r) out.finishReason = r
        usage(out, get(data, 'delta', 'usage'))
        const e = str(get(data, 'delta', 'error'))
        if (e) out.setError({ message: e })
        break
      }
      default:
        break // content-start/-end, tool-plan-delta, citation-*, tool-call-end
    }
  },
  responseBody(out, body) {
    const msg = str(get(body, 'message'))
    if (msg !== undefined && get(body, 'finish_reason') === undefined) {
      out.setError({ message: msg }) // error bodies: {"message": "..."}
      return
    }
    const id = str(get(body, 'id'))
    if (id) out.responseId = id
    for (const p of arr(get(body, 'message', 'content'))) {
      const text = str(get(p, 'text'))
      if (text !== undefined && str(get(p, 'type')) !== 'thinking') out.appendText(text)
    }
    for (const tc of arr(get(body, 'message', 'tool_calls'))) {
      out.addToolCall(str(get(tc, 'id')), str(get(tc, 'function', 'name')) ?? '', argsText(get(tc, 'function', 'arguments')))
    }
    const r = str(get(body, 'finish_reason'))
    if (r) out.finishReason = r
    usage(out, get(body, 'usage'))
  },
}
