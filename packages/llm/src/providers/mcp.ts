/**
 * MCP over streamable HTTP: JSON-RPC 2.0 POSTs to one endpoint, replies as
 * JSON or as an SSE stream of JSON-RPC messages. We rebuild tools/call
 * (arguments out, result content back: where indirect prompt injection and
 * leaked secrets travel) and tools/list (tool descriptions: where tool
 * poisoning hides).
 *
 * Mapping onto the exchange: tools/call has one 'assistant' message whose
 * content is the call's arguments (JSON) and a tool_use part; the
 * completion text is the text content of the result. tools/list has no
 * messages; `tools` lists the tools, and the completion text is one
 * "name: description" line per tool so scanners read the descriptions.
 */
import type { CompletionBuilder, ParsedRequest } from '../assembly.js'
import { argsText, arr, get, type Json, obj, str } from '../json.js'
import type { LlmContentPart, LlmToolDefinition } from '../types.js'
import { providerError, type WireAdapter } from './adapter.js'

function rpcId(x: Json): string | number | undefined {
  return typeof x === 'string' || (typeof x === 'number' && Number.isFinite(x)) ? x : undefined
}

function result(out: CompletionBuilder, msg: Json, method: string): void {
  const err = get(msg, 'error')
  if (obj(err)) {
    const code = get(err, 'code')
    out.setError(providerError(typeof code === 'number' ? String(code) : undefined, str(get(err, 'message'))))
    out.finishReason = 'error'
    return
  }
  const r = get(msg, 'result')
  if (method === 'tools/list') {
    const lines = arr(get(r, 'tools')).map((t) => `${str(get(t, 'name')) ?? ''}: ${str(get(t, 'description')) ?? ''}`)
    out.appendText(lines.join('\n'))
    return
  }
  const texts: string[] = []
  for (const c of arr(get(r, 'content'))) {
    const type = str(get(c, 'type'))
    if (type === 'text') texts.push(str(get(c, 'text')) ?? '')
    else if (type === 'resource') {
      const t = str(get(c, 'resource', 'text'))
      if (t !== undefined) texts.push(t)
    }
  }
  if (!texts.length && get(r, 'structuredContent') !== undefined) texts.push(argsText(get(r, 'structuredContent')))
  out.appendText(texts.join('\n'))
  if (get(r, 'isError') === true) {
    out.finishReason = 'tool_error'
    out.setError({ type: 'tool_error', message: texts.join('\n').slice(0, 1000) })
  } else {
    out.finishReason = 'result'
  }
}

/** The listed tools, kept on the builder's side channel: read by the monitor after the response. */
export function mcpListedTools(body: Json): LlmToolDefinition[] {
  return arr(get(body, 'result', 'tools')).map((t) => {
    const def: LlmToolDefinition = { name: str(get(t, 'name')) ?? '' }
    const d = str(get(t, 'description'))
    if (d !== undefined) def.description = d
    if (get(t, 'inputSchema') !== undefined) def.parameters = get(t, 'inputSchema')
    return def
  })
}

export const mcpAdapter: WireAdapter = {
  parseRequest(body, match) {
    const r: ParsedRequest = { messages: [] }
    const id = rpcId(get(body, 'id'))
    if (id !== undefined) r.rpc_id = id
    if (match.operation === 'tools/call') {
      const name = str(get(body, 'params', 'name')) ?? ''
      const args = argsText(get(body, 'params', 'arguments'))
      r.model = name // the tool is what was "asked"; reported as model for grouping
      const use: LlmContentPart = { type: 'tool_use', name, arguments: args }
      r.messages.push({ role: 'assistant', content: args, parts: [use] })
    }
    return r
  },
  streamEvent(out, data, _event, ctx) {
    // an SSE reply can carry notifications and requests before the response with our id
    if (get(data, 'method') !== undefined) return
    const id = rpcId(get(data, 'id'))
    if (ctx.request.rpc_id !== undefined && id !== ctx.request.rpc_id) return
    result(out, data, ctx.match.operation)
    if (ctx.match.operation === 'tools/list') out.listedTools = mcpListedTools(data)
  },
  responseBody(out, body, ctx) {
    const msgs = Array.isArray(body) ? body : [body]
    for (const m of msgs) this.streamEvent(out, m, undefined, ctx)
  },
}
