/**
 * OpenAI wire formats, also spoken by Azure OpenAI, Mistral, vLLM, LM Studio,
 * Groq, OpenRouter and most "OpenAI-compatible" servers: Chat Completions,
 * legacy Completions, Embeddings and the Responses API.
 */
import type { CompletionBuilder } from '../assembly.js'
import { argsText, arr, get, type Json, num, obj, str } from '../json.js'
import type { LlmContentPart, LlmMessage, LlmToolDefinition } from '../types.js'
import { checkMessagesList, imagePart, makeMessage, normaliseRole, providerError, requestFromBody, textMessage, toolDefinition, toolResultPart, toolUsePart, type WireAdapter } from './adapter.js'

/** Parts of an OpenAI content array (chat `content`, Responses `content`). */
export function openaiParts(content: Json): LlmContentPart[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }]
  const parts: LlmContentPart[] = []
  for (const p of arr(content)) {
    const type = str(get(p, 'type'))
    const text = str(get(p, 'text'))
    if (text !== undefined && (type === 'text' || type === 'input_text' || type === 'output_text' || type === undefined)) {
      parts.push({ type: 'text', text })
    } else if (type === 'refusal') {
      parts.push({ type: 'text', text: str(get(p, 'refusal')) ?? '' })
    } else if (type === 'image_url') {
      parts.push(imagePart(str(get(p, 'image_url', 'url')) ?? str(get(p, 'image_url'))))
    } else if (type === 'input_image') {
      parts.push(imagePart(str(get(p, 'image_url')) ?? str(get(p, 'file_id'))))
    } else if (typeof p === 'string') {
      parts.push({ type: 'text', text: p })
    } else {
      parts.push({ type: 'other', kind: type ?? 'unknown' })
    }
  }
  return parts
}

/** tools: [{type:'function', function:{name, description, parameters}}] (and legacy `functions`). */
export function openaiTools(body: Json): LlmToolDefinition[] | undefined {
  const out: LlmToolDefinition[] = []
  for (const t of [...arr(get(body, 'tools')), ...arr(get(body, 'functions'))]) {
    const f = obj(get(t, 'function')) ?? obj(t)
    const name = str(f?.['name'])
    if (name === undefined) {
      const type = str(get(t, 'type'))
      if (type) out.push({ name: type }) // built-in tools (web_search, file_search, ...)
      continue
    }
    out.push(toolDefinition(name, str(f?.['description']), f?.['parameters']))
  }
  return out.length ? out : undefined
}

/** Chat Completions `messages`; Cohere Chat v2 sends the same shape. */
export function openaiChatMessages(body: Json): LlmMessage[] {
  const out: LlmMessage[] = []
  for (const m of arr(get(body, 'messages'))) {
    const role = normaliseRole(get(m, 'role'))
    const parts = openaiParts(get(m, 'content'))
    if (role === 'tool') {
      const result = toolResultPart(textOf(parts), str(get(m, 'tool_call_id')))
      out.push(makeMessage('tool', [result], str(get(m, 'name'))))
      continue
    }
    for (const c of arr(get(m, 'tool_calls'))) {
      parts.push(toolUsePart(str(get(c, 'function', 'name')) ?? '', argsText(get(c, 'function', 'arguments')), str(get(c, 'id'))))
    }
    const fc = get(m, 'function_call')
    if (obj(fc)) parts.push(toolUsePart(str(get(fc, 'name')) ?? '', argsText(get(fc, 'arguments')), undefined))
    out.push(makeMessage(role, parts, str(get(m, 'name'))))
  }
  return out
}

/** Complete tool calls in the OpenAI shape ({id, function: {name, arguments}}), as Chat Completions, Cohere and Ollama return them. */
export function addOpenaiToolCalls(out: CompletionBuilder, calls: Json): void {
  for (const tc of arr(calls)) out.addToolCall(str(get(tc, 'id')), str(get(tc, 'function', 'name')) ?? '', argsText(get(tc, 'function', 'arguments')))
}

/** The text parts, one per line. */
function textOf(parts: LlmContentPart[]): string {
  return parts
    .filter((p) => p.type === 'text')
    .map((p) => (p as { text: string }).text)
    .join('\n')
}

/** `prompt` / `input`: a string or a list of them, one user message each (token arrays are skipped). */
function userTexts(x: Json): LlmMessage[] {
  const texts = typeof x === 'string' ? [x] : arr(x).filter((p): p is string => typeof p === 'string')
  return texts.map((t) => textMessage('user', t))
}

function chatUsage(out: CompletionBuilder, u: Json): void {
  if (!obj(u)) return
  const input = num(get(u, 'prompt_tokens'))
  const output = num(get(u, 'completion_tokens'))
  out.setUsage({
    input_tokens: input,
    output_tokens: output,
    total_tokens: num(get(u, 'total_tokens')),
    cache_read_tokens: num(get(u, 'prompt_tokens_details', 'cached_tokens')),
    reasoning_tokens: num(get(u, 'completion_tokens_details', 'reasoning_tokens')),
  })
}

