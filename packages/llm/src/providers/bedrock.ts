/**
 * Amazon Bedrock runtime: Converse / ConverseStream (one format for every
 * model) and InvokeModel / InvokeModelWithResponseStream (the model's native
 * format: Anthropic Messages for Claude, a small set of known text shapes
 * for the others). Stream frames are decoded by eventstream.ts; here we get
 * each frame's JSON payload and its :event-type.
 */
import type { CompletionBuilder, ParsedRequest } from '../assembly.js'
import { argsText, arr, get, type Json, num, obj, parseJson, str } from '../json.js'
import type { LlmContentPart, LlmMessage, LlmToolDefinition } from '../types.js'
import { checkMessagesList, imagePart, makeMessage, normaliseRole, requestFromUrl, type ResponseContext, textMessage, toolDefinition, toolResultPart, toolUsePart, turnMessages, type WireAdapter } from './adapter.js'
import { anthropicMessagesAdapter } from './anthropic.js'

function converseContent(list: Json): { parts: LlmContentPart[]; results: LlmContentPart[] } {
  const parts: LlmContentPart[] = []
  const results: LlmContentPart[] = []
  for (const c of arr(list)) {
    const text = str(get(c, 'text'))
    if (text !== undefined) parts.push({ type: 'text', text })
    else if (obj(get(c, 'image'))) parts.push(imagePart(undefined, str(get(c, 'image', 'format')), str(get(c, 'image', 'source', 'bytes'))?.length))
    else if (obj(get(c, 'toolUse'))) {
      parts.push(toolUsePart(str(get(c, 'toolUse', 'name')) ?? '', argsText(get(c, 'toolUse', 'input')), str(get(c, 'toolUse', 'toolUseId'))))
    } else if (obj(get(c, 'toolResult'))) {
      const texts = arr(get(c, 'toolResult', 'content')).map((x) => str(get(x, 'text')) ?? (get(x, 'json') !== undefined ? argsText(get(x, 'json')) : ''))
      results.push(toolResultPart(texts.join('\n'), str(get(c, 'toolResult', 'toolUseId')), str(get(c, 'toolResult', 'status')) === 'error'))
    } else if (obj(get(c, 'reasoningContent')) || obj(get(c, 'cachePoint'))) {
      // not conversation text
    } else {
      parts.push({ type: 'other', kind: Object.keys(obj(c) ?? {})[0] ?? 'unknown' })
    }
  }
  return { parts, results }
}

function converseMessages(body: Json): LlmMessage[] {
  const out: LlmMessage[] = []
  const sys = arr(get(body, 'system'))
  if (sys.length) {
    const p = converseContent(sys).parts.filter((x) => x.type === 'text')
    if (p.length) out.push(makeMessage('system', p))
  }
  for (const m of arr(get(body, 'messages'))) {
    out.push(...turnMessages(normaliseRole(get(m, 'role')), converseContent(get(m, 'content'))))
  }
  return out
}

function converseTools(body: Json): LlmToolDefinition[] | undefined {
  const out: LlmToolDefinition[] = []
  for (const t of arr(get(body, 'toolConfig', 'tools'))) {
    const spec = get(t, 'toolSpec')
    if (!obj(spec)) continue
    out.push(toolDefinition(str(get(spec, 'name')) ?? '', str(get(spec, 'description')), get(spec, 'inputSchema', 'json')))
  }
  return out.length ? out : undefined
}

function converseUsage(out: CompletionBuilder, u: Json): void {
  if (!obj(u)) return
  out.setUsage({
    input_tokens: num(get(u, 'inputTokens')),
    output_tokens: num(get(u, 'outputTokens')),
    total_tokens: num(get(u, 'totalTokens')),
    cache_read_tokens: num(get(u, 'cacheReadInputTokens')),
  })
}

/** A Bedrock error body: {"message": "..."} (the type is in the x-amzn-ErrorType header). */
function bedrockError(out: CompletionBuilder, body: Json): boolean {
  const keys = Object.keys(obj(body) ?? {})
  if (!(keys.length <= 2 && str(get(body, 'message')) !== undefined) && !str(get(body, 'Message'))) return false
  out.setError({ message: str(get(body, 'message')) ?? str(get(body, 'Message')) ?? '' })
  return true
}

/** One ConverseStream event; `type` is the :event-type (also accepted as a wrapping key, as InvokeModel for Nova sends it). */
function converseEvent(out: CompletionBuilder, type: string | undefined, e: Json): void {
  switch (type) {
    case 'messageStart':
      break
    case 'contentBlockStart': {
      const idx = num(get(e, 'contentBlockIndex')) ?? 0
      const tu = get(e, 'start', 'toolUse')
      if (obj(tu)) out.startToolCall(idx, str(get(tu, 'toolUseId')), str(get(tu, 'name')))
      break
    }
    case 'contentBlockDelta': {
      const idx = num(get(e, 'contentBlockIndex')) ?? 0
      const d = get(e, 'delta')
      out.appendText(out.textField(get(d, 'text'), 'delta.text'))
      const input = out.textField(get(d, 'toolUse', 'input'), 'delta.toolUse.input')
      if (input !== undefined) out.appendToolArguments(idx, input)
      break
    }
    case 'messageStop': {
      const r = str(get(e, 'stopReason'))
      if (r) out.finishReason = r
      break
    }
    case 'metadata':
      converseUsage(out, get(e, 'usage'))
      break
    default:
      break
  }
}

