/**
 * Which HTTP requests are LLM API calls. A recogniser looks at the request
 * line (host, path, query), the headers and, when it must, the JSON body,
 * and names the provider, operation and wire format. The defaults cover the
 * public providers by host and path, OpenAI-compatible servers by path on
 * any host, and MCP by its JSON-RPC body. Users add their own recognisers in
 * front (an internal gateway speaking the OpenAI format, say).
 */
import type { l7 } from '@bpfkit/core'
import { header, splitAuthority } from './http.js'
import type { Json } from './json.js'
import { get, obj, parseJson, str } from './json.js'
import type { ProviderMatch } from './providers/adapter.js'

/** What a recogniser sees of a request. */
export interface RecogniserInput {
  method?: string
  /** Host header / :authority as sent */
  authority?: string
  /** host name, lowercase, without port */
  host: string
  port?: number
  /** path without the query */
  pathname: string
  query: URLSearchParams
  /** a header value by name (case-insensitive); the first one when repeated */
  header(name: string): string | undefined
  /** the request body as text (UTF-8 bodies only), for cheap checks before json() */
  text(): string | undefined
  /** the request body as JSON (parsed once, on first call); undefined when absent or not JSON */
  json(): Json | undefined
}

/** Returns a match, or undefined to let the next recogniser decide. */
export type Recogniser = (req: RecogniserInput) => ProviderMatch | undefined

/** What recognisers see of a captured request. The body is JSON-parsed lazily: most requests are told apart by host and path alone. */
export function recogniserInput(req: l7.HttpRequestMessage): RecogniserInput {
  const { host, port } = splitAuthority(req.authority ?? header(req.headers, 'host'))
  const rawPath = req.path ?? ''
  const q = rawPath.indexOf('?')
  const pathname = q === -1 ? rawPath : rawPath.slice(0, q)
  let query: URLSearchParams
  try {
    query = new URLSearchParams(q === -1 ? '' : rawPath.slice(q + 1))
  } catch {
    query = new URLSearchParams()
  }
  let parsed: { value?: Json } | undefined
  const input: RecogniserInput = {
    host,
    pathname,
    query,
    header: (name) => header(req.headers, name.toLowerCase()),
    text: () => (req.body && req.body.encoding === 'utf8' ? req.body.data : undefined),
    json: () => {
      if (!parsed) {
        const b = req.body
        parsed = b && b.encoding === 'utf8' && b.data.length ? { value: parseJson(b.data).value } : {}
      }
      return parsed.value
    },
  }
  if (req.method !== undefined) input.method = req.method
  if (req.authority !== undefined) input.authority = req.authority
  if (port !== undefined) input.port = port
  return input
}

const decode = (s: string): string => {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

/** Azure OpenAI: /openai/deployments/{deployment}/... (the deployment is the model name users chose). */
export const azureOpenAI: Recogniser = (r) => {
  const azureHost = r.host.endsWith('.openai.azure.com') || r.host.endsWith('.cognitiveservices.azure.com') || r.host.endsWith('.services.ai.azure.com')
  const m = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|completions|embeddings)$/.exec(r.pathname)
  if (m) {
    const op = m[2]!
    return {
      provider: 'azure_openai',
      operation: op === 'chat/completions' ? 'chat' : op === 'completions' ? 'completion' : 'embeddings',
      format: op === 'chat/completions' ? 'openai_chat' : op === 'completions' ? 'openai_completions' : 'openai_embeddings',
      model: decode(m[1]!),
    }
  }
  if (!azureHost) return undefined
  const v1 = /^\/openai(?:\/v1)?\/(chat\/completions|responses|embeddings)$/.exec(r.pathname)
  if (!v1) return undefined
  return openaiOperation('azure_openai', v1[1]!)
}

function openaiOperation(provider: string, op: string): ProviderMatch | undefined {
  switch (op) {
    case 'chat/completions':
      return { provider, operation: 'chat', format: 'openai_chat' }
    case 'completions':
      return { provider, operation: 'completion', format: 'openai_completions' }
    case 'embeddings':
      return { provider, operation: 'embeddings', format: 'openai_embeddings' }
    case 'responses':
      return { provider, operation: 'responses', format: 'openai_responses' }
    default:
      return undefined
  }
}

/** Provider names for well-known OpenAI-format hosts; others are 'openai_compatible'. */
export const OPENAI_FORMAT_HOSTS: Record<string, string> = {
  'api.openai.com': 'openai',
  'api.mistral.ai': 'mistral',
  'api.groq.com': 'groq',
  'api.deepseek.com': 'deepseek',
  'openrouter.ai': 'openrouter',
  'api.together.xyz': 'together',
  'api.x.ai': 'xai',
  'api.fireworks.ai': 'fireworks',
  'api.perplexity.ai': 'perplexity',
  'generativelanguage.googleapis.com': 'gemini',
}

