/**
 * Google Gemini generateContent / streamGenerateContent (AI Studio and
 * Vertex AI). Each streamed element is a whole GenerateContentResponse whose
 * text parts are deltas and whose usageMetadata is cumulative. Without
 * alt=sse the stream is one JSON array delivered piece by piece: it is read
 * from the final body (see docs/llm.md).
 */
import type { CompletionBuilder, ParsedRequest } from '../assembly.js'
import { argsText, arr, get, type Json, num, obj, str } from '../json.js'
import type { LlmContentPart, LlmMessage, LlmToolDefinition } from '../types.js'
import { imagePart, makeMessage, normaliseRole, type WireAdapter } from './adapter.js'

function parts(list: Json): { parts: LlmContentPart[]; results: LlmContentPart[] } {
  const out: LlmContentPart[] = []
  const results: LlmContentPart[] = []
  for (const p of arr(list)) {
    const text = str(get(p, 'text'))
    if (text !== undefined) {
      if (get(p, 'thought') !== true) out.push({ type: 'text', text })
    } else if (obj(get(p, 'inlineData'))) {
      out.push(imagePart(undefined, str(get(p, 'inlineData', 'mimeType')), str(get(p, 'inlineData', 'data'))?.length ?? 0))
    } else if (obj(get(p, 'fileData'))) {
      out.push(imagePart(str(get(p, 'fileData', 'fileUri')), str(get(p, 'fileData', 'mimeType'))))
    } else if (obj(get(p, 'functionCall'))) {
      const use: LlmContentPart = { type: 'tool_use', name: str(get(p, 'functionCall', 'name')) ?? '', arguments: argsText(get(p, 'functionCall', 'args')) }
      const id = str(get(p, 'functionCall', 'id'))
      if (id !== undefined) use.id = id
      out.push(use)
    } else if (obj(get(p, 'functionResponse'))) {
      const r: LlmContentPart = { type: 'tool_result', text: argsText(get(p, 'functionResponse', 'response')) }
      const id = str(get(p, 'functionResponse', 'id'))
      if (id !== undefined) r.tool_call_id = id
      results.push(r)
    } else {
      out.push({ type: 'other', kind: Object.keys(obj(p) ?? {})[0] ?? 'unknown' })
    }
  }
  return { parts: out, results }
}

function messages(body: Json): LlmMessage[] {
  const out: LlmMessage[] = []
  const sys = get(body, 'systemInstruction') ?? get(body, 'system_instruction')
  if (sys !== undefined) {
    const p = typeof sys === 'string' ? { parts: [{ type: 'text' as const, text: sys }], results: [] } : parts(get(sys, 'parts'))
    out.push(makeMessage('system', p.parts))
  }
  for (const c of arr(get(body, 'contents'))) {
    const p = parts(get(c, 'parts'))
    for (const r of p.results) out.push(makeMessage('tool', [r]))
    if (p.parts.length || !p.results.length) out.push(makeMessage(normaliseRole(get(c, 'role') ?? 'user'), p.parts))
  }
  return out
}

function tools(body: Json): LlmToolDefinition[] | undefined {
  const out: LlmToolDefinition[] = []
  for (const t of arr(get(body, 'tools'))) {
    const decls = arr(get(t, 'functionDeclarations') ?? get(t, 'function_declarations'))
    if (!decls.length) {
      const kind = Object.keys(obj(t) ?? {})[0]
      if (kind) out.push({ name: kind }) // googleSearch, codeExecution, ...
      continue
    }
    for (const d of decls) {
      const def: LlmToolDefinition = { name: str(get(d, 'name')) ?? '' }
      const desc = str(get(d, 'description'))
      if (desc !== undefined) def.description = desc
      const params = get(d, 'parameters') ?? get(d, 'parametersJsonSchema')
      if (params !== undefined) def.parameters = params
      out.push(def)
    }
  }
  return out.length ? out : undefined
}

function response(out: CompletionBuilder, r: Json): void {
  const e = get(r, 'error')
  if (obj(e)) {
    const err: { type?: string; message?: string } = {}
    const status = str(get(e, 'status'))
    if (status) err.type = status
    const m = str(get(e, 'message'))
    if (m) err.message = m
    out.setError(err)
    return
  }
  const id = str(get(r, 'responseId'))
  if (id) out.responseId = id
  const model = str(get(r, 'modelVersion'))
  if (model) out.model = model
  const cand = arr(get(r, 'candidates'))[0]
  for (const p of arr(get(cand, 'content', 'parts'))) {
    const text = str(get(p, 'text'))
    if (text !== undefined) {
      if (get(p, 'thought') !== true) out.appendText(text)
    } else if (obj(get(p, 'functionCall'))) {
      out.addToolCall(str(get(p, 'functionCall', 'id')), str(get(p, 'functionCall', 'name')) ?? '', argsText(get(p, 'functionCall', 'args')))
    }
  }
  const finish = str(get(cand, 'finishReason'))
  if (finish) out.finishReason = finish
  const block = str(get(r, 'promptFeedback', 'blockReason'))
  if (block) {
    out.finishReason = block
    out.setError({ type: 'prompt_blocked', message: `prompt blocked: ${block}` })
  }
  const u = get(r, 'usageMetadata')
  if (obj(u)) {
    const cands = num(get(u, 'candidatesTokenCount'))
    const thoughts = num(get(u, 'thoughtsTokenCount'))
    out.setUsage({
      input_tokens: num(get(u, 'promptTokenCount')),
      // thinking tokens are billed as output: count them in output like OpenAI's reasoning tokens
      output_tokens: cands === undefined && thoughts === undefined ? undefined : (cands ?? 0) + (thoughts ?? 0),
      total_tokens: num(get(u, 'totalTokenCount')),
      cache_read_tokens: num(get(u, 'cachedContentTokenCount')),
      reasoning_tokens: thoughts,
    })
  }
}

export const geminiAdapter: WireAdapter = {
  parseRequest(body, match) {
    const r: ParsedRequest = { messages: messages(body) }
    if (match.model !== undefined) r.model = match.model
    if (match.stream) r.stream = true
    const t = tools(body)
    if (t) r.tools = t
    return r
  },
  streamEvent(out, data) {
    response(out, data)
  },
  responseBody(out, body) {
    // streamGenerateContent without alt=sse: a JSON array of responses
    if (Array.isArray(body)) for (const r of body) response(out, r)
    else response(out, body)
  },
}