export const bedrockConverseAdapter: WireAdapter = {
  // the model and streaming are in the URL (/model/{id}/converse-stream)
  parseRequest: (body, match) => checkMessagesList(body, requestFromUrl(match, converseMessages(body), converseTools(body))),
  streamEvent(out, data, event) {
    if (event !== undefined) converseEvent(out, event, data)
    else for (const [k, v] of Object.entries(obj(data) ?? {})) converseEvent(out, k, v)
  },
  responseBody(out, body) {
    if (bedrockError(out, body)) return
    for (const c of arr(get(body, 'output', 'message', 'content'))) {
      const text = str(get(c, 'text'))
      if (text !== undefined) out.appendText(text)
      else if (obj(get(c, 'toolUse'))) out.addToolCall(str(get(c, 'toolUse', 'toolUseId')), str(get(c, 'toolUse', 'name')) ?? '', argsText(get(c, 'toolUse', 'input')))
    }
    const r = str(get(body, 'stopReason'))
    if (r) out.finishReason = r
    converseUsage(out, get(body, 'usage'))
  },
}

// ---- InvokeModel: native model formats ----

const isAnthropic = (model: string | undefined): boolean => model !== undefined && /(^|[.:/])anthropic\./.test(model)

/** Prompt-style native requests (Llama, Mistral, Titan, Cohere Command) and Nova's message style. */
function nativeRequest(body: Json, match: { model?: string; stream?: boolean }): ParsedRequest {
  if (arr(get(body, 'messages')).length || arr(get(body, 'system')).length) return requestFromUrl(match, converseMessages(body), converseTools(body))
  const prompt = str(get(body, 'prompt')) ?? str(get(body, 'inputText')) ?? str(get(body, 'message'))
  return requestFromUrl(match, prompt !== undefined ? [textMessage('user', prompt)] : [])
}

/** Where the native response shapes keep their text. */
const NATIVE_TEXT_FIELDS: (string | number)[][] = [
  ['generation'], // Meta Llama
  ['outputText'], // Titan stream chunk
  ['results', 0, 'outputText'], // Titan
  ['outputs', 0, 'text'], // Mistral
  ['completion'], // Claude 2 text completions
  ['text'], // Cohere Command R
]

/** Reads the text and counts of the known native response shapes (whole bodies and stream chunks alike). */
function nativeResponse(out: CompletionBuilder, b: Json): void {
  if (obj(get(b, 'output')) || obj(get(b, 'contentBlockDelta')) || obj(get(b, 'messageStop')) || obj(get(b, 'metadata'))) {
    // Nova: Converse-shaped
    if (obj(get(b, 'output'))) bedrockConverseAdapter.responseBody(out, b, undefined as never)
    else bedrockConverseAdapter.streamEvent(out, b, undefined, undefined as never)
  }
  // the first of the known text fields that is present; one of another type is a parse error, not skipped
  for (const path of NATIVE_TEXT_FIELDS) {
    const v = get(b, ...path)
    if (v === undefined || v === null) continue
    out.appendText(out.textField(v, path.join('.')))
    break
  }
  const reason =
    str(get(b, 'stop_reason')) ?? str(get(b, 'completionReason')) ?? str(get(b, 'results', 0, 'completionReason')) ?? str(get(b, 'outputs', 0, 'stop_reason')) ?? str(get(b, 'finish_reason'))
  if (reason) out.finishReason = reason
  out.setUsage({
    input_tokens: num(get(b, 'prompt_token_count')) ?? num(get(b, 'inputTextTokenCount')),
    output_tokens: num(get(b, 'generation_token_count')) ?? num(get(b, 'results', 0, 'tokenCount')),
  })
}

/** Bedrock appends invocation metrics to the last stream chunk of every model. */
function invocationMetrics(out: CompletionBuilder, b: Json): void {
  const m = get(b, 'amazon-bedrock-invocationMetrics')
  if (!obj(m)) return
  out.setUsage({ input_tokens: num(get(m, 'inputTokenCount')), output_tokens: num(get(m, 'outputTokenCount')) })
}

export const bedrockInvokeAdapter: WireAdapter = {
  parseRequest(body, match) {
    if (isAnthropic(match.model)) {
      const r = anthropicMessagesAdapter.parseRequest(body, match)
      if (match.model !== undefined) r.model = match.model
      if (match.stream) r.stream = true
      return r
    }
    return nativeRequest(body, match)
  },
  streamEvent(out, data, event, ctx: ResponseContext) {
    // event 'chunk': {"bytes": "<base64 of the model's native stream event>"}
    const b64 = str(get(data, 'bytes'))
    if (b64 === undefined) return
    const inner = parseJson(Buffer.from(b64, 'base64').toString('utf8'))
    if (inner.error !== undefined) throw new SyntaxError(`Bedrock chunk payload: ${inner.error}`)
    if (isAnthropic(ctx.match.model)) anthropicMessagesAdapter.streamEvent(out, inner.value, undefined, ctx)
    else nativeResponse(out, inner.value)
    invocationMetrics(out, inner.value)
    void event
  },
  responseBody(out, body, ctx) {
    if (bedrockError(out, body)) return
    if (isAnthropic(ctx.match.model)) anthropicMessagesAdapter.responseBody(out, body, ctx)
    else nativeResponse(out, body)
  },
}