/** OpenAI and OpenAI-compatible servers (vLLM, LM Studio, llama.cpp, Ollama's /v1, gateways): by path, on any host. */
export const openAIFormat: Recogniser = (r) => {
  if (r.method !== undefined && r.method !== 'POST') return undefined
  const m = /(?:^|\/)(chat\/completions|completions|embeddings|responses)$/.exec(r.pathname)
  if (!m) return undefined
  // /v1/... on any host; other prefixes (/openai/v1, /api/v1, /v1beta/openai) only for the named hosts or when versioned
  if (!/\/v\d+(?:beta)?\/(?:openai\/)?(?:chat\/completions|completions|embeddings|responses)$/.test(r.pathname) && !OPENAI_FORMAT_HOSTS[r.host]) return undefined
  return openaiOperation(OPENAI_FORMAT_HOSTS[r.host] ?? 'openai_compatible', m[1]!)
}

/** Anthropic Messages on api.anthropic.com or any host serving /v1/messages; Claude on Vertex AI (rawPredict). */
export const anthropic: Recogniser = (r) => {
  if (r.pathname.endsWith('/v1/messages')) return { provider: 'anthropic', operation: 'chat', format: 'anthropic_messages' }
  const v = /\/publishers\/anthropic\/models\/([^/:]+):(rawPredict|streamRawPredict)$/.exec(r.pathname)
  if (v) return { provider: 'vertex_ai', operation: 'chat', format: 'anthropic_messages', model: decode(v[1]!), stream: v[2] === 'streamRawPredict' }
  return undefined
}

/** Gemini on AI Studio (generativelanguage.googleapis.com) and Vertex AI ({region}-aiplatform.googleapis.com). */
export const gemini: Recogniser = (r) => {
  const m = /\/models\/([^/:]+):(generateContent|streamGenerateContent)$/.exec(r.pathname)
  if (!m) return undefined
  const provider = r.host.includes('aiplatform') ? 'vertex_ai' : 'gemini'
  return { provider, operation: 'generate_content', format: 'gemini', model: decode(m[1]!), stream: m[2] === 'streamGenerateContent' }
}

/** Bedrock runtime: bedrock-runtime.{region}.amazonaws.com (and VPC endpoints), /model/{id}/{action}. */
export const bedrock: Recogniser = (r) => {
  if (!r.host.includes('bedrock')) return undefined
  const m = /^\/model\/([^/]+)\/(converse|converse-stream|invoke|invoke-with-response-stream)$/.exec(r.pathname)
  if (!m) return undefined
  const action = m[2]!
  const converse = action.startsWith('converse')
  return {
    provider: 'bedrock',
    operation: converse ? 'converse' : 'invoke',
    format: converse ? 'bedrock_converse' : 'bedrock_invoke',
    model: decode(m[1]!),
    stream: action.endsWith('stream'),
  }
}

/** Cohere Chat v2 on api.cohere.com / api.cohere.ai, or /v2/chat elsewhere with a chat body. */
export const cohere: Recogniser = (r) => {
  if (r.pathname !== '/v2/chat' && !r.pathname.endsWith('/compatibility/v2/chat')) return undefined
  if (!r.host.includes('cohere') && !Array.isArray(get(r.json(), 'messages'))) return undefined
  return { provider: 'cohere', operation: 'chat', format: 'cohere_chat' }
}

/** Ollama's native API: /api/chat and /api/generate with an Ollama-shaped body (any host: it is usually local or in-cluster). */
export const ollama: Recogniser = (r) => {
  const chat = r.pathname === '/api/chat'
  if (!chat && r.pathname !== '/api/generate') return undefined
  const body = r.json()
  if (typeof str(get(body, 'model')) !== 'string') return undefined
  if (chat ? !Array.isArray(get(body, 'messages')) : typeof get(body, 'prompt') !== 'string') return undefined
  return { provider: 'ollama', operation: chat ? 'chat' : 'generate', format: chat ? 'ollama_chat' : 'ollama_generate' }
}

/** The MCP methods rebuilt into exchanges; other JSON-RPC traffic (initialize, notifications, pings) is not. */
export const MCP_METHODS = ['tools/call', 'tools/list'] as const

/** MCP over streamable HTTP: a JSON-RPC 2.0 POST for tools/call or tools/list, on any path. */
export const mcp: Recogniser = (r) => {
  if (r.method !== undefined && r.method !== 'POST') return undefined
  const ct = r.header('content-type')
  if (ct !== undefined && !ct.toLowerCase().includes('json')) return undefined
  // every JSON POST passes here: look for the two markers before paying for a parse
  const text = r.text()
  if (text === undefined || !text.includes('"tools/') || !text.includes('jsonrpc')) return undefined
  const body = obj(r.json())
  if (!body || body['jsonrpc'] !== '2.0') return undefined
  const method = str(body['method'])
  if (!method || !(MCP_METHODS as readonly string[]).includes(method)) return undefined
  return { provider: 'mcp', operation: method, format: 'mcp' }
}

/** The built-in recognisers, tried in this order (specific hosts before path-only rules). */
export const DEFAULT_RECOGNISERS: readonly Recogniser[] = [azureOpenAI, bedrock, gemini, anthropic, cohere, ollama, openAIFormat, mcp]
