/**
 * Cohere Chat v2 (/v2/chat). Stream event types are kebab-case and inside
 * the data: message-start, content-delta, tool-call-start/-delta,
 * message-end (finish reason and usage).
 */
import type { CompletionBuilder } from '../assembly.js'
import { arr, get, type Json, num, obj, str } from '../json.js'
import { checkMessagesList, requestFromBody, type WireAdapter } from './adapter.js'
import { addOpenaiToolCalls, openaiChatMessages, openaiTools } from './openai.js'

function usage(out: CompletionBuilder, u: Json): void {
  if (!obj(u)) return
  // `tokens` are the model's counts; `billed_units` what is charged. Prefer the model's, as the other providers report.
  out.setUsage({
    input_tokens: num(get(u, 'tokens', 'input_tokens')) ?? num(get(u, 'billed_units', 'input_tokens')),
    output_tokens: num(get(u, 'tokens', 'output_tokens')) ?? num(get(u, 'billed_units', 'output_tokens')),
  })
}

export const cohereChatAdapter: WireAdapter = {
  // requests are in the Chat Completions shape (messages, tool_calls, tools)
  parseRequest: (body, match) => checkMessagesList(body, requestFromBody(body, match, openaiChatMessages(body), openaiTools(body))),
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
        out.appendText(out.textField(get(data, 'delta', 'message', 'content', 'text'), 'delta.message.content.text'))
        break
      case 'tool-call-start': {
        const tc = get(data, 'delta', 'message', 'tool_calls')
        out.startToolCall(index, str(get(tc, 'id')), str(get(tc, 'function', 'name')))
        out.appendToolArguments(index, out.textField(get(tc, 'function', 'arguments'), 'tool call arguments'))
        break
      }
      case 'tool-call-delta':
        out.appendToolArguments(index, out.textField(get(data, 'delta', 'message', 'tool_calls', 'function', 'arguments'), 'tool call arguments'))
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
    addOpenaiToolCalls(out, get(body, 'message', 'tool_calls'))
    const r = str(get(body, 'finish_reason'))
    if (r) out.finishReason = r
    usage(out, get(body, 'usage'))
  },
}