/** An `error` object in a body or stream event. */
export function openaiError(out: CompletionBuilder, body: Json): boolean {
  const e = get(body, 'error')
  if (e === undefined || e === null) return false
  if (typeof e === 'string') {
    out.setError({ message: e })
    return true
  }
  const err: { type?: string; message?: string } = {}
  const type = str(get(e, 'type')) ?? str(get(e, 'code')) ?? (typeof get(e, 'code') === 'number' ? String(get(e, 'code')) : undefined)
  if (type !== undefined) err.type = type
  const message = str(get(e, 'message'))
  if (message !== undefined) err.message = message
  out.setError(err)
  return true
}

function common(out: CompletionBuilder, data: Json): void {
  const id = str(get(data, 'id'))
  if (id !== undefined && out.responseId === undefined) out.responseId = id
  const model = str(get(data, 'model'))
  if (model !== undefined) out.model = model
  chatUsage(out, get(data, 'usage'))
}

/** Chat Completions: /v1/chat/completions. */
export const openaiChat: WireAdapter = {
  parseRequest: (body, match) => checkMessagesList(body, requestFromBody(body, match, openaiChatMessages(body), openaiTools(body))),
  streamEvent(out, data) {
    if (openaiError(out, data)) return
    common(out, data)
    const choices = get(data, 'choices')
    if (choices != null && !Array.isArray(choices)) out.reject('choices is not an array')
    // only the first choice is assembled (n > 1 is rare and would need one completion per choice)
    const choice = arr(choices).find((c) => (num(get(c, 'index')) ?? 0) === 0)
    if (!choice) return
    const delta = get(choice, 'delta')
    const content = get(delta, 'content')
    if (typeof content === 'string') out.appendText(content)
    else if (content != null && !Array.isArray(content)) out.reject(`delta.content is ${typeof content}, not text`)
    else for (const p of openaiParts(content)) if (p.type === 'text') out.appendText(p.text)
    for (const tc of arr(get(delta, 'tool_calls'))) {
      const key = num(get(tc, 'index')) ?? 0
      const id = str(get(tc, 'id'))
      const name = str(get(tc, 'function', 'name'))
      const args = get(tc, 'function', 'arguments')
      if (args != null && typeof args !== 'string') out.reject(`tool call arguments are ${typeof args}, not a string`)
      // a delta with nothing usable must not add an empty tool call
      if (id === undefined && name === undefined && typeof args !== 'string') continue
      out.startToolCall(key, id, name)
      out.appendToolArguments(key, str(args))
    }
    const fc = get(delta, 'function_call')
    if (obj(fc)) {
      out.startToolCall('function_call', undefined, str(get(fc, 'name')))
      out.appendToolArguments('function_call', str(get(fc, 'arguments')))
    }
    const finish = str(get(choice, 'finish_reason'))
    if (finish) out.finishReason = finish
  },
  responseBody(out, body) {
    if (openaiError(out, body)) return
    common(out, body)
    const choice = arr(get(body, 'choices'))[0]
    const msg = get(choice, 'message')
    for (const p of openaiParts(get(msg, 'content'))) if (p.type === 'text') out.appendText(p.text)
    const refusal = str(get(msg, 'refusal'))
    if (refusal) out.appendText(refusal)
    addOpenaiToolCalls(out, get(msg, 'tool_calls'))
    const finish = str(get(choice, 'finish_reason'))
    if (finish) out.finishReason = finish
  },
}

/** Legacy Completions: /v1/completions (prompt in, text out). */
export const openaiCompletions: WireAdapter = {
  parseRequest(body, match) {
    const messages = userTexts(get(body, 'prompt'))
    const suffix = str(get(body, 'suffix'))
    if (suffix) messages.push(textMessage('user', suffix))
    return requestFromBody(body, match, messages)
  },
  streamEvent(out, data) {
    this.responseBody(out, data, undefined as never)
  },
  responseBody(out, body) {
    if (openaiError(out, body)) return
    common(out, body)
    const choice = arr(get(body, 'choices')).find((c) => (num(get(c, 'index')) ?? 0) === 0)
    out.appendText(str(get(choice, 'text')))
    const finish = str(get(choice, 'finish_reason'))
    if (finish) out.finishReason = finish
  },
}

/** Embeddings: the inputs are the messages; the vectors are not kept. */
export const openaiEmbeddings: WireAdapter = {
  parseRequest: (body, match) => requestFromBody(body, match, userTexts(get(body, 'input'))),
  streamEvent() {
    // embeddings do not stream
  },
  responseBody(out, body) {
    if (openaiError(out, body)) return
    common(out, body)
    out.setUsage({ output_tokens: 0 })
  },
}

