/**
 * Google Gemini generateContent / streamGenerateContent (AI Studio and
 * Vertex AI). Each streamed element is a whole GenerateContentResponse whose
 * text parts are deltas and whose usageMetadata is cumulative. Without
 * alt=sse the stream is one JSON array delivered piece by piece: it is read
 * from the final body (see docs/llm.md).
 */
import type { CompletionBuilder } from '../assembly.js'
import { argsText, arr, get, type Json, num, obj, str } from '../json.js'
import type { LlmContentPart, LlmMessage, LlmToolDefinition } from '../types.js'
import { imagePart, makeMessage, normaliseRole, providerError, requestFromUrl, toolDefinition, toolResultPart, toolUsePart, turnMessages, type WireAdapter } from './adapter.js'

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
      out.push(toolUsePart(str(get(p, 'functionCall', 'name')) ?? '', argsText(get(p, 'functionCall', 'args')), str(get(p, 'functionCall', 'id'))))
    } else if (obj(get(p, 'functionResponse'))) {
      results.push(toolResultPart(argsText(get(p, 'functionResponse', 'response')), str(get(p, 'functionResponse', 'id'))))
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
    out.push(...turnMessages(normaliseRole(get(c, 'role') ?? 'user'), parts(get(c, 'parts'))))
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
    for (const d of decls) out.push(toolDefinition(str(get(d, 'name')) ?? '', str(get(d, 'description')), get(d, 'parameters') ?? get(d, 'parametersJsonSchema')))
  }
  return out.length ? out : undefined
}

function response(out: CompletionBuilder, r: Json): void {
  const e = get(r, 'error')
  if (obj(e)) {
    out.setError(providerError(str(get(e, 'status')), str(get(e, 'message'))))
    return
  }
  const id = str(get(r, 'responseId'))
  if (id) out.responseId = id
  const model = str(get(r, 'modelVersion'))
  if (model) out.model = model
  const cand = arr(get(r, 'candidates'))[0]
  for (const p of arr(get(cand, 'content', 'parts'))) {
    const text = out.textField(get(p, 'text'), 'parts[].text')
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
  // the model and streaming are in the URL (models/{model}:streamGenerateContent)
  parseRequest: (body, match) => requestFromUrl(match, messages(body), tools(body)),
  streamEvent(out, data) {
    response(out, data)
  },
  responseBody(out, body) {
    // streamGenerateContent without alt=sse: a JSON array of responses
    if (Array.isArray(body)) for (const r of body) response(out, r)
    else response(out, body)
  },
}