function responsesInput(body: Json): LlmMessage[] {
  const out: LlmMessage[] = []
  const instructions = str(get(body, 'instructions'))
  if (instructions !== undefined) out.push(textMessage('system', instructions))
  const input = get(body, 'input')
  if (typeof input === 'string') {
    out.push(textMessage('user', input))
    return out
  }
  for (const item of arr(input)) {
    const type = str(get(item, 'type'))
    if (type === 'function_call_output' || type === 'custom_tool_call_output') {
      const output = get(item, 'output')
      const text = typeof output === 'string' ? output : textOf(openaiParts(output))
      out.push(makeMessage('tool', [toolResultPart(text, str(get(item, 'call_id')))]))
    } else if (type === 'function_call' || type === 'custom_tool_call') {
      const use = toolUsePart(str(get(item, 'name')) ?? '', argsText(get(item, 'arguments') ?? get(item, 'input')), str(get(item, 'call_id')))
      out.push(makeMessage('assistant', [use]))
    } else if (type === 'message' || (type === undefined && get(item, 'role') !== undefined)) {
      out.push(makeMessage(normaliseRole(get(item, 'role')), openaiParts(get(item, 'content'))))
    } else if (type === 'reasoning') {
      // reasoning items carried over from an earlier turn: not conversation text
    } else {
      out.push(makeMessage('user', [{ type: 'other', kind: type ?? 'unknown' }]))
    }
  }
  return out
}

function responsesTools(body: Json): LlmToolDefinition[] | undefined {
  const out: LlmToolDefinition[] = []
  for (const t of arr(get(body, 'tools'))) {
    const name = str(get(t, 'name'))
    if (name === undefined) {
      out.push({ name: str(get(t, 'type')) ?? 'unknown' })
      continue
    }
    out.push(toolDefinition(name, str(get(t, 'description')), get(t, 'parameters')))
  }
  return out.length ? out : undefined
}

/** A whole Responses object (non-streamed body, or response.completed/incomplete/failed). */
function responsesObject(out: CompletionBuilder, r: Json, withOutput: boolean): void {
  const id = str(get(r, 'id'))
  if (id !== undefined) out.responseId = id
  const model = str(get(r, 'model'))
  if (model !== undefined) out.model = model
  const u = get(r, 'usage')
  if (obj(u)) {
    out.setUsage({
      input_tokens: num(get(u, 'input_tokens')),
      output_tokens: num(get(u, 'output_tokens')),
      total_tokens: num(get(u, 'total_tokens')),
      cache_read_tokens: num(get(u, 'input_tokens_details', 'cached_tokens')),
      reasoning_tokens: num(get(u, 'output_tokens_details', 'reasoning_tokens')),
    })
  }
  const status = str(get(r, 'status'))
  const reason = str(get(r, 'incomplete_details', 'reason'))
  if (reason ?? status) out.finishReason = reason ?? status
  const err = get(r, 'error')
  if (obj(err)) out.setError(providerError(str(get(err, 'code')), str(get(err, 'message'))))
  if (!withOutput) return
  for (const item of arr(get(r, 'output'))) {
    const type = str(get(item, 'type'))
    if (type === 'message') {
      for (const p of openaiParts(get(item, 'content'))) if (p.type === 'text') out.appendText(p.text)
    } else if (type === 'function_call' || type === 'custom_tool_call') {
      out.addToolCall(str(get(item, 'call_id')), str(get(item, 'name')) ?? '', argsText(get(item, 'arguments') ?? get(item, 'input')))
    }
  }
}

/** Responses API: /v1/responses (SSE with named events, no [DONE]). */
export const openaiResponses: WireAdapter = {
  parseRequest: (body, match) => requestFromBody(body, match, responsesInput(body), responsesTools(body)),
  streamEvent(out, data, event) {
    const type = str(get(data, 'type')) ?? event
    switch (type) {
      case 'response.output_text.delta':
      case 'response.refusal.delta':
        out.appendText(str(get(data, 'delta')))
        break
      case 'response.output_item.added': {
        const item = get(data, 'item')
        const it = str(get(item, 'type'))
        if (it === 'function_call' || it === 'custom_tool_call') {
          const key = num(get(data, 'output_index')) ?? 0
          out.startToolCall(key, str(get(item, 'call_id')), str(get(item, 'name')))
          out.appendToolArguments(key, str(get(item, 'arguments')) ?? str(get(item, 'input')))
        }
        break
      }
      case 'response.function_call_arguments.delta':
      case 'response.custom_tool_call_input.delta':
        out.appendToolArguments(num(get(data, 'output_index')) ?? 0, str(get(data, 'delta')))
        break
      case 'response.created':
      case 'response.in_progress':
      case 'response.completed':
      case 'response.incomplete':
      case 'response.failed':
        responsesObject(out, get(data, 'response'), false)
        break
      case 'error':
        out.setError(providerError(str(get(data, 'code')), str(get(data, 'message'))))
        break
      default:
        break // other events (reasoning summaries, annotations, ...) carry no completion text
    }
  },
  responseBody(out, body) {
    if (get(body, 'output') === undefined && openaiError(out, body)) return
    responsesObject(out, body, true)
  },
}
